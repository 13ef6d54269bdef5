"""Corpora and tokens: the shipped Shakespeare corpus, user text, Hub datasets, token caches.

A corpus is a list of documents per split. Tokenized once (documents joined by `<|endoftext|>`), it is
cached in the workspace as uint16 token files keyed by the corpus content and the tokenizer, and
read back memory-mapped, so a second training run starts at once.

Splits: the shipped corpus is split by whole works (fixed lists below). Text files and single-split
datasets are split by position in the token stream: the first 90% trains, the next 5% validates,
the last 5% tests.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import sys
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from lts_cli import folders, workspace
from lts_cli.errors import ConfigError, LtsError, first_line
from lts_cli.space import GPT2_EOS_ID
from lts_cli.tokenizer import shipped as tokenizer

SPLITS = ("train", "validation", "test")
CORPUS_FILE = "data/shakespeare/shakespeare.jsonl.gz"
# The shipped corpus's fixed split, by whole works (file stems of the Open Shakespeare texts).
VALIDATION_WORKS = ("twelfth_night",)
TEST_WORKS = ("macbeth",)
TOKEN_CACHE_VERSION = 1


@dataclass
class Corpus:
    name: str  # what the user gave, for messages
    key: str  # identity of the content, for the token cache
    splits: dict[str, list[str]]  # split -> documents; missing splits are carved from train


# ---- the shipped corpus -------------------------------------------------------------------------


def embedded_corpus() -> Corpus:
    """42 public-domain Shakespeare works (Open Shakespeare 0.6 / Project Gutenberg), split by work."""
    raw = resources.files("lts_cli").joinpath(CORPUS_FILE).read_bytes()
    splits: dict[str, list[str]] = {s: [] for s in SPLITS}
    for line in gzip.decompress(raw).decode("utf-8").splitlines():
        work = json.loads(line)
        splits[work["split"]].append(work["text"])
    return Corpus("the embedded Shakespeare corpus", "shakespeare:" + hashlib.sha1(raw).hexdigest(), splits)


_GUTENBERG_START = re.compile(r"^\*\*\*\s*START OF (THE|THIS) PROJECT GUTENBERG.*$", re.M | re.I)
_GUTENBERG_END = re.compile(
    r"^(\*\*\*\s*END OF (THE|THIS) PROJECT GUTENBERG|End of (the )?Project Gutenberg).*$", re.M | re.I
)


@dataclass(frozen=True)
class CorpusOptions:
    """Which corpus a command trains on: text files at `data`, a Hub `dataset`, else the shipped one."""

    data: Path | None = None
    dataset: str | None = None
    text_field: str = "text"

    def load(self) -> Corpus:
        if self.data is not None and self.dataset is not None:
            raise ConfigError(["data", "dataset"], "give {0} or {1}, not both")
        if self.data is not None:
            return files_corpus(self.data, self.text_field)
        if self.dataset is not None:
            return hub_corpus(self.dataset, self.text_field)
        return embedded_corpus()


def clean_gutenberg(text: str) -> str:
    """The work itself: Project Gutenberg header and footer cut, line ends and blank runs normalized."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    start = _GUTENBERG_START.search(text)
    if start:
        text = text[start.end() :]
    end = _GUTENBERG_END.search(text)
    if end:
        text = text[: end.start()]
    lines = [line.rstrip() for line in text.split("\n")]
    return re.sub(r"\n{4,}", "\n\n\n", "\n".join(lines)).strip() + "\n"


def build_corpus(tarball: Path, out: Path) -> dict[str, int]:
    """Maintenance: rebuild the shipped corpus file from the Open Shakespeare tarball."""
    works = []
    with tarfile.open(tarball) as tar:
        for member in sorted(tar.getmembers(), key=lambda m: m.name):
            if not member.isfile() or not member.name.endswith(".txt"):
                continue
            stem = Path(member.name).stem.removesuffix("_gut")
            handle = tar.extractfile(member)
            assert handle is not None
            text = clean_gutenberg(handle.read().decode("utf-8"))
            split = "validation" if stem in VALIDATION_WORKS else "test" if stem in TEST_WORKS else "train"
            works.append({"work": stem, "title": text.split("\n", 1)[0].strip(), "split": split, "text": text})
    payload = "".join(json.dumps(w, ensure_ascii=False) + "\n" for w in works).encode("utf-8")
    workspace.atomic_write_bytes(out, gzip.compress(payload, compresslevel=9, mtime=0))
    return {s: sum(1 for w in works if w["split"] == s) for s in SPLITS}


