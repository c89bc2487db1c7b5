"""Run a Scenario against the kernel model: one interleaving, every check.

Statements before the blocks run in order.  Per-CPU blocks then run in one
documented interleaving: round robin in CPU order, one statement per block
per turn.  A block whose next statement is `schedule T` while T runs on
another CPU waits its turn out (the scheduler would not pick T); when every
remaining block waits, that is a deadlock.  `mmget_not_zero` that fails ends
its block, as the kernel code that calls it returns.  `mmscn explore` runs
every interleaving instead.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from mmscn.dsl import ast as A
from mmscn.dsl.diagnostics import Diagnostic, rule_notes
from mmscn.dsl.resolve import fresh_mm_name

from . import policies
from . import state as S
from .kernel import DEAD, INIT_MM, RUNNING, Kernel, Refusal

# step status
OK, REFUSED, VIOLATION, FAILED, EXPECTED, SKIPPED = "ok", "refused", "violation", "failed", "expected", "skipped"


@dataclass(slots=True)
class Step:
    stmt: object
    cpu: Optional[int]          # the block's CPU, None outside blocks
    events: list
    status: str = OK
    message: str = ""           # refusal, violation or assertion text
    function: str = ""          # kernel function whose rule it is
    hw: Optional[dict] = None   # the policy's hardware state after the statement (traced runs only)


@dataclass
class RunResult:
    scenario: A.Scenario
    arch: str
    boot: list
    steps: list = field(default_factory=list)
    diagnostics: list = field(default_factory=list)   # everything that failed, located
    final: Optional[tuple] = None                      # (quantifier, held, detail)
    cost: dict = field(default_factory=dict)
    stopped: bool = False
    assertions: int = 0
    kernel: Optional[Kernel] = None

    @property
    def failed(self) -> bool:
        return bool(self.diagnostics)

    @property
    def passed(self) -> bool:
        """Behaved as the header says (`expect fail` turns a failure into a pass)."""
        return self.failed == (self.scenario.outcome == "fail")


class StatementError(Exception):
    """A refusal found by the runner itself (names, dead CPUs), with its node;
    ``reason``: the short why, for a failure message that reads the field anyway."""

    def __init__(self, node, message, function, reason=None):
        super().__init__(message)
        self.node, self.message, self.function = node, message, function
        self.reason = reason or message


class Runner:
    #: keep the policy's hardware state with each traced step (the `hw:` lines of a trace)
    record_hardware = True

    def __init__(self, scenario: A.Scenario, lines: list, arch: Optional[str] = None,
                 trace: bool = True, policy=None):
        self.sc = scenario
        self.lines = lines
        self.policy = policy or policies.get(arch or scenario.arch)
        self.trace = trace
        self.k = Kernel(scenario.ncpus, self.policy, trace=trace)
        self.live = LiveIndex()
        self.boot = list(self.k.ev) if trace else []
        if trace:
            self.k.ev.clear()
        self.result = RunResult(scenario, self.policy.name, self.boot, kernel=self.k)
        self.pending_expect: Optional[A.Expect] = None

    # ---- diagnostics
    def diag(self, node, message, severity="error", notes=()):
        line, col = node.line, node.col
        src = self.lines[line - 1] if 0 < line <= len(self.lines) else None
        d = Diagnostic(self.sc.path, line, col, message, severity, src, tuple(notes))
        self.result.diagnostics.append(d)
        return d

    # ---- the whole scenario
    def run(self) -> RunResult:
        r = self.result
        for st in self.sc.stmts:
            if not self.step(st, None):
                r.stopped = True
                break
        else:
            if self.sc.blocks:
                self.run_blocks()
        if not r.stopped and self.pending_expect is not None:
            self.diag(self.pending_expect, f"`expect {self.pending_expect.kind}` is not followed by a statement",
                      "failure")
        if not r.stopped and self.sc.final is not None:
            self.judge_final()
        r.cost = cost_dict(self.k)
        return r

    def run_blocks(self) -> None:
        blocks = [(int(b.cpu.text[3:]), list(b.stmts)) for b in sorted(self.sc.blocks, key=lambda b: int(b.cpu.text[3:]))]
        pcs = [0] * len(blocks)
        while True:
            progressed = False
            live = False
            for i, (cpu, stmts) in enumerate(blocks):
                if pcs[i] >= len(stmts):
                    continue
                live = True
                st = stmts[pcs[i]]
                if self.waits(st, cpu):
                    continue
                pcs[i] += 1
                progressed = True
                ok = self.step(st, cpu)
                if ok == "end-block":
                    pcs[i] = len(stmts)
                elif not ok:
                    self.result.stopped = True
                    return
            if not live:
                return
            if not progressed:
                waiting = [f"cpu{cpu} at line {stmts[pcs[i]].line}" for i, (cpu, stmts) in enumerate(blocks)
                           if pcs[i] < len(stmts)]
                first = next(stmts[pcs[i]] for i, (cpu, stmts) in enumerate(blocks) if pcs[i] < len(stmts))
                self.diag(first, "deadlock: every remaining block waits for a task running elsewhere ("
                          + ", ".join(waiting) + ")", "failure")
                self.result.stopped = True
                return

    def waits(self, st, cpu: int) -> bool:
        """A block's `schedule T` waits while T runs on another CPU."""
        if isinstance(st, A.Schedule) and st.task is not None:
            t = self.k.task_ix.get(st.task.text)
            return t is not None and self.k.t_state[t] == RUNNING and self.k.t_cpu[t] != cpu
        return False

    # ---- one statement
    def step(self, st, cpu: Optional[int]):
        """Run one statement; False stops the run, "end-block" ends the block."""
        k = self.k
        if isinstance(st, A.Expect):
            if self.pending_expect is not None:
                self.diag(st, "two `expect` lines in a row; each applies to the next statement", "failure")
            self.pending_expect = st
            return True
        if isinstance(st, A.Assert):
            self.check_assert(st, cpu)
            return True
        expect, self.pending_expect = self.pending_expect, None
        step = Step(st, cpu, [])
        self.result.steps.append(step)
        before = len(k.ev) if k.ev is not None else 0
        ret = True
        try:
            if cpu is not None and not isinstance(st, A.Schedule) and k.current_dead(cpu):
                raise StatementError(st, f"cpu{cpu}'s current task {k.t_name[k.c_curr[cpu]]} has exited; nothing "
                                     f"else runs on cpu{cpu} until it schedules away", "do_task_dead (kernel/exit.c)")
            if EXEC[type(st)](self, st, cpu) is False:
                ret = "end-block" if cpu is not None else True
        except (Refusal, StatementError) as e:
            node = e.node if isinstance(e, StatementError) else st
            k.violations.clear()
            k.check()   # nothing changed; clear the dirty sets
            step.status, step.message, step.function = REFUSED, e.message, e.function
            if k.ev is not None:
                step.events = k.ev[before:]
            if expect is not None and expect.kind == "error":
                if expect.text and expect.text not in e.message:
                    self.diag(expect, f"the statement was refused, but not with \"{expect.text}\": {e.message}",
                              "failure")
                else:
                    step.status = EXPECTED
                return True
            if expect is not None:
                self.diag(expect, f"expected a violation, but the statement was refused: {e.message}", "failure")
            self.diag(node, e.message, "error", rule_notes(e.function))
            return False
        violations = k.check()
        if k.ev is not None:
            step.events = k.ev[before:]
            del k.ev[:]
            if self.record_hardware and self.policy.hardware_fields:
                step.hw = hardware_state(k, self.policy, *self.live.update(k))
        if violations:
            texts = violation_texts(violations)
            text = "; ".join(texts)
            step.status, step.message, step.function = VIOLATION, text, violations[0].function
            if expect is not None and expect.kind == "violation":
                if expect.text and not any(expect.text in v.rule or expect.text in v.message for v in violations):
                    self.diag(expect, f"expected violation \"{expect.text}\", got {text}", "failure")
                else:
                    step.status = EXPECTED
                return ret
            if expect is not None:
                self.diag(expect, f"expected an error, but the statement ran and broke an invariant: {text}",
                          "failure")
            first = len(self.result.diagnostics)
            for v, t in zip(violations, texts):
                d = self.diag(st, t, "violation", rule_notes(v.function, violation=True))
                if v.cause is not None:
                    d.consequence_of = first + v.cause
            return False
        if expect is not None:
            what = "be refused" if expect.kind == "error" else "break an invariant"
            self.diag(expect, f"`expect {expect.kind}`: the next statement (line {st.line}) was expected to "
                      f"{what}, but it ran cleanly", "failure")
        return ret

    # ---- assertions
    def check_assert(self, st: A.Assert, cpu: Optional[int]) -> None:
        step = Step(st, cpu, [])
        self.result.steps.append(step)
        self.result.assertions += 1
        failures = []
        for c in st.conds:
            try:
                ok = evaluate(self.k, self.policy, c, cpu)
            except StatementError as e:
                failures.append((e.node, e.message))
                continue
            if not ok:
                failures.append((c, describe_failure(self.k, self.policy, c, cpu)))
        if failures:
            step.status = FAILED
            step.message = "; ".join(m for _, m in failures)
            for node, msg in failures:
                self.diag(node, msg, "failure")

    def judge_final(self) -> None:
        f = self.sc.final
        held = True
        detail = ""
        for c in f.conds:
            try:
                ok = evaluate(self.k, self.policy, c, None)
            except StatementError as e:
                ok, detail = False, e.message
            if not ok:
                held = False
                detail = detail or describe_failure(self.k, self.policy, c, None)
                break
        self.result.final = (f.quantifier, held, detail)
        if not held and f.quantifier == "forall":
            self.diag(f, f"final forall does not hold in this interleaving: {detail}", "failure")


