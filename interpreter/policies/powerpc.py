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
leaves the mask.  When mm_count reaches 0, the kernel's cleanup_lazy_tlbs
(kernel/fork.c, interpreter/kernel.py) runs do_shoot_lazy_tlb on every CPU
still in the mask (this one included): a task whose active_mm is the mm, the
exiting task itself too, moves to init_mm before the mm is freed.  A plain flush is a tlbie broadcast without IPIs,
except from the only user of a single-threaded mm, which trims the mask
(exit_flush_lazy_tlbs).  Not modelled: the per-CPU trim clock (every 1073
flushes), coprocessors, the hash MMU.

Older kernels (the kernel version's changes, docs/history.md): before
77f68ebeee20 (v6.4; with the shootdown scheme of aa464ba9a1e4, 88e3009b5283
and 2655421ae69f) powerpc counted lazy users in mm_count like every arch
(kernel.py's refcount_lazy), start_secondary took init_mm with mmgrab, and
__mmdrop shot nobody down.  Before e43c0a0c3c28 (v6.6) exit_mmap's fullmm
flush was __flush_all_mm(mm, true): flush_type_needed returned
FLUSH_TYPE_GLOBAL for fullmm ("no point doing the exit_flush_lazy_tlbs"),
a tlbie broadcast without IPIs, so under shootdown (v6.4, v6.5) the lazy
users were left to __mmdrop's cleanup_lazy_tlbs, a second IPI round.
"""
from .. import version as V
from ..kernel import DEAD, INIT_MM, Violation
from .base import Policy


class PowerPC(Policy):
    name = "powerpc"
    summary = "MMU_LAZY_TLB_SHOOTDOWN: lazy users hold no mm_count, shot down by IPI before the free (Book3S-64 radix)"
    lazy_tlb_refcount = False           # __mmdrop's cleanup_lazy_tlbs (kernel/fork.c) shoots them down
    lazy_tlb_shootdown_by = V.PPC_LAZY_TLB_SHOOTDOWN    # `select MMU_LAZY_TLB_SHOOTDOWN if PPC_BOOK3S_64`, v6.4
    bringup_grab_lazy_tlb = True        # start_secondary: mmgrab_lazy_tlb(&init_mm), nothing under shootdown
    hardware_fields = ("loaded_mm", "cpumask")

    def cpu_up(self, k, cpu):
        k.hw.cpumask_set(INIT_MM, cpu)      # start_secondary / smp_prepare_boot_cpu: in init_mm's mask

    def cpu_dead(self, k, cpu):
        # cpu_disable -> cleanup_cpu_mmu_context -> clear_tasks_mm_cpumask: the CPU leaves the
        # mask of every process's mm; __cpu_die takes it out of init_mm's.  sched_force_init_mm
        # has already moved its lazy task to init_mm.  Before 01b0f0eae081 (v5.11) there was no
        # cleanup_cpu_mmu_context: the offlined CPU stayed in every mm_cpumask it was in (LT-08).
        if not k.version.has(V.PPC_TRIM_OFFLINE):
            if k.hw.in_cpumask(INIT_MM, cpu):
                k.hw.cpumask_clear(INIT_MM, cpu)
            k.hw.event(f"cpu{cpu}", "pseries_cpu_disable", f"no cleanup_cpu_mmu_context: cpu{cpu} stays in the "
                       f"mm_cpumask of every process it ran")
            return
        mms = self._task_mms(k)
        for m in sorted(mms | {INIT_MM}):
            if k.hw.in_cpumask(m, cpu):
                k.hw.cpumask_clear(m, cpu)
        k.hw.event(f"cpu{cpu}", "clear_tasks_mm_cpumask", f"cpu{cpu} leaves every mm_cpumask")

    @staticmethod
    def _task_mms(k) -> set:
        """The mms clear_tasks_mm_cpumask reaches: for_each_process, find_lock_task_mm's ->mm."""
        return {k.t_mm[t] for t in range(len(k.t_name)) if k.t_mm[t] is not None and k.t_state[t] != DEAD}

    def switch_mm_irqs_off(self, k, cpu, prev_mm, next_mm, task):
        hw = k.hw
        hw.switch_mm(cpu)
        if not hw.in_cpumask(next_mm, cpu):
            hw.cpumask_set(next_mm, cpu)        # inc_mm_active_cpus; never cleared from prev here
            hw.event(f"cpu{cpu}", "switch_mm_irqs_off", f"cpu{cpu} set in {k.m_name[next_mm]}'s mm_cpumask")
        if prev_mm == next_mm:
            return          # "Nothing else to do if we aren't actually switching"
        hw.load(cpu, next_mm)

    # ---- exit_mmap's final flush: the lazy users are shot down with it (v6.6, e43c0a0c3c28) ----
    def exit_mmap(self, k, mm):
        if k.refcount_lazy or not k.version.has(V.PPC_EXIT_SHOOTDOWN):
            # before e43c0a0c3c28, or without MMU_LAZY_TLB_SHOOTDOWN: __flush_all_mm(mm, true)
            cpus = k.hw.cpus_in_mask(mm)
            if cpus == [k.this_cpu] and self.trim_clock_fires(k, k.this_cpu, mm):
                k.hw.event(k.m_name[mm], "radix__tlb_flush", f"fullmm: __flush_all_mm, only cpu{cpus[0]}, which does "
                           f"not run it, and the trim clock fires: exit_lazy_flush_tlb here, FLUSH_TYPE_NONE")
                self.exit_lazy_flush_tlb(k, k.this_cpu, mm)
                return
            how = f"only cpu{cpus[0]}: local tlbiel" if cpus == [k.this_cpu] else \
                "FLUSH_TYPE_GLOBAL: tlbie broadcast, no IPI; lazy users keep the mm"
            k.hw.event(k.m_name[mm], "radix__tlb_flush", f"fullmm: __flush_all_mm, {how}")
            return
        k.hw.event(k.m_name[mm], "radix__tlb_flush", "fullmm: exit_flush_lazy_tlbs first")
        self.exit_flush_lazy_tlbs(k, mm, k.this_cpu)

    def exit_flush_lazy_tlbs(self, k, mm, this_cpu):
        """smp_call_function_many(mm_cpumask(mm), do_exit_flush_lazy_tlb, mm, 1): every other online
        CPU in the mask (granularity step: queued, each run where its target's irqs are on)."""
        k.hw.smp_call([c for c in k.hw.cpus_in_mask(mm) if c != this_cpu], "exit_lazy_flush_tlb", mm)

    def exit_lazy_flush_tlb(self, k, cpu, mm):
        """The IPI's handler (do_exit_flush_lazy_tlb), or a call on this CPU from flush_type_needed:
        each CPU decides for itself (a665eec0a22e)."""
        hw = k.hw
        t = k.c_curr[cpu]
        if k.t_mm[t] == mm:     # a user of mm, or a kthread inside kthread_use_mm: stays in the mask
            hw.flush_tlb(cpu)   # out: _tlbiel_pid, as exit_mmap's always_flush asks
            hw.event(f"cpu{cpu}", "exit_lazy_flush_tlb", f"{k.t_name[t]} runs {k.m_name[mm]}: cpu{cpu} stays "
                     f"in its mm_cpumask")
            return
        if k.t_active[t] == mm:
            hw.event(f"cpu{cpu}", "exit_lazy_flush_tlb", f"{k.t_name[t]} is lazy on {k.m_name[mm]}: moves to init_mm")
            if k.exit_lazy_in_steps(cpu, mm):
                return          # the exiting task itself: exit_mm's steps switch it and trim (steps.py)
            k.switch_to_init_mm(cpu, t)
        self.exit_lazy_trim(k, cpu, mm)

    def exit_lazy_trim(self, k, cpu, mm):
        """exit_lazy_flush_tlb's end: the CPU, no longer on mm, leaves its mask (atomic_dec active_cpus)."""
        hw = k.hw
        if hw.in_cpumask(mm, cpu):
            hw.cpumask_clear(mm, cpu)
            hw.event(f"cpu{cpu}", "exit_lazy_flush_tlb", f"cpu{cpu} clears itself from {k.m_name[mm]}'s mm_cpumask")

    def flush_tlb_mm_range(self, k, mm, freed_tables, from_cpu):
        """radix flush_type_needed (no trim clock): tlbie broadcast unless local, or a
        single-threaded mm flushed by its own user, which first trims the mask."""
        cpus = [c for c in range(k.ncpus) if k.hw.in_cpumask(mm, c)]
        if not cpus:
            k.hw.event(k.m_name[mm], "flush_type_needed", "no CPU in mm_cpumask: FLUSH_TYPE_NONE")
        elif from_cpu is not None and cpus == [from_cpu] and self.trim_clock_fires(k, from_cpu, mm):
            k.hw.event(k.m_name[mm], "flush_type_needed", f"only cpu{from_cpu}, which does not run it, and the trim "
                       f"clock fires: exit_lazy_flush_tlb here, FLUSH_TYPE_NONE")
            self.exit_lazy_flush_tlb(k, from_cpu, mm)
        elif from_cpu is not None and cpus == [from_cpu]:
            k.hw.event(k.m_name[mm], "flush_type_needed", f"only cpu{from_cpu}: local tlbiel")
        elif from_cpu is not None and k.m_users[mm] <= 1 and k.t_mm[k.c_curr[from_cpu]] == mm:
            if not k.version.has(V.PPC_TRIM_SELF):
                self.exit_flush_lazy_tlbs_reset(k, mm, from_cpu)
                return
            k.hw.event(k.m_name[mm], "flush_type_needed", "single-threaded mm flushed by its user: "
                       "exit_flush_lazy_tlbs trims the mask")
            self.exit_flush_lazy_tlbs(k, mm, from_cpu)
        else:
            k.hw.event(k.m_name[mm], "flush_type_needed", "FLUSH_TYPE_GLOBAL: tlbie broadcast, no IPI")

    # ---- before a665eec0a22e (v5.10): 0cef77c7798a7's trim, the sender resets the mask (LT-04) ----
    def exit_flush_lazy_tlbs_reset(self, k, mm, this_cpu):
        """radix__flush_tlb_mm, mm_is_singlethreaded (mm_users <= 1, current->mm == mm):
        exit_flush_lazy_tlbs = smp_call_function_many(mm_cpumask(mm), do_exit_flush_lazy_tlb),
        then mm_reset_thread_local: the mask becomes this CPU alone, whatever the others did."""
        k.hw.event(k.m_name[mm], "mm_is_singlethreaded", "exit_flush_lazy_tlbs, then mm_reset_thread_local")
        # granularity step: the IPIs queued, the reset once they all ran (the check, the IPIs, the reset)
        k.hw.smp_call([c for c in k.hw.cpus_in_mask(mm) if c != this_cpu], "do_exit_flush_lazy_tlb", mm,
                      after="mm_reset_thread_local")

    def do_exit_flush_lazy_tlb(self, k, cpu, mm):
        """The IPI: current->mm == mm is taken for the sender ("Local CPU") and left alone; a task
        lazy on mm ("must be a kernel thread because sender is single-threaded") moves to init_mm."""
        t = k.c_curr[cpu]
        if k.t_mm[t] == mm:
            k.hw.event(f"cpu{cpu}", "do_exit_flush_lazy_tlb", f"current->mm is {k.m_name[mm]}: return "
                       f"(\"Local CPU\"), no flush")
            return
        if k.t_active[t] == mm:
            k.hw.event(f"cpu{cpu}", "do_exit_flush_lazy_tlb", f"{k.t_name[t]} is lazy on {k.m_name[mm]}: "
                       f"moves to init_mm")
            k.switch_to_init_mm(cpu, t)
        else:
            k.hw.event(f"cpu{cpu}", "do_exit_flush_lazy_tlb", f"{k.t_name[t]} does not use {k.m_name[mm]}: flush")
        k.hw.flush_tlb(cpu)     # _tlbiel_pid(pid, RIC_FLUSH_ALL)

    def mm_reset_thread_local(self, k, mm, cpu):
        """atomic_set(active_cpus, 1); cpumask_clear(mm_cpumask(mm)); cpumask_set_cpu(this cpu)."""
        for c in range(k.ncpus):
            if c != cpu and k.hw.in_cpumask(mm, c):
                k.hw.cpumask_clear(mm, c)
        if not k.hw.in_cpumask(mm, cpu):
            k.hw.cpumask_set(mm, cpu)
        k.hw.event(k.m_name[mm], "mm_reset_thread_local", f"mm_cpumask {{cpu{cpu}}}, active_cpus 1")

    @staticmethod
    def trim_clock_fires(k, cpu, mm):
        """flush_type_needed's first branch (active_cpus == 1, this CPU in the mask): when
        current->mm != mm, `if (tick_and_test_trim_clock()) { exit_lazy_flush_tlb(mm, true); return
        FLUSH_TYPE_NONE; }` (a665eec0a22e).  The clock fires once in 1073 flushes; the model lets it
        fire only under `config PPC_TRIM_CLOCK_EVERY_FLUSH` (tlb_mm_cpumask_trim_timer = 1)."""
        return k.version.config("PPC_TRIM_CLOCK_EVERY_FLUSH") and k.version.has(V.PPC_TRIM_SELF) \
            and k.t_mm[k.c_curr[cpu]] != mm

    def interrupt_entry(self, k, cpu):
        """An interrupt inside a mm switch: the CPU's current->active_mm is not what its MMU (SPRN_PID)
        runs.  The kernel switches the two together with irqs off (switch_mm_irqs_off's callers;
        dfaed3e1fa70 put exit_lazy_flush_tlb's under local_irq_save), and linux-next's
        kthread_end_lazy_tlb_mm (kernel/sched/core.c) asserts it: WARN_ON_ONCE(!irqs_disabled())."""
        t = k.c_curr[cpu]
        active, loaded = k.t_active[t], k.c_loaded[cpu]
        if k.c_online[cpu] and k.c_op[cpu] is not None and active != loaded:
            where = "exit_lazy_flush_tlb (arch/powerpc/mm/book3s64/radix_tlb.c): local_irq_save around the switch " \
                "(dfaed3e1fa70); linux-next's kthread_end_lazy_tlb_mm: WARN_ON_ONCE(!irqs_disabled())" \
                if k.c_exit_lazy[cpu] is not None else \
                f"{k.c_op[cpu]}: the callers of switch_mm_irqs_off (arch/powerpc/mm/mmu_context.c) switch with irqs off"
            k.violate("active_mm-not-loaded", f"an interrupt on cpu{cpu} finds {k.t_name[t]}'s active_mm "
                      f"{k.mm_label(active)} while the MMU is still on {k.mm_label(loaded)}'s page tables: "
                      f"{k.t_name[t]} is halfway through a mm switch with irqs on",
                      where, loaded)

    def check(self, k, out, touched_cpus, touched_mms):
        super().check(k, out, touched_cpus, touched_mms)
        self.cpumask_covers_loaded(k, out, "cleanup_lazy_tlbs (kernel/fork.c) relies on mm_cpumask "
                                           "(CONFIG_DEBUG_VM_SHOOT_LAZIES)")
        offline = [c for c in range(k.ncpus) if not k.c_online[c]]
        if offline:
            self.offline_cpu_in_mask(k, out, offline)

    def offline_cpu_in_mask(self, k, out, offline):
        """Since 01b0f0eae081 an offline CPU is in no process's mm_cpumask: it takes no trimming IPI
        (smp_call_function_many skips it), so a bit it kept would never be cleared and the mm never
        trimmed back to local flushes, and it would miss what the trim flushes (LT-08)."""
        for m in sorted(self._task_mms(k)):
            for c in offline:
                if k.hw.in_cpumask(m, c):
                    out.append(Violation("offline-cpu-in-mm_cpumask", f"cpu{c} is offline but still in "
                                         f"{k.m_name[m]}'s mm_cpumask: no IPI reaches it, so exit_flush_lazy_tlbs "
                                         f"cannot trim it and it never flushes what the trim flushes",
                                         "cleanup_cpu_mmu_context (arch/powerpc/mm/book3s64/mmu_context.c)", m))
