"""One statement against the kernel: the one table of what a statement did.

execute() runs a statement or an assertion on a kernel and returns an Outcome:
its status, the kernel's events, the invariants it broke, and what went wrong
as Problems, each placed at its node.  An `expect` is matched here and only
here.  execute() makes no Diagnostic and runs nothing else: the schedulers do.
`mmscn run`, the REPL and the suite step through runner.Runner, which turns
Problems into located diagnostics and stops where Outcome.stops says;
`mmscn explore` reads an Outcome as a move of its search (search_move), where
every Problem fails the interleaving.  The `final` verdict (final_verdict) and
the deadlock message (deadlock_message) are written here once for both.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from mmscn.dsl import ast as A
from mmscn.dsl.diagnostics import Diagnostic, rule_notes
from mmscn.dsl.names import fresh_mm_name

from . import steps as STEPS
from .conditions import StatementError, cpu_of, describe_failure, evaluate, mm_of, task_of
from .kernel import Kernel, Refusal

# Outcome.status: the words of the trace and of --json
OK, REFUSED, VIOLATION, ASSERTION_FAILED, EXPECTED = "ok", "refused", "violation", "failed", "expected"

# search_move(): what a step is to a search of interleavings
SAME, MOVED, ENDED, FAILED = 0, 1, 2, 3


@dataclass(slots=True)
class Problem:
    """One thing that went wrong in a step, at the node it is about."""
    kind: str               # refusal | violation | assertion | expectation
    node: object            # the refused name or statement, the statement, the condition, the `expect`
    message: str
    function: str = ""      # the kernel function whose rule it is
    cause: Optional[int] = None     # the index, in the same Outcome's problems, of the one it follows from


@dataclass(slots=True)
class Outcome:
    """What became of one statement: a line of the trace."""
    stmt: object
    cpu: Optional[int]              # the block's CPU, None outside blocks
    expect: Optional[A.Expect] = None   # the `expect` it ran under
    status: str = OK
    message: str = ""               # refusal, violation or assertion text
    function: str = ""              # kernel function whose rule it is
    events: object = ()             # the kernel's events (traced kernels only)
    violations: object = ()         # kernel.Violation, in the order check() found them
    problems: object = ()           # Problem, in the order a report gives them
    refused: bool = False           # the kernel refused it: nothing changed
    ends_block: bool = False        # mmget_not_zero failed: the calling code returns
    stops: bool = False             # a run cannot go on past it
    hw: Optional[dict] = None       # the policy's hardware state after it (the runner's, traced runs)
    # granularity step (interpreter/steps.py): the kernel step this Outcome is, named after its code;
    # what it is ("" a statement's step, "ipi" an IPI's handler, "interrupt" the scenario's handler);
    # whether it ended its statement's operation
    step: str = ""
    kind: str = ""
    done: bool = True


# ================================================================ statements
def _new_task_name(k: Kernel, ref: A.Ref) -> str:
    if ref.text in k.task_ix:
        raise StatementError(ref, f"a task named `{ref.text}` already exists", "the scenario")
    return ref.text


def _new_mm_name(k: Kernel, st) -> str:
    """The name of the mm ``st`` makes: as written, or the next free one among the mms
    this run has made (in a block, which ones that is depends on the interleaving)."""
    if st.mm is None:
        return fresh_mm_name(st.task.text, k.mm_ix)
    if st.mm.text in k.mm_ix:
        raise StatementError(st.mm, f"the mm name `{st.mm.text}` is taken", "the scenario")
    return st.mm.text


def _schedule(k: Kernel, st, cpu):
    c = cpu_of(k, st.cpu, cpu)
    t = k._idle(c) if st.task is None else task_of(k, st.task)
    k.schedule(c, t)


def _mmref(k: Kernel, st, cpu):
    m = mm_of(k, st.mm)
    k.this_cpu = cpu
    {"mmget": k.ext_mmget, "mmput": k.ext_mmput, "mmgrab": k.ext_mmgrab, "mmdrop": k.ext_mmdrop}[st.op](m)


# statement type -> f(kernel, statement, the block's CPU or None); False: the block ends
EXEC = {
    A.Spawn: lambda k, st, cpu: k.copy_process(_new_task_name(k, st.task), _new_mm_name(k, st)),
    A.SpawnThread: lambda k, st, cpu: k.copy_process_clone_vm(_new_task_name(k, st.task), task_of(k, st.parent)),
    A.SpawnKthread: lambda k, st, cpu: k.kthread_create(_new_task_name(k, st.task)),
    A.Schedule: _schedule,
    A.Exit: lambda k, st, cpu: k.do_exit(task_of(k, st.task)),
    A.Exec: lambda k, st, cpu: k.exec_mmap(task_of(k, st.task), _new_mm_name(k, st)),
    A.UseMm: lambda k, st, cpu: k.kthread_use_mm(task_of(k, st.task), mm_of(k, st.mm)),
    A.UnuseMm: lambda k, st, cpu: k.kthread_unuse_mm(task_of(k, st.task)),
    A.Unlazy: lambda k, st, cpu: k.unlazy(cpu_of(k, st.cpu, cpu)),
    A.MmRef: _mmref,
    A.MmgetNotZero: lambda k, st, cpu: k.ext_mmget_not_zero(mm_of(k, st.mm)),
    A.Offline: lambda k, st, cpu: k.cpu_down(cpu_of(k, st.cpu, cpu)),
    A.Online: lambda k, st, cpu: k.cpu_up(cpu_of(k, st.cpu, cpu)),
    A.Flush: lambda k, st, cpu: k.flush(mm_of(k, st.mm), st.tables, cpu),
    A.Membarrier: lambda k, st, cpu: (k.membarrier_register_global_expedited if st.register
                                      else k.membarrier_global_expedited)(cpu_of(k, st.cpu, cpu)),
    A.Tick: lambda k, st, cpu: k.scheduler_tick(cpu_of(k, st.cpu, cpu)),
    A.TaskWorkRun: lambda k, st, cpu: k.task_work_run(task_of(k, st.task)),
    A.PerfSample: lambda k, st, cpu: k.get_segment_base(cpu_of(k, st.cpu, cpu)),
    A.Rollover: lambda k, st, cpu: k.rollover(cpu_of(k, st.cpu, cpu)),
}


def _forget(k: Kernel) -> None:
    """A refused statement changed nothing: drop what the check would look at."""
    k.violations = []
    k.d_tasks.clear(); k.d_mms.clear(); k.d_cpus.clear()


# ================================================================ one step
def execute(k: Kernel, policy, st, cpu: Optional[int] = None, expect: Optional[A.Expect] = None) -> Outcome:
    """Run statement ``st`` (an assertion too) on ``k``, on the block CPU ``cpu`` (None at
    the top level), under the `expect` before it; what became of it."""
    if type(st) is A.Assert:
        return _check(k, policy, st, cpu)
    o = Outcome(st, cpu, expect)
    ev = k.ev
    before = len(ev) if ev is not None else 0
    try:
        if cpu is not None and type(st) is not A.Schedule and k.current_dead(cpu):
            raise _dead_current(k, st, cpu)
        o.ends_block = EXEC[type(st)](k, st, cpu) is False
    except (Refusal, StatementError) as e:
        return _refusal(k, o, e, ev, before)
    violations = k.check()
    # a clean statement, no `expect`, no trace kept (`run --quiet`, explore): nothing to add to o
    if violations or expect is not None or ev is not None:
        _judged(o, violations, expect, ev, before)
    return o


def _dead_current(k: Kernel, st, cpu: int) -> StatementError:
    """A block's statement on a CPU whose current task has exited (do_task_dead never returns)."""
    return StatementError(st, f"cpu{cpu}'s current task {k.t_name[k.c_curr[cpu]]} has exited; nothing "
                              f"else runs on cpu{cpu} until it schedules away", "do_task_dead (kernel/exit.c)")


