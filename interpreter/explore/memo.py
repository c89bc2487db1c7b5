"""Transitions remembered by the rows they read: a statement fired once from a state is not
run again from another state that agrees with it on every row the first run could read.

A captured state is a tuple of row ids, one per task, mm and CPU (model.Store).  Running a
unit's statement reads some of those rows and writes some; the kernel marks every row it
writes (d_tasks, d_mms, d_cpus, gathered in Kernel.changed), and a run is deterministic, so
if state s2 agrees with s1 on every row the run from s1 read, the run from s2 reads the same
values, takes the same path and writes the same rows: its successor is s2 with s1's writes
applied.  The rows a run reads are those it marked, and the base rows of the unit (read_base):
its CPU's row, the rows of the CPU's current task and of the tasks named in the statement,
and of the mms those rows point at.  Two readers look further and are handled apart:

- check()'s TLB rule looks at every CPU with a touched mm loaded, and the generic policy's
  check at every CPU with a freed mm loaded.  Every state the search keeps has passed every
  earlier check, so such a CPU that the statement did not touch can break a rule only if the
  statement changed its mm's flush or address-space generation or freed it; a run that did is
  remembered by the whole state, which no other state matches.  x86's check also reads every
  CPU's mm_cpumask bit (Policy.memo_check): an untouched CPU's verdict there changes only with
  its bit, so under x86 a run that changed an mm_cpumask is remembered by the whole state too
  (x86 sets a CPU's own bit in switch_mm_irqs_off, once; other CPUs' bits are cleared only by
  flushes, which are never remembered, and by exit_mmap, whose flush bumps mm->context.tlb_gen).
  powerpc's and sparc64's checks read more (offline CPUs, every CPU's current task): the memo
  is off under them, and under xen-pv.
- A run that fails (a refusal, a broken invariant) is never remembered: its words quote rows
  beyond these, and it ends the interleaving anyway.

Statements outside READS_LOCAL (flushes and shootdowns, which walk every CPU, hotplug,
membarrier, assertions, anything with an `expect`), scenarios whose blocks make tasks or mms
(the rows move), read the cost counters, or run kernel steps are never remembered.

MMSCN_MEMO=off turns it off (benchmarks compare); MMSCN_MEMO=verify runs every remembered
transition again and raises if the kernel disagrees (the tests run the examples so).
"""
from __future__ import annotations

import os
from typing import Optional
from operator import itemgetter

from mmscn.dsl import ast as A

from ..kernel import INIT_MM
from ..step import FAILED, SAME
from ..policies.base import Policy

# statements whose kernel functions read only the rows named above: schedule (__schedule,
# context_switch), exit (do_exit's exit_mm, mmput), use_mm/unuse_mm (kthread_use_mm,
# kthread_unuse_mm), mmget/mmput/mmgrab/mmdrop and mmget_not_zero, unlazy, idle
READS_LOCAL = (A.Schedule, A.Exit, A.UseMm, A.UnuseMm, A.MmRef, A.MmgetNotZero, A.Unlazy)
PER_UNIT = 8            # position sets kept per unit; a unit seen with more is run as it is
ENTRIES = 500_000       # remembered transitions in all (a bound on the memory they take)


