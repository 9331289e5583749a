"""A static report of a results store: ``index.html`` (inline CSS, relative images, opens
offline) and ``report.md`` with the same tables and figures, for every experiment.

The report is one :class:`~.document.Document`, rendered by :func:`~.render.to_html` and
:func:`~.render.to_markdown`. Its sections come from a list of section makers
(:data:`SECTIONS`: one section per experiment, then the comparison across problems), each
a function of a :class:`ReportContext` returning sections; ``build_report(...,
sections=[*SECTIONS, mine])`` adds others.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from . import plots
from .document import Bold, Code, Details, Document, Figure, Paragraph, Preformatted, Section, Table
from .render import to_html, to_markdown
from .store import Store
from .tuning import TunedResult, table, table_note, test_higher_is_better, tune_store

PROTOCOL = ("Protocol: per optimizer, the hyperparameters with the best validation metric (mean over seeds, a diverged "
            "seed counts as the worst) are chosen; their test metric is reported with a 95% interval over seeds whose "
            "method each table names (losses: geometric mean and Student-t interval of the logarithm; otherwise: mean and "
            "bootstrap interval); a tie at the floating-point floor or within a relative 1e-6 is ranked as a tie.")  # fmt: skip


@dataclass
class ReportContext:
    """What section makers read: the open store, where figures go, and each experiment's tuned results."""

    store: Store
    outdir: Path
    figdir: Path
    experiments: list[dict[str, Any]]  # Store.experiments()
    tuned: dict[str, list[TunedResult]]  # by experiment name

    def figure(self, path: Path, caption: str, link_svg: bool = True) -> Figure:
        """A figure of the PNG at ``path`` (under ``outdir``), linking to its SVG."""
        rel = path.relative_to(self.outdir).as_posix()
        return Figure(rel, caption, Path(rel).with_suffix(".svg").as_posix() if link_svg else None)


SectionMaker = Callable[[ReportContext], list[Section]]


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def experiment_figures(store: Store, exp: dict[str, Any], tuned: list[TunedResult], figdir: Path) -> list[tuple[Path, str]]:
    name, meta = exp["name"], exp["meta"]
    runs = store.runs(name)
    slug = _slug(name)
    figs: list[tuple[Path, str]] = []

    def add(p: Path | None, caption: str) -> None:
        if p is not None:
            figs.append((p, caption))

    add(plots.metric_curves(runs, tuned, "train_loss", figdir / f"{slug}-train_loss"),
        "training loss of each optimizer's tuned setting (estimate and 95% CI over seeds, the title names the method)")
    if meta["val_metric"] != "train_loss":
        add(plots.metric_curves(runs, tuned, meta["val_metric"], figdir / f"{slug}-{_slug(meta['val_metric'])}",
                                higher_is_better=meta["higher_is_better"]),
            f"{meta['val_metric']} (the tuning metric) of the tuned settings")
    add(plots.lr_sensitivity(runs, tuned, meta["val_metric"], figdir / f"{slug}-lr_sensitivity", higher_is_better=meta["higher_is_better"]),
        f"final {meta['val_metric']} against the learning rate, other hyperparameters at their tuned values")
    if any("trajectory" in r["history"] for r in runs[:1] + runs[-1:]):
        from precond.problems import resolve

        try:
            cfg = runs[0]["config"]
            problem = resolve(cfg["problem"], cfg["problem_args"]).build()
        except Exception:  # noqa: BLE001 - a figure less
            problem = None
        add(plots.trajectories(problem, runs, tuned, figdir / f"{slug}-trajectories"),
            "iterates of the tuned settings (first seed) over the contour plot of the objective")
    add(plots.adaptive_fraction(runs, tuned, figdir / f"{slug}-adaptive_fraction"),
        "AGD: fraction of coordinates taking the adaptive branch")
    for p in plots.diagnostic_histograms(runs, tuned, figdir / f"{slug}-hist"):
        add(p, "per-coordinate diagnostic at the end of the tuned runs")
    return figs


