"""The emitted ONNX graph against transformers' GPT-2 for the same weights, and its file size."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
import transformers

from lts_cli import gpt2_onnx
from lts_cli.modeling import gpt2_config
from lts_cli.runtime import InMemorySession
from lts_cli.settings import MeasureSettings
from lts_cli.space import Arch

TINY = [
    Arch(n_layer=1, d_model=32, d_inner=64, n_head=2, vocab_size=512, n_positions=64),
    Arch(n_layer=2, d_model=64, d_inner=96, n_head=4, vocab_size=1000, n_positions=128),
    Arch(n_layer=2, d_model=48, d_inner=200, n_head=8, vocab_size=300, n_positions=40),
]


def trained_like_model(arch: Arch, seed: int = 0) -> transformers.GPT2LMHeadModel:
    """A transformers GPT-2 with non-trivial weights (layer norms and biases not at their init)."""
    config = gpt2_config(arch, bos_token_id=0, eos_token_id=0)
    torch.manual_seed(seed)
    model = transformers.GPT2LMHeadModel(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    return model


def session(model: onnx.ModelProto) -> ort.InferenceSession:
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("arch", TINY, ids=lambda a: a.short())
def test_graphs_match_transformers(arch: Arch) -> None:
    model = trained_like_model(arch)
    weights = {k: v.numpy() for k, v in model.state_dict().items()}
    rng = np.random.default_rng(1)
    for graph in ("next-token", "logits"):
        sess = session(gpt2_onnx.build(arch, weights, graph).embedded())
        for batch, seq in [(1, 1), (1, 17), (3, arch.n_positions)]:
            ids = rng.integers(0, arch.vocab_size, size=(batch, seq))
            got = sess.run(None, {"input_ids": ids})[0]
            with torch.no_grad():
                logits = model(torch.tensor(ids)).logits
            if graph == "logits":
                expected = logits.numpy()
                assert got.shape == (batch, seq, arch.vocab_size)
                np.testing.assert_allclose(got, expected, atol=2e-5, rtol=1e-4)
            else:
                expected = torch.softmax(logits[:, -1], dim=-1).numpy()
                assert got.shape == (batch, arch.vocab_size)
                np.testing.assert_allclose(got, expected, atol=1e-6, rtol=1e-4)
                np.testing.assert_allclose(got.sum(axis=-1), 1.0, atol=1e-5)


@pytest.mark.parametrize(
    "arch", [TINY[0], Arch(n_layer=4, d_model=128, d_inner=768, n_head=4)], ids=lambda a: a.short()
)
def test_file_size_is_exact_and_the_tied_embedding_is_stored_once(arch: Arch, tmp_path: Path) -> None:
    built = gpt2_onnx.build(arch)
    full = built.embedded()
    path = tmp_path / "model.onnx"
    onnx.save(full, path)
    assert built.file_size() == path.stat().st_size == len(full.SerializeToString())
    # 4 bytes per unique parameter plus a few KB of graph: the published memory definition.
    overhead = built.file_size() - 4 * arch.unique_params
    assert 0 < overhead < 2**20
    vocab_sized = [i.name for i in full.graph.initializer if arch.vocab_size in i.dims]
    assert vocab_sized == ["transformer.wte.weight"]
    onnx.checker.check_model(full)


def test_published_memory_of_the_smallest_gallery_model() -> None:
    built = gpt2_onnx.build(Arch(n_layer=4, d_model=128, d_inner=768, n_head=4))
    assert abs(built.file_size() / 2**20 - 29.06) < 1.0


def test_in_memory_session_equals_the_self_contained_model(tmp_path: Path) -> None:
    arch = TINY[1]
    built = gpt2_onnx.build(arch, graph="logits")
    ids = np.random.default_rng(2).integers(0, arch.vocab_size, size=(2, 33))
    expected = session(built.embedded()).run(None, {"input_ids": ids})[0]
    in_memory = InMemorySession(built, MeasureSettings(graph="logits"), tmp_path)
    np.testing.assert_array_equal(in_memory.run({"input_ids": ids}), expected)
    assert np.abs(expected).max() > 0.1  # not an all-zeros model


def test_random_weights_are_deterministic_and_not_constant() -> None:
    arch = TINY[0]
    a = dict(gpt2_onnx.random_weights(arch))
    b = dict(gpt2_onnx.random_weights(arch))
    assert a.keys() == b.keys()
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])
    wte = a["transformer.wte.weight"]
    assert 0.01 < wte.std() < 0.03


def test_wrong_weights_are_reported() -> None:
    from lts_cli.errors import LtsError

    arch = TINY[0]
    weights = dict(gpt2_onnx.random_weights(arch))
    weights["transformer.h.0.mlp.c_fc.weight"] = np.zeros((3, 3), dtype=np.float32)
    with pytest.raises(LtsError, match=r"mlp\.c_fc\.weight has shape"):
        gpt2_onnx.build(arch, weights)
    del weights["transformer.h.0.mlp.c_fc.weight"]
    with pytest.raises(LtsError, match=r"missing transformer\.h\.0\.mlp\.c_fc\.weight"):
        gpt2_onnx.build(arch, weights)


def _past(arch: Arch, batch: int) -> dict[str, np.ndarray]:
    empty = np.zeros((batch, arch.n_head, 0, arch.head_dim), dtype=np.float32)
    return {f"past_key_values.{i}.{kv}": empty for i in range(arch.n_layer) for kv in ("key", "value")}


@pytest.mark.parametrize("arch", TINY[1:], ids=lambda a: a.short())
def test_kv_cache_graph_matches_transformers_with_padding_and_a_decode_step(arch: Arch) -> None:
    model = trained_like_model(arch)
    weights = {k: v.numpy() for k, v in model.state_dict().items()}
    sess = session(gpt2_onnx.build(arch, weights, "causal-lm-with-past").embedded())
    rng = np.random.default_rng(3)
    ids = rng.integers(0, arch.vocab_size, size=(2, 9))
    mask = np.ones((2, 9), dtype=np.int64)
    mask[1, :3] = 0  # left padding in the second row
    pos = np.maximum(np.cumsum(mask, axis=1) - 1, 0)
    out = sess.run(None, {"input_ids": ids, "attention_mask": mask, "position_ids": pos, **_past(arch, 2)})
    with torch.no_grad():
        ref = model(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask), position_ids=torch.tensor(pos))
    valid = mask.astype(bool)
    np.testing.assert_allclose(out[0][valid], ref.logits.numpy()[valid], atol=2e-5, rtol=1e-4)
    cache = ref.cache if hasattr(ref, "cache") else ref.past_key_values
    np.testing.assert_allclose(out[1], cache.layers[0].keys.numpy(), atol=1e-5)

    step = rng.integers(0, arch.vocab_size, size=(2, 1))
    mask2 = np.concatenate([mask, np.ones((2, 1), dtype=np.int64)], axis=1)
    past = {
        f"past_key_values.{i}.{kv}": out[1 + 2 * i + (kv == "value")]
        for i in range(arch.n_layer)
        for kv in ("key", "value")
    }
    out2 = sess.run(None, {"input_ids": step, "attention_mask": mask2, "position_ids": pos[:, -1:] + 1, **past})
    with torch.no_grad():
        step_ids, positions = torch.tensor(step), torch.tensor(pos[:, -1:] + 1)
        ref2 = model(input_ids=step_ids, attention_mask=torch.tensor(mask2), position_ids=positions, cache=cache)
    np.testing.assert_allclose(out2[0], ref2.logits.numpy(), atol=2e-5, rtol=1e-4)
    assert out2[1].shape == (2, arch.n_head, 10, arch.head_dim)

    no_past = session(gpt2_onnx.build(arch, weights, "causal-lm").embedded())
    logits = no_past.run(None, {"input_ids": ids, "attention_mask": mask, "position_ids": pos})[0]
    np.testing.assert_allclose(logits[valid], ref.logits.numpy()[valid], atol=2e-5, rtol=1e-4)


def test_int8_is_close_small_and_fused(tmp_path: Path) -> None:
    arch = TINY[1]
    weights = {k: v.numpy() for k, v in trained_like_model(arch).state_dict().items()}
    fp32 = gpt2_onnx.build(arch, weights, "logits")
    int8 = gpt2_onnx.build(arch, weights, "logits", dtype="int8")
    assert int8.file_size() == len(int8.embedded().SerializeToString())
    # int8 weights: about a quarter of the fp32 file (biases, norms and positions stay fp32).
    assert int8.file_size() < 0.36 * fp32.file_size()
    ids = np.random.default_rng(4).integers(0, arch.vocab_size, size=(2, 20))
    options = ort.SessionOptions()
    options.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    expected = session(fp32.embedded()).run(None, {"input_ids": ids})[0]
    got = ort.InferenceSession(int8.embedded().SerializeToString(), options).run(None, {"input_ids": ids})[0]
    assert np.abs(got - expected).max() < 0.05 * np.abs(expected).max()
    # ONNX Runtime recognizes the pattern: every projection and the LM head become DynamicQuantizeMatMul.
    fused = [n.op_type for n in onnx.load(tmp_path / "optimized.onnx").graph.node]
    assert fused.count("DynamicQuantizeMatMul") == 4 * arch.n_layer + 1
    quantized = [i for i in int8.model.graph.initializer if i.data_type == onnx.TensorProto.INT8 and i.dims]
    assert sorted(i.name for i in quantized if arch.vocab_size in i.dims) == ["transformer.wte.weight_quantized"]