def violation_texts(violations: list) -> list:
    """Each violation as `rule: message`; one that follows from an earlier one says so."""
    return [f"{v.rule}: {v.message}" + ("" if v.cause is None else
                                        f" (follows from the {violations[v.cause].rule} above)")
            for v in violations]


# ================================================================ statements
def _task(k: Kernel, ref: A.Ref) -> int:
    t = k.task_ix.get(ref.text)
    if t is None:
        raise StatementError(ref, f"no task named `{ref.text}` yet: in this interleaving the "
                             f"statement that makes it has not run", "the scenario",
                             f"{ref.text} is not spawned yet in this interleaving")
    return t


def _mm(k: Kernel, ref: A.Ref) -> int:
    m = k.mm_ix.get(ref.text)
    if m is None:
        raise StatementError(ref, f"no mm named `{ref.text}` yet: in this interleaving the "
                             f"statement that makes it has not run", "the scenario",
                             f"{ref.text} is not made yet in this interleaving")
    return m


def _cpu(k: Kernel, ref: Optional[A.Ref], block_cpu: Optional[int]) -> int:
    if ref is None:
        return block_cpu
    n = int(ref.text[3:])
    if n >= k.ncpus:
        raise StatementError(ref, f"{ref.text} does not exist", "the scenario")
    return n