# ---- user text and Hub datasets -----------------------------------------------------------------


def files_corpus(path: Path, text_field: str = "text") -> Corpus:
    """A .txt file, a folder of .txt files (recursively, sorted), or a .jsonl file with a text field."""
    if not path.exists():
        raise LtsError(f"--data {path}: no such file or folder")
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in (".txt", ".jsonl"))
        if not files:
            raise LtsError(f"--data {path}: the folder holds no .txt or .jsonl files")
    else:
        files = [path]
    documents: list[str] = []
    digest = hashlib.sha1()
    for file in files:
        digest.update(f"{file.resolve()}|{file.stat().st_size}|{file.stat().st_mtime_ns}\n".encode())
        documents.extend(_read_documents(file, text_field))
    digest.update(text_field.encode())
    if not any(doc.strip() for doc in documents):
        raise LtsError(f"--data {path}: no text found (empty files?)")
    return Corpus(str(path), "files:" + digest.hexdigest(), {"train": documents})


def _read_documents(file: Path, text_field: str) -> list[str]:
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise LtsError(f"{file}: not UTF-8 text (invalid byte at offset {exc.start}); convert it to UTF-8") from exc
    except OSError as exc:
        raise LtsError(f"{file}: cannot read ({exc.strerror})") from exc
    if file.suffix.lower() != ".jsonl":
        return [text]
    documents = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise LtsError(f"{file}:{number}: invalid JSON ({exc.msg})") from exc
        if not isinstance(record, dict) or not isinstance(record.get(text_field), str):
            raise LtsError(f"{file}:{number}: no string field {text_field!r} (choose it with --text-field)")
        documents.append(record[text_field])
    return documents


def hub_corpus(spec: str, text_field: str = "text") -> Corpus:
    """`NAME[:CONFIG]` from the Hugging Face Hub (needs the `datasets` package and the network or its cache)."""
    name, _, config = spec.partition(":")
    try:
        import datasets
    except ImportError as exc:
        raise LtsError(
            f"--dataset {spec} needs the `datasets` package: pip install 'lts-cli[hub]' (or use --data PATH)"
        ) from exc
    import huggingface_hub.constants as hub_constants

    from lts_cli.hub import HubUnavailable, check_repo

    try:
        check_repo(name, "dataset")
        unavailable = None
    except HubUnavailable as exc:
        unavailable = str(exc)
    saved = datasets.config.HF_HUB_OFFLINE, hub_constants.HF_HUB_OFFLINE
    if unavailable:  # the local cache only, instead of retrying for half a minute
        datasets.config.HF_HUB_OFFLINE = hub_constants.HF_HUB_OFFLINE = True
    try:
        loaded = datasets.load_dataset(name, config or None)
    except Exception as exc:  # the Hub client raises many types; all mean the same to the user
        where = f"{unavailable}, and its local cache does not have it" if unavailable else "the Hub said"
        raise LtsError(
            f"could not load dataset {spec!r}: {where} ({type(exc).__name__}: {first_line(exc)[:160]}); "
            "check the name and the network, or use --data PATH"
        ) from exc
    finally:
        datasets.config.HF_HUB_OFFLINE, hub_constants.HF_HUB_OFFLINE = saved
    aliases = {"train": "train", "validation": "validation", "valid": "validation", "dev": "validation", "test": "test"}
    splits: dict[str, list[str]] = {}
    for split_name, rows in loaded.items():
        target = aliases.get(split_name)
        if target is None:
            continue
        if text_field not in rows.column_names:
            raise LtsError(f"dataset {spec!r} has no column {text_field!r} (columns: {', '.join(rows.column_names)})")
        splits[target] = [t for t in rows[text_field] if t]
    if "train" not in splits:
        raise LtsError(f"dataset {spec!r} has no train split (splits: {', '.join(loaded)})")
    key = "hub:" + hashlib.sha1(f"{spec}|{text_field}|{loaded['train']._fingerprint}".encode()).hexdigest()
    return Corpus(spec, key, splits)


