"""Measuring on a Ray cluster: many measuring machines, or the target device, for one search.

Each measuring node advertises slots with Ray's own CLI:

    ray start --address HEAD:6379 --resources '{"lts_bench": 1}'
    ray start --address HEAD:6379 --resources '{"lts_bench": 1, "lts_target_pi5": 1}'   # labelled

A node with `lts_bench: 1` runs one measurement at a time, so measurements on a node never overlap
and disturb each other. `RayCluster.measure` sends each architecture as a Ray task needing one slot
(Ray retries a task whose worker died once, `max_retries=1`; an architecture that fails twice is
returned as `Failed` with the reason) and yields results as they finish. The task runs the same code
as a local measurement (`measuring.measure`); the measurement service (measurer.py) caches what
comes back under the fingerprint of the machine that made it. This module is only what is Ray:
connecting, probing nodes, slots and tasks.

Before anything is sent, one probe per node checks that lts, ONNX Runtime and the graph version
there equal the driver's, and reads the node's fingerprint: nodes of different hardware are
refused together (their latencies belong to different fronts) unless the search names a target
label (`--target LABEL`), which then restricts the search to the nodes carrying that label.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from lts_cli.errors import ConfigError, LtsError, first_line
from lts_cli.machine import Fingerprint
from lts_cli.search import Failed
from lts_cli.settings import Kind, Measurement, MeasureSettings
from lts_cli.space import Arch
from lts_cli.views import JsonObject

BENCH = "lts_bench"
TARGET = "lts_target_"
PROBE_TIMEOUT_S = 120.0
INSTALL = "pip install 'lts-cli[ray]'"
Task = Callable[[dict[str, int], MeasureSettings, list[Kind], dict[str, str]], JsonObject]


class VersionMismatch(LtsError):
    """A measuring node runs other versions of lts, ONNX Runtime or the graph than the driver."""


def versions() -> dict[str, str]:
    """What must match between the driver and a measuring node for measurements to be comparable."""
    from importlib.metadata import version

    from lts_cli import __version__
    from lts_cli.gpt2_onnx import GRAPH_VERSION

    return {"lts": __version__, "onnxruntime": version("onnxruntime"), "graph": str(GRAPH_VERSION)}


def check_versions(theirs: dict[str, str], ours: dict[str, str], host: str) -> None:
    differ = [f"{k} {theirs.get(k)} there, {v} here" for k, v in ours.items() if theirs.get(k) != v]
    if differ:
        raise VersionMismatch(
            f"the Ray node {host} runs other versions ({'; '.join(differ)}): its measurements would not be "
            "comparable; install the same lts-cli and onnxruntime there, or stop that node"
        )


def probe() -> Fingerprint:
    """On a measuring node: its host, versions and fingerprint."""
    from lts_cli.machine import fingerprint

    return {"host": socket.gethostname(), "versions": versions(), "fingerprint": fingerprint()}


def measure(arch: dict[str, int], settings: MeasureSettings, kinds: list[Kind], expected: dict[str, str]) -> JsonObject:
    """On a measuring node: one architecture's measurements of `kinds` (the local code, no cache)."""
    from lts_cli import measuring
    from lts_cli.machine import fingerprint

    check_versions(versions(), expected, socket.gethostname())
    here = fingerprint()
    start = time.perf_counter()
    made = [measuring.measure(Arch(**arch), settings, kind, here).to_dict() for kind in kinds]
    return {
        "host": socket.gethostname(),
        "fingerprint": here,
        "measurements": made,
        "seconds": time.perf_counter() - start,
    }


CONNECT_TIMEOUT_S = 5.0  # a TCP connection to the cluster's address
INIT_TIMEOUT_S = 15.0  # joining it (ray.init), once the address answers
START_TIMEOUT_S = 120.0  # starting a local Ray instance


