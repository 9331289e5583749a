"""The claims report: one :class:`~precond.experiments.document.Document` (a summary table, then one
section per claim: verdict, statement, source, figure, rule, checks with their intervals, open
settings with the sensitivity sweep, the experiments with their spec hashes), rendered by the
experiments engine's renderers to ``index.html`` (opens offline) and ``report.md``.
"""

from __future__ import annotations

from pathlib import Path

from precond.experiments.document import Bold, Code, Document, Figure, Paragraph, Section, Table
from precond.experiments.render import to_html, to_markdown

from .base import fmt
from .engine import ClaimResult, Plan


def summary_rows(results: list[ClaimResult]) -> list[list[str]]:
    rows = [["id", "claim", "expected", "measured (95% CI)", "verdict"]]
    rows += [[r.claim.id, r.claim.title, r.claim.expected, r.verdict.measured, r.verdict.status] for r in results]
    return rows


def _design(p: Plan, name: str) -> str:
    exp = p.sweeps[name]
    s = exp.spec
    opts = "; ".join(f"{lab} {grid}" + ("" if o.lr_schedule == "constant" else f" ({o.lr_schedule} lr schedule)")
                     for lab, grid, o in zip(exp.labels(), exp.grids, s.optimizers))  # fmt: skip
    return (f"problem {s.problem.name} {dict(s.problem.args) or ''}, seeds {list(s.seeds)}, {exp.steps} steps, "
            f"dtype {s.dtype}; {opts}")  # fmt: skip


def section(r: ClaimResult, p: Plan, outdir: Path) -> Section:
    c, v = r.claim, r.verdict
    blocks: list = [
        Paragraph(("Verdict: ", Bold(v.status), f" (size {r.size}). Measured: {v.measured}")),
        Paragraph((Bold("Claim."), " ", c.statement)),
        Paragraph((Bold("Source."), " ", c.source)),
    ]
    if r.figure is not None:
        rel = r.figure.relative_to(outdir).as_posix()
        blocks.append(Figure(rel, f"{c.id}: {c.title}", Path(rel).with_suffix(".svg").as_posix()))
    blocks.append(Paragraph((Bold("Rule (fixed in the claim's definition before the runs)."), " ", c.rule)))
    rows = [["check", "estimate", "95% CI", "claim", "status", "note"]]
    for k in v.checks:
        rows.append([k.name, fmt(k.estimate), "" if k.low is None else f"[{fmt(k.low)}, {fmt(k.high)}]",
                     f"{k.op} {fmt(k.threshold)}", k.status, k.note])  # fmt: skip
    blocks.append(Table(rows))
    blocks += [Paragraph((note,), "small") for note in v.notes]
    if c.open_settings:
        rows = [["open setting", "choice", "why", "sweep"]]
        rows += [[s.name, fmt(s.choice), s.why, ", ".join(fmt(x) for x in s.values)] for s in c.open_settings]
        blocks.append(Table(rows))
        if r.sensitivity:
            rows = [["setting = value", "verdict", "measured"],
                    ["(chosen) " + ", ".join(f"{s.param} = {fmt(s.choice)}" for s in c.open_settings), v.status, v.measured]]
            rows += [[f"{s.setting.param} = {fmt(s.value)}", s.verdict.status, s.verdict.measured] for s in r.sensitivity]
            blocks.append(Table(rows))
    if r.experiments:
        rows = [["tag", "experiment (store name)", "spec hash", "runs", "design"]]
        rows += [[e["tag"], e["name"], e["spec_hash"], str(e["runs"]), _design(p, e["name"])] for e in r.experiments]
        blocks.append(Table(rows))
    return Section(f"{c.id} {c.title}: {v.status}", blocks, anchor=c.id)


def write(results: list[ClaimResult], p: Plan, outdir: str | Path, header: str, store: str) -> Path:
    """Write ``outdir/index.html`` and ``outdir/report.md`` (the figures are already under ``outdir/fig``)."""
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    intro = [Paragraph(("store: ", Code(str(Path(store).resolve())), f"; {header}"), "small"),
             Table(summary_rows(results))]  # fmt: skip
    doc = Document("precond claims", "precond claims report", intro, [section(r, p, outdir) for r in results])
    (outdir / "index.html").write_text(to_html(doc))
    (outdir / "report.md").write_text(to_markdown(doc))
    return outdir / "index.html"
