"""Every interleaving of the per-CPU blocks, checked like a litmus test.

The prologue (statements before the blocks) runs once, with the Runner, as in
`mmscn run`.  From the kernel state it leaves, a breadth-first search fires
the blocks' statements in every order: one statement is one atomic kernel
operation (an `expect` travels with the statement it announces).  A visited
state is the kernel state plus each block's program counter.

Semantics (docs/explore.md): a block's `schedule T` waits while T runs on
another CPU; every other refusal, every broken invariant, every failed
assertion fails the interleaving that reached it; no block able to move while
some still have statements is a deadlock; a failing `mmget_not_zero` ends its
block.  `final forall` must hold in every final state, `final exists` in one.

Two reductions keep the verdict exact and can be switched off:

* Partial-order reduction (persistent sets).  Each statement gets a static
  footprint, a bit set of the tasks, mms and CPUs it may read or write in any
  reachable state (a may-analysis of which tasks run where and which mms can
  be active on a CPU).  At a state, a set of blocks closed under "the next
  statement of one may conflict with anything another may still do" (and,
  for a waiting `schedule T`, every block that may move T) is persistent;
  only its statements are fired.  The state space is acyclic (every step
  advances a program counter), so this preserves every final state, every
  deadlock and every failure (Godefroid 1996, ch. 4).  init_mm's counters are
  left out of the footprints: init_mm is never freed, and internal paths only
  add to and subtract from its mm_count with references they hold, so two
  CPUs' mmgrab/mmdrop of init_mm commute and the accounting check sees the
  same difference in either order; a statement that names @init_mm, or an
  assertion reading it or `cost`, conflicts with everything.
* Symmetry.  Permutations of CPUs, tasks and mms that map the blocks onto
  each other, the start state onto itself and fix every name in `final` are
  automorphisms of the search; a state is stored under the least image of it
  (by hash), so states equal up to such a renaming are explored once.
  Interchangeable blocks (any order of them is an automorphism) are sorted
  into a canonical order instead of enumerated (class Symmetry).
"""
from __future__ import annotations

import random as _random
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Optional

from mmscn.dsl import ast as A
from mmscn.dsl.diagnostics import plural
from mmscn.dsl.resolve import fresh_mm_name

from .kernel import DEAD, INIT_MM, RUNNING, Refusal
from .runner import (EXEC, Runner, StatementError, cond_text, describe_failure, evaluate, show_value,
                     violation_texts)

# fire() outcomes
SAME, MOVED, ENDED, FAILED = 0, 1, 2, 3

# The kernel lists that are state, in the order of a captured state tuple.
TASK_FIELDS = ("t_mm", "t_active", "t_state", "t_cpu", "t_ptbr", "t_kind")
MM_FIELDS = ("m_users", "m_count", "m_freed", "m_torn", "m_ext_users", "m_ext_count", "m_cpumask",
             "m_lazy", "m_use", "m_user", "m_prev")
CPU_FIELDS = ("c_curr", "c_online", "c_prev_mm", "c_loaded", "c_lazy")
STATE_FIELDS = TASK_FIELDS + MM_FIELDS + CPU_FIELDS
# what the values of each field are, for renaming under a symmetry
VALUE_KIND = {"t_mm": "mm", "t_active": "mm", "t_cpu": "cpu", "t_ptbr": "mm", "m_cpumask": "mask",
              "c_curr": "task", "c_prev_mm": "mm", "c_loaded": "mm"}


@dataclass
class Failure:
    kind: str           # violation | refusal | assertion | expectation | deadlock | final
    message: str
    function: str = ""
    line: int = 0
    col: int = 0
    cpu: Optional[int] = None
    rules: tuple = ()
    causes: tuple = ()  # per rule: the index of the one it follows from, or None

    def diagnostic(self, path: str, lines: list):
        """The failure located in its file, as `mmscn run` prints one."""
        from ..dsl.diagnostics import Diagnostic, rule_notes
        src = lines[self.line - 1] if 0 < self.line <= len(lines) else None
        return Diagnostic(path, self.line, self.col, self.message,
                          "violation" if self.kind == "violation" else "failure", src,
                          rule_notes(self.function, self.kind == "violation"))

    def to_json(self) -> dict:
        d = {"kind": self.kind, "message": self.message, "line": self.line, "column": self.col}
        if self.function:
            d["function"] = self.function
        if self.cpu is not None:
            d["cpu"] = f"cpu{self.cpu}"
        if self.rules:
            d["rules"] = list(self.rules)
        if any(c is not None for c in self.causes):
            d["consequence_of"] = list(self.causes)
        return d


class Unit:
    """One step of a block: a statement (with the `expect` before it, if any)."""
    __slots__ = ("block", "index", "cpu", "stmt", "expect", "waits_for", "fp", "enable_fp")

    def __init__(self, block, index, cpu, stmt, expect):
        self.block, self.index, self.cpu, self.stmt, self.expect = block, index, cpu, stmt, expect
        self.waits_for = None       # task index a block's `schedule T` waits on
        self.fp = 0                 # footprint bits
        self.enable_fp = 0          # what can make a waiting schedule runnable


class _Shim:
    """What the runner's statement table needs of a Runner: the kernel."""
    __slots__ = ("k",)

    def __init__(self, k):
        self.k = k


