"""xen-pv: an x86 paravirtual guest under Xen, which must unpin an mm's page tables at exit.

Follows arch/x86/xen/mmu_pv.c (xen_exit_mmap, xen_drop_mm_ref,
drop_mm_ref_this_cpu, xen_flush_tlb_multi; before the v4.14 split,
arch/x86/xen/mmu.c: drop_other_mm_ref) and arch/x86/mm/tlb.c (leave_mm),
with x86's own switch_mm_irqs_off, enter_lazy_tlb and counters (x86.py).
Read: mmu.c of the v3.x era as stored (drop_other_mm_ref before and after
7899891c7d16, which names 831d52bc1539), the 2017 "x86/mm: Rework lazy TLB
to track the actual loaded mm" patch (its mmu.c hunk), and mmu_pv.c's
drop_mm_ref_this_cpu/xen_drop_mm_ref as of v6.x.

Xen pins a process's page tables (read-only, validated by the hypervisor)
and will not unpin a pgd that a vCPU still has in CR3.  So exit_mmap's
arch_exit_mmap (xen_exit_mmap), before the teardown, runs xen_drop_mm_ref:
drop_mm_ref_this_cpu here, then an IPI to every other online CPU whose
xen_current_cr3 is the mm's pgd (the model's loaded_mm: no hypercall
batching), whose handler switches a lazy CPU to init_mm (leave_mm); then it
unpins.  A CPU that still has the pgd in CR3 at the unpin breaks the rule
``xen-pinned-pgd``.  leave_mm must only run on a lazy CPU (2012:
``if (this_cpu_read(cpu_tlbstate.state) == TLBSTATE_OK) BUG();``).  Before
7899891c7d16 the handler called leave_mm whenever the CPU's tlbstate mm was
the dying one; the fix added "and the CPU is still lazy": between the
sender's pick and the IPI the target may have left lazy mode (LT-15; the
rule ``leave_mm-not-lazy``).  Since the 2017 rework leave_mm itself warns
when the CPU is not lazy; the model keeps 7899891c7d16's test, which decides
the same in every state the model reaches (a CPU with the dying mm loaded is
lazy once its mm_users are 0, unless the IPI lands inside a switch_mm: under
`granularity step` the IPIs are queued (hw.smp_call) and x86's switch_mm of
a kthread_use_mm before 38cf307c1f20 is two steps, docs/kernel-model.md
"xen_drop_mm_ref under granularity step").  TLB flushes are xen_flush_tlb_multi: one
MMUEXT_TLB_FLUSH_MULTI hypercall for the online CPUs of mm_cpumask, no IPI,
lazy or not (exit_mmap's final flush too: the lazy CPUs left in
xen_drop_mm_ref).
"""
from ..kernel import INIT_MM
from .. import version as V
from .x86 import X86


