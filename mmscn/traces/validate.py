"""`mmscn validate TRACE`: the model's page-table loads against the kernel's, switch by switch.

x86's switch_mm_irqs_off (arch/x86/mm/tlb.c) ends every CR3 write with
trace_tlb_flush(TLB_FLUSH_ON_TASK_SWITCH, TLB_FLUSH_ALL or 0): pages:-1
when the ASID had to be flushed, pages:0 when it was reused (PCID).  It
writes CR3 when next is not cpu_tlbstate.loaded_mm, and, with next loaded,
only when the CPU was lazy and missed a flush of next (the tlb_gen check).
So the event right after a sched_switch on the same CPU says whether that
context switch wrote CR3; the model under `arch x86` says whether it loads
other page tables (loaded_mm != next).  The replay is judged on those two,
per CPU and overall, and every disagreement is listed with what explains it.

Not judged: a switch whose CPU's CR3 the model cannot know (before the
trace's first switch into a user task on that CPU, after lost events or a
fix-up), and one whose verdict the trace does not give (it ends, or events
are lost, right after the sched_switch).  CR3 writes outside context
switches (exec's activate_mm, exit_mmap's flush moving lazy CPUs to
init_mm, kthread_use_mm, flush IPIs, temporary mms) are matched per CPU
against the model's own and counted apart.

Only the standard library is imported at module level: the CLI imports this
module when it starts.
"""
from __future__ import annotations

import json
import sys

TASK_SWITCH = "flush on task switch"


class Pred:
    __slots__ = ("rec", "loads", "old", "new", "lazy", "since", "judged", "why_not", "user")

    def __init__(self, rec, loads, old, new, lazy, since, judged, why_not, user):
        self.rec, self.loads, self.old, self.new, self.lazy, self.since = rec, loads, old, new, lazy, since
        self.judged, self.why_not, self.user = judged, why_not, user


