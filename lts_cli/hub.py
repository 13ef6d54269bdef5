"""The Hugging Face Hub, asked once and quickly: is this repository there, or why can we not tell.

One metadata request through huggingface_hub's own session (its endpoint, proxies from the
environment, `HF_HUB_OFFLINE`), without its download retries, so that an offline machine gets its
answer at once and an unknown name is told apart from an unreachable Hub.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from lts_cli.errors import LtsError, NotFound, first_line

TIMEOUT_S = 10.0


class HubUnavailable(LtsError):
    """The Hub could not be asked: offline mode, or no connection."""


def offline() -> bool:
    """`HF_HUB_OFFLINE` (or `TRANSFORMERS_OFFLINE`) as huggingface_hub reads it, also when set after import."""
    from huggingface_hub import constants

    values = (os.environ.get("HF_HUB_OFFLINE"), os.environ.get("TRANSFORMERS_OFFLINE"))
    return bool(constants.HF_HUB_OFFLINE) or any(
        v is not None and v.upper() in ("1", "ON", "YES", "TRUE") for v in values
    )


def check_repo(repo_id: str, repo_type: str = "model", revision: str | None = None) -> None:
    """Return if the Hub has `repo_id` (a model or dataset); raise NotFound if it says it does not,
    HubUnavailable if it cannot be asked."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError, RevisionNotFoundError

    if offline():
        raise HubUnavailable("HF_HUB_OFFLINE is set, so the Hugging Face Hub was not asked")
    api = HfApi()
    info = api.dataset_info if repo_type == "dataset" else api.model_info
    try:
        info(repo_id, revision=revision, timeout=TIMEOUT_S)
    except RevisionNotFoundError as exc:
        raise NotFound(f"the Hugging Face Hub has no revision {revision!r} of {repo_type} {repo_id!r}") from exc
    except RepositoryNotFoundError as exc:
        raise NotFound(
            f"the Hugging Face Hub has no {repo_type} {repo_id!r} (or it is private: log in with `hf auth login`)"
        ) from exc
    except HfHubHTTPError as exc:
        raise HubUnavailable(f"the Hugging Face Hub answered {first_line(exc)}") from exc
    except Exception as exc:  # connection errors: the HTTP client's own types
        raise HubUnavailable(f"the Hugging Face Hub is unreachable ({first_line(exc)})") from exc


def cache_dir() -> Path:
    """Where huggingface_hub keeps downloads (HF_HUB_CACHE, HF_HOME/hub, or its default), read now."""
    from huggingface_hub import constants

    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]) / "hub"
    return Path(constants.HF_HUB_CACHE)


def snapshot(repo_id: str, revision: str | None, patterns: list[str], local_only: bool) -> Path | None:
    """The snapshot folder huggingface_hub resolves for `repo_id` at `revision`, downloading the files
    that match `patterns` unless `local_only` (then None when the cache does not have the repository)."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        path = snapshot_download(
            repo_id, revision=revision, allow_patterns=patterns, cache_dir=cache_dir(), local_files_only=local_only
        )
    except LocalEntryNotFoundError:
        if local_only:
            return None
        raise HubUnavailable(f"the Hugging Face Hub did not send {repo_id}") from None
    except Exception as exc:  # the Hub client's errors: HTTP, repository or revision not found
        raise LtsError(f"could not download from {repo_id}: {type(exc).__name__}: {first_line(exc)}") from exc
    return Path(str(path))


@dataclass(frozen=True)
class PlannedFile:
    path: str  # in the repository
    size: int | None  # bytes, from the Hub's metadata
    cached: bool


def plan(repo_id: str, revision: str | None, patterns: list[str]) -> list[PlannedFile]:
    """What a download of `patterns` from `repo_id` would fetch, asked of the Hub (huggingface_hub's
    dry run: file names and sizes from its metadata, and which are in the cache already)."""
    from huggingface_hub import snapshot_download

    check_repo(repo_id, revision=revision)
    try:
        infos = snapshot_download(
            repo_id, revision=revision, allow_patterns=patterns, cache_dir=cache_dir(), dry_run=True
        )
    except Exception as exc:
        raise HubUnavailable(f"the Hugging Face Hub could not list {repo_id} ({first_line(exc)})") from exc
    return [PlannedFile(i.filename, i.file_size, i.is_cached) for i in infos]


def free_bytes(path: Path) -> int:
    """Free space on the file system that holds `path` (or its nearest existing parent)."""
    import shutil

    while not path.exists() and path != path.parent:
        path = path.parent
    return shutil.disk_usage(path).free
