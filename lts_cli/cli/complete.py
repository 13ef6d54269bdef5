"""Shell completion of ids and names (`lts --install-completion`): read-only, quick, silent on any problem."""

from __future__ import annotations

from pathlib import Path


def archs(incomplete: str) -> list[str]:
    """Gallery ids and the architecture ids this workspace knows."""
    from lts_cli import workspace
    from lts_cli.store import known_archids

    return sorted(set(gallery(incomplete) + known_archids(workspace.home() / workspace.DB_NAME, incomplete)))


def gallery(incomplete: str) -> list[str]:
    """The published gallery ids."""
    from lts_cli.gallery import entries

    return [e.id for e in entries() if e.id.startswith(incomplete)]


def models(incomplete: str) -> list[str]:
    """Trained workspace models, then architectures (which name their trained model)."""
    from lts_cli import workspace

    names = sorted(p.name for p in _entries(workspace.home() / workspace.MODELS, incomplete) if p.is_dir())
    return names + [a for a in archs(incomplete) if a not in names]


def runs(incomplete: str) -> list[str]:
    """Search run names, newest first."""
    from lts_cli import workspace

    found = [p for p in _entries(workspace.home() / workspace.RUNS, incomplete) if (p / workspace.RUN_MARKER).is_file()]
    return [p.name for p in sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)]


def _entries(folder: Path, prefix: str) -> list[Path]:
    """The visible entries of `folder` whose names start with `prefix`."""
    if not folder.is_dir():
        return []
    return [p for p in folder.iterdir() if p.name.startswith(prefix) and not p.name.startswith(".")]