def _new_name(k: Kernel, ref: A.Ref) -> str:
    if ref.text in k.task_ix:
        raise StatementError(ref, f"a task named `{ref.text}` already exists", "the scenario")
    return ref.text


def _new_mm_name(k: Kernel, st) -> str:
    if st.mm is None:
        return fresh_mm_name(st.task.text, k.mm_ix)
    if st.mm.text in k.mm_ix:
        raise StatementError(st.mm, f"the mm name `{st.mm.text}` is taken", "the scenario")
    return st.mm.text


def _schedule(r, st, cpu):
    k = r.k
    c = _cpu(k, st.cpu, cpu)
    t = k._idle(c) if st.task is None else _task(k, st.task)
    k.schedule(c, t)


def _mmref(r, st, cpu):
    k = r.k
    m = _mm(k, st.mm)
    k.this_cpu = cpu
    {"mmget": k.ext_mmget, "mmput": k.ext_mmput, "mmgrab": k.ext_mmgrab, "mmdrop": k.ext_mmdrop}[st.op](m)


def _offline(r, st, cpu):
    r.k.cpu_down(_cpu(r.k, st.cpu, cpu))


def _flush(r, st, cpu):
    r.k.flush(_mm(r.k, st.mm), st.tables, cpu)


EXEC = {
    A.Spawn: lambda r, st, cpu: r.k.copy_process(_new_name(r.k, st.task), _new_mm_name(r.k, st)),
    A.SpawnThread: lambda r, st, cpu: r.k.copy_process_clone_vm(_new_name(r.k, st.task), _task(r.k, st.parent)),
    A.SpawnKthread: lambda r, st, cpu: r.k.kthread_create(_new_name(r.k, st.task)),
    A.Schedule: _schedule,
    A.Exit: lambda r, st, cpu: r.k.do_exit(_task(r.k, st.task)),
    A.Exec: lambda r, st, cpu: r.k.exec_mmap(_task(r.k, st.task), _new_mm_name(r.k, st)),
    A.UseMm: lambda r, st, cpu: r.k.kthread_use_mm(_task(r.k, st.task), _mm(r.k, st.mm)),
    A.UnuseMm: lambda r, st, cpu: r.k.kthread_unuse_mm(_task(r.k, st.task)),
    A.Unlazy: lambda r, st, cpu: r.k.unlazy(_cpu(r.k, st.cpu, cpu)),
    A.MmRef: _mmref,
    A.MmgetNotZero: lambda r, st, cpu: r.k.ext_mmget_not_zero(_mm(r.k, st.mm)),
    A.Offline: _offline,
    A.Online: lambda r, st, cpu: r.k.cpu_up(_cpu(r.k, st.cpu, cpu)),
    A.Flush: _flush,
}


