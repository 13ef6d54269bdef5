"""This machine, as far as measurements go: its fingerprint (pure; reads ONNX Runtime's version
without importing it)."""

from __future__ import annotations

import os
import platform
from typing import Any

# A measuring machine as JSON (cpu, cores, machine, onnxruntime): part of every cache key, stored with
# every measurement, compared whole.
Fingerprint = dict[str, Any]


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def fingerprint() -> Fingerprint:
    """This machine, as far as measurements go: CPU model, cores, ONNX Runtime version.

    The execution provider is a measurement setting (MeasureSettings.provider), so it is in the
    cache key too.
    """
    from importlib.metadata import version

    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count() or 0,
        "machine": platform.machine(),
        "onnxruntime": version("onnxruntime"),  # read without importing it: `lts gallery list` stays light
    }
