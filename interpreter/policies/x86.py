"""x86: the counters as generic, the hardware on its own (v6.15 to v6.17).

Follows arch/x86/mm/tlb.c (switch_mm_irqs_off, enter_lazy_tlb, leave_mm,
flush_tlb_mm_range, should_flush_tlb, native_flush_tlb_multi,
flush_tlb_func), arch/x86/include/asm/tlb.h (tlb_flush: exit_mmap's final
flush has freed_tables) and arch/x86/kernel/cpu/common.c (cpu_init), as in
the v6.15-v6.17 trees (INVLPGB global ASIDs aside).

Per CPU: ``cpu_tlbstate.loaded_mm`` (what CR3 holds; ``c_loaded``) and
``cpu_tlbstate_shared.is_lazy`` (``c_lazy``); per mm, ``mm_cpumask``.
x86 does not keep current->active_mm in step with CR3: switch_mm_irqs_off
ignores its prev argument and compares with loaded_mm, so a switch back to
the mm still loaded writes no CR3.  enter_lazy_tlb only sets is_lazy (unless
init_mm is loaded).  A switch leaves the CPU in the old mm's mm_cpumask; a
flush IPI trims it.  flush_tlb_mm_range IPIs the CPUs of mm_cpumask that are
not lazy and have the mm loaded (should_flush_tlb); a flush that frees page
tables IPIs all of them (native_flush_tlb_multi), and a lazy receiver
switches CR3 to init_mm (flush_tlb_func -> switch_mm_irqs_off(NULL,
&init_mm)) while its task keeps active_mm and the mm_count reference.
The flush generations (mm->context.tlb_gen, cpu_tlbstate.ctxs[].tlb_gen)
are kept: flush_tlb_func brings the CPU up to date, a CR3 write starts
from a flushed TLB, and a lazy CPU that slept through a flush catches up
in switch_mm_irqs_off when it returns to the mm it has loaded (the
generations differ: "TLB contents went out of date while we were in lazy
mode"); that catch-up is a TLB flush, not a page-table load, and writes
no trace line.  Not modelled: the once-a-second trim round of
should_trim_cpumask (a scenario is shorter than a second;
init_new_context sets the first one a second ahead), PCID slots
(ctxs[] beyond the loaded one), global ASIDs.

Boot: trap_init ends with cpu_init() on the boot CPU as well, and cpu_init
does mmgrab(&init_mm) for the CPU's idle task, after sched_init's
mmgrab_lazy_tlb: the boot CPU holds two references and nothing ever drops the
second (finish_cpu drops one), so init_mm's mm_count is one higher on x86
than on generic, for good.
"""
from ..kernel import INIT_MM
from .base import Policy


