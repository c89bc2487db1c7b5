"""ia64: context numbers in the region registers (removed from the kernel in v6.7).

Follows arch/ia64/include/asm/mmu_context.h (get_mmu_context,
activate_context, reload_context, delayed_tlb_flush, enter_lazy_tlb;
stored commit 1a10390708d6), include/asm/tlbflush.h (flush_tlb_mm,
local_finish_flush_tlb_mm; 2cc2c3cb54de), arch/ia64/mm/tlb.c
(wrap_mmu_context, __flush_tlb_range, ia64_global_tlb_purge; 05909cd9a0c8,
a v5.x tree) and arch/ia64/kernel/smp.c (smp_flush_tlb_mm, smp_flush_tlb_all,
as in the v5.x copies), the code that v6.6, the last release with ia64, still
had.  The policy refuses kernels from v6.7 on (cf8e8658100d, one Change row:
``removed_by``); with no `kernel` line it runs v6.6.

Counters as generic; enter_lazy_tlb does nothing, so a kernel thread keeps
the region ids of the mm it borrows.  switch_mm is activate_mm, always
(no prev == next shortcut): activate_context -> get_mmu_context (a mm whose
mm->context is 0 gets the next number and an emptied cpu_vm_mask) and
reload_context (region registers 0-4), and this CPU joins cpu_vm_mask.
``asid_gen`` counts the mm's context numbers: flush_tlb_mm drops the number
(mm->context = 0; the model makes the count negative until
get_mmu_context hands out the next).

The model's `flush @M tables` is flush_tlb_mm, the whole address space
(what fork's copy-on-write and exit use): the number is dropped, then
smp_flush_tlb_mm, whose fast path for `mm == current->active_mm &&
mm_users == 1` reloads this CPU only; otherwise every CPU of cpu_vm_mask
runs local_finish_flush_tlb_mm (a CPU whose active_mm it is, a lazy one
too, takes the new number).  `flush @M` is flush_tlb_range, a purge of
pages: ptc.l on this CPU when cpu_vm_mask is only it, else ptc.ga, which
purges by the region ids *loaded on the flushing CPU*; a CPU whose active_mm
is not the mm (one outside the scenario) loads the mm's ids first
(activate_context in ia64_global_tlb_purge).  LT-14, cfbb1426bd76 "Hole in
IA64 TLB flushing from system threads": a kernel thread lazy on the mm
may hold an older number than the mm's owner now uses elsewhere; its purge
misses the owner's entries.  The fix's diff was not found: the model
follows the commit message, a system thread (current->mm == NULL) does not
purge by its own region ids but flushes every TLB (flush_tlb_all).  The
v5.x __flush_tlb_range read has no such test (docs/architectures.md).

`rollover cpuN`: the CPU's next get_mmu_context finds the numbers used up
and runs wrap_mmu_context: local_flush_tlb_all here, ia64_need_tlb_flush on
the others (each flushes in delayed_tlb_flush before it takes a number).
Live numbers stay valid across a wrap, so no mm changes its number.
"""
from typing import Optional

from ..kernel import INIT_MM
from ..version import IA64_REMOVED, IA64_SYSTEM_THREAD_FLUSH
from .base import Policy


