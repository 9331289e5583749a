"""Two renderers of a :class:`~.document.Document`: a standalone HTML page (inline CSS,
relative images, so it opens offline) and Markdown (tables as pipe tables, figures as
images, folded blocks as ``<details>``)."""

from __future__ import annotations

import html

from .document import Block, Bold, Code, Details, Document, Figure, Inline, Paragraph, Preformatted, Table

CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{border-bottom:2px solid #444}h2{margin-top:2em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;margin:1em 0;font-size:0.9em}th,td{border:1px solid #ccc;padding:4px 8px;text-align:left}
th{background:#f0f0f0}figure{display:inline-block;margin:0.5em;vertical-align:top}figure img{max-width:520px;border:1px solid #eee}
figcaption{font-size:0.85em;color:#555}pre{background:#f7f7f7;padding:0.8em;overflow:auto;font-size:0.85em}
.note{color:#a60}.small{font-size:0.85em;color:#555}
"""


# ---- HTML ------------------------------------------------------------------------------------------
def _html_inline(part: Inline) -> str:
    if isinstance(part, Bold):
        return f"<b>{html.escape(part.text)}</b>"
    if isinstance(part, Code):
        return f"<code>{html.escape(part.text)}</code>"
    return html.escape(part)


def _html_block(block: Block) -> str:
    e = html.escape
    if isinstance(block, Paragraph):
        cls = f" class='{block.style}'" if block.style else ""
        return f"<p{cls}>{''.join(map(_html_inline, block.parts))}</p>"
    if isinstance(block, Table):
        head = "".join(f"<th>{e(c)}</th>" for c in block.rows[0])
        body = "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in r) + "</tr>" for r in block.rows[1:])
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    if isinstance(block, Figure):
        img = f"<img src='{e(block.src)}' alt='{e(block.caption)}'>"
        if block.link is not None:
            img = f"<a href='{e(block.link)}'>{img}</a>"
        return f"<figure>{img}<figcaption>{e(block.caption)}</figcaption></figure>"
    if isinstance(block, Preformatted):
        return f"<pre>{e(block.text)}</pre>"
    if isinstance(block, Details):
        return f"<details><summary>{e(block.summary)}</summary>{''.join(map(_html_block, block.blocks))}</details>"
    raise TypeError(f"not a report block: {block!r}")


def to_html(doc: Document) -> str:
    out = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(doc.title)}</title><style>{CSS}</style></head><body>",
           f"<h1>{html.escape(doc.heading)}</h1>"]  # fmt: skip
    out += map(_html_block, doc.blocks)
    for s in doc.sections:
        anchor = f" id='{html.escape(s.anchor)}'" if s.anchor else ""
        out.append(f"<h2{anchor}>{html.escape(s.title)}</h2>")
        out += map(_html_block, s.blocks)
    out.append("</body></html>")
    return "\n".join(out)


# ---- Markdown --------------------------------------------------------------------------------------
def _md_inline(part: Inline) -> str:
    if isinstance(part, Bold):
        return f"**{part.text}**"
    if isinstance(part, Code):
        return f"`{part.text}`"
    return part


def _md_block(block: Block) -> list[str]:
    """The block's lines, then a blank one."""
    if isinstance(block, Paragraph):
        return ["".join(map(_md_inline, block.parts)), ""]
    if isinstance(block, Table):
        rows = [[c.replace("|", "\\|") for c in r] for r in block.rows]
        lines = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
        return lines + ["| " + " | ".join(r) + " |" for r in rows[1:]] + [""]
    if isinstance(block, Figure):
        return [f"![{block.caption}]({block.src})", ""]
    if isinstance(block, Preformatted):
        return [f"```{block.language}", block.text.strip(), "```", ""]
    if isinstance(block, Details):
        inner = [line for b in block.blocks for line in _md_block(b)]
        return [f"<details><summary>{block.summary}</summary>", "", *inner, "</details>", ""]
    raise TypeError(f"not a report block: {block!r}")


def to_markdown(doc: Document) -> str:
    out = [f"# {doc.heading}", ""]
    out += [line for b in doc.blocks for line in _md_block(b)]
    for s in doc.sections:
        out += [f"## {s.title}", ""]
        out += [line for b in s.blocks for line in _md_block(b)]
    return "\n".join(out)
