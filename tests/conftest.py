"""Every test gets its own empty workspace; `run_cli` invokes `lts` in-process."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lts_cli.cli import app
from lts_cli.space import GPT2_EOS_ID

# A tiny architecture that measures in well under a second.
TINY = "n_layer=1,d_model=32,d_inner=64,n_head=2,vocab_size=512,n_positions=64"
TINY_FAST = ["--seq-len", "16", "--trials", "3", "--warmup", "1"]
# A tiny trainable GPT-2 (with the real 50257-token vocabulary) and a quick training recipe.
TINY_ARCH = {"n_layer": 1, "d_model": 32, "d_inner": 64, "n_head": 2, "n_positions": 128}
QUICK = ["--seq-len", "64", "--batch-size", "8", "--warmup-steps", "5", "--lr", "5e-3"]
# A search over tiny architectures: 3 generations of a few archs that measure in milliseconds.
TINY_SEARCH = """
screen: false  # the published procedure, every proposal timed (the screen has its own tests)
generations: 3
init_models: 3
random_mix: 2
crossovers: 2
max_unseen: 4
min_params: 0
space:
  n_layer: [1, 2]
  d_model: [32, 64]
  d_inner: [32, 64, 96]
  n_head: [2, 4]
  vocab_size: 256
  n_positions: 32
measure:
  seq_len: 16
  decode_context: 16
  warmup: 1
  trials: 3
  adaptive: false
"""


@pytest.fixture(autouse=True)
def lts_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "lts-home"
    monkeypatch.setenv("LTS_HOME", str(home))
    monkeypatch.delenv("LTS_DEBUG", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # the same behaviour on a networked machine as on this one
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-cache"))  # never the user's Hugging Face cache
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
    lines = result.stderr.splitlines()
    errors = [line for line in lines if line.startswith("Error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], result.stderr
    assert all(line.strip() for line in lines), f"a blank line on stderr: {result.stderr!r}"
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, (fragment, result.stderr)


@pytest.fixture(scope="session")
def token_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One token cache for every test that trains: the corpus is tokenized once per session."""
    return tmp_path_factory.mktemp("tokens")


@pytest.fixture
def shared_tokens(lts_home: Path, token_cache: Path) -> None:
    lts_home.mkdir(parents=True, exist_ok=True)
    (lts_home / "tokens").symlink_to(token_cache, target_is_directory=True)


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory, token_cache: Path) -> tuple[Path, dict]:
    """One tiny model trained once through the CLI for the whole test session: (model folder, metrics)."""
    from typer.testing import CliRunner

    from lts_cli.cli import app

    root = tmp_path_factory.mktemp("trained")
    (root / "home").mkdir()
    (root / "home" / "tokens").symlink_to(token_cache, target_is_directory=True)
    arch = root / "tiny.json"
    arch.write_text(json.dumps(TINY_ARCH))
    config = root / "train.yaml"
    config.write_text("eval_tokens: 2048\nfinal_eval: sample\neval_on_start: true\ntest: true\n")  # 4 batches of 8 x 64
    old = os.environ.get("LTS_HOME")
    os.environ["LTS_HOME"] = str(root / "home")
    try:
        result = CliRunner().invoke(
            app,
            ["train", str(arch), *QUICK, "--max-steps", "60", "--eval-every", "1000", "--save-every", "30",
             "--config", str(config), "--name", "tiny", "--json"],
        )  # fmt: skip
    finally:
        if old is None:
            del os.environ["LTS_HOME"]
        else:
            os.environ["LTS_HOME"] = old
    assert result.exit_code == 0, result.stderr
    return root / "home" / "models" / "tiny", json.loads(result.stdout)


def install(model: Path, home: Path, name: str = "tiny") -> Path:
    target = home / "models" / name
    shutil.copytree(model, target)
    return target


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A model folder as `lts train` leaves it, with random weights (built in a second, not trained):
    for tests of export, generation and file handling that do not need a model that has learned."""
    import transformers

    from lts_cli import workspace
    from lts_cli.modeling import gpt2_config
    from lts_cli.space import Arch
    from lts_cli.tokenizer import shipped as tokenizer

    folder = tmp_path_factory.mktemp("tiny-model") / "tiny"
    arch = Arch(**TINY_ARCH)
    transformers.set_seed(0)
    model = transformers.GPT2LMHeadModel(gpt2_config(arch, bos_token_id=GPT2_EOS_ID, eos_token_id=GPT2_EOS_ID))
    model.save_pretrained(folder)
    tokenizer().save_pretrained(folder)
    workspace.atomic_write_json(folder / "arch.json", arch.to_config())
    workspace.atomic_write_json(folder / "metrics.json", {"note": "random weights, for tests"})
    return folder


def measurement(arch, latency: float, settings=None, fingerprint=None, kind: str = "prefill"):  # type: ignore[no-untyped-def]
    """A valid Measurement of `arch` (made up: `latency` seconds) as lts caches them."""
    from lts_cli.settings import Measurement, MeasureSettings

    settings = settings or MeasureSettings()
    return Measurement(
        archid=arch.archid, arch=arch.to_dict(), settings=settings.key(kind), fingerprint=fingerprint or {},
        non_embedding_params=arch.non_embedding_params, latency_s=latency, latency_mean_s=latency, latency_cv=0.0,
        latency_ci95_rel=0.0, latency_min_s=latency, runs=3, stop="fixed", memory_mib=4 * arch.unique_params / 2**20,
        file_bytes=4 * arch.unique_params, peak_rss_mib=1.0, peak_rss_method="fake", build_s=0.0, session_s=0.0,
        timing_s=0.0, load_avg=0.0, measured_at="2026-12-01T00:00:00+00:00", kind=kind,
    )  # fmt: skip


def fake_measure(calls: list[str], interrupt_after: int | None = None):  # type: ignore[no-untyped-def]
    """A deterministic stand-in for measuring.measure (latency ~ FLOPs), so fronts are reproducible;
    `interrupt_after` measurements it raises KeyboardInterrupt (Ctrl-C). Patch it in with
    `monkeypatch.setattr(measurer, "measure", fake_measure(calls))`."""
    from lts_cli.objectives import REGISTRY

    def measure(arch, settings, kind="prefill", fingerprint=None, progress=None):  # type: ignore[no-untyped-def]
        if interrupt_after is not None and len(calls) == interrupt_after:
            raise KeyboardInterrupt
        calls.append(arch.archid)
        latency = next(o for o in REGISTRY.values() if o.source == kind).grows_with(arch, settings) / 1e9
        return measurement(arch, latency, settings, fingerprint, kind)

    return measure
