"""Run a Scenario against the kernel model: one interleaving, every check.

Statements before the blocks run in order.  Per-CPU blocks then run in one
documented interleaving: round robin in CPU order, one statement per block
per turn.  A block whose next statement is `schedule T` while T runs on
another CPU waits its turn out (the scheduler would not pick T); when every
remaining block waits, that is a deadlock.  `mmget_not_zero` that fails ends
its block, as the kernel code that calls it returns.  `mmscn explore` runs
every interleaving instead.

The Runner is a scheduler over step.execute(): it pairs an `expect` with the
statement after it, keeps each Outcome as a line of the trace and turns its
Problems into located Diagnostics.  Front ends that want more than the
RunResult pass callbacks (on_step, on_diagnostic) rather than subclassing.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Optional

from mmscn.dsl import ast as A
from mmscn.dsl.diagnostics import Diagnostic, rule_notes

from . import policies
from . import state as S
from . import steps as STEPS
from . import version as V
from .conditions import cost_dict
from .kernel import DEAD, RUNNING, Kernel
from .step import deadlock_message, deliver, execute, execute_step, final_verdict, interrupt, rcu_callbacks


@dataclass
class RunResult:
    scenario: A.Scenario
    arch: str
    boot: list
    steps: list = field(default_factory=list)          # step.Outcome, one per statement that ran
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


# how each kind of step.Problem is reported
_SEVERITY = {"refusal": "error", "violation": "violation", "assertion": "failure", "expectation": "failure"}


class Runner:
    """``hardware``: keep the policy's hardware state with each traced step (the `hw:`
    lines of a trace).  ``on_step(stmt, cpu, outcome, go_on)`` after every statement
    step() takes (``outcome`` None for an `expect`, which runs with the next one;
    ``go_on`` what step() returns); ``on_diagnostic(d)`` for every Diagnostic made.
    ``version``: the KernelVersion to run (default: the one the header names with its `kernel`,
    `revert` and `config` lines, as for_policy builds it; an `expect ... without` line's reverts
    are the caller's: mmscn/kernels.py)."""

    def __init__(self, scenario: A.Scenario, lines: list, arch: Optional[str] = None,
                 trace: bool = True, policy=None, *, hardware: bool = True, version=None,
                 on_step: Optional[Callable] = None, on_diagnostic: Optional[Callable] = None):
        self.sc = scenario
        self.lines = lines
        self.policy = policy or policies.get(arch or scenario.arch)
        self.hardware = hardware
        self.on_step, self.on_diagnostic = on_step, on_diagnostic
        if version is None:
            version = V.for_policy(self.policy, scenario.kernel, scenario.reverts, scenario.configs)
        self.k = Kernel(scenario.ncpus, self.policy, trace=trace, version=version)
        self.live = LiveIndex()
        self.boot = list(self.k.ev) if trace else []
        if trace:
            self.k.ev.clear()
        self.result = RunResult(scenario, self.policy.name, self.boot, kernel=self.k)
        self.pending_expect: Optional[A.Expect] = None
        # granularity step (interpreter/steps.py): statements run as the kernel's steps, IPIs
        # are delivered at the first boundary where the target's irqs are on
        self.stepped = scenario.granularity == "step"
        self.k.rcu_deferred = self.stepped      # PREEMPT_RT's __mmdrop_delayed: an event, like an IPI
        self.handlers = {b.cpu.number: b for b in scenario.interrupts}
        self.inflight: dict = {}        # op CPU -> (statement, block CPU, expect) of an operation in flight
        self.order = [] if scenario.interleave is None else list(scenario.interleave.items)

    # ---- diagnostics: the edge where what went wrong gets its place in the file
    def diag(self, node, message, severity="error", notes=(), consequence_of=None) -> Diagnostic:
        line, col = node.line, node.col
        src = self.lines[line - 1] if 0 < line <= len(self.lines) else None
        d = Diagnostic(self.sc.path, line, col, message, severity, src, tuple(notes), consequence_of)
        self.result.diagnostics.append(d)
        if self.on_diagnostic is not None:
            self.on_diagnostic(d)
        return d

    # ---- the whole scenario
    def run(self) -> RunResult:
        r = self.result
        step = self.step
        for st in self.sc.stmts:
            if not step(st, None):
                r.stopped = True
                break
        else:
            if self.sc.blocks and (self.stepped or self.handlers or self.order):
                self.run_blocks_stepped()
            elif self.sc.blocks:
                self.run_blocks()
            if not r.stopped and self.handlers:
                self.late_handlers()
            if not r.stopped and self.stepped and not self.run_rcu():
                r.stopped = True        # callbacks an `interleave` left queued run before `final`
        if not r.stopped and self.pending_expect is not None:
            self.diag(self.pending_expect, f"`expect {self.pending_expect.kind}` is not followed by a statement",
                      "failure")
        if not r.stopped and self.sc.final is not None:
            self.judge_final()
        r.cost = cost_dict(self.k)
        return r

    def run_blocks(self) -> None:
        blocks = [(b.cpu.number, list(b.stmts)) for b in sorted(self.sc.blocks, key=lambda b: b.cpu.number)]
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
                waiting = [(cpu, stmts[pcs[i]]) for i, (cpu, stmts) in enumerate(blocks) if pcs[i] < len(stmts)]
                self.diag(waiting[0][1], deadlock_message(waiting), "failure")
                self.result.stopped = True
                return

    # ---- granularity step: the blocks as steps, IPIs and the scenario's interrupts as events
    def run_blocks_stepped(self) -> None:
        """Round robin in CPU order, one step per block per turn (an operation in flight takes
        its next step; a block that waits for its IPIs waits its turn out); after every step,
        each queued IPI is delivered at once where the target's irqs are on, and an interrupt
        handler fires at the first boundary inside an operation of its CPU where irqs are on.
        An `interleave` line says instead which step comes next, as long as it lasts."""
        blocks = [(b.cpu.number, list(b.stmts)) for b in sorted(self.sc.blocks, key=lambda b: b.cpu.number)]
        pcs = [0] * len(blocks)
        index = {cpu: i for i, (cpu, _) in enumerate(blocks)}
        while self.order:
            kind, ref, *sender = self.order.pop(0)
            cpu = ref.number
            if kind == "ipi":
                ok = self.ipi_at(cpu, ref, *sender)
            elif kind == "interrupt":
                ok = self.interrupt_at(cpu, ref)
            elif kind == "rcu":
                ok = self.rcu_at(cpu, ref)
            else:
                i = index.get(cpu)
                ok = self.block_step(blocks, pcs, i, ref) if i is not None else self.not_here(ref, f"{ref.text} has no "
                                                                                                  f"block")
            if ok is False:
                self.result.stopped = True
                return
        if self.sc.interleave is not None and not self.after_step():
            # the line ended at a boundary: what is queued there is taken before round robin goes on
            # (without this, IPIs left queued on CPUs that only wait were never delivered: deadlock)
            self.result.stopped = True
            return
        while True:
            progressed = live = False
            for i, (cpu, stmts) in enumerate(blocks):
                if pcs[i] >= len(stmts) and cpu not in self.inflight:
                    continue
                live = True
                ok = self.block_step(blocks, pcs, i, None)
                if ok is None:
                    continue
                progressed = True
                if ok is False or not self.after_step():
                    self.result.stopped = True
                    return
            if not live:
                return
            if not progressed:
                waiting = [(cpu, stmts[pcs[i]] if pcs[i] < len(stmts) else self.inflight[cpu][0])
                           for i, (cpu, stmts) in enumerate(blocks) if pcs[i] < len(stmts) or cpu in self.inflight]
                self.diag(waiting[0][1], deadlock_message(waiting), "failure")
                self.result.stopped = True
                return

    def block_step(self, blocks, pcs, i, ref):
        """One step of block i: True ran, False stops the run, None could not move (waits)."""
        cpu, stmts = blocks[i]
        k = self.k
        if cpu in self.inflight:
            if not STEPS.can_advance(k, cpu):
                return None if ref is None else self.not_here(ref, f"{ref.text} waits for the IPIs it sent")
            st, _, expect = self.inflight[cpu]
            return self.op_step(st, cpu, cpu, expect)
        if pcs[i] >= len(stmts):
            return None if ref is None else self.not_here(ref, f"{ref.text}'s block has ended")
        st = stmts[pcs[i]]
        if self.waits(st, cpu):
            return None if ref is None else self.not_here(ref, f"{ref.text}'s `schedule` waits: the task runs elsewhere")
        pcs[i] += 1
        ok = self.step(st, cpu)
        if ok == "end-block":
            pcs[i] = len(stmts)
        return bool(ok)

    def not_here(self, ref, why: str) -> bool:
        self.diag(ref, f"`interleave` cannot take this step: {why}", "failure")
        return False

    def op_step(self, st, cpu, op_cpu, expect):
        """The next step of the operation in flight on op_cpu."""
        o = execute_step(self.k, self.policy, st, cpu, op_cpu, expect)
        if o.done or o.problems:
            self.inflight.pop(op_cpu, None)
        elif o.violations:          # `expect violation` met: the rest of the operation runs without it
            self.inflight[op_cpu] = (st, cpu, None)
        return self.record(o, cpu)

    def record(self, o, cpu, hardware: bool = True):
        """Keep an Outcome: its hardware line (not for an assertion, which changes none), its
        Problems as located diagnostics, the callback; what step() returns."""
        k = self.k
        if k.ev is not None and hardware and not o.refused and self.hardware and self.policy.hardware_fields:
            o.hw = hardware_state(k, self.policy, *self.live.update(k))
        self.result.steps.append(o)
        if o.problems:
            base = len(self.result.diagnostics)
            for p in o.problems:
                notes = rule_notes(p.function, p.kind == "violation") if p.kind in ("refusal", "violation") else ()
                self.diag(p.node, p.message, _SEVERITY[p.kind], notes, None if p.cause is None else base + p.cause)
        go_on = False if o.stops else "end-block" if o.ends_block and cpu is not None else True
        if self.on_step is not None:
            self.on_step(o.stmt, cpu, o, go_on)
        return go_on

    def after_step(self) -> bool:
        """What comes at the boundary after a step, when no `interleave` says otherwise: every
        IPI that can be taken (the first possible boundary), then the interrupts that can fire."""
        if self.order:
            return True
        k = self.k
        while True:
            ready = STEPS.deliverable(k)
            if not ready:
                break
            target, sender = ready[0]
            st = self.inflight[sender][0] if sender in self.inflight else self.sc.stmts[-1] if self.sc.stmts else None
            o = deliver(k, self.policy, target, sender, st)
            o.step += f" (delivered at the first boundary where cpu{target}'s irqs are on)"
            if not self.record(o, target):
                return False
        if not self.run_rcu():
            return False
        for cpu, b in self.handlers.items():
            if not k.c_irq_done[cpu] and k.c_op[cpu] is not None and not k.c_irqs_off[cpu]:
                if not self.record(interrupt(k, self.policy, b), cpu):
                    return False
        return True

    def ipi_at(self, cpu, ref, sender_ref=None) -> bool:
        """`ipi cpuN`: the lowest sender's IPI queued on cpuN runs; `ipi cpuN from cpuM`: cpuM's."""
        k = self.k
        ready = [(t, s) for t, s in STEPS.deliverable(k) if t == cpu]
        if not ready:
            return self.not_here(ref, f"no IPI can be taken on {ref.text} here")
        sender = ready[0][1]
        if sender_ref is not None:
            if not any(s == sender_ref.number for _, s in ready):
                return self.not_here(sender_ref, f"no IPI from {sender_ref.text} is queued on {ref.text}")
            sender = sender_ref.number
        st = self.inflight[sender][0] if sender in self.inflight else None
        return self.record(deliver(k, self.policy, cpu, sender, st), cpu) is not False

    def run_rcu(self) -> bool:
        """Every RCU callback whose grace period ended runs at the first boundary after it (PREEMPT_RT's
        __mmdrop_delayed: the grace period is taken to end at once once no reader holds it)."""
        for cpu in STEPS.rcu_ready(self.k):
            o = rcu_callbacks(self.k, self.policy, cpu, self.last_stmt())
            o.step += " (run at the first boundary after the grace period)"
            if not self.record(o, cpu):
                return False
        return True

    def rcu_at(self, cpu, ref) -> bool:
        if cpu not in STEPS.rcu_ready(self.k):
            return self.not_here(ref, f"no RCU callback can run on {ref.text} here: none is queued there, or its "
                                      f"grace period waits for a CPU inside rcu_read_lock(), or its irqs are off")
        return self.record(rcu_callbacks(self.k, self.policy, cpu, self.last_stmt()), cpu) is not False

    def last_stmt(self):
        """The statement of the last step taken (the trace's line for an event it caused)."""
        steps = self.result.steps
        return steps[-1].stmt if steps else self.sc.stmts[-1] if self.sc.stmts else None

    def interrupt_at(self, cpu, ref) -> bool:
        k = self.k
        b = self.handlers.get(cpu)
        if b is None or k.c_irq_done[cpu] or k.c_irqs_off[cpu]:
            why = "it has no `interrupt` handler" if b is None else "its handler already ran" \
                if k.c_irq_done[cpu] else "its irqs are off"
            return self.not_here(ref, f"{ref.text} takes no interrupt here: {why}")
        return self.record(interrupt(k, self.policy, b), cpu) is not False

    def late_handlers(self) -> None:
        """An interrupt handler that found no boundary inside an operation fires at the end."""
        for cpu, b in sorted(self.handlers.items()):
            if not self.k.c_irq_done[cpu]:
                if not self.record(interrupt(self.k, self.policy, b), cpu):
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
        if type(st) is A.Expect:
            if self.pending_expect is not None:
                self.diag(st, "two `expect` lines in a row; each applies to the next statement", "failure")
            self.pending_expect = st
            if self.on_step is not None:
                self.on_step(st, cpu, None, True)
            return True
        k = self.k
        if self.stepped and STEPS.stepped(st):
            return self.stepped_statement(st, cpu)
        if type(st) is A.Assert:
            self.result.assertions += 1
            return self.record(execute(k, self.policy, st, cpu), cpu, hardware=False)
        expect, self.pending_expect = self.pending_expect, None
        ok = self.record(execute(k, self.policy, st, cpu, expect), cpu)
        if self.stepped and ok and cpu is None and not self.run_rcu():
            return False        # a top-level statement's RCU callbacks run before the next one
        return ok

    def stepped_statement(self, st, cpu: Optional[int]):
        """A statement that runs as kernel steps: its first step; in a block the rest come in the
        block's next turns, at the top level they run on here (IPIs delivered as they can be)."""
        k = self.k
        expect, self.pending_expect = self.pending_expect, None
        try:
            op_cpu = cpu if cpu is not None else STEPS.op_cpu(k, st, cpu, STEPS.args_of(k, st, cpu, _mm_name))
        except Exception:       # a name the kernel does not know: the whole statement says so
            op_cpu = None
        if op_cpu is None:
            o = execute(k, self.policy, st, cpu, expect)
            return self.record(o, cpu)
        self.inflight[op_cpu] = (st, cpu, expect)
        ok = self.op_step(st, cpu, op_cpu, expect)
        if cpu is not None:
            return ok
        while ok and op_cpu in self.inflight:
            if not self.after_step():
                return False
            if not STEPS.can_advance(k, op_cpu):
                return self.record_deadlock(st)
            st_, _, expect = self.inflight[op_cpu]
            ok = self.op_step(st, cpu, op_cpu, expect)
        return ok and self.after_step()

    def record_deadlock(self, st) -> bool:
        self.diag(st, "the operation waits for IPIs that no CPU can take (their targets have irqs off)", "failure")
        return False

    def judge_final(self) -> None:
        f = self.sc.final
        held, detail = final_verdict(self.k, self.policy, f)
        self.result.final = (f.quantifier, held, detail)
        if not held and f.quantifier == "forall":
            self.diag(f, f"final forall does not hold in this interleaving: {detail}", "failure")


def _mm_name(k, st):
    from .step import _new_mm_name
    return _new_mm_name(k, st)


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