def _refusal(k: Kernel, o: Outcome, e, ev, before: int) -> Outcome:
    """The kernel refused the statement (or its first step): it changed nothing."""
    _forget(k)
    if ev is not None:
        o.events = ev[before:]
        del ev[:]
    _refused(o, e.node if isinstance(e, StatementError) else o.stmt, e.message, e.function)
    return o


# ================================================================ granularity step
def execute_step(k: Kernel, policy, st, cpu: Optional[int], op_cpu: int, expect: Optional[A.Expect] = None) -> Outcome:
    """One kernel step (interpreter/steps.py) of stepped statement ``st`` on ``op_cpu``: its first
    step, or the next step of the operation in flight there.  ``cpu``: the block's CPU (None at the
    top level).  The `expect` before the statement is judged at the step that breaks an invariant,
    or, when none does, at the last one."""
    o = Outcome(st, cpu, expect)
    ev = k.ev
    before = len(ev) if ev is not None else 0
    try:
        if k.c_op[op_cpu] is None:
            if cpu is not None and k.current_dead(cpu):
                raise _dead_current(k, st, cpu)
            op = STEPS.OPERATIONS[type(st)][0]
            s = STEPS.begin(k, op_cpu, op, STEPS.args_of(k, st, cpu, _new_mm_name))
        else:
            s = STEPS.advance(k, op_cpu)
    except (Refusal, StatementError) as e:
        return _refusal(k, o, e, ev, before)
    o.step, o.done = s.name, k.c_op[op_cpu] is None
    _judge(k, o, expect, ev, before)
    return o


