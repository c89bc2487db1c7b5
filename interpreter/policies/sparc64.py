"""sparc64: TLB context numbers, a TSB per mm, and mm_cpumask as "may hold this context".

Follows arch/sparc/include/asm/mmu_context_64.h (switch_mm, enter_lazy_tlb,
activate_mm), arch/sparc/kernel/smp_64.c (smp_flush_tlb_pending,
smp_flush_tlb_page, smp_flush_tlb_mm, xcall_deliver, cpu_play_dead) and
arch/sparc/mm/tlb.c (tlb_batch_add: nothing is queued for a full-mm
teardown).  Read: smp_64.c and mmu_context_64.h as stored for torvalds/linux
(a v4.x tree: per_cpu_secondary_mm, the 2017 context-wrap code), and the
diff of bafb056ce279 (v5.10) in its 4.19 stable backport (2020-11-03), which
removes the three cpumask_copy()s and changes nothing else.

MMU_LAZY_TLB_REFCOUNT, like generic; enter_lazy_tlb does nothing.  Context
numbers are global, so a CPU that switches to an mm whose mm_cpumask lacks
it flushes that context from its own TLB first ("any time a processor runs a
context on an address space for the first time"): switch_mm sets the bit and
runs __flush_tlb_mm.  It always reloads the secondary context and the TSB
(tsb_context_switch), prev == next included; for init_mm it only sets
per_cpu_secondary_mm and returns (the loaded mm the model shows is that
pointer: kernel code runs in the nucleus context and never uses the user
TSB it leaves behind).  A flush cross-calls the other online CPUs of
mm_cpumask.  Before bafb056ce279 a flush by the only user of its own mm
(``mm == current->mm && mm_users == 1``; smp_flush_tlb_mm, the hugetlb path,
tests mm_users alone) instead reset mm_cpumask to this CPU and flushed
locally: the other CPUs flush when they next switch to the mm.  That is
right for a lazy CPU, which switches before it runs the mm's user code, and
wrong for a CPU that took mm_users with mmget_not_zero and kthread_use_mm
after the test (io_uring's SQPOLL thread; LT-03): it keeps running the mm
outside the mask, and later flushes miss it.  The rule ``mm_cpumask`` here
is that: a CPU whose current task runs an mm (its own, or through
kthread_use_mm) is in the mm's mask; the flush that then misses it breaks
``stale-tlb``.  Under `granularity step` the test and the reset are two
steps (flush_test, flush_reset; docs/kernel-model.md "smp_flush_tlb_pending
under granularity step").  A switch_mm leaves the CPU's TLB up to date for the mm
(the model's flush generations): in the mask it was reached by every flush,
out of it it flushes the context.

Not modelled: the context allocator beyond what the bug needs (a fresh mm
has an empty mask, so its first switch on each CPU flushes; the version wrap
of get_new_mmu_context and its cpumask reset), the TSB itself, hugetlb.
"""
from ..kernel import INIT_MM, Violation
from .. import version as V
from .base import Policy


