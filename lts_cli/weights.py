"""GPT-2 weight files: which tensors transformers' GPT-2 stores, their names and shapes read from a
file without building a model (a safetensors header; a weights-only, memory-mapped load of a .bin),
and the check that a file fills an architecture: every tensor there with its shape, nothing else
but the causal-mask buffers old GPT-2 checkpoints carry.

Nothing in a file is ever executed: .bin files are read with torch's weights-only unpickler, and a
file that holds anything but tensors is refused with a message that says so.
"""

from __future__ import annotations

import json
import struct
import warnings
from pathlib import Path
from typing import Any

from lts_cli.errors import LtsError
from lts_cli.space import Arch

# The weight files transformers reads, in its order of preference.
SAFETENSORS, SAFETENSORS_INDEX = "model.safetensors", "model.safetensors.index.json"
PICKLE, PICKLE_INDEX = "pytorch_model.bin", "pytorch_model.bin.index.json"
WEIGHT_FILES = (SAFETENSORS, SAFETENSORS_INDEX, PICKLE, PICKLE_INDEX)
# Buffers of transformers < 4.31's GPT-2 (the causal mask and its fill value): no weights, ignored.
LEGACY_BUFFERS = ("attn.bias", "attn.masked_bias")
PREFIX = "transformer."
_MAX_HEADER = 100 * 2**20  # a safetensors header is JSON; anything bigger is not one

Shapes = dict[str, tuple[int, ...]]


def gpt2_shapes(arch: Arch) -> Shapes:
    """Every tensor transformers' GPT2LMHeadModel stores for `arch` (the LM head is tied: not listed)."""
    d, di = arch.d_model, arch.d_inner
    shapes: Shapes = {PREFIX + "wte.weight": (arch.vocab_size, d), PREFIX + "wpe.weight": (arch.n_positions, d)}
    for i in range(arch.n_layer):
        p = f"{PREFIX}h.{i}."
        shapes.update(
            {
                p + "ln_1.weight": (d,),
                p + "ln_1.bias": (d,),
                p + "attn.c_attn.weight": (d, 3 * d),
                p + "attn.c_attn.bias": (3 * d,),
                p + "attn.c_proj.weight": (d, d),
                p + "attn.c_proj.bias": (d,),
                p + "ln_2.weight": (d,),
                p + "ln_2.bias": (d,),
                p + "mlp.c_fc.weight": (d, di),
                p + "mlp.c_fc.bias": (di,),
                p + "mlp.c_proj.weight": (di, d),
                p + "mlp.c_proj.bias": (d,),
            }
        )
    shapes[PREFIX + "ln_f.weight"] = (d,)
    shapes[PREFIX + "ln_f.bias"] = (d,)
    return shapes


def weight_file(folder: Path) -> Path | None:
    """The weight file transformers would read in `folder` (None: there is none)."""
    return next((folder / name for name in WEIGHT_FILES if (folder / name).is_file()), None)


def read_shapes(path: Path) -> Shapes:
    """Tensor names and shapes of a weight file (or an index of shards), without loading the weights."""
    if path.name.endswith(".index.json"):
        try:
            shards = sorted(set(json.loads(path.read_text(encoding="utf-8"))["weight_map"].values()))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise LtsError(f"{path} is not a weight index ({exc}); the model folder is damaged") from exc
        shapes: Shapes = {}
        for shard in shards:
            shard_path = path.parent / shard
            if not shard_path.is_file():
                raise LtsError(f"{path} names the shard {shard}, which is missing; the download is incomplete")
            shapes.update(read_shapes(shard_path))
        return shapes
    if path.suffix == ".safetensors":
        return safetensors_shapes(path)
    return _pickle_shapes(path)


def safetensors_shapes(path: Path) -> Shapes:
    """The shapes a safetensors file declares, checked against its size (a truncated file is an error)."""
    try:
        size = path.stat().st_size
        with path.open("rb") as f:
            (length,) = struct.unpack("<Q", f.read(8))
            if length > min(_MAX_HEADER, size - 8):
                raise ValueError(f"header length {length:,} does not fit a file of {size:,} bytes")
            header = json.loads(f.read(length))
        shapes: Shapes = {}
        end = 0
        for name, info in header.items():
            if name == "__metadata__":
                continue
            shapes[name] = tuple(int(n) for n in info["shape"])
            end = max(end, int(info["data_offsets"][1]))
    except (OSError, struct.error, ValueError, KeyError, TypeError, IndexError) as exc:
        raise LtsError(f"{path} is not a readable safetensors file ({exc}); the file is damaged") from exc
    if 8 + length + end != size:
        raise LtsError(f"{path} is damaged: its header describes {8 + length + end:,} bytes, the file has {size:,}")
    return shapes


