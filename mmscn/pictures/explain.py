"""What `mmscn compare` says besides its table: each column's first failure, located,
and with `--diff A,B` where the traces of two policies part, event by event."""
from __future__ import annotations

import difflib

from mmscn.dsl.diagnostics import Diagnostic, printable


def first_failures_text(cols: list, lines: list, color: bool = False) -> str:
    """Under the table, after a blank line: per policy, its first failure with the line and a caret."""
    failing = [c for c in cols if c.get("failure")]
    if not failing:
        return "\nevery policy ran without a failure\n"
    out = ["", "first failure of each column:"]       # a blank line ends the table
    for c in cols:
        f = c.get("failure")
        if f is None:
            out.append(f"  {c['arch']}: no failure")
            continue
        src = lines[f["line"] - 1] if 0 < f["line"] <= len(lines) else None
        d = Diagnostic(f["file"], f["line"], f["column"], f["message"], f["severity"], src)
        text = d.render(color).split("\n")
        out.append(f"  {c['arch']}: " + text[0])
        out += ["  " + t for t in text[1:]]
    return "\n".join(out) + "\n"


def _events(sc, lines, arch) -> list:
    """[(line, statement, [formatted event])] of the run under ``arch``."""
    from mmscn.interpreter.report import format_event, statement_text
    from mmscn.interpreter.runner import Runner
    r = Runner(sc, lines, arch, trace=True).run()
    return [(st.stmt.line, statement_text(lines, st.stmt), [" ".join(format_event(e).split()) for e in st.events])
            for st in r.steps]


def trace_diff(sc, lines: list, a: str, b: str) -> dict:
    """The traces of policies a and b statement by statement, each event marked as in
    both, only in a, or only in b; where they first part."""
    ta, tb = _events(sc, lines, a), _events(sc, lines, b)
    steps = []
    parted = None
    for i in range(max(len(ta), len(tb))):
        sa = ta[i] if i < len(ta) else None
        sb = tb[i] if i < len(tb) else None
        line, text = (sa or sb)[0], (sa or sb)[1]
        ea, eb = (sa[2] if sa else []), (sb[2] if sb else [])
        events = []
        sm = difflib.SequenceMatcher(a=ea, b=eb, autojunk=False)
        for op, i1, i2, j1, j2 in sm.get_opcodes():
            if op == "equal":
                events += [{"side": "both", "event": e} for e in ea[i1:i2]]
            else:
                events += [{"side": "a", "event": e} for e in ea[i1:i2]]
                events += [{"side": "b", "event": e} for e in eb[j1:j2]]
        same = ea == eb and sa is not None and sb is not None
        if not same and parted is None:
            k = next((n for n, e in enumerate(events) if e["side"] != "both"), 0)
            parted = {"step": i + 1, "line": line, "statement": text, "event": k + 1,
                      "ran": "both" if sa and sb else ("a" if sa else "b")}
        steps.append({"step": i + 1, "line": line, "statement": text, "same": same,
                      "ran": "both" if sa and sb else ("a" if sa else "b"), "events": events})
    return {"a": a, "b": b, "parted_at": parted, "steps": steps}


def diff_text(d: dict) -> str:
    """The diff for a terminal: statements before the parting summarised, then every
    statement with its events: ` ` both, `-` only a, `+` only b."""
    a, b = d["a"], d["b"]
    out = [f"--- {a}", f"+++ {b}"]
    p = d["parted_at"]
    if p is None:
        out.append(f"the traces of {a} and {b} are the same, event for event "
                   f"({len(d['steps'])} statements)")
        return printable("\n".join(out), lines=True) + "\n"
    out.append(f"they part at statement {p['step']} (line {p['line']}: {p['statement']}), event {p['event']}")
    before = p["step"] - 1
    if before:
        n = sum(len(s["events"]) for s in d["steps"][:before])
        out.append(f"  (the {before} statement{'s' if before != 1 else ''} before it: the same {n} events)")
    for s in d["steps"][before:]:
        ran = "" if s["ran"] == "both" else f"  (runs only under {a if s['ran'] == 'a' else b})"
        if s["same"]:
            out.append(f"= {s['line']:5d}  {s['statement']}  (the same {len(s['events'])} events)")
            continue
        out.append(f"! {s['line']:5d}  {s['statement']}{ran}")
        for e in s["events"]:
            mark = {"both": " ", "a": "-", "b": "+"}[e["side"]]
            out.append(f"{mark}         {e['event']}")
    return printable("\n".join(out), lines=True) + "\n"