# ====================================================================== the model
class Model:
    """The scenario after its prologue: a start state and the blocks' units."""

    def __init__(self, scenario: A.Scenario, lines: list, arch: Optional[str] = None):
        self.sc = scenario
        self.lines = lines
        runner = Runner(scenario, lines, arch, trace=False)
        self.runner = runner
        self.policy = runner.policy
        self.k = k = runner.k
        self.prologue_failure: Optional[Failure] = None
        self.refusal = ""       # the words of the last refusal fire() met (a witness quotes them)
        for st in scenario.stmts:
            if not runner.step(st, None):
                d = runner.result.diagnostics[-1] if runner.result.diagnostics else None
                self.prologue_failure = Failure("prologue", d.message if d else "the prologue failed",
                                                line=d.line if d else st.line, col=d.col if d else st.col)
                break
        if self.prologue_failure is None and runner.pending_expect is not None:
            e = runner.pending_expect
            self.prologue_failure = Failure("expectation", f"`expect {e.kind}` is not followed by a statement",
                                            line=e.line, col=e.col)
        if self.prologue_failure is None and runner.result.diagnostics:
            d = runner.result.diagnostics[0]
            self.prologue_failure = Failure("assertion", d.message, line=d.line, col=d.col)
        self.shim = _Shim(k)
        blocks = sorted(scenario.blocks, key=lambda b: int(b.cpu.text[3:]))
        self.bcpu = [int(b.cpu.text[3:]) for b in blocks]
        self.units = []
        for bi, b in enumerate(blocks):
            us, pending = [], None
            for st in b.stmts:
                if isinstance(st, A.Expect):
                    pending = st
                    continue
                u = Unit(bi, len(us), self.bcpu[bi], st, pending)
                pending = None
                if isinstance(st, A.Schedule) and st.task is not None and st.cpu is None:
                    u.waits_for = k.task_ix.get(st.task.text, -1)
                us.append(u)
            self.units.append(us)
        self.nblocks = len(self.units)
        self.creates = any(isinstance(u.stmt, (A.Spawn, A.SpawnThread, A.SpawnKthread, A.Exec))
                           for us in self.units for u in us)
        self.uses_cost = _mentions_cost(scenario)
        self.final = scenario.final
        self._intern = tuple({} for _ in STATE_FIELDS)
        self.start = self.capture()
        self.start_pcs = tuple(0 for _ in self.units)

    # ---- state --------------------------------------------------------------
    def capture(self) -> tuple:
        k = self.k
        xs = (
            tuple(k.t_mm), tuple(k.t_active), tuple(k.t_state), tuple(k.t_cpu), tuple(k.t_ptbr),
            tuple(k.t_kind), tuple(k.m_users), tuple(k.m_count), tuple(k.m_freed), tuple(k.m_torn),
            tuple(k.m_ext_users), tuple(k.m_ext_count), tuple(k.m_cpumask), tuple(k.m_lazy),
            tuple(k.m_use), tuple(k.m_user), tuple(k.m_prev), tuple(k.c_curr), tuple(k.c_online),
            tuple(k.c_prev_mm), tuple(k.c_loaded), tuple(k.c_lazy))
        # equal columns of different states share one tuple: most columns repeat.  One table
        # per column: (0, 0) == (False, False), and a counter must not come back as a flag
        s = tuple(map(dict.setdefault, self._intern, xs, xs))
        if self.uses_cost:
            s += (tuple(k.cost),)
        if self.creates:
            s += (tuple(k.t_name), tuple(k.m_name))
        return s

    def restore(self, s: tuple) -> None:
        k = self.k
        (k.t_mm, k.t_active, k.t_state, k.t_cpu, k.t_ptbr, k.t_kind, k.m_users, k.m_count, k.m_freed,
         k.m_torn, k.m_ext_users, k.m_ext_count, k.m_cpumask, k.m_lazy, k.m_use, k.m_user, k.m_prev,
         k.c_curr, k.c_online, k.c_prev_mm, k.c_loaded, k.c_lazy) = map(list, s[:22])
        i = 22
        if self.uses_cost:
            k.cost = list(s[i])
            i += 1
        if self.creates:
            k.t_name, k.m_name = list(s[i]), list(s[i + 1])
            k.task_ix = {n: t for t, n in enumerate(k.t_name)}
            k.mm_ix = {n: m for m, n in enumerate(k.m_name)}
        k.violations = []
        k.d_tasks.clear(); k.d_mms.clear(); k.d_cpus.clear()

    # ---- one step -----------------------------------------------------------
    def waiting(self, s: tuple, u: Unit) -> bool:
        """A block's `schedule T` waits while T runs on another CPU (read off the state)."""
        t = u.waits_for
        if t is None:
            return False
        if t < 0:   # a task made by another block: look it up in the live kernel
            return self.k_waits(s, u)
        return s[2][t] == RUNNING and s[3][t] != u.cpu

    def k_waits(self, s, u) -> bool:
        self.restore(s)
        t = self.k.task_ix.get(u.stmt.task.text)
        return t is not None and self.k.t_state[t] == RUNNING and self.k.t_cpu[t] != u.cpu

    def fire(self, u: Unit):
        """Run a unit on the kernel as it stands: (outcome, Failure or None)."""
        k, st, cpu, expect = self.k, u.stmt, u.cpu, u.expect
        if type(st) is A.Assert:
            for c in st.conds:
                try:
                    ok = evaluate(k, self.policy, c, cpu)
                except StatementError as e:
                    return FAILED, Failure("assertion", e.message, line=e.node.line, col=e.node.col, cpu=cpu)
                if not ok:
                    return FAILED, Failure("assertion", describe_failure(k, self.policy, c, cpu),
                                           line=c.line, col=c.col, cpu=cpu)
            return SAME, None
        try:
            if type(st) is not A.Schedule and k.t_state[k.c_curr[cpu]] == DEAD:
                raise StatementError(st, f"cpu{cpu}'s current task {k.t_name[k.c_curr[cpu]]} has exited; "
                                     f"nothing else runs on cpu{cpu} until it schedules away",
                                     "do_task_dead (kernel/exit.c)")
            ret = EXEC[type(st)](self.shim, st, cpu)
        except (Refusal, StatementError) as e:
            k.violations = []
            k.d_tasks.clear(); k.d_mms.clear(); k.d_cpus.clear()
            self.refusal = e.message
            node = e.node if isinstance(e, StatementError) else st
            if expect is not None and expect.kind == "error":
                if expect.text and expect.text not in e.message:
                    return FAILED, Failure("expectation", f"the statement was refused, but not with "
                                           f"\"{expect.text}\": {e.message}", e.function,
                                           expect.line, expect.col, cpu)
                return SAME, None
            if expect is not None:
                return FAILED, Failure("expectation", f"expected a violation, but the statement was refused: "
                                       f"{e.message}", e.function, expect.line, expect.col, cpu)
            return FAILED, Failure("refusal", e.message, e.function, node.line, node.col, cpu)
        violations = k.check()
        if violations:
            text = "; ".join(violation_texts(violations))
            if expect is not None and expect.kind == "violation":
                if expect.text and not any(expect.text in v.rule or expect.text in v.message for v in violations):
                    return FAILED, Failure("expectation", f"expected violation \"{expect.text}\", got {text}",
                                           violations[0].function, expect.line, expect.col, cpu)
                return (ENDED if ret is False else MOVED), None
            if expect is not None:
                return FAILED, Failure("expectation", f"expected an error, but the statement ran and broke an "
                                       f"invariant: {text}", violations[0].function, expect.line, expect.col, cpu)
            return FAILED, Failure("violation", text, violations[0].function, st.line, st.col, cpu,
                                   tuple(v.rule for v in violations), tuple(v.cause for v in violations))
        if expect is not None:
            what = "be refused" if expect.kind == "error" else "break an invariant"
            return FAILED, Failure("expectation", f"`expect {expect.kind}`: the next statement (line {st.line}) "
                                   f"was expected to {what}, but it ran cleanly", "", expect.line, expect.col, cpu)
        return (ENDED if ret is False else MOVED), None

    def judge_final(self) -> tuple:
        """(held, detail) of `final` on the kernel as it stands."""
        for c in self.final.conds:
            try:
                ok = evaluate(self.k, self.policy, c, None)
            except StatementError as e:
                return False, e.message
            if not ok:
                return False, describe_failure(self.k, self.policy, c, None)
        return True, ""

    def deadlock(self, pcs) -> Failure:
        waiting = [f"cpu{self.bcpu[b]} at line {self.units[b][pc].stmt.line} "
                   f"(`schedule {self.units[b][pc].stmt.task.text}`)"
                   for b, pc in enumerate(pcs) if pc < len(self.units[b])]
        first = next(self.units[b][pc] for b, pc in enumerate(pcs) if pc < len(self.units[b]))
        return Failure("deadlock", "deadlock: every remaining block waits for a task running elsewhere ("
                       + ", ".join(waiting) + ")", "", first.stmt.line, first.stmt.col, first.cpu)

    # ---- fields, for diffs and final-state listings ---------------------------
    def fields(self) -> dict:
        k, pol = self.k, self.policy
        d = {}
        for c in range(k.ncpus):
            t = k.c_curr[c]
            d[f"cpu{c}.curr"] = k.t_name[t]
            d[f"cpu{c}.active_mm"] = k.mm_label(k.t_active[t]) if k.c_online[c] else "none"
            if "loaded_mm" in pol.hardware_fields:
                d[f"cpu{c}.loaded_mm"] = k.mm_label(pol.loaded_mm(k, c))
            if not k.c_online[c]:
                d[f"cpu{c}.online"] = "false"
        for t in range(len(k.t_name)):
            n = k.t_name[t]
            d[f"{n}.mm"] = k.mm_label(k.t_mm[t])
            d[f"{n}.active_mm"] = k.mm_label(k.t_active[t])
            d[f"{n}.state"] = k.t_state[t]
        for m in range(len(k.m_name)):
            n = k.m_name[m]
            d[f"{n}.users"] = k.m_users[m]
            d[f"{n}.count"] = k.m_count[m]
            d[f"{n}.state"] = k.mm_state(m)
            mask = pol.cpumask(k, m)
            if mask is not None:
                d[f"{n}.cpumask"] = "{" + ", ".join(f"cpu{i}" for i in range(k.ncpus) if mask >> i & 1) + "}"
        return d


def _mentions_cost(sc: A.Scenario) -> bool:
    def walk(x):
        if isinstance(x, A.Field):
            return x.owner == "cost"
        if isinstance(x, (A.Cmp,)):
            return walk(x.field)
        if isinstance(x, (A.And, A.Or)):
            return any(walk(p) for p in x.parts)
        if isinstance(x, A.Not):
            return walk(x.part)
        return False
    conds = [c for b in sc.blocks for st in b.stmts if isinstance(st, A.Assert) for c in st.conds]
    if sc.final is not None:
        conds += sc.final.conds
    return any(walk(c) for c in conds)


