"""The report: HTML + Markdown with every figure, rendered offline in headless Chromium."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from precond.experiments.report import build_report
from precond.experiments.spec import parse_spec
from precond.experiments.store import Store
from precond.experiments.sweep import run_sweep

SPEC = """
name = "{name}"
seeds = [0, 1, 2]
[problem]
name = "{problem}"
[budget]
steps = 60
eval_every = 10
[[optimizers]]
name = "AGD"
[optimizers.hyperparameters]
lr = [0.003, 0.03]
[[optimizers]]
name = "Adam"
[optimizers.hyperparameters]
lr = [0.003, 0.03]
"""


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    d = tmp_path_factory.mktemp("report")
    store = d / "s.sqlite"
    for name, problem in (("rosen", "exp_toys:Rosen"), ("quad", "exp_toys:Quad")):
        run_sweep(parse_spec(SPEC.format(name=name, problem=problem)), store, workers=1, progress=False)
    with Store(store) as st:
        assert st.export_csv(d / "runs.csv") == 24
    html = build_report(store, d / "out")
    return d, html


EXPECTED = ["rosen-train_loss", "rosen-val_loss", "rosen-lr_sensitivity", "rosen-trajectories", "rosen-adaptive_fraction",
            "quad-train_loss", "quad-lr_sensitivity", "quad-adaptive_fraction", "performance_profile"]


def test_report_files_and_links(report):
    d, html = report
    text = html.read_text()
    srcs = re.findall(r"<img src='([^']+)'", text)
    for name in EXPECTED:
        assert f"fig/{name}.png" in srcs
        assert (html.parent / "fig" / f"{name}.svg").is_file()
    assert all((html.parent / s).is_file() for s in srcs)
    assert "http://" not in text and "https://" not in text  # opens offline
    # the performance profile names its solvers and problems, and tabulates every ratio
    assert "profile of AGD, Adam over 2 problems (quad, rosen)" in text and "<th>problem</th><th>AGD</th><th>Adam</th>" in text
    md = (html.parent / "report.md").read_text()
    assert "| optimizer |" in md and "](fig/rosen-trajectories.png)" in md
    assert (d / "runs.csv").read_text().count("\n") == 25


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def test_report_renders_in_chromium(report, tmp_path):
    exe = _chromium()
    if exe is None:
        pytest.skip("no chromium binary on PATH (install Debian's `chromium` to run this check)")
    _, html = report
    probe = html.with_name("probe.html")
    script = ("<script>window.addEventListener('load', () => { const out = document.createElement('pre'); out.id = 'probe';"
              "out.textContent = Array.from(document.images).map(i => i.getAttribute('src') + '=' + i.naturalWidth).join(' ');"
              "document.body.appendChild(out); });</script>")
    probe.write_text(html.read_text().replace("</body>", script + "</body>"))
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1200,2000"]
    out = subprocess.run([exe, *flags, "--virtual-time-budget=5000", "--dump-dom", probe.as_uri()],
                         capture_output=True, text=True, timeout=120)
    m = re.search(r"<pre id=\"probe\">([^<]*)</pre>", out.stdout)
    assert m, f"probe not found in the DOM; stderr: {out.stderr[-2000:]}"
    widths = dict(item.rsplit("=", 1) for item in m.group(1).split())
    for name in EXPECTED:
        assert int(widths[f"fig/{name}.png"]) > 100, widths  # the image loaded
    shot = tmp_path / "shot.png"
    subprocess.run([exe, *flags, f"--screenshot={shot}", html.as_uri()], capture_output=True, timeout=120)
    assert shot.is_file() and shot.stat().st_size > 10_000


# ---- issue 12: one document, two renderers; sections from a list --------------------------------------------
def test_one_document_renders_to_html_and_markdown():
    from precond.experiments.document import Bold, Code, Details, Document, Figure, Paragraph, Preformatted, Section, Table
    from precond.experiments.render import to_html, to_markdown

    doc = Document("t", "Title", [Paragraph(("a < b, ", Bold("x&y"), " and ", Code("run")), "small")],
                   [Section("S", [Table([["k", "v"], ["a|b", "<1>"]]), Figure("fig/f.png", "cap's", "fig/f.svg"),
                                  Details("more", [Preformatted("  x = 1\n", "toml")])], anchor="s")])  # fmt: skip
    h = to_html(doc)
    assert "<p class='small'>a &lt; b, <b>x&amp;y</b> and <code>run</code></p>" in h
    assert "<h2 id='s'>S</h2>\n<table><thead><tr><th>k</th><th>v</th></tr></thead><tbody><tr><td>a|b</td><td>&lt;1&gt;</td></tr></tbody></table>" in h
    assert "<figure><a href='fig/f.svg'><img src='fig/f.png' alt='cap&#x27;s'></a><figcaption>cap&#x27;s</figcaption></figure>" in h
    assert "<details><summary>more</summary><pre>  x = 1\n</pre></details>\n</body></html>" in h
    assert to_markdown(doc) == (
        "# Title\n\na < b, **x&y** and `run`\n\n## S\n\n| k | v |\n|---|---|\n| a\\|b | <1> |\n\n![cap's](fig/f.png)\n\n"
        "<details><summary>more</summary>\n\n```toml\nx = 1\n```\n\n</details>\n")


def test_report_sections_come_from_a_list(report, tmp_path):
    from precond.experiments.document import Paragraph, Section
    from precond.experiments.report import SECTIONS

    d, _ = report

    def claims(ctx):
        return [Section("Claims", [Paragraph((f"{len(ctx.experiments)} experiments checked",))], anchor="claims")]

    html = build_report(d / "s.sqlite", tmp_path / "out", sections=[*SECTIONS, claims]).read_text()
    md = (tmp_path / "out" / "report.md").read_text()
    assert html.index("<h2 id='quad'>quad</h2>") < html.index("<h2>Across problems</h2>") < html.index("<h2 id='claims'>Claims</h2>")
    assert html.endswith("<h2 id='claims'>Claims</h2>\n<p>2 experiments checked</p>\n</body></html>")
    assert md.endswith("## Claims\n\n2 experiments checked\n")
    only = build_report(d / "s.sqlite", tmp_path / "only", sections=[claims]).read_text()
    assert "<h2" in only and "Across problems" not in only and "<h2 id='quad'>" not in only