class X86(Policy):
    name = "x86"
    summary = "MMU_LAZY_TLB_REFCOUNT; loaded_mm and is_lazy per CPU, flush IPIs skip lazy CPUs (arch/x86/mm/tlb.c)"
    hardware_fields = ("loaded_mm", "lazy", "cpumask")
    init_mm_boot_pins = 1
    tlb_generations = True      # flush_tlb_func and the tlb_gen catch-up say which CPUs are flushed

    def trap_init(self, k):
        # trap_init -> cpu_init on the boot CPU: mmgrab(&init_mm); cur->active_mm = &init_mm
        k.hw.event("cpu0", "cpu_init", "the boot CPU's second init_mm reference (after sched_init's); never dropped")
        k.mmgrab(INIT_MM)

    def enter_lazy_tlb(self, k, cpu, mm, task):
        loaded = k.c_loaded[cpu]
        if loaded == INIT_MM or k.c_lazy[cpu]:
            return      # already lazy, or on init_mm: nothing to be lazy about
        k.hw.set_lazy(cpu)
        k.hw.event(f"cpu{cpu}", "enter_lazy_tlb", f"is_lazy = true; CR3 keeps {k.m_name[loaded]}")

    def switch_mm_irqs_off(self, k, cpu, prev_mm, next_mm, task):
        was_lazy = k.c_lazy[cpu]
        k.hw.switch_mm(cpu)
        self._switch_mm_rest(k, cpu, next_mm, was_lazy)

    # granularity step, a switch_mm with irqs on (kthread_use_mm before 38cf307c1f20): the 2012
    # switch_mm (arch/x86/include/asm/mmu_context.h, v3.4/v3.5) wrote cpu_tlbstate.state =
    # TLBSTATE_OK first, then cpu_tlbstate.active_mm = next and CR3 (and, since 831d52bc1539, cleared
    # the old mm's mm_cpumask bit last).  An IPI between the two finds the CPU not lazy with the old
    # mm still loaded: the window of LT-15.  A switch to the mm already loaded writes no CR3: one step.
    def switch_mm_state_ok(self, k, cpu, next_mm):
        """The first store; True when the switch is already whole (nothing to load)."""
        if k.c_loaded[cpu] == next_mm:
            self.switch_mm_irqs_off(k, cpu, None, next_mm, None)
            return True
        k.hw.switch_mm(cpu)
        k.hw.event(f"cpu{cpu}", "switch_mm", "cpu_tlbstate.state = TLBSTATE_OK: not lazy; CR3 still "
                   f"{k.mm_label(k.c_loaded[cpu])}")
        return False

    def switch_mm_finish(self, k, cpu, next_mm):
        """The rest of the switch after switch_mm_state_ok: cpu_tlbstate.active_mm = next, CR3."""
        self._switch_mm_rest(k, cpu, next_mm, False)

    def _switch_mm_rest(self, k, cpu, next_mm, was_lazy):
        hw = k.hw
        real_prev = k.c_loaded[cpu]      # not prev_mm: x86 trusts cpu_tlbstate.loaded_mm
        if real_prev == next_mm:
            hw.event(f"cpu{cpu}", "switch_mm_irqs_off", f"loaded_mm is already {k.m_name[next_mm]}: no CR3 write"
                     + (" (leaves lazy mode)" if was_lazy else ""))
            if was_lazy:
                # "TLB contents went out of date while we were in lazy mode": ctxs[prev_asid].tlb_gen
                # != next->context.tlb_gen flushes (no trace line of its own: today's traces stay)
                hw.tlb_caught_up(cpu)
            return
        if next_mm != INIT_MM and not hw.in_cpumask(next_mm, cpu):
            hw.cpumask_set(next_mm, cpu)
        hw.load(cpu, next_mm)
        stays = "" if real_prev in (None, INIT_MM) else f"; cpu{cpu} stays in {k.m_name[real_prev]}'s mm_cpumask"
        hw.event(f"cpu{cpu}", "switch_mm_irqs_off", f"CR3 {k.mm_label(real_prev)} -> {k.m_name[next_mm]}{stays}")

    def exit_mmap(self, k, mm):
        # tlb_finish_mmu -> tlb_flush -> flush_tlb_mm_range(mm, 0, TLB_FLUSH_ALL, .., freed_tables)
        k.hw.event(k.m_name[mm], "tlb_flush", "exit_mmap's final flush frees page tables: every CPU in mm_cpumask")
        self.flush_tlb_mm_range(k, mm, True, k.this_cpu)

    def flush_tlb_mm_range(self, k, mm, freed_tables, from_cpu):
        mask = k.m_cpumask[mm]
        in_mask = k.hw.cpus_in_mask(mm)
        # cpumask_any_but(mm_cpumask(mm), cpu) reads the raw mask: an offline CPU's bit
        # (x86 leaves it) sends the flush down the flush_tlb_multi path too
        if any(mask >> c & 1 for c in range(k.ncpus) if c != from_cpu):
            if freed_tables:    # native_flush_tlb_multi: on_each_cpu_mask, lazy CPUs too
                targets = in_mask
            else:               # on_each_cpu_cond_mask(should_flush_tlb)
                targets = []
                for c in in_mask:
                    if k.c_lazy[c]:
                        k.hw.event(f"cpu{c}", "should_flush_tlb", "is_lazy: no IPI, it catches up at its next switch")
                    elif k.c_loaded[c] == mm:
                        targets.append(c)
        elif from_cpu is not None and k.c_loaded[from_cpu] == mm:
            targets = [from_cpu]    # only this CPU: flush_tlb_func locally
        else:
            targets = []
        for c in targets:
            if c != from_cpu:
                k.hw.ipi(c)
            self.flush_tlb_func(k, c, mm, remote=c != from_cpu)

    def flush_tlb_func(self, k, cpu, mm, remote):
        hw = k.hw
        how = "IPI" if remote else "local"
        loaded = k.c_loaded[cpu]
        if loaded != mm:
            hw.cpumask_clear(mm, cpu)
            hw.event(f"cpu{cpu}", "flush_tlb_func", f"{how}: {k.mm_label(loaded)} is loaded, not {k.m_name[mm]}: "
                     f"cpu{cpu} clears itself from {k.m_name[mm]}'s mm_cpumask")
        elif k.c_lazy[cpu]:
            t = k.c_curr[cpu]
            hw.event(f"cpu{cpu}", "flush_tlb_func", f"{how}: lazy, so switch to init_mm; {k.t_name[t]} keeps "
                     f"active_mm {k.mm_label(k.t_active[t])} and its reference")
            self.switch_mm_irqs_off(k, cpu, None, INIT_MM, None)
        else:
            hw.flush_tlb(cpu)
            hw.event(f"cpu{cpu}", "flush_tlb_func", f"{how}: flushes the TLB of {k.m_name[mm]}")

    def is_lazy(self, k, cpu):
        return k.c_online[cpu] and k.c_lazy[cpu]

    def check(self, k, out, touched_cpus, touched_mms):
        super().check(k, out, touched_cpus, touched_mms)
        self.cpumask_covers_loaded(k, out, "switch_mm_irqs_off (arch/x86/mm/tlb.c): VM_WARN_ON_ONCE mm_cpumask")

    memo_check = check