# ====================================================================== footprints
def _refs(x, out: list) -> None:
    """Every Ref and named Value inside a node, as (kind, text)."""
    if isinstance(x, A.Ref):
        out.append((_ref_kind(x.text), x.text))
    elif isinstance(x, A.Value):
        if x.kind in ("mm", "task", "cpu"):
            out.append((x.kind, x.text))
        elif x.kind == "cpuset":
            for r in x.text:
                out.append(("cpu", r.text))
    elif isinstance(x, A.Field):
        if x.owner == "cost":
            out.append(("cost", "cost"))
        elif x.obj is not None:
            out.append((x.owner, x.obj.text))
    elif isinstance(x, A.Is):
        out.append((x.owner, x.obj.text))
    elif isinstance(x, (list, tuple)):
        for y in x:
            _refs(y, out)
    elif hasattr(x, "__slots__") and not isinstance(x, (str, int)):
        for name in x.__slots__:
            if name not in ("line", "col"):
                _refs(getattr(x, name), out)


def _ref_kind(text: str) -> str:
    if text.startswith("@"):
        return "mm"
    if text.startswith("cpu") and text[3:].isdigit():
        return "cpu"
    return "task"


class Footprints:
    """Static may-footprints of every unit, and of each block's remaining program."""

    def __init__(self, model: Model):
        k, units = model.k, model.units
        self.model = model
        nt, nm, nc = len(k.t_name), len(k.m_name), k.ncpus
        self.nt, self.nm = nt, nm
        self.GLOBAL = (1 << (nt + nm + nc)) - 1
        tb = lambda t: 1 << t
        mb = lambda m: 0 if m == INIT_MM else 1 << (nt + m)
        cb = lambda c: 1 << (nt + nm + c)
        self.tb, self.mb, self.cb = tb, mb, cb

        def cpu_of(st, u):
            return u.cpu if getattr(st, "cpu", None) is None else int(st.cpu.text[3:])

        # which tasks may run on each CPU
        run_on = [{k.c_curr[c], c} for c in range(nc)]
        uses = {t: set() for t in range(nt)}
        for us in units:
            for u in us:
                st = u.stmt
                if isinstance(st, A.Schedule):
                    c = cpu_of(st, u)
                    if c < nc and st.task is not None and st.task.text in k.task_ix:
                        run_on[c].add(k.task_ix[st.task.text])
                elif isinstance(st, A.UseMm) and st.task.text in k.task_ix and st.mm.text in k.mm_ix:
                    uses[k.task_ix[st.task.text]].add(k.mm_ix[st.mm.text])
        cpus_of = {t: {c for c in range(nc) if t in run_on[c]} for t in range(nt)}
        for t in range(nt):
            if k.t_cpu[t] is not None:
                cpus_of[t].add(k.t_cpu[t])
        own = {t: ({k.t_mm[t], k.t_active[t]} | uses[t]) - {None} for t in range(nt)}
        active_on = []
        for c in range(nc):
            a = {INIT_MM, k.c_loaded[c], k.c_prev_mm[c], k.t_active[k.c_curr[c]]}
            for t in run_on[c]:
                a |= own[t]
            active_on.append(a - {None})
        holders = {m: {c for c in range(nc) if m in active_on[c]} for m in range(nm)}
        owners = {m: {t for t in range(nt) if m in own[t]} for m in range(nm)}

        def mask(tasks=(), mms=(), cpus=()):
            tasks, mms, cpus = set(tasks), set(mms), set(cpus)
            for c in cpus:
                tasks |= run_on[c]
                mms |= active_on[c]
            for t in list(tasks):
                mms |= own[t]
            # dropping a reference may free an mm: __mmdrop's cleanup and the
            # freed-mm checks reach every CPU that may have it loaded
            for m in list(mms):
                if m != INIT_MM:
                    for c in holders[m]:
                        cpus.add(c)
                        tasks |= run_on[c]
                    tasks |= owners[m]
            bits = 0
            for t in tasks:
                bits |= tb(t)
            for m in mms:
                bits |= mb(m)
            for c in cpus:
                bits |= cb(c)
            return bits

        G = self.GLOBAL
        for us in units:
            for u in us:
                u.fp = self._unit(u, k, mask, cpus_of, cpu_of, G)
                if u.waits_for is not None:
                    u.enable_fp = tb(u.waits_for) if u.waits_for >= 0 else G
        # the future of each block from each pc
        self.fut = []
        for us in units:
            acc, f = 0, [0] * (len(us) + 1)
            for i in range(len(us) - 1, -1, -1):
                acc |= us[i].fp
                f[i] = acc
            self.fut.append(f)

    def _unit(self, u, k, mask, cpus_of, cpu_of, G) -> int:
        st = u.stmt
        refs: list = []
        _refs(st, refs)
        if u.expect is not None:
            _refs(u.expect, refs)
        for kind, text in refs:
            if kind == "cost" or text == "@init_mm":
                return G
            if kind == "task" and text not in k.task_ix and text != "idle":
                return G
            if kind == "mm" and text not in k.mm_ix:
                return G
        if isinstance(st, (A.Spawn, A.SpawnThread, A.SpawnKthread, A.Exec, A.Offline, A.Online)):
            return G
        base = mask(cpus=[u.cpu])          # a block statement first looks at its CPU's current task
        T = lambda ref: k.task_ix[ref.text]
        if isinstance(st, A.Schedule):
            c = cpu_of(st, u)
            tasks = [] if st.task is None else [T(st.task)]
            return base | mask(tasks=tasks, cpus=[c])
        if isinstance(st, (A.Exit, A.UseMm, A.UnuseMm)):
            t = T(st.task)
            mms = [k.mm_ix[st.mm.text]] if isinstance(st, A.UseMm) else []
            return base | mask(tasks=[t], mms=mms, cpus=cpus_of[t])
        if isinstance(st, A.Unlazy):
            return base | mask(cpus=[cpu_of(st, u)])
        if isinstance(st, (A.MmRef, A.MmgetNotZero, A.Flush)):
            return base | mask(mms=[k.mm_ix[st.mm.text]])
        if isinstance(st, A.Assert):
            tasks, mms, cpus = [], [], []
            for kind, text in refs:
                if kind == "task" and text != "idle":
                    tasks.append(k.task_ix[text])
                elif kind == "mm":
                    mms.append(k.mm_ix[text])
                elif kind == "cpu":
                    cpus.append(int(text[3:]))
            return mask(tasks=tasks, mms=mms, cpus=cpus + [u.cpu])
        return G


