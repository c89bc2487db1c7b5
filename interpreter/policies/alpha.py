"""alpha: one PALcode context switch loads registers and page tables together.

Follows arch/alpha/include/asm/mmu_context.h (ev5_switch_mm, ev5_activate_mm,
init_new_context, enter_lazy_tlb), arch/alpha/mm/fault.c
(__load_new_mm_context) and arch/alpha/include/asm/switch_to.h /
kernel/entry.S (alpha_switch_to: call_pal PAL_swpctx), mainline as of
v6.15-v6.17 (EV4 support, ev4_switch_mm, was removed in v6.14; EV5/EV6 shown).
Read for the flushes: arch/alpha/kernel/smp.c (stored commits 00ee03092a6e,
e1b73cba13a0), include/asm/tlbflush.h (2cc2c3cb54de), mmu_context.h
(0734f5c7eb15), switch_to.h (107d3e535874: switch_to is alpha_switch_to then
check_mmu_context).

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
include/asm/tlbflush.h flush_tlb_current, flush_tlb_other): no mm_cpumask.
The flushing CPU, if its current->active_mm is the mm, flushes with
__load_new_mm_context (a new ASN, the current PCB's ptbr rewritten and
reloaded) and stops there when mm_users <= 1, only zeroing the other
CPUs' mm->context[cpu]; otherwise smp_call_function IPIs every other
online CPU.  ipi_flush_tlb_mm reloads only `if (mm == current->active_mm
&& !asn_locked())`; else flush_tlb_other zeroes mm->context[cpu] and
reloads nothing.  ev5_switch_mm sets cpu_data[cpu].asn_lock and only
check_mmu_context, run by switch_to after swpctx, clears it: a kernel
thread inside kthread_use_mm (a switch_mm without a switch_to) keeps it
set, so a flush IPI there takes flush_tlb_other and the CPU keeps the page
tables and TLB of its last swpctx (check_mmu_context's reload at the next
switch is not modelled).  exit_mmap's final flush is flush_tlb_mm
(asm-generic tlb_flush, fullmm).

Mainline alpha never gained mm_cpumask: Nicholas Piggin's "[RFC PATCH 2/6]
alpha: implement simple mm_cpumask TLB flush filter" (linux-alpha,
2023-05-24) was read and no merge of it was found; the 2026 stable review
of dd5712f3379c ("alpha: fix user-space corruption during memory
compaction", [PATCH 6.19 074/844]) still shoots down with on_each_cpu and
per-CPU mm->context[] (docs/architectures.md).

ASN versions (cpu_last_asn, mm->context[cpu]) are per CPU and per mm; the
model does not keep them, so `rollover` is refused here.  The flush
generations are kept: a swpctx or __load_new_mm_context starts the loaded
mm afresh (a new ASN, or one that every flush since reached), a
flush_tlb_other leaves the CPU's TLB as it was.
"""
from ..kernel import INIT_MM, Violation
from .base import Policy


class Alpha(Policy):
    name = "alpha"
    summary = "MMU_LAZY_TLB_REFCOUNT; swpctx loads registers and the PCB's ptbr together on every switch"
    has_cpu_hotplug = False
    hardware_fields = ("loaded_mm", "ptbr", "asn_lock")
    tlb_generations = True      # ipi_flush_tlb_mm decides per CPU: flush_tlb_current or flush_tlb_other

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
        # ev5_switch_mm: cpu_data[cpu].asn_lock = 1; a valid ASN for next_mm on this CPU into the PCB;
        # ptbr untouched
        k.hw.switch_mm(cpu)
        k.hw.set_asn_lock(cpu, True)
        k.hw.event(f"cpu{cpu}", "ev5_switch_mm", f"asn_lock = 1; ASN of {k.m_name[next_mm]} into the PCB; "
                   f"ptbr unchanged")

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
        if k.c_asn_lock[cpu]:
            k.hw.set_asn_lock(cpu, False)       # check_mmu_context: asn_lock = 0 after the switch

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
        # smp_call_function: every other online CPU (granularity step: queued, and flush_tlb_mm waits)
        k.hw.smp_call([c for c in range(k.ncpus) if c != from_cpu and k.c_online[c]], "ipi_flush_tlb_mm", mm)

    def ipi_flush_tlb_mm(self, k, c, mm):
        """arch/alpha/kernel/smp.c: `if (mm == current->active_mm && !asn_locked()) flush_tlb_current(mm);
        else flush_tlb_other(mm);`"""
        if self._runs_on(k, c, mm) and not k.c_asn_lock[c]:
            self.flush_tlb_current(k, c, mm, "IPI")
        elif self._runs_on(k, c, mm):
            k.hw.event(f"cpu{c}", "ipi_flush_tlb_mm", f"asn_locked() (ev5_switch_mm since the last switch_to): "
                       f"flush_tlb_other: {k.m_name[mm]}'s ASN on cpu{c} dropped, nothing reloaded")
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
