"""The shipped tokenizer and corpus, user text, token caches and the Hub path (offline here)."""

from __future__ import annotations

import gzip
import json
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from lts_cli import corpus as corpora
from lts_cli.errors import LtsError


def test_tokenizer_known_answer() -> None:
    from lts_cli.space import GPT2_EOS_ID
    from lts_cli.tokenizer import shipped

    tok = shipped()
    assert len(tok) == 50257
    assert tok.encode("Hello world") == [15496, 995]
    assert tok.eos_token_id == GPT2_EOS_ID == 50256
    assert tok.decode([15496, 995]) == "Hello world"


def test_shipped_corpus_is_clean_and_split_by_work() -> None:
    raw = resources.files("lts_cli").joinpath(corpora.CORPUS_FILE).read_bytes()
    works = [json.loads(line) for line in gzip.decompress(raw).decode().splitlines()]
    assert len(works) == 42
    by_split = {s: [w["work"] for w in works if w["split"] == s] for s in corpora.SPLITS}
    assert by_split["validation"] == ["twelfth_night"] and by_split["test"] == ["macbeth"]
    for work in works:
        assert "gutenberg" not in work["text"].lower(), work["work"]
        assert "\r" not in work["text"] and "\n\n\n\n" not in work["text"]
    corpus = corpora.embedded_corpus()
    assert sum(len(v) for v in corpus.splits.values()) == 42


def test_clean_gutenberg_cuts_header_and_footer() -> None:
    text = (
        "The Project Gutenberg EBook of Hamlet\r\nLicense blah\r\n"
        "*** START OF THIS PROJECT GUTENBERG EBOOK HAMLET ***\r\n\r\nHAMLET\r\n\r\n\r\n\r\n\r\nTo be   \r\n"
        "*** END OF THIS PROJECT GUTENBERG EBOOK HAMLET ***\r\nmore license\r\n"
    )
    assert corpora.clean_gutenberg(text) == "HAMLET\n\n\nTo be\n"


def test_token_cache_is_reused(lts_home: Path, tmp_path: Path) -> None:
    text = tmp_path / "a.txt"
    text.write_text("To be, or not to be, that is the question. " * 200)
    corpus = corpora.files_corpus(text)
    first = corpora.tokenize(corpus)
    assert {s: a.dtype for s, a in first.items()} == dict.fromkeys(corpora.SPLITS, np.dtype(np.uint16))
    total = sum(a.size for a in first.values())
    assert first["train"].size == int(total * 0.9)  # 90 / 5 / 5 by position
    again = corpora.tokenize(corpora.files_corpus(text))
    assert isinstance(again["train"], np.memmap)
    np.testing.assert_array_equal(again["train"], first["train"])
    assert len(list((lts_home / "tokens").iterdir())) == 1
    text.write_text("Changed text. " * 300)  # new content -> a new cache entry
    corpora.tokenize(corpora.files_corpus(text))
    assert len(list((lts_home / "tokens").iterdir())) == 2


def test_blocks_are_consecutive_and_labelled() -> None:
    tokens = np.arange(100, dtype=np.uint16)
    blocks = corpora.blocks_dataset(tokens, 16)
    assert len(blocks) == 6
    item = blocks[2]
    assert item["input_ids"].tolist() == list(range(32, 48)) and item["labels"].tolist() == list(range(32, 48))


def test_folders_and_jsonl(tmp_path: Path) -> None:
    folder = tmp_path / "texts"
    (folder / "sub").mkdir(parents=True)
    (folder / "b.txt").write_text("second")
    (folder / "sub" / "a.txt").write_text("first")
    (folder / "notes.md").write_text("ignored")
    assert corpora.files_corpus(folder).splits["train"] == ["second", "first"]
    jsonl = tmp_path / "d.jsonl"
    jsonl.write_text('{"text": "one"}\n\n{"text": "two", "id": 2}\n')
    assert corpora.files_corpus(jsonl).splits["train"] == ["one", "two"]
    jsonl.write_text('{"body": "one"}\n')
    with pytest.raises(LtsError, match=r"d\.jsonl:1: no string field 'text'"):
        corpora.files_corpus(jsonl)
    assert corpora.files_corpus(jsonl, text_field="body").splits["train"] == ["one"]


def test_bad_data(tmp_path: Path) -> None:
    with pytest.raises(LtsError, match="no such file or folder"):
        corpora.files_corpus(tmp_path / "missing")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(LtsError, match=r"holds no \.txt or \.jsonl files"):
        corpora.files_corpus(empty)
    blank = tmp_path / "blank.txt"
    blank.write_text("  \n\n")
    with pytest.raises(LtsError, match="no text found"):
        corpora.files_corpus(blank)
    latin = tmp_path / "latin1.txt"
    latin.write_bytes("caf\xe9".encode("latin-1"))
    with pytest.raises(LtsError, match=f"{latin}: not UTF-8"):
        corpora.files_corpus(latin)


def test_hub_dataset_offline_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("datasets")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(LtsError, match="could not load dataset 'wikitext:wikitext-2-raw-v1'"):
        corpora.hub_corpus("wikitext:wikitext-2-raw-v1")