class Validator:
    def __init__(self, trace):
        from .replay import Replay
        self.tr = trace
        self.rp = Replay(trace, "x86")
        self.k = self.rp.k
        n = trace.ncpus
        self.sync = [None] * n              # why the model cannot know the CPU's CR3 (None: it can)
        for c in range(n):
            self.sync[c] = "its CR3 before the trace's first switch into a user task"
        self.vpend = {}                     # cpu -> Pred awaiting the kernel's verdict
        self.kq = [[] for _ in range(n)]    # kernel CR3 writes outside switches, not matched yet
        self.mq = [[] for _ in range(n)]    # the model's, likewise
        self.lazy_since = [None] * n        # trace time the CPU went lazy on its loaded mm
        self.last_flush = {}                # model mm -> trace time of the last TLB flush of it
        self.per_cpu = [[0, 0] for _ in range(n)]   # [agree, judged]
        self.user = [0, 0]                  # the same for switches into tasks with an mm
        self.not_judged = {}
        self.disagreements = []
        self.catchups = 0                   # CR3 rewritten with the same page tables: tlb_gen catch-ups
        self.oos = {"matched": 0, "kernel only": [], "model only": []}
        self.kernel_events = 0

    # ---- the stream
    def feed(self, rec) -> bool:
        kind = rec.kind
        if kind == "stmt":
            return self.statement(rec)
        if kind == "switched":
            self.verdict(rec)
        elif kind == "cr3":
            self.kernel_oos(rec)
        elif kind == "flush":
            t = self.task_of(rec.task)
            if t is not None and self.k.t_mm[t] is not None:
                self.last_flush[self.k.t_mm[t]] = float(rec.time)
        elif kind == "lost":
            cpus = [rec.cpu] if rec.cpu is not None and rec.cpu < len(self.sync) else range(len(self.sync))
            for c in cpus:
                self.sync[c] = f"lost events at {rec.time}"
        return True

    def task_of(self, task):
        """The model's index of an importer task (None: idle)."""
        return None if task is None else self.k.task_ix.get(task.name)

    def statement(self, rec) -> bool:
        k = self.k
        role, c = rec.role, rec.cpu
        if role == "switch":
            old = k.c_loaded[c]
            lazy = k.c_lazy[c]
            ok = self.rp.step(rec)
            if not ok:
                return False
            new = k.c_loaded[c]
            nxt = k.c_curr[c]
            user = k.t_mm[nxt] is not None
            self.vpend[c] = Pred(rec, new != old, old, new, lazy, self.lazy_since[c], self.sync[c] is None,
                                 self.sync[c], user)
            if user:
                self.sync[c] = None
                self.lazy_since[c] = None
            elif k.c_lazy[c] and self.lazy_since[c] is None:
                self.lazy_since[c] = float(rec.time)
            return True
        before = list(k.c_loaded)
        ok = self.rp.step(rec)
        if not ok:
            return False
        if role in ("stage", "fixup"):
            t = k.c_curr[c]
            self.sync[c] = None if k.t_mm[t] is not None else \
                ("its CR3 before the trace's first switch into a user task" if role == "stage"
                 else f"a fix-up at {rec.time} (events missing from the trace)")
            self.kq[c].clear()
            self.mq[c].clear()
            return True
        for d, (a, b) in enumerate(zip(before, k.c_loaded)):
            if a != b:
                self.model_oos(d, rec, a, b)
        return True

    # ---- CR3 writes outside context switches
    def model_oos(self, cpu, rec, old, new) -> None:
        what = f"{rec.code} at {rec.time}: CR3 {self.k.mm_label(old)} -> {self.k.mm_label(new)} on cpu{cpu}"
        if self.kq[cpu]:
            self.kq[cpu].pop(0)
            self.oos["matched"] += 1
        else:
            self.mq[cpu].append(what)

    def kernel_oos(self, rec) -> None:
        self.kernel_events += 1
        c = rec.cpu
        what = (rec.time, rec.comm, rec.pid, rec.info, rec.task)
        if self.mq[c]:
            self.mq[c].pop(0)
            self.oos["matched"] += 1
        else:
            self.kq[c].append(what)

    def settle(self, c) -> list:
        """The unmatched CR3 writes outside switches on ``c`` since its last switch into a user task."""
        out = []
        ks, self.kq[c] = self.kq[c], []
        for i, (t, comm, pid, pages, task) in enumerate(ks):
            pair = i + 1 < len(ks) and ks[i + 1][2] == pid
            cause = self.oos_cause(task, pair or (i and ks[i - 1][2] == pid))
            text = f"{t} cpu{c}: the kernel wrote CR3 outside a context switch in {comm}[{pid}] (pages:{pages}); {cause}"
            self.oos["kernel only"].append(text)
            out.append(text)
        ms, self.mq[c] = self.mq[c], []
        for what in ms:
            text = f"the model wrote CR3 where the kernel's trace shows none: {what}"
            if what.startswith("exit "):
                text += ("; the kernel's mmput was not the last: an mm_users reference the trace does not show "
                         "(get_task_mm by a /proc reader) ran exit_mmap later, when no CPU was lazy on it")
            self.oos["model only"].append(text)
            out.append(text)
        return out

    def oos_cause(self, task, paired) -> str:
        if paired:
            return "two in a row in one task: use_temporary_mm/unuse_temporary_mm (text_poke, EFI), no tracepoint"
        t = self.task_of(task)
        if t is None or self.k.t_mm[t] is None:
            return ("a kernel thread or idle: kthread_use_mm, or a flush IPI that found the CPU lazy "
                    "(flush_tlb_func -> switch_mm_irqs_off(NULL, &init_mm)), neither traced")
        return "a user task: exec_mmap's activate_mm before a sched_process_exec seen later or lost"

    # ---- the verdict of a context switch
    def verdict(self, rec) -> None:
        c = rec.cpu
        p = self.vpend.pop(c, None)
        if p is None:
            return
        wrote, pages, _ = rec.info
        if p.user:
            explained = self.settle(c)
        else:
            explained = []
        if wrote is None:
            self.skip("the trace gives no verdict (it ends or loses events right after the sched_switch)")
            return
        if not p.judged:
            self.skip(f"the model cannot know {p.why_not}")
            return
        if wrote and not p.loads and not explained and pages == -1 and p.lazy and p.since is not None \
                and self.last_flush.get(p.old, -1.0) >= p.since:
            # switch_mm_irqs_off with next == loaded_mm: a CPU lazy through a flush of next (should_flush_tlb
            # skips lazy CPUs) finds tlb_gen stale and rewrites CR3 with the same pgd to flush its ASID.
            # The page tables stay: the model's "no page-table load" holds.
            self.catchups += 1
            wrote = False
        agree = wrote == p.loads
        self.per_cpu[c][1] += 1
        self.per_cpu[c][0] += agree
        if p.user:
            self.user[1] += 1
            self.user[0] += agree
        if agree:
            return
        k = self.k
        r = p.rec
        model = (f"the model loads {k.mm_label(p.new)} (CR3 held {k.mm_label(p.old)})" if p.loads
                 else f"the model keeps {k.mm_label(p.old)} loaded (loaded_mm == next)")
        kernel = f"the kernel wrote CR3 (pages:{pages})" if wrote else "the kernel wrote no CR3"
        if not explained and wrote and not p.loads and pages == -1 and p.lazy:
            explained = [f"probably a tlb_gen catch-up after a flush of {k.mm_label(p.old)} that the trace "
                         f"does not show (cpu{c} was lazy)"]
        guessed = [t.label() for t in (r.info, r.task) if t is not None and t.how == "guess"]
        if guessed:
            explained.append(f"{' and '.join(guessed)} {'was' if len(guessed) == 1 else 'were'} alive before the "
                             f"trace and classified by the guess rule (no ps snapshot lists "
                             f"{'it' if len(guessed) == 1 else 'them'})")
        self.disagreements.append({"time": r.time, "cpu": c, "line": r.line, "switch": r.text.split("# ", 1)[1],
                                   "model": model, "kernel": kernel, "explained_by": explained})

    def skip(self, why) -> None:
        self.not_judged[why] = self.not_judged.get(why, 0) + 1

    # ---- results
    def result(self) -> dict:
        agree = sum(a for a, _ in self.per_cpu)
        judged = sum(j for _, j in self.per_cpu)
        unexplained = sum(1 for d in self.disagreements if not d["explained_by"]
                          or all(e.startswith("probably") for e in d["explained_by"]))
        return {
            **self.tr.json_head("validate"),
            "judged": judged, "agree": agree, "agreement": 100.0 * agree / judged if judged else None,
            "per_cpu": [{"cpu": c, "agree": a, "judged": j, "agreement": 100.0 * a / j if j else None}
                        for c, (a, j) in enumerate(self.per_cpu)],
            "into_user_tasks": {"agree": self.user[0], "judged": self.user[1]},
            "tlb_gen_catchups": self.catchups,
            "not_judged": self.not_judged,
            "disagreements": self.disagreements, "unexplained": unexplained,
            "outside_switches": {"kernel": self.kernel_events, "matched": self.oos["matched"],
                                 "kernel_only": self.oos["kernel only"], "model_only": self.oos["model only"]},
            "stopped": self.rp.failure.render() if self.rp.failure is not None else None,
        }


