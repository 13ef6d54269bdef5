"""`lts generate` and model references at their edges: a context that cuts the text short, a prompt
that does not fit, an export folder given to torch, unknown names and an unreachable Hub."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import assert_user_error, install

A_ID = "gpt2_a9e3147996070fda25af4b39ed95b6a18d6d0402"


@pytest.mark.slow  # builds and exports a model with transformers
@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_generation_says_when_the_context_cuts_it_short(run_cli, tiny_model: Path, tmp_path: Path, backend) -> None:
    model = tmp_path / "model"
    import shutil

    shutil.copytree(tiny_model, model)
    prompt = "word " * 100  # 100 tokens of a 128-token context
    result = run_cli("generate", str(model), prompt, "--max-new-tokens", "50", "--greedy", "--ignore-eos",
                     "--backend", backend, "--json")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    room = 128 - data["prompt_tokens"]
    assert room < 50 and data["new_tokens"] == data["max_new_tokens"] == room and data["requested_new_tokens"] == 50
    assert f"leaves room for {room} of the 50 new tokens" in result.stderr


@pytest.mark.slow  # builds and exports a model with transformers
@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_a_refused_prompt_prints_nothing_on_stdout(run_cli, tiny_model: Path, tmp_path: Path, backend) -> None:
    import shutil

    model = tmp_path / "model"
    shutil.copytree(tiny_model, model)
    result = run_cli("generate", str(model), "word " * 200, "--backend", backend)
    assert_user_error(result, "the model's context is 128", "at most 127 tokens")
    assert result.stdout == ""
    assert not (model / "onnx").exists() and "exporting" not in result.stderr  # refused before any export


@pytest.mark.slow  # builds and exports a model with transformers
def test_an_onnx_folder_given_to_the_torch_backend(run_cli, tiny_model: Path, tmp_path: Path) -> None:
    folder = tmp_path / "onnx"
    assert run_cli("export", str(tiny_model), "-o", str(folder)).exit_code == 0
    assert_user_error(run_cli("generate", str(folder), "hi"), "ONNX export", "--backend onnx")


def test_an_unknown_model_name_fails_fast_offline(run_cli) -> None:
    start = time.perf_counter()
    result = run_cli("generate", "nobody/no-such-model", "hi")
    assert_user_error(result, "HF_HUB_OFFLINE is set", "nor in the local Hugging Face cache")
    assert time.perf_counter() - start < 5


def test_an_unreachable_hub_fails_fast(run_cli, monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import constants

    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)  # as read when huggingface_hub was imported
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")  # nothing listens on the discard port
    start = time.perf_counter()
    assert_user_error(run_cli("generate", "nobody/no-such-model", "hi"), "Hugging Face Hub is unreachable")
    assert time.perf_counter() - start < 5


def test_local_errors_are_not_reported_as_hub_errors(run_cli, tmp_path: Path) -> None:
    short = run_cli("generate", "gpt2_", "hi")  # a prefix needs 4 hex digits; never a Hub id
    assert_user_error(short, "unknown architecture 'gpt2_'", "at least 4 hex digits")
    assert "Hub" not in short.stderr
    broken = tmp_path / "arch.yaml"
    broken.write_text("n_layer: [2\n")
    result = run_cli("generate", str(broken), "hi")
    assert_user_error(result, "invalid YAML at line")
    assert "Hub" not in result.stderr


@pytest.mark.slow  # builds and exports a model with transformers
def test_the_cause_is_kept_for_lts_debug(tiny_model: Path, tmp_path: Path, lts_home: Path) -> None:
    model = install(tiny_model, lts_home, "damaged")
    (model / "model.safetensors").write_bytes(b"\x00" * 64)
    cmd = [sys.executable, "-m", "lts_cli", "generate", str(model), "hi"]
    env = {**os.environ, "LTS_HOME": str(lts_home), "LTS_DEBUG": "1"}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode != 0
    assert "The above exception was the direct cause of the following exception" in done.stderr
    assert "is not a readable safetensors file" in done.stderr
