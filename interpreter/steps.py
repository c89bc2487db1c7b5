"""Kernel steps (`granularity step`): operations as the kernel's own atomic steps.

Under `granularity step` the statements whose kernel code an interrupt or
another CPU can land inside (exec_mmap, kthread_use_mm, kthread_unuse_mm,
exit_mm, the TLB flush) run as the sequences of steps below, one table row
per step, each naming the kernel function and the code it runs, with the
CPU's interrupt state at the boundary after it.  The effects are the
Kernel's own operations (interpreter/kernel.py: mmgrab, _set_active_mm,
the arch's switch_mm_irqs_off, mmput, ...): a step calls them, nothing is
written twice.  A revert changes the steps as the old code did (the tables
ask ``k.version.has``).  Context switch stays one step (it runs with irqs
off), and every other statement is one step too.

What a CPU is in the middle of is kernel state, declared in state.py (the
fields c_op, c_pc, c_irqs_off, c_op_task, c_op_mm, c_op_old, c_op_old_mm and
the IPI fields): a step reads its locals from there, so a search captures,
restores, hashes and renames an operation in flight like any other state.
A reference an operation holds in a local between two steps (the mm it
mmgrab'd and has not stored yet, the lazy mm exec_mmap read and will drop)
is counted in m_step_count / m_step_users, which Kernel.check() adds to
what it can account for: the invariants are checked after every step.

IPIs: a step that sends (smp_call_function_many, hw.smp_call) queues the
IPI on each target (c_ipi_from) and the sender then waits (a wait step,
enabled once every target ran its handler); a scheduler delivers a queued
IPI at a boundary where the target's irqs are on (deliver()).

Sources (torvalds/linux; the versions read are named in docs/kernel-model.md
"Kernel steps"): fs/exec.c exec_mmap, kernel/kthread.c kthread_use_mm and
kthread_unuse_mm, kernel/exit.c exit_mm, docs/history-sources.md for the
code before 38cf307c1f20 and d53c3dfb23c4.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

from mmscn.dsl import ast as A

from . import version as V
from .kernel import Refusal

# ---- the fields of an operation in flight (state.py), written only here, through _set


def _set(k, cpu: int, **values) -> None:
    for attr, v in values.items():
        getattr(k, attr)[cpu] = v
    k.d_cpus.add(cpu)


def _hold(k, m, count: int = 0, users: int = 0) -> None:
    """References an operation in flight holds on mm ``m`` in a local (+) or gives up (-)."""
    if m is None:
        return
    if count:
        k.m_step_count[m] += count
    if users:
        k.m_step_users[m] += users
    k.d_mms.add(m)


def _lazy(k) -> int:
    """A lazy reference is an mm_count reference only under MMU_LAZY_TLB_REFCOUNT."""
    return 1 if k.refcount_lazy else 0


@dataclass(frozen=True)
class Step:
    """One atomic step: ``function`` is the kernel function whose code it is, ``code`` what it
    runs; ``run(k, cpu)`` does it and returns the label of the next step, or None for the next
    row; ``irqs_off``: irqs_disabled() at the boundary after it; ``wait``: the step waits for
    the IPIs this CPU sent (run once they all ran)."""
    function: str
    code: str
    run: Callable
    irqs_off: bool = False
    label: str = ""
    wait: bool = False

    @property
    def name(self) -> str:
        return f"{self.function}: {self.code}"


DONE = "done"       # a label: the operation returns


def _wait(function: str, label: str = "wait") -> Step:
    return Step(function, "wait for the IPIs (smp_call_function_many, wait=1)", _waited, label=label, wait=True)


def _waited(k, cpu):
    k.smp_call_done(cpu)


def _then(first: Callable, second: Callable) -> Callable:
    """A step whose code is ``first``'s (the checks that may refuse) and then ``second``'s."""
    def run(k, cpu):
        return first(k, cpu) or second(k, cpu)
    run.__name__ = f"{first.__name__}+{second.__name__}"
    return run


def _mmput(k, cpu, m) -> Optional[str]:
    """mmput(m) in a step: when it was the last user, exit_mmap's flush may have sent IPIs;
    then the rest of __mmput waits for them."""
    if k.mmput_begin(m):
        _set(k, cpu, c_op_mm=m)
        _hold(k, m, count=1)        # the users' mm_count reference, which __mmput drops once exit_mmap returns
        return "wait"
    return DONE


def _mmput_end(k, cpu):
    m = k.c_op_mm[cpu]
    _hold(k, m, count=-1)
    k.mmput_finish(m)


# ================================================================ exec_mmap (fs/exec.c)
# ARCH_WANT_IRQS_OFF_ACTIVATE_MM: irqs stay off through activate_mm (d53c3dfb23c4).  powerpc
# selects it since 66acd46080bd (v5.10, with d53c3dfb23c4; no full id seen, so no row: the
# model's powerpc is v6.15+), x86 since af8967158f9a (v6.16).
WANT_IRQS_OFF_ACTIVATE_MM = {"powerpc": None, "x86": V.X86_IRQS_OFF_ACTIVATE_MM}


def irqs_off_activate_mm(k) -> bool:
    arches = WANT_IRQS_OFF_ACTIVATE_MM
    if k.arch.name not in arches:
        return False
    key = arches[k.arch.name]
    return key is None or k.version.has(key)


def _exec_begin(k, cpu):
    t, new_name = k.step_args
    k.exec_mmap_checks(t)
    old_mm = k.t_mm[t]
    if old_mm is not None and not k.version.has(V.EXEC_FRESH_MM) and k.m_users[old_mm] == 1:
        k.exec_mmap(t, new_name)        # 2.4's in-place reuse: one step, nothing of it can be observed apart
        return DONE
    new = k.mm_init(new_name)
    _hold(k, new, users=1)              # bprm->mm: no task has it yet
    _set(k, cpu, c_op_task=t, c_op_mm=new)
    k._op(k.t_name[t], "exec_mmap", "bprm->mm {}: mm_alloc'd by bprm_mm_init", new_name)


def _exec_read(k, cpu):
    t = k.c_op_task[cpu]
    _set(k, cpu, c_op_old=k.t_active[t], c_op_old_mm=k.t_mm[t])


def _exec_store(k, cpu):
    t, new, active, old_mm = k.c_op_task[cpu], k.c_op_mm[cpu], k.c_op_old[cpu], k.c_op_old_mm[cpu]
    name = k.t_name[t]
    now = k.t_active[t]
    if now != active:
        # only before d53c3dfb23c4: something ran between the read and the stores (LT-01)
        k.violate("active_mm-changed", f"{name}'s active_mm changed under exec_mmap: it read {k.mm_label(active)}, "
                  f"the lazy reference it will drop, but replaces {k.mm_label(now)}: {k.mm_label(now)}'s reference "
                  f"leaks and {k.mm_label(active)}'s is dropped a second time",
                  "exec_mmap (fs/exec.c): local_irq_disable() from the read of active_mm through the stores "
                  "(d53c3dfb23c4)", active)
    k._op(name, "exec_mmap", "{} -> {}{}", k.mm_label(active), k.m_name[new],
          "" if old_mm is not None else " (kernel_execve: a kernel thread becomes a user task)")
    _hold(k, new, users=-1)
    if old_mm is not None:
        _hold(k, old_mm, users=1)       # the local old_mm holds its mm_users until mmput
    elif active is not None:
        _hold(k, active, count=_lazy(k))     # the local active_mm holds the lazy reference it read
    k.exec_mmap_store(t, cpu, new, old_mm)


def _exec_read_store(k, cpu):
    _exec_read(k, cpu)
    _exec_store(k, cpu)


def _exec_activate(k, cpu):
    t = k.c_op_task[cpu]
    k.arch.activate_mm(k, cpu, k.c_op_old[cpu], k.c_op_mm[cpu], t)


def _exec_end(k, cpu):
    t, active, old_mm = k.c_op_task[cpu], k.c_op_old[cpu], k.c_op_old_mm[cpu]
    if old_mm is not None:
        if active != old_mm:
            k.violate("active_mm-mismatch", f"{k.t_name[t]}->mm was {k.m_name[old_mm]} but active_mm "
                      f"{k.mm_label(active)}", "exec_mmap (fs/exec.c): BUG_ON(active_mm != old_mm)", old_mm)
        _hold(k, old_mm, users=-1)
        return _mmput(k, cpu, old_mm)
    if active is not None:
        _hold(k, active, count=-_lazy(k))
        k.mmdrop_lazy_tlb(active)
    return DONE


def exec_mmap(k) -> tuple:
    want = irqs_off_activate_mm(k)
    f = "exec_mmap"
    head = (Step(f, "bprm_mm_init's mm_alloc; old_mm = current->mm", _exec_begin),)
    if k.version.has(V.EXEC_IRQS_OFF):
        # d53c3dfb23c4: irqs off from the read of active_mm through the stores (and through
        # activate_mm where the arch wants it)
        body = (Step(f, "task_lock(tsk); local_irq_disable(); active_mm = tsk->active_mm; tsk->active_mm = mm; "
                        "tsk->mm = mm" + ("" if want else "; local_irq_enable()"), _exec_read_store, irqs_off=want),
                Step(f, "activate_mm(active_mm, mm)" + ("; local_irq_enable()" if want else ""), _exec_activate))
    else:
        # before it: task_lock holds off preemption (non-RT), not interrupts
        body = (Step(f, "task_lock(tsk); active_mm = tsk->active_mm", _exec_read),
                Step(f, "tsk->mm = mm; tsk->active_mm = mm", _exec_store),
                Step(f, "activate_mm(active_mm, mm)", _exec_activate))
    return head + body + (
        Step(f, "task_unlock(tsk); mmput(old_mm), or mmdrop_lazy_tlb(active_mm) for a kernel thread", _exec_end),
        _wait("__mmput"),
        Step("__mmput", "exit_mmap returned: mmdrop(mm)", _mmput_end))


# ================================================================ kthread_use_mm (kernel/kthread.c)
def _use_begin(k, cpu):
    t, m = k.step_args
    k.kthread_use_mm_checks(t, m)
    _set(k, cpu, c_op_task=t, c_op_mm=m)
    k._op(k.t_name[t], "kthread_use_mm", "{} -> {}", k.mm_label(k.t_active[t]), k.m_name[m])


def _use_grab(k, cpu):
    m = k.c_op_mm[cpu]
    k.mmgrab(m)
    _hold(k, m, count=1)                # the local mm, not stored yet


def _use_store(k, cpu):
    t, m = k.c_op_task[cpu], k.c_op_mm[cpu]
    old = k.t_active[t]
    _set(k, cpu, c_op_old=old)
    _hold(k, m, count=-1)
    _hold(k, old, count=_lazy(k))       # the lazy reference on the old active_mm, dropped at the end
    k.kthread_use_mm_store(t, cpu, m)


def _use_grab_store(k, cpu):
    _use_grab(k, cpu)
    _use_store(k, cpu)


def _use_switch(k, cpu):
    k.arch.switch_mm_irqs_off(k, cpu, k.c_op_old[cpu], k.c_op_mm[cpu], k.c_op_task[cpu])


def _use_drop(k, cpu):
    old = k.c_op_old[cpu]
    if old is not None:
        _hold(k, old, count=-_lazy(k))
        k.mmdrop_lazy_tlb(old)


def kthread_use_mm(k) -> tuple:
    f = "kthread_use_mm"
    if k.version.has(V.KTHREAD_USE_MM_IRQS_OFF):
        # 38cf307c1f20: "Hold off tlb flush IPIs while switching mm's"
        body = (Step(f, "mmgrab(mm)", _then(_use_begin, _use_grab)),
                Step(f, "task_lock(tsk); local_irq_disable(); active_mm = tsk->active_mm; tsk->active_mm = mm; "
                        "tsk->mm = mm", _use_store, irqs_off=True),
                Step(f, "switch_mm_irqs_off(active_mm, mm, tsk); local_irq_enable(); task_unlock(tsk)", _use_switch))
    else:
        # before it (v5.8): the stores and switch_mm() with irqs on, under task_lock only
        body = (Step(f, "task_lock(tsk); active_mm = tsk->active_mm; mmgrab(mm); tsk->active_mm = mm; "
                        "tsk->mm = mm", _then(_use_begin, _use_grab_store)),
                Step(f, "switch_mm(active_mm, mm, tsk); task_unlock(tsk)", _use_switch))
    return body + (Step(f, "mmdrop_lazy_tlb(active_mm)", _use_drop),)


# ================================================================ kthread_unuse_mm (kernel/kthread.c)
def _unuse_begin(k, cpu):
    t = k.step_args[0]
    m = k.kthread_unuse_mm_checks(t)
    _set(k, cpu, c_op_task=t, c_op_mm=m)
    k._op(k.t_name[t], "kthread_unuse_mm", "{} stays active_mm, now lazily", k.m_name[m])


def _unuse_clear(k, cpu):
    t, m = k.c_op_task[cpu], k.c_op_mm[cpu]
    k.kthread_unuse_mm_clear(t, cpu, m)
    _hold(k, m, count=1)                # the use reference, dropped by the mmdrop at the end


def _unuse_lazy(k, cpu):
    k.arch.enter_lazy_tlb(k, cpu, k.c_op_mm[cpu], k.c_op_task[cpu])


def _unuse_clear_lazy(k, cpu):
    _unuse_clear(k, cpu)
    _unuse_lazy(k, cpu)


def _unuse_drop(k, cpu):
    m = k.c_op_mm[cpu]
    _hold(k, m, count=-1)
    k.mmdrop(m)


def kthread_unuse_mm(k) -> tuple:
    f = "kthread_unuse_mm"
    if k.version.has(V.KTHREAD_USE_MM_IRQS_OFF):
        body = (Step(f, "task_lock(tsk); local_irq_disable(); tsk->mm = NULL; mmgrab_lazy_tlb(mm); "
                        "enter_lazy_tlb(mm, tsk); local_irq_enable(); task_unlock(tsk)",
                     _then(_unuse_begin, _unuse_clear_lazy)),)
    else:
        body = (Step(f, "task_lock(tsk); tsk->mm = NULL; mmgrab_lazy_tlb(mm)", _then(_unuse_begin, _unuse_clear)),
                Step(f, "enter_lazy_tlb(mm, tsk); task_unlock(tsk)", _unuse_lazy))
    return body + (Step(f, "mmdrop(mm)", _unuse_drop),)


# ================================================================ exit_mm (kernel/exit.c)
def _exit_begin(k, cpu):
    t = k.step_args[0]
    k.do_exit_checks(t)
    m = k.t_mm[t]
    if m is None:
        k.do_exit(t)                    # exit_mm returns at once: one step
        return DONE
    _set(k, cpu, c_op_task=t, c_op_mm=m)
    k._op(k.t_name[t], "exit_mm", "{} drops {} as mm, keeps it as active_mm (lazy)", k.t_name[t], k.m_name[m])
    if k.t_active[t] != m:
        k.violate("active_mm-mismatch", f"{k.t_name[t]}->mm is {k.m_name[m]} but active_mm is "
                  f"{k.mm_label(k.t_active[t])}", "exit_mm (kernel/exit.c): BUG_ON(mm != current->active_mm)", m)
    k.mmgrab_lazy_tlb(m)
    _hold(k, m, count=_lazy(k))         # the lazy reference, before current->mm is cleared


def _exit_clear(k, cpu):
    t, m = k.c_op_task[cpu], k.c_op_mm[cpu]
    _hold(k, m, count=-_lazy(k), users=1)   # lazy now; the local mm holds the user reference until mmput
    k.exit_mm_lazy(t, cpu, m)


def _exit_mmput(k, cpu):
    m = k.c_op_mm[cpu]
    _hold(k, m, users=-1)
    if k.mmput_begin(m):
        _hold(k, m, count=1)        # the users' mm_count reference, which __mmput drops once exit_mmap returns
        # powerpc: exit_mmap's flush called exit_lazy_flush_tlb on this task itself (its steps next)
        return "exit_lazy" if k.c_exit_lazy[cpu] is not None else "wait"
    return "dead"


def _exit_dead(k, cpu):
    k.do_exit_dead(k.c_op_task[cpu], cpu)


def exit_mm(k) -> tuple:
    return (Step("exit_mm", "mmgrab_lazy_tlb(mm)", _exit_begin),
            Step("exit_mm", "task_lock(current); local_irq_disable(); current->mm = NULL; enter_lazy_tlb(mm, current); "
                            "local_irq_enable(); task_unlock(current)", _exit_clear),
            Step("exit_mm", "mmput(mm)", _exit_mmput)) + exit_lazy_flush_tlb(k) + (
            _wait("__mmput"),
            Step("__mmput", "exit_mmap returned: mmdrop(mm)", _mmput_end),
            Step("do_exit", "TASK_DEAD: exit_mm returned", _exit_dead, label="dead"))


# ================================================================ exit_lazy_flush_tlb (arch/powerpc/mm/book3s64/radix_tlb.c)
# powerpc radix, from a665eec0a22e (v5.10): exit_mmap -> tlb_finish_mmu -> radix__tlb_flush ->
# __flush_all_mm(mm, true) -> flush_type_needed, when the trim clock fires on the mm's only CPU and
# current->mm != mm, calls exit_lazy_flush_tlb(mm, true) on the exiting task itself, lazy on mm
# since exit_mm (before e43c0a0c3c28, v6.6: then the fullmm flush IPIs the others instead).  Its
# switch to init_mm ran with irqs on (preempt_disable only) until dfaed3e1fa70 (v6.4) put it under
# local_irq_save.  exit_mm's mmput step runs exit_mmap up to that call (kernel.exit_lazy_in_steps);
# these rows are the rest, then __mmput goes on.
def _exit_lazy_store(k, cpu):
    t = k.c_op_task[cpu]
    m = k.switch_to_init_mm_store(t)
    _hold(k, m, count=_lazy(k))         # the lazy reference on mm, which the local mm holds until mmdrop_lazy_tlb


def _exit_lazy_switch(k, cpu):
    t, m = k.c_op_task[cpu], k.c_exit_lazy[cpu]
    _hold(k, m, count=-_lazy(k))
    k.switch_to_init_mm_finish(cpu, t, m)
    _set(k, cpu, c_exit_lazy=None)
    k.arch.exit_lazy_trim(k, cpu, m)


def exit_lazy_flush_tlb(k) -> tuple:
    if k.arch.name != "powerpc" or not k.version.has(V.PPC_TRIM_SELF):
        return ()
    f = "exit_lazy_flush_tlb"
    grab = "mmgrab_lazy_tlb(&init_mm)" if k.version.has(V.LAZY_TLB_HELPERS) else "mmgrab(&init_mm)"
    drop = "mmdrop_lazy_tlb(mm)" if k.version.has(V.LAZY_TLB_HELPERS) else "mmdrop(mm)"
    if k.version.has(V.PPC_EXIT_LAZY_IRQS_OFF):
        return (Step(f, f"local_irq_save(flags); {grab}; current->active_mm = &init_mm", _exit_lazy_store,
                     irqs_off=True, label="exit_lazy"),
                Step(f, f"switch_mm_irqs_off(mm, &init_mm, current); {drop}; local_irq_restore(flags); "
                        f"cpumask_clear_cpu(cpu, mm_cpumask(mm)); _tlbiel_pid", _exit_lazy_switch))
    # before it: irqs on between the store of active_mm and the switch (LT-05)
    return (Step(f, f"{grab}; current->active_mm = &init_mm", _exit_lazy_store, label="exit_lazy"),
            Step(f, f"switch_mm_irqs_off(mm, &init_mm, current); {drop}; cpumask_clear_cpu(cpu, mm_cpumask(mm)); "
                    f"_tlbiel_pid", _exit_lazy_switch))


# ================================================================ the TLB flush (arch/*/mm)
def _flush_send(k, cpu):
    m, tables = k.step_args
    k.flush(m, tables, cpu)         # the arch decides the targets, flushes here, and queues its IPIs
    _set(k, cpu, c_op_mm=m)
    return "wait" if k.smp_call_waiting(cpu) else DONE


def _flush_return(k, cpu):
    k.flush_returned(k.c_op_mm[cpu])


def flush(k) -> tuple:
    f = "flush_tlb_mm_range"
    return (Step(f, "decide the targets, flush locally, send the IPIs", _flush_send),
            _wait(f),
            Step(f, "the IPIs ran: the flush returns", _flush_return))


# ================================================================ the tables
#: statement type -> (the operation's name in c_op, its table, its arguments from the statement)
OPERATIONS = {
    A.Exec: ("exec_mmap", exec_mmap),
    A.UseMm: ("kthread_use_mm", kthread_use_mm),
    A.UnuseMm: ("kthread_unuse_mm", kthread_unuse_mm),
    A.Exit: ("exit_mm", exit_mm),
    A.Flush: ("flush_tlb_mm_range", flush),
}
TABLES = {name: table for name, table in OPERATIONS.values()}
_cache: dict = {}


def table(k, op: str) -> tuple:
    """The steps of ``op`` on this kernel (its arch and its version), built once per kernel."""
    key = (op, k.arch.name, k.version.release, k.version.reverts, k.version.configs)
    t = _cache.get(key)
    if t is None:
        t = _cache[key] = TABLES[op](k)
    return t


def _index(steps: tuple, label: str, pc: int) -> Optional[int]:
    if label is None:
        return pc + 1 if pc + 1 < len(steps) else None
    if label == DONE:
        return None
    return next(i for i, s in enumerate(steps) if s.label == label)


# ================================================================ running a step
def stepped(st) -> bool:
    return type(st) in OPERATIONS


def begin(k, cpu: int, op: str, args: tuple) -> Step:
    """Run the first step of ``op`` on ``cpu`` (its checks: a Refusal leaves nothing in flight)."""
    _set(k, cpu, c_op=op, c_pc=0)
    k.step_args = args
    try:
        return advance(k, cpu)
    except Refusal:
        _set(k, cpu, c_op=None, c_pc=0)
        raise
    finally:
        k.step_args = ()


def advance(k, cpu: int) -> Step:
    """Run the step ``cpu`` is at; move it to the next one (skipping a wait with nothing to wait
    for), or end the operation.  Returns the step that ran."""
    steps = table(k, k.c_op[cpu])
    pc = k.c_pc[cpu]
    s = steps[pc]
    k.this_cpu = cpu
    k.stepping = True
    try:
        label = s.run(k, cpu)
    finally:
        k.stepping = False
    nxt = _index(steps, label, pc)
    while nxt is not None and steps[nxt].wait and not k.smp_call_waiting(cpu):
        nxt = _index(steps, None, nxt)      # nothing was sent: no wait
    if nxt is None:
        _set(k, cpu, c_op=None, c_pc=0, c_irqs_off=False, c_op_task=None, c_op_mm=None, c_op_old=None,
             c_op_old_mm=None)
    else:
        _set(k, cpu, c_pc=nxt, c_irqs_off=s.irqs_off)
    return s


def current(k, cpu: int) -> Optional[Step]:
    """The step ``cpu``'s operation in flight is at, or None."""
    op = k.c_op[cpu]
    return None if op is None else table(k, op)[k.c_pc[cpu]]