def connect(address: str | None) -> str:
    """Join the Ray cluster at `address` (default: $RAY_ADDRESS); with neither, start a local Ray
    instance with one `lts_bench` slot. Returns how it connected, for the user. An address where
    nothing answers fails within seconds, and Ctrl-C interrupts the wait at once."""
    try:
        import ray
    except ImportError as exc:
        raise ConfigError(["executor"], f"{{0}} ray needs Ray: {INSTALL} (here and on every measuring node)") from exc
    _ray_output_to_stderr()
    address = address or os.environ.get("RAY_ADDRESS")
    if address:
        _answers(address)
    if ray.is_initialized():
        return "the Ray instance this process is connected to"
    quiet: JsonObject = {"logging_level": "ERROR", "log_to_driver": False, "configure_logging": False}
    if not address:
        local: JsonObject = {"num_cpus": os.cpu_count(), "resources": {BENCH: 1}, "include_dashboard": False}
        _within(START_TIMEOUT_S, "starting a local Ray instance", lambda: ray.init(address="local", **local, **quiet))
        return "a local Ray instance with one lts_bench slot (--ray-address or RAY_ADDRESS joins a cluster)"
    start = f"`ray start --head --resources '{{\"{BENCH}\": 1}}'`"
    try:
        _within(INIT_TIMEOUT_S, f"joining the Ray cluster at {address}", lambda: ray.init(address=address, **quiet))
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise ConfigError(
            ["ray_address"], f"cannot join the Ray cluster at {address} ({first_line(exc)}); start its head with "
            f"{start}, or check {{0}} / RAY_ADDRESS",
        ) from exc  # fmt: skip
    return f"the Ray cluster at {address}"


def _answers(address: str) -> None:
    """Refuse at once an address where nothing listens (ray.init would retry for minutes)."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        socket.create_connection((host or "127.0.0.1", int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except ValueError:
        raise ConfigError(["ray_address"], f"{{0}} {address!r} is not HOST:PORT") from None
    except OSError as exc:
        why = exc.strerror or type(exc).__name__
        raise ConfigError(
            ["executor"],
            f"no Ray cluster answers at {address} ({why.lower()}); start one with `ray start --head --port "
            f"{port}`, or drop {{0}} ray",
        ) from None


def _within(seconds: float, what: str, work: Callable[[], object]) -> None:
    """Run `work` in a thread and wait at most `seconds`, waking often so that Ctrl-C acts at once."""
    import threading

    failure: list[BaseException] = []

    def run() -> None:
        try:
            work()
        except BaseException as exc:  # re-raised in the caller's thread
            failure.append(exc)

    thread = threading.Thread(target=run, name="lts-ray-connect", daemon=True)
    thread.start()
    deadline = time.monotonic() + seconds
    while thread.is_alive() and time.monotonic() < deadline:
        thread.join(0.2)
    if thread.is_alive():
        raise LtsError(f"{what} took more than {seconds:.0f} s; check `ray status` there")
    if failure:
        raise failure[0]


class _RayToStderr:
    """stdout for everything but Ray's own threads (`ray_*`), whose messages ("(raylet) A worker
    died ...") go to stderr: stdout carries results only, so `--json` stays valid."""

    def __init__(self, stdout: Any) -> None:
        self.stdout = stdout

    def write(self, text: str) -> int:
        import sys
        import threading

        if threading.current_thread().name.startswith("ray_"):
            return sys.stderr.write(text)
        return int(self.stdout.write(text))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stdout, name)


def _ray_output_to_stderr() -> None:
    import sys

    if not isinstance(sys.stdout, _RayToStderr):
        sys.stdout = _RayToStderr(sys.stdout)


def _short(fp: Fingerprint) -> str:
    return f"{fp.get('cpu', '?')}, {fp.get('cores', '?')} cores, onnxruntime {fp.get('onnxruntime', '?')}"


@dataclass
class Remote:
    """What a node sent back for one architecture."""

    host: str
    seconds: float
    measurements: list[Measurement]


