"""The typed syntax tree of a .mmscn scenario.

Every node carries the line and column (1-based) where it starts, so that any
later stage (resolver, interpreter, explorer) can point at the source.
Nodes are plain slotted dataclasses: cheap to build a million of.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Union

from .names import cpu_number


@dataclass(slots=True, frozen=True)
class Ref:
    """A name as written: a task (``A``), an mm (``@A``), a CPU (``cpu1``)."""
    text: str
    line: int
    col: int

    @property
    def number(self) -> int:
        """A CPU's number (`cpu1` -> 1); the resolver has checked that the CPU exists."""
        return cpu_number(self.text)


# ---- the header ---------------------------------------------------------------

@dataclass(slots=True)
class Header:
    """A header line, placed at its value (`arch x86`, `cpus 2`) or its first word
    (`scenario "..."`, `expect fail`); the resolver folds them into the Scenario."""
    kind: str               # title | arch | cpus | outcome | kernel | revert | config
    value: str
    line: int
    col: int
    without: tuple = ()     # outcome: the commits after `without`, as written (Refs)


@dataclass(slots=True, frozen=True)
class Expectation:
    """One `expect pass|fail [without COMMIT ...]` line: the verdict the scenario must
    have under the header's kernel with the changes ``without`` (keys of the history
    table) reverted as well.  ``line`` 0: the default, no such line."""
    outcome: str            # "pass" | "fail"
    without: tuple = ()
    line: int = 0
    col: int = 0

    def label(self) -> str:
        """The line as a reader writes it: `expect fail without 38cf307c1f20`."""
        return f"expect {self.outcome}" + (f" without {' '.join(self.without)}" if self.without else "")


# ---- statements -------------------------------------------------------------

@dataclass(slots=True)
class Stmt:
    line: int
    col: int


@dataclass(slots=True)
class Spawn(Stmt):
    """fork without CLONE_VM (copy_mm -> dup_mm): a process with a fresh mm."""
    task: Ref
    mm: Optional[Ref]


@dataclass(slots=True)
class SpawnThread(Stmt):
    """clone with CLONE_VM: the new task shares its parent's mm (mmget)."""
    task: Ref
    parent: Ref


@dataclass(slots=True)
class SpawnKthread(Stmt):
    """kernel thread creation (kthread_create): mm and active_mm none."""
    task: Ref


@dataclass(slots=True)
class Schedule(Stmt):
    """__schedule on a CPU: context_switch to the task, finish_task_switch."""
    cpu: Optional[Ref]      # None inside a cpuN { } block: that CPU
    task: Optional[Ref]     # None for `idle`: the CPU's own idle task


@dataclass(slots=True)
class Exit(Stmt):
    task: Ref


@dataclass(slots=True)
class Exec(Stmt):
    task: Ref
    mm: Optional[Ref]


@dataclass(slots=True)
class UseMm(Stmt):
    task: Ref
    mm: Ref


@dataclass(slots=True)
class UnuseMm(Stmt):
    task: Ref


@dataclass(slots=True)
class Unlazy(Stmt):
    cpu: Optional[Ref]


@dataclass(slots=True)
class MmRef(Stmt):
    """mmget / mmput / mmgrab / mmdrop by something outside the tasks."""
    op: str
    mm: Ref


@dataclass(slots=True)
class MmgetNotZero(Stmt):
    mm: Ref


@dataclass(slots=True)
class Offline(Stmt):
    cpu: Optional[Ref]


@dataclass(slots=True)
class Online(Stmt):
    cpu: Ref


@dataclass(slots=True)
class Flush(Stmt):
    mm: Ref
    tables: bool


@dataclass(slots=True)
class Membarrier(Stmt):
    """sys_membarrier from a CPU's current task: MEMBARRIER_CMD_GLOBAL_EXPEDITED, or with
    `register` MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED."""
    register: bool
    cpu: Optional[Ref]


@dataclass(slots=True)
class Tick(Stmt):
    """scheduler_tick on a CPU: task_tick_numa may queue task_numa_work on its current task."""
    cpu: Optional[Ref]


@dataclass(slots=True)
class TaskWorkRun(Stmt):
    """task_work_run from the task itself (current on its CPU)."""
    task: Ref


@dataclass(slots=True)
class PerfSample(Stmt):
    """A perf NMI on a CPU reads the interrupted code's user context (get_segment_base)."""
    cpu: Optional[Ref]


@dataclass(slots=True)
class Rollover(Stmt):
    """`rollover cpuN`: the CPU's address-space ids run out at its next allocation."""
    cpu: Ref


@dataclass(slots=True)
class Assert(Stmt):
    conds: list


@dataclass(slots=True)
class Expect(Stmt):
    """`expect error` / `expect violation ["rule"]` about the next statement."""
    kind: str               # "error" | "violation"
    text: Optional[str]


