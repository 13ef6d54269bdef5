"""`lts export`, `lts generate --backend onnx` and `lts profile DIR` on the tiny trained model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest

from lts_cli.space import Arch
from tests.conftest import TINY_ARCH, assert_user_error, install

pytestmark = pytest.mark.slow  # trains or exports models


def export_json(run_cli, *args: str) -> dict:  # type: ignore[no-untyped-def]
    result = run_cli("export", *args, "--json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_export_layout_and_validation(run_cli, trained, lts_home: Path) -> None:
    install(trained[0], lts_home)
    info = export_json(run_cli, "tiny")
    folder = Path(info["path"])
    assert folder == lts_home / "models" / "tiny" / "onnx"
    names = {p.name for p in folder.iterdir()}
    assert {"model.onnx", "config.json", "tokenizer.json", "arch.json", "export.json"} <= names
    assert info["graph"] == "causal-lm-with-past" and info["dtype"] == "fp32" and not info["untrained"]
    v = info["validation"]
    assert v["prefill_max_abs_diff"] < 1e-3 and v["decode_max_abs_diff"] < 1e-3 and v["max_abs_logit"] > 1
    model = onnx.load(folder / "model.onnx")
    onnx.checker.check_model(model)
    inputs = [i.name for i in model.graph.input]
    assert inputs[:3] == ["input_ids", "attention_mask", "position_ids"] and "past_key_values.0.key" in inputs
    assert [o.name for o in model.graph.output] == ["logits", "present.0.key", "present.0.value"]
    # The tied embedding is stored once: 4 bytes per unique parameter plus a little graph.
    assert 0 < info["file_bytes"] - 4 * Arch(**TINY_ARCH).unique_params < 2**20

    assert_user_error(run_cli("export", "tiny"), "holds an lts export already; add --force")
    assert export_json(run_cli, "tiny", "--force")["path"] == str(folder)


def test_greedy_onnx_equals_torch_and_sampling_repeats(run_cli, trained, lts_home: Path) -> None:
    install(trained[0], lts_home)
    common = ["ROMEO:", "--greedy", "--max-new-tokens", "40", "--ignore-eos", "--json"]
    torch_out = json.loads(run_cli("generate", "tiny", *common).stdout)
    made = run_cli("generate", "tiny", *common, "--backend", "onnx")  # exports on the fly, once
    assert made.exit_code == 0, made.stderr
    assert "exporting to" in made.stderr and (lts_home / "models" / "tiny" / "onnx" / "export.json").is_file()
    onnx_out = json.loads(made.stdout)
    assert torch_out["new_tokens"] == onnx_out["new_tokens"] == 40
    assert onnx_out["texts"] == torch_out["texts"]
    assert onnx_out["decode_ms_per_token"] > 0 and onnx_out["prefill_s"] > 0
    again = run_cli("generate", "tiny", *common, "--backend", "onnx")
    assert "exporting" not in again.stderr
    sampled = [
        run_cli("generate", "tiny", "ROMEO:", "--backend", "onnx", "--seed", "5", "--max-new-tokens", "15")
        for _ in range(2)
    ]
    assert (
        sampled[0].exit_code == 0 and sampled[0].stdout == sampled[1].stdout and sampled[0].stdout.startswith("ROMEO:")
    )


def test_int8_and_optimized_exports(run_cli, trained, lts_home: Path) -> None:
    install(trained[0], lts_home)
    fp32 = export_json(run_cli, "tiny")
    int8 = export_json(run_cli, "tiny", "--quantize", "int8")
    assert Path(int8["path"]).name == "onnx-int8" and int8["dtype"] == "int8"
    assert int8["file_bytes"] < 0.3 * fp32["file_bytes"]
    v = int8["validation"]
    assert v["int8_perplexity"] <= v["fp32_perplexity"] * 1.10 and v["fp32_perplexity"] > 1
    optimized = export_json(run_cli, "tiny", "--optimize")
    assert optimized["optimized"]["fused_operators"]  # e.g. FastGelu, FusedMatMul
    assert optimized["validation"]["decode_max_abs_diff"] < 1e-3
    out = json.loads(run_cli("generate", int8["path"], "ROMEO:", "--backend", "onnx", "--greedy", "--json").stdout)
    assert out["source"] == "onnx (int8)" and out["new_tokens"] >= 1


def test_profile_an_export_folder(run_cli, trained, lts_home: Path) -> None:
    install(trained[0], lts_home)
    folder = export_json(run_cli, "tiny")["path"]
    result = run_cli("profile", folder, "--seq-len", "16", "--trials", "3", "--warmup", "1", "--json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["prefill"]["n"] == 3 and data["prefill"]["median"] > 0 and data["prefill"]["tokens"] == 16
    assert data["decode_per_token"]["median"] > 0 and data["decode_per_token"]["context"] == 16
    assert data["file_mib"] > 1 and data["peak_rss_mib"] >= 0
    table = run_cli("profile", folder, "--seq-len", "16", "--trials", "2", "--warmup", "0")
    assert "decode latency per token" in table.stdout


def test_untrained_export_needs_the_flag(run_cli, lts_home: Path) -> None:
    arch = lts_home.parent / "tiny.json"
    arch.write_text(json.dumps(TINY_ARCH))
    run_cli("profile", str(arch), "--seq-len", "8", "--trials", "2")  # makes the archid known
    archid = Arch(**TINY_ARCH).archid
    assert_user_error(run_cli("export", archid), "without a trained model", "--allow-untrained")
    result = run_cli("export", archid, "--allow-untrained", "--json")
    assert result.exit_code == 0 and "RANDOM weights" in result.stderr
    info = json.loads(result.stdout)
    assert info["untrained"] and "-untrained" in info["path"]


def test_no_past_export(run_cli, trained, lts_home: Path) -> None:
    install(trained[0], lts_home)
    info = export_json(run_cli, "tiny", "--no-past")
    assert info["graph"] == "causal-lm" and "decode_max_abs_diff" not in info["validation"]
    inputs = [i.name for i in onnx.load(Path(info["path"]) / "model.onnx").graph.input]
    assert inputs == ["input_ids", "attention_mask", "position_ids"]
    assert_user_error(run_cli("generate", info["path"], "hi", "--backend", "onnx"), "without the KV cache")


def test_bad_export_input(run_cli, trained, lts_home: Path) -> None:
    install(trained[0], lts_home)
    assert_user_error(run_cli("export", "tiny", "--quantize", "int4"), "'--quantize'", "'int4' is not one of", code=2)
    assert_user_error(run_cli("generate", "tiny", "hi", "--backend", "tpu"), "'torch', 'onnx'", code=2)
    bert = install(trained[0], lts_home, "bert-like")
    config = json.loads((bert / "config.json").read_text())
    (bert / "config.json").write_text(json.dumps({**config, "model_type": "bert"}))
    (bert / "arch.json").unlink()
    assert_user_error(run_cli("export", str(bert)), "describes a 'bert' model", "GPT-2 only")

    folder = Path(export_json(run_cli, "tiny")["path"])
    (folder / "model.onnx").write_bytes(b"not an onnx model" * 10)
    assert_user_error(
        run_cli("profile", str(folder), "--seq-len", "8", "--trials", "2"), "cannot be loaded by ONNX Runtime"
    )
    assert_user_error(run_cli("generate", str(folder), "hi", "--backend", "onnx"), "cannot be loaded by ONNX Runtime")


def test_optimum_can_load_the_export(run_cli, trained, lts_home: Path) -> None:
    optimum = pytest.importorskip("optimum.onnxruntime")
    install(trained[0], lts_home)
    folder = export_json(run_cli, "tiny")["path"]
    model = optimum.ORTModelForCausalLM.from_pretrained(folder)
    ids = np.array([[15496, 995]])
    assert model(input_ids=ids, attention_mask=np.ones_like(ids)).logits.shape[-1] == 50257


def test_failed_validation_leaves_nothing(run_cli, trained, lts_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from lts_cli import exporting

    install(trained[0], lts_home)
    monkeypatch.setattr(exporting, "FP32_TOLERANCE", 0.0)
    assert_user_error(run_cli("export", "tiny"), "validation failed", "nothing was written")
    left = [p.name for p in (lts_home / "models" / "tiny").iterdir() if p.name.startswith((".", "onnx"))]
    assert left == [".lts-manifest.json"]  # the model's own; no half-written export beside it
