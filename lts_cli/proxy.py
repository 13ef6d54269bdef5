"""`lts proxy`: on the user's own corpus and budget, do cheap proxies (non-embedding parameters above
all) rank GPT-2 architectures the way training them does?

A sample of architectures is trained briefly with `lts train`'s code (the Hugging Face Trainer) and
one budget for all; each result is cached in the workspace by (architecture, corpus, budget, seed),
so a rerun, a larger sample or a resume after Ctrl-C trains only what is missing (an interrupted
training resumes from its checkpoint). The report gives, for every proxy (the registry's quality
proxies, and a run's measured objectives), Spearman's rho and Kendall's tau against validation
perplexity (signed so that 1 means "orders them exactly as perplexity does, more is better") with
seeded bootstrap 95% intervals, and the top-quarter overlap; it is written to the workspace.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from lts_cli import folders, workspace
from lts_cli import objectives as registry
from lts_cli.config import as_plain, from_mapping
from lts_cli.corpus import Corpus
from lts_cli.errors import ConfigError, LtsError, UsageError
from lts_cli.gallery import Resolved, entry_for
from lts_cli.rankstats import bootstrap, kendall, spearman, top_overlap
from lts_cli.search import SearchConfig
from lts_cli.settings import MeasureSettings
from lts_cli.space import Arch
from lts_cli.training import TrainConfig
from lts_cli.views import Block, Event, JsonObject, Lines, Note, OnEvent, Table, shape

MIN_ARCHS = 4  # a rank correlation of fewer says nothing
TOP_SHARE = 0.25
# A budget a laptop can afford (lts train's defaults are a real run); a --config file and flags override it.
BUDGET = TrainConfig(max_steps=300, seq_len=128, batch_size=16, warmup_steps=30)


@dataclass
class Candidate:
    arch: Arch
    label: str
    run_values: dict[str, float] = field(default_factory=dict)  # what a search run measured of it


@dataclass(frozen=True)
class Selection:
    """Which architectures: a run's front (`evaluated`: everything it measured), named ones, or a
    sample of `sample` spread over the parameter range of `space` (a search config)."""

    run: str | None = None
    evaluated: bool = False
    archs: tuple[str, ...] = ()
    sample: int | None = None
    space: SearchConfig = field(default_factory=SearchConfig)


def candidates(selection: Selection, seed: int) -> list[Candidate]:
    chosen = [name for name in ("run", "archs", "sample") if getattr(selection, name)]
    if len(chosen) != 1:
        raise ConfigError(["run", "archs", "sample"], "choose the architectures with one of {0}, {1}, {2}")
    if selection.run is not None:
        return from_run(selection.run, selection.evaluated)
    if selection.archs:
        return from_refs(selection.archs)
    assert selection.sample is not None
    return spread_sample(selection.sample, selection.space, seed)


def from_run(name: str, evaluated: bool = False) -> list[Candidate]:
    """A search run's Pareto front (or, with `evaluated`, everything it measured), with its values."""
    from lts_cli.runs import RunFolder

    run = RunFolder.open(name)
    state = run.state()
    if state is None or not state.records:
        raise LtsError(f"run {name!r} has evaluated no architecture yet; `lts search --resume {name}` continues it")
    records = state.records
    if not evaluated:
        summary = run.summary()
        front = {m["archid"] for m in summary["front"]} if summary else set()
        records = [r for r in records if r.archid in front]
        if not records:
            raise LtsError(f"run {name!r} has not finished a generation, so it has no front yet; add --all")
    return [Candidate(Arch(**r.arch), r.archid, dict(r.values)) for r in records]


def from_refs(refs: Sequence[str]) -> list[Candidate]:
    """Anything `references.architecture` reads: gallery ids, archids, files, models, Hub ids."""
    from lts_cli.references import architecture
    from lts_cli.store import open_store

    with open_store() as store:
        found = [architecture(ref, store) for ref in refs]
    return [Candidate(t.arch, t.label) for t in found]


