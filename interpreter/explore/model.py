"""The model of a scenario for the search: its start state, its blocks' units, one step.

What a captured state holds, how a unit fires, how `final` is judged."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from mmscn.dsl import ast as A

from ..kernel import DEAD, RUNNING, Refusal
from ..runner import EXEC, Runner, StatementError, describe_failure, evaluate, violation_texts


# fire() outcomes
SAME, MOVED, ENDED, FAILED = 0, 1, 2, 3

# The kernel lists that are state, in the order of a captured state tuple.
TASK_FIELDS = ("t_mm", "t_active", "t_state", "t_cpu", "t_ptbr", "t_kind")
MM_FIELDS = ("m_users", "m_count", "m_freed", "m_torn", "m_ext_users", "m_ext_count", "m_cpumask",
             "m_lazy_tasks", "m_kthread_users", "m_task_users", "m_prev_mm_cpus")
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
        from mmscn.dsl.diagnostics import Diagnostic, rule_notes
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
            tuple(k.m_ext_users), tuple(k.m_ext_count), tuple(k.m_cpumask), tuple(k.m_lazy_tasks),
            tuple(k.m_kthread_users), tuple(k.m_task_users), tuple(k.m_prev_mm_cpus), tuple(k.c_curr), tuple(k.c_online),
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
         k.m_torn, k.m_ext_users, k.m_ext_count, k.m_cpumask, k.m_lazy_tasks, k.m_kthread_users, k.m_task_users, k.m_prev_mm_cpus,
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