def validate(trace) -> dict:
    v = Validator(trace)
    for rec in trace.records():
        if not v.feed(rec):
            break
    for c in range(trace.ncpus):
        v.settle(c)
    res = v.result()
    res["import"] = trace.summary if hasattr(trace, "summary") else None
    return res


BLIND_SPOTS = (
    "What the model cannot see, and the kernel events that show it:",
    "  kthread_use_mm has no tracepoint: a kernel thread's CR3 write shows only as a `flush on task switch`",
    "    outside a context switch in that thread; the model then thinks the CPU still has the borrowed mm.",
    "  exec's activate_mm writes CR3 before sched_process_exec is traced: matched to the exec when both are seen.",
    "  flush IPIs (munmap, mprotect of page tables) move lazy CPUs to init_mm (flush_tlb_func -> leave_mm)",
    "    and a lazy CPU that missed a flush rewrites CR3 when it stops being lazy (tlb_gen): the trace shows",
    "    the flushes (`local MM shootdown`, `remote IPI send`) but not which mm, so the model sees none.",
    "  use_temporary_mm (text_poke, EFI) loads and restores CR3 with no sched_switch around it.",
)


def add_arguments(p) -> None:
    p.description = ("Replay an x86 trace recorded with tlb:tlb_flush under arch x86 and compare, at every context "
                     "switch, the model's page-table load with the kernel's CR3 write (the `flush on task switch` "
                     "event of switch_mm_irqs_off).")
    p.epilog = ("exit status: 0 the agreement is at least --min-agreement; 1 it is below, or the model stopped on "
                "the trace; 2 the trace cannot be read or has no tlb:tlb_flush events.  docs/traces.md")
    p.add_argument("trace", metavar="TRACE")
    p.add_argument("--ps", metavar="FILE", help="the ps snapshot of the tasks alive when the trace started "
                                                "(default: TRACE.ps when it exists)")
    p.add_argument("--min-agreement", metavar="PCT", type=_percent, default=100.0,
                   help="the agreement (percent of judged context switches) needed for exit 0 (default 100)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")


