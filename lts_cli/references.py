"""What a name on the command line refers to: one order and one prefix rule for every command.

A reference is tried as, in this order:

1. a path: a file or folder that exists, or anything written as one (`./x`, `/x`, `~/x`, `x.json`,
   `x.yaml`), which must then exist;
2. a workspace model: a folder in `models/` by its name, or by a unique id prefix;
3. a gallery id, or a unique prefix of one: `gpt2_` and at least 4 hex digits;
4. an architecture id this workspace knows (profiled, searched or trained), same prefix rule;
5. a Hugging Face Hub repo id: `gpt2`, `distilgpt2`, `openai-community/gpt2`, `user/model`.

So `gpt2` is a Hub id, never a gallery prefix; and a name that starts with `gpt2_` is always an lts id,
never sent to the Hub (the Hub has no repository of such a name without a namespace). The first kind
that matches is the answer; an ambiguous prefix is an error.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from lts_cli import workspace
from lts_cli.errors import LtsError, NotFound
from lts_cli.gallery import GalleryEntry, Resolved, arch_from_file, entries, entry_for
from lts_cli.space import ID_PREFIX, Arch, unique
from lts_cli.store import Store
from lts_cli.views import JsonObject

Kind = Literal["path", "model", "gallery", "archid", "hub"]
HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}(/[A-Za-z0-9][A-Za-z0-9._-]{0,95})?$")
_FILE_SUFFIXES = (".json", ".yaml", ".yml")
LTS_ID_START = "gpt2_"  # gallery ids and archids; the Hub has no repo of this name without a namespace


@dataclass(frozen=True)
class Reference:
    """What `text` names: `path` for a path or workspace model folder, `entry` for a gallery id,
    `arch` for a gallery id or a workspace archid, `text` itself for a Hub repo id."""

    text: str
    kind: Kind
    path: Path | None = None
    entry: GalleryEntry | None = None
    arch: Arch | None = None


def looks_like_path(text: str) -> bool:
    return text.startswith((".", "/", "~")) or text.lower().endswith(_FILE_SUFFIXES)


def model_folders() -> list[str]:
    """The names of the model folders in the workspace (hidden work folders left out)."""
    root = workspace.home() / workspace.MODELS
    if not root.is_dir():
        return []
    return [p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")]


def resolve(text: str, store: Store | None = None) -> Reference:
    """The first kind of reference `text` is, in the module's order; NotFound if it is none."""
    path = Path(text).expanduser()
    if path.exists():
        return Reference(text, "path", path=path)
    if looks_like_path(text):
        raise NotFound(f"{text}: no such file or folder")
    model = unique(text, model_folders(), "workspace models")
    if model is not None:
        return Reference(text, "model", path=workspace.home() / workspace.MODELS / model)
    gallery_id = unique(text, (e.id for e in entries()), "gallery ids")
    if gallery_id is not None:
        entry = next(e for e in entries() if e.id == gallery_id)
        return Reference(text, "gallery", entry=entry, arch=entry.arch)
    arch = _stored(text, store) if ID_PREFIX.fullmatch(text) else None
    if arch is not None:
        return Reference(text, "archid", entry=entry_for(arch), arch=arch)
    if text.startswith(LTS_ID_START):
        raise NotFound(
            f"unknown architecture {text!r}: no workspace model, gallery id or architecture id known here is "
            "or starts with it (a prefix needs gpt2_ and at least 4 hex digits); see `lts gallery list` and "
            "`lts models list`, or give a .json/.yaml file with n_layer, d_model, d_inner and n_head"
        )
    if HUB_ID.match(text):
        return Reference(text, "hub")
    raise NotFound(
        f"{text!r} is not a file or folder, a workspace model, a gallery id, a known architecture id "
        "or a Hugging Face Hub repo id"
    )


def _stored(prefix: str, store: Store | None) -> Arch | None:
    from lts_cli.store import open_store

    if store is None:
        with open_store() as own:
            return _stored(prefix, own)
    archs = {arch.archid: arch for arch in store.find_archs(prefix)}
    archid = unique(prefix, archs, "architecture ids")
    return archs[archid] if archid is not None else None


def architecture(text: str, store: Store | None = None, revision: str | None = None) -> Resolved:
    """The architecture `text` names, for commands that measure or train one: an architecture file, a
    model or export folder's, a workspace model's, a gallery id's (the gallery table's), a known
    archid, or a Hub repo's config.json (from the Hugging Face cache, else the Hub)."""
    found = resolve(text, store)
    if revision is not None and found.kind != "hub":
        raise LtsError(f"--revision is for Hugging Face Hub models; {text!r} is a {found.kind.replace('path', 'file')}")
    if found.kind in ("path", "model"):
        assert found.path is not None
        arch = arch_from_file(found.path)
        label = found.path.name if found.kind == "model" else str(found.path)
        return Resolved(arch, label, entry_for(arch))
    if found.kind == "hub":
        arch = Arch.from_hf_config(_hub_config(text, revision), source=f"{text}/config.json")
        return Resolved(arch, text, entry_for(arch))
    assert found.arch is not None
    label = found.entry.id if found.entry is not None and found.kind == "gallery" else found.arch.archid
    return Resolved(found.arch, label, found.entry, notes=_pulled_differs(found.entry) if found.entry else ())


def _pulled_differs(entry: GalleryEntry) -> tuple[str, ...]:
    """A note when the pulled checkpoint of a gallery id is not the gallery table's architecture."""
    from lts_cli import pretrained

    try:
        pulled = pretrained.registered(entry.id)
    except LtsError:
        return ()
    if pulled is None or pulled.architecture(entry) == entry.arch:
        return ()
    return (
        f"{entry.id[:9]} is the gallery table's architecture ({entry.arch.short()}); the pulled checkpoint "
        f"is {pulled.architecture(entry).short()}: `lts profile {pulled.path}` measures that one",
    )


def _hub_config(repo_id: str, revision: str | None) -> JsonObject:
    """A Hub repository's config.json: from the Hugging Face cache, else downloaded (just that file)."""
    from lts_cli import hub

    snapshot = hub.snapshot(repo_id, revision, ["config.json"], local_only=True)
    if snapshot is None or not (snapshot / "config.json").is_file():
        where = (
            f"not a file or folder, a workspace model, a gallery id or a known architecture, "
            f"nor in the local Hugging Face cache {hub.cache_dir()}"
        )
        if hub.offline():
            raise LtsError(f"{repo_id!r} is {where} (HF_HUB_OFFLINE is set, so the Hub was not asked)")
        try:
            hub.check_repo(repo_id, revision=revision)
        except hub.HubUnavailable as exc:
            raise LtsError(f"{repo_id!r} is {where}; {exc}") from exc
        snapshot = hub.snapshot(repo_id, revision, ["config.json"], local_only=False)
        assert snapshot is not None
    path = snapshot / "config.json"
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise LtsError(f"{repo_id}/config.json cannot be read ({exc})") from exc
    if not isinstance(config, dict):
        raise LtsError(f"{repo_id}/config.json is not a JSON object")
    return config