# ================================================================ conditions
def field_value(k: Kernel, policy, f: A.Field):
    """The current value of a field, in model terms (indexes, ints, bools, masks)."""
    o, n = f.owner, f.name
    if o == "cost":
        return cost_dict(k)[n]
    if o == "cpu":
        c = _cpu(k, f.obj, None)
        if n == "curr":
            return k.c_curr[c]
        if n == "active_mm":
            return k.t_active[k.c_curr[c]] if k.c_online[c] else None
        if n == "loaded_mm":
            return policy.loaded_mm(k, c) if k.c_online[c] else None
        if n == "lazy":
            return policy.is_lazy(k, c)
        if n == "online":
            return k.c_online[c]
    if o == "task":
        t = _task(k, f.obj)
        if n == "mm":
            return k.t_mm[t]
        if n == "active_mm":
            return k.t_active[t]
        if n == "state":
            return k.t_state[t]
        if n == "cpu":
            return k.t_cpu[t]
        if n == "kind":
            return k.t_kind[t]
    if o == "mm":
        m = _mm(k, f.obj)
        if n == "users":
            return k.m_users[m]
        if n == "count":
            return k.m_count[m]
        if n == "state":
            return k.mm_state(m)
        if n == "cpumask":
            mask = policy.cpumask(k, m)
            if mask is None:
                raise StatementError(f, f"arch {policy.name} does not track mm_cpumask", "the policy")
            return mask
    raise StatementError(f, f"unknown field {n}", "the scenario")


