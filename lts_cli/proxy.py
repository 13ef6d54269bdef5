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
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from lts_cli import workspace
from lts_cli.config import as_plain, from_mapping
from lts_cli.corpus import Corpus
from lts_cli.errors import ConfigError, LtsError, UsageError
from lts_cli.gallery import Resolved, entry_for
from lts_cli.search_config import SearchConfig
from lts_cli.space import Arch
from lts_cli.training import TrainConfig
from lts_cli.views import Event, JsonObject, OnEvent

MIN_ARCHS = 4  # a rank correlation of fewer says nothing
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


EVAL_SHARE = 0.25  # the default validation sample: this share of the tokens each architecture trains on


def budget(base: TrainConfig, tokens: int | None = None, eval_tokens: int | None = None) -> TrainConfig:
    """The training config of a proxy run: `tokens` (if given) sets the steps. One evaluation, at the
    end, on the same fixed validation sample for every architecture: `eval_tokens`, by default a
    quarter of the tokens each trains on (EVAL_SHARE; at most the periodic sample of `lts train`), so
    evaluating costs a small share of training. No test split, no start evaluation; a checkpoint every
    `save_minutes` (none at the end: the weights are dropped), so an interrupt loses little."""
    steps = base.max_steps if tokens is None else max(1, math.ceil(tokens / (base.batch_size * base.seq_len)))
    trained = steps * base.batch_size * base.seq_len
    if eval_tokens is None:
        eval_tokens = min(TrainConfig().eval_tokens, max(base.seq_len, int(EVAL_SHARE * trained)))
    return dataclasses.replace(
        base, max_steps=steps, eval_every=steps + 1, eval_tokens=eval_tokens, final_eval="sample",
        eval_on_start=False, test=False, save_every=steps, keep_checkpoints=1, max_time=None,
    )  # fmt: skip


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
    train_seconds: float  # in optimizer steps
    evaluated_tokens: int = 0  # what val_loss was computed on
    seconds: dict[str, float] = field(default_factory=dict)  # where its wall time went (training.Clock)


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
    result = train(target, config, corpus, name=key, on_event=on_event, models_root=root, keep_model=False)
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
        train_seconds=m["seconds"]["train"],
        evaluated_tokens=m["evaluated_tokens"]["validation"],
        seconds=m["seconds"],
    )
    workspace.atomic_write_json(_results_dir() / f"{key}.json", dataclasses.asdict(record))
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
) -> tuple[list[Trained], list[Trained]]:
    """Train what is not cached (in `workers` processes, each with its share of the cores): the
    results in the order of `candidates`, and those trained now."""
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
    return [results[c.arch.archid] for c in candidates], [results[c.arch.archid] for c in todo]
