"""A static report of a results store: ``index.html`` (inline CSS, relative images, opens
offline) and ``report.md`` with the same tables and figures, for every experiment."""

from __future__ import annotations

import html
import json
import math
import re
from pathlib import Path
from typing import Any

from . import plots
from .store import Store
from .tuning import TunedResult, table, table_note, tune_store

CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{border-bottom:2px solid #444}h2{margin-top:2em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:1em 0;font-size:0.9em}th,td{border:1px solid #ccc;padding:4px 8px;text-align:left}
th{background:#f0f0f0}figure{display:inline-block;margin:0.5em;vertical-align:top}figure img{max-width:520px;border:1px solid #eee}
figcaption{font-size:0.85em;color:#555}pre{background:#f7f7f7;padding:0.8em;overflow:auto;font-size:0.85em}
.note{color:#a60}.small{font-size:0.85em;color:#555}
"""


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def _html_table(rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in rows[0])
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows[1:])
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _md_table(rows: list[list[str]]) -> str:
    esc = [[c.replace("|", "\\|") for c in r] for r in rows]
    lines = ["| " + " | ".join(esc[0]) + " |", "|" + "---|" * len(esc[0])]
    lines += ["| " + " | ".join(r) + " |" for r in esc[1:]]
    return "\n".join(lines)


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
    problem = None
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


def build_report(store_path: str | Path, outdir: str | Path) -> Path:
    """Write ``outdir/index.html``, ``outdir/report.md`` and ``outdir/fig/*``; returns the HTML path."""
    outdir = Path(outdir)
    figdir = outdir / "fig"
    store = Store(store_path)  # first: a file that is no store leaves no empty report folder behind
    try:
        figdir.mkdir(parents=True, exist_ok=True)
        exps = store.experiments()
        h = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>precond report</title><style>{CSS}</style></head><body>",
             "<h1>precond experiments report</h1>",
             f"<p class='small'>store: {html.escape(str(Path(store_path).resolve()))}; {len(exps)} experiment(s). "
             "Protocol: per optimizer, the hyperparameters with the best validation metric (mean over seeds, a diverged "
             "seed counts as the worst) are chosen; their test metric is reported with a 95% interval over seeds whose "
             "method each table names (losses: geometric mean and Student-t interval of the logarithm; otherwise: mean and "
             "bootstrap interval); a tie at the floating-point floor or within a relative 1e-6 is ranked as a tie.</p>"]  # fmt: skip
        md = ["# precond experiments report", "", f"store: `{store_path}`; {len(exps)} experiment(s).", ""]
        costs: dict[str, dict[str, float]] = {}
        for exp in exps:
            name, meta = exp["name"], exp["meta"]
            tuned = tune_store(store, name)
            runs = store.runs(name, history=False)
            n_div = sum(r["status"] == "diverged" for r in runs)
            fails = store.failures(name)
            done_keys = {r["key"] for r in runs}
            open_fails = [f for f in fails if f["key"] not in done_keys]
            envs = {json.dumps({k: r["env"].get(k) for k in ("precond", "torch", "git_commit")}, sort_keys=True) for r in runs}
            desc = json.loads(json.dumps(exp["spec"]))
            h.append(f"<h2 id='{_slug(name)}'>{html.escape(name)}</h2>")
            md += [f"## {name}", ""]
            info = (f"problem <b>{html.escape(exp['problem'])}</b>; {len(runs)} runs ({n_div} diverged, "
                    f"{len(open_fails)} failed); {meta.get('steps')} steps; tuned on <b>{html.escape(meta['val_metric'])}</b>"
                    f" ({'higher' if meta['higher_is_better'] else 'lower'} is better), reported on <b>{html.escape(meta['test_metric'])}</b>.")  # fmt: skip
            if exp.get("spec_hash") is None and runs:
                info += (" <b>Runs of unknown spec</b>: the store was written before precond tied each run to its spec, "
                         "so they may pool edited versions of it.")  # fmt: skip
            h.append(f"<p>{info}</p>")
            md += [re.sub("</?b>", "**", info), ""]
            if tuned:
                rows = table(tuned, meta["test_metric"])
                note = table_note(tuned)
                h.append(_html_table(rows) + f"<p class='small'>{html.escape(note)}</p>")
                md += [_md_table(rows), "", note, ""]
                for t in tuned:
                    costs.setdefault(name, {})[t.label] = plots.profile_costs(t.estimate if t.n_diverged < t.n_seeds else math.inf, meta["higher_is_better"])
            figs = experiment_figures(store, exp, tuned, figdir)
            for p, cap in figs:
                rel = p.relative_to(outdir).as_posix()
                h.append(f"<figure><a href='{html.escape(Path(rel).with_suffix('.svg').as_posix())}'><img src='{html.escape(rel)}' alt='{html.escape(cap)}'></a><figcaption>{html.escape(cap)}</figcaption></figure>")
                md += [f"![{cap}]({rel})", ""]
            if open_fails:
                h.append("<p class='note'>failed runs (retried on the next <code>precond run</code>):</p><pre>" +
                         html.escape("\n\n".join(f["error"].strip().splitlines()[-1] for f in open_fails[:20])) + "</pre>")  # fmt: skip
            h.append(f"<details><summary>spec and environment</summary><pre>{html.escape(desc)}</pre><pre>{html.escape(chr(10).join(sorted(envs)))}</pre></details>")
            md += ["<details><summary>spec</summary>", "", "```toml", desc.strip(), "```", "</details>", ""]
        h.append("<h2>Across problems</h2>")
        md += ["## Across problems", ""]
        prof = plots.performance_profile(costs, figdir / "performance_profile")
        if prof is not None:
            rel = prof.relative_to(outdir).as_posix()
            ratios = plots.profile_table(costs)
            cap = (f"Dolan-More performance profile of {', '.join(ratios[0][1:])} over {len(ratios) - 1} problems "
                   f"({', '.join(r[0] for r in ratios[1:])}); cost: the tuned test estimate (1 - accuracy where higher is "
                   "better); the table gives each ratio to the best on its problem")  # fmt: skip
            h.append(f"<figure><img src='{rel}' alt='{html.escape(cap)}'><figcaption>{html.escape(cap)}</figcaption></figure>")
            h.append(_html_table(ratios))
            md += [f"![{cap}]({rel})", "", _md_table(ratios), ""]
        else:
            why = (f"No performance profile: it compares optimizers across problems, and this store has "
                   f"{len(costs)} experiment(s) with tuned results ({', '.join(costs) or 'none'}) and "
                   f"{len({s for c in costs.values() for s in c})} optimizer(s); it needs at least 2 of each.")  # fmt: skip
            h.append(f"<p class='small'>{html.escape(why)}</p>")
            md += [why, ""]
        h.append("</body></html>")
        (outdir / "index.html").write_text("\n".join(h))
        (outdir / "report.md").write_text("\n".join(md))
    finally:
        store.close()
    return outdir / "index.html"