def literal(k: Kernel, f: A.Field, v: A.Value, block_cpu):
    kind = v.kind
    if kind == "none":
        return None
    if kind == "mm":
        return _mm(k, A.Ref(v.text, v.line, v.col))
    if kind == "task":
        return _task(k, A.Ref(v.text, v.line, v.col))
    if kind == "cpu":
        return _cpu(k, A.Ref(v.text, v.line, v.col), None)
    if kind == "cpuset":
        mask = 0
        for r in v.text:
            mask |= 1 << _cpu(k, r, None)
        return mask
    if kind == "word" and v.text == "idle" and f.owner == "cpu":
        return k._idle(_cpu(k, f.obj, None))
    return v.text


_CMP = {
    "==": lambda a, b: a == b, "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b, "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b, ">=": lambda a, b: a >= b,
}


def evaluate(k: Kernel, policy, c, block_cpu=None) -> bool:
    if isinstance(c, A.Cmp):
        return _CMP[c.op](field_value(k, policy, c.field), literal(k, c.field, c.value, block_cpu))
    if isinstance(c, A.Is):
        held = _is(k, policy, c)
        return held != c.negated
    if isinstance(c, A.And):
        return all(evaluate(k, policy, p, block_cpu) for p in c.parts)
    if isinstance(c, A.Or):
        return any(evaluate(k, policy, p, block_cpu) for p in c.parts)
    if isinstance(c, A.Not):
        return not evaluate(k, policy, c.part, block_cpu)
    raise TypeError(c)


def _is(k: Kernel, policy, c: A.Is) -> bool:
    w = c.word
    if c.owner == "mm":
        return k.mm_state(_mm(k, c.obj)) == w
    if c.owner == "task":
        return k.t_state[_task(k, c.obj)] == w
    cpu = _cpu(k, c.obj, None)
    if w == "lazy":
        return policy.is_lazy(k, cpu)
    if w == "idle":
        return k.c_online[cpu] and k.c_curr[cpu] == k._idle(cpu)
    if w == "online":
        return k.c_online[cpu]
    if w == "offline":
        return not k.c_online[cpu]
    return False


def show_value(k: Kernel, f: A.Field, value) -> str:
    """A model value as the language writes it."""
    o, n = f.owner, f.name
    if value is None:
        return "none"
    if (o, n) in (("cpu", "curr"),):
        return k.t_name[value]
    if n in ("mm", "active_mm", "loaded_mm"):
        return k.m_name[value]
    if (o, n) == ("task", "cpu"):
        return f"cpu{value}"
    if n == "cpumask":
        return "{" + ", ".join(f"cpu{i}" for i in range(k.ncpus) if value >> i & 1) + "}"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def cond_text(c) -> str:
    if isinstance(c, A.Cmp):
        f = c.field
        owner = "cost" if f.owner == "cost" else f.obj.text
        return f"{owner}.{f.name} {c.op} {value_text(c.value)}"
    if isinstance(c, A.Is):
        return f"{c.obj.text} is {'not ' if c.negated else ''}{c.word}"
    if isinstance(c, A.And):
        return " and ".join(_paren(p) for p in c.parts)
    if isinstance(c, A.Or):
        return " or ".join(_paren(p) for p in c.parts)
    if isinstance(c, A.Not):
        return "not " + _paren(c.part)
    return "?"


def _paren(c) -> str:
    t = cond_text(c)
    return f"({t})" if isinstance(c, (A.And, A.Or)) else t


def value_text(v: A.Value) -> str:
    if v.kind == "none":
        return "none"
    if v.kind == "bool":
        return "true" if v.text else "false"
    if v.kind == "cpuset":
        return "{" + ", ".join(r.text for r in v.text) + "}"
    return str(v.text)