# ---- conditions ---------------------------------------------------------------

@dataclass(slots=True)
class Field:
    """``cpu1.curr``, ``A.mm``, ``@A.count``, ``cost.ipis``."""
    owner: str              # "cpu" | "task" | "mm" | "cost"
    obj: Optional[Ref]      # None for cost
    name: str
    line: int
    col: int


@dataclass(slots=True)
class Value:
    kind: str               # none | mm | cpu | int | bool | word | task | cpuset
    text: object            # str, int, bool, or a tuple of CPU Refs for cpuset
    line: int
    col: int


@dataclass(slots=True)
class Cmp:
    field: Field
    op: str
    value: Value
    line: int
    col: int


@dataclass(slots=True)
class Is:
    """``@A is zombie``, ``cpu1 is lazy``, ``A is not dead``."""
    owner: str              # "cpu" | "task" | "mm"
    obj: Ref
    negated: bool
    word: str
    line: int
    col: int


@dataclass(slots=True)
class And:
    parts: list
    line: int
    col: int


@dataclass(slots=True)
class Or:
    parts: list
    line: int
    col: int


@dataclass(slots=True)
class Not:
    part: object
    line: int
    col: int


Cond = Union[Cmp, Is, And, Or, Not]


def leaves(conds):
    """The comparisons and `is` tests inside conditions, through and/or/not
    (a stack, not recursion: a condition may nest thousands of levels deep)."""
    stack = list(conds)
    while stack:
        c = stack.pop()
        if isinstance(c, (And, Or)):
            stack.extend(c.parts)
        elif isinstance(c, Not):
            stack.append(c.part)
        else:
            yield c


# ---- the scenario -------------------------------------------------------------

@dataclass(slots=True)
class CpuBlock:
    cpu: Ref
    stmts: list
    line: int
    col: int


@dataclass(slots=True)
class InterruptBlock:
    """`interrupt cpuN { ... }`: a handler of the scenario's own that may run once on cpuN,
    as one step, at any step boundary where cpuN's irqs are on (granularity step)."""
    cpu: Ref
    stmts: list
    line: int
    col: int


@dataclass(slots=True)
class Interleave:
    """`interleave cpu1 cpu0 ipi cpu1 ...`: one interleaving of the blocks' steps, written out
    (a witness of `mmscn explore`): ``items`` are (kind, Ref), kind "cpu" (the next step of
    the CPU's block), "ipi" (deliver an IPI pending there) or "interrupt" (its handler); an
    "ipi" item may end with the Ref of its sender (`ipi cpuN from cpuM`): (kind, Ref, Ref)."""
    items: tuple
    line: int
    col: int


@dataclass(slots=True)
class Final:
    quantifier: str         # "forall" | "exists"
    conds: list
    line: int
    col: int


@dataclass(slots=True)
class Scenario:
    """The resolved program: the header (title, arch, CPUs, outcome), the statements
    before the blocks, the per-CPU blocks and `final`."""
    path: str
    title: Optional[str] = None
    arch: str = "generic"
    ncpus: int = 1
    outcome: str = "pass"   # `expect pass|fail` in the header
    stmts: list = field(default_factory=list)     # before the blocks
    blocks: list = field(default_factory=list)    # cpuN { } programs
    final: Optional[Final] = None
    arch_ref: Optional[Ref] = None
    ncpus_ref: Optional[Ref] = None
    # the kernel (docs/language.md "The kernel"): the release (None: the arch's, else the
    # newest modelled), the changes reverted and the options set, as keys of the history table
    kernel: Optional[str] = None
    reverts: tuple = ()
    configs: tuple = ()
    expects: tuple = ()     # every `expect pass|fail` line (Expectation), in file order; () = `expect pass`
    kernel_ref: Optional[Ref] = None
    # kernel steps (interpreter/steps.py): "operation" (every statement one atomic step) or
    # "step"; the scenario's own interrupt handlers; a written-out interleaving
    granularity: str = "operation"
    granularity_ref: Optional[Ref] = None
    interrupts: list = field(default_factory=list)    # InterruptBlock
    interleave: Optional[Interleave] = None

    @property
    def name(self) -> str:
        return self.title if self.title is not None else self.path

    def expectations(self) -> tuple:
        """What the scenario is judged by: each `expect` line, or the default `expect pass`."""
        return self.expects or (Expectation(self.outcome),)

    def counts(self) -> tuple:
        """(kernel statements, assertions) of the file, counted as `mmscn run` counts
        what it ran: an `expect` is no statement, and an assertion is counted apart."""
        every = self.stmts + [st for b in self.blocks for st in b.stmts]
        asserts = sum(isinstance(st, Assert) for st in every)
        return sum(not isinstance(st, Expect) for st in every) - asserts, asserts
