"""The timeline of a run as SVG, written by hand: small, and the same bytes every time.

Time runs left to right, one column per statement.  A lane per CPU shows
its current task, filled with the colour of the mm it has active, hatched
while the task borrows it lazily (task->mm is NULL); a black triangle at the
top of a lane is a page-table load, an arrow from lane to lane an IPI, a bar
at the bottom of a lane the CPU whose block ran the statement.  Below the
lanes, a row per mm: mm_users (solid) and mm_count (dashed) as step lines,
and a band saying live (the mm's colour), zombie (hatched) or freed (grey).
Every cell's <title> (the tooltip) has the statement and its trace lines.
A failure is a dashed black frame around its column and a cross above it.

Long runs fold: every FOLD statements the timeline starts again below,
lanes repeated, with a row only for the mms alive in that fold, so the size
grows with the statements and not with statements x mms.  A run of more than
MAX_FOLDS folds draws only its first HEAD_FOLDS, its last TAIL_FOLDS and the
failure's fold with the one before it; each stretch of folds between them is
one band of counts (_folded), so the file's size no longer grows with the run.

Colours: the Okabe-Ito palette (Okabe & Ito 2008), legible to colour-blind
readers; init_mm is grey.  Nothing says anything by colour alone: names
are written in the cells, hatching and dashes survive a grey-scale print.

Determinism: integer coordinates (one decimal where a step line needs it),
ids numbered in order of creation, nothing from a clock or a hash.
"""
from __future__ import annotations

from xml.sax.saxutils import escape, quoteattr

from mmscn.dsl.diagnostics import printable
from mmscn.formats import Format
from mmscn.interpreter.report import format_event

# Okabe-Ito, black left out (text and marks are black); init_mm gets grey
PALETTE = ("#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7")
INIT_MM_COLOUR = "#BBBBBB"
FREED_COLOUR = "#DDDDDD"

FOLD = 60               # statements per fold
# a run of more than MAX_FOLDS folds draws these in full and counts what the others did
MAX_FOLDS, HEAD_FOLDS, TAIL_FOLDS = 10, 4, 4
COL_W = 22              # px per statement
WIDE_COL_W, WIDE_UP_TO = 34, 40     # a short run gets wider columns: more names fit in the cells
LEFT = 118              # the labels' margin
LANE_H, LANE_GAP = 28, 4
MM_H, MM_GAP = 42, 4
AXIS_H = 18
FOLD_GAP = 26
HEAD_H = 78             # title and legend
LEGEND_W = 950
TIP_EVENTS = 12         # trace lines in one tooltip, at most
TIP_STATEMENTS = 8      # statements listed in a cell's tooltip after the first
# what every cell, column and mm stretch shares, said once (never a fill an element sets
# itself: a style sheet's rule beats the element's own fill attribute)
# (scoped to the picture: inlined in an HTML page, a <style> applies to the whole page)
STYLE = "".join(".mmscn-timeline " + rule for rule in (
    ".step rect{fill:#f4f4f4;stroke:#fff}", ".cell rect{stroke:#fff;stroke-width:1}",
    ".cell text{font-size:10px;stroke:#fff;stroke-width:3px;paint-order:stroke}",
    ".mm-state .bg{fill:#fafafa;stroke:#fff}", ".mm-state .band{stroke:#fff;stroke-width:.5}",
    ".mm-state text.n{font-size:8px}",
    ".mm-state text.w{font-size:7px;stroke:#fff;stroke-width:2px;paint-order:stroke}",
    ".ran{fill:#000}", ".pgtable-load{fill:#000}"))
DAGGER, ELLIPSIS, CROSS = "\u2020", "\u2026", "\u2717"


def _t(text) -> str:
    """Text content: the terminal sanitiser (no control character survives), then XML escaping.
    Line by line: printable() is fast on a line that is printable already."""
    return escape("\n".join(map(printable, str(text).split("\n"))))


def _a(text) -> str:
    return quoteattr(printable(str(text)))


def _n(x) -> str:
    """A coordinate: an integer, or one decimal."""
    r = round(x, 1)
    return str(int(r)) if r == int(r) else f"{r:.1f}"


def _width(text: str, size: int) -> float:
    return len(text) * size * 0.65     # DejaVu Sans averages about 0.6 em: a little room