def _judge(k: Kernel, o: Outcome, expect, ev, before: int) -> None:
    _judged(o, k.check(), expect, ev, before)


def _judged(o: Outcome, violations: list, expect, ev, before: int) -> None:
    """What the check found after o's step, and the `expect` it ran under, into o."""
    if ev is not None:
        o.events = ev[before:]
        del ev[:]
    if violations:
        _broke(o, violations)
    elif expect is not None and o.done:
        what = "be refused" if expect.kind == "error" else "break an invariant"
        o.problems = [Problem("expectation", expect, f"`expect {expect.kind}`: the next statement (line "
                                                     f"{o.stmt.line}) was expected to {what}, but it ran cleanly")]


def deliver(k: Kernel, policy, target: int, sender: int, st) -> Outcome:
    """The IPI ``sender`` queued runs its handler on ``target`` (a step of the target); ``st``:
    the sender's statement, for the line the trace puts it at."""
    o = Outcome(st, target, kind="ipi")
    ev = k.ev
    before = len(ev) if ev is not None else 0
    fn = k.c_ipi_fn[sender]
    k.run_ipi(target, sender)
    o.step = f"{fn}: the IPI from cpu{sender}"
    _judge(k, o, None, ev, before)
    return o


def rcu_callbacks(k: Kernel, policy, cpu: int, st) -> Outcome:
    """A grace period ended: the RCU callbacks ``cpu`` queued run there (rcu_do_batch; PREEMPT_RT's
    __mmdrop_delayed), a step of ``cpu``; ``st``: the statement the trace puts it at."""
    o = Outcome(st, cpu, kind="rcu", step=f"rcu_do_batch: the RCU callbacks queued on cpu{cpu} (a grace period ended)")
    ev = k.ev
    before = len(ev) if ev is not None else 0
    k.rcu_do_batch(cpu)
    _judge(k, o, None, ev, before)
    return o


def interrupt(k: Kernel, policy, block: A.InterruptBlock) -> Outcome:
    """The scenario's `interrupt cpuN { }` handler runs, as one step of cpuN: each statement as
    its whole operation; one the kernel refuses is left out (a handler checks before it acts)."""
    cpu = block.cpu.number
    o = Outcome(block, cpu, kind="interrupt", step=f"interrupt on cpu{cpu}: the scenario's handler")
    ev = k.ev
    before = len(ev) if ev is not None else 0
    k.c_irq_done[cpu] = True
    k.d_cpus.add(cpu)
    k._cpu_op(cpu, "interrupt", "the handler of line {} runs", block.line)
    k.interrupt_entry(cpu)
    stepping = k.stepping
    for st in block.stmts:
        if type(st) is A.Assert:
            a = _check(k, policy, st, cpu)
            if a.problems:
                o.status, o.message, o.problems = a.status, a.message, a.problems
                break
            continue
        try:
            k.stepping = False
            EXEC[type(st)](k, st, cpu)
        except (Refusal, StatementError) as e:
            k._cpu_op(cpu, "interrupt", "leaves out `{}`: {}", type(st).__name__.lower(), e.message)
            k.violations = []
        finally:
            k.stepping = stepping
    if not o.problems:
        _judge(k, o, None, ev, before)
    elif ev is not None:
        o.events = ev[before:]
        del ev[:]
    return o


