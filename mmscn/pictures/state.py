"""The whole state after one line: `mmscn run FILE --state-at LINE` (text or --json)."""
from __future__ import annotations

import json
import sys

from mmscn.dsl.diagnostics import plural, printable


def _table(cols: list, rows: list) -> list:
    cells = [[str(c) for c in cols]] + [["-" if v is None else str(v) for v in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(cols))]
    return ["  " + "  ".join(v.ljust(widths[i]) for i, v in enumerate(r)).rstrip() for r in cells]


def state_text(state: dict) -> str:
    """CPUs, tasks and mms as tables, the policy's hardware fields as columns (loaded_mm,
    mm_cpumask, the PCB's ptbr) where the policy models them."""
    yn = {True: "yes", False: "no"}

    def show(v):
        if isinstance(v, bool):
            return yn[v]
        if isinstance(v, list):
            return "{" + ", ".join(v) + "}"
        return v

    out = []
    for name, key, cols in (("CPUs", "cpus", ["cpu", "online", "curr", "active_mm", "lazy", "loaded_mm"]),
                            ("tasks", "tasks", ["name", "kind", "state", "cpu", "mm", "active_mm", "ptbr"]),
                            ("mms", "mms", ["name", "users", "count", "state", "cpumask"])):
        rows = state[key]
        cols = [c for c in cols if any(c in r for r in rows)]
        out.append(name)
        out += _table(cols, [[show(r.get(c)) for c in cols] for r in rows])
    return printable("\n".join(out), lines=True) + "\n"


def statement_lines(sc) -> list:
    """The lines that hold a statement that runs (not an `expect`), sorted."""
    from mmscn.dsl import ast as A
    stmts = list(sc.stmts) + [st for b in sc.blocks for st in b.stmts]
    return sorted({st.line for st in stmts if not isinstance(st, A.Expect)})


def print_state_at(rec, lines: list, args, color: bool) -> int:
    """Print the state after line args.state_at of the run ``rec`` recorded; the exit status."""
    from mmscn.exits import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK
    from mmscn.interpreter.report import json_head
    r = rec.result
    sc = r.scenario
    line = args.state_at
    path = printable(sc.path)
    if rec.at_line is None:
        have = statement_lines(sc)
        if line not in have:
            near = min(have, key=lambda n: (abs(n - line), n)) if have else None
            sys.stderr.write(f"mmscn run: {path}:{line}: no statement at line {line}"
                             + (f"; the nearest is at line {near}: {printable(lines[near - 1].strip())}"
                                if near is not None else "; the file has none")
                             + "\n")
            return EXIT_BAD_INPUT
        for d in r.diagnostics:
            sys.stderr.write(d.render(color) + "\n")
        last = r.steps[-1].stmt.line if r.steps else None
        sys.stderr.write(f"mmscn run: {path}:{line}: the run never reached line {line}"
                         + (f": it stopped at line {last}" if last is not None else "") + "\n")
        return EXIT_FAILED
    step, state = rec.at_line
    from mmscn.interpreter.report import statement_text
    text = statement_text(lines, step.stmt)
    if args.json:
        doc = {**json_head("state"), "file": sc.path, "title": sc.name, "arch": r.arch, "cpus": sc.ncpus,
               "expect": sc.outcome, "passed": r.passed, "line": line, "statement": text,
               "status": step.status, "state": state}
        if step.cpu is not None:
            doc["cpu"] = f"cpu{step.cpu}"
        json.dump(doc, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        where = f"cpu{step.cpu}: " if step.cpu is not None else ""
        mark = "" if step.status == "ok" else f" ({step.status})"
        sys.stdout.write(printable(f"{sc.path}: the state after line {line} ({where}{text}){mark}, "
                                   f"arch {r.arch}, {plural(sc.ncpus, 'CPU')}") + "\n")
        sys.stdout.write(state_text(state))
    return EXIT_OK if r.passed else EXIT_FAILED