def spread_sample(count: int, config: SearchConfig, seed: int = 0) -> list[Candidate]:
    """`count` architectures of the space within the parameter constraint, one from each of `count`
    equal slices of log(non-embedding parameters), so the sample spans the range (seeded)."""
    valid = config.space.within(config.min_params, config.max_params)
    if len(valid) < count:
        raise ConfigError(
            ["sample"],
            f"{{0}} {count}: the search space has only {len(valid)} architectures within "
            f"{config.min_params:g}..{config.max_params:g} non-embedding parameters",
        )
    rng = random.Random(seed)
    logs = [math.log(a.non_embedding_params) for a in valid]
    low, high = min(logs), max(logs)
    width = (high - low) / count or 1.0
    bins: list[list[Arch]] = [[] for _ in range(count)]
    for arch, value in zip(valid, logs, strict=True):
        bins[min(count - 1, int((value - low) / width))].append(arch)
    chosen: list[Arch] = []
    spare = [a for b in bins for a in b]
    for b in bins:  # an empty slice (gaps in the parameter range) takes a random architecture instead
        pool = [a for a in b if a not in chosen] or [a for a in spare if a not in chosen]
        chosen.append(rng.choice(pool))
    return [Candidate(a, a.archid) for a in sorted(chosen, key=lambda a: a.non_embedding_params)]