class RayCluster:
    """The `lts_bench` slots of a Ray cluster (only those labelled `target` if given), checked before
    anything is sent: the same versions everywhere, and one kind of hardware unless a target is named."""

    def __init__(
        self,
        address: str | None = None,
        target: str | None = None,
        on_note: Callable[[str], None] | None = None,
        task: Task = measure,
        runtime_env: JsonObject | None = None,
    ) -> None:
        """`task`: what runs on a node for one architecture; `runtime_env`: Ray's runtime environment
        for it (environment variables, working directory, packages)."""
        self.target = target
        self.task = task
        self.runtime_env = runtime_env
        self.expected = versions()
        self.resources = {BENCH: 1.0, **({f"{TARGET}{target}": 0.001} if target else {})}
        how = connect(address)
        self.nodes = self._probe()
        self.slots = sum(int(n["slots"]) for n in self.nodes)
        self.fingerprints: list[Fingerprint] = []
        for n in self.nodes:
            if n["fingerprint"] not in self.fingerprints:
                self.fingerprints.append(n["fingerprint"])
        if len(self.fingerprints) > 1 and target is None:
            machines = "; ".join(f"{n['host']}: {_short(n['fingerprint'])}" for n in self.nodes)
            raise LtsError(
                f"the Ray nodes with an {BENCH} slot are different machines ({machines}): latencies from different "
                f"hardware do not belong in one front; label the nodes of one kind (`ray start ... --resources "
                f'\'{{"{BENCH}": 1, "{TARGET}LABEL": 1}}\'`) and pass --target LABEL'
            )
        if on_note:
            hosts = ", ".join(sorted({n["host"] for n in self.nodes}))
            on_note(f"measuring on {how}: {self.slots} slot(s) on {len(self.nodes)} node(s) ({hosts})")

    def _probe(self) -> list[Fingerprint]:
        import ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        need = [BENCH] + ([f"{TARGET}{self.target}"] if self.target else [])
        nodes = [n for n in ray.nodes() if n.get("Alive") and all(n["Resources"].get(r, 0) > 0 for r in need)]
        if not nodes:
            slots = ", ".join(f'"{r}": 1' for r in need)
            raise LtsError(
                f"no node of the Ray cluster offers {' and '.join(need)}; start measuring nodes with "
                f"`ray start --address HEAD:6379 --resources '{{{slots}}}'`"
            )
        remote = ray.remote(probe)
        refs = [
            remote.options(
                num_cpus=0,
                resources={BENCH: 0.001},
                scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False),
            ).remote()
            for n in nodes
        ]
        try:
            answers = ray.get(refs, timeout=PROBE_TIMEOUT_S)
        except ray.exceptions.GetTimeoutError as exc:
            raise LtsError(f"the Ray nodes did not answer within {PROBE_TIMEOUT_S:.0f} s; check `ray status`") from exc
        except ray.exceptions.RayError as exc:  # e.g. a node without lts_cli, or one too old to have this module
            first = str(getattr(exc, "cause", None) or exc).strip().splitlines()[-1]
            raise LtsError(
                f"a Ray node could not run lts there ({first}); install the same lts-cli on every measuring node"
            ) from exc
        for answer in answers:
            check_versions(answer["versions"], self.expected, answer["host"])
        return [{**a, "node": n["NodeID"], "slots": n["Resources"][BENCH]} for a, n in zip(answers, nodes, strict=True)]

    def measure(
        self,
        archs: Sequence[Arch],
        settings: MeasureSettings,
        kinds: list[Kind],
        started: Callable[[int], None],
        indices: Sequence[int],
    ) -> Iterator[tuple[int, Remote | Failed]]:
        """Each architecture measured on a slot, yielded as it finishes (with `indices[i]` for archs[i]);
        closing the iterator (an interrupt) cancels what is in flight."""
        import ray
        from ray.exceptions import RayError, RayTaskError

        remote = ray.remote(self.task).options(
            num_cpus=0,
            resources=self.resources,
            max_retries=1,
            retry_exceptions=False,
            **({"runtime_env": self.runtime_env} if self.runtime_env else {}),
        )
        in_flight: dict[Any, int] = {}
        try:
            for arch, index in zip(archs, indices, strict=True):
                started(index)
                in_flight[remote.remote(arch.to_dict(), settings, kinds, self.expected)] = index
            while in_flight:
                done, _ = ray.wait(list(in_flight), num_returns=1, timeout=0.5)  # awake for Ctrl-C
                if not done:
                    continue
                index = in_flight.pop(done[0])
                try:
                    result = ray.get(done[0])
                except RayTaskError as exc:
                    cause = exc.cause
                    if isinstance(cause, VersionMismatch):
                        raise LtsError(str(cause)) from exc
                    yield index, Failed(f"{type(cause).__name__}: {cause}" if cause else str(exc).splitlines()[0])
                    continue
                except RayError as exc:  # the worker or its node died, twice
                    yield index, Failed(f"{type(exc).__name__} (after a retry): {str(exc).splitlines()[0]}")
                    continue
                yield index, self._received(result)
        finally:
            for ref in in_flight:  # an interrupt: what is in flight is abandoned, and measured again on resume
                ray.cancel(ref, force=True)

    def _received(self, result: JsonObject) -> Remote:
        fp = result["fingerprint"]
        if fp not in self.fingerprints:
            raise LtsError(
                f"a measurement came back from {result['host']} ({_short(fp)}), a machine the search did not start "
                f"with: latencies from different hardware do not belong in one front; label the nodes of one "
                f"kind and pass --target LABEL"
            )
        made = [Measurement.from_dict(m) for m in result["measurements"]]
        return Remote(result["host"], result["seconds"], made)
