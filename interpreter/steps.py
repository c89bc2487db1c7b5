"""Kernel steps (`granularity step`): operations as the kernel's own atomic steps.

Under `granularity step` the statements whose kernel code an interrupt or
another CPU can land inside (exec_mmap, kthread_use_mm, kthread_unuse_mm,
exit_mm, the TLB flush, cpu_down's stages) run as the sequences of steps below, one table row
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


def _use_store_shared(k, cpu):
    """Before 6cad87b0d216: ``if (active_mm != mm) { mmgrab(mm); tsk->active_mm = mm; }`` under
    the lock; a kernel thread lazy on mm turns its lazy reference into the kthread_use_mm one."""
    t, m = k.c_op_task[cpu], k.c_op_mm[cpu]
    old = k.t_active[t]
    _set(k, cpu, c_op_old=old)
    if old != m:
        k.mmgrab(m)
        _hold(k, old, count=_lazy(k))   # the lazy reference on the old active_mm, mmdrop'd at the end
    k.kthread_use_mm_store(t, cpu, m)


def _use_drop_shared(k, cpu):
    old = k.c_op_old[cpu]
    if old is not None and old != k.c_op_mm[cpu]:
        _hold(k, old, count=-_lazy(k))
        k.mmdrop(old)                   # plain mmdrop: the lazy reference, counted


def kthread_use_mm(k) -> tuple:
    f = "kthread_use_mm"
    if not k.version.has(V.KTHREAD_USE_MM_REFCOUNT):
        # before 6cad87b0d216 (v6.4): mmgrab(mm) only when active_mm != mm, after reading it under
        # the lock (inside the irqs-off region since 38cf307c1f20); mmdrop(active_mm) likewise
        irqs = k.version.has(V.KTHREAD_USE_MM_IRQS_OFF)
        store = ("task_lock(tsk); " + ("local_irq_disable(); " if irqs else "") + "active_mm = tsk->active_mm; "
                 "if (active_mm != mm) { mmgrab(mm); tsk->active_mm = mm; } tsk->mm = mm")
        switch = ("switch_mm_irqs_off(active_mm, mm, tsk); local_irq_enable(); task_unlock(tsk)" if irqs
                  else "switch_mm(active_mm, mm, tsk); task_unlock(tsk)")
        return ((Step(f, store, _then(_use_begin, _use_store_shared), irqs_off=irqs),)
                + ((Step(f, switch, _use_switch),) if irqs else _use_switch_irqs_on(k, f))
                + (Step(f, "if (active_mm != mm) mmdrop(active_mm)", _use_drop_shared, label="drop"),))
    if k.version.has(V.KTHREAD_USE_MM_IRQS_OFF):
        # 38cf307c1f20: "Hold off tlb flush IPIs while switching mm's"
        body = (Step(f, "mmgrab(mm)", _then(_use_begin, _use_grab)),
                Step(f, "task_lock(tsk); local_irq_disable(); active_mm = tsk->active_mm; tsk->active_mm = mm; "
                        "tsk->mm = mm", _use_store, irqs_off=True),
                Step(f, "switch_mm_irqs_off(active_mm, mm, tsk); local_irq_enable(); task_unlock(tsk)", _use_switch))
    else:
        # before it (v5.8): the stores and switch_mm() with irqs on, under task_lock only
        body = (Step(f, "task_lock(tsk); active_mm = tsk->active_mm; mmgrab(mm); tsk->active_mm = mm; "
                        "tsk->mm = mm", _then(_use_begin, _use_grab_store)),) + _use_switch_irqs_on(k, f)
    return body + (Step(f, "mmdrop_lazy_tlb(active_mm)", _use_drop, label="drop"),)


def _use_switch_irqs_on(k, f) -> tuple:
    """switch_mm() with irqs on, before 38cf307c1f20: x86's (x86.py) as two steps, since an IPI
    can land inside it (LT-15)."""
    if hasattr(k.arch, "switch_mm_state_ok"):
        return (Step("switch_mm", "percpu_write(cpu_tlbstate.state, TLBSTATE_OK)", _use_state_ok),
                Step("switch_mm", "percpu_write(cpu_tlbstate.active_mm, next); cpumask_set_cpu(cpu, "
                                  "mm_cpumask(next)); load_cr3(next->pgd); cpumask_clear_cpu(cpu, "
                                  "mm_cpumask(prev)); task_unlock(tsk)", _use_switch_finish))
    return (Step(f, "switch_mm(active_mm, mm, tsk); task_unlock(tsk)", _use_switch),)


def _use_state_ok(k, cpu):
    return "drop" if k.arch.switch_mm_state_ok(k, cpu, k.c_op_mm[cpu]) else None


def _use_switch_finish(k, cpu):
    k.arch.switch_mm_finish(k, cpu, k.c_op_mm[cpu])


# ================================================================ kthread_unuse_mm (kernel/kthread.c)
def _unuse_begin(k, cpu):
    t = k.step_args[0]
    m = k.kthread_unuse_mm_checks(t)
    _set(k, cpu, c_op_task=t, c_op_mm=m)
    k._op(k.t_name[t], "kthread_unuse_mm", "{} stays active_mm, now lazily", k.m_name[m])


def _unuse_clear(k, cpu):
    t, m = k.c_op_task[cpu], k.c_op_mm[cpu]
    k.kthread_unuse_mm_clear(t, cpu, m)
    if k.version.has(V.LAZY_TLB_HELPERS):
        _hold(k, m, count=1)            # the use reference, dropped by the mmdrop at the end
    # (before aa464ba9a1e4 the use reference simply becomes the lazy one: nothing held)


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
    if not k.version.has(V.LAZY_TLB_HELPERS):
        return body                     # before aa464ba9a1e4 (v6.4): no mmgrab_lazy_tlb, no mmdrop
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
    if k.arch.name == "sparc64" and not k.version.has(V.SPARC64_NO_CPUMASK_CLEAR):
        return sparc64_flush(k)
    return (Step(f, "decide the targets, flush locally, send the IPIs", _flush_send),
            _wait(f),
            Step(f, "the IPIs ran: the flush returns", _flush_return))


# ================================================================ membarrier (kernel/sched/membarrier.c)
# membarrier_global_expedited's loop over the other online CPUs, one row per read it makes of
# another CPU (227a4aadc75b's diff, tip-bot mail of 2019-09-27: both sides).  The loop variable
# is c_op_cpu, tmpmask c_op_cpus; p is c_op_task and, before 227a4aadc75b, the bare mm pointer
# read from p->mm c_op_mm: no reference is taken (_hold is not called), which is the bug (LT-09).
# The loop's reads mark what they read as touched, so a reduction sees them.
def _mb_next(k, cpu, after: int) -> str:
    """for_each_online_cpu: the next CPU after ``after`` (cpus_read_lock holds hotplug off)."""
    rest = k.membarrier_loop_cpus(cpu, after)
    if not rest:
        return "send"
    _set(k, cpu, c_op_cpu=rest[0])
    return "cpu"


def _mb_begin(k, cpu):
    if not k.membarrier_global_expedited_checks(cpu):
        return DONE
    return _mb_next(k, cpu, -1)


def _mb_begin_rcu(k, cpu):
    if not k.membarrier_global_expedited_checks(cpu):
        return DONE
    k.rcu_read_lock(cpu)                # 227a4aadc75b: around the whole loop ("As suggested by Linus")
    return _mb_next(k, cpu, -1)


def _mb_curr(k, cpu):
    c = k.c_op_cpu[cpu]
    k.rcu_read_lock(cpu)
    k.d_cpus.add(c)
    _set(k, cpu, c_op_task=k.c_curr[c])   # the task_struct stays valid until rcu_read_unlock


def _mb_unlock_next(k, cpu) -> str:
    k.rcu_read_unlock(cpu)
    _set(k, cpu, c_op_task=None, c_op_mm=None)
    return _mb_next(k, cpu, k.c_op_cpu[cpu])


def _mb_mm(k, cpu):
    p = k.c_op_task[cpu]
    k.d_tasks.add(p)
    m = k.t_mm[p]
    if m is None:
        return _mb_unlock_next(k, cpu)  # `p->mm &&` is false: skipped
    _set(k, cpu, c_op_mm=m)             # a bare pointer: the mm may be freed before the next step


def _mb_state(k, cpu):
    if k.membarrier_read_state(cpu, k.c_op_mm[cpu]):
        _set(k, cpu, c_op_cpus=k.c_op_cpus[cpu] | 1 << k.c_op_cpu[cpu])
    return _mb_unlock_next(k, cpu)


def _mb_rq(k, cpu):
    c = k.c_op_cpu[cpu]
    k.d_cpus.add(c)
    k.d_tasks.add(k.c_curr[c])
    skip = k.membarrier_skip(c)
    if skip:
        k.membarrier_missed(c, skip)
    else:
        _set(k, cpu, c_op_cpus=k.c_op_cpus[cpu] | 1 << c)
    return _mb_next(k, cpu, c)


def _mb_send(k, cpu):
    if k.c_rcu_reader[cpu]:
        k.rcu_read_unlock(cpu)
    mask = k.c_op_cpus[cpu]
    _set(k, cpu, c_op_cpu=None, c_op_cpus=0)
    k.membarrier_ipi_mb(cpu, [c for c in range(k.ncpus) if mask >> c & 1])


def membarrier(k) -> tuple:
    f = "membarrier_global_expedited"
    if not k.version.has(V.MEMBARRIER_RQ_STATE):
        # before 227a4aadc75b (v5.3): rcu_read_lock() per CPU, and the mm read through p->mm
        return (Step(f, "cpus_read_lock(); for_each_online_cpu(cpu) but this one", _mb_begin),
                Step(f, "rcu_read_lock(); p = rcu_dereference(cpu_rq(cpu)->curr)", _mb_curr, label="cpu"),
                Step(f, "p->mm (the pointer, no reference taken)", _mb_mm),
                Step(f, "atomic_read(&p->mm->membarrier_state) & MEMBARRIER_STATE_GLOBAL_EXPEDITED: "
                        "__cpumask_set_cpu(cpu, tmpmask); rcu_read_unlock()", _mb_state),
                Step(f, "smp_call_function_many(tmpmask, ipi_mb, NULL, 1); cpus_read_unlock()", _mb_send,
                     label="send"))
    test = "!p->mm" if k.version.has(V.MEMBARRIER_USE_MM) else "p->flags & PF_KTHREAD"
    return (Step(f, "cpus_read_lock(); rcu_read_lock(); for_each_online_cpu(cpu) but this one", _mb_begin_rcu),
            Step(f, f"READ_ONCE(cpu_rq(cpu)->membarrier_state); p = rcu_dereference(cpu_rq(cpu)->curr); {test}: "
                    f"__cpumask_set_cpu(cpu, tmpmask)", _mb_rq, label="cpu"),
            Step(f, "rcu_read_unlock(); smp_call_function_many(tmpmask, ipi_mb, NULL, 1); cpus_read_unlock()",
                 _mb_send, label="send"))


def rcu_ready(k) -> list:
    """The CPUs whose queued RCU callbacks (PREEMPT_RT's __mmdrop_delayed) may run: the grace period
    ended (no CPU that was inside rcu_read_lock() when call_rcu ran still is) and their irqs are on."""
    if not k.version.config("PREEMPT_RT"):
        return []           # only mmdrop_sched on RT queues one: no scan of every mm after each step
    cpus = {c for c in k.m_rcu_cpu if c is not None}
    return [c for c in sorted(cpus) if not k.c_irqs_off[c] and k.rcu_ready(c)]


# ================================================================ cpu_down (kernel/cpu.c)
# One row per stage of Kernel.offline_stages (the release decides which there are); the effects
# are those stages.  `offline cpuN` is cpuN's statement (in a block, only cpuN's), so the
# operation is in flight on the CPU going down, as the kernel's cpuhp/N thread is; finish_cpu
# runs on the control CPU (Kernel.finish_cpu says which).  take_cpu_down is one step:
# stop_machine runs it with irqs off on the CPU going down while every other online CPU spins in
# multi_cpu_stop with irqs off, so nothing comes between its parts.  Irqs off from take_cpu_down
# on: do_idle calls arch_cpu_idle_dead with irqs off, and an offline CPU takes no interrupt.
def _down_code(k, name: str) -> tuple:
    """(code, irqs_off) of stage ``name``'s row on this kernel."""
    fixed = k.version.has(V.SCHED_FORCE_INIT_MM)
    if name == "sched_cpu_wait_empty":
        return ("balance_hotplug_wait(); sched_force_init_mm(): mmgrab_lazy_tlb(&init_mm); local_irq_disable(); "
                "current->active_mm = &init_mm; switch_mm_irqs_off(mm, &init_mm); local_irq_enable(); "
                "mmdrop_lazy_tlb(mm)", False)
    if name == "take_cpu_down":
        trim = k.arch.name == "powerpc" and k.version.has(V.PPC_TRIM_OFFLINE)
        return ("stop_machine: __cpu_disable()" + (" (cleanup_cpu_mmu_context -> clear_tasks_mm_cpumask)" if trim
                                                   else "") +
                ", set_cpu_online(cpu, false); the CPU_DYING callbacks (smpcfd_dying_cpu runs the IPIs still "
                "queued here)", True)
    if name == "arch_cpu_idle_dead":
        return ("do_idle: cpuhp_report_idle_dead(); arch_cpu_idle_dead()" +
                (": the mm was left at sched_cpu_wait_empty" if fixed else " -> idle_task_exit()"), True)
    drop = "mmdrop_lazy_tlb(mm)" if k.version.has(V.LAZY_TLB_HELPERS) else "mmdrop(mm)"
    return ("on the control CPU: " + ("WARN_ON(mm != &init_mm); idle->active_mm = NULL" if fixed else
                                      "idle->active_mm = &init_mm") + "; " + drop, False)


def _down_begin(k, cpu):
    k.cpu_down_checks(k.step_args[0])


def _stage(name: str) -> Callable:
    def run(k, cpu):
        getattr(k, name)(cpu)
        if name == "take_cpu_down":
            for sender in range(k.ncpus):       # smpcfd_dying_cpu: __flush_smp_call_function_queue
                if k.c_ipi_from[cpu] >> sender & 1:
                    k.run_ipi(cpu, sender)
    run.__name__ = name
    return run


def cpu_down(k) -> tuple:
    rows = []
    for stage in k.offline_stages():
        name = stage.__name__
        code, irqs_off = _down_code(k, name)
        run = _stage(name)
        rows.append(Step(name, code, _then(_down_begin, run) if not rows else run, irqs_off=irqs_off))
    return tuple(rows)


# sparc64 before bafb056ce279 (arch/sparc/kernel/smp_64.c smp_flush_tlb_pending, read in the v4.19
# stable backport's diff): the single-user test and the cpumask_copy are two steps, get_cpu()
# (preemption off, irqs on) between them; the cross call is one step, its xcalls atomic (LT-03).
# sparc64 says which CPUs its flushes reach (tlb_generations): nothing else to catch up here
def _sparc_test(k, cpu):
    m, tables = k.step_args
    k.flush_begin(m, tables, cpu)
    _set(k, cpu, c_op_mm=m)
    if k.arch.flush_test(k, m, cpu):
        _set(k, cpu, c_op_flushing=m)
        return None                 # the next row: the reset
    k.flush_returned(m)
    return DONE


def _sparc_reset(k, cpu):
    m = k.c_op_mm[cpu]
    k.this_cpu = cpu
    k.arch.flush_reset(k, m, cpu)
    _set(k, cpu, c_op_flushing=None)
    k.flush_returned(m)


def sparc64_flush(k) -> tuple:
    f = "smp_flush_tlb_pending"
    return (Step(f, "get_cpu(); if (mm == current->mm && atomic_read(&mm->mm_users) == 1) ... else "
                    "smp_call_function_many(mm_cpumask(mm), tlb_pending_func); __flush_tlb_pending; put_cpu()",
                 _sparc_test),
            Step(f, "cpumask_copy(mm_cpumask(mm), cpumask_of(cpu)); __flush_tlb_pending(ctx, nr, vaddrs); "
                    "put_cpu()", _sparc_reset))


# ================================================================ the tables
#: statement type -> (the operation's name in c_op, its table, its arguments from the statement)
OPERATIONS = {
    A.Exec: ("exec_mmap", exec_mmap),
    A.UseMm: ("kthread_use_mm", kthread_use_mm),
    A.UnuseMm: ("kthread_unuse_mm", kthread_unuse_mm),
    A.Exit: ("exit_mm", exit_mm),
    A.Flush: ("flush_tlb_mm_range", flush),
    A.Membarrier: ("membarrier_global_expedited", membarrier),
    A.Offline: ("cpu_down", cpu_down),
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
    # `membarrier register` is one step (its IPIs, ipi_sync_rq_state, change only the runqueue's copy)
    return type(st) in OPERATIONS and not (type(st) is A.Membarrier and st.register)


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
    """(target, sender) of every queued IPI whose target's irqs are on, targets in order, each
    target's senders lowest first; any of a target's may run first (kernel/smp.c: the senders'
    llist_adds to its call_single_queue race), `mmscn run` takes the first."""
    out = []
    for c in range(k.ncpus):
        senders = k.c_ipi_from[c]
        if senders and not k.c_irqs_off[c]:
            out += [(c, s) for s in range(k.ncpus) if senders >> s & 1]
    return out


def args_of(k, st, cpu: Optional[int], new_mm_name: Callable) -> tuple:
    """The first step's arguments, from the statement (task and mm indexes as the kernel has them)."""
    from .conditions import cpu_of, mm_of, task_of
    if type(st) is A.Exec:
        return (task_of(k, st.task), new_mm_name(k, st))
    if type(st) is A.UseMm:
        return (task_of(k, st.task), mm_of(k, st.mm))
    if type(st) is A.Flush:
        return (mm_of(k, st.mm), st.tables)
    if type(st) in (A.Membarrier, A.Offline):
        return (cpu_of(k, st.cpu, cpu),)
    return (task_of(k, st.task),)


def op_cpu(k, st, cpu: Optional[int], args: tuple) -> Optional[int]:
    """The CPU the operation runs on: the block's, else its task's (a top-level exec runs on
    the CPU its task runs on); None: it runs as one step (a flush from no CPU)."""
    if cpu is not None:
        return cpu
    if type(st) is A.Flush:
        return None
    if type(st) in (A.Membarrier, A.Offline):
        return args[0]              # at the top level: the CPU that calls membarrier, the CPU going down
    return k.t_cpu[args[0]]