# ---- tokens -------------------------------------------------------------------------------------


def token_folder(corpus: Corpus) -> Path:
    """Where the corpus's tokens are cached (keyed by its content and the tokenizer)."""
    tok_id = hashlib.sha1(json.dumps(tokenizer().get_vocab(), sort_keys=True).encode()).hexdigest()[:16]
    key = hashlib.sha1(f"{TOKEN_CACHE_VERSION}|{corpus.key}|{tok_id}".encode()).hexdigest()[:20]
    return workspace.ensure_home() / workspace.TOKENS / key


def tokenize(corpus: Corpus) -> dict[str, np.ndarray]:
    """Token ids per split (uint16, memory-mapped), from the workspace cache or tokenized once now.
    Hold `workspace.in_use(token_folder(corpus))` while they are used."""
    tok = tokenizer()
    folder = token_folder(corpus)
    with workspace.one_at_a_time(folder):  # processes of one torchrun (or two lts) tokenize it once
        if not (folder / workspace.TOKENS_MARKER).is_file():
            arrays = _split_tokens({s: _encode(docs, tok) for s, docs in corpus.splits.items()})
            for split, ids in arrays.items():
                workspace.atomic_write_bytes(folder / f"{split}.bin", ids.astype(np.uint16).tobytes())
            meta = {"corpus": corpus.name, "key": corpus.key, "tokens": {s: int(a.size) for s, a in arrays.items()}}
            workspace.atomic_write_json(folder / workspace.TOKENS_MARKER, meta)  # last: marks the cache complete
            folders.write_manifest(folder, [*(f"{split}.bin" for split in arrays), workspace.TOKENS_MARKER])
    sizes = json.loads((folder / workspace.TOKENS_MARKER).read_text())["tokens"]
    return {
        s: np.memmap(folder / f"{s}.bin", dtype=np.uint16, mode="r", shape=(sizes[s],))
        if sizes[s]
        else np.zeros(0, np.uint16)
        for s in SPLITS
    }


def _encode(documents: list[str], tok: Any) -> np.ndarray:
    ids: list[int] = []
    for batch in _batches(documents, 64):
        for encoded in tok(batch, add_special_tokens=False)["input_ids"]:
            ids.extend(encoded)
            ids.append(GPT2_EOS_ID)
    return np.asarray(ids, dtype=np.int64)


def _batches(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _split_tokens(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Carve missing validation/test splits from the end of the train stream (90/5/5)."""
    train = arrays["train"]
    if "validation" in arrays and "test" in arrays:
        return {s: arrays[s] for s in SPLITS}
    n = train.size
    cut_val, cut_test = int(n * 0.90), int(n * 0.95)
    out = {"train": train[:cut_val], "validation": train[cut_val:cut_test], "test": train[cut_test:]}
    for split in ("validation", "test"):
        if split in arrays:  # a dataset with one of the two keeps its own
            out[split] = arrays[split]
    return out


def block_count(tokens: np.ndarray, seq_len: int) -> int:
    return int(tokens.size // seq_len)


def blocks_dataset(tokens: np.ndarray, seq_len: int) -> Any:
    """A torch Dataset of consecutive, non-overlapping blocks of `seq_len` tokens (labels = inputs)."""
    import torch

    class Blocks(torch.utils.data.Dataset):
        def __len__(self) -> int:
            return block_count(tokens, seq_len)

        def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
            ids = torch.from_numpy(tokens[index * seq_len : (index + 1) * seq_len].astype(np.int64))
            return {"input_ids": ids, "labels": ids.clone()}

    return Blocks()


def main(argv: list[str]) -> None:
    """`python -m lts_cli.corpus build-corpus TARBALL`: regenerate the shipped corpus file."""
    if len(argv) != 2 or argv[0] != "build-corpus":
        raise SystemExit("usage: python -m lts_cli.corpus build-corpus shakespeare-gutenberg-texts.tar.gz")
    print(build_corpus(Path(argv[1]), Path(__file__).parent / CORPUS_FILE))


if __name__ == "__main__":
    main(sys.argv[1:])
