"""A run recorded column by column: what each CPU ran after every statement.

A Runner subclass takes a small frame after each statement: per CPU the
current task, its active_mm and whether it borrows it lazily (task->mm is
NULL), the mms whose counters the statement changed, the IPIs it sent and the
page-table loads it caused.  The kernel model emits no event for either of
the last two, so they are read as follows:

* IPIs: every increment of the `ipis` cost counter is seen as it happens
  (with the `this_cpu` the policy used, the sender); the targets are the CPUs
  the IPI handlers' trace events name (IPI_HANDLERS: x86's flush_tlb_func,
  powerpc's exit_lazy_flush_tlb and cleanup_lazy_tlbs, alpha's
  flush_tlb_current and ipi_flush_tlb_mm).
* page-table loads: the `pgtable_loads` counter says how many per statement;
  where is said by the loading functions' events (PGTABLE_EVENTS), else by
  the CPUs whose loaded page tables changed, else the statement's own CPU.

tests/test_pictures.py checks both against the cost counters for every
example under every policy.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Optional

from mmscn.interpreter.kernel import C_IPI, C_PGTABLE, DEAD
from mmscn.interpreter.report import state_json, statement_text
from mmscn.interpreter.runner import Runner

# handler function -> which of its events stand for one IPI to the event's CPU
IPI_HANDLERS = {
    "flush_tlb_func": lambda detail: detail.startswith("IPI"),          # x86 (a local flush says "local")
    "flush_tlb_current": lambda detail: detail.startswith("IPI"),       # alpha
    "ipi_flush_tlb_mm": lambda detail: True,                             # alpha
    "exit_lazy_flush_tlb": lambda detail: True,                          # powerpc: once per CPU and flush
    "do_exit_flush_lazy_tlb": lambda detail: True,                       # powerpc before v5.10 (LT-04)
    "ipi_mb": lambda detail: True,                                       # membarrier
    "ipi_sync_rq_state": lambda detail: True,                            # membarrier registration
    "local_flush_tlb_mm": lambda detail: detail.startswith("IPI"),       # arm
    "local_finish_flush_tlb_mm": lambda detail: detail.startswith("IPI"),  # ia64
    "local_flush_tlb_all": lambda detail: detail.startswith("IPI"),      # arm's rollover, ia64's flush_tlb_all
    "tlb_pending_func": lambda detail: True,                             # sparc64's cross call
    "drop_mm_ref_this_cpu": lambda detail: detail.startswith("IPI"),    # xen-pv's xen_drop_mm_ref
    "drop_other_mm_ref": lambda detail: detail.startswith(("IPI", "the IPI from")),  # xen-pv (stepped: queued)
}
# functions that start a new round of IPIs (a CPU may be sent one per round)
IPI_ROUNDS = {"flush_tlb_mm_range", "tlb_flush", "radix__tlb_flush", "cleanup_lazy_tlbs"}
# a page-table load named by its event: function -> the event's detail says it loaded
PGTABLE_EVENTS = {
    "switch_mm_irqs_off": lambda detail: detail.startswith("CR3"),      # x86: a CR3 write
    "__switch_mm": lambda detail: True,                                  # arm64: TTBR0
    "__load_new_mm_context": lambda detail: True,                        # alpha
    "alpha_switch_to": lambda detail: True,                              # alpha: swpctx
    "flush_tlb_current": lambda detail: True,                            # alpha: reload
    "cpu_switch_mm": lambda detail: True,                                # arm: TTBR0 and CONTEXTIDR
    "activate_context": lambda detail: True,                             # ia64: the region registers
}
_CPU = re.compile(r"cpu([0-9]+)")


@dataclass(slots=True)
class Column:
    """One statement: where it is, what it did, and the picture after it."""
    line: int
    cpu: Optional[int]          # the block's CPU (None: a top-level statement)
    text: str                   # the statement as written
    status: str
    message: str
    events: list                # the trace events (report.format_event formats them)
    lanes: tuple                # per CPU: (task, mm, lazy, online, dead)
    mms: dict                   # mm name -> (users, count, state), for the mms it touched or made
    ipis: list                  # [(sender CPU or None, target CPU, function)]
    loads: list                 # CPUs that loaded page tables


@dataclass
class Timeline:
    path: str
    title: Optional[str]
    arch: str
    ncpus: int
    verdict: str                                  # "passed", "FAILED", ...
    boot: tuple                                   # lanes before the first statement
    boot_mms: dict                                # mm name -> (users, count, state) at boot
    columns: list = field(default_factory=list)
    mm_names: list = field(default_factory=list)  # in order of creation
    failure: Optional[tuple] = None               # (column index, line, message)
    note: str = ""                                # what the picture shows (a witness, an interleaving)


class _Costs(list):
    """The kernel's cost counters, noting the sending CPU of every IPI as it is counted."""
    __slots__ = ("k", "senders")

    def __setitem__(self, i, v):
        if i == C_IPI:
            self.senders.append(self.k.this_cpu)
        list.__setitem__(self, i, v)