# ====================================================================== symmetry
class Symmetry:
    """Automorphisms of the blocks and the start state, and the canonical image of a state.

    An automorphism is a permutation of the blocks (each onto one of the same
    shape) with the renaming of CPUs, tasks and mms their statements force;
    names no block forces stay put.  Blocks that can trade places with each
    other and nothing else (only their CPUs and idle tasks move) are
    *interchangeable*: every order of them is an automorphism, so instead of
    enumerating those k! orders a state is put into canonical form by sorting
    them (by what each one's CPU holds).  The search then enumerates only the
    rest of the group: one representative per coset, an interchangeable class
    mapped in order onto another, a singleton block onto a singleton.  It
    tries at most MAX_CANDIDATES pairings of a block with a target, keeps at
    most MAX_ELEMENTS representatives (fewer in a big state), and stops at the
    deadline.  Stopping early loses reduction, never a verdict: every image
    used is still an automorphism's."""

    MAX_ELEMENTS = 512
    MAX_CANDIDATES = 20_000
    MAX_SLOTS = 200_000     # elements kept times the state's size: each costs that much per state, and memory

    def __init__(self, model: Model, deadline: Optional[float] = None):
        self.model = model
        self.deadline = deadline
        self.tried = 0              # pairings of a block with a target tried (bounded by MAX_CANDIDATES)
        self.cut = False            # a bound stopped the search: the group found may be a part of the whole
        self._clock_at = 0
        self.perms = []             # (task perm, mm perm, cpu perm, block perm), identity excluded
        self.images = []
        self.classes = []           # interchangeable blocks, each a sorted tuple of >= 2 block indexes
        if model.creates or model.nblocks < 2:
            return
        k = model.k
        self.max_elements = min(self.MAX_ELEMENTS, self.MAX_SLOTS // (len(k.t_name) + len(k.m_name) + k.ncpus))
        self.final_texts = None if model.final is None else sorted(cond_text(c) for c in model.final.conds)
        # what any automorphism keeps: a block's shape and what its CPU looks like to the start state and `final`
        self.colour = {b: (_shape(us), self._cpu_colour(model.bcpu[b])) for b, us in enumerate(model.units)}
        groups = {}
        for b in range(model.nblocks):
            groups.setdefault(self.colour[b], []).append(b)
        if all(len(v) == 1 for v in groups.values()):
            return
        self.groups = groups
        self._find_classes()
        self.class_of = {b: c for c in self.classes for b in c}
        self._search()
        self.images = [(list(p[3]), self._image_fn(p)) for p in self.perms]
        # per class: (its blocks, their CPUs, their idle tasks), for sorting
        self.sorting = [(c, [model.bcpu[b] for b in c], [k._idle(model.bcpu[b]) for b in c]) for c in self.classes]

    def size(self) -> int:
        n = len(self.perms) + 1
        for c in self.classes:
            for i in range(2, len(c) + 1):
                n *= i
        return n

    # ---- finding the group ------------------------------------------------------
    def _cpu_colour(self, c: int) -> tuple:
        """What a CPU is in the start state and in `final`, with every name left out."""
        k = self.model.k
        curr = k.c_curr[c]
        local = (k.c_online[c], k.c_lazy[c], curr == k._idle(c), k.c_loaded[c] == INIT_MM, k.c_loaded[c] is None,
                 k.c_prev_mm[c] is None, k.t_active[curr] == INIT_MM, k.t_active[curr] is None)
        if self.model.final is None:
            return local
        me = f"cpu{c}"
        said = []
        for cond in self.model.final.conds:
            refs: list = []
            _refs(cond, refs)
            if ("cpu", me) in refs:
                f = {(kind, text): (kind, kind) for kind, text in refs}
                f[("cpu", me)] = ("cpu", "$")
                said.append(cond_text(_renamed(cond, f)))
        return local + tuple(sorted(said))

    def _bounded(self) -> bool:
        """Whether the search may go on (the clock is read every 64 pairings)."""
        if self.tried >= self.MAX_CANDIDATES or len(self.perms) >= self.max_elements:
            self.cut = True
        elif self.deadline is not None and self.tried >= self._clock_at:
            self._clock_at = self.tried + 64
            self.cut = time.perf_counter() > self.deadline
        return not self.cut

    def _pair(self, b: int, tgt: int, f: dict, r: dict) -> bool:
        """Bind block b onto block tgt (their CPUs, idle tasks, current tasks, statements) in f/r."""
        model, k = self.model, self.model.k
        self.tried += 1
        start = len(f)
        cb, ct = model.bcpu[b], model.bcpu[tgt]
        if not (_bind(("cpu", f"cpu{cb}"), ("cpu", f"cpu{ct}"), f, r)
                and _bind(("task", f"idle{cb}"), ("task", f"idle{ct}"), f, r)
                # a CPU's current task goes with it
                and _bind(("task", k.t_name[k.c_curr[cb]]), ("task", k.t_name[k.c_curr[ct]]), f, r)):
            return False
        for ua, ub in zip(model.units[b], model.units[tgt]):
            if not _unify(ua.stmt, ub.stmt, f, r) or not _unify(ua.expect, ub.expect, f, r):
                return False
        return self._state_bind(f, r, start)

    def _find_classes(self) -> None:
        """Partition each colour into interchangeable classes: a block joins a class when
        swapping it with the class's first block (nothing else moving) is an automorphism."""
        model = self.model
        names = []              # what each block names (bound to itself when the block stays)
        for b in range(model.nblocks):
            f = {}
            self._pair(b, b, f, {})
            names.append(set(f))
        start = [self._key(model.start, model.start_pcs, b, model.bcpu[b], model.k._idle(model.bcpu[b]))
                 for b in range(model.nblocks)]
        for group in self.groups.values():
            classes = []
            for b in group:
                for c in classes:
                    # equal start columns: a cheap necessary condition before the full check
                    if start[c[0]] == start[b] and self._bounded() and self._swappable(c[0], b, names):
                        c.append(b)
                        break
                else:
                    classes.append([b])
            self.classes += [tuple(c) for c in classes if len(c) > 1]

    def _swappable(self, a: int, b: int, names: list) -> bool:
        """Whether swapping blocks a and b, with only their CPUs and idle tasks, is an automorphism."""
        model = self.model
        ca, cb = model.bcpu[a], model.bcpu[b]
        own = {("cpu", f"cpu{ca}"), ("cpu", f"cpu{cb}"), ("task", f"idle{ca}"), ("task", f"idle{cb}")}
        f, r = {}, {}
        if not (self._pair(a, b, f, r) and self._pair(b, a, f, r)):
            return False
        if any(x != y for x, y in f.items() if x not in own):
            return False        # other names move too: not a plain swap
        if any(own & names[x] for x in range(model.nblocks) if x != a and x != b):
            return False        # another block names one of the two CPUs or idle tasks
        sigma = list(range(model.nblocks))
        sigma[a], sigma[b] = b, a
        return self._complete(sigma, f, r) is not None

    def _targets(self, b: int, sigma: list) -> list:
        cls = self.class_of.get(b)
        if cls is None:         # a singleton goes onto a singleton
            return [t for t in self.groups[self.colour[b]] if t not in self.class_of]
        i = cls.index(b)
        if i == 0:              # a class onto a class as large, in order
            return [c[0] for c in self.classes if len(c) == len(cls) and self.colour[c[0]] == self.colour[b]]
        return [self.class_of[sigma[cls[0]]][i]]

    def _search(self) -> None:
        """Depth first over the blocks in order, each onto a target (a loop, not recursion:
        there may be a thousand blocks)."""
        n = self.model.nblocks
        sigma, used = [None] * n, set()
        stack = [(iter(self._targets(0, sigma)), {}, {})]     # per block: targets left, bindings before it
        while stack:
            b = len(stack) - 1
            targets, fwd, rev = stack[-1]
            if sigma[b] is not None:            # back from the blocks after b: undo b's choice
                used.discard(sigma[b])
                sigma[b] = None
            for tgt in targets:
                if not self._bounded():
                    return
                if tgt in used:
                    continue
                f, r = dict(fwd), dict(rev)
                if not self._pair(b, tgt, f, r):
                    continue
                if b + 1 < n:
                    sigma[b] = tgt
                    used.add(tgt)
                    stack.append((iter(self._targets(b + 1, sigma)), f, r))
                    break
                sigma[b] = tgt
                p = self._complete(sigma, f, r)
                sigma[b] = None
                if p is not None and not all(tuple(range(len(x))) == x for x in p):
                    self.perms.append(p)
            else:
                stack.pop()

    def _state_bind(self, f, r, start: int = 0) -> bool:
        """A task's mm and active_mm go with it (for the bindings from index start on:
        the earlier ones were followed when they were made; an mm binds nothing more)."""
        k = self.model.k
        for (kind, a), (_, b) in list(f.items())[start:]:
            if kind != "task" or a not in k.task_ix or b not in k.task_ix:
                continue
            ta, tb_ = k.task_ix[a], k.task_ix[b]
            for fld in (k.t_mm, k.t_active):
                ma, mb_ = fld[ta], fld[tb_]
                if (ma is None) != (mb_ is None):
                    return False
                if ma is not None and not _bind(("mm", k.m_name[ma]), ("mm", k.m_name[mb_]), f, r):
                    return False
        return True

    def _complete(self, sigma, f, r):
        k = self.model.k
        if self.final_texts is not None and \
                sorted(cond_text(_renamed(c, f)) for c in self.model.final.conds) != self.final_texts:
            return None     # `final` must say the same of the renamed state (its conjuncts may trade places)
        nt, nm, nc = len(k.t_name), len(k.m_name), k.ncpus
        tp, mp, cp = list(range(nt)), list(range(nm)), list(range(nc))
        for (kind, a), (_, b) in f.items():
            try:
                if kind == "task":
                    tp[k.task_ix[a]] = k.task_ix[b]
                elif kind == "mm":
                    mp[k.mm_ix[a]] = k.mm_ix[b]
                elif kind == "cpu":
                    cp[int(a[3:])] = int(b[3:])
            except (KeyError, ValueError, IndexError):
                return None
        if sorted(tp) != list(range(nt)) or sorted(mp) != list(range(nm)) or sorted(cp) != list(range(nc)):
            return None
        if mp[INIT_MM] != INIT_MM:
            return None
        p = (tuple(tp), tuple(mp), tuple(cp), tuple(sigma))
        s = self.model.start
        # not kept: a rejected candidate leaves nothing behind
        if self._image_fn(p)(s, self.model.start_pcs)[0] != s:
            return None
        return p

    def _image_fn(self, p):
        """A function computing the image of (state, pcs) under p: per field, the
        source index of each slot and how its values are renamed."""
        tp, mp, cp, bp = p
        tinv, minv, cinv = _inverse(tp), _inverse(mp), _inverse(cp)
        rename = {"mm": dict(enumerate(mp)), "task": dict(enumerate(tp)), "cpu": dict(enumerate(cp))}
        for d in rename.values():
            d[None] = None

        class Masks(dict):
            def __missing__(self, v):
                out = 0
                for c in range(len(cp)):
                    if v >> c & 1:
                        out |= 1 << cp[c]
                self[v] = out
                return out
        rename["mask"] = Masks()
        plan = []
        for name in STATE_FIELDS:
            inv = tinv if name[0] == "t" else minv if name[0] == "m" else cinv
            kind = VALUE_KIND.get(name)
            plan.append((inv, rename[kind].__getitem__ if kind else None))
        nfields = len(STATE_FIELDS)
        bmap = list(bp)

        def image(s, pcs):
            out = []
            for (inv, ren), col in zip(plan, s):
                if ren is None:
                    out.append(tuple(map(col.__getitem__, inv)))
                else:
                    out.append(tuple(map(ren, map(col.__getitem__, inv))))
            out.extend(s[nfields:])
            npcs = [0] * len(pcs)
            for b, pc in enumerate(pcs):
                npcs[bmap[b]] = pc
            return tuple(out), tuple(npcs)
        return image

    # ---- canonical forms ----------------------------------------------------------
    def _sorted(self, s, pcs):
        """(s, pcs) with the blocks of each interchangeable class in the order of what
        their CPUs hold: equal for every order of them, as each class's CPUs are
        told apart only by their own columns (the key says everything that
        names the CPU or its idle task)."""
        k = self.model.k
        nt, nc = len(s[_T_MM]), k.ncpus
        moves = []
        for blocks, cpus, idles in self.sorting:
            keys = [self._key(s, pcs, b, c, t) for b, c, t in zip(blocks, cpus, idles)]
            order = sorted(range(len(blocks)), key=keys.__getitem__)
            if order != list(range(len(blocks))):
                moves.append((blocks, cpus, idles, order))
        if not moves:
            return s, pcs
        tp, cp, bp = list(range(nt)), list(range(nc)), list(range(len(pcs)))
        for blocks, cpus, idles, order in moves:
            for i, j in enumerate(order):      # the j-th of the class goes to place i
                bp[blocks[j]], cp[cpus[j]], tp[idles[j]] = blocks[i], cpus[i], idles[i]
        return self._image_fn((tp, list(range(len(s[_M_USERS]))), cp, bp))(s, pcs)

    @staticmethod
    def _key(s, pcs, b, c, t) -> tuple:
        """Block b's program counter and what its CPU c and idle task t hold in state s,
        with t written as -1 (it is named nowhere else, as the other tasks and mms stay put)."""
        curr = s[_C_CURR][c]
        return (pcs[b], -1 if curr == t else curr, s[_C_ONLINE][c], _n(s[_C_PREV_MM][c]), _n(s[_C_LOADED][c]),
                s[_C_LAZY][c], _n(s[_T_MM][t]), _n(s[_T_ACTIVE][t]), s[_T_STATE][t], s[_T_CPU][t] is None,
                _n(s[_T_PTBR][t]), tuple(mask >> c & 1 for mask in s[_M_CPUMASK]))

    def canonical(self, s, pcs):
        """The least image of (s, pcs) under the group, by hash (ties by repr).
        Without interchangeable blocks: over every element found, first by the
        hash of the permuted program counters (cheap), then by the hash of the
        whole image.  With them: over each coset representative's image, put
        in sorted form.  Both depend only on the orbit, so every state of an
        orbit gets the same representative."""
        if self.classes:
            return _least(self._sorted(*(image(s, pcs) if image else (s, pcs)))
                          for image in [None] + [im for _, im in self.images])
        best_h = hash(pcs)
        cands = [None]
        for bmap, image in self.images:
            npcs = [0] * len(pcs)
            for b, pc in enumerate(pcs):
                npcs[bmap[b]] = pc
            h = hash(tuple(npcs))
            if h < best_h:
                best_h, cands = h, [image]
            elif h == best_h:
                cands.append(image)
        return _least((s, pcs) if image is None else image(s, pcs) for image in cands)


def _least(images):
    best = bh = None
    for img in images:
        h = hash(img)
        if best is None or h < bh or (h == bh and img != best and repr(img) < repr(best)):
            best, bh = img, h
    return best


def _n(x):
    """None as -1, so that keys holding optional indexes compare."""
    return -1 if x is None else x


_T_MM, _T_ACTIVE, _T_STATE, _T_CPU, _T_PTBR = (STATE_FIELDS.index(f) for f in ("t_mm", "t_active", "t_state",
                                                                               "t_cpu", "t_ptbr"))
_M_USERS, _M_CPUMASK = STATE_FIELDS.index("m_users"), STATE_FIELDS.index("m_cpumask")
_C_CURR, _C_ONLINE, _C_PREV_MM, _C_LOADED, _C_LAZY = (STATE_FIELDS.index(f) for f in CPU_FIELDS)


def _inverse(perm):
    inv = [0] * len(perm)
    for i, j in enumerate(perm):
        inv[j] = i
    return inv


def _shape(us) -> tuple:
    return tuple((type(u.stmt).__name__, getattr(u.stmt, "op", None), u.expect is not None) for u in us)


def _renamed(x, f):
    """A copy of a condition with its names renamed by f ((kind, name) -> (kind, name))."""
    import dataclasses
    if isinstance(x, A.Ref):
        kind = _ref_kind(x.text)
        return A.Ref(f.get((kind, x.text), (kind, x.text))[1], x.line, x.col)
    if isinstance(x, A.Value):
        if x.kind in ("mm", "task", "cpu"):
            return dataclasses.replace(x, text=f.get((x.kind, x.text), (x.kind, x.text))[1])
        if x.kind == "cpuset":
            return dataclasses.replace(x, text=tuple(_renamed(r, f) for r in x.text))
        return x
    if isinstance(x, list):
        return [_renamed(y, f) for y in x]
    if dataclasses.is_dataclass(x):
        return dataclasses.replace(x, **{fl.name: _renamed(getattr(x, fl.name), f) for fl in dataclasses.fields(x)
                                         if fl.name not in ("line", "col")})
    return x


def _bind(a, b, f, r) -> bool:
    if a in f:
        return f[a] == b
    if b in r:
        return r[b] == a
    f[a] = b
    r[b] = a
    return True


def _unify(x, y, f, r) -> bool:
    """Structural equality of two statements up to a consistent renaming of names."""
    if x is None or y is None:
        return x is None and y is None
    if type(x) is not type(y):
        return False
    if isinstance(x, A.Ref):
        kx, ky = _ref_kind(x.text), _ref_kind(y.text)
        return kx == ky and _bind((kx, x.text), (ky, y.text), f, r)
    if isinstance(x, A.Value):
        if x.kind != y.kind:
            return False
        if x.kind in ("mm", "task", "cpu"):
            return _bind((x.kind, x.text), (y.kind, y.text), f, r)
        if x.kind == "cpuset":
            return len(x.text) == len(y.text) and all(_unify(a, b, f, r) for a, b in zip(x.text, y.text))
        return x.text == y.text
    if isinstance(x, (list, tuple)):
        return len(x) == len(y) and all(_unify(a, b, f, r) for a, b in zip(x, y))
    if isinstance(x, (str, int, float, bool)):
        return x == y
    if hasattr(x, "__slots__"):
        for name in x.__slots__:
            if name in ("line", "col"):
                continue
            if not _unify(getattr(x, name), getattr(y, name), f, r):
                return False
        return True
    return x == y


# ====================================================================== the search
@dataclass
class Stats:
    states: int = 0             # states expanded
    distinct: int = 0           # states stored
    transitions: int = 0        # statements fired
    finals: int = 0             # distinct final states
    deadlocks: int = 0
    interleavings: Optional[int] = None
    depth: int = 0
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.states / self.seconds if self.seconds > 0 else 0.0


@dataclass
class Result:
    model: Model
    stats: Stats
    complete: bool                      # the whole (reduced) state space was searched
    failure: Optional[Failure] = None
    path: list = field(default_factory=list)      # [(block, unit index)] to the failure
    exists_path: Optional[list] = None            # shortest path to a final state where `final exists` holds
    exists_count: int = 0
    finals: list = field(default_factory=list)    # captured final states (with --all-finals)
    stop_reason: str = ""
    por: bool = True
    symmetry: int = 1                   # group size used (1: off or none found)
    pruned: bool = False                # partial-order reduction left some enabled statement out
    mode: str = "exhaustive"
    seed: Optional[int] = None
    walks: int = 0

    @property
    def holds(self) -> Optional[bool]:
        """The verdict: True/False, or None when an incomplete search could not decide it."""
        if self.failure is not None:
            return False
        f = self.model.final
        if f is not None and f.quantifier == "exists" and self.exists_count == 0:
            return False if self.complete else None
        return True if self.complete else None

    @property
    def passed(self) -> Optional[bool]:
        """The verdict compared with the header's `expect pass|fail`."""
        h = self.holds
        if h is None:
            return None
        return h == (self.model.sc.outcome != "fail")


class Explorer:
    def __init__(self, model: Model, por: bool = True, symmetry: bool = True,
                 max_states: Optional[int] = None, max_seconds: Optional[float] = None,
                 all_finals: bool = False, progress: Optional[Callable] = None,
                 on_edge: Optional[Callable] = None):
        # --max-seconds counts from here: finding the reductions is part of the search
        self.t0 = time.perf_counter()
        self.m = model
        self.por = por and not model.creates
        self.fp = Footprints(model) if self.por else None
        self.sym = Symmetry(model, None if max_seconds is None else self.t0 + max_seconds) if symmetry else None
        if self.sym is not None and self.sym.size() == 1:
            self.sym = None
        self.max_states = max_states
        self.max_seconds = max_seconds
        self.all_finals = all_finals
        self.progress = progress
        # edge recording, for the state graph (`mmscn draw --format dot`); None costs nothing:
        # on_edge(src, dst, unit, state, pcs, failure) for every statement fired, with
        # dst None (and the Failure) when it failed the interleaving
        self.on_edge = on_edge
        self._ps_cache: dict = {}

    def persistent(self, pcs, enabled, live):
        """The enabled blocks of a smallest persistent set found (seeded by each enabled block)."""
        key = (pcs, enabled)
        hit = self._ps_cache.get(key)
        if hit is not None:
            return hit
        units, fut = self.m.units, self.fp.fut
        best = None
        for seed in enabled:
            S = {seed}
            stack = [seed]
            while stack:
                p = stack.pop()
                u = units[p][pcs[p]]
                bits = u.fp if p in enabled else u.enable_fp
                for q in live:
                    if q not in S and fut[q][pcs[q]] & bits:
                        S.add(q)
                        stack.append(q)
            e = tuple(b for b in enabled if b in S)
            if best is None or len(e) < len(best):
                best = e
                if len(e) == 1:
                    break
        self._ps_cache[key] = best
        return best

    def run(self) -> Result:
        m = self.m
        t0 = self.t0
        stats = Stats()
        res = Result(m, stats, complete=False, por=self.por, symmetry=self.sym.size() if self.sym else 1)
        units = m.units
        nblocks = m.nblocks
        lens = [len(us) for us in units]
        canon = self.sym.canonical if self.sym else None
        start_key = canon(m.start, m.start_pcs) if canon else (m.start, m.start_pcs)
        index = {start_key: 0}
        states = [m.start]
        pcs_of = [m.start_pcs]
        parent = [-1]
        via = [None]
        depth = [0]
        succ = [None]
        final_ids = []
        final = m.final
        exists = final is not None and final.quantifier == "exists"
        queue = deque([0])
        restore, capture, fire, waiting = m.restore, m.capture, m.fire, m.waiting
        persistent = self.persistent if self.por else None
        on_edge = self.on_edge
        at = -1                         # the id of the state the kernel holds, if known
        failure = None
        fail_from = None
        exists_id = None
        next_check = 1024
        max_states, max_seconds = self.max_states, self.max_seconds
        stop = ""
        if max_seconds is not None and time.perf_counter() - t0 > max_seconds:
            queue = deque()     # finding the reductions used the time up
            stop = f"stopped after {max_seconds:g} s (--max-seconds)"
        while queue:
            i = queue.popleft()
            s, pcs = states[i], pcs_of[i]
            stats.states += 1
            if stats.states >= next_check:
                next_check += 1024
                el = time.perf_counter() - t0
                if self.progress is not None:
                    self.progress(stats.states, len(states), depth[i], el)
                if max_seconds is not None and el > max_seconds:
                    stop = f"stopped after {max_seconds:g} s (--max-seconds)"
                    break
            live = tuple(b for b in range(nblocks) if pcs[b] < lens[b])
            if not live:
                final_ids.append(i)
                if final is not None:
                    restore(s)
                    at = i
                    held, detail = m.judge_final()
                    if exists and held:
                        res.exists_count += 1
                        if exists_id is None:
                            exists_id = i
                    elif not held and final.quantifier == "forall":
                        if failure is None:
                            failure = Failure("final", f"final forall does not hold: {detail}", "",
                                              final.line, final.col)
                            fail_from = (i, None)
                        if not self.all_finals:
                            break
                succ[i] = ()
                continue
            enabled = tuple(b for b in live if not waiting(s, units[b][pcs[b]]))
            if not enabled:
                stats.deadlocks += 1
                if failure is None:
                    failure = m.deadlock(pcs)
                    fail_from = (i, None)
                succ[i] = ()
                if not self.all_finals:
                    break
                continue
            if persistent is not None:
                fire_set = persistent(pcs, enabled, live)
                if len(fire_set) < len(enabled):
                    res.pruned = True
            else:
                fire_set = enabled
            out = []
            d1 = depth[i] + 1
            for b in fire_set:
                if at != i:
                    restore(s)
                    at = i
                u = units[b][pcs[b]]
                outcome, fail = fire(u)
                stats.transitions += 1
                if outcome == FAILED:
                    if on_edge is not None:
                        on_edge(i, None, u, None, None, fail)
                    if failure is None:
                        failure = fail
                        fail_from = (i, (b, pcs[b]))
                    if not self.all_finals:
                        break
                    continue
                if outcome != SAME:
                    at = -1
                    s2 = capture()
                else:
                    s2 = s
                npcs = list(pcs)
                npcs[b] = lens[b] if outcome == ENDED else pcs[b] + 1
                npcs = tuple(npcs)
                key = canon(s2, npcs) if canon else (s2, npcs)
                j = index.get(key)
                if j is None:
                    j = len(states)
                    index[key] = j
                    states.append(s2)
                    pcs_of.append(npcs)
                    parent.append(i)
                    via.append((b, pcs[b]))
                    depth.append(d1)
                    succ.append(None)
                    queue.append(j)
                    if d1 > stats.depth:
                        stats.depth = d1
                out.append(j)
                if on_edge is not None:
                    on_edge(i, j, u, s2, npcs, None)
            succ[i] = out
            if failure is not None and not self.all_finals:
                break
            if max_states is not None and len(states) >= max_states:
                stop = f"stopped at {max_states:,} states (--max-states)"
                break
        stats.distinct = len(states)
        stats.finals = len(final_ids)
        stats.seconds = time.perf_counter() - t0
        res.stop_reason = stop
        res.complete = not stop and not queue
        if failure is not None:
            res.failure = failure
            i, last = fail_from
            res.path = self._path(parent, via, i) + ([last] if last is not None else [])
            if last is not None and self.por:
                res.path = self.causal(res.path, failure)
        if exists_id is not None:
            res.exists_path = self._path(parent, via, exists_id)
        if self.all_finals:
            res.finals = [states[i] for i in final_ids]
        if res.complete and failure is None:
            stats.interleavings = self._count(succ, pcs_of)
        return res

    def causal(self, path: list, failure: Failure) -> list:
        """Only the steps the failing one depends on, in their order.

        Partial-order reduction delays independent blocks, so the path it finds
        may carry steps of other CPUs that have nothing to do with the failure.
        Those that do not conflict (by footprint) with the failing step or with
        a kept step after them, and are not followed by a kept step of their
        own block, can be moved after the failure, so dropping them
        leaves a valid, shorter interleaving.  It is kept only if replaying it
        fails the same way (init_mm's counters are outside the footprints)."""
        units = self.m.units
        keep, bits, blocks = [], 0, set()
        for n in range(len(path) - 1, -1, -1):
            b = path[n][0]
            u = units[b][path[n][1]]
            # a block's steps stay a prefix of it: keep every step before a kept one
            if n == len(path) - 1 or u.fp & bits or b in blocks:
                keep.append(path[n])
                bits |= u.fp
                blocks.add(b)
        keep.reverse()
        if len(keep) == len(path):
            return path
        steps = replay(self.m, keep)
        f = steps[-1].failure if steps else None
        if f is not None and len(steps) == len(keep) and (f.kind, f.message) == (failure.kind, failure.message):
            return keep
        return path

    @staticmethod
    def _path(parent, via, i) -> list:
        out = []
        while parent[i] >= 0:
            out.append(via[i])
            i = parent[i]
        out.reverse()
        return out

    @staticmethod
    def _count(succ, pcs_of) -> int:
        """Complete paths through the explored graph: a DP in order of progress (sum of pcs)."""
        order = sorted(range(len(succ)), key=lambda i: sum(pcs_of[i]), reverse=True)
        paths = [0] * len(succ)
        for i in order:
            out = succ[i]
            paths[i] = 1 if not out else sum(paths[j] for j in out)
        return paths[0]


# ====================================================================== random interleavings
def random_walks(model: Model, n: int, seed: int, max_seconds: Optional[float] = None,
                 progress: Optional[Callable] = None) -> Result:
    rng = _random.Random(seed)
    t0 = time.perf_counter()
    stats = Stats()
    res = Result(model, stats, complete=False, por=False, mode="random", seed=seed)
    units = model.units
    lens = [len(us) for us in units]
    final = model.final
    finals = set()
    shortest = None
    for w in range(n):
        if max_seconds is not None and time.perf_counter() - t0 > max_seconds:
            res.stop_reason = f"stopped after {max_seconds:g} s (--max-seconds)"
            break
        if progress is not None and w % 64 == 0:
            progress(stats.states, len(finals), stats.depth, time.perf_counter() - t0)
        model.restore(model.start)
        s, pcs, path = model.start, list(model.start_pcs), []
        fail = None
        while True:
            live = [b for b in range(len(units)) if pcs[b] < lens[b]]
            if not live:
                finals.add(s)
                if final is not None:
                    held, detail = model.judge_final()
                    if final.quantifier == "exists" and held:
                        res.exists_count += 1
                        if res.exists_path is None or len(path) < len(res.exists_path):
                            res.exists_path = list(path)
                    elif not held and final.quantifier == "forall":
                        fail = (Failure("final", f"final forall does not hold: {detail}", "",
                                        final.line, final.col), list(path))
                break
            enabled = [b for b in live if not model.waiting(s, units[b][pcs[b]])]
            if not enabled:
                stats.deadlocks += 1
                fail = (model.deadlock(tuple(pcs)), list(path))
                break
            b = rng.choice(enabled)
            u = units[b][pcs[b]]
            outcome, f = model.fire(u)
            stats.transitions += 1
            stats.states += 1
            path.append((b, pcs[b]))
            if outcome == FAILED:
                fail = (f, path)
                break
            pcs[b] = lens[b] if outcome == ENDED else pcs[b] + 1
            if outcome != SAME:
                s = model.capture()
        stats.depth = max(stats.depth, len(path))
        res.walks += 1
        if fail is not None and (shortest is None or len(fail[1]) < len(shortest[1])):
            shortest = fail
    if shortest is not None:
        res.failure, res.path = shortest
    stats.finals = len(finals)
    stats.distinct = len(finals)
    stats.seconds = time.perf_counter() - t0
    return res


# ====================================================================== replaying a path
@dataclass
class Step:
    cpu: int
    stmt: object
    expect: object
    changes: list               # [(field, old, new)]
    failure: Optional[Failure] = None


def prologue_result(model: Model) -> Optional[Result]:
    """The verdict when the prologue already failed (nothing to explore), else None."""
    if model.prologue_failure is None:
        return None
    return Result(model, Stats(), complete=True, failure=model.prologue_failure, mode="prologue")


def failing_steps(model: Model, res: Result) -> list:
    """The failing interleaving, step by step, or [] when there is none to show."""
    return replay(model, res.path) if res.failure is not None and res.path else []


def replay(model: Model, path: list) -> list:
    """The steps of a path from the start state, each with the fields it changed."""
    model.restore(model.start)
    before = model.fields()
    out = []
    for b, idx in path:
        u = model.units[b][idx]
        outcome, fail = model.fire(u)
        after = model.fields()
        changes = [(key, before.get(key), after.get(key)) for key in after if before.get(key) != after.get(key)]
        out.append(Step(u.cpu, u.stmt, u.expect, changes, fail))
        before = after
        if outcome == FAILED:
            break
    return out


def final_fields(model: Model, s: tuple) -> dict:
    model.restore(s)
    return model.fields()


# ====================================================================== witness scenario
def _q(text: str) -> str:
    return '"' + text.replace('"', "'") + '"'


def stmt_source(model: Model, st, cpu: Optional[int]) -> str:
    """The statement as a top-level line, with the CPU a block left implicit written out."""
    from .report import statement_text
    if isinstance(st, A.Expect):
        return f"expect {st.kind}" + (f" {_q(st.text)}" if st.text else "")
    if isinstance(st, A.Schedule) and cpu is not None and st.cpu is None:
        return f"schedule cpu{cpu} {'idle' if st.task is None else st.task.text}"
    if isinstance(st, A.Unlazy) and st.cpu is None:
        return f"unlazy cpu{cpu}"
    if isinstance(st, A.Offline) and st.cpu is None:
        return f"offline cpu{cpu}"
    return statement_text(model.lines, st)


def witness_text(model: Model, res: Result) -> str:
    """A scenario that replays the failing interleaving: `mmscn run` fails at its
    last step as the exploration did (the header says `expect fail`).

    Each step is a top-level statement, except where the top level would judge
    it otherwise than its block did: a statement that names a task or mm
    another block makes (a block may, the top level may not before the
    spawn), one on a CPU whose current task has exited (only a block refuses
    that), an mmput or flush whose policy tells the CPU it runs on from none
    (a top-level statement runs on none).  From such a step on, when the
    steps left are all on its CPU, they run in that CPU's block, as they did.
    Otherwise the first two kinds can only have been refused as an `expect
    error` said, and a refusal changes nothing, so the step is left out; the
    third gets a note.  A step refused as expected keeps the refusal's own
    words as its expectation, so that the replay judges the same refusal."""
    from mmscn.dsl.diagnostics import printable
    sc, f, k = model.sc, res.failure, model.k
    # a file name or message with a newline (or any control character) must not end the
    # comment or the title early: printable() keeps them on their line
    path = printable(str(sc.path))
    out = [f"# Witness written by `mmscn explore` for {path}: an interleaving of its",
           f"# per-CPU blocks ({plural(len(res.path), 'step')}) that fails:",
           printable(f"#   {f.kind}: {f.message}"[:400]),
           "# `mmscn run` on this file replays it and fails at the last step; the header's",
           "# `expect fail` makes that failure the pass.",
           f"scenario {_q('witness: ' + (sc.title if sc.title is not None else path))}",
           f"arch {model.policy.name}",
           f"cpus {sc.ncpus}",
           "expect fail",
           "",
           "# the prologue"]
    made = _Made(k.ncpus)
    for st in sc.stmts:
        out.append(stmt_source(model, st, None))
        made.add(st)
    out.append("")
    out.append("# the interleaving")
    steps = [model.units[b][idx] for b, idx in res.path]
    final = [] if f.kind != "final" else ["assert " + ", ".join(cond_text(c) for c in model.final.conds)]
    model.restore(model.start)
    for n, u in enumerate(steps, 1):
        missing = made.missing(u.stmt)
        dead = not isinstance(u.stmt, (A.Schedule, A.Assert)) and k.t_state[k.c_curr[u.cpu]] == DEAD
        why = (f"it names {', '.join(f'`{t}`' for _, t in missing)}, which another block makes"
               if missing else f"cpu{u.cpu}'s current task {k.t_name[k.c_curr[u.cpu]]} has exited" if dead else "")
        on_cpu = not why and _cpu_matters(model, u)
        if (why or on_cpu) and f.kind != "deadlock" and all(v.cpu == u.cpu for v in steps[n - 1:]):
            why = why or f"on {model.policy.name} it does something else on cpu{u.cpu} than on no CPU"
            out += _block(model, u.cpu, steps, n, final, made,
                          f"# from step {n} on, cpu{u.cpu}'s block as it ran: the top level would judge step {n} "
                          f"otherwise ({why})")
            return "\n".join(out) + "\n"
        outcome, _ = model.fire(u)
        where = f"# step {n}: cpu{u.cpu}, line {u.stmt.line}"
        if why:     # refused, as its `expect error` said (anything else ended the interleaving)
            out.append(f"{where}: `{stmt_source(model, u.stmt, u.cpu)}` is left out: {why}, so its block "
                       f"refused it as expected; the top level would not, and a refusal changes nothing")
            continue
        if u.expect is not None:
            out.append(_expect_line(model, u, outcome))
        if on_cpu:
            out.append(f"# note: in its block the next step ran on cpu{u.cpu}, which {model.policy.name} tells "
                       f"from no CPU, where a top-level statement runs: the replay may part from the exploration here")
        out.append(f"{stmt_source(model, u.stmt, u.cpu):<40} {where}")
        made.add(u.stmt)
    if final:
        missing = [x for c in model.final.conds for x in made.missing(A.Assert(0, 0, [c]))]
        if missing:
            out += _block(model, 0, [], 1, final, made, "# the final forall, in a block: it names "
                          + ", ".join(f"`{t}`" for _, t in dict.fromkeys(missing))
                          + ", which no statement made in this interleaving")
        else:
            out.append(final[0] + "          # the final forall")
    elif f.kind == "deadlock":
        replay(model, res.path)
        pcs = _pcs_after(model, res.path)
        for b, pc in enumerate(pcs):
            if pc < len(model.units[b]):
                st = model.units[b][pc].stmt
                out.append(f"{stmt_source(model, st, model.bcpu[b])}          # cpu{model.bcpu[b]} waits here "
                           f"(line {st.line}): deadlock")
                break
    return "\n".join(out) + "\n"


def _block(model: Model, cpu: int, steps: list, n: int, final: list, made: "_Made", head: str) -> list:
    """Steps n.. (and the final forall's assertion) in cpu's block, then statements that
    never run: they make the names the block uses known to the file, as the blocks
    that made them did."""
    from .report import statement_text
    out = [head, f"cpu{cpu} {{"]
    inside = made.copy()
    for u in steps[n - 1:]:
        inside.add(u.stmt)      # a block's spawns count in all of it
    missing = []
    for m, u in enumerate(steps[n - 1:], n):
        outcome, _ = model.fire(u)
        if u.expect is not None:
            out.append("  " + _expect_line(model, u, outcome))
        out.append(f"  {statement_text(model.lines, u.stmt):<38} # step {m}: cpu{u.cpu}, line {u.stmt.line}")
        missing += inside.missing(u.stmt)
    for line in final:
        out.append(f"  {line:<38} # the final forall")
        missing += [x for c in model.final.conds for x in inside.missing(A.Assert(0, 0, [c]))]
    missing = list(dict.fromkeys(missing))
    names = {name for _, name in missing}
    spare = (t for t in (f"_witness{i}" for i in range(1, 2 + len(missing) + len(inside.tasks)))
             if t not in inside.tasks and t not in names)
    for kind, name in missing:
        if kind == "task":
            text = f"spawn {name}" if "@" + name in names and "@" + name not in inside.mms else f"spawn kthread {name}"
        elif name[1:] in names and name[1:] not in inside.tasks:
            continue    # made with its task, above
        else:
            text = f"spawn {next(spare)} mm {name}"
        out.append(f"  {text:<38} # never runs: makes {name} known, as a block made it")
    out.append("}")
    return out


def _expect_line(model: Model, u: Unit, outcome) -> str:
    """A step's `expect`; one that a refusal met quotes the refusal's own words, so the
    replay cannot pass it on another refusal that shares a few."""
    if outcome == SAME and u.expect.kind == "error":
        return f"expect error {_q(_quotable(model.refusal))}"
    return stmt_source(model, u.expect, u.cpu)


def _quotable(text: str) -> str:
    """The longest piece of a message that a string can hold (a string has no escapes)."""
    return max(text.split('"'), key=len)


def _cpu_matters(model: Model, u: Unit) -> bool:
    """Whether the statement does something else at the top level, where it runs on no
    CPU: a policy may tell an mmput's exit_mmap or a flush on this CPU from one elsewhere."""
    if not isinstance(u.stmt, (A.MmRef, A.Flush)):
        return False
    before = model.capture()
    seen = []
    for cpu in (u.cpu, None):
        model.restore(before)
        try:
            EXEC[type(u.stmt)](model.shim, u.stmt, cpu)
            seen.append((model.capture(), [v.message for v in model.k.check()]))
        except (Refusal, StatementError) as e:
            seen.append(e.message)
    model.restore(before)
    return seen[0] != seen[1]


class _Made:
    """The tasks and mms the witness has made so far, as the resolver counts them."""

    def __init__(self, ncpus: int):
        self.tasks = {f"idle{c}" for c in range(ncpus)}
        self.mms = {"@init_mm"}

    def copy(self) -> "_Made":
        other = _Made(0)
        other.tasks, other.mms = set(self.tasks), set(self.mms)
        return other

    def add(self, st) -> None:
        if isinstance(st, (A.Spawn, A.SpawnThread, A.SpawnKthread)):
            self.tasks.add(st.task.text)
        if isinstance(st, (A.Spawn, A.Exec)):
            self.mms.add(st.mm.text if st.mm is not None else fresh_mm_name(st.task.text, self.mms))

    def missing(self, st) -> list:
        """The (kind, name) of the tasks and mms st names that nothing has made yet."""
        makes = set()
        if isinstance(st, (A.Spawn, A.SpawnThread, A.SpawnKthread)):
            makes.add(st.task.text)
        if isinstance(st, (A.Spawn, A.Exec)) and st.mm is not None:
            makes.add(st.mm.text)
        refs: list = []
        _refs(st, refs)
        return list(dict.fromkeys((kind, name) for kind, name in refs if name not in makes and (
            (kind == "task" and name not in self.tasks) or (kind == "mm" and name not in self.mms))))


def _pcs_after(model: Model, path: list) -> list:
    pcs = list(model.start_pcs)
    model.restore(model.start)
    for b, idx in path:
        outcome, _ = model.fire(model.units[b][idx])
        pcs[b] = len(model.units[b]) if outcome == ENDED else idx + 1
    return pcs


def show(k, f: A.Field, v) -> str:
    return show_value(k, f, v)
