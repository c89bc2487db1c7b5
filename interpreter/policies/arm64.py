"""arm64: generic's counters; init_mm is the reserved TTBR0 (v6.15 to v6.17).

Follows arch/arm64/include/asm/mmu_context.h (switch_mm, __switch_mm,
enter_lazy_tlb, cpu_set_reserved_ttbr0, update_saved_ttbr0) and
arch/arm64/kernel/smp.c (secondary_start_kernel), v6.15-v6.17.

MMU_LAZY_TLB_REFCOUNT, like generic.  Kernel mappings live in TTBR1, so
"switching to init_mm" installs the reserved (empty) table in TTBR0
(cpu_set_reserved_ttbr0); init_mm's pgd, swapper_pg_dir, is never loaded
in TTBR0 (cpu_switch_mm BUG_ONs).  switch_mm trusts prev: __switch_mm runs
only when prev != next.  enter_lazy_tlb only points the incoming task's
saved TTBR0 (software PAN) at the reserved table; the hardware keeps the
borrowed mm.  TLB invalidation is broadcast (TLBI ... IS): a flush sends no
IPIs and mm_cpumask is not used for it.
"""
from ..kernel import INIT_MM
from .base import Policy


class Arm64(Policy):
    name = "arm64"
    summary = "MMU_LAZY_TLB_REFCOUNT; init_mm is the reserved TTBR0, broadcast TLBI (no flush IPIs)"
    hardware_fields = ("loaded_mm",)

    def switch_mm_irqs_off(self, k, cpu, prev_mm, next_mm, task):
        k.hw.switch_mm(cpu)
        if prev_mm == next_mm:
            return
        k.hw.load(cpu, next_mm)
        if next_mm == INIT_MM:
            k.hw.event(f"cpu{cpu}", "__switch_mm", "init_mm: cpu_set_reserved_ttbr0 (TTBR0 = reserved empty table)")
        else:
            k.hw.event(f"cpu{cpu}", "__switch_mm", f"check_and_switch_context: TTBR0 = {k.m_name[next_mm]}")

    def flush_tlb_mm_range(self, k, mm, freed_tables, from_cpu):
        k.hw.event(k.m_name[mm], "flush_tlb_mm", "TLBI ASIDE1IS: broadcast in hardware, no IPI")