def describe_failure(k: Kernel, policy, c, block_cpu) -> str:
    """What a failed condition saw, field by field.  It never raises: an and/or
    that short-circuited did not read every field, and one may be unreadable
    here (a task another block has not spawned yet in this interleaving, a
    field the policy does not track); that field says so instead of a value."""
    if isinstance(c, A.Cmp):
        value, why = _reading(lambda: show_value(k, c.field, field_value(k, policy, c.field)))
        return f"assertion failed: {cond_text(c)}: " + (f"actual {value}" if why is None
                                                         else f"unreadable here ({why})")
    if isinstance(c, A.Is):
        return f"assertion failed: {cond_text(c)}: {_is_leaf(k, policy, c, 'actually ')}"
    leaves = []
    stack = [c]
    while stack:
        x = stack.pop()
        if isinstance(x, (A.And, A.Or)):
            stack.extend(reversed(x.parts))
        elif isinstance(x, A.Not):
            stack.append(x.part)
        elif isinstance(x, A.Cmp):
            name = f"{x.field.obj.text if x.field.obj else 'cost'}.{x.field.name}"
            value, why = _reading(lambda: show_value(k, x.field, field_value(k, policy, x.field)))
            leaves.append(f"{name} = {value}" if why is None else f"{name} unreadable here ({why})")
        elif isinstance(x, A.Is):
            leaves.append(_is_leaf(k, policy, x, f"{x.obj.text} is "))
    return f"assertion failed: {cond_text(c)}: " + ", ".join(dict.fromkeys(leaves))


def _reading(read) -> tuple:
    """(value, None), or (None, why the value cannot be read here)."""
    try:
        return read(), None
    except StatementError as e:
        return None, e.reason


def _is_leaf(k: Kernel, policy, c: A.Is, head: str) -> str:
    value, why = _reading(lambda: _is_actual(k, policy, c))
    return head + value if why is None else f"{c.obj.text} unreadable here ({why})"


def _is_actual(k: Kernel, policy, c: A.Is) -> str:
    if c.owner == "mm":
        return k.mm_state(_mm(k, c.obj))
    if c.owner == "task":
        return k.t_state[_task(k, c.obj)]
    cpu = _cpu(k, c.obj, None)
    # a CPU's words are not exclusive: say each one, so `cpu0 is lazy` failing reads "not lazy"
    words = ["online" if k.c_online[cpu] else "offline",
             "lazy" if policy.is_lazy(k, cpu) else "not lazy",
             "idle" if k.c_curr[cpu] == k._idle(cpu) else "not idle"]
    return ", ".join(words)


class LiveIndex:
    """The tasks not dead and the mms not freed, carried from one step to the next,
    so that a traced run's hardware line costs what is alive, not all the run
    ever made.  A restored kernel (the REPL's :undo) has new name lists: then
    the index starts over."""

    def __init__(self):
        self.t_name = self.m_name = None

    def update(self, k: Kernel) -> tuple:
        if k.t_name is not self.t_name or k.m_name is not self.m_name:
            self.t_name, self.m_name = k.t_name, k.m_name
            self.tasks, self.mms, self.seen_t, self.seen_m = [], [], 0, 0
        nt, nm = len(k.t_name), len(k.m_name)
        self.tasks = [t for t in self.tasks + list(range(self.seen_t, nt)) if k.t_state[t] != DEAD]
        self.mms = [m for m in self.mms + list(range(self.seen_m, nm)) if not k.m_freed[m]]
        self.seen_t, self.seen_m = nt, nm
        return self.tasks, self.mms


def hardware_state(k: Kernel, policy, tasks, mms) -> dict:
    """What the policy models of the hardware, by field (interpreter/state.py): loaded_mm
    and lazy per online CPU, mm_cpumask per live mm, the PCB's ptbr per live task (alpha)."""
    return S.hardware_state(k, policy, tasks, mms)


def cost_dict(k: Kernel) -> dict:
    from .kernel import COST_NAMES
    d = dict(zip(COST_NAMES, k.cost))
    d["atomics"] = d["mm_count_atomics"] + d["mm_users_atomics"]
    return d


def run_scenario(scenario: A.Scenario, text: str, arch: Optional[str] = None, trace: bool = True) -> RunResult:
    return Runner(scenario, text.split("\n"), arch, trace).run()