class _Ids:
    def __init__(self, prefix: str):
        self.p = prefix

    def __call__(self, name: str) -> str:
        return f"{self.p}{name}"


def svg(tl, prefix: str = "", full: bool = False) -> str:
    """The timeline as a standalone SVG document (``prefix`` keeps its ids apart from
    other SVGs inlined in the same HTML page; ``full`` draws every fold of a long run)."""
    ids = _Ids(prefix)
    cols = tl.columns
    ncols = len(cols)
    ncpus = tl.ncpus
    colour = _colours(tl.mm_names)
    life = _lives(tl)                 # mm -> (first column, column freed or None)
    folds = [(a, min(a + FOLD, ncols)) for a in range(0, max(ncols, 1), FOLD)]
    per_fold = min(max(ncols, 1), FOLD)
    cw = WIDE_COL_W if ncols <= WIDE_UP_TO else COL_W
    width = max(LEFT + per_fold * cw + 20, LEGEND_W, int(_width(_title(tl), 14)) + 20)
    lanes_h = ncpus * (LANE_H + LANE_GAP)
    out = []
    vmax = {m: max(1, u, c) for m, (u, c, _) in tl.boot_mms.items()}
    for c in cols:
        for m, (u, n, _) in c.mms.items():
            vmax[m] = max(vmax.get(m, 1), u, n)
    current = dict(tl.boot_mms)     # each mm's values after the column before the fold
    y = HEAD_H
    body = []
    order = [m for m in tl.mm_names if m in life]         # by creation, so by the column each appears in
    order.sort(key=lambda m: life[m][0])
    alive, nxt = [], 0
    drawn = _drawn_folds(len(folds), tl.failure[0] // FOLD if tl.failure else None, full)
    skipped = None                  # the first column of the folds not drawn since the last one drawn
    for fi, (a, b) in enumerate(folds):
        while nxt < len(order) and life[order[nxt]][0] < b:
            alive.append(order[nxt])
            nxt += 1
        # the mms that exist in the fold: made before its end, not freed before its start
        alive = [m for m in alive if life[m][1] is None or life[m][1] >= a]
        if fi not in drawn:
            for i in range(a, b):
                current.update(cols[i].mms)
            skipped = a if skipped is None else skipped
            continue
        if skipped is not None:
            y += _folded(body, tl, skipped, a, y, life, current, ids, width) + FOLD_GAP
            skipped = None
        mms = alive
        vals = {m: [] for m in mms}
        for i in range(a, b):
            current.update(cols[i].mms)
            for m in mms:
                vals[m].append(current.get(m))
        h = _fold(body, tl, fi, a, b, y, mms, vals, vmax, colour, ids, cw)
        y += h + FOLD_GAP
    height = y
    out.append(f'<svg xmlns="http://www.w3.org/2000/svg" class="mmscn-timeline" width="{width}" height="{height}" '
               f'viewBox="0 0 {width} {height}" font-family="DejaVu Sans, Verdana, sans-serif" font-size="11">')
    out.append(f'<title>{_t(_title(tl))}</title>')
    out.append(f"<style>{STYLE}</style>")
    out.append(_defs(tl.mm_names, colour, ids))
    out.append(f'<rect width="{width}" height="{height}" fill="#ffffff"/>')
    out.append(_head(tl, width, ids))
    out += body
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _drawn_folds(n: int, failure_fold, full: bool) -> set:
    """The folds drawn in full: all of a short run (or ``full``); of a long one the first
    HEAD_FOLDS, the last TAIL_FOLDS, and the failure's fold with the one before it."""
    if full or n <= MAX_FOLDS:
        return set(range(n))
    out = set(range(HEAD_FOLDS)) | set(range(n - TAIL_FOLDS, n))
    if failure_fold is not None:
        out |= {max(0, failure_fold - 1), failure_fold}
    return out


def _names(names, most=3) -> str:
    names = list(names)
    shown = ", ".join(names[:most])
    return shown + (f", {ELLIPSIS} {len(names) - most:,} more" if len(names) > most else "")


def _folded(out, tl, a, b, y0, life, current, ids, width) -> int:
    """Statements a..b-1 not drawn, as one band of counts: per CPU its stretches, tasks,
    page-table loads and IPIs; the mms made and freed; the statements' verdicts."""
    cols = tl.columns[a:b]
    n = len(cols)
    first, last = cols[0], cols[-1]
    head = (f"{ELLIPSIS} statements {a + 1}-{b} (lines {first.line}-{last.line}) folded: "
            f"{n:,} statement{'s' if n != 1 else ''} counted, not drawn")
    tip = f"{head}\nfirst: line {first.line}: {first.text}\nlast: line {last.line}: {last.text}"
    rows = []
    prev = cols[0].lanes if a == 0 else tl.columns[a - 1].lanes
    for cpu in range(tl.ncpus):
        stretches, tasks, was = 0, {}, prev[cpu]
        for c in cols:
            cell = c.lanes[cpu]
            if cell != was:
                stretches += 1
                was = cell
            tasks[cell[0]] = None
        loads = sum(c.loads.count(cpu) for c in cols)
        ipis = sum(1 for c in cols for (_, dst, _) in c.ipis if dst == cpu)
        ran = sum(1 for c in cols if c.cpu == cpu)
        text = (f"{stretches:,} change{'s' if stretches != 1 else ''} of task or mm, "
                f"{len(tasks):,} task{'s' if len(tasks) != 1 else ''} ({_names(tasks)}), "
                f"{loads:,} page-table load{'s' if loads != 1 else ''}, {ipis:,} IPI{'s' if ipis != 1 else ''} received")
        if ran:
            text += f", ran {ran:,} statement{'s' if ran != 1 else ''} of its block"
        rows.append((f"cpu{cpu}", text))
    made = [m for m, (s0, _) in life.items() if a <= s0 < b and m not in tl.boot_mms]
    freed = [m for m, (_, s1) in life.items() if s1 is not None and a <= s1 < b]
    end = [f"{m} {u}/{c} {st}" for m, (u, c, st) in current.items() if life.get(m, (0, None))[1] is None
           or life[m][1] >= b]
    rows.append(("mms", f"{len(made):,} made ({_names(made)}), {len(freed):,} freed; after it: {_names(end, 4)}"))
    verdicts = {}
    for c in cols:
        verdicts[c.status] = verdicts.get(c.status, 0) + 1
    rows.append(("statements", ", ".join(f"{k:,} {s}" for s, k in verdicts.items())))
    h = 22 + 14 * len(rows) + 6
    out.append(f'<g class="folded" data-from="{a + 1}" data-to="{b}" data-statements="{n}"><title>{_t(tip)}</title>'
               f'<rect x="4" y="{y0}" width="{width - 8}" height="{h}" fill="#f4f4f4" stroke="#999999" '
               f'stroke-dasharray="4 3"/><text x="10" y="{y0 + 15}" font-weight="bold">{_t(head)}</text>')
    for k, (label, text) in enumerate(rows):
        ty = y0 + 32 + 14 * k
        out.append(f'<text x="10" y="{ty}" font-size="10" font-weight="bold">{_t(label)}</text>'
                   f'<text x="{LEFT}" y="{ty}" font-size="10">{_t(text)}</text>')
    out.append("</g>")
    return h


def _title(tl) -> str:
    name = f"{tl.path}: {tl.title}" if tl.title else tl.path
    n = len(tl.columns)
    return f"{name} (arch {tl.arch}, {tl.ncpus} CPU{'s' if tl.ncpus != 1 else ''}, {n} statement" \
           f"{'s' if n != 1 else ''}): {tl.verdict}"


def _colours(names) -> dict:
    out, i = {}, 0
    for m in names:
        if m == "@init_mm":
            out[m] = INIT_MM_COLOUR
        else:
            out[m] = PALETTE[i % len(PALETTE)]
            i += 1
    return out


def _defs(names, colour, ids) -> str:
    used = sorted(set(colour.values()), key=lambda c: ((INIT_MM_COLOUR,) + PALETTE).index(c))
    parts = ["<defs>"]
    for c in used:
        parts.append(f'<pattern id="{ids("h" + c[1:])}" patternUnits="userSpaceOnUse" width="6" height="6" '
                     f'patternTransform="rotate(45)"><rect width="6" height="6" fill="#ffffff"/>'
                     f'<rect width="3" height="6" fill="{c}"/></pattern>')
    parts.append(f'<pattern id="{ids("off")}" patternUnits="userSpaceOnUse" width="8" height="8">'
                 f'<rect width="8" height="8" fill="#ffffff"/><path d="M0,0 L8,8 M8,0 L0,8" stroke="#999999" '
                 f'stroke-width="1"/></pattern>')
    parts.append(f'<marker id="{ids("arrow")}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
                 f'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 Z" fill="#000000"/>'
                 f'</marker>')
    parts.append("</defs>")
    return "".join(parts)


def _fill(mm: str, lazy: bool, colour, ids) -> str:
    c = colour.get(mm, INIT_MM_COLOUR)
    return f"url(#{ids('h' + c[1:])})" if lazy else c


def _head(tl, width, ids) -> str:
    p = [f'<text x="10" y="18" font-size="14" font-weight="bold">{_t(_title(tl))}</text>']
    if tl.note:
        p.append(f'<text x="10" y="34" font-size="11">{_t(tl.note)}</text>')
    # the legend, in shapes as much as colours
    y = 50
    x = 10
    p.append(f'<g class="legend" font-size="10">')
    p.append(f'<rect x="{x}" y="{y - 9}" width="18" height="11" fill="{PALETTE[0]}"/>'
             f'<text x="{x + 22}" y="{y}">active mm (its colour)</text>')
    x += 140
    p.append(f'<rect x="{x}" y="{y - 9}" width="18" height="11" fill="url(#{ids("h" + PALETTE[0][1:])})" '
             f'stroke="#000000" stroke-width="0.5"/><text x="{x + 22}" y="{y}">borrowed lazily (mm NULL)</text>')
    x += 165
    p.append(f'<path d="M{x},{y - 9} L{x + 10},{y - 9} L{x + 5},{y - 2} Z" fill="#000000"/>'
             f'<text x="{x + 14}" y="{y}">page-table load</text>')
    x += 105
    p.append(f'<line x1="{x}" y1="{y - 4}" x2="{x + 22}" y2="{y - 4}" stroke="#000000" stroke-width="1.5" '
             f'marker-end="url(#{ids("arrow")})"/><text x="{x + 28}" y="{y}">IPI, sender to target</text>')
    x += 150
    p.append(f'<rect x="{x}" y="{y - 3}" width="18" height="3" fill="#000000"/>'
             f'<text x="{x + 22}" y="{y}">CPU that ran it</text>')
    x += 110
    p.append(f'<line x1="{x}" y1="{y - 4}" x2="{x + 18}" y2="{y - 4}" stroke="#000000" stroke-width="1.5"/>'
             f'<text x="{x + 22}" y="{y}">mm_users</text>')
    x += 80
    p.append(f'<line x1="{x}" y1="{y - 4}" x2="{x + 18}" y2="{y - 4}" stroke="#444444" stroke-width="1.5" '
             f'stroke-dasharray="4 2"/><text x="{x + 22}" y="{y}">mm_count</text>')
    y, x = 66, 10
    p.append(f'<line x1="{x}" y1="{y - 4}" x2="{x + 22}" y2="{y - 4}" stroke="#000000" stroke-width="1.5" '
             f'stroke-dasharray="3 2" marker-end="url(#{ids("arrow")})"/><text x="{x + 28}" y="{y}">IPI sent by no '
             f'CPU of the scenario (a top-level flush or mmput)</text>')
    x += 400
    p.append(f'<text x="{x}" y="{y}">A{DAGGER}: A has exited (still current)</text>')
    x += 175
    p.append(f'<rect x="{x}" y="{y - 9}" width="18" height="11" fill="url(#{ids("off")})"/>'
             f'<text x="{x + 22}" y="{y}">offline</text>')
    x += 70
    p.append(f'<path d="M{x},{y - 9} L{x + 9},{y} M{x + 9},{y - 9} L{x},{y}" stroke="#000000" stroke-width="2"/>'
             f'<text x="{x + 14}" y="{y}">the failure (its column framed)</text>')
    p.append("</g>")
    return "".join(p)


def _lives(tl) -> dict:
    """mm -> (column it appears in, column it is freed in or None); boot's mms from column 0."""
    out = {m: [0, None] for m in tl.boot_mms}
    for i, c in enumerate(tl.columns):
        for m, (_, _, state) in c.mms.items():
            if m not in out:
                out[m] = [i, None]
            if state == "freed" and out[m][1] is None:
                out[m][1] = i
    return {m: tuple(v) for m, v in out.items()}


def _col_tip(c) -> str:
    where = f"cpu{c.cpu}: " if c.cpu is not None else ""
    lines = [f"line {c.line}: {where}{c.text}" + ("" if c.status == "ok" else f" ({c.status})")]
    evs = c.events
    for ev in evs[:TIP_EVENTS]:
        lines.append("  " + " ".join(format_event(ev).split()))
    if len(evs) > TIP_EVENTS:
        lines.append(f"  ... {len(evs) - TIP_EVENTS} more trace lines")
    if c.message:
        lines.append(c.message)
    return "\n".join(lines)


def _fold(out, tl, fi, a, b, y0, mms, vals, vmax, colour, ids, cw) -> int:
    cols = tl.columns
    ncpus = tl.ncpus
    x0 = LEFT
    brief = len(cols) > FOLD
    first = cols[a].line if a < len(cols) else 0
    last = cols[b - 1].line if b - 1 < len(cols) and b > a else first
    out.append(f'<g class="fold" id="{ids(f"fold{fi}")}">')
    out.append(f'<text x="10" y="{y0 + 12}" font-size="10" fill="#333333">statements {a + 1}-{b} '
               f'(lines {first}-{last})</text>')
    # the axis: a line number per column, each with the statement and its trace as tooltip
    ya = y0 + 16
    out.append(f'<g class="axis" font-size="8" text-anchor="middle">')
    every = 1 if max((len(str(c.line)) for c in cols[a:b]), default=1) <= 4 else 2
    for i in range(a, b):
        c = cols[i]
        x = x0 + (i - a) * cw
        label = f'<text x="{x + cw // 2}" y="{ya + 12}">{c.line}</text>' if (i - a) % every == 0 else ""
        out.append(f'<g class="step"><title>{_t(_col_tip(c))}</title><rect x="{x}" y="{ya}" width="{cw}" '
                   f'height="{AXIS_H}"/>{label}</g>')
    out.append("</g>")
    yl = ya + AXIS_H + 4
    # the lanes
    for cpu in range(ncpus):
        ly = yl + cpu * (LANE_H + LANE_GAP)
        out.append(f'<g class="lane" data-cpu="cpu{cpu}">')
        out.append(f'<text x="10" y="{ly + LANE_H // 2 + 4}" font-weight="bold">cpu{cpu}</text>')
        i = a
        while i < b:
            j = i + 1
            cell = cols[i].lanes[cpu]
            while j < b and cols[j].lanes[cpu] == cell:
                j += 1
            out.append(_cell(tl, cpu, i, j, a, ly, colour, ids, cw, brief))
            i = j
        # the CPU whose block ran the statement
        for i in range(a, b):
            if cols[i].cpu == cpu:
                x = x0 + (i - a) * cw
                out.append(f'<rect class="ran" x="{x + 2}" y="{ly + LANE_H - 3}" width="{cw - 4}" height="3"/>')
        # page-table loads
        for i in range(a, b):
            n = cols[i].loads.count(cpu)
            for k in range(n):
                cx = x0 + (i - a) * cw + cw // 2 + (k - (n - 1) / 2) * 8
                out.append(f'<path class="pgtable-load" d="M{_n(cx - 4)},{ly} L{_n(cx + 4)},{ly} L{_n(cx)},{ly + 7} Z">'
                           f'<title>{_t(f"page-table load on cpu{cpu} (line {cols[i].line})")}</title></path>')
        out.append("</g>")
    # IPIs, over the lanes
    for i in range(a, b):
        ipis = cols[i].ipis
        for k, (src, dst, fn) in enumerate(ipis):
            cx = x0 + (i - a) * cw + 5 + (k * 5) % (cw - 8)
            ty = yl + dst * (LANE_H + LANE_GAP) + LANE_H // 2
            if src is None:
                sy, dash, who = yl - 4, ' stroke-dasharray="3 2"', "a CPU outside the scenario (a top-level flush)"
            else:
                sy, dash, who = yl + src * (LANE_H + LANE_GAP) + LANE_H // 2, "", f"cpu{src}"
            if src == dst:
                sy = ty - LANE_H // 2
            ty2 = ty - 3 if ty > sy else ty + 3
            tip = f"IPI from {who} to cpu{dst}: {fn} (line {cols[i].line})"
            out.append(f'<g class="ipi"><title>{_t(tip)}</title>'
                       f'<line x1="{cx}" y1="{sy}" x2="{cx}" y2="{ty2}" stroke="#ffffff" stroke-width="4"/>'
                       f'<line x1="{cx}" y1="{sy}" x2="{cx}" y2="{ty2}" stroke="#000000" stroke-width="1.5"{dash} '
                       f'marker-end="url(#{ids("arrow")})"/></g>')
    ym = yl + ncpus * (LANE_H + LANE_GAP) + 6
    for mi, m in enumerate(mms):
        _mm_row(out, tl, m, a, b, ym + mi * (MM_H + MM_GAP), vals[m], vmax[m], colour, ids, cw, brief)
    bottom = ym + len(mms) * (MM_H + MM_GAP)
    # the failure
    f = tl.failure
    if f is not None and a <= f[0] < b:
        i, line, msg = f
        x = x0 + (i - a) * cw
        tip = f"line {line}: {msg}"
        out.append(f'<g class="failure"><title>{_t(tip)}</title>'
                   f'<rect x="{x - 1}" y="{ya - 2}" width="{cw + 2}" height="{bottom - ya}" fill="none" '
                   f'stroke="#000000" stroke-width="2.5" stroke-dasharray="5 3"/>'
                   f'<path d="M{x + 5},{ya + 2} L{x + cw - 5},{ya + AXIS_H - 2} M{x + cw - 5},{ya + 2} '
                   f'L{x + 5},{ya + AXIS_H - 2}" stroke="#000000" stroke-width="2.5"/></g>')
        import textwrap
        # 120 characters of 11 px bold fit the narrowest picture (LEGEND_W)
        wrapped = textwrap.wrap(f"line {line}: {msg}", 120, break_on_hyphens=False)[:4]
        for n, text in enumerate(wrapped):
            mark = CROSS + " " if n == 0 else "  "
            out.append(f'<text class="failure-label" x="10" y="{bottom + 12 + 14 * n}" font-size="11" '
                       f'font-weight="bold">{_t(mark + text)}</text>')
        bottom += 4 + 14 * len(wrapped)
    out.append("</g>")
    return bottom - y0


def _cell(tl, cpu, i, j, a, ly, colour, ids, cw, brief) -> str:
    cols = tl.columns
    task, mm, lazy, online, dead = cols[i].lanes[cpu]
    x = LEFT + (i - a) * cw
    w = (j - i) * cw
    lines = (f"line {cols[i].line}" if j - i == 1 else f"lines {cols[i].line}-{cols[j - 1].line}")
    if not online:
        head = f"cpu{cpu}: offline ({lines})"
        fill, label = f"url(#{ids('off')})", "offline"
    else:
        how = "borrowed lazily (mm NULL)" if lazy else "its own mm"
        head = f"cpu{cpu}: {task}{' (dead)' if dead else ''} on {mm}, {how} ({lines})"
        fill = _fill(mm, lazy, colour, ids)
        name = task + (DAGGER if dead else "")
        label = f"{name} {mm}"
        if _width(label, 10) > w - 4:
            label = name
    # a folded (long) run keeps the trace lines in the column headers' tooltips only
    tip = [head, _col_tip(cols[i]) if not brief else f"line {cols[i].line}: {cols[i].text}"]
    rest = cols[i + 1:j]
    if rest and not brief:
        shown = rest[:TIP_STATEMENTS]
        tip.append("then " + "; ".join(f"line {c.line}: {c.text}" for c in shown)
                   + (f"; ... {len(rest) - len(shown)} more" if len(rest) > len(shown) else ""))
    text = ""
    if _width(label, 10) <= w - 4:
        text = f'<text x="{x + 3}" y="{ly + LANE_H // 2 + 4}">{_t(label)}</text>'
    return (f'<g class="cell"><title>{_t(chr(10).join(tip))}</title><rect x="{x}" y="{ly}" width="{w}" '
            f'height="{LANE_H}" fill="{fill}"/>{text}</g>')


def _mm_row(out, tl, m, a, b, y, vals, vmax, colour, ids, cw, brief) -> None:
    """One mm's row in the fold: ``vals`` its (users, count, state) after each column (None before it exists)."""
    cols = tl.columns
    out.append(f'<g class="mm" data-mm={_a(m)}>')
    out.append(f'<rect x="10" y="{y + 6}" width="10" height="10" fill="{colour.get(m, INIT_MM_COLOUR)}" '
               f'stroke="#000000" stroke-width="0.5"/>')
    name = m if len(m) <= 14 else m[:13] + ELLIPSIS
    out.append(f'<text x="24" y="{y + 15}" font-weight="bold">{_t(name)}</text>')
    out.append(f'<text x="24" y="{y + 28}" font-size="9" fill="#333333">users/count</text>')
    top, h = y + 14, MM_H - 26       # the step lines, between the numbers and the band
    band_y = y + MM_H - 9
    lines = {"users": [], "count": []}      # step lines: [(x0, x1, y)] per counter
    i = a
    while i < b:
        if vals[i - a] is None:
            i += 1
            continue
        j = i + 1
        while j < b and vals[j - a] == vals[i - a]:
            j += 1
        u, c, state = vals[i - a]
        x, w = LEFT + (i - a) * cw, (j - i) * cw
        where = f"line {cols[i].line}" if j - i == 1 else f"lines {cols[i].line}-{cols[j - 1].line}"
        tip = f"{m}: mm_users {u}, mm_count {c}, {state} ({where})"
        band = FREED_COLOUR if state == "freed" else _fill(m, state == "zombie", colour, ids)
        label = f"{u}/{c}"
        num = (f'<text class="n" x="{x + 2}" y="{y + 10}">{label}</text>'
               if _width(label, 8) <= w - 2 and state != "freed" else "")
        word = (f'<text class="w" x="{x + 2}" y="{band_y + 7}">{state}</text>'
                if _width(state, 7) <= w - 3 and not brief else "")
        out.append(f'<g class="mm-state" data-state="{state}"><title>{_t(tip)}</title>'
                   + ("" if brief else f'<rect class="bg" x="{x}" y="{y}" width="{w}" height="{MM_H - 9}"/>') +
                   f'<rect class="band" x="{x}" y="{band_y}" width="{w}" height="8" fill="{band}"/>{num}{word}</g>')
        if state != "freed":
            # count 1.5 px higher, so equal counters stay two lines
            lines["users"].append((x, x + w, top + h - u * h / vmax))
            lines["count"].append((x, x + w, top + h - c * h / vmax - 1.5))
        i = j
    for key, attrs in (("count", 'stroke="#444444" stroke-dasharray="4 2"'), ("users", 'stroke="#000000"')):
        if lines[key]:
            out.append(f'<path class="mm-{key}" d="{_steps(lines[key])}" fill="none" stroke-width="1.5" {attrs}/>')
    out.append("</g>")


def _steps(segments) -> str:
    """Horizontal segments as one path, joined by vertical steps where they touch."""
    out = []
    end = None
    for x0, x1, yy in segments:
        out.append(f"V{_n(yy)} H{x1}" if end == x0 else f"M{x0},{_n(yy)} H{x1}")
        end = x1
    return " ".join(out)


# ---------------------------------------------------------------- formats of the registry (mmscn/formats.py)
class RunSvg(Format):
    """A run's timeline (("run", "svg"): `mmscn run --svg OUT`, `mmscn draw`); opts: ``recorder``, the
    record.Recorder that made the run, and ``full`` (draw every fold)."""

    def item(self, result, lines, states=None, judgement=None) -> None:
        from .record import run_timeline
        self.out.write(svg(run_timeline(result.scenario, lines, rec=self.opts["recorder"]),
                           full=self.opts.get("full", False)))


class ExploreSvg(Format):
    """The failing interleaving an exploration found (("explore", "svg"): `mmscn explore --svg OUT`);
    nothing when it found none. opts: ``arch``, the command line's."""

    def item(self, model, res, steps, judgement=None) -> None:
        from .record import witness_timeline
        tl = witness_timeline(model, res, self.opts.get("arch"))
        if tl is not None:
            self.out.write(svg(tl))
