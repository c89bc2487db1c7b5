"""The switch-policy interface: what an architecture (kernel configuration) decides.

A policy is a small stateless class: the hooks the kernel has for switching
address spaces (enter_lazy_tlb, switch_mm_irqs_off, activate_mm, switch_to),
the lazy-TLB reference scheme (MMU_LAZY_TLB_REFCOUNT or _SHOOTDOWN), what
happens on the way to freeing an mm (exit_mmap's final flush, __mmdrop's
cleanup_lazy_tlbs), TLB flushes and CPU hotplug.  Whatever hardware state a
policy models lives in the Kernel's lists (c_loaded, c_lazy, m_cpumask,
t_ptbr), never in the policy, so kernel states stay copyable and hashable.

The defaults here are the generic kernel (asm-generic/mmu_context.h, v6.x):
every hook a policy does not override behaves as on generic.
"""
from __future__ import annotations

from ..kernel import C_PGTABLE, C_SWITCH_MM, INIT_MM, Violation


class Policy:
    #: the name written after `arch` in a scenario
    name = "generic"
    #: one line for `mmscn compare` and the docs
    summary = "MMU_LAZY_TLB_REFCOUNT, no arch state (asm-generic)"
    #: CONFIG_MMU_LAZY_TLB_REFCOUNT: lazy borrowers hold an mm_count reference
    lazy_tlb_refcount = True
    #: kthread_use_mm exists (not in the 1999 kernel)
    has_kthread_use_mm = True
    #: exec_mmap keeps the old mm when its task is the only user (2.4 did; today's kernel never)
    exec_reuses_sole_mm = False
    #: CPU hotplug exists (offline/online)
    has_cpu_hotplug = True
    #: hardware fields this policy models: any of "loaded_mm", "lazy", "cpumask", "ptbr" (alpha's PCB)
    hardware_fields: tuple = ()
    #: mm_count references on init_mm that boot takes and nothing ever drops (x86: cpu_init on the boot CPU)
    init_mm_boot_pins = 0

    # ---- boot and hotplug ------------------------------------------------
    def boot(self, k) -> None:
        """sched_init gives the boot CPU's idle task init_mm (mmgrab_lazy_tlb);
        each secondary CPU's bring-up does the same (bringup_grab_init_mm)."""
        for cpu in range(k.ncpus):
            if cpu == 0:
                k.mmgrab_lazy_tlb(INIT_MM)
            else:
                self.bringup_grab_init_mm(k)
            k._set_active_mm(k._idle(cpu), INIT_MM)
            self.cpu_up(k, cpu)

    def bringup_grab_init_mm(self, k) -> None:
        """A secondary CPU's idle task takes init_mm: x86, arm64, riscv use plain mmgrab."""
        k.mmgrab(INIT_MM)

    def cpu_up(self, k, cpu: int) -> None:
        """Hardware state of a CPU coming up: it runs on init_mm."""
        k.c_loaded[cpu] = INIT_MM
        k.c_lazy[cpu] = False

    def cpu_dead(self, k, cpu: int) -> None:
        """After sched_force_init_mm on a dying CPU, before finish_cpu."""

    # ---- the scheduler's hand-over ------------------------------------------
    def context_switch(self, k, cpu: int, prev: int, nxt: int) -> None:
        """The mm part of context_switch; today's kernel unless a policy says otherwise."""
        k.context_switch(cpu, prev, nxt)

    def enter_lazy_tlb(self, k, cpu: int, mm, task: int) -> None:
        """The CPU keeps ``mm`` loaded for a task without one (generic: nothing)."""

    def switch_mm_irqs_off(self, k, cpu: int, prev_mm, next_mm: int, task: int) -> None:
        """asm-generic switch_mm trusts prev: page tables are loaded when prev != next."""
        k.cost[C_SWITCH_MM] += 1
        if prev_mm != next_mm:
            k.cost[C_PGTABLE] += 1
        k.c_loaded[cpu] = next_mm
        k.c_lazy[cpu] = False
        k.d_cpus.add(cpu)

    def activate_mm(self, k, cpu: int, prev_mm, next_mm: int, task: int) -> None:
        """exec_mmap's switch to the new mm."""
        self.switch_mm_irqs_off(k, cpu, prev_mm, next_mm, task)

    def switch_to(self, k, cpu: int, prev: int, nxt: int) -> None:
        """The register switch (alpha loads the page-table base here too)."""

    def init_new_context(self, k, task: int, mm: int) -> None:
        """Arch set-up of a fresh mm at fork (alpha writes the child's PCB)."""

    # ---- freeing -----------------------------------------------------------
    def exit_mmap(self, k, mm: int) -> None:
        """The teardown in __mmput, ending in the full-mm TLB flush."""

    def cleanup_lazy_tlbs(self, k, mm: int) -> None:
        """__mmdrop's first step: nothing under MMU_LAZY_TLB_REFCOUNT."""

    def flush_tlb_mm_range(self, k, mm: int, freed_tables: bool, from_cpu) -> None:
        """A TLB flush of ``mm`` requested by `flush @M` (generic: no IPIs modelled)."""

    def unlazy(self, k, cpu: int) -> None:
        """Make a lazy CPU give its borrowed mm back: sched_force_init_mm."""
        k.sched_force_init_mm(cpu)

    # ---- what the fields read ---------------------------------------------
    def loaded_mm(self, k, cpu: int):
        return k.c_loaded[cpu]

    def is_lazy(self, k, cpu: int) -> bool:
        """The CPU's current task has no mm and runs on a borrowed user mm."""
        t = k.c_curr[cpu]
        return k.c_online[cpu] and k.t_mm[t] is None and k.t_active[t] not in (None, INIT_MM)

    def cpumask(self, k, mm: int):
        """mm_cpumask as a bit mask, or None where the policy does not track it."""
        return k.m_cpumask[mm] if "cpumask" in self.hardware_fields else None

    # ---- helpers for the policies that track mm_cpumask ------------------------
    def cpumask_covers_loaded(self, k, out: list, function: str) -> None:
        """A CPU with a user mm loaded is in that mm's mm_cpumask: flushes and the
        lazy-TLB shootdown find the CPUs to reach through it."""
        for cpu in range(k.ncpus):
            m = k.c_loaded[cpu]
            if k.c_online[cpu] and m not in (None, INIT_MM) and not k.m_freed[m] \
                    and not k.m_cpumask[m] >> cpu & 1:
                out.append(Violation("mm_cpumask", f"cpu{cpu} has {k.m_name[m]} loaded but is not in its "
                                     f"mm_cpumask: a flush or shootdown of {k.m_name[m]} would miss it",
                                     function, m))

    # ---- invariants of this policy ---------------------------------------------
    def check(self, k, out: list) -> None:
        """No CPU's loaded page tables belong to a freed mm (use-after-free)."""
        for cpu in k.d_cpus:
            m = self.loaded_mm(k, cpu)
            if m is not None and k.m_freed[m] and k.c_online[cpu]:
                out.append(self.loaded_freed(k, cpu, m, f"{self.name} switch_mm"))
        for m in k.d_mms:
            if k.m_freed[m]:
                for cpu in range(k.ncpus):
                    if cpu not in k.d_cpus and k.c_online[cpu] and self.loaded_mm(k, cpu) == m:
                        out.append(self.loaded_freed(k, cpu, m, "__mmdrop (kernel/fork.c)"))

    def loaded_freed(self, k, cpu: int, m: int, function: str) -> Violation:
        """The violation of an online CPU whose loaded page tables belong to freed ``m``."""
        return Violation("use-after-free", f"cpu{cpu} still has the page tables of {k.m_name[m]} loaded, "
                         f"but {k.m_name[m]} was freed", function, m)