def can_advance(k, cpu: int) -> bool:
    """Not at a wait whose IPIs have not all run."""
    s = current(k, cpu)
    return s is None or not s.wait or not k.smp_call_waiting(cpu)


def deliverable(k) -> list:
    """(target, sender) of every queued IPI whose target's irqs are on, targets in order."""
    out = []
    for c in range(k.ncpus):
        senders = k.c_ipi_from[c]
        if senders and not k.c_irqs_off[c]:
            out += [(c, s) for s in range(k.ncpus) if senders >> s & 1]
    return out


def args_of(k, st, cpu: Optional[int], new_mm_name: Callable) -> tuple:
    """The first step's arguments, from the statement (task and mm indexes as the kernel has them)."""
    from .conditions import mm_of, task_of
    if type(st) is A.Exec:
        return (task_of(k, st.task), new_mm_name(k, st))
    if type(st) is A.UseMm:
        return (task_of(k, st.task), mm_of(k, st.mm))
    if type(st) is A.Flush:
        return (mm_of(k, st.mm), st.tables)
    return (task_of(k, st.task),)


def op_cpu(k, st, cpu: Optional[int], args: tuple) -> Optional[int]:
    """The CPU the operation runs on: the block's, else its task's (a top-level exec runs on
    the CPU its task runs on); None: it runs as one step (a flush from no CPU)."""
    if cpu is not None:
        return cpu
    if type(st) is A.Flush:
        return None
    return k.t_cpu[args[0]]