class XenPV(X86):
    name = "xen-pv"
    summary = "x86 under Xen PV: flushes are hypercalls; exit_mmap IPIs the CPUs with the pgd in CR3 to leave_mm"
    memo_check = None       # its pinned-pgd bookkeeping is not argued for in explore/memo.py

    def exit_mmap(self, k, mm):
        # arch_exit_mmap comes first in exit_mmap, then the teardown ends in tlb_finish_mmu's flush;
        # an mm emptied in place keeps its user and its pinned pgd (2.4's exec, long before Xen PV)
        if k.m_users[mm] == 0:
            self.xen_exit_mmap(k, mm, k.this_cpu)
        else:
            self.final_flush(k, mm, k.this_cpu)

    def xen_exit_mmap(self, k, mm, this_cpu):
        """xen_drop_mm_ref: here, then an IPI to the CPUs whose xen_current_cr3 is the pgd (the
        sender's snapshot; granularity step: queued, and exit_mmap waits); then xen_pgd_unpin."""
        hw = k.hw
        if this_cpu is not None:
            self.drop_mm_ref_this_cpu(k, this_cpu, mm, "local")
        targets = [c for c in range(k.ncpus) if c != this_cpu and k.c_online[c] and k.c_loaded[c] == mm]
        hw.event(k.m_name[mm], "xen_drop_mm_ref", "xen_current_cr3 is its pgd on: "
                 + (", ".join(f"cpu{c}" for c in targets) or "no other CPU"))
        hw.smp_call(targets, "drop_other_mm_ref", mm, after="xen_pgd_unpin")

    def drop_other_mm_ref(self, k, cpu, mm):
        """The IPI's handler, on the target: what it finds at delivery, not what the sender saw."""
        self.drop_mm_ref_this_cpu(k, cpu, mm, "IPI")

    def xen_pgd_unpin(self, k, mm, this_cpu):
        """smp_call_function_many returned: unpin, which needs no CR3 left on the pgd; then the rest
        of exit_mmap, its final flush."""
        k.hw.event(k.m_name[mm], "xen_pgd_unpin", "MMUEXT_UNPIN_TABLE: the page tables are writable again")
        for c in range(k.ncpus):
            if k.c_online[c] and k.c_loaded[c] == mm:
                k.violate("xen-pinned-pgd", f"cpu{c} still has {k.m_name[mm]}'s pgd in CR3 when xen_exit_mmap "
                          f"unpins it: the hypervisor refuses the unpin, or the guest runs on page tables it no "
                          f"longer validates", "xen_exit_mmap (arch/x86/xen/mmu_pv.c): xen_drop_mm_ref before "
                          "xen_pgd_unpin", mm)
        self.final_flush(k, mm, this_cpu)

    def final_flush(self, k, mm, this_cpu):
        k.hw.event(k.m_name[mm], "tlb_flush", "exit_mmap's final flush: xen_flush_tlb_multi")
        self.xen_flush_tlb_multi(k, mm, this_cpu)

    def drop_mm_ref_this_cpu(self, k, cpu, mm, how):
        """The handler (drop_other_mm_ref before v4.14): leave_mm if this CPU has the mm loaded
        and, since 7899891c7d16, is still lazy."""
        if k.c_loaded[cpu] != mm:
            return
        if k.c_lazy[cpu]:
            k.hw.event(f"cpu{cpu}", "drop_mm_ref_this_cpu", f"{how}: lazy on {k.m_name[mm]}: leave_mm")
            self.switch_mm_irqs_off(k, cpu, None, INIT_MM, None)
        elif k.version.has(V.XEN_LAZY_CHECK):
            # the stale-cr3 test after it: a CR3 still on the pgd goes to swapper_pg_dir (v6.x: xen_mc_flush)
            k.hw.load(cpu, INIT_MM)
            k.hw.event(f"cpu{cpu}", "drop_other_mm_ref", f"{how}: not lazy any more (TLBSTATE_OK): no leave_mm; "
                       f"xen_current_cr3 is still {k.m_name[mm]}'s pgd: load_cr3(swapper_pg_dir)")
        else:
            t = k.c_curr[cpu]
            k.hw.event(f"cpu{cpu}", "drop_other_mm_ref", f"{how}: cpu_tlbstate.active_mm is {k.m_name[mm]}: leave_mm")
            k.violate("leave_mm-not-lazy", f"drop_other_mm_ref calls leave_mm on cpu{cpu}, which is not lazy: it "
                      f"runs {k.t_name[t]} with {k.m_name[mm]} loaded (TLBSTATE_OK); the CPU left lazy mode between "
                      f"xen_drop_mm_ref's choice of targets and the IPI",
                      "leave_mm (arch/x86/mm/tlb.c): if (cpu_tlbstate.state == TLBSTATE_OK) BUG(), from "
                      "drop_other_mm_ref (arch/x86/xen/mmu.c)", mm)

    def flush_tlb_mm_range(self, k, mm, freed_tables, from_cpu):
        self.xen_flush_tlb_multi(k, mm, from_cpu)

    def xen_flush_tlb_multi(self, k, mm, from_cpu):
        hw = k.hw
        cpus = hw.cpus_in_mask(mm)
        others = [c for c in cpus if c != from_cpu]
        if from_cpu is not None and k.c_loaded[from_cpu] == mm:
            hw.flush_tlb(from_cpu)
        if others:
            for c in others:
                hw.flush_tlb(c)         # a whole-TLB flush of the vCPU, whatever it has loaded
            hw.event(k.m_name[mm], "xen_flush_tlb_multi", "MMUEXT_TLB_FLUSH_MULTI, no IPI: "
                     + ", ".join(f"cpu{c}" for c in others))
