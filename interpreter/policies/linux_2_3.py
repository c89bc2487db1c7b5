"""linux-2.3: the 1999 scheduler of Documentation/mm/active_mm.rst, as it stood
through 2.4 (kernel/sched.c schedule(), 2.4.x).

To a kernel task: BUG_ON(next->active_mm), borrow prev's active_mm and
atomic_inc its mm_count.  To a user task: BUG_ON(next->active_mm != next->mm),
switch_mm.  Then, if prev had no mm: prev->active_mm = NULL and mmdrop at
once, before switch_to; there is no rq->prev_mm.  So a switch between two
kernel threads costs two atomics where today's transfer costs none, while the
counters after each statement are the same as generic's.  exit_mm grabs
before mmput as today.  kthread_use_mm did not exist yet.
(The exact 2.3.13 code was not read; 2.4's is what this follows.)
"""
from ..kernel import C_LAZY, Refusal, Violation
from .base import Policy


class Linux23(Policy):
    name = "linux-2.3"
    summary = "the 1999 scheduler (2.3.13 to 2.4): grab on every lazy switch, drop at once"
    has_kthread_use_mm = False
    # 2.4 exec_mmap: `if (old_mm && atomic_read(&old_mm->mm_users) == 1) { mm_release(); exit_mmap(old_mm); return 0; }`
    exec_reuses_sole_mm = True
    has_cpu_hotplug = False

    def unlazy(self, k, cpu):
        # 2.4 had no way to push a lazy task onto init_mm: it kept the borrowed mm until switched away
        raise Refusal("linux-2.3 has no sched_force_init_mm: a lazy task keeps its borrowed mm until it is "
                      "switched away", "schedule (2.4 kernel/sched.c)")

    def context_switch(self, k, cpu, prev, nxt):
        oldmm = k.t_active[prev]
        pn, nn = k.t_name[prev], k.t_name[nxt]
        if k.t_mm[nxt] is None:
            if k.t_active[nxt] is not None:
                k.violations.append(Violation("active_mm-not-cleared", f"{nn} is a kernel task switched in "
                                    f"with active_mm {k.mm_label(k.t_active[nxt])} still set",
                                    "schedule (2.4 kernel/sched.c): BUG_ON(next->active_mm)"))
            k._op(f"cpu{cpu}", "schedule", f"{pn} -> {nn}: {nn} borrows {k.mm_label(oldmm)}, "
                  f"atomic_inc(&oldmm->mm_count)")
            k._set_active_mm(nxt, oldmm)
            k.mmgrab(oldmm, "atomic_inc")
            self.enter_lazy_tlb(k, cpu, oldmm, nxt)
            k.cost[C_LAZY] += 1
        else:
            if k.t_active[nxt] != k.t_mm[nxt]:
                k.violations.append(Violation("active_mm-mismatch", f"{nn} has mm {k.mm_label(k.t_mm[nxt])} "
                                    f"but active_mm {k.mm_label(k.t_active[nxt])}",
                                    "schedule (2.4 kernel/sched.c): BUG_ON(next->active_mm != mm)"))
            k._op(f"cpu{cpu}", "schedule", f"{pn} -> {nn}: switch_mm {k.mm_label(oldmm)} -> "
                  f"{k.mm_label(k.t_mm[nxt])}")
            self.switch_mm_irqs_off(k, cpu, oldmm, k.t_mm[nxt], nxt)
        if k.t_mm[prev] is None:
            k._set_active_mm(prev, None)
            if oldmm is not None:
                k.mmdrop(oldmm, "mmdrop")
