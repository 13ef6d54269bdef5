"""`lts proxy`: on the user's own corpus and budget, do cheap proxies (non-embedding parameters above
all) rank GPT-2 architectures the way training them does?

A sample of architectures is trained briefly with `lts train`'s code (the Hugging Face Trainer) and
one budget for all; each result is cached in the workspace by (architecture, corpus, budget, seed),
so a rerun, a larger sample or a resume after Ctrl-C trains only what is missing (an interrupted
training resumes from its checkpoint). The report gives, for every proxy, Spearman's rho and
Kendall's tau against validation perplexity (signed so that 1 means "orders them exactly as
perplexity does, more is better") with seeded bootstrap 95% intervals, and the top-quarter overlap.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lts_cli import folders, workspace
from lts_cli.config import SearchConfig, TrainConfig, as_plain
from lts_cli.data import Corpus
from lts_cli.errors import LtsError, UsageError
from lts_cli.gallery import Resolved, entry_for
from lts_cli.rankstats import bootstrap, kendall, spearman, top_overlap
from lts_cli.space import Arch, forward_flops

MIN_ARCHS = 4  # a rank correlation of fewer says nothing
TOP_SHARE = 0.25
OnEvent = Callable[[str, dict[str, Any]], None]

# name -> (label, value from the architecture and the training sequence length)
PROXIES: dict[str, tuple[str, Callable[[Arch, int], float]]] = {
    "non_embedding_params": ("non-embedding parameters", lambda a, s: float(a.non_embedding_params)),
    "total_params": ("total parameters (tied head once)", lambda a, s: float(a.unique_params)),
    "forward_flops": (
        "forward FLOPs of one training block",
        lambda a, s: float(forward_flops(a, s, 1, last_position_head=False)),
    ),
}
RUN_PROXIES = {"onnx_latency": "ONNX latency (from the run)", "onnx_memory": "ONNX memory (from the run)"}


@dataclass
class Candidate:
    arch: Arch
    label: str
    run_values: dict[str, float] = field(default_factory=dict)


# ---- which architectures ------------------------------------------------------------------------


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
    return [
        Candidate(Arch(**r.arch), r.archid, {k: v for k, v in r.values.items() if k in RUN_PROXIES}) for r in records
    ]


def from_refs(refs: Sequence[str]) -> list[Candidate]:
    """Gallery ids, workspace archids (unique prefixes) or architecture files."""
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
        raise UsageError(
            f"--sample {count}: the search space has only {len(valid)} architectures within "
            f"{config.min_params:g}..{config.max_params:g} non-embedding parameters"
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


# ---- training, cached ----------------------------------------------------------------------------


def result_key(arch: Arch, corpus: Corpus, config: TrainConfig) -> str:
    payload = {"arch": arch.to_config(), "corpus": corpus.key, "train": as_plain(config)}
    return hashlib.sha1(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:20]


def _results_dir() -> Path:
    return workspace.ensure_home() / "proxy" / "results"


def cached(arch: Arch, corpus: Corpus, config: TrainConfig) -> dict[str, Any] | None:
    path = _results_dir() / f"{result_key(arch, corpus, config)}.json"
    if not path.is_file():
        return None
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        return None  # a damaged result is trained again
    return data


def train_one(
    candidate: Candidate, corpus: Corpus, config: TrainConfig, on_event: OnEvent | None = None
) -> dict[str, Any]:
    """Train one architecture with `lts train`'s code, keep its metrics, drop its weights."""
    from lts_cli.training import train

    key = result_key(candidate.arch, corpus, config)
    root = workspace.ensure_home() / "proxy" / "models"
    target = Resolved(candidate.arch, candidate.label, entry_for(candidate.arch))
    result = train(target, config, corpus, name=key, on_event=on_event, models_root=root)
    m = result.metrics
    record = {
        "archid": candidate.arch.archid,
        "label": candidate.label,
        "arch": candidate.arch.to_dict(),
        "corpus": corpus.name,
        "train": as_plain(config),
        "val_loss": m["val_loss"],
        "val_perplexity": m["val_perplexity"],
        "initial_val_perplexity": m["initial_val_perplexity"],
        "tokens_seen": m["tokens_seen"],
        "tokens_per_second": m["tokens_per_second"],
        "train_seconds": m["train_seconds_this_session"],
    }
    workspace.atomic_write_json(_results_dir() / f"{key}.json", record)
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
) -> list[dict[str, Any]]:
    """Train what is not cached (in `workers` processes, each with its share of the cores); the
    results in the order of `candidates`."""
    emit = on_event or (lambda kind, data: None)
    if len(candidates) < MIN_ARCHS:
        raise UsageError(f"a rank correlation needs at least {MIN_ARCHS} architectures, got {len(candidates)}")
    results: dict[str, dict[str, Any]] = {}
    for c in candidates:
        hit = cached(c.arch, corpus, config)
        if hit is not None:
            results[c.arch.archid] = hit
    todo = [c for c in candidates if c.arch.archid not in results]
    emit("start", {"total": len(candidates), "cached": len(results), "todo": len(todo)})
    if workers <= 1:
        for i, c in enumerate(todo, 1):
            emit("arch_start", {"label": c.label, "arch": c.arch, "index": i, "of": len(todo)})
            results[c.arch.archid] = train_one(c, corpus, config, on_event=lambda k, d: emit(f"train_{k}", d))
            emit("arch_done", {"label": c.label, **results[c.arch.archid]})
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
                        emit("arch_done", {"label": c.label, **results[c.arch.archid]})
            except BaseException:
                pool.shutdown(cancel_futures=True)
                raise
    return [results[c.arch.archid] for c in candidates]