class Ia64(Policy):
    name = "ia64"
    summary = "MMU_LAZY_TLB_REFCOUNT; context numbers in the region registers, ptc.ga purges by the loaded ids (to v6.6)"
    hardware_fields = ("loaded_mm", "cpumask", "tlb_gen", "asid_gen")
    tlb_generations = True
    newest_kernel: Optional[str] = "v6.6"
    removed_by = IA64_REMOVED

    # ---- the context switch
    def switch_mm_irqs_off(self, k, cpu, prev_mm, next_mm, task):
        k.hw.switch_mm(cpu)              # switch_mm is activate_mm: always
        self.activate_context(k, cpu, next_mm)

    def activate_context(self, k, cpu, mm):
        hw = k.hw
        if mm != INIT_MM and k.m_asid_gen[mm] <= 0:
            self.get_mmu_context(k, cpu, mm)
        if not hw.in_cpumask(mm, cpu):
            hw.cpumask_set(mm, cpu)
        hw.load(cpu, mm)                # reload_context: region registers 0-4 (and IA64_KR_PT_BASE)
        hw.set_asid(cpu, max(k.m_asid_gen[mm], 0))
        hw.event(f"cpu{cpu}", "activate_context", f"{k.m_name[mm]}'s context number "
                 f"#{max(k.m_asid_gen[mm], 0)} into the region registers")

    def get_mmu_context(self, k, cpu, mm):
        """mm->context == 0: a new number; cpus_clear(mm->cpu_vm_mask)."""
        hw = k.hw
        if k.c_rollover[cpu]:
            hw.set_rollover(cpu, False)
            hw.event(f"cpu{cpu}", "wrap_mmu_context", "numbers used up: flushmap recycled, ia64_need_tlb_flush "
                     "on the other CPUs, local_flush_tlb_all here")
            hw.flush_tlb(cpu)
        for c in range(k.ncpus):
            if hw.in_cpumask(mm, c):
                hw.cpumask_clear(mm, c)
        hw.new_asid(mm, -k.m_asid_gen[mm] + 1 if k.m_asid_gen[mm] < 0 else 1)

    def asid_rollover(self, k, cpu):
        k.hw.set_rollover(cpu, True)
        k.hw.event(f"cpu{cpu}", "get_mmu_context", "ia64_ctx.next reaches max_ctx: the next number wraps")

    # ---- flushes
    def exit_mmap(self, k, mm):
        # tlb_finish_mmu (fullmm) -> flush_tlb_mm: mm_users is 0, so only mm->context = 0
        self.flush_tlb_mm(k, mm, k.this_cpu)

    def flush_tlb_mm_range(self, k, mm, freed_tables, from_cpu):
        if freed_tables:
            self.flush_tlb_mm(k, mm, from_cpu)
        else:
            self.flush_tlb_range(k, mm, from_cpu)

    def _active_mm(self, k, cpu):
        return None if cpu is None else k.t_active[k.c_curr[cpu]]

    def flush_tlb_mm(self, k, mm, from_cpu):
        hw = k.hw
        if k.m_asid_gen[mm] > 0:
            hw.new_asid(mm, -k.m_asid_gen[mm])        # set_bit(mm->context, flushmap); mm->context = 0
        if k.m_users[mm] == 0:
            hw.event(k.m_name[mm], "flush_tlb_mm", "mm->context = 0; mm_users is 0 (exit_mmap): nothing else")
            return
        if self._active_mm(k, from_cpu) == mm and k.m_users[mm] == 1:
            hw.event(k.m_name[mm], "smp_flush_tlb_mm", f"mm_users 1 and cpu{from_cpu}'s active_mm: "
                     f"local_finish_flush_tlb_mm here only")
            self.activate_context(k, from_cpu, mm)
            return
        for c in hw.cpus_in_mask(mm) + ([] if from_cpu is None or hw.in_cpumask(mm, from_cpu) else [from_cpu]):
            if c != from_cpu:
                hw.ipi(c)
            active = self._active_mm(k, c) == mm
            hw.event(f"cpu{c}", "local_finish_flush_tlb_mm", ("IPI" if c != from_cpu else "local")
                     + (": the mm is active_mm here: a new number" if active else ": not active here"))
            if active:
                self.activate_context(k, c, mm)

    def flush_tlb_range(self, k, mm, from_cpu):
        hw = k.hw
        active = self._active_mm(k, from_cpu)
        kthread = from_cpu is not None and k.t_mm[k.c_curr[from_cpu]] is None
        if active == mm and kthread and k.version.has(IA64_SYSTEM_THREAD_FLUSH):
            hw.event(f"cpu{from_cpu}", "flush_tlb_range", f"a system thread flushes {k.m_name[mm]}, which it only "
                     f"borrows: flush_tlb_all, its region ids are not trusted")
            self.flush_tlb_all(k, from_cpu)
            return
        if active != mm:
            # ia64_global_tlb_purge: mm != active_mm -> activate_context(mm) for the purge (the
            # flusher outside the scenario's CPUs: its ids are the mm's current ones)
            ids = max(k.m_asid_gen[mm], 0)
            where = "a CPU outside the scenario" if from_cpu is None else f"cpu{from_cpu}"
            hw.event(k.m_name[mm], "ia64_global_tlb_purge", f"{where} loads {k.m_name[mm]}'s ids for the "
                     f"purge: ptc.ga by context #{ids}")
        else:
            ids = k.c_asid_gen[from_cpu]
            if [c for c in range(k.ncpus) if hw.in_cpumask(mm, c)] == [from_cpu]:
                hw.flush_tlb(from_cpu)
                hw.event(f"cpu{from_cpu}", "__flush_tlb_range", f"only cpu{from_cpu} in cpu_vm_mask: ptc.l by "
                         f"the loaded context #{ids}")
                return
            hw.event(f"cpu{from_cpu}", "ia64_global_tlb_purge", f"ptc.ga by the region ids loaded here: "
                     f"context #{ids}")
        for c in range(k.ncpus):                  # ptc.ga reaches every CPU, for these region ids only
            if k.c_online[c] and k.c_loaded[c] == mm:
                if k.c_asid_gen[c] == ids:
                    hw.flush_tlb(c)
                else:
                    hw.event(f"cpu{c}", "ptc.ga", f"cpu{c} runs {k.m_name[mm]} on context #{k.c_asid_gen[c]}, "
                             f"not #{ids}: its entries stay")

    def flush_tlb_all(self, k, from_cpu):
        """smp_flush_tlb_all: on_each_cpu(local_flush_tlb_all)."""
        for c in range(k.ncpus):
            if k.c_online[c]:
                if c != from_cpu:
                    k.hw.ipi(c)
                k.hw.flush_tlb(c)
                k.hw.event(f"cpu{c}", "local_flush_tlb_all", "IPI" if c != from_cpu else "local")