class Memo:
    def __init__(self, model, mode: Optional[str] = None):
        mode = mode or os.environ.get("MMSCN_MEMO", "on")
        if mode not in ("on", "off", "verify"):
            mode = "on"
        self.mode = mode
        st, k = model.store, model.k
        check = type(model.policy).check
        self.on = (mode != "off" and not st.names and not st.cost and not model.stepped and k.ev is None
                   and (check is Policy.check or check is type(model.policy).memo_check))
        self.cpumask = check is not Policy.check      # x86's check reads every CPU's mm_cpumask bit
        self.verify = mode == "verify"
        self.entries = 0
        self.results = {}           # each distinct remembered result, once
        self.hits = self.misses = 0
        self.model = model
        if not self.on:
            return
        self.k, self.store = k, st
        nt, nm = len(k.t_name), len(k.m_name)
        H = st.HEAD
        self.t0, self.m0, self.c0 = H, H + nt, H + nt + nm
        self.size = H + nt + nm + k.ncpus
        lay = st.layout
        ti = {f.attr: j for j, f in enumerate(lay[0])}
        mi = {f.attr: j for j, f in enumerate(lay[1])}
        ci = {f.attr: j for j, f in enumerate(lay[2])}
        self.t_refs = [ti[a] for a in ("t_mm", "t_active") if a in ti]
        self.c_curr = ci["c_curr"]
        self.c_refs = [ci[a] for a in ("c_loaded", "c_prev_mm") if a in ci]
        # fields of an mm whose change makes check() look at CPUs the statement did not touch
        self.m_far = [mi[a] for a in ("m_tlb_gen", "m_asid_gen", "m_freed") if a in mi]
        if self.cpumask and "m_cpumask" in mi:
            self.m_far.append(mi["m_cpumask"])
        for us in model.units:
            for u in us:
                u.memo = self._unit(u) if u.run is not None and type(u.stmt) in READS_LOCAL else None

    def _unit(self, u):
        """The unit's fixed base: its CPU's row, the rows of the tasks, mms and CPUs it names
        (`schedule idle`: the CPU's idle task, task cpuN), and the position sets seen."""
        k, st = self.k, u.stmt
        cpu = u.cpu if getattr(st, "cpu", None) is None else st.cpu.number
        base = {self.c0 + u.cpu, self.c0 + cpu}
        if type(st) is A.Schedule and st.task is None:
            base.add(self.t0 + cpu)
        r = getattr(st, "task", None)
        if r is not None:
            base.add(self.t0 + k.task_ix[r.text])
        r = getattr(st, "mm", None)
        if r is not None:
            base.add(self.m0 + k.mm_ix[r.text])
        return (tuple(sorted(base)), [])

    def read_base(self, u, s: tuple) -> set:
        """The rows a run of u from s reads whether it writes them or not (the module's list)."""
        rows = self.store.rows
        ps = set(u.memo[0])
        for p in u.memo[0]:
            if p >= self.c0:
                crow = rows[2][s[p]]
                ps.add(self.t0 + crow[self.c_curr])
                for j in self.c_refs:
                    if crow[j] is not None:
                        ps.add(self.m0 + crow[j])
        for p in [p for p in ps if self.t0 <= p < self.m0]:
            trow = rows[0][s[p]]
            for j in self.t_refs:
                if trow[j] is not None:
                    ps.add(self.m0 + trow[j])
        ps.add(self.m0 + INIT_MM)   # the idle task's and a lazy switch's: read by the accounting
        return ps

    def step(self, u, s: tuple, held: bool) -> tuple:
        """Fire unit u from state s, where ``held`` says whether the kernel holds s: (outcome,
        Failure or None, successor or None, whether the kernel still holds s).  A remembered run
        is replayed; any other is run on the kernel (restoring s first where it is not held)."""
        memo = u.memo is not None and self.on
        hit = None
        if memo:
            for _, get, table in u.memo[1]:
                r = table.get(get(s))
                if r is not None:
                    self.hits += 1
                    outcome, writes = r
                    if writes:
                        s2 = list(s)
                        for j in range(0, len(writes), 2):
                            s2[writes[j]] = writes[j + 1]
                        s2 = tuple(s2)
                    else:
                        s2 = s
                    if not self.verify:
                        return outcome, None, s2, held
                    hit = (outcome, s2)
                    break
        outcome, fail, s2, held, ch = self.run(u, s, held)
        if ch is None:
            return outcome, fail, s2, held
        if hit is not None:
            self.check(u, s, hit, (outcome, s2))
        else:
            self.put(u, s, ch, outcome, s2)
        return outcome, None, s2, False

    def run(self, u, s: tuple, held: bool) -> tuple:
        """Fire u from s on the kernel: (outcome, Failure or None, successor or None, whether the
        kernel still holds s, and where the run may be remembered the rows it marked, else None)."""
        m = self.model
        if not held:
            m.restore(s)
        outcome, fail = m.fire(u)
        if outcome == FAILED:
            return outcome, fail, None, False, None     # a violation changed the kernel (the store knows what)
        if outcome == SAME:
            return outcome, None, s, True, None
        ch = None
        if u.memo is not None and self.on:
            ch = m.k.changed
            ch = (set(ch[0]), set(ch[1]), set(ch[2]))
        return outcome, None, m.capture(), False, ch

    def check(self, u, s: tuple, remembered: tuple, ran: tuple) -> None:
        """MMSCN_MEMO=verify: what was remembered is what the kernel does."""
        if remembered != ran:
            raise AssertionError(f"explore's memo of line {u.stmt.line} ({type(u.stmt).__name__} on cpu{u.cpu}) "
                                 f"gave {remembered}, the kernel {ran}")

    def put(self, u, s: tuple, changed: tuple, outcome, s2: tuple) -> None:
        """Remember the run of u from s that marked ``changed`` (before capture emptied it)."""
        ps = self.reads(u, s, changed, s2)
        if ps is None:
            return
        get, table = self.table(u.memo[1], ps)
        if table is None:
            return
        # (position, row id, ...) flat, and one tuple for each distinct result: most repeat
        writes = tuple(x for p in ps if s2[p] != s[p] for x in (p, s2[p]))
        r = (outcome, writes)
        table[get(s)] = self.results.setdefault(r, r)
        self.entries += 1

    def reads(self, u, s: tuple, changed: tuple, s2: tuple):
        """The positions the run of u from s (to s2, marking ``changed``) could read, sorted;
        None once the memo is full."""
        self.misses += 1
        if self.entries >= ENTRIES:
            return None
        ps = self.read_base(u, s)
        t0, m0, c0 = self.t0, self.m0, self.c0
        ps.update(t0 + t for t in changed[0])
        ps.update(m0 + m for m in changed[1])
        ps.update(c0 + c for c in changed[2])
        rows = self.store.rows[1]
        for m in changed[1]:
            a, b = rows[s[m0 + m]], rows[s2[m0 + m]]
            if any(a[j] != b[j] for j in self.m_far):
                return tuple(range(self.size))      # check() read CPUs beyond these: the whole state
        return tuple(sorted(ps))

    @staticmethod
    def table(sets: list, ps: tuple, key=None) -> tuple:
        """(key getter, table) of the position set ps among a unit's sets, made if there is
        room (PER_UNIT), else (None, None); ``key`` makes the getter (explore/packed.py's is a
        mask of bits)."""
        for have, get, table in sets:
            if have == ps:
                return get, table
        if len(sets) >= PER_UNIT:
            return None, None
        get, table = itemgetter(*ps) if key is None else key(ps), {}
        sets.append((ps, get, table))
        return get, table
