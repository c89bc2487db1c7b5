"""The kernel's state, declared once.

Every field the Kernel keeps is one line of FIELDS: the Kernel list that
holds it (one value per task, mm or CPU: its owner), the kernel's name for
it, the kind of its values and its role:

  identity     names; a task's or mm's never changes once made
  kernel       what the kernel's own structures hold (task_struct, mm_struct, rq)
  hardware     what the hardware holds, as a policy models it
  bookkeeping  an index derived from other fields (``derived`` says which), kept
               by the kernel's pointer setters so that the accounting check after
               a statement looks only at what the statement touched

A few more lines (View) are what a reader sees without a field of its own
(a CPU's active_mm is its current task's).  From these declarations come the
Kernel's slots and a new entity's values, the undo snapshot, the hashable
key, explore's captured states and their renaming under a symmetry (by the
kinds of the values), the JSON state and the hardware line.  Adding a field
is one line here; the kernel operations that change it mark what they
touched (``Kernel.d_tasks``, ``d_mms``, ``d_cpus``), as they do for every field.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

TASK, MM, CPU = "task", "mm", "cpu"
OWNERS = (TASK, MM, CPU)

# kinds of values: a reference to a task, mm or CPU (an index, or None), a set of
# CPUs (bit c: cpu c), a counter, a flag, a word (state, kind) or a name
TASK_REF, MM_REF, CPU_REF = "task", "mm", "cpu"
CPUMASK, COUNT, FLAG, WORD, NAME = "cpumask", "count", "flag", "word", "name"

IDENTITY, KERNEL, HARDWARE, BOOKKEEPING = "identity", "kernel", "hardware", "bookkeeping"

INIT_MM = 0          # mm index of init_mm
# the words of t_kind and t_state
USER, KTHREAD, IDLE = "user", "kthread", "idle"
RUNNABLE, RUNNING, DEAD = "runnable", "running", "dead"


@dataclass(frozen=True)
class Field:
    attr: str                   # the Kernel list
    owner: str                  # TASK, MM or CPU: one value per owner
    kernel: str                 # what the kernel calls it
    kind: str                   # the kind of its values
    role: str                   # IDENTITY, KERNEL, HARDWARE or BOOKKEEPING
    default: object = None      # a new task's, mm's or CPU's value (None for one always given)
    view: str = ""              # its name in the JSON state and the hardware line, if shown
    read: Optional[Callable] = None   # read(k, policy, i): the view's value, where a policy decides it
    label: str = ""             # the hardware line's word for it (default: the view)
    derived: str = ""           # bookkeeping: the fields it is counted from


@dataclass(frozen=True)
class View:
    """What a reader sees of an owner without a field of its own."""
    owner: str
    view: str
    kind: str
    read: Callable              # read(k, policy, i)
    role: str = KERNEL


FIELDS = (
    # ---- tasks, in the order the JSON state lists them
    Field("t_name", TASK, "task_struct->comm", NAME, IDENTITY, view="name"),
    Field("t_kind", TASK, "task_struct->flags: PF_KTHREAD, PF_IDLE (user, kthread, idle)", WORD, KERNEL, view="kind"),
    Field("t_state", TASK, "task_struct->__state (runnable, running, dead)", WORD, KERNEL, RUNNABLE, view="state"),
    Field("t_cpu", TASK, "task_cpu() while task_on_cpu(), else none", CPU_REF, KERNEL, view="cpu"),
    Field("t_mm", TASK, "task_struct->mm", MM_REF, KERNEL, view="mm"),
    Field("t_active", TASK, "task_struct->active_mm", MM_REF, KERNEL, view="active_mm"),
    Field("t_ptbr", TASK, "thread_struct's PCB ptbr (alpha: the page tables swpctx loads)", MM_REF, HARDWARE,
          view="ptbr", label="PCB ptbr"),
    Field("t_numa_work", TASK, "task_struct->numa_work queued (task_tick_numa)", FLAG, KERNEL, False),
    # ---- mms
    Field("m_name", MM, "the mm_struct (named by the scenario)", NAME, IDENTITY, view="name"),
    Field("m_users", MM, "mm_struct->mm_users", COUNT, KERNEL, 1, view="users"),
    Field("m_count", MM, "mm_struct->mm_count", COUNT, KERNEL, 1, view="count"),
    View(MM, "state", WORD, lambda k, policy, m: k.mm_state(m)),
    Field("m_freed", MM, "freed by __mmdrop", FLAG, KERNEL, False),
    Field("m_torn", MM, "torn down by __mmput's exit_mmap", FLAG, KERNEL, False),
    Field("m_ext_users", MM, "mm_users references of mmget callers outside the tasks", COUNT, KERNEL, 0),
    Field("m_ext_count", MM, "mm_count references of mmgrab callers outside the tasks", COUNT, KERNEL, 0),
    Field("m_cpumask", MM, "mm_cpumask(mm)", CPUMASK, HARDWARE, 0, view="cpumask",
          read=lambda k, policy, m: policy.cpumask(k, m), label="mm_cpumask"),
    Field("m_lazy_tasks", MM, "tasks with ->mm NULL and ->active_mm this mm", COUNT, BOOKKEEPING, 0,
          derived="t_mm, t_active"),
    Field("m_kthread_users", MM, "kernel threads inside kthread_use_mm of it", COUNT, BOOKKEEPING, 0,
          derived="t_mm, t_kind"),
    Field("m_task_users", MM, "user tasks whose ->mm it is", COUNT, BOOKKEEPING, 0, derived="t_mm, t_kind"),
    Field("m_prev_mm_cpus", MM, "CPUs whose rq->prev_mm it is", COUNT, BOOKKEEPING, 0, derived="c_prev_mm"),
    Field("m_membarrier", MM, "mm->membarrier_state: MEMBARRIER_STATE_GLOBAL_EXPEDITED", FLAG, KERNEL, False),
    # ---- CPUs
    View(CPU, "cpu", NAME, lambda k, policy, c: f"cpu{c}", IDENTITY),
    Field("c_online", CPU, "cpu_online_mask", FLAG, KERNEL, True, view="online"),
    Field("c_curr", CPU, "rq->curr", TASK_REF, KERNEL, view="curr"),
    View(CPU, "active_mm", MM_REF, lambda k, policy, c: k.t_active[k.c_curr[c]] if k.c_online[c] else None),
    View(CPU, "lazy", FLAG, lambda k, policy, c: policy.is_lazy(k, c)),
    Field("c_loaded", CPU, "cpu_tlbstate.loaded_mm: the page tables loaded", MM_REF, HARDWARE, INIT_MM,
          view="loaded_mm", read=lambda k, policy, c: policy.loaded_mm(k, c)),
    Field("c_prev_mm", CPU, "rq->prev_mm", MM_REF, KERNEL),
    Field("c_lazy", CPU, "cpu_tlbstate_shared.is_lazy (x86)", FLAG, HARDWARE, False),
    Field("c_membarrier", CPU, "rq->membarrier_state: the rq's copy of curr's mm's", FLAG, KERNEL, False),
    # ---- the TLB's truth (x86 keeps it as mm->context.tlb_gen, cpu_tlbstate.ctxs[].tlb_gen; the model
    # keeps it for every arch, shown only where a policy lists it, so today's traces stay as they are)
    Field("m_tlb_gen", MM, "mm->context.tlb_gen: the mm's flush generation, bumped by every flush of it",
          COUNT, HARDWARE, 0, view="tlb_gen"),
    Field("m_asid_gen", MM, "the generation of the mm's address-space id: ARM the version of mm->context.id, "
          "ia64 the how-manieth context number mm->context is (0: none yet)", COUNT, HARDWARE, 0, view="asid_gen"),
    Field("c_tlb_gen", CPU, "cpu_tlbstate.ctxs[].tlb_gen: the flush generation of its loaded mm the CPU's TLB "
          "has caught up to", COUNT, HARDWARE, 0, view="tlb_gen"),
    Field("c_asid_gen", CPU, "the generation of the address-space id in the CPU's registers (ARM CONTEXTIDR, "
          "ia64 region registers) for its loaded mm", COUNT, HARDWARE, 0, view="asid_gen"),
    Field("c_rollover", CPU, "`rollover cpuN`: the CPU's next address-space id allocation finds the space used up "
          "(ARM __new_context, ia64 wrap_mmu_context)", FLAG, HARDWARE, False, view="rollover"),
    Field("c_asn_lock", CPU, "alpha cpu_data[cpu].asn_lock: set by ev5_switch_mm, cleared by check_mmu_context "
          "in switch_to", FLAG, HARDWARE, False, view="asn_lock"),
    # ---- kernel steps (granularity step, interpreter/steps.py): an operation in flight on a CPU,
    # its locals, the references they hold, the IPIs queued and the CPU's own interrupt
    Field("c_op", CPU, "the stepped kernel operation the CPU is inside (a key of steps.TABLES)", WORD, KERNEL),
    Field("c_pc", CPU, "the step of it the CPU is at", COUNT, KERNEL, 0),
    Field("c_irqs_off", CPU, "irqs_disabled() at the step boundary", FLAG, KERNEL, False),
    Field("c_op_task", CPU, "the operation's tsk (current)", TASK_REF, KERNEL),
    Field("c_op_mm", CPU, "its mm: exec's bprm->mm, kthread_use_mm's mm, the mm flushed or mmput", MM_REF, KERNEL),
    Field("c_op_old", CPU, "the local active_mm it read (exec_mmap, kthread_use_mm)", MM_REF, KERNEL),
    Field("c_op_old_mm", CPU, "exec_mmap's local old_mm", MM_REF, KERNEL),
    Field("c_op_flushing", CPU, "the mm a flush in flight changed and has not flushed yet (sparc64's test, then reset)", MM_REF, KERNEL),
    Field("m_step_count", MM, "mm_count references held in a local of an operation in flight", COUNT, KERNEL, 0),
    Field("m_step_users", MM, "mm_users references held in a local of an operation in flight", COUNT, KERNEL, 0),
    Field("c_ipi_from", CPU, "the CPUs whose smp_call_function_many IPI is queued here", CPUMASK, KERNEL, 0),
    Field("c_ipi_fn", CPU, "the handler of the IPIs the CPU sent and waits for", WORD, KERNEL),
    Field("c_ipi_mm", CPU, "the mm that handler is given", MM_REF, KERNEL),
    Field("c_ipi_after", CPU, "what the caller of smp_call_function_many does once it returns", WORD, KERNEL),
    Field("c_irq_done", CPU, "the scenario's `interrupt cpuN { }` handler has run", FLAG, KERNEL, False),
    # ---- membrt: membarrier's loop as steps (LT-09), RCU read-side sections, PREEMPT_RT's deferred __mmdrop (LT-16)
    Field("c_op_cpu", CPU, "membarrier's loop variable: the cpu of for_each_online_cpu(cpu)", CPU_REF, KERNEL),
    Field("c_op_cpus", CPU, "membarrier's tmpmask: the CPUs its smp_call_function_many will IPI", CPUMASK, KERNEL, 0),
    Field("c_rcu_reader", CPU, "inside rcu_read_lock() (membarrier's loop): a grace period waits for it", FLAG, KERNEL,
          False),
    Field("m_rcu_cpu", MM, "the CPU whose call_rcu(&mm->delayed_drop, __mmdrop_delayed) is queued (PREEMPT_RT: "
          "mm_count 0, the free pending); none: no callback", CPU_REF, KERNEL),
    Field("m_rcu_wait", MM, "the CPUs inside rcu_read_lock() when that callback was queued: the grace period ends "
          "once each has left", CPUMASK, KERNEL, 0),
    Field("c_exit_lazy", CPU, "powerpc exit_lazy_flush_tlb of the exiting task itself, left to exit_mm's steps: "
          "the lazy mm it switches away from", MM_REF, KERNEL),
)

STORED = tuple(f for f in FIELDS if isinstance(f, Field))
OF = {o: tuple(f for f in STORED if f.owner == o) for o in OWNERS}
BY_ATTR = {f.attr: f for f in STORED}
#: the Kernel's lists, and its name indexes (derived from the names)
SLOTS = tuple(f.attr for f in STORED) + ("task_ix", "mm_ix")
#: what the hashable key holds: everything but names and bookkeeping
KEY = tuple(f.attr for f in STORED if f.role in (KERNEL, HARDWARE))
#: the fields only kernel steps write (interpreter/steps.py; step.interrupt c_irq_done): a search
#: of whole statements never changes them, so its store leaves them out of its rows
STEP_ONLY = ("c_op", "c_pc", "c_irqs_off", "c_op_task", "c_op_mm", "c_op_old", "c_op_old_mm", "c_op_flushing",
             "c_op_cpu", "c_op_cpus", "c_irq_done", "m_step_count", "m_step_users")


def _appender(owner: str):
    """new(k, **values): appends a new task, mm or CPU to each of its owner's lists, the value
    given or the declared default, and returns its index; written out field by field (a loop
    over the fields costs twice as much, and a run makes an mm every few lines)."""
    fields = OF[owner]
    env = {f"d{j}": f.default for j, f in enumerate(fields)}
    params = ", ".join(f"{f.attr}=d{j}" for j, f in enumerate(fields))
    body = "".join(f"    k.{f.attr}.append({f.attr})\n" for f in fields)
    exec(f"def new(k, {params}):\n    i = len(k.{fields[0].attr})\n{body}    return i\n", env)
    return env["new"]


#: per owner, new(k, **values): a new entity with the declared defaults for what is not given
NEW = {o: _appender(o) for o in OWNERS}
VIEWS = {o: tuple(f for f in FIELDS if f.owner == o and f.view) for o in OWNERS}
VIEW = {(f.owner, f.view): f for f in FIELDS if f.view}


def read(k, policy, f, i):
    """The value a view shows of owner i (a model value: an index, a count, a mask)."""
    if f.read is not None:
        return f.read(k, policy, i)
    return getattr(k, f.attr)[i]


def shown(f, policy) -> bool:
    """A hardware field is shown where the policy models it; everything else always."""
    return f.role != HARDWARE or f.view in policy.hardware_fields


def label(k, kind: str, v):
    """A model value as the JSON state writes it."""
    if kind == MM_REF:
        return k.mm_label(v)
    if kind == TASK_REF:
        return k.t_name[v]
    if kind == CPU_REF:
        return None if v is None else f"cpu{v}"
    if kind == CPUMASK:
        return [f"cpu{c}" for c in range(k.ncpus) if v >> c & 1]
    return v


# ================================================================ derived: the JSON state, the hardware line
def state_json(k, policy) -> dict:
    """Every CPU, task and mm with the views the policy shows, in FIELDS order."""
    def entries(owner, n):
        views = [f for f in VIEWS[owner] if shown(f, policy)]
        return [{f.view: label(k, f.kind, read(k, policy, f, i)) for f in views} for i in range(n)]
    return {"cpus": entries(CPU, k.ncpus), "tasks": entries(TASK, len(k.t_name)), "mms": entries(MM, len(k.m_name))}


def hardware_state(k, policy, tasks, mms) -> dict:
    """What the policy models of the hardware, in the order of its hardware_fields: the
    CPU views of each online CPU under "cpus", each other view by live owner (tasks and
    mms: the indexes given) where it has a value."""
    out = {}
    for name in policy.hardware_fields:
        f = VIEW.get((CPU, name))
        if f is not None:
            cpus = out.setdefault("cpus", {c: {} for c in (f"cpu{c}" for c in range(k.ncpus) if k.c_online[c])})
            for c in range(k.ncpus):
                if k.c_online[c]:
                    v = read(k, policy, f, c)
                    cpus[f"cpu{c}"][name] = bool(v) if f.kind == FLAG else label(k, f.kind, v)
            continue
        for owner, live, names in ((MM, mms, k.m_name), (TASK, tasks, k.t_name)):
            f = VIEW.get((owner, name))
            if f is not None:
                values = ((i, read(k, policy, f, i)) for i in live)
                out[name] = {names[i]: label(k, f.kind, v) for i, v in values if v is not None}
    return out


def hardware_text(hw: dict) -> str:
    """One line of a policy's hardware state: `cpu0 @A lazy, cpu1 @init_mm; mm_cpumask @A {cpu0}`."""
    parts = []
    for name, per in hw.items():
        if name == "cpus":
            parts.append(", ".join(" ".join([c] + [_word(VIEW[CPU, view], v) for view, v in d.items()
                                                   if v is not False]) for c, d in per.items()))
            continue
        f = VIEW.get((MM, name)) or VIEW[TASK, name]
        items = [f"{who} {{{', '.join(v)}}}" if f.kind == CPUMASK else f"{who} {v}" for who, v in per.items() if v]
        if items:
            parts.append(f"{f.label or f.view} " + ", ".join(items))
    return "; ".join(p for p in parts if p)


def _word(f, v) -> str:
    """A CPU's view on the hardware line: an mm by its name, a flag by its own, else `view value`."""
    if f.kind == MM_REF:
        return v
    return f.view if f.kind == FLAG else f"{f.view} {v}"


# ================================================================ derived: bookkeeping from scratch
def recount(k) -> dict:
    """The bookkeeping fields computed from what they are derived from (for tests)."""
    nm = len(k.m_name)
    out = {f.attr: [0] * nm for f in OF[MM] if f.role == BOOKKEEPING}
    for t in range(len(k.t_name)):
        m, a = k.t_mm[t], k.t_active[t]
        if m is not None:
            out["m_kthread_users" if k.t_kind[t] == KTHREAD else "m_task_users"][m] += 1
        elif a is not None:
            out["m_lazy_tasks"][a] += 1
    for c in range(k.ncpus):
        if k.c_prev_mm[c] is not None:
            out["m_prev_mm_cpus"][k.c_prev_mm[c]] += 1
    return out