def _pickle_shapes(path: Path) -> Shapes:
    """A .bin state dict through torch's weights-only unpickler, memory-mapped where the format allows."""
    import pickle

    import torch

    state: Any = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's notes on pickle protocols and its weights_only advice
            try:
                state = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
            except RuntimeError as exc:
                if "mmap" not in str(exc):
                    raise
                state = torch.load(path, map_location="cpu", weights_only=True)  # the pre-zip format
    except pickle.UnpicklingError as exc:
        raise LtsError(
            f"{path} holds Python objects other than tensors; lts loads only weights "
            "(safetensors, or a weights-only .bin)"
        ) from exc
    except Exception as exc:  # torch raises RuntimeError, EOFError, zipfile errors for damaged files
        raise LtsError(f"{path} cannot be read as weights ({type(exc).__name__}); the file is damaged") from exc
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise LtsError(f"{path} is not a state dict of tensors; lts loads only weights")
    return {str(k): tuple(v.shape) for k, v in state.items()}


def check_gpt2(path: Path, arch: Arch, config_name: str = "config.json") -> None:
    """Refuse a weight file that does not fill `arch` exactly (which its `config_name` describes):
    missing tensors (named, a missing layer as `transformer.h.3.*`), shapes that disagree with the
    config, and unknown tensors. Old GPT-2 buffers and a tied `lm_head.weight` are accepted."""
    found = read_shapes(path)
    if found and not any(name.startswith(PREFIX) for name in found):
        found = {(k if k.startswith("lm_head.") else PREFIX + k): v for k, v in found.items()}  # GPT2Model's names
    expected = gpt2_shapes(arch)
    wte = expected[PREFIX + "wte.weight"]
    unknown = [
        name
        for name in found
        if name not in expected
        and not name.endswith(LEGACY_BUFFERS)
        and not (name == "lm_head.weight" and found[name] == wte)
    ]
    wrong = [(name, found[name], shape) for name, shape in expected.items() if name in found and found[name] != shape]
    if wrong:
        name, got, want = wrong[0]
        more = f" (and {len(wrong) - 1} more)" if len(wrong) > 1 else ""
        raise LtsError(
            f"{path}: {name} is {list(got)} but {config_name} ({arch.short()}) needs {list(want)}{more}; "
            f"{config_name} does not describe these weights"
        )
    missing = [name for name in expected if name not in found]
    if missing:
        raise LtsError(
            f"{path.name} has no weights for {_grouped(missing, arch)} ({config_name}: {arch.short()}, "
            f"{_layers(found)} layer(s) in the file); the file or {config_name} is damaged"
        )
    if unknown:
        shown = ", ".join(sorted(unknown)[:3]) + (f" and {len(unknown) - 3} more" if len(unknown) > 3 else "")
        raise LtsError(f"{path.name} holds tensors a GPT-2 of {config_name} does not have: {shown}")


def _grouped(missing: list[str], arch: Arch) -> str:
    """`transformer.h.3.*` for a whole missing layer, else the names (at most 3)."""
    layers = [
        i
        for i in range(arch.n_layer)
        if all(n in missing for n in gpt2_shapes(arch) if n.startswith(f"{PREFIX}h.{i}."))
    ]
    whole = {n for i in layers for n in missing if n.startswith(f"{PREFIX}h.{i}.")}
    parts = [f"{PREFIX}h.{i}.*" for i in layers] + [n for n in missing if n not in whole]
    return ", ".join(parts[:3]) + (f" and {len(parts) - 3} more" if len(parts) > 3 else "")


def _layers(found: Shapes) -> int:
    indices = {name.split(".")[2] for name in found if name.startswith(f"{PREFIX}h.")}
    return len(indices)
