"""`lts proxy`'s study: choose the architectures, train them (proxy.run), and report how well each
cheap proxy ranks them by validation perplexity (Spearman and Kendall with bootstrap intervals,
top-quarter overlap), with the table of architectures and a verdict that states the numbers."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from lts_cli import folders, proxy, workspace
from lts_cli import objectives as registry
from lts_cli.corpus import Corpus
from lts_cli.proxy import Candidate, Selection, Trained
from lts_cli.rankstats import bootstrap, kendall, spearman, top_overlap
from lts_cli.settings import MeasureSettings
from lts_cli.training import TrainConfig
from lts_cli.views import Block, JsonObject, Lines, Note, OnEvent, Table, shape

SPLIT = {"training steps": "train", "evaluating": "evaluate", "checkpointing": "checkpoint", "tokenizing": "tokenize"}
TOP_SHARE = 0.25  # the best quarter: how many of the best by perplexity a proxy puts among its best


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
    seconds: dict[str, float] = field(default_factory=dict)  # of the trainings run now: where their time went
    workers: int = 1

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
            Lines([self.verdict, *self._time()]),
            Note(f"report and plot: {self.folder} ({self.wall_s:.0f} s)"),
        ]

    def _time(self) -> list[str]:
        """How the wall time split: into the trainings' steps, evaluations, checkpoints, tokenizing."""
        if not self.seconds:
            return ["every architecture was cached: nothing trained now"]
        whole = self.wall_s * self.workers
        parts = ", ".join(f"{name} {value:,.0f} s ({value / whole:.0%})" for name, value in self.seconds.items())
        of = f"{self.wall_s:,.0f} s" + (f" x {self.workers} workers" if self.workers > 1 else "")
        return [f"time, of {of}: {parts}"]


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
         "tokens_per_second": r.tokens_per_second, "evaluated_tokens": r.evaluated_tokens,
         **{name: values[i] for name, values in proxies.items()}}
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
    eval_tokens: int | None = None,
) -> Report:
    """The whole study: choose the architectures, train what is not cached, report, and write the
    report (report.json and a plot, proxy/reports/<time>/). `tokens`, `eval_tokens`: see proxy.budget."""
    from lts_cli.plots import proxy_plot

    started = time.perf_counter()
    config = proxy.budget(config, tokens, eval_tokens)
    chosen = proxy.candidates(selection, config.seed)
    results, fresh = proxy.run(chosen, corpus, config, workers, on_event)
    done = report(chosen, results, config.seq_len, seed=config.seed)
    folder = workspace.ensure_home() / workspace.PROXY / "reports" / time.strftime("%Y%m%d-%H%M%S")
    wall = time.perf_counter() - started
    split = {name: sum(r.seconds.get(k, 0.0) for r in fresh) for name, k in SPLIT.items()} if fresh else {}
    if split:
        split["other"] = max(0.0, wall * workers - sum(split.values()))
    written = dataclasses.replace(done, folder=folder, wall_s=wall, seconds=split, workers=workers)
    workspace.atomic_write_json(folder / "report.json", written.to_dict())
    workspace.atomic_write_bytes(folder / "proxy.png", proxy_plot(written))
    folders.write_manifest(folder)
    return written
