"""Every test gets its own empty workspace; `run_cli` invokes `lts` in-process."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from lts_cli.cli import app

# A tiny architecture that measures in well under a second.
TINY = "n_layer=1,d_model=32,d_inner=64,n_head=2,vocab_size=512,n_positions=64"
TINY_FAST = ["--seq-len", "16", "--trials", "3", "--warmup", "1"]


@pytest.fixture(autouse=True)
def lts_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "lts-home"
    monkeypatch.setenv("LTS_HOME", str(home))
    monkeypatch.delenv("LTS_DEBUG", raising=False)
    return home


@pytest.fixture
def run_cli():  # type: ignore[no-untyped-def]
    runner = CliRunner()

    def run(*args: str):  # type: ignore[no-untyped-def]
        return runner.invoke(app, list(args))

    return run


def assert_user_error(result, *fragments: str, code: int = 1) -> None:  # type: ignore[no-untyped-def]
    """One `Error: ...` line, last on stderr, naming what was wrong; the right exit code; no traceback."""
    assert result.exit_code == code, (result.exit_code, result.output, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("Error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, (fragment, result.stderr)