def budget(base: TrainConfig, tokens: int | None = None) -> TrainConfig:
    """The training config of a proxy run: `tokens` (if given) sets the steps; evaluation only at
    the end, a checkpoint every quarter so an interrupt loses little."""
    steps = base.max_steps if tokens is None else max(1, math.ceil(tokens / (base.batch_size * base.seq_len)))
    return dataclasses.replace(
        base, max_steps=steps, eval_every=steps + 1, save_every=max(1, steps // 4), keep_checkpoints=1
    )


# ---- training, cached ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Trained:
    """One architecture's proxy training, as cached in proxy/results/<key>.json."""

    archid: str
    label: str
    arch: dict[str, int]
    corpus: str
    train: JsonObject  # the TrainConfig, as config files write it
    val_loss: float
    val_perplexity: float
    initial_val_perplexity: float | None
    tokens_seen: int
    tokens_per_second: float | None
    train_seconds: float


def result_key(arch: Arch, corpus: Corpus, config: TrainConfig) -> str:
    payload = {"arch": arch.to_config(), "corpus": corpus.key, "train": as_plain(config)}
    return hashlib.sha1(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:20]


def _results_dir() -> Path:
    return workspace.ensure_home() / workspace.PROXY / "results"


def cached(arch: Arch, corpus: Corpus, config: TrainConfig) -> Trained | None:
    """The cached result, or None (a damaged or ill-typed one is trained again)."""
    path = _results_dir() / f"{result_key(arch, corpus, config)}.json"
    return _read(path) if path.is_file() else None


def _read(path: Path) -> Trained | None:
    try:
        return from_mapping(Trained, json.loads(path.read_text(encoding="utf-8")), str(path))
    except (OSError, ValueError, LtsError):
        return None


def damaged(path: Path) -> str | None:
    """Why a cached proxy result does not read, or None when it does (`lts cache check`)."""
    try:
        from_mapping(Trained, json.loads(path.read_text(encoding="utf-8")), str(path))
    except (OSError, ValueError, LtsError) as exc:
        return str(exc).splitlines()[0]
    return None


def train_one(candidate: Candidate, corpus: Corpus, config: TrainConfig, on_event: OnEvent | None = None) -> Trained:
    """Train one architecture with `lts train`'s code, keep its metrics, drop its weights."""
    from lts_cli.training import train

    key = result_key(candidate.arch, corpus, config)
    root = workspace.ensure_home() / workspace.PROXY / "models"
    target = Resolved(candidate.arch, candidate.label, entry_for(candidate.arch))
    result = train(target, config, corpus, name=key, on_event=on_event, models_root=root)
    m = result.metrics
    record = Trained(
        archid=candidate.arch.archid,
        label=candidate.label,
        arch=candidate.arch.to_dict(),
        corpus=corpus.name,
        train=as_plain(config),
        val_loss=m["val_loss"],
        val_perplexity=m["val_perplexity"],
        initial_val_perplexity=m["initial_val_perplexity"],
        tokens_seen=m["tokens_seen"],
        tokens_per_second=m["tokens_per_second"],
        train_seconds=m["train_seconds_this_session"],
    )
    workspace.atomic_write_json(_results_dir() / f"{key}.json", dataclasses.asdict(record))
    folders.remove_folder(result.path)  # the weights: made here, not needed for the report
    return record


def _init_worker(threads: int) -> None:
    os.environ["OMP_NUM_THREADS"] = str(threads)
    import torch

    torch.set_num_threads(threads)


def run(
    candidates: Sequence[Candidate],
    corpus: Corpus,
    config: TrainConfig,
    workers: int = 1,
    on_event: OnEvent | None = None,
) -> list[Trained]:
    """Train what is not cached (in `workers` processes, each with its share of the cores); the
    results in the order of `candidates`."""
    emit = on_event or (lambda event: None)
    if len(candidates) < MIN_ARCHS:
        raise UsageError(f"a rank correlation needs at least {MIN_ARCHS} architectures, got {len(candidates)}")
    results: dict[str, Trained] = {}
    for c in candidates:
        hit = cached(c.arch, corpus, config)
        if hit is not None:
            results[c.arch.archid] = hit
    todo = [c for c in candidates if c.arch.archid not in results]
    line = f"{len(results)} of {len(candidates)} already trained with this budget (cached)" if results else None
    emit(Event("start", line, total=len(candidates), done=len(results)))

    def finished(c: Candidate) -> None:
        line = f"{c.label[:20]}: validation perplexity {results[c.arch.archid].val_perplexity:,.1f}"
        emit(Event("arch_done", line, advance=True, data=results[c.arch.archid]))

    if workers <= 1:
        for c in todo:
            current = f"{c.label[:14]} {c.arch.short()}"
            emit(Event("arch_start", label=current, data=c))

            def step(e: Event, current: str = current) -> None:
                if e.kind == "step":
                    emit(Event("train_step", label=f"{current} step {e.data}/{config.max_steps}", data=e.data))

            results[c.arch.archid] = train_one(c, corpus, config, on_event=step)
            finished(c)
    else:
        import multiprocessing
        from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

        threads = max(1, (os.cpu_count() or 1) // workers)
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker, initargs=(threads,)) as pool:
            pending = {pool.submit(train_one, c, corpus, config): c for c in todo}
            try:
                while pending:
                    done, _ = wait(pending, return_when=FIRST_COMPLETED)
                    for future in done:
                        c = pending.pop(future)
                        results[c.arch.archid] = future.result()
                        finished(c)
            except BaseException:
                pool.shutdown(cancel_futures=True)
                raise
    return [results[c.arch.archid] for c in candidates]


# ---- the report ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProxyStats:
    label: str
    spearman: float
    spearman_ci95: tuple[float, float]
    kendall: float
    kendall_ci95: tuple[float, float]
    top_overlap: int
    top_k: int


@dataclass(frozen=True)
class Report:
    """Each proxy against validation perplexity; the architectures with their values; a verdict."""

    verdict: str
    proxies: dict[str, ProxyStats]
    architectures: list[JsonObject]  # a table row per architecture: its results and proxy values
    budget: JsonObject
    corpus: str
    folder: Path | None = None  # where report.json and the plot were written
    wall_s: float = 0.0

    def to_dict(self) -> JsonObject:
        return {**dataclasses.asdict(self), "folder": str(self.folder) if self.folder else None}

    def view(self) -> list[Block]:
        proxies = [registry.get(n) for n in self.proxies if registry.get(n).quality_proxy]
        rows = [[row["label"][:20], shape(row["arch"]), *(o.format(row[o.name]) for o in proxies),
                 f"{row['val_perplexity']:,.1f}", _rate(row["tokens_per_second"])]
                for row in sorted(self.architectures, key=lambda r: r[registry.QUALITY])]  # fmt: skip
        stats = [[p.label, f"{p.spearman:.3f}", f"{p.spearman_ci95[0]:.2f}..{p.spearman_ci95[1]:.2f}",
                  f"{p.kendall:.3f}", f"{p.kendall_ci95[0]:.2f}..{p.kendall_ci95[1]:.2f}", f"{p.top_overlap}/{p.top_k}"]
                 for p in self.proxies.values()]  # fmt: skip
        return [
            Table(["architecture", "L/d/ff/h", *(o.header() for o in proxies), "val ppl", "tok/s"], rows, left=2),
            Table(["proxy", "Spearman", "95% CI", "Kendall", "95% CI ", "top 25%"], stats),
            Lines([self.verdict]),
            Note(f"report and plot: {self.folder} ({self.wall_s:.0f} s)"),
        ]


def _rate(tokens_per_second: float | None) -> str:
    return f"{tokens_per_second:,.0f}" if tokens_per_second else "-"


def proxy_values(candidates: Sequence[Candidate], seq_len: int) -> dict[str, list[float]]:
    """Every quality proxy of the registry for each candidate (FLOPs: one training block of
    `seq_len` tokens), and each objective a search run measured for all of them."""
    settings = MeasureSettings(seq_len=seq_len, graph="logits")
    from lts_cli.measurer import exact_values

    out: dict[str, list[float]] = {}
    for o in registry.REGISTRY.values():
        if o.quality_proxy:
            out[o.name] = [exact_values(c.arch, settings, [o.name])[o.name] for c in candidates]
        elif all(o.name in c.run_values for c in candidates):
            out[o.name] = [c.run_values[o.name] for c in candidates]
    return out


def report(candidates: Sequence[Candidate], results: Sequence[Trained], seq_len: int, seed: int = 0) -> Report:
    """Each proxy against validation perplexity: Spearman and Kendall with bootstrap 95% intervals,
    top-quarter overlap; the architectures' table; a one-line verdict that states the numbers."""
    quality = [-r.val_perplexity for r in results]
    proxies = proxy_values(candidates, seq_len)
    rows = {}
    for name, values in proxies.items():
        o = registry.get(name)
        overlap, k = top_overlap(values, quality, TOP_SHARE)
        rows[name] = ProxyStats(
            o.label if o.quality_proxy else f"{o.label} (from the run)",
            spearman(values, quality),
            bootstrap(spearman, values, quality, seed=seed),
            kendall(values, quality),
            bootstrap(kendall, values, quality, seed=seed),
            overlap,
            k,
        )
    main, first = rows[registry.QUALITY], results[0]
    spent = f"{first.train['max_steps']} steps of {first.train['batch_size']}x{first.train['seq_len']} tokens"
    verdict = (
        f"non-embedding parameters rank these {len(results)} architectures by validation perplexity with Spearman "
        f"{main.spearman:.2f} (95% CI {main.spearman_ci95[0]:.2f} to {main.spearman_ci95[1]:.2f}) and Kendall "
        f"{main.kendall:.2f}; {main.top_overlap} of the {main.top_k} best by perplexity are among the "
        f"{main.top_k} with the most ({first.corpus}, {spent} each)"
    )
    table = [
        {"archid": r.archid, "label": r.label, "arch": r.arch, "val_perplexity": r.val_perplexity,
         "tokens_per_second": r.tokens_per_second, **{name: values[i] for name, values in proxies.items()}}
        for i, r in enumerate(results)
    ]  # fmt: skip
    return Report(verdict, rows, table, first.train, first.corpus)


def study(
    selection: Selection,
    corpus: Corpus,
    config: TrainConfig,
    tokens: int | None = None,
    workers: int = 1,
    on_event: OnEvent | None = None,
) -> Report:
    """The whole study: choose the architectures, train what is not cached, report, and write the
    report (report.json and a plot, proxy/reports/<time>/)."""
    from lts_cli.plots import proxy_plot

    started = time.perf_counter()
    config = budget(config, tokens)
    chosen = candidates(selection, config.seed)
    results = run(chosen, corpus, config, workers, on_event)
    done = report(chosen, results, config.seq_len, seed=config.seed)
    folder = workspace.ensure_home() / workspace.PROXY / "reports" / time.strftime("%Y%m%d-%H%M%S")
    written = dataclasses.replace(done, folder=folder, wall_s=time.perf_counter() - started)
    workspace.atomic_write_json(folder / "report.json", written.to_dict())
    workspace.atomic_write_bytes(folder / "proxy.png", proxy_plot(written))
    folders.write_manifest(folder)
    return written
