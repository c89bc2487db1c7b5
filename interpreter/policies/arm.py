"""arm: 32-bit ARM with ASIDs (ARMv6+ SMP), the v2.6.2x ASID allocator.

Follows include/asm-arm/mmu_context.h (switch_mm, check_context,
ASID_BITS, ASID_FIRST_VERSION) and arch/arm/mm/context.c (__new_context,
cpu_last_asid) as of 8678c1f04277 "[ARM] Fix ASID version switch" (the
diff of mmu_context.h read on fairphone gitiles; context.c read in copies
of the v2.6.2x-v2.6.3x file: `mm->cpu_vm_mask = cpumask_of_cpu(cpu)`,
later `cpumask_copy(mm_cpumask(mm), cpumask_of(cpu))`, with
`mm->context.id = asid`).  The release of that code is UNVERIFIED (before
v2.6.28, when include/asm-arm moved; interpreter/version.py).

Counters as generic (MMU_LAZY_TLB_REFCOUNT); enter_lazy_tlb does nothing.
mm->context.id is a version (above ASID_BITS) and an ASID; cpu_last_asid
is global, so the version in force is the newest one handed out (the model
reads it off the mms: ``_version``).  switch_mm:

    if (!cpu_test_and_set(cpu, next->cpu_vm_mask) || prev != next) {
            check_context(next);          /* old version: __new_context */
            cpu_switch_mm(next->pgd, next);
    }

Before the fix the test was `if (prev != next) { cpu_set(...); ... }`: a
lazy CPU switching back to the mm it kept skipped check_context and kept
the stale ASID (LT-12).  __new_context hands out the next ASID; `rollover
cpuN` makes cpuN's next one find the version used up: a new version and
flush_tlb_all (the model flushes every online CPU's TLB; the 2.6.2x SMP
flush_tlb_all is on_each_cpu, as recalled, not re-read).  A new ASID
resets cpu_vm_mask to this CPU.  flush_tlb_mm reaches the CPUs of
cpu_vm_mask (on_each_cpu_mask, ipi_flush_tlb_mm -> local_flush_tlb_mm:
invalidate by mm->context.id; arch/arm/kernel/smp.c as recalled, not
re-read): a CPU there that uses an older ASID of the mm keeps its entries.
cpu_vm_mask is never cleared at a switch (VIPT caches: cache_is_vivt() is
false on ARMv6+).  Not modelled: the allocator Will Deacon rewrote in
v3.x (reserved_asids, tlb_flush_pending: arch/arm/mm/context.c today),
VIVT caches.
"""
from ..kernel import INIT_MM
from ..version import ARM_ASID_SWITCH
from .base import Policy


class Arm(Policy):
    name = "arm"
    summary = "MMU_LAZY_TLB_REFCOUNT; ASIDs with a global version (v2.6.2x context.c), flushes by ASID over cpu_vm_mask"
    hardware_fields = ("loaded_mm", "cpumask", "tlb_gen", "asid_gen")
    tlb_generations = True

    @staticmethod
    def _version(k) -> int:
        """cpu_last_asid's version: ASID_FIRST_VERSION at boot, then that of the newest ASID handed out."""
        return max([1] + k.m_asid_gen)

    def switch_mm_irqs_off(self, k, cpu, prev_mm, next_mm, task):
        hw = k.hw
        hw.switch_mm(cpu)
        was_set = hw.in_cpumask(next_mm, cpu)
        if k.version.has(ARM_ASID_SWITCH):
            go = not was_set or prev_mm != next_mm      # cpu_test_and_set(cpu, next->cpu_vm_mask) || prev != next
        else:
            go = prev_mm != next_mm                     # before 8678c1f04277: prev != next, then cpu_set
        if not was_set and go:
            hw.cpumask_set(next_mm, cpu)
        if not go:
            hw.event(f"cpu{cpu}", "switch_mm", f"prev == next == {k.m_name[next_mm]}"
                     + (" and cpu{} in its cpu_vm_mask".format(cpu) if was_set else "")
                     + f": no check_context, the ASID of generation {k.c_asid_gen[cpu]} stays")
            return
        if next_mm != INIT_MM and k.m_asid_gen[next_mm] != self._version(k):
            self.__new_context(k, cpu, next_mm)          # check_context: the version differs
        hw.load(cpu, next_mm)                            # cpu_switch_mm: TTBR0 and CONTEXTIDR
        hw.set_asid(cpu, k.m_asid_gen[next_mm])
        hw.event(f"cpu{cpu}", "cpu_switch_mm", f"{k.m_name[next_mm]}, ASID of generation {k.m_asid_gen[next_mm]}")

    def __new_context(self, k, cpu, mm):
        hw = k.hw
        version = self._version(k)
        if k.c_rollover[cpu]:
            version += 1                                 # (asid & ~ASID_MASK) == 0: a new version
            hw.set_rollover(cpu, False)
            hw.event(f"cpu{cpu}", "__new_context", f"ASIDs used up: version {version}, flush_tlb_all")
            for c in range(k.ncpus):
                if k.c_online[c]:
                    if c != cpu:
                        hw.ipi(c)
                    hw.flush_tlb(c)
                    hw.event(f"cpu{c}", "local_flush_tlb_all", "IPI" if c != cpu else "local")
        hw.new_asid(mm, version)
        for c in range(k.ncpus):                          # mm->cpu_vm_mask = cpumask_of_cpu(cpu)
            if c != cpu and hw.in_cpumask(mm, c):
                hw.cpumask_clear(mm, c)
        if not hw.in_cpumask(mm, cpu):
            hw.cpumask_set(mm, cpu)
        hw.event(f"cpu{cpu}", "__new_context", f"{k.m_name[mm]} gets an ASID of version {version}; "
                 f"cpu_vm_mask = {{cpu{cpu}}}")

    def asid_rollover(self, k, cpu):
        k.hw.set_rollover(cpu, True)
        k.hw.event(f"cpu{cpu}", "__new_context", f"cpu_last_asid reaches the end of version {self._version(k)}: "
                   f"the next ASID starts a new one")

    def exit_mmap(self, k, mm):
        # tlb_finish_mmu -> tlb_flush (fullmm) -> flush_tlb_mm
        self.flush_tlb_mm_range(k, mm, True, k.this_cpu)

    def flush_tlb_mm_range(self, k, mm, freed_tables, from_cpu):
        # flush_tlb_mm: on_each_cpu_mask(ipi_flush_tlb_mm, mm->cpu_vm_mask) -> local_flush_tlb_mm(mm)
        hw = k.hw
        gen = k.m_asid_gen[mm]
        for c in hw.cpus_in_mask(mm):
            how = "IPI" if c != from_cpu else "local"
            if c != from_cpu:
                hw.ipi(c)
            if k.c_loaded[c] == mm and k.c_asid_gen[c] != gen:
                hw.event(f"cpu{c}", "local_flush_tlb_mm", f"{how}: invalidates ASID of generation {gen}; cpu{c} "
                         f"runs {k.m_name[mm]} on one of generation {k.c_asid_gen[c]}: its entries stay")
                continue
            if k.c_loaded[c] == mm:
                hw.flush_tlb(c)
            hw.event(f"cpu{c}", "local_flush_tlb_mm", f"{how}: invalidates {k.m_name[mm]}'s ASID")