def experiment_sections(ctx: ReportContext) -> list[Section]:
    """One section per experiment: what ran, the tuned table, the figures, failures, the spec."""
    out = []
    for exp in ctx.experiments:
        name, meta, tuned = exp["name"], exp["meta"], ctx.tuned[exp["name"]]
        runs = ctx.store.runs(name, history=False)
        n_div = sum(r["status"] == "diverged" for r in runs)
        done_keys = {r["key"] for r in runs}
        open_fails = [f for f in ctx.store.failures(name) if f["key"] not in done_keys]
        envs = {json.dumps({k: r["env"].get(k) for k in ("precond", "torch", "git_commit")}, sort_keys=True) for r in runs}
        info: list[Any] = ["problem ", Bold(exp["problem"]), f"; {len(runs)} runs ({n_div} diverged, {len(open_fails)} failed); "
                           f"{meta.get('steps')} steps; tuned on ", Bold(meta["val_metric"]),
                           f" ({'higher' if meta['higher_is_better'] else 'lower'} is better), reported on ", Bold(meta["test_metric"]), "."]  # fmt: skip
        if exp.get("spec_hash") is None and runs:
            info += [" ", Bold("Runs of unknown spec"), ": the store was written before precond tied each run to its spec, "
                     "so they may pool edited versions of it."]  # fmt: skip
        blocks: list[Any] = [Paragraph(tuple(info))]
        if tuned:
            blocks += [Table(table(tuned, meta["test_metric"])), Paragraph((table_note(tuned),), "small")]
        blocks += [ctx.figure(p, cap) for p, cap in experiment_figures(ctx.store, exp, tuned, ctx.figdir)]
        if open_fails:
            blocks += [Paragraph(("failed runs (retried on the next ", Code("precond run"), "):"), "note"),
                       Preformatted("\n\n".join(f["error"].strip().splitlines()[-1] for f in open_fails[:20]))]  # fmt: skip
        blocks.append(Details("spec and environment", [Preformatted(exp["spec"], "toml"), Preformatted("\n".join(sorted(envs)))]))
        out.append(Section(name, blocks, anchor=_slug(name)))
    return out


def across_problems(ctx: ReportContext) -> list[Section]:
    """The Dolan-More performance profile of the tuned test estimates, or why there is none."""
    costs: dict[str, dict[str, float]] = {}
    for exp in ctx.experiments:
        for t in ctx.tuned[exp["name"]]:
            cost = t.estimate if t.n_diverged < t.n_seeds else math.inf
            costs.setdefault(exp["name"], {})[t.label] = plots.profile_costs(cost, test_higher_is_better(exp["meta"]))
    prof = plots.performance_profile(costs, ctx.figdir / "performance_profile")
    if prof is None:
        why = (f"No performance profile: it compares optimizers across problems, and this store has "
               f"{len(costs)} experiment(s) with tuned results ({', '.join(costs) or 'none'}) and "
               f"{len({s for c in costs.values() for s in c})} optimizer(s); it needs at least 2 of each.")  # fmt: skip
        return [Section("Across problems", [Paragraph((why,), "small")])]
    ratios = plots.profile_table(costs)
    cap = (f"Dolan-More performance profile of {', '.join(ratios[0][1:])} over {len(ratios) - 1} problems "
           f"({', '.join(r[0] for r in ratios[1:])}); cost: the tuned test estimate (1 - accuracy where higher is "
           "better); the table gives each ratio to the best on its problem")  # fmt: skip
    return [Section("Across problems", [ctx.figure(prof, cap, link_svg=False), Table(ratios)])]


#: the report's sections, in order (issue 13's claims add theirs through ``build_report(sections=...)``)
SECTIONS: tuple[SectionMaker, ...] = (experiment_sections, across_problems)


def build_report(store_path: str | Path, outdir: str | Path, sections: Sequence[SectionMaker] = SECTIONS) -> Path:
    """Write ``outdir/index.html``, ``outdir/report.md`` and ``outdir/fig/*``; returns the HTML path."""
    outdir = Path(outdir)
    figdir = outdir / "fig"
    store = Store(store_path)  # first: a file that is no store leaves no empty report folder behind
    try:
        figdir.mkdir(parents=True, exist_ok=True)
        exps = store.experiments()
        ctx = ReportContext(store, outdir, figdir, exps, {e["name"]: tune_store(store, e["name"]) for e in exps})
        intro = Paragraph(("store: ", Code(str(Path(store_path).resolve())), f"; {len(exps)} experiment(s). {PROTOCOL}"), "small")
        doc = Document("precond report", "precond experiments report", [intro], [s for make in sections for s in make(ctx)])
        (outdir / "index.html").write_text(to_html(doc))
        (outdir / "report.md").write_text(to_markdown(doc))
    finally:
        store.close()
    return outdir / "index.html"
