"""powerpc: Book3S-64 radix with MMU_LAZY_TLB_SHOOTDOWN (v6.15 to v6.17).

Follows arch/Kconfig (MMU_LAZY_TLB_SHOOTDOWN, selected by powerpc if
PPC_BOOK3S_64), kernel/fork.c (__mmdrop -> cleanup_lazy_tlbs ->
do_shoot_lazy_tlb), arch/powerpc/mm/mmu_context.c (switch_mm_irqs_off),
arch/powerpc/mm/book3s64/radix_tlb.c (radix__tlb_flush, flush_type_needed,
exit_flush_lazy_tlbs, exit_lazy_flush_tlb), arch/powerpc/kernel/smp.c
(start_secondary, __cpu_die) and arch/powerpc/mm/book3s64/mmu_context.c
(cleanup_cpu_mmu_context -> clear_tasks_mm_cpumask), as in v6.15-v6.17.

Lazy borrowers hold no mm_count: the _lazy_tlb helpers do nothing, so
mm_count is one while mm_users > 0, plus kthread_use_mm users and other
mmgrabs.  switch_mm_irqs_off sets the CPU in next's mm_cpumask and never
clears it from prev's; masks shrink only in exit_lazy_flush_tlb (the CPU
clears itself), at CPU offline and never otherwise.  exit_mmap's fullmm
flush (radix__tlb_flush) first IPIs every other CPU in the mask
(exit_flush_lazy_tlbs): a lazy user there moves to init_mm and the CPU
leaves the mask.  When mm_count reaches 0, cleanup_lazy_tlbs runs
do_shoot_lazy_tlb on every CPU still in the mask (this one included): a task
whose active_mm is the mm, the exiting task itself too, moves to init_mm
before the mm is freed.  A plain flush is a tlbie broadcast without IPIs,
except from the only user of a single-threaded mm, which trims the mask
(exit_flush_lazy_tlbs).  Not modelled: the per-CPU trim clock (every 1073
flushes), coprocessors, the hash MMU.
"""
from ..kernel import C_IPI, C_PGTABLE, C_SWITCH_MM, DEAD, INIT_MM
from .base import Policy


