"""The page of a suite: `mmscn test --html FILE` and pytest's `--mmscn-html FILE`.

One self-contained HTML file a CI run can keep: every file's verdict and
time, and for each failure its located message and its timeline (inline
SVG).  No network and no external script: the style and the verdict filter
are inline, and a Content-Security-Policy forbids loading anything.  The
filter reads the page's fragment too (report.html#FAIL shows only failures),
so a link can open it filtered.
"""
from __future__ import annotations

import hashlib
from html import escape

from mmscn.dsl.diagnostics import plural, printable
from mmscn.formats import Format

VERDICTS = ("FAIL", "PASS", "SKIP")

_CSS = """
body { font-family: "DejaVu Sans", Verdana, sans-serif; font-size: 14px; margin: 1.5em; color: #000; }
h1 { font-size: 1.4em; margin: 0 0 .3em 0; }
.summary { margin: 0 0 1em 0; }
fieldset { display: inline-block; border: 1px solid #999; padding: .3em .8em; margin-bottom: 1em; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: .25em .6em; border-bottom: 1px solid #ddd; vertical-align: top; }
td.time { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
td.verdict { font-weight: bold; white-space: nowrap; }
tr.FAIL td.verdict { text-decoration: underline; }
tr.FAIL td.verdict::before { content: "\\2717 "; }
tr.PASS td.verdict::before { content: "\\2713 "; }
tr.SKIP td.verdict::before { content: "\\2013 "; }
tr.detail td { border-bottom: 2px solid #000; }
pre { background: #f4f4f4; padding: .6em; overflow-x: auto; font-size: 12px; white-space: pre; }
.timeline { overflow-x: auto; border: 1px solid #ccc; margin-top: .5em; }
[hidden] { display: none !important; }
"""

# the verdict filter: checkboxes, and the fragment (#FAIL, #FAIL,SKIP) at load
_JS = """
(function () {
  var boxes = document.querySelectorAll('#filter input');
  function apply() {
    var on = {};
    boxes.forEach(function (b) { on[b.value] = b.checked; });
    document.querySelectorAll('tbody tr').forEach(function (r) {
      r.hidden = !on[r.getAttribute('data-verdict')];
    });
  }
  var want = decodeURIComponent(location.hash.slice(1)).split(',').filter(Boolean);
  if (want.length) boxes.forEach(function (b) { b.checked = want.indexOf(b.value) >= 0; });
  boxes.forEach(function (b) { b.addEventListener('change', apply); });
  apply();
})();
"""


def _h(text) -> str:
    return escape(printable(str(text), lines=True))


def svg_prefix(path: str) -> str:
    """The id prefix of a file's inline SVG: the same for the same path, apart from other files'."""
    return "t" + hashlib.sha1(path.encode("utf-8", "surrogateescape")).hexdigest()[:10] + "-"


def failure_svg(path: str, explore: bool = False, judgement=None) -> str:
    """The timeline of a failing file: its run, or where the suite judged it by every interleaving
    (``explore``, or kernel steps: kernels.by_explore) the witness; "" when
    there is nothing to draw (the file does not parse).  ``judgement`` (mmscn/kernels.py): the
    `expect` line whose verdict failed, whose kernel is drawn (None: the file's first)."""
    from mmscn import kernels
    from mmscn.dsl.parser import ParseFailed
    from mmscn.dsl.resolve import load_file
    from mmscn.interpreter import policies
    from .record import run_timeline, witness_timeline
    from .svg import svg
    try:
        sc, text = load_file(path, policies.KnownArches())
        j = judgement or kernels.judgements(sc)[0]
    except (ParseFailed, OSError, policies.UnknownPolicy):  # the located message says why; no run to draw
        return ""
    lines = text.split("\n")
    sc = j.scenario
    tl = None
    if kernels.by_explore(sc, explore):
        from mmscn.interpreter import explore as X
        model = X.Model(sc, lines, version=j.version)
        res = X.prologue_result(model) or X.Explorer(model).run()
        tl = witness_timeline(model, res)
    if tl is None:
        tl = run_timeline(sc, lines, version=j.version)
    return svg(tl, svg_prefix(path))


def html_report(outcomes: list, seconds: float, title: str = "mmscn test") -> str:
    """The page: a row per file (verdict, file, time, why), and under each failure its report and timeline."""
    n = {v: sum(o.status == v for o in outcomes) for v in VERDICTS}
    summary = f"{n['PASS']} passed, {n['FAIL']} failed" + (f", {n['SKIP']} skipped" if n["SKIP"] else "")
    out = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
           # nothing is loaded from anywhere: the page is the whole report
           '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; style-src \'unsafe-inline\'; '
           'script-src \'unsafe-inline\'; img-src data:">',
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           f"<title>{_h(title)}: {_h(summary)}</title>", f"<style>{_CSS}</style>", "</head>", "<body>",
           f"<h1>{_h(title)}</h1>",
           f'<p class="summary">{_h(summary)} ({plural(len(outcomes), "file")}, {seconds:.2f} s)</p>',
           '<fieldset id="filter"><legend>show</legend>']
    for v in VERDICTS:
        out.append(f'<label><input type="checkbox" value="{v}" checked> {v} ({n[v]})</label> ')
    out += ["</fieldset>", "<table>", "<thead><tr><th>verdict</th><th>file</th><th>time</th><th>why</th></tr></thead>",
            "<tbody>"]
    for o in outcomes:
        why = o.reason if o.status != "PASS" else ""
        out.append(f'<tr class="{o.status}" data-verdict="{o.status}"><td class="verdict">{o.status}</td>'
                   f"<td>{_h(o.path)}{_h(o.where)}</td><td class=\"time\">{o.seconds:.3f} s</td>"
                   f"<td>{_h(why)}</td></tr>")
        if o.status == "FAIL":
            text = o.report()
            svg = getattr(o, "svg", "")
            cell = [f"<pre>{_h(text)}</pre>"] if text else []
            if svg:
                cell.append(f'<div class="timeline">{svg}</div>')
            out.append(f'<tr class="detail" data-verdict="FAIL"><td colspan="4">{"".join(cell)}</td></tr>')
    out += ["</tbody>", "</table>", f"<script>{_JS}</script>", "</body>", "</html>"]
    return "\n".join(out) + "\n"


class SuiteHtml(Format):
    """`mmscn test --html FILE`'s page (formats.py's ("test", "html")); ``seconds`` is the suite's time."""

    def __init__(self, out, **opts):
        super().__init__(out, **opts)
        self.outcomes: list = []

    def item(self, o) -> None:
        self.outcomes.append(o)

    def end(self) -> None:
        self.out.write(html_report(self.outcomes, self.opts["seconds"]))