def _refused(o: Outcome, node, message: str, function: str) -> None:
    expect = o.expect
    o.status, o.message, o.function, o.refused = REFUSED, message, function, True
    if expect is not None and expect.kind == "error":
        if expect.text and expect.text not in message:
            o.problems = [Problem("expectation", expect, f"the statement was refused, but not with "
                                                         f"\"{expect.text}\": {message}", function)]
        else:
            o.status = EXPECTED
        return
    o.problems = [Problem("refusal", node, message, function)]
    if expect is not None:
        o.problems.insert(0, Problem("expectation", expect, f"expected a violation, but the statement was "
                                                            f"refused: {message}", function))
    o.stops = True


def _broke(o: Outcome, violations: list) -> None:
    expect = o.expect
    texts = violation_texts(violations)
    text = "; ".join(texts)
    function = violations[0].function
    o.status, o.message, o.function, o.violations = VIOLATION, text, function, violations
    if expect is not None and expect.kind == "violation":
        if expect.text and not any(expect.text in v.rule or expect.text in v.message for v in violations):
            o.problems = [Problem("expectation", expect, f"expected violation \"{expect.text}\", got {text}",
                                  function)]
        else:
            o.status = EXPECTED
        return
    problems = []
    if expect is not None:
        problems.append(Problem("expectation", expect, f"expected an error, but the statement ran and broke an "
                                                       f"invariant: {text}", function))
    first = len(problems)
    for v, t in zip(violations, texts):
        problems.append(Problem("violation", o.stmt, t, v.function, None if v.cause is None else first + v.cause))
    o.problems, o.stops = problems, True


def _check(k: Kernel, policy, st: A.Assert, cpu: Optional[int]) -> Outcome:
    """An assertion: every condition is judged, each failing one a Problem."""
    o = Outcome(st, cpu)
    problems = []
    for c in st.conds:
        try:
            ok = evaluate(k, policy, c)
        except StatementError as e:
            problems.append(Problem("assertion", e.node, e.message))
            continue
        if not ok:
            problems.append(Problem("assertion", c, describe_failure(k, policy, c)))
    if problems:
        o.status, o.message, o.problems = ASSERTION_FAILED, "; ".join(p.message for p in problems), problems
    return o


def violation_texts(violations: list) -> list:
    """Each violation as `rule: message`; one that follows from an earlier one says so."""
    return [f"{v.rule}: {v.message}" + ("" if v.cause is None else
                                        f" (follows from the {violations[v.cause].rule} above)")
            for v in violations]


# ================================================================ the end of a run
def final_verdict(k: Kernel, policy, final: A.Final) -> tuple:
    """(held, detail) of `final`'s condition on the kernel as it stands."""
    for c in final.conds:
        try:
            ok = evaluate(k, policy, c)
        except StatementError as e:
            return False, e.message
        if not ok:
            return False, describe_failure(k, policy, c)
    return True, ""


def deadlock_message(waiting: list, quote: bool = False) -> str:
    """``waiting``: (CPU, its `schedule T`) of every block still to run; ``quote``
    writes out each one's statement (explore's witnesses do)."""
    return ("deadlock: every remaining block waits for a task running elsewhere ("
            + ", ".join(f"cpu{cpu} at line {st.line}" + (f" (`schedule {st.task.text}`)" if quote else "")
                        for cpu, st in waiting) + ")")


# ================================================================ for a search
@dataclass
class Failure:
    """Why an interleaving fails, as `mmscn explore` reports it."""
    kind: str           # violation | refusal | assertion | expectation | deadlock | final | prologue
    message: str
    function: str = ""
    line: int = 0
    col: int = 0
    cpu: Optional[int] = None
    rules: tuple = ()
    causes: tuple = ()  # per rule: the index of the one it follows from, or None

    def diagnostic(self, path: str, lines: list) -> Diagnostic:
        """The failure located in its file, as `mmscn run` prints one."""
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


def search_move(o: Outcome) -> tuple:
    """(SAME | MOVED | ENDED | FAILED, Failure or None): the Outcome as a move of a search,
    where every Problem fails the interleaving; SAME: nothing changed (an assertion that
    held, a refusal `expect error` met)."""
    if o.problems:
        p = o.problems[0]
        if p.kind == "violation":
            vs = o.violations
            return FAILED, Failure("violation", o.message, o.function, p.node.line, p.node.col, o.cpu,
                                   tuple(v.rule for v in vs), tuple(v.cause for v in vs))
        return FAILED, Failure(p.kind, p.message, p.function, p.node.line, p.node.col, o.cpu)
    if o.refused or type(o.stmt) is A.Assert:
        return SAME, None
    return (ENDED if o.ends_block else MOVED), None
