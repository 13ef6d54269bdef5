"""Flags reach the library: each command's one library call is patched (the way huggingface_hub's
CLI tests patch `snapshot_download`) and the arguments it got are checked. Milliseconds each."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lts_cli import exporting, generation, profiling, proxy_study, searching, training
from lts_cli.views import Lines, Note


class Shown:
    """A stand-in result: what `show` needs."""

    def __init__(self, data: Any = None) -> None:
        self.data = data if data is not None else {"ok": True}

    def to_dict(self) -> Any:
        return self.data

    def view(self) -> list[Any]:
        return [Lines(["shown"]), Note("a note")]


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> dict[str, tuple[tuple[Any, ...], dict[str, Any]]]:
    """Patch each command's library call; record what it was given."""
    seen: dict[str, tuple[tuple[Any, ...], dict[str, Any]]] = {}

    def recorder(name: str, result: Any = None):  # type: ignore[no-untyped-def]
        def call(*args: Any, **kwargs: Any) -> Any:
            seen[name] = (args, kwargs)
            return result if result is not None else Shown()

        return call

    monkeypatch.setattr(exporting, "export", recorder("export"))
    monkeypatch.setattr(generation, "run", recorder("generate"))
    monkeypatch.setattr(training, "train_reference", recorder("train"))
    monkeypatch.setattr(profiling, "profile", recorder("profile"))
    monkeypatch.setattr(proxy_study, "study", recorder("proxy"))
    monkeypatch.setattr(searching, "execute", recorder("search"))
    return seen


def test_export_flags(run_cli, calls, tmp_path: Path) -> None:
    result = run_cli(
        "export", "m", "-o", str(tmp_path / "out"), "--no-past", "--quantize", "INT8", "--optimize", "--force",
        "--allow-untrained", "--revision", "v1", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    args, kw = calls["export"]
    assert args == ("m",)
    assert kw["output"] == tmp_path / "out" and kw["past"] is False and kw["quantize"] == "int8"
    assert kw["optimize"] and kw["force"] and kw["allow_untrained"] and kw["revision"] == "v1"
    assert json.loads(result.stdout) == {"ok": True}


def test_export_defaults(run_cli, calls) -> None:
    assert run_cli("export", "m").exit_code == 0
    _, kw = calls["export"]
    assert kw["output"] is None and kw["past"] is True and kw["quantize"] is None and not kw["force"]


def test_generate_flags_become_one_config(run_cli, calls) -> None:
    result = run_cli(
        "generate", "m", "ROMEO:", "--max-new-tokens", "7", "--temperature", "0.5", "--top-p", "0.9", "--top-k", "3",
        "--seed", "11", "-n", "2", "--ignore-eos", "--backend", "ONNX", "--threads", "2", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    (ref, prompt, config, backend, threads, untrained, revision, on_text, _), _ = calls["generate"]
    assert (ref, prompt, backend, threads, untrained, revision, on_text) == (
        "m",
        "ROMEO:",
        "onnx",
        2,
        False,
        None,
        None,
    )
    assert (config.max_new_tokens, config.temperature, config.top_p, config.top_k) == (7, 0.5, 0.9, 3)
    assert (config.seed, config.num_return_sequences, config.stop_at_eos, config.greedy) == (11, 2, False, False)


def test_generate_streams_one_sample(run_cli, calls) -> None:
    assert run_cli("generate", "m", "--greedy").exit_code == 0
    (_, _, config, *_, on_text, _), _ = calls["generate"]
    assert config.greedy and callable(on_text)  # one sample, not --json: streamed as it comes


def test_train_flags_and_the_config_file(run_cli, calls, tmp_path: Path) -> None:
    config = tmp_path / "t.yaml"
    config.write_text("lr: 0.001\nmax_steps: 50\nwarmup_steps: 5\n")
    result = run_cli(
        "train", "gpt2_a9e3", "--config", str(config), "--max-steps", "9", "--batch-size", "3", "--seq-len", "16",
        "--eval-every", "4", "--name", "mine", "--restart", "--data", str(tmp_path), "--eval-tokens", "300",
        "--final-eval", "FULL", "--test", "--save-minutes", "2.5", "--precision", "bf16", "--max-time", "1h30m",
        "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    (ref, cfg, corpus, name, restart, _), _ = calls["train"]
    assert (ref, name, restart) == ("gpt2_a9e3", "mine", True)
    assert (cfg.max_steps, cfg.batch_size, cfg.seq_len, cfg.eval_every) == (9, 3, 16, 4)  # flags over the file
    assert (cfg.lr, cfg.warmup_steps) == (0.001, 5)  # the file over the defaults
    assert corpus.data == tmp_path and corpus.dataset is None
    assert (cfg.eval_tokens, cfg.final_eval, cfg.test, cfg.save_minutes) == (300, "full", True, 2.5)
    assert (cfg.precision, cfg.max_time, cfg.eval_on_start) == ("bf16", "1h30m", False)


def test_train_tokens_set_the_steps(run_cli, calls) -> None:
    assert run_cli("train", "m", "--tokens", "1000", "--batch-size", "2", "--seq-len", "32").exit_code == 0
    (_, cfg, *_), _ = calls["train"]
    assert cfg.max_steps == 16  # ceil(1000 / (2 x 32))


def test_profile_measurement_flags(run_cli, calls) -> None:
    result = run_cli(
        "profile", "--arch", "n_layer=2,d_model=64,d_inner=128,n_head=2", "--seq-len", "32", "--threads", "2",
        "--graph", "logits", "--adaptive", "--min-trials", "3", "--objectives", "onnx_latency,non_embedding_params",
        "--no-cache", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    (target, settings, objectives, where, use_cache, *_), _ = calls["profile"]
    assert target.arch.n_layer == 2 and target.arch.d_model == 64
    assert (settings.seq_len, settings.threads, settings.graph, settings.adaptive, settings.min_trials) == (
        32, 2, "logits", True, 3,
    )  # fmt: skip
    assert list(objectives) == ["onnx_latency", "non_embedding_params"] and use_cache is False
    assert where.executor == "local"


def test_search_flags_reach_the_config(run_cli, calls, lts_home: Path) -> None:
    result = run_cli(
        "search", "-g", "4", "--seed", "9", "--no-screen", "--objectives", "non_embedding_params,onnx_memory",
        "--seq-len", "64", "--min-params", "2e6", "--name", "r", "--no-cache", "--no-plots", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    (job, _, use_cache, plots, where), _ = calls["search"]
    c = job.config
    assert (c.generations, c.seed, c.screen, c.objectives) == (4, 9, False, ("non_embedding_params", "onnx_memory"))
    assert (c.measure.seq_len, c.min_params, job.run.name) == (64, 2e6, "r")
    assert use_cache is False and plots is False and where.executor == "local"


def test_proxy_selection_and_budget(run_cli, calls) -> None:
    result = run_cli(
        "proxy", "--archs", "gpt2_a9e3,gpt2_80fa", "--archs", "gpt2_8f51", "--max-steps", "20", "--seq-len", "32",
        "--tokens", "4096", "--workers", "2", "--eval-tokens", "512", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    (selection, corpus, budget, tokens, workers, _, eval_tokens), _ = calls["proxy"]
    assert selection.archs == ("gpt2_a9e3", "gpt2_80fa", "gpt2_8f51") and selection.sample is None
    assert (budget.max_steps, budget.seq_len, tokens, workers, eval_tokens) == (20, 32, 4096, 2, 512)
    assert corpus.name  # the embedded corpus, loaded by the command