def _percent(text):
    import argparse
    try:
        v = float(text.rstrip("%"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a percentage like 99.5, got {text!r}")
    if not 0 <= v <= 100:
        raise argparse.ArgumentTypeError("must be between 0 and 100")
    return v


def run(args) -> int:
    from mmscn.exits import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK
    from .importer import Trace, TraceError
    try:
        tr = Trace(args.trace, args.ps)
    except TraceError as e:
        sys.stderr.write(e.render() + "\n")
        return EXIT_BAD_INPUT
    if not tr.has_tlb:
        sys.stderr.write(f"mmscn validate: {args.trace}: no tlb:tlb_flush events, so nothing says where the kernel "
                         f"wrote CR3; record with -e tlb:tlb_flush on x86 (`mmscn record` does)\n")
        return EXIT_BAD_INPUT
    res = validate(tr)
    res["min_agreement"] = args.min_agreement
    ok = res["stopped"] is None and res["judged"] > 0 and res["agreement"] >= args.min_agreement - 1e-9
    if args.json:
        json.dump(res, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(report(res))
    return EXIT_OK if ok else EXIT_FAILED


def _pct(a, j) -> str:
    return f"{a:,}/{j:,} agree ({100.0 * a / j:.2f}%)" if j else "none judged"


def report(res: dict) -> str:
    from mmscn.dsl.diagnostics import plural
    out = [f"{res['file']}: {res['trace_format']}, {plural(res['cpus'], 'CPU')}; replayed under arch x86 "
           f"(switch_mm_irqs_off, arch/x86/mm/tlb.c)"]
    imp = res.get("import") or {}
    if imp:
        out.append(f"  {imp['events']:,} events, {imp['switches']:,} context switches; tasks alive before the "
                   f"trace classified by {'the ps snapshot ' + imp['ps'] if imp['ps'] else 'the guess rule (no --ps)'}")
    out.append("context switches, the model's page-table load against the kernel's CR3 write:")
    for c in res["per_cpu"]:
        out.append(f"  cpu{c['cpu']}: {_pct(c['agree'], c['judged'])}")
    u = res["into_user_tasks"]
    out.append(f"  overall: {_pct(res['agree'], res['judged'])}; into tasks with an mm: {_pct(u['agree'], u['judged'])}")
    if res["tlb_gen_catchups"]:
        out.append(f"  of which {res['tlb_gen_catchups']:,} CR3 writes kept the page tables: tlb_gen catch-ups of a "
                   f"CPU lazy through a flush of the mm (pages:-1, next == loaded_mm)")
    for why, n in sorted(res["not_judged"].items(), key=lambda x: -x[1]):
        out.append(f"  not judged: {n:,} ({why})")
    o = res["outside_switches"]
    out.append(f"CR3 writes outside context switches: {o['kernel']:,} in the trace, {o['matched']:,} matched to the "
               f"model's (exec's activate_mm, exit_mmap's flush), {len(o['kernel_only']):,} the model did not make, "
               f"{len(o['model_only']):,} the kernel did not make")
    for text in (o["kernel_only"] + o["model_only"])[:10]:
        out.append(f"  {text}")
    if len(o["kernel_only"]) + len(o["model_only"]) > 10:
        out.append(f"  ... {len(o['kernel_only']) + len(o['model_only']) - 10} more (--json lists all)")
    if res["disagreements"]:
        out.append(f"disagreements: {len(res['disagreements']):,} ({res['unexplained']:,} unexplained)")
        for d in res["disagreements"][:20]:
            out.append(f"  {d['time']} cpu{d['cpu']} (scenario line {d['line']}) {d['switch']}")
            out.append(f"    {d['model']}; {d['kernel']}")
            for e in d["explained_by"] or ["unexplained"]:
                out.append(f"    explained by: {e}" if e != "unexplained" else "    unexplained")
        if len(res["disagreements"]) > 20:
            out.append(f"  ... {len(res['disagreements']) - 20} more (--json lists all)")
        out.extend(BLIND_SPOTS)
    if res["stopped"]:
        out.append("the model stopped on the trace:")
        out.append(res["stopped"])
    if res["agreement"] is None:
        verdict = "FAILED: no context switch could be judged"
    elif res["stopped"]:
        verdict = "FAILED: the replay stopped"
    elif res["agreement"] >= res["min_agreement"] - 1e-9:
        verdict = f"passed: {res['agreement']:.2f}% >= {res['min_agreement']:g}% (--min-agreement)"
    else:
        verdict = f"FAILED: {res['agreement']:.2f}% < {res['min_agreement']:g}% (--min-agreement)"
    out.append(verdict)
    return "\n".join(out) + "\n"
