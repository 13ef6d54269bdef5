"""Resuming training: a checkpoint is used only when it is complete and its contents read (issue 18,
class 3)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from lts_cli.views import Event
from tests.conftest import TINY_ARCH

A_ID = "gpt2_a9e3147996070fda25af4b39ed95b6a18d6d0402"


@pytest.mark.slow
def test_a_partial_checkpoint_is_skipped_and_training_resumes_from_the_previous_one(
    lts_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shared_tokens: None
) -> None:
    import transformers

    from lts_cli import training
    from lts_cli.checkpoints import checkpoint_problem
    from lts_cli.corpus import embedded_corpus
    from lts_cli.references import architecture as resolve
    from lts_cli.training import TrainConfig

    arch = tmp_path / "tiny.json"
    arch.write_text(json.dumps(TINY_ARCH))
    target, corpus = resolve(str(arch)), embedded_corpus()
    config = TrainConfig(
        max_steps=12,
        batch_size=4,
        seq_len=32,
        warmup_steps=2,
        eval_every=100,
        save_every=5,
        eval_tokens=256,
        final_eval="sample",
    )
    straight = training.train(target, config, corpus, name="straight")

    # Killed while the Trainer writes checkpoint-10: the weights are written, the trainer state is not.
    real_save = transformers.Trainer._save_rng_state

    def killed_while_saving(self, output_dir):  # type: ignore[no-untyped-def]
        if output_dir.endswith("checkpoint-10"):
            raise KeyboardInterrupt
        return real_save(self, output_dir)

    monkeypatch.setattr(transformers.Trainer, "_save_rng_state", killed_while_saving)
    with pytest.raises(KeyboardInterrupt):
        training.train(target, config, corpus, name="killed")
    monkeypatch.setattr(transformers.Trainer, "_save_rng_state", real_save)
    work = lts_home / "models" / ".killed.training"
    assert checkpoint_problem(work / "checkpoint-5") is None
    assert "interrupted while saving" in (checkpoint_problem(work / "checkpoint-10") or "")

    events: list[Event] = []
    resumed = training.train(target, config, corpus, name="killed", on_event=events.append)
    skipped = [e.data for e in events if e.kind == "checkpoint-skipped"]
    assert [(d["checkpoint"], d["resume_from"].name) for d in skipped] == [("checkpoint-10", "checkpoint-5")]
    assert resumed.metrics["resumed_from_step"] == 5
    assert resumed.metrics["val_loss"] == pytest.approx(straight.metrics["val_loss"], abs=1e-4)

    # Issue 18: a checkpoint of the right size whose weights are random bytes is skipped the same way.
    def stop_at_eleven(event: Event) -> None:
        if event.kind == "step" and event.data == 11:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        training.train(target, config, corpus, name="corrupt", on_event=stop_at_eleven)
    weights = lts_home / "models" / ".corrupt.training" / "checkpoint-10" / "model.safetensors"
    weights.write_bytes(os.urandom(weights.stat().st_size))
    events.clear()
    again = training.train(target, config, corpus, name="corrupt", on_event=events.append)
    skipped = [e.data for e in events if e.kind == "checkpoint-skipped"]
    assert [(d["checkpoint"], d["resume_from"].name) for d in skipped] == [("checkpoint-10", "checkpoint-5")]
    assert "model.safetensors does not read" in skipped[0]["problem"]
    assert again.metrics["val_loss"] == pytest.approx(straight.metrics["val_loss"], abs=1e-4)


def test_checkpoint_completeness(tmp_path: Path) -> None:
    from lts_cli.checkpoints import checkpoint_problem, record_checkpoint

    folder = tmp_path / "checkpoint-5"
    folder.mkdir()
    assert checkpoint_problem(folder) == "empty"
    (folder / "training_args.txt").write_bytes(b"w" * 1000)
    (folder / "trainer_state.json").write_text("{}")
    assert "no lts-checkpoint.json" in (checkpoint_problem(folder) or "")
    record_checkpoint(folder)
    assert checkpoint_problem(folder) is None
    (folder / "trainer_state.json").write_text("{x")  # the same size, not JSON
    assert "trainer_state.json does not read" in (checkpoint_problem(folder) or "")
    (folder / "trainer_state.json").write_text("{}")
    (folder / "training_args.txt").write_bytes(b"w" * 10)
    assert checkpoint_problem(folder) == "training_args.txt is truncated (10 of 1,000 bytes)"
    (folder / "training_args.txt").unlink()
    assert checkpoint_problem(folder) == "training_args.txt is missing"
    (folder / "lts-checkpoint.json").write_text("{not json")
    assert checkpoint_problem(folder) == "lts-checkpoint.json is damaged"