class PowerPC(Policy):
    name = "powerpc"
    summary = "MMU_LAZY_TLB_SHOOTDOWN: lazy users hold no mm_count, shot down by IPI before the free (Book3S-64 radix)"
    lazy_tlb_refcount = False
    hardware_fields = ("loaded_mm", "cpumask")

    def bringup_grab_init_mm(self, k):
        k.mmgrab_lazy_tlb(INIT_MM)          # start_secondary: nothing under shootdown

    def cpu_up(self, k, cpu):
        super().cpu_up(k, cpu)
        k.m_cpumask[INIT_MM] |= 1 << cpu    # start_secondary / smp_prepare_boot_cpu: in init_mm's mask
        k.d_mms.add(INIT_MM)

    def cpu_dead(self, k, cpu):
        # cpu_disable -> cleanup_cpu_mmu_context -> clear_tasks_mm_cpumask: the CPU leaves the
        # mask of every process's mm; __cpu_die takes it out of init_mm's.  sched_force_init_mm
        # has already moved its lazy task to init_mm.
        bit = 1 << cpu
        mms = {k.t_mm[t] for t in range(len(k.t_name)) if k.t_mm[t] is not None and k.t_state[t] != DEAD}
        for m in sorted(mms | {INIT_MM}):
            if k.m_cpumask[m] & bit:
                k.m_cpumask[m] &= ~bit
                k.d_mms.add(m)
        k._op(f"cpu{cpu}", "clear_tasks_mm_cpumask", f"cpu{cpu} leaves every mm_cpumask")

    def switch_mm_irqs_off(self, k, cpu, prev_mm, next_mm, task):
        k.cost[C_SWITCH_MM] += 1
        k.d_cpus.add(cpu)
        if not k.m_cpumask[next_mm] >> cpu & 1:
            k.m_cpumask[next_mm] |= 1 << cpu      # inc_mm_active_cpus; never cleared from prev here
            k.d_mms.add(next_mm)
            k._op(f"cpu{cpu}", "switch_mm_irqs_off", f"cpu{cpu} set in {k.m_name[next_mm]}'s mm_cpumask")
        if prev_mm == next_mm:
            return          # "Nothing else to do if we aren't actually switching"
        k.cost[C_PGTABLE] += 1
        k.c_loaded[cpu] = next_mm
        k.c_lazy[cpu] = False

    # ---- exit_mmap's final flush, and the shootdown before the free ------------
    def exit_mmap(self, k, mm):
        k._op(k.m_name[mm], "radix__tlb_flush", "fullmm: exit_flush_lazy_tlbs first")
        self.exit_flush_lazy_tlbs(k, mm, k.this_cpu)

    def exit_flush_lazy_tlbs(self, k, mm, this_cpu):
        """smp_call_function_many(mm_cpumask(mm)): every other online CPU in the mask."""
        for c in range(k.ncpus):
            if c != this_cpu and k.c_online[c] and k.m_cpumask[mm] >> c & 1:
                k.cost[C_IPI] += 1
                self.exit_lazy_flush_tlb(k, c, mm)

    def exit_lazy_flush_tlb(self, k, cpu, mm):
        t = k.c_curr[cpu]
        k.d_cpus.add(cpu)
        if k.t_mm[t] == mm:     # a user of mm, or a kthread inside kthread_use_mm: stays in the mask
            k._op(f"cpu{cpu}", "exit_lazy_flush_tlb", f"{k.t_name[t]} runs {k.m_name[mm]}: cpu{cpu} stays "
                  f"in its mm_cpumask")
            return
        if k.t_active[t] == mm:
            k._op(f"cpu{cpu}", "exit_lazy_flush_tlb", f"{k.t_name[t]} is lazy on {k.m_name[mm]}: moves to init_mm")
            k.mmgrab_lazy_tlb(INIT_MM)
            k._set_active_mm(t, INIT_MM)
            self.switch_mm_irqs_off(k, cpu, mm, INIT_MM, t)
            k.mmdrop_lazy_tlb(mm)
        if k.m_cpumask[mm] >> cpu & 1:
            k.m_cpumask[mm] &= ~(1 << cpu)
            k.d_mms.add(mm)
            k._op(f"cpu{cpu}", "exit_lazy_flush_tlb", f"cpu{cpu} clears itself from {k.m_name[mm]}'s mm_cpumask")

    def cleanup_lazy_tlbs(self, k, mm):
        cpus = [c for c in range(k.ncpus) if k.c_online[c] and k.m_cpumask[mm] >> c & 1]
        k._op(k.m_name[mm], "cleanup_lazy_tlbs", "on_each_cpu_mask(mm_cpumask): "
              + (", ".join(f"cpu{c}" for c in cpus) or "no CPU left"))
        for c in cpus:
            if c != k.this_cpu:
                k.cost[C_IPI] += 1
            t = k.c_curr[c]
            if k.t_active[t] == mm:     # do_shoot_lazy_tlb: no refcount at all
                k._op(f"cpu{c}", "do_shoot_lazy_tlb", f"{k.t_name[t]}: active_mm {k.m_name[mm]} -> @init_mm")
                k._set_active_mm(t, INIT_MM)
                self.switch_mm_irqs_off(k, c, mm, INIT_MM, t)

    def flush_tlb_mm_range(self, k, mm, freed_tables, from_cpu):
        """radix flush_type_needed (no trim clock): tlbie broadcast unless local, or a
        single-threaded mm flushed by its own user, which first trims the mask."""
        cpus = [c for c in range(k.ncpus) if k.m_cpumask[mm] >> c & 1]
        if not cpus:
            k._op(k.m_name[mm], "flush_type_needed", "no CPU in mm_cpumask: FLUSH_TYPE_NONE")
        elif from_cpu is not None and cpus == [from_cpu]:
            k._op(k.m_name[mm], "flush_type_needed", f"only cpu{from_cpu}: local tlbiel")
        elif from_cpu is not None and k.m_users[mm] <= 1 and k.t_mm[k.c_curr[from_cpu]] == mm:
            k._op(k.m_name[mm], "flush_type_needed", "single-threaded mm flushed by its user: "
                  "exit_flush_lazy_tlbs trims the mask")
            self.exit_flush_lazy_tlbs(k, mm, from_cpu)
        else:
            k._op(k.m_name[mm], "flush_type_needed", "FLUSH_TYPE_GLOBAL: tlbie broadcast, no IPI")

    def check(self, k, out):
        super().check(k, out)
        self.cpumask_covers_loaded(k, out, "cleanup_lazy_tlbs (kernel/fork.c) relies on mm_cpumask "
                                           "(CONFIG_DEBUG_VM_SHOOT_LAZIES)")
