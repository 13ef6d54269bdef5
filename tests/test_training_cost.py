"""What training spends its time and memory on (issue 19): evaluation and checkpoints bounded, the
batch split to fit the memory with the same result, precision, --max-time, the cost said up front."""

from __future__ import annotations

from pathlib import Path

import pytest

from lts_cli import train_budget, train_plan, training
from lts_cli.corpus import embedded_corpus
from lts_cli.errors import LtsError
from lts_cli.references import architecture as resolve
from lts_cli.space import Arch
from lts_cli.training import TrainConfig
from lts_cli.views import Event
from tests.conftest import TINY_ARCH, assert_user_error

pytestmark = pytest.mark.slow  # trains models

TINY = Arch(**TINY_ARCH)
QUICK = dict(batch_size=2, seq_len=32, warmup_steps=1, lr=5e-3)


def _train(lts_home: Path, name: str, events: list[Event] | None = None, **config: object) -> training.TrainResult:
    arch = lts_home.parent / "tiny.json"
    arch.write_text('{"n_layer": 1, "d_model": 32, "d_inner": 64, "n_head": 2, "n_positions": 128}')
    return training.train(resolve(str(arch)), TrainConfig(**{**QUICK, **config}), embedded_corpus(), name=name,
                          on_event=events.append if events is not None else None)  # fmt: skip


def test_a_short_run_spends_little_on_evaluation_and_checkpoints(lts_home: Path, shared_tokens: None) -> None:
    events: list[Event] = []
    result = _train(lts_home, "short", events, max_steps=5)
    m = result.metrics
    assert m["initial_val_loss"] is None and m["test_loss"] is None  # no start evaluation, no test split
    assert [e.data for e in events if e.kind == "saved"] == [5]  # one checkpoint, at the end
    assert [e.kind for e in events].count("eval") == 0  # no periodic evaluation in 5 steps
    validation = m["evaluated_tokens"]["validation"]
    assert 4 * 32 <= validation < m["corpus_tokens"]["validation"]  # cut to a tenth of the training time
    assert any(e.kind == "note" and "final validation on" in (e.line or "") for e in events)
    assert set(m["seconds"]) == {"tokenize", "train", "evaluate", "checkpoint", "other"}
    assert (m["precision"], m["micro_batch"], m["gradient_accumulation"]) == ("fp32", 2, 1)
    assert any(e.kind == "estimate" and "training tokens/s here" in (e.line or "") for e in events)


def test_checkpoints_every_few_minutes(lts_home: Path, shared_tokens: None) -> None:
    events: list[Event] = []
    _train(lts_home, "timed", events, max_steps=4, save_minutes=1e-6)
    assert [e.data for e in events if e.kind == "saved"] == [1, 2, 3, 4]


def test_the_start_evaluation_and_the_test_split_on_request(lts_home: Path, shared_tokens: None) -> None:
    m = _train(
        lts_home, "asked", max_steps=3, eval_on_start=True, test=True, eval_tokens=256, final_eval="sample"
    ).metrics
    # Untrained, the loss is about that of a uniform guess over the vocabulary, ln(50257) = 10.825 (here 3% under).
    assert m["initial_val_loss"] == pytest.approx(10.825, rel=0.05)
    assert m["evaluated_tokens"] == {"initial_validation": 256, "validation": 256, "test": 256}
    assert m["test_loss"] > 0


def test_a_split_batch_trains_like_the_whole_one(lts_home: Path, shared_tokens: None, monkeypatch) -> None:
    """Batch 8 as 4 x 2 (gradient accumulation) against batch 8 at once, no dropout: the same losses."""
    config = dict(max_steps=3, batch_size=8, dropout=0.0, eval_tokens=256, final_eval="sample")
    whole = _train(lts_home, "whole", **config).metrics
    fits_two = train_budget.train_step(TINY, 32, 2).total / train_budget.FREE_SHARE + 1
    assert train_budget.train_step(TINY, 32, 4).total > fits_two * train_budget.FREE_SHARE
    monkeypatch.setattr(train_plan, "free_memory", lambda cuda: int(fits_two))
    events: list[Event] = []
    split = _train(lts_home, "split", events, **config).metrics
    assert (split["micro_batch"], split["gradient_accumulation"]) == (2, 4)
    assert any(e.kind == "note" and (e.line or "").startswith("batch 8 as 4 x 2 to fit") for e in events)
    assert split["val_loss"] == pytest.approx(whole["val_loss"], abs=1e-4)
    assert split["train_loss_mean"] == pytest.approx(whole["train_loss_mean"], abs=1e-4)


def test_no_room_for_one_sequence(run_cli, lts_home: Path, shared_tokens: None, monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setattr(train_plan, "free_memory", lambda cuda: 10**6)
    arch = tmp_path / "tiny.json"
    arch.write_text('{"n_layer": 1, "d_model": 32, "d_inner": 64, "n_head": 2, "n_positions": 128}')
    result = run_cli("train", str(arch), "--max-steps", "2", "--seq-len", "32", "--batch-size", "2")
    assert_user_error(result, "one sequence of --seq-len 32 needs about", "lower --seq-len")


def test_bf16_on_the_cpu(lts_home: Path, shared_tokens: None) -> None:
    m = _train(lts_home, "bf16", max_steps=3, precision="bf16", eval_tokens=256, final_eval="sample").metrics
    assert m["precision"] == "bf16" and 0 < m["val_loss"] < 12
    card = (lts_home / "models" / "bf16" / "README.md").read_text()
    assert "bf16" in card


def test_fp16_needs_a_gpu(run_cli, tmp_path: Path) -> None:
    arch = tmp_path / "tiny.json"
    arch.write_text('{"n_layer": 1, "d_model": 32, "d_inner": 64, "n_head": 2, "n_positions": 128}')
    result = run_cli("train", str(arch), "--precision", "fp16", "--max-steps", "1", "--seq-len", "32")
    assert_user_error(result, "--precision fp16 needs a CUDA device", code=2)


def test_max_time_sets_the_steps(lts_home: Path, shared_tokens: None) -> None:
    events: list[Event] = []
    m = _train(lts_home, "timed", events, max_steps=100000, max_time="6s", eval_tokens=256, final_eval="sample").metrics
    note = next(e.line for e in events if e.kind == "note" and "--max-time 6s" in (e.line or ""))
    assert f"{m['steps']:,} steps fit it here" in note
    assert 1 <= m["steps"] < 100000  # how long they took is the machine's business: no timing asserted here


def test_max_time_steps_from_the_calibrated_step() -> None:
    # 10 s less the 10% reserve is 9 s; at 0.5 s a step (the calibrator's answer), 17 steps fit (not 18:
    # calibrating itself took a little of the 9 s)
    plan = train_plan.make(TINY, TrainConfig(**QUICK, max_time="10s"), Path("/nonexistent"), 1, lambda plan: 0.5)
    assert plan.max_steps == 17


def test_max_time_that_fits_no_step() -> None:
    with pytest.raises(LtsError, match="leaves no time to train"):
        train_plan.make(TINY, TrainConfig(**QUICK, max_time="0.001s"), Path("/nonexistent"), 1, lambda plan: 1.0)
