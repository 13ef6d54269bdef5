"""Emit a GPT-2 decoder as an ONNX graph straight from an `Arch` and numpy weights (no torch).

Why not `torch.onnx.export`: with torch 2.13 / transformers 5 the dynamo exporter costs 6-19 s per
architecture (about 10 s of it fixed) and 2.3 GB peak for a 50M model, and the legacy TorchScript
exporter is faster but stores the tied embedding twice, which corrupts the memory objective. The
search exports every candidate once, so export time is the search's overhead. Emitting the graph
from the config with `onnx.helper` takes well under a second, stores the tied embedding once, and
(tests/test_gpt2_onnx.py) gives the same logits as the transformers model for the same weights.

Weights use the transformers GPT-2 state-dict names (`transformer.h.0.attn.c_attn.weight`, ...),
whose Conv1D weights are already laid out [in, out], so a trained model's weights drop straight in.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from lts_cli.errors import LtsError
from lts_cli.space import Arch
from lts_cli.weights import gpt2_shapes

OPSET = 20  # Gelu(approximate="tanh") is opset 20; LayerNormalization 17. ORT >= 1.17 runs it.
IR_VERSION = 9  # the IR of opset 20, so older ONNX Runtime releases still load the file
LN_EPS = 1e-5  # GPT2Config.layer_norm_epsilon

# What the graph computes. "next-token" is the published latency objective (archai's ONNX forward):
# input_ids -> decoder over the whole sequence -> LM head on the last position -> softmax, [batch, vocab].
# "logits" is the plain causal-LM forward with the full [batch, seq, vocab] logits. The "causal-lm"
# graphs have the Hugging Face / optimum interface (input_ids, attention_mask, position_ids -> logits),
# "causal-lm-with-past" with the KV cache (past_key_values.{i}.key/value in, present.{i}.key/value out).
GRAPHS = ("next-token", "logits", "causal-lm", "causal-lm-with-past")
# Bump when the emitted graph changes, so cached measurements of the old graph are not reused.
GRAPH_VERSION = 1
WEIGHTS_FILE = "weights.bin"  # where the weight stubs point (see OnnxGpt2)
DTYPES = ("fp32", "int8")
# int8 weights use 7 bits (ONNX Runtime's "reduce_range"): on x86 CPUs without VNNI (AVX2, AVX-512F), ORT's
# u8 x s8 kernels add pairs of products in int16, and 255 * 127 * 2 saturates; 255 * 63 * 2 does not.
INT8_WEIGHT_MAX = 63
QUANTIZED_LINEARS = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")


def random_weights(arch: Arch, seed: int = 0, pool_size: int = 1 << 20) -> Iterator[tuple[str, np.ndarray]]:
    """Random fp32 weights for timing, yielded one tensor at a time to keep peak memory low.

    Values are tiled from a small N(0, 0.02) pool at random offsets: drawing 100M fresh normals
    costs seconds and the kernels' speed does not depend on the values. Layer-norm gains are 1.
    """
    rng = np.random.default_rng(seed)
    pool = rng.normal(0.0, 0.02, size=pool_size).astype(np.float32)
    doubled = np.concatenate([pool, pool])
    for name, shape in gpt2_shapes(arch).items():
        if name.endswith(("ln_1.weight", "ln_2.weight", "ln_f.weight")):
            yield name, np.ones(shape, dtype=np.float32)
            continue
        size = math.prod(shape)
        flat = np.empty(size, dtype=np.float32)
        start = int(rng.integers(pool_size))
        for pos in range(0, size, pool_size):
            n = min(pool_size, size - pos)
            flat[pos : pos + n] = doubled[start : start + n]
        yield name, flat.reshape(shape)


@dataclass
class OnnxGpt2:
    """An emitted model: the graph with its weights held apart as numpy arrays.

    In `model` every weight is a stub pointing into `WEIGHTS_FILE` (external data), so the graph
    serializes in microseconds and ONNX Runtime can take the arrays without a copy (measuring.py).
    `embedded()` gives the ordinary single-file model; `file_size()` is that file's exact size.
    """

    arch: Arch
    graph: str
    model: onnx.ModelProto
    weights: dict[str, np.ndarray]

    def file_size(self) -> int:
        """Bytes of `embedded().SerializeToString()`, computed without building it."""
        return _embedded_size(self.model, {name: array.nbytes for name, array in self.weights.items()})

    def embedded(self) -> onnx.ModelProto:
        """The self-contained model (weights as raw data): what `lts export` writes. Copies the weights."""
        full = onnx.ModelProto()
        full.CopyFrom(self.model)
        for init in full.graph.initializer:
            if init.name in self.weights:
                init.ClearField("external_data")
                init.ClearField("data_location")
                init.raw_data = self.weights[init.name].tobytes()
        return full


def _varint_len(n: int) -> int:
    return max(1, (n.bit_length() + 6) // 7)


def _embedded_size(model: onnx.ModelProto, nbytes: Mapping[str, int]) -> int:
    """The size of `model` with the weights named in `nbytes` stored inline as raw data."""
    graph_size = model.graph.ByteSize()
    delta = 0
    for stub in model.graph.initializer:
        if stub.name not in nbytes:
            continue
        base = TensorProto(name=stub.name, dims=stub.dims, data_type=stub.data_type).ByteSize()
        n = nbytes[stub.name]
        full = base + 1 + _varint_len(n) + n  # raw_data: tag, length, bytes
        delta += (_varint_len(full) + full) - (_varint_len(stub.ByteSize()) + stub.ByteSize())
    full_graph = graph_size + delta
    return model.ByteSize() - _varint_len(graph_size) - graph_size + _varint_len(full_graph) + full_graph


def file_size(arch: Arch, graph: str = "next-token", dtype: str = "fp32") -> int:
    """The exact size in bytes of the single-file model `build(arch, ..., graph, dtype)` would write,
    from the shapes alone: no weights are made (milliseconds, even for the largest architecture)."""
    stored = _stored_tensors(arch, dtype)
    stubs = _stubs((name, np.dtype(kind), shape) for name, (kind, shape) in stored.items())
    model = _graph_model(arch, graph, stubs, dtype == "int8")
    return _embedded_size(model, {n: math.prod(shape) * np.dtype(kind).itemsize for n, (kind, shape) in stored.items()})


def _stored_tensors(arch: Arch, dtype: str) -> dict[str, tuple[str, tuple[int, ...]]]:
    """What `build` stores for `arch`, in its order: name -> (numpy dtype, shape)."""
    out: dict[str, tuple[str, tuple[int, ...]]] = {}
    for name, shape in gpt2_shapes(arch).items():
        if _quantized(name, dtype):
            out[name + "_quantized"] = ("int8", shape)
            out[name + "_scale"] = ("float32", (shape[0],) if name == "transformer.wte.weight" else (shape[1],))
        else:
            out[name] = ("float32", shape)
    return out


def _quantized(name: str, dtype: str) -> bool:
    return dtype == "int8" and (name.endswith(QUANTIZED_LINEARS) or name == "transformer.wte.weight")


def _stubs(tensors: Iterable[tuple[str, np.dtype, tuple[int, ...]]]) -> list[TensorProto]:
    """Initializers that point into WEIGHTS_FILE (external data), one after the other."""
    stubs: list[TensorProto] = []
    offset = 0
    for name, kind, shape in tensors:
        nbytes = math.prod(shape) * kind.itemsize
        data_type = helper.np_dtype_to_tensor_dtype(kind)
        stub = TensorProto(name=name, dims=shape, data_type=data_type, data_location=TensorProto.EXTERNAL)
        for key, value in (("location", WEIGHTS_FILE), ("offset", str(offset)), ("length", str(nbytes))):
            entry = stub.external_data.add()
            entry.key, entry.value = key, value
        stubs.append(stub)
        offset += nbytes
    return stubs


def build(
    arch: Arch,
    weights: Mapping[str, np.ndarray] | Iterable[tuple[str, np.ndarray]] | None = None,
    graph: str = "next-token",
    dtype: str = "fp32",
) -> OnnxGpt2:
    """The GPT-2 forward for `arch` as ONNX; `weights` (transformers names) default to random ones.

    dtype "int8": every projection and the tied embedding / LM head are stored as int8 (7-bit range,
    see INT8_WEIGHT_MAX) with one scale per output channel (symmetric); activations are quantized on the fly
    (DynamicQuantizeLinear + MatMulInteger, the pattern ONNX Runtime fuses into
    DynamicQuantizeMatMul). Biases, layer norms and position embeddings stay fp32. The embedding
    is stored once: the LM head reads its transpose, which ONNX Runtime folds at load time.
    """
    if graph not in GRAPHS:
        raise LtsError(f"unknown graph {graph!r}; expected one of {', '.join(GRAPHS)}")
    if dtype not in DTYPES:
        raise LtsError(f"unknown dtype {dtype!r}; expected one of {', '.join(DTYPES)}")
    items = random_weights(arch) if weights is None else weights
    pairs = items.items() if isinstance(items, Mapping) else items
    expected = gpt2_shapes(arch)
    arrays: dict[str, np.ndarray] = {}
    for name, array in pairs:
        if name not in expected:
            continue  # e.g. lm_head.weight (tied to wte) or old attn.bias buffers
        shape = expected.pop(name)
        if tuple(array.shape) != shape:
            raise LtsError(f"weight {name} has shape {tuple(array.shape)}, expected {shape} for {arch.short()}")
        array = np.ascontiguousarray(array, dtype=np.float32)
        if _quantized(name, dtype):
            # Linear weights are [in, out]: one scale per column; the embedding [vocab, d]: one per row.
            axis = 1 if name == "transformer.wte.weight" else 0
            scale = np.abs(array).max(axis=axis) / INT8_WEIGHT_MAX
            scale[scale == 0] = 1.0
            expanded = scale[:, None] if axis == 1 else scale[None, :]
            arrays[name + "_quantized"] = np.clip(np.rint(array / expanded), -INT8_WEIGHT_MAX, INT8_WEIGHT_MAX).astype(
                np.int8
            )
            arrays[name + "_scale"] = scale.astype(np.float32)
        else:
            arrays[name] = array
    if expected:
        raise LtsError(f"weights for {arch.short()} are missing {', '.join(sorted(expected)[:3])}")
    stubs = _stubs((name, array.dtype, array.shape) for name, array in arrays.items())
    return OnnxGpt2(arch, graph, _graph_model(arch, graph, stubs, dtype == "int8"), arrays)


def _graph_model(arch: Arch, graph: str, initializers: list[TensorProto], int8: bool) -> onnx.ModelProto:
    b = _GraphBuilder(int8)
    nodes = b.nodes
    d, h, hd = arch.d_model, arch.n_head, arch.head_dim
    causal_lm = graph in ("causal-lm", "causal-lm-with-past")
    with_past = graph == "causal-lm-with-past"
    inputs = [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"])]
    outputs: list[onnx.ValueInfoProto] = []

    b.const("i_one", np.array([1], dtype=np.int64))
    b.const("i_two", np.array([2], dtype=np.int64))
    b.const("i_zero", np.array([0], dtype=np.int64))
    nodes.append(helper.make_node("Shape", ["input_ids"], ["ids_shape"]))
    nodes.append(helper.make_node("Slice", ["ids_shape", "i_one", "i_two"], ["seq_len"]))
    min_value = helper.make_tensor("min_value", TensorProto.FLOAT, [1], [float(np.finfo(np.float32).min)])
    b.embedding("input_ids", "tok_emb")
    if not causal_lm:
        # input_ids only: positions 0..S-1; causal mask [S, S] (0 on and below the diagonal, float min above).
        nodes.append(helper.make_node("Concat", ["seq_len", "seq_len"], ["mask_shape"], axis=0))
        nodes.append(helper.make_node("ConstantOfShape", ["mask_shape"], ["mask_full"], value=min_value))
        nodes.append(helper.make_node("Trilu", ["mask_full", "i_one"], ["causal_mask"], upper=1))
        nodes.append(helper.make_node("Slice", ["transformer.wpe.weight", "i_zero", "seq_len", "i_zero"], ["pos_emb"]))
        mask = "causal_mask"
    else:
        # The Hugging Face causal-LM interface: attention_mask [B, past + S] (1 = attend), position_ids [B, S].
        inputs.append(helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "total"]))
        inputs.append(helper.make_tensor_value_info("position_ids", TensorProto.INT64, ["batch", "seq"]))
        nodes.append(helper.make_node("Gather", ["transformer.wpe.weight", "position_ids"], ["pos_emb"]))
        # Query i (absolute position past + i) sees keys j <= past + i: Trilu(k = past + 1) keeps the rest.
        nodes.append(helper.make_node("Shape", ["attention_mask"], ["am_shape"]))
        nodes.append(helper.make_node("Slice", ["am_shape", "i_one", "i_two"], ["total_len"]))
        nodes.append(helper.make_node("Sub", ["total_len", "seq_len"], ["past_len"]))
        nodes.append(helper.make_node("Add", ["past_len", "i_one"], ["diag_1d"]))
        nodes.append(helper.make_node("Squeeze", ["diag_1d", "i_zero"], ["diag"]))
        nodes.append(helper.make_node("Concat", ["seq_len", "total_len"], ["mask_shape"], axis=0))
        nodes.append(helper.make_node("ConstantOfShape", ["mask_shape"], ["mask_full"], value=min_value))
        nodes.append(helper.make_node("Trilu", ["mask_full", "diag"], ["causal_mask"], upper=1))
        # Padding: (1 - attention_mask) * min, as [B, 1, 1, total]; the sum is clipped so it stays finite.
        b.const("f_one", np.array(1.0, dtype=np.float32))
        b.const("f_min", np.array(np.finfo(np.float32).min, dtype=np.float32))
        b.const("pad_axes", np.array([1, 2], dtype=np.int64))
        nodes.append(helper.make_node("Cast", ["attention_mask"], ["am_float"], to=TensorProto.FLOAT))
        nodes.append(helper.make_node("Sub", ["f_one", "am_float"], ["am_inverse"]))
        nodes.append(helper.make_node("Mul", ["am_inverse", "f_min"], ["pad_2d"]))
        nodes.append(helper.make_node("Unsqueeze", ["pad_2d", "pad_axes"], ["pad_mask"]))
        nodes.append(helper.make_node("Add", ["causal_mask", "pad_mask"], ["mask_sum"]))
        nodes.append(helper.make_node("Max", ["mask_sum", "f_min"], ["attn_mask"]))
        mask = "attn_mask"
    nodes.append(helper.make_node("Add", ["tok_emb", "pos_emb"], ["h0"]))

    b.const("split_qkv", np.array([d, d, d], dtype=np.int64))
    b.const("heads_shape", np.array([0, 0, h, hd], dtype=np.int64))
    b.const("model_shape", np.array([0, 0, d], dtype=np.int64))
    b.const("attn_scale", np.array(1.0 / np.sqrt(hd), dtype=np.float32))
    x = "h0"
    for i in range(arch.n_layer):
        p, t = f"transformer.h.{i}.", f"l{i}_"
        ln1 = b.layer_norm(x, p + "ln_1", t + "ln1")
        qkv = b.linear(ln1, p + "attn.c_attn", t + "qkv")
        nodes.append(helper.make_node("Split", [qkv, "split_qkv"], [t + "q", t + "k", t + "v"], axis=2))
        if not with_past:
            for name, perm in (("q", [0, 2, 1, 3]), ("k", [0, 2, 3, 1]), ("v", [0, 2, 1, 3])):
                nodes.append(helper.make_node("Reshape", [t + name, "heads_shape"], [t + name + "_4d"]))
                nodes.append(helper.make_node("Transpose", [t + name + "_4d"], [t + name + "_t"], perm=perm))
            keys_t, values = t + "k_t", t + "v_t"
        else:
            # Keys and values [B, H, past + S, hd]: the cache in, the cache out (present.*).
            for name in ("q", "k", "v"):
                nodes.append(helper.make_node("Reshape", [t + name, "heads_shape"], [t + name + "_4d"]))
                nodes.append(helper.make_node("Transpose", [t + name + "_4d"], [t + name + "_t"], perm=[0, 2, 1, 3]))
            cache = [f"past_key_values.{i}.key", f"past_key_values.{i}.value"]
            present = [f"present.{i}.key", f"present.{i}.value"]
            for name in cache + present:
                shape: list[str | int] = ["batch", h, "past" if name.startswith("past") else "total", hd]
                (inputs if name.startswith("past") else outputs).append(
                    helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)
                )
            nodes.append(helper.make_node("Concat", [cache[0], t + "k_t"], [present[0]], axis=2))
            nodes.append(helper.make_node("Concat", [cache[1], t + "v_t"], [present[1]], axis=2))
            nodes.append(helper.make_node("Transpose", [present[0]], [t + "keys_t"], perm=[0, 1, 3, 2]))
            keys_t, values = t + "keys_t", present[1]
        nodes.append(helper.make_node("MatMul", [t + "q_t", keys_t], [t + "scores_raw"]))
        nodes.append(helper.make_node("Mul", [t + "scores_raw", "attn_scale"], [t + "scores_scaled"]))
        nodes.append(helper.make_node("Add", [t + "scores_scaled", mask], [t + "scores"]))
        nodes.append(helper.make_node("Softmax", [t + "scores"], [t + "probs"], axis=-1))
        nodes.append(helper.make_node("MatMul", [t + "probs", values], [t + "ctx_t"]))
        nodes.append(helper.make_node("Transpose", [t + "ctx_t"], [t + "ctx_4d"], perm=[0, 2, 1, 3]))
        nodes.append(helper.make_node("Reshape", [t + "ctx_4d", "model_shape"], [t + "ctx"]))
        attn = b.linear(t + "ctx", p + "attn.c_proj", t + "attn_out")
        nodes.append(helper.make_node("Add", [x, attn], [t + "res1"]))
        ln2 = b.layer_norm(t + "res1", p + "ln_2", t + "ln2")
        fc = b.linear(ln2, p + "mlp.c_fc", t + "fc")
        nodes.append(helper.make_node("Gelu", [fc], [t + "gelu"], approximate="tanh"))  # GPT-2's gelu_new
        mlp = b.linear(t + "gelu", p + "mlp.c_proj", t + "mlp_out")
        nodes.append(helper.make_node("Add", [t + "res1", mlp], [t + "out"]))
        x = t + "out"
    final = b.layer_norm(x, "transformer.ln_f", "final")

    # LM head tied to the token embedding: Gemm with transB reads wte as stored (one copy in the file).
    if graph == "next-token":
        b.const("last_index", np.array(-1, dtype=np.int64))
        nodes.append(helper.make_node("Gather", [final, "last_index"], ["last_hidden"], axis=1))
        b.lm_head("last_hidden", "last_logits")
        nodes.append(helper.make_node("Softmax", ["last_logits"], ["probs"], axis=-1))
        head = helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["batch", arch.vocab_size])
    else:
        b.const("flat_shape", np.array([-1, d], dtype=np.int64))
        b.const("vocab_dim", np.array([arch.vocab_size], dtype=np.int64))
        nodes.append(helper.make_node("Reshape", [final, "flat_shape"], ["final_flat"]))
        b.lm_head("final_flat", "logits_flat")
        nodes.append(helper.make_node("Concat", ["ids_shape", "vocab_dim"], ["logits_shape"], axis=0))
        nodes.append(helper.make_node("Reshape", ["logits_flat", "logits_shape"], ["logits"]))
        head = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", "seq", arch.vocab_size])

    onnx_graph = helper.make_graph(
        nodes, f"lts_{arch.archid}", inputs, [head, *outputs], initializer=initializers + b.consts
    )
    model = helper.make_model(
        onnx_graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="lts",
        ir_version=IR_VERSION,
    )
    for key, value in (("lts.archid", arch.archid), ("lts.graph", graph), ("lts.arch", json.dumps(arch.to_dict()))):
        model.metadata_props.append(onnx.StringStringEntryProto(key=key, value=value))
    return model


class _GraphBuilder:
    """Collects nodes and small constants while the graph is written."""

    def __init__(self, int8: bool) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.consts: list[TensorProto] = []
        self.int8 = int8
        if int8:
            self.const("zero_i8", np.array(0, dtype=np.int8))
            self.const("last_axis", np.array([-1], dtype=np.int64))

    def const(self, name: str, value: np.ndarray) -> None:
        self.consts.append(numpy_helper.from_array(value, name))

    def layer_norm(self, x: str, prefix: str, out: str) -> str:
        self.nodes.append(
            helper.make_node(
                "LayerNormalization", [x, prefix + ".weight", prefix + ".bias"], [out], axis=-1, epsilon=LN_EPS
            )
        )
        return out

    def linear(self, x: str, prefix: str, out: str) -> str:
        if self.int8:
            self.int8_matmul(x, prefix + ".weight_quantized", prefix + ".weight_scale", out + "_mm")
        else:
            self.nodes.append(helper.make_node("MatMul", [x, prefix + ".weight"], [out + "_mm"]))
        self.nodes.append(helper.make_node("Add", [out + "_mm", prefix + ".bias"], [out]))
        return out

    def int8_matmul(self, x: str, weight: str, scale: str, out: str) -> None:
        """x @ dequantized(weight): dynamic uint8 activations, int8 weights, per-column scales."""
        n = self.nodes
        n.append(helper.make_node("DynamicQuantizeLinear", [x], [out + "_xq", out + "_xs", out + "_xzp"]))
        n.append(helper.make_node("MatMulInteger", [out + "_xq", weight, out + "_xzp", "zero_i8"], [out + "_int"]))
        n.append(helper.make_node("Cast", [out + "_int"], [out + "_f"], to=TensorProto.FLOAT))
        n.append(helper.make_node("Mul", [out + "_xs", scale], [out + "_scale"]))
        n.append(helper.make_node("Mul", [out + "_f", out + "_scale"], [out]))

    def embedding(self, ids: str, out: str) -> None:
        if not self.int8:
            self.nodes.append(helper.make_node("Gather", ["transformer.wte.weight", ids], [out]))
            return
        n = self.nodes
        n.append(helper.make_node("Gather", ["transformer.wte.weight_quantized", ids], [out + "_q"]))
        n.append(helper.make_node("Cast", [out + "_q"], [out + "_f"], to=TensorProto.FLOAT))
        n.append(helper.make_node("Gather", ["transformer.wte.weight_scale", ids], [out + "_s"]))
        n.append(helper.make_node("Unsqueeze", [out + "_s", "last_axis"], [out + "_s3"]))
        n.append(helper.make_node("Mul", [out + "_f", out + "_s3"], [out]))

    def lm_head(self, x: str, out: str) -> None:
        """x [N, d] @ wte^T: the LM head tied to the token embedding, which is stored once."""
        if not self.int8:
            self.nodes.append(helper.make_node("Gemm", [x, "transformer.wte.weight"], [out], transB=1))
            return
        self.nodes.append(helper.make_node("Transpose", ["transformer.wte.weight_quantized"], ["wte_t_q"], perm=[1, 0]))
        self.int8_matmul(x, "wte_t_q", "transformer.wte.weight_scale", out)