class Sparc64(Policy):
    name = "sparc64"
    summary = "MMU_LAZY_TLB_REFCOUNT; global context numbers, a CPU new to an mm's mask flushes it (smp_64.c)"
    hardware_fields = ("loaded_mm", "cpumask")
    tlb_generations = True      # the cross call says which CPUs a flush reaches

    def switch_mm_irqs_off(self, k, cpu, prev_mm, next_mm, task):
        hw = k.hw
        hw.switch_mm(cpu)
        if next_mm == INIT_MM:
            hw.load(cpu, INIT_MM)
            hw.event(f"cpu{cpu}", "switch_mm", "per_cpu_secondary_mm = init_mm; nothing loaded")
            return
        hw.load(cpu, next_mm)       # tsb_context_switch_ctx: secondary context and TSB, always
        if hw.in_cpumask(next_mm, cpu):
            hw.event(f"cpu{cpu}", "switch_mm", f"tsb_context_switch: {k.m_name[next_mm]}")
            return
        hw.cpumask_set(next_mm, cpu)
        hw.flush_tlb(cpu)
        hw.event(f"cpu{cpu}", "switch_mm", f"tsb_context_switch: {k.m_name[next_mm]}; cpu{cpu} was not in its "
                 f"mm_cpumask: set, and __flush_tlb_mm of its context")

    def exit_mmap(self, k, mm):
        k.hw.event(k.m_name[mm], "tlb_batch_add", "fullmm: nothing queued, no flush; destroy_context frees "
                   "the context number")

    def flush_tlb_mm_range(self, k, mm, freed_tables, from_cpu):
        """smp_flush_tlb_pending (flush_tlb_pending of a tlb_batch): the single-user shortcut
        before bafb056ce279, else smp_call_function_many(mm_cpumask(mm)); then the local flush."""
        if from_cpu is not None and self.single_user(k, mm, from_cpu) \
                and not k.version.has(V.SPARC64_NO_CPUMASK_CLEAR):
            self.cpumask_copy(k, mm, from_cpu)
            self.flush_context(k, from_cpu, mm)
        else:
            self.cross_call(k, mm, from_cpu)

    def cross_call(self, k, mm, from_cpu):
        """smp_call_function_many(mm_cpumask(mm), tlb_pending_func), then __flush_tlb_pending here."""
        hw, name = k.hw, k.m_name[mm]
        targets = [c for c in hw.cpus_in_mask(mm) if c != from_cpu]
        hw.event(name, "smp_flush_tlb_pending", "smp_call_function_many(mm_cpumask): "
                 + (", ".join(f"cpu{c}" for c in targets) or "no other CPU"))
        for c in targets:
            hw.ipi(c)
            self.flush_context(k, c, mm)
            hw.event(f"cpu{c}", "tlb_pending_func", f"__flush_tlb_pending of {name}'s context")
        if from_cpu is not None:
            self.flush_context(k, from_cpu, mm)

    # granularity step (interpreter/steps.py flush_steps): before bafb056ce279 the test and the
    # reset are two steps, with preemption off (get_cpu) and irqs on between them, and another
    # CPU's mmget_not_zero + kthread_use_mm can run in between (LT-03)
    def flush_test(self, k, mm, cpu):
        """``if (mm == current->mm && atomic_read(&mm->mm_users) == 1)``: True takes the reset."""
        if not k.version.has(V.SPARC64_NO_CPUMASK_CLEAR) and self.single_user(k, mm, cpu):
            k.hw.event(k.m_name[mm], "smp_flush_tlb_pending", f"mm == current->mm && mm_users == 1 on cpu{cpu}: "
                       f"the single-user path")
            return True
        self.cross_call(k, mm, cpu)
        return False

    def flush_reset(self, k, mm, cpu):
        """The single-user path, after its test: cpumask_copy, then __flush_tlb_pending here."""
        self.cpumask_copy(k, mm, cpu)
        self.flush_context(k, cpu, mm)

    @staticmethod
    def flush_context(k, cpu, mm):
        """__flush_tlb_pending by context number: what ``cpu`` holds of ``mm``, whatever it has loaded."""
        if k.c_loaded[cpu] == mm:
            k.hw.flush_tlb(cpu)

    @staticmethod
    def single_user(k, mm, cpu):
        """``mm == current->mm && atomic_read(&mm->mm_users) == 1`` on ``cpu``."""
        return k.t_mm[k.c_curr[cpu]] == mm and k.m_users[mm] == 1

    def cpumask_copy(self, k, mm, cpu):
        """cpumask_copy(mm_cpumask(mm), cpumask_of(cpu)): every other CPU leaves the mask."""
        hw = k.hw
        for c in range(k.ncpus):
            if c != cpu and hw.in_cpumask(mm, c):
                hw.cpumask_clear(mm, c)
        if not hw.in_cpumask(mm, cpu):
            hw.cpumask_set(mm, cpu)
        hw.event(k.m_name[mm], "smp_flush_tlb_pending", f"mm == current->mm && mm_users == 1: "
                 f"cpumask_copy(mm_cpumask, cpumask_of(cpu{cpu})), local flush only")

    def check(self, k, out, touched_cpus, touched_mms):
        super().check(k, out, touched_cpus, touched_mms)
        for cpu in range(k.ncpus):
            t = k.c_curr[cpu]
            m = k.t_mm[t]
            # (granularity step: kthread_use_mm between its stores and its switch_mm has not loaded m yet)
            if k.c_online[cpu] and m is not None and not k.m_freed[m] and not k.hw.in_cpumask(m, cpu) \
                    and (k.c_op[cpu] is None or k.c_loaded[cpu] == m):
                out.append(Violation("mm_cpumask", f"cpu{cpu} runs {k.t_name[t]} on {k.m_name[m]} but is not in "
                                     f"its mm_cpumask: the cross call of the next flush of {k.m_name[m]} misses "
                                     f"cpu{cpu}, whose TLB keeps the stale translations",
                                     "smp_flush_tlb_pending (arch/sparc/kernel/smp_64.c): cpumask_copy(mm_cpumask(mm), "
                                     "cpumask_of(cpu)) after the mm_users == 1 test", m))
