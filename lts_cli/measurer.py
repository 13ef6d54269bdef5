"""The measurement service: for one set of settings and objectives, every architecture's values from
the workspace cache first, else measured here or on a Ray cluster, then remembered under the
fingerprint of the machine that measured it. `lts profile`, `lts search` and `lts proxy` all measure
through a `Measurer`; where measurements run is chosen here (`Where`), and only here.

Exact objectives (parameter counts, file sizes, FLOPs) are computed, never measured; a measured one
takes the kinds of measurement it needs (prefill, decode), each cached separately.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from lts_cli import objectives as registry
from lts_cli.errors import UsageError
from lts_cli.machine import Fingerprint
from lts_cli.measuring import Progress, cache_key, measure
from lts_cli.search import Failed, Measured
from lts_cli.settings import Kind, Measurement, MeasureSettings
from lts_cli.space import Arch
from lts_cli.store import Damaged, Store

OnNote = Callable[[str], None]


@dataclass(frozen=True)
class Where:
    """Where measurements run: `local` (this machine, one at a time) or `ray` (the `lts_bench` slots of
    the Ray cluster at `address`, default $RAY_ADDRESS; only those labelled `target` if given)."""

    executor: Literal["local", "ray"] = "local"
    address: str | None = None
    target: str | None = None

    def __post_init__(self) -> None:
        if self.executor == "local" and (self.address or self.target):
            raise UsageError(f"{'--ray-address' if self.address else '--target'} goes with --executor ray")


@dataclass
class Inputs:
    """What an objective's value comes from (objectives.Inputs): the architecture, the settings, the
    measurements made, and the exact size of its ONNX files."""

    arch: Arch
    settings: MeasureSettings
    measurements: dict[Kind, Measurement] = field(default_factory=dict)

    def measured(self, kind: Kind) -> Measurement:
        return self.measurements[kind]

    def file_bytes(self, dtype: str) -> int:
        from lts_cli import gpt2_onnx

        return gpt2_onnx.file_size(self.arch, dtype=dtype)


@dataclass(frozen=True)
class Evaluation:
    """Every value asked for (and what else the measurements gave), the measurements they came from,
    where they were made ("cache": not measured now) and how long that took there."""

    values: dict[str, float]
    prefill: Measurement | None = None
    decode: Measurement | None = None
    host: str = "here"
    seconds: float = 0.0

    @property
    def cached(self) -> bool:
        made = [m for m in (self.prefill, self.decode) if m is not None]
        return bool(made) and all(m.cached for m in made)

    @property
    def timing_s(self) -> float:
        return sum(m.timing_s for m in (self.prefill, self.decode) if m is not None and not m.cached)


def exact_values(arch: Arch, settings: MeasureSettings, objectives: Sequence[str]) -> dict[str, float]:
    """The exact objectives of `arch` (and those recorded always), computed without measuring."""
    return registry.values(Inputs(arch, settings), [o for o in objectives if registry.get(o).kind == "exact"], [])


def evaluation(
    arch: Arch, settings: MeasureSettings, objectives: Sequence[str], made: dict[Kind, Measurement], host: str = "here"
) -> Evaluation:
    values = registry.values(Inputs(arch, settings, made), objectives, list(made))
    seconds = sum(m.build_s + m.session_s + m.timing_s for m in made.values() if not m.cached)
    return Evaluation(values, made.get("prefill"), made.get("decode"), host, seconds)


class Measurer:
    """Measures architectures with fixed settings for a set of objectives: cache, then measure (here
    or on Ray), then remember. Also the search's executor (`map`)."""

    def __init__(
        self,
        settings: MeasureSettings,
        objectives: Sequence[str],
        store: Store,
        where: Where | None = None,
        use_cache: bool = True,
        source: str = "profile",
        progress: Progress | None = None,
        on_note: OnNote | None = None,
        cluster: Any = None,
    ) -> None:
        """`cluster`: a `distributed.RayCluster` to measure on (default: the one `where` names)."""
        from lts_cli import machine

        self.settings = settings
        self.objectives = tuple(objectives)
        self.kinds = registry.kinds(objectives)
        self.store = store
        self.use_cache = use_cache
        self.source = source  # who asked, remembered with each architecture's id
        self.progress = progress
        self.on_note = on_note
        self.where = where or Where()
        self.cluster: Any = cluster
        if self.where.executor == "ray":
            if self.cluster is None:
                from lts_cli.distributed import RayCluster

                self.cluster = RayCluster(self.where.address, self.where.target, on_note)
            self.fingerprints: list[Fingerprint] = self.cluster.fingerprints
        else:
            self.fingerprints = [machine.fingerprint()]

    # ---- the cache -------------------------------------------------------------------------------

    def cached(self, arch: Arch, kind: Kind, fingerprint: Fingerprint) -> Measurement | None:
        """The cached measurement, or None (a damaged row is said once and measured again)."""
        if not self.use_cache:
            return None
        found = self.store.get_measurement(cache_key(arch, self.settings, fingerprint, kind))
        if isinstance(found, Damaged):
            if self.on_note:
                self.on_note(
                    f"{found.problem}: measuring {arch.short()} again, which replaces row {found.key[:12]} "
                    "(`lts cache check` lists damaged rows)"
                )
            return None
        if found is not None:
            found.cached = True
        return found

    def _from_cache(self, arch: Arch) -> Evaluation | None:
        """The values of `arch` if every kind it needs is cached on one of the measuring machines."""
        for fingerprint in self.fingerprints:
            found = {kind: self.cached(arch, kind, fingerprint) for kind in self.kinds}
            if all(found.values()):
                return evaluation(arch, self.settings, self.objectives, {k: m for k, m in found.items() if m}, "cache")
        return None

    def remember(self, arch: Arch, measurement: Measurement) -> None:
        """Store a fresh measurement of `arch` under the fingerprint of the machine that made it."""
        key = cache_key(arch, self.settings, measurement.fingerprint, measurement.kind)
        self.store.put_measurement(
            key, arch.archid, measurement.settings, measurement.fingerprint, measurement.to_dict()
        )

    def cached_rows(self) -> list[Measurement] | None:
        """Every measurement cached on the (first) measuring machine, any settings, for the latency
        model; None with the cache off (then the model learns from the run's own measurements)."""
        return self.store.measurements_on(self.fingerprints[0]) if self.use_cache else None

    # ---- measuring -------------------------------------------------------------------------------

    def evaluate(self, arch: Arch) -> Evaluation:
        """The values of one architecture: from the cache, or measured (here or on Ray) and remembered."""
        ((_, result),) = list(self.evaluations([arch], lambda i: None))
        if isinstance(result, Failed):
            from lts_cli.errors import LtsError

            raise LtsError(f"measuring {arch.short()} on the Ray cluster failed: {result.reason}")
        return result

    def evaluations(
        self, archs: list[Arch], started: Callable[[int], None]
    ) -> Iterator[tuple[int, Evaluation | Failed]]:
        """Each architecture's evaluation as it finishes: cached ones at once, the rest measured here
        in order, or on the cluster as many at once as it has slots (in any order)."""
        if self.cluster is not None:
            yield from self._on_cluster(archs, started)
            return
        for i, arch in enumerate(archs):
            started(i)
            start = time.perf_counter()
            made: dict[Kind, Measurement] = {}
            for kind in self.kinds:  # each kind from the cache, or measured now and remembered
                found = self.cached(arch, kind, self.fingerprints[0])
                if found is None:
                    found = measure(arch, self.settings, kind, self.fingerprints[0], self.progress)
                    self.remember(arch, found)
                made[kind] = found
            result = evaluation(arch, self.settings, self.objectives, made)
            host = "cache" if result.cached else "here"
            self.store.put_arch(arch, self.source)
            yield i, Evaluation(result.values, result.prefill, result.decode, host, time.perf_counter() - start)

    def _on_cluster(
        self, archs: list[Arch], started: Callable[[int], None]
    ) -> Iterator[tuple[int, Evaluation | Failed]]:
        remote: list[int] = []
        for i, arch in enumerate(archs):
            hit = self._from_cache(arch)
            if hit is not None:
                started(i)
                self.store.put_arch(arch, self.source)
                yield i, hit
            else:
                remote.append(i)
        for i, outcome in self.cluster.measure([archs[i] for i in remote], self.settings, self.kinds, started, remote):
            if isinstance(outcome, Failed):
                yield i, outcome
                continue
            made = {m.kind: m for m in outcome.measurements}
            for m in made.values():
                self.remember(archs[i], m)
            self.store.put_arch(archs[i], self.source)
            result = evaluation(archs[i], self.settings, self.objectives, made, outcome.host)
            yield i, Evaluation(result.values, result.prefill, result.decode, outcome.host, outcome.seconds)

    def map(self, archs: list[Arch], started: Callable[[int], None]) -> Iterator[tuple[int, Measured | Failed]]:
        """The search's executor (search.Executor): objective values as they finish."""
        for i, result in self.evaluations(archs, started):
            if isinstance(result, Failed):
                yield i, result
            else:
                yield i, Measured(result.values, result.cached, result.timing_s, result.seconds)
