"""ONNX Runtime: session options from measurement settings, in-memory sessions over emitted graphs,
and sessions, inputs and KV-cache plumbing for `lts export` folders."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lts_cli.errors import LtsError, first_line
from lts_cli.settings import MeasureSettings
from lts_cli.views import JsonObject
from lts_cli.workspace import EXPORT_MARKER

if TYPE_CHECKING:
    import onnxruntime

    from lts_cli.gpt2_onnx import OnnxGpt2

EXPORT_FILE = "model.onnx"
INFO_FILE = EXPORT_MARKER  # how an export was made and validated; marks a folder as an lts export

_OPT_LEVELS = {
    "disable": "ORT_DISABLE_ALL",
    "basic": "ORT_ENABLE_BASIC",
    "extended": "ORT_ENABLE_EXTENDED",
    "all": "ORT_ENABLE_ALL",
}


def session_options(settings: MeasureSettings) -> onnxruntime.SessionOptions:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = settings.threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = getattr(ort.GraphOptimizationLevel, _OPT_LEVELS[settings.opt_level])
    options.log_severity_level = 3
    return options


class InMemorySession:
    """An ONNX Runtime session over an `OnnxGpt2` whose weights stay in their numpy arrays.

    The graph (kilobytes) goes to a private temp dir beside a sparse, empty weights file that only
    satisfies ONNX Runtime's external-data checks; every weight is handed over with
    `SessionOptions.add_initializer`, which uses the array in place (no serialization, no copy).
    tests/test_gpt2_onnx.py checks its outputs equal those of the self-contained model.
    """

    def __init__(self, onnx_model: OnnxGpt2, settings: MeasureSettings, workdir: Path) -> None:
        import onnxruntime as ort

        from lts_cli.gpt2_onnx import WEIGHTS_FILE

        if settings.provider not in ort.get_available_providers():
            raise LtsError(
                f"execution provider {settings.provider} is not available in this onnxruntime "
                f"(available: {', '.join(ort.get_available_providers())})"
            )
        model_path = workdir / "model.onnx"
        model_path.write_bytes(onnx_model.model.SerializeToString())
        with open(workdir / WEIGHTS_FILE, "wb") as f:
            f.truncate(sum(a.nbytes for a in onnx_model.weights.values()))
        options = session_options(settings)
        self._values = []  # the OrtValues must outlive the session
        for name, array in onnx_model.weights.items():
            value = ort.OrtValue.ortvalue_from_numpy(array)
            options.add_initializer(name, value)
            self._values.append(value)
        self.session = ort.InferenceSession(str(model_path), options, providers=[settings.provider])
        self.output = self.session.get_outputs()[0].name

    def run(self, feeds: dict[str, np.ndarray]) -> Any:
        return self.session.run([self.output], feeds)[0]

    def run_all(self, feeds: dict[str, np.ndarray]) -> list[Any]:
        """Every output (a decode step hands its KV cache back, as generation does)."""
        return self.session.run(None, feeds)


# ---- export folders -----------------------------------------------------------------------------


def read_info(folder: Path) -> JsonObject | None:
    """The folder's export.json, or None when it is not an lts export."""
    path = folder / INFO_FILE
    if not path.is_file():
        return None
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise LtsError(f"{path} is damaged ({exc}); export the model again") from exc
    if not isinstance(info, dict):
        raise LtsError(f"{path} is damaged (not a JSON object); export the model again")
    return info


def session(folder: Path, threads: int = 0, options: Any = None) -> Any:
    """An ONNX Runtime session over an export folder's model.onnx (clear errors for damaged files)."""
    import onnxruntime as ort

    path = folder / EXPORT_FILE
    if not path.is_file():
        raise LtsError(f"{folder} has no {EXPORT_FILE}; export a model with `lts export`")
    if options is None:
        options = ort.SessionOptions()
        options.log_severity_level = 3
        if threads:
            options.intra_op_num_threads = threads
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # ORT raises its own exception types for unreadable models
        raise LtsError(f"{path} cannot be loaded by ONNX Runtime ({first_line(exc)}); export it again") from exc


def feeds(sess: Any, ids: np.ndarray, past: dict[str, np.ndarray] | None, past_len: int) -> dict[str, np.ndarray]:
    """The inputs of one forward: ids [B, S] after `past_len` cached positions (no padding)."""
    batch, seq = ids.shape
    names = {i.name for i in sess.get_inputs()}
    out: dict[str, np.ndarray] = {"input_ids": ids.astype(np.int64)}
    if "attention_mask" in names:
        out["attention_mask"] = np.ones((batch, past_len + seq), dtype=np.int64)
    if "position_ids" in names:
        out["position_ids"] = np.broadcast_to(np.arange(past_len, past_len + seq, dtype=np.int64), (batch, seq)).copy()
    if past is not None:
        out.update(past)
    return out


def empty_past(sess: Any, batch: int) -> dict[str, np.ndarray]:
    cache = [i for i in sess.get_inputs() if i.name.startswith("past_key_values.")]
    return {i.name: np.zeros((batch, i.shape[1], 0, i.shape[3]), dtype=np.float32) for i in cache}


def next_past(sess: Any, outputs: list[np.ndarray]) -> dict[str, np.ndarray]:
    names = [o.name for o in sess.get_outputs()]
    return {
        n.replace("present.", "past_key_values."): v
        for n, v in zip(names, outputs, strict=True)
        if n.startswith("present.")
    }


def is_export(folder: Path) -> bool:
    """Whether `folder` is an `lts export` folder (it has export.json)."""
    return (folder / INFO_FILE).is_file()


def decode_step_feeds(sess: Any, batch: int, context: int, seed: int = 0) -> dict[str, np.ndarray]:
    """The inputs of one decode step after `context` cached tokens: one new token per row and a KV
    cache of random values (the kernels' speed does not depend on them). Timing `sess.run(None, ...)`
    on these gives the per-token decode latency; `lts profile` of an export and the decode_latency
    objective both use it, so the two agree."""
    rng = np.random.default_rng(seed)
    past = {
        i.name: rng.standard_normal((batch, i.shape[1], context, i.shape[3]), dtype=np.float32)
        for i in sess.get_inputs()
        if i.name.startswith("past_key_values.")
    }
    ids = rng.integers(0, 256, size=(batch, 1))
    return feeds(sess, ids, past, context)
