"""alpha: one PALcode context switch loads registers and page tables together.

Follows arch/alpha/include/asm/mmu_context.h (ev5_switch_mm, ev5_activate_mm,
init_new_context, enter_lazy_tlb), arch/alpha/mm/fault.c
(__load_new_mm_context) and arch/alpha/include/asm/switch_to.h /
kernel/entry.S (alpha_switch_to: call_pal PAL_swpctx), mainline as of
v6.15-v6.17 (EV4 support, ev4_switch_mm, was removed in v6.14; EV5/EV6 shown).

The counters are generic's (MMU_LAZY_TLB_REFCOUNT).  The page-table base
the hardware uses comes from the PCB of the task switched in: swpctx loads
kernel stack, ASN and ptbr in one operation, so every context switch, a lazy
one included, is one context load (counted as a page-table load).  Hence
the PCB's ptbr is a per-task field (``t_ptbr``): init_new_context writes it
for a forked child, enter_lazy_tlb(mm, tsk) writes the borrowed mm into the
incoming kernel thread's PCB (why the hook takes the task), activate_mm
(exec) rewrites the current PCB and reloads it at once.  ev5_switch_mm only
assigns an ASN: it never writes ptbr, so a switch_mm outside a context
switch (kthread_use_mm) leaves the hardware on the page tables it had.
alpha has no CPU hotplug, so sched_force_init_mm (`unlazy`, `offline`)
never runs there.

Flushes (arch/alpha/kernel/smp.c flush_tlb_mm, ipi_flush_tlb_mm;
include/asm/tlbflush.h flush_tlb_current): no mm_cpumask.  A CPU whose
current->active_mm is the mm flushes with __load_new_mm_context, which
rewrites the current PCB's ptbr and reloads it: the way a kthread inside
kthread_use_mm gets onto the mm's page tables (switching it away and back
reloads the stale ptbr; check_mmu_context's reload is not modelled).  The
flushing CPU stops there when mm_users <= 1 (it only drops the other CPUs'
ASNs); otherwise smp_call_function IPIs every other online CPU.  exit_mmap's
final flush is flush_tlb_mm (asm-generic tlb_flush, fullmm).
"""
from ..kernel import INIT_MM, Violation
from .base import Policy


class Alpha(Policy):
    name = "alpha"
    summary = "MMU_LAZY_TLB_REFCOUNT; swpctx loads registers and the PCB's ptbr together on every switch"
    has_cpu_hotplug = False
    hardware_fields = ("loaded_mm", "ptbr")

    def cpu_up(self, k, cpu):
        k.hw.set_ptbr(k.c_curr[cpu], INIT_MM)   # the idle task's PCB holds init_mm's pgd

    def init_new_context(self, k, task, mm):
        # `if (tsk != current)`: the forked child's PCB gets the new pgd
        k.hw.set_ptbr(task, mm)
        k.hw.event(k.t_name[task], "init_new_context", f"PCB ptbr = {k.m_name[mm]}")

    def enter_lazy_tlb(self, k, cpu, mm, task):
        if mm is None:
            return
        k.hw.set_ptbr(task, mm)
        k.hw.event(k.t_name[task], "enter_lazy_tlb", f"PCB ptbr = {k.m_name[mm]} (borrowed)")

    def switch_mm_irqs_off(self, k, cpu, prev_mm, next_mm, task):
        # ev5_switch_mm: a valid ASN for next_mm on this CPU into the PCB; ptbr untouched
        k.hw.switch_mm(cpu)
        k.hw.event(f"cpu{cpu}", "ev5_switch_mm", f"ASN of {k.m_name[next_mm]} into the PCB; ptbr unchanged")

    def activate_mm(self, k, cpu, prev_mm, next_mm, task):
        # ev5_activate_mm -> __load_new_mm_context: new ASN, PCB ptbr, swpctx to itself
        hw = k.hw
        hw.switch_mm(cpu)
        hw.set_ptbr(task, next_mm)
        hw.load(cpu, next_mm)
        hw.event(f"cpu{cpu}", "__load_new_mm_context", f"PCB ptbr = {k.m_name[next_mm]}, reloaded (__reload_thread)")

    def switch_to(self, k, cpu, prev, nxt):
        ptbr = k.t_ptbr[nxt]
        k.hw.load(cpu, k.c_loaded[cpu] if ptbr is None else ptbr)
        k.hw.event(f"cpu{cpu}", "alpha_switch_to", f"swpctx: {k.t_name[nxt]}'s PCB, ptbr {k.mm_label(ptbr)}")

    def exit_mmap(self, k, mm):
        # tlb_finish_mmu -> tlb_flush (asm-generic, fullmm) -> flush_tlb_mm
        k.hw.event(k.m_name[mm], "tlb_flush", "exit_mmap's final flush: flush_tlb_mm")
        self.flush_tlb_mm_range(k, mm, True, k.this_cpu)

    def flush_tlb_mm_range(self, k, mm, freed_tables, from_cpu):
        # flush_tlb_mm: the same for a page-table free (alpha has no separate path)
        if from_cpu is not None and self._runs_on(k, from_cpu, mm):
            self.flush_tlb_current(k, from_cpu, mm, "local")
            if k.m_users[mm] <= 1:
                k.hw.event(f"cpu{from_cpu}", "flush_tlb_mm", f"mm_users of {k.m_name[mm]} <= 1: the other CPUs' "
                           f"ASNs for it are dropped, no IPI")
                return
        for c in range(k.ncpus):                  # smp_call_function: every other online CPU
            if c == from_cpu or not k.c_online[c]:
                continue
            k.hw.ipi(c)
            if self._runs_on(k, c, mm):          # ipi_flush_tlb_mm (asn_locked() only inside a switch)
                self.flush_tlb_current(k, c, mm, "IPI")
            else:
                k.hw.event(f"cpu{c}", "ipi_flush_tlb_mm", f"flush_tlb_other: {k.m_name[mm]}'s ASN on cpu{c} dropped")

    @staticmethod
    def _runs_on(k, cpu, mm):
        return k.t_active[k.c_curr[cpu]] == mm

    def flush_tlb_current(self, k, cpu, mm, how):
        # ev5_flush_tlb_current -> __load_new_mm_context: new ASN, current PCB ptbr = mm, __reload_thread
        t = k.c_curr[cpu]
        k.hw.set_ptbr(t, mm)
        k.hw.load(cpu, mm)
        k.hw.event(f"cpu{cpu}", "flush_tlb_current", f"{how}: __load_new_mm_context, {k.t_name[t]}'s PCB ptbr = "
                   f"{k.m_name[mm]}, reloaded")

    def loaded_freed(self, k, cpu, m, function):
        t = k.c_curr[cpu]
        return Violation("use-after-free", f"cpu{cpu} runs {k.t_name[t]} on the page tables of {k.m_name[m]} "
                         f"(the ptbr its last swpctx loaded), but {k.m_name[m]} was freed",
                         "ev5_switch_mm (arch/alpha/include/asm/mmu_context.h) never rewrites pcb.ptbr", m)