class Recorder(Runner):
    """A Runner that keeps a frame after every statement (frames=True), the state
    after every statement (states=True), or the state after line ``state_at``."""

    def __init__(self, scenario, lines, arch=None, *, frames=True, states=False, state_at=None, version=None):
        super().__init__(scenario, lines, arch, trace=True, version=version)
        k = self.k
        self.want_frames, self.want_states, self.state_at = frames, states, state_at
        self.columns, self.states = [], []
        self.at_line = None             # the state after line state_at, once it ran
        self.fail_col = None            # the column of the first failure
        costs = _Costs(k.cost)
        costs.k, costs.senders = k, []
        k.cost = costs
        self._mm_seen = len(k.m_name)
        self.boot_lanes = self._lanes()
        self.boot_mms = {k.m_name[m]: self._mm(m) for m in range(len(k.m_name))}

    def _lanes(self) -> tuple:
        k = self.k
        out = []
        for c in range(k.ncpus):
            t = k.c_curr[c]
            a = k.t_active[t] if k.c_online[c] else None
            out.append((k.t_name[t], k.mm_label(a), k.t_mm[t] is None and a is not None,
                        bool(k.c_online[c]), k.t_state[t] == DEAD))
        return tuple(out)

    def _mm(self, m) -> tuple:
        k = self.k
        return (k.m_users[m], k.m_count[m], k.mm_state(m))

    def diag(self, node, *args, **kwargs):
        if self.fail_col is None:
            self.fail_col = max(0, len(self.result.steps) - 1)
        return super().diag(node, *args, **kwargs)

    def step(self, st, cpu):
        k = self.k
        n = len(self.result.steps)
        cost0, loaded0, sent0 = tuple(k.cost), tuple(k.c_loaded), len(k.cost.senders)
        self._prev = (cost0, loaded0, sent0)
        self._in_step = True
        try:
            ret = super().step(st, cpu)
        finally:
            self._in_step = False
        if len(self.result.steps) == n:         # an `expect`: it goes with the next statement
            return ret
        s = self.result.steps[n]
        if self.want_frames:
            self.columns.append(self._column(s, st, cpu, cost0, loaded0, sent0))
        if self.want_states:
            # granularity step: a top-level statement records all its kernel steps at once (the state after)
            self.states += [state_json(k, self.policy)] * (len(self.result.steps) - n)
        if self.state_at is not None and st.line == self.state_at:
            self.at_line = (s, state_json(k, self.policy))
        return ret

    _in_step = False

    def record(self, o, cpu, hardware: bool = True):
        """Every Outcome comes here; step() records a statement's own column, so this records only
        what comes outside it (granularity step: a block's later kernel steps, IPIs, interrupts)."""
        ret = super().record(o, cpu, hardware)
        k = self.k
        if not self._in_step:
            if self.want_frames:
                self.columns.append(self._column(o, o.stmt, cpu, *self._prev))
            if self.want_states:
                self.states.append(state_json(k, self.policy))
        self._prev = (tuple(k.cost), tuple(k.c_loaded), len(k.cost.senders))
        return ret

    def _column(self, s, st, cpu, cost0, loaded0, sent0) -> Column:
        k = self.k
        touched = {ev[1] for ev in s.events if ev[0] == "ref"}
        mms = {}
        for m in range(self._mm_seen, len(k.m_name)):
            mms[k.m_name[m]] = self._mm(m)
        self._mm_seen = len(k.m_name)
        for name in sorted(touched):
            m = k.mm_ix.get(name)
            if m is not None and name not in mms:
                mms[name] = self._mm(m)
        where = _stmt_cpu(st, cpu, k)
        ipis = _ipis(s.events, k.cost.senders[sent0:], k.cost[C_IPI] - cost0[C_IPI])
        loads = _loads(s.events, loaded0, k.c_loaded, k.cost[C_PGTABLE] - cost0[C_PGTABLE], where)
        return Column(st.line, cpu, statement_text(self.lines, st), s.status, s.message, s.events,
                      self._lanes(), mms, ipis, loads)


def _stmt_cpu(st, cpu, k) -> Optional[int]:
    """The CPU a statement acts on: its block's, the one it names, or the one the kernel ran it on."""
    if cpu is not None:
        return cpu
    ref = getattr(st, "cpu", None)
    if ref is not None and getattr(ref, "text", "").startswith("cpu"):
        return ref.number
    return k.this_cpu


