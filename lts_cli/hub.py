"""The Hugging Face Hub, asked once and quickly: is this repository there, or why can we not tell.

One metadata request through huggingface_hub's own session (its endpoint, proxies from the
environment, `HF_HUB_OFFLINE`), without its download retries, so that an offline machine gets its
answer at once and an unknown name is told apart from an unreachable Hub.
"""

from __future__ import annotations

import os

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
