"""`mmscn compare TRACE`: what lazy TLB costs on a recorded workload, under every policy.

The trace is imported once and each statement runs on one replay per policy
as it streams (memory flat in the trace's length).  Per policy: the context
switches that went lazy, the page-table loads, the mm_count atomics, the
IPIs, the shootdowns (a lazy CPU moved off a dying mm to init_mm by its
teardown: x86's flush_tlb_func -> leave_mm from exit_mmap's flush, powerpc's
exit_lazy_flush_tlb and do_shoot_lazy_tlb), and per mm the longest time it
lived as a zombie on a lazy CPU (mm_users 0, mm_count held by lazy users),
in the trace's own time.
"""
from __future__ import annotations

import json
import sys

from mmscn.interpreter.kernel import INIT_MM


class Pricer:
    def __init__(self, trace, arch: str):
        from .replay import Replay
        self.rp = Replay(trace, arch)
        self.k = self.rp.k
        self.zombie_since = {}      # mm -> trace time it became a zombie
        self.longest = {}           # mm name -> seconds
        self.at_end = set()         # mm names still zombies when the trace ends
        self.shootdowns = 0
        self.last = None

    def feed(self, rec) -> None:
        if rec.kind != "stmt" or self.rp.failure is not None:
            return
        k = self.k
        t = float(rec.time) if rec.time else self.last
        self.last = t
        watch = None
        if rec.role in ("exit", "exec") and rec.task is not None:
            ti = k.task_ix.get(rec.task.name)
            watch = k.t_mm[ti] if ti is not None else None
        loaded, active = k.c_loaded[:], [k.t_active[c] for c in k.c_curr]
        curr = k.c_curr[:]
        if not self.rp.step(rec):
            return
        for d in range(k.ncpus):
            if rec.role == "switch" and d == rec.cpu or k.c_curr[d] != curr[d] or k.t_mm[curr[d]] is not None:
                continue
            if (loaded[d] not in (None, INIT_MM) and k.c_loaded[d] == INIT_MM) or \
                    (active[d] not in (None, INIT_MM) and k.t_active[curr[d]] == INIT_MM):
                self.shootdowns += 1
        if watch is not None and k.m_users[watch] == 0 and not k.m_freed[watch]:
            self.zombie_since.setdefault(watch, t)
        if self.zombie_since:
            for m in [m for m in self.zombie_since if k.m_freed[m]]:
                self.record(m, t - self.zombie_since.pop(m))

    def record(self, m, seconds) -> None:
        name = self.k.m_name[m]
        self.longest[name] = max(self.longest.get(name, 0.0), seconds)

    def result(self) -> dict:
        for m, since in self.zombie_since.items():
            self.record(m, (self.last or since) - since)
            self.at_end.add(self.k.m_name[m])
        cost = self.rp.cost
        f = self.rp.failure
        return {"arch": self.rp.runner.policy.name, "verdict": "stopped" if f else "passed",
                "failure": f.render() if f else None, "statements": self.rp.statements,
                "lazy_switches": cost["lazy_switches"], "pgtable_loads": cost["pgtable_loads"],
                "mm_count_atomics": cost["mm_count_atomics"], "ipis": cost["ipis"], "shootdowns": self.shootdowns,
                "cost": cost,
                "zombies": {m: {"longest_s": s, "at_end": m in self.at_end} for m, s in self.longest.items()}}


def price(trace, arches: list) -> list:
    pricers = [Pricer(trace, a) for a in arches]
    for rec in trace.records():
        for p in pricers:
            p.feed(rec)
    return [p.result() for p in pricers]


ROWS = (("verdict", None), ("lazy switches", "lazy_switches"), ("page-table loads", "pgtable_loads"),
        ("mm_count atomics", "mm_count_atomics"), ("IPIs", "ipis"), ("shootdowns", "shootdowns"))
TOP = 15


def table(cols: list) -> str:
    rows = [("", [c["arch"] for c in cols])]
    for label, key in ROWS:
        rows.append((label, [c["verdict"] if key is None else f"{c[key]:,}" for c in cols]))
    rows.append(("zombie mms", [f"{len(c['zombies']):,}" for c in cols]))
    names = {}
    for c in cols:
        for m, z in c["zombies"].items():
            names[m] = max(names.get(m, 0.0), z["longest_s"])
    ranked = sorted(names, key=lambda m: -names[m])
    if ranked:
        rows.append(("longest as a zombie (ms):", [""] * len(cols)))
    for m in ranked[:TOP]:
        vals = []
        for c in cols:
            z = c["zombies"].get(m)
            vals.append("-" if z is None else f"{'>' if z['at_end'] else ''}{z['longest_s'] * 1000:.3f}")
        rows.append((f"  {m}", vals))
    w0 = max(len(label) for label, _ in rows)
    widths = [max(len(vals[i]) for _, vals in rows) for i in range(len(cols))]
    out = ["  ".join([label.ljust(w0)] + [v.rjust(widths[i]) for i, v in enumerate(vals)]).rstrip()
           for label, vals in rows]
    if len(ranked) > TOP:
        out.append(f"  ... {len(ranked) - TOP} more zombie mms (--json lists all)")
    return "\n".join(out) + "\n"


def run(args, arches: list) -> int:
    """`mmscn compare` on a trace file (mmscn/compare.py hands it over)."""
    from mmscn.exits import EXIT_BAD_INPUT, EXIT_OK
    from mmscn.dsl.diagnostics import plural
    from mmscn.interpreter.policies import UnknownPolicy
    from .importer import Trace, TraceError
    try:
        tr = Trace(args.file, getattr(args, "ps", None))
        cols = price(tr, arches)
    except TraceError as e:
        sys.stderr.write(e.render() + "\n")
        return EXIT_BAD_INPUT
    except UnknownPolicy as e:
        sys.stderr.write(f"mmscn compare: {e}\n")
        return EXIT_BAD_INPUT
    s = tr.summary
    if args.json:
        json.dump({**tr.json_head("compare-trace"), "import": s, "policies": cols}, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return EXIT_OK
    dur = float(s["last"]) - float(s["first"]) if s["first"] else None
    span = "" if dur is None else f", {dur:.3f} s of trace" if dur >= 1 else f", {dur * 1000:.3f} ms of trace"
    sys.stdout.write(f"{args.file}: {tr.fmt}, {plural(tr.ncpus, 'CPU')}{span}, {s['switches']:,} context switches, "
                     f"{s['forks']:,} forks, {s['exits']:,} exits (the trace says arch {tr.arch})\n")
    sys.stdout.write(table(cols))
    sys.stdout.write("zombie: mm_users 0 while lazy CPUs hold mm_count; `>` still one when the trace ends. "
                     "shootdowns: lazy CPUs moved to init_mm by an mm's teardown.\n")
    for c in cols:
        if c["failure"]:
            sys.stdout.write(f"{c['arch']} stopped on the trace:\n{c['failure']}\n")
    return EXIT_OK
