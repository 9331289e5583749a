"""The claims report: ``index.html`` (inline CSS, relative images: opens offline) and ``report.md``,
built once as a list of blocks (headings, paragraphs, tables, figures, code) and rendered to
both. One section per claim: verdict, statement, source, figure, rule, checks with their
intervals, open settings with the sensitivity sweep, and the experiments with their spec hashes.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .base import fmt
from .engine import ClaimResult, Plan

CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{border-bottom:2px solid #444}h2{margin-top:2em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:1em 0;font-size:0.9em}th,td{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f0f0f0}figure{margin:0.5em 0}figure img{max-width:100%;border:1px solid #eee}
figcaption{font-size:0.85em;color:#555}pre{background:#f7f7f7;padding:0.8em;overflow:auto;font-size:0.85em}
.reproduced{color:#070;font-weight:bold}.not{color:#b00;font-weight:bold}.inconclusive{color:#a60;font-weight:bold}
"""


@dataclass
class Block:
    kind: str  # "h1", "h2", "h3", "p", "table", "figure", "pre"
    content: Any


def _status_class(status: str) -> str:
    return {"reproduced": "reproduced", "not reproduced": "not"}.get(status, "inconclusive")


def summary_rows(results: list[ClaimResult]) -> list[list[str]]:
    rows = [["id", "claim", "expected", "measured (95% CI)", "verdict"]]
    rows += [[r.claim.id, r.claim.title, r.claim.expected, r.verdict.measured, r.verdict.status] for r in results]
    return rows


def _design(p: Plan, name: str) -> str:
    exp = p.sweeps[name]
    s = exp.spec
    opts = "; ".join(f"{lab} {grid}" + ("" if o.lr_schedule == "constant" else f" ({o.lr_schedule} lr schedule)")
                     for lab, grid, o in zip(exp.labels(), exp.grids, s.optimizers))
    return (f"problem {s.problem.name} {dict(s.problem.args) or ''}, seeds {list(s.seeds)}, {exp.steps} steps, "
            f"dtype {s.dtype}; {opts}")  # fmt: skip


def blocks(results: list[ClaimResult], p: Plan, outdir: Path, header: str) -> list[Block]:
    out = [Block("h1", "precond claims report"), Block("p", header), Block("table", summary_rows(results))]
    for r in results:
        c, v = r.claim, r.verdict
        out.append(Block("h2", (f"{c.id} {c.title}: ", v.status)))
        out.append(Block("p", f"Claim: {c.statement}"))
        out.append(Block("p", f"Source: {c.source}. Size: {r.size}."))
        out.append(Block("p", f"Measured: {v.measured}"))
        if r.figure is not None:
            out.append(Block("figure", (r.figure.relative_to(outdir).as_posix(), f"{c.id}: {c.title}")))
        out.append(Block("h3", "Rule (fixed before the runs)"))
        out.append(Block("p", c.rule))
        rows = [["check", "estimate", "95% CI", "claim", "status", "note"]]
        for k in v.checks:
            ci = "" if k.low is None else f"[{fmt(k.low)}, {fmt(k.high)}]"
            rows.append([k.name, fmt(k.estimate), ci, f"{k.op} {fmt(k.threshold)}", k.status, k.note])
        out.append(Block("table", rows))
        for note in v.notes:
            out.append(Block("p", note))
        if c.open_settings:
            out.append(Block("h3", "Open settings"))
            rows = [["setting", "choice", "why", "sweep"]]
            rows += [[s.name, fmt(s.choice), s.why, ", ".join(fmt(x) for x in s.values)] for s in c.open_settings]
            out.append(Block("table", rows))
            if r.sensitivity:
                rows = [["setting = value", "verdict", "measured"]]
                rows.append([f"(chosen) " + ", ".join(f"{s.param} = {fmt(s.choice)}" for s in c.open_settings), v.status,
                             v.measured])  # fmt: skip
                rows += [[f"{s.setting.param} = {fmt(s.value)}", s.verdict.status, s.verdict.measured] for s in r.sensitivity]
                out.append(Block("table", rows))
        out.append(Block("h3", "Experiments"))
        rows = [["tag", "experiment (store name)", "spec hash", "runs", "design"]]
        rows += [[e["tag"], e["name"], e["spec_hash"], str(e["runs"]), _design(p, e["name"])] for e in r.experiments]
        out.append(Block("table", rows))
    return out


def _cell_html(c: str, header: bool) -> str:
    cls = _status_class(c) if c in ("reproduced", "not reproduced", "inconclusive") else ""
    tag = "th" if header else "td"
    return f"<{tag}{f' class={cls!r}' if cls else ''}>{html.escape(c)}</{tag}>"


def to_html(bs: list[Block]) -> str:
    h = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>precond claims</title><style>{CSS}</style></head><body>"]
    for b in bs:
        if b.kind == "table":
            head = "".join(_cell_html(x, True) for x in b.content[0])
            body = "".join("<tr>" + "".join(_cell_html(x, False) for x in row) + "</tr>" for row in b.content[1:])
            h.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        elif b.kind == "figure":
            src, cap = b.content
            svg = Path(src).with_suffix(".svg").as_posix()
            h.append(f"<figure><a href='{html.escape(svg)}'><img src='{html.escape(src)}' alt='{html.escape(cap)}'></a>"
                     f"<figcaption>{html.escape(cap)} (click for SVG)</figcaption></figure>")  # fmt: skip
        elif b.kind == "h2":
            title, status = b.content
            h.append(f"<h2>{html.escape(title)}<span class='{_status_class(status)}'>{html.escape(status)}</span></h2>")
        elif b.kind == "pre":
            h.append(f"<pre>{html.escape(b.content)}</pre>")
        else:
            h.append(f"<{b.kind}>{html.escape(b.content)}</{b.kind}>")
    return "\n".join(h + ["</body></html>"])


def to_markdown(bs: list[Block]) -> str:
    md: list[str] = []
    for b in bs:
        if b.kind == "table":
            esc = [[x.replace("|", "\\|").replace("\n", " ") for x in row] for row in b.content]
            md += ["| " + " | ".join(esc[0]) + " |", "|" + "---|" * len(esc[0])] + ["| " + " | ".join(r) + " |" for r in esc[1:]]
        elif b.kind == "figure":
            md.append(f"![{b.content[1]}]({b.content[0]})")
        elif b.kind == "h2":
            md.append(f"## {b.content[0]}**{b.content[1]}**")
        elif b.kind in ("h1", "h3"):
            md.append(("# " if b.kind == "h1" else "### ") + b.content)
        elif b.kind == "pre":
            md += ["```", b.content, "```"]
        else:
            md.append(b.content)
        md.append("")
    return "\n".join(md)


def write(results: list[ClaimResult], p: Plan, outdir: str | Path, header: str) -> Path:
    """Write ``outdir/index.html`` and ``outdir/report.md`` (figures are already under ``outdir/fig``)."""
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    bs = blocks(results, p, outdir, header)
    (outdir / "index.html").write_text(to_html(bs))
    (outdir / "report.md").write_text(to_markdown(bs))
    return outdir / "index.html"
