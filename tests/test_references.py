"""One resolver, one order (references.resolve): path, workspace model, gallery id, known archid, Hub id."""

from __future__ import annotations

from pathlib import Path

import pytest

from lts_cli.errors import LtsError, NotFound
from lts_cli.references import resolve
from lts_cli.space import Arch
from lts_cli.store import open_store

A_ID = "gpt2_a9e3147996070fda25af4b39ed95b6a18d6d0402"
STORED = Arch(2, 64, 128, 2)  # an architecture this workspace has profiled


@pytest.fixture
def workspace(lts_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (lts_home / "models" / "tiny").mkdir(parents=True)
    (lts_home / "models" / "gpt2").mkdir()  # a model a user named like a Hub repo
    (lts_home / "models" / ".half.training").mkdir()  # unfinished trainings are not models
    with open_store() as store:
        store.put_arch(STORED, "profile")
        store.put_arch(Arch(3, 64, 128, 2), "profile")
    (tmp_path / "cwd").mkdir()
    (tmp_path / "cwd" / "arch.yaml").write_text("n_layer: 1\nd_model: 64\nd_inner: 64\nn_head: 2\n")
    (tmp_path / "cwd" / "some-folder").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    return lts_home


@pytest.mark.parametrize(
    ("text", "kind", "names"),
    [
        ("arch.yaml", "path", "arch.yaml"),  # 1. a path
        ("some-folder", "path", "some-folder"),
        ("tiny", "model", "tiny"),  # 2. a workspace model, by name
        ("gpt2", "model", "gpt2"),  # ... which comes before the Hub
        ("gpt2_a9e3", "gallery", A_ID),  # 3. a gallery id, by 4 hex digits
        (A_ID, "gallery", A_ID),
        (STORED.archid[:12], "archid", STORED.archid),  # 4. a known archid, by a unique prefix
        (STORED.archid, "archid", STORED.archid),
        ("distilgpt2", "hub", "distilgpt2"),  # 5. a Hub repo id
        ("openai-community/gpt2", "hub", "openai-community/gpt2"),
        ("user/model", "hub", "user/model"),
    ],
)
def test_the_order(workspace: Path, text: str, kind: str, names: str) -> None:
    found = resolve(text)
    assert found.kind == kind
    named = {"path": found.path and found.path.name, "model": found.path and found.path.name,
             "gallery": found.entry and found.entry.id, "archid": found.arch and found.arch.archid,
             "hub": found.text}[kind]  # fmt: skip
    assert named == names


def test_gpt2_is_a_hub_id_without_a_model_of_that_name(lts_home: Path) -> None:
    assert resolve("gpt2").kind == "hub"


def test_a_trained_model_comes_before_its_gallery_id(lts_home: Path) -> None:
    (lts_home / "models" / A_ID).mkdir(parents=True)
    found = resolve("gpt2_a9e3")
    assert found.kind == "model" and found.path == lts_home / "models" / A_ID


@pytest.mark.parametrize(
    ("text", "error", "fragment"),
    [
        ("gpt2_", NotFound, "at least 4 hex digits"),  # lts ids are never sent to the Hub
        ("gpt2_a9e", NotFound, "unknown architecture 'gpt2_a9e'"),  # 3 hex digits are not a prefix
        ("gpt2_zzzz", NotFound, "unknown architecture"),
        ("missing.json", NotFound, "no such file"),  # written as a path: it must exist
        ("./nothing", NotFound, "no such file"),
        ("a b c", NotFound, "Hugging Face Hub repo id"),
    ],
)
def test_what_names_nothing(workspace: Path, text: str, error: type, fragment: str) -> None:
    with pytest.raises(error) as raised:
        resolve(text)
    assert fragment in str(raised.value)


def test_an_ambiguous_prefix_names_the_candidates(workspace: Path) -> None:
    (workspace / "models" / "gpt2_abcd1").mkdir()
    (workspace / "models" / "gpt2_abcd2").mkdir()
    with pytest.raises(LtsError, match="matches 2 workspace models"):
        resolve("gpt2_abcd")