def _ipis(events, senders, n) -> list:
    """(sender, target, function) for each of the statement's n IPIs, in the order they were sent."""
    targets = []
    seen = set()
    for ev in events:
        if ev[0] != "op":
            continue
        _, subject, fn, detail = ev
        if fn in IPI_ROUNDS:
            seen.clear()
            if fn == "cleanup_lazy_tlbs":       # on_each_cpu_mask: the CPUs are listed, lazy or not
                targets += [(int(c), fn) for c in _CPU.findall(detail.partition(":")[2])]
            continue
        ok = IPI_HANDLERS.get(fn)
        m = _CPU.fullmatch(subject)
        if ok is not None and m and ok(detail) and (fn, subject) not in seen:
            seen.add((fn, subject))
            targets.append((int(m.group(1)), fn))
    out = []
    si = 0
    for target, fn in targets:
        if len(out) == n:
            break
        sender = senders[si] if si < len(senders) else None
        if fn == "cleanup_lazy_tlbs" and target == sender:
            continue                            # the CPU freeing the mm runs the callback itself
        out.append((sender, target, fn))
        si += 1
    return out


def _loads(events, before, after, n, where) -> list:
    """The CPUs of the statement's n page-table loads."""
    out = []
    for ev in events:
        if ev[0] == "op" and len(out) < n:
            ok = PGTABLE_EVENTS.get(ev[2])
            m = _CPU.fullmatch(ev[1])
            if ok is not None and m and ok(ev[3]):
                out.append(int(m.group(1)))
    for c in range(len(after)):
        if len(out) < n and before[c] != after[c] and c not in out:
            out.append(c)
    while len(out) < n:
        out.append(where if where is not None else 0)
    return out


# ====================================================================== entry points
def record_run(sc, lines, arch=None, **kw) -> Recorder:
    """Run the scenario as `mmscn run` does, recording it; the Recorder holds the result."""
    r = Recorder(sc, lines, arch, **kw)
    r.run()
    return r


def _verdict(result) -> str:
    if result.scenario.outcome == "fail":
        return "failed, as the header expects" if result.failed else "PASSED, but the header says `expect fail`"
    return "FAILED" if result.failed else "passed"


def timeline_of(rec: Recorder, note: str = "") -> Timeline:
    r = rec.result
    sc = r.scenario
    k = rec.k
    tl = Timeline(sc.path, sc.title, r.arch, sc.ncpus, _verdict(r), rec.boot_lanes, rec.boot_mms,
                  rec.columns, list(k.m_name), note=note)
    if r.diagnostics:
        d = r.diagnostics[0]
        col = rec.fail_col if rec.fail_col is not None else len(rec.columns) - 1
        tl.failure = (min(col, len(rec.columns) - 1), d.line, d.message)
    return tl


def run_timeline(sc, lines, arch=None, rec=None, version=None) -> Timeline:
    """The run `mmscn run` makes (per-CPU blocks in its round robin) of kernel ``version`` (None:
    the header's); ``rec``: the Recorder that has made it already (`mmscn run --svg`)."""
    rec = rec if rec is not None else record_run(sc, lines, arch, version=version)
    note = "per-CPU blocks in the run's round robin (mmscn explore runs every interleaving)" if sc.blocks else ""
    return timeline_of(rec, note)


def witness_timeline(model, res, arch=None) -> Optional[Timeline]:
    """The failing interleaving an exploration found, run again statement by statement
    (the prologue, then the path), or None when it found none."""
    if res.failure is None:
        return None
    sc, f = model.sc, res.failure
    if model.stepped:
        # a path of kernel steps, not of statements: run the witness, whose `interleave` line the
        # run follows, under the kernel the search ran (it was an internal error, exit 70)
        from mmscn.dsl.resolve import load
        from mmscn.interpreter.arches import known_arches
        from mmscn.interpreter.explore.stepped import witness_text
        text = witness_text(model, res)
        rec = record_run(load(text, sc.path, known_arches()), text.split("\n"), arch, version=model.k.version)
        return _witness(rec, res, f)
    rec = Recorder(sc, model.lines, arch)
    for st in sc.stmts:
        if not rec.step(st, None):
            break
    else:
        for b, idx in res.path:
            u = model.units[b][idx]
            if u.expect is not None:
                rec.step(u.expect, u.cpu)
            if not rec.step(u.stmt, u.cpu):
                break
        if f.kind == "final" and sc.final is not None:
            rec.judge_final()
    return _witness(rec, res, f)


def _witness(rec, res, f) -> Timeline:
    note = (f"the shortest failing interleaving mmscn explore found ({len(res.path)} steps)"
            if res.mode != "random" else f"a failing interleaving (random, seed {res.seed})")
    tl = timeline_of(rec, note)
    tl.verdict = "fails" if res.mode != "prologue" else "the prologue fails"
    # the exploration's failure, where it happened (a deadlock or `final` comes after the last step)
    col = len(rec.columns) - 1
    if rec.fail_col is not None and f.kind not in ("deadlock", "final"):
        col = rec.fail_col
    tl.failure = (max(col, 0), f.line, f"{f.kind}: {f.message}")
    return tl