# ---- the report ---------------------------------------------------------------------------------


def report(
    candidates: Sequence[Candidate], results: Sequence[dict[str, Any]], seq_len: int, seed: int = 0
) -> dict[str, Any]:
    """Each proxy against validation perplexity: Spearman and Kendall with bootstrap 95% intervals,
    top-quarter overlap; the architectures' table; a one-line verdict that states the numbers."""
    quality = [-r["val_perplexity"] for r in results]
    proxies: dict[str, list[float]] = {
        name: [fn(c.arch, seq_len) for c in candidates] for name, (_, fn) in PROXIES.items()
    }
    for name in RUN_PROXIES:
        if all(name in c.run_values for c in candidates):
            proxies[name] = [c.run_values[name] for c in candidates]
    rows: dict[str, dict[str, Any]] = {}
    for name, values in proxies.items():
        overlap, k = top_overlap(values, quality, TOP_SHARE)
        rows[name] = {
            "label": PROXIES[name][0] if name in PROXIES else RUN_PROXIES[name],
            "spearman": spearman(values, quality),
            "spearman_ci95": bootstrap(spearman, values, quality, seed=seed),
            "kendall": kendall(values, quality),
            "kendall_ci95": bootstrap(kendall, values, quality, seed=seed),
            "top_overlap": overlap,
            "top_k": k,
        }
    main = rows["non_embedding_params"]
    first = results[0]
    t = first["train"]
    spent = f"{t['max_steps']} steps of {t['batch_size']}x{t['seq_len']} tokens"
    verdict = (
        f"non-embedding parameters rank these {len(results)} architectures by validation perplexity with Spearman "
        f"{main['spearman']:.2f} (95% CI {main['spearman_ci95'][0]:.2f} to {main['spearman_ci95'][1]:.2f}) and Kendall "
        f"{main['kendall']:.2f}; {main['top_overlap']} of the {main['top_k']} best by perplexity are among the "
        f"{main['top_k']} with the most ({first['corpus']}, {spent} each)"
    )
    table = [
        {**{k: r[k] for k in ("archid", "label", "arch", "val_perplexity", "tokens_per_second")},
         **{name: values[i] for name, values in proxies.items()}}
        for i, r in enumerate(results)
    ]  # fmt: skip
    return {
        "verdict": verdict,
        "proxies": rows,
        "architectures": table,
        "budget": first["train"],
        "corpus": first["corpus"],
    }


def budget(base: TrainConfig, tokens: int | None = None) -> TrainConfig:
    """The training config of a proxy run: `tokens` (if given) sets the steps; evaluation only at
    the end, a checkpoint every quarter so an interrupt loses little."""
    steps = base.max_steps if tokens is None else max(1, math.ceil(tokens / (base.batch_size * base.seq_len)))
    return dataclasses.replace(
        base, max_steps=steps, eval_every=steps + 1, save_every=max(1, steps // 4), keep_checkpoints=1
    )
