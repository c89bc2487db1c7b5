"""The switch-policy interface: what an architecture (kernel configuration) decides.

A policy is a small stateless class.  What differs between architectures is
data where it can be (the class attributes below: the lazy-TLB scheme, the
hardware fields, hotplug) and code where it must: the hooks where the kernel
calls arch code (enter_lazy_tlb, switch_mm_irqs_off, activate_mm, switch_to,
init_new_context, exit_mmap's final flush, flush_tlb_mm_range, trap_init,
cpu_up/cpu_dead).  The kernel's own code (context_switch, exit_mm, exec_mmap,
kthread_use_mm, hotplug, __mmdrop's cleanup_lazy_tlbs) is in
interpreter/kernel.py; what changed between releases is asked of the kernel
version (interpreter/version.py), not of the policy.

A hook receives the kernel ``k``.  It reads k's lists and changes nothing
there itself: hardware through the handle ``k.hw`` (interpreter/hw.py: load
page tables, mm_cpumask, IPIs, trace lines), anything else through a named
kernel operation (k.mmgrab, k.mmgrab_lazy_tlb, k.mmdrop_lazy_tlb,
k.switch_to_init_mm).  Whatever hardware state a policy models lives in
the Kernel's lists (c_loaded, c_lazy, m_cpumask, t_ptbr), never in the
policy, so kernel states stay copyable and hashable.

The defaults here are the generic kernel (asm-generic/mmu_context.h, v6.x):
every hook a policy does not override behaves as on generic.
"""
from __future__ import annotations

from typing import Optional

from .. import version as V
from ..kernel import INIT_MM, Refusal, Violation


class Policy:
    #: the name written after `arch` in a scenario
    name = "generic"
    #: one line for `mmscn compare` and the docs
    summary = "MMU_LAZY_TLB_REFCOUNT, no arch state (asm-generic)"
    #: the kernel release this policy stands for (linux-2.3: v2.3.13); None: the newest modelled
    kernel: Optional[str] = None
    #: a check() explore/memo.py may remember runs under besides Policy.check's, which reads only
    #: what the statement touched: one that also reads every CPU's mm_cpumask bit (memo.py then
    #: keeps only runs that leave every mm_cpumask and every mm's last user as they were)
    memo_check = None
    #: CONFIG_MMU_LAZY_TLB_REFCOUNT: lazy borrowers hold an mm_count reference (else
    #: MMU_LAZY_TLB_SHOOTDOWN: __mmdrop's cleanup_lazy_tlbs IPIs them off the mm)
    lazy_tlb_refcount = True
    #: with lazy_tlb_refcount off: the change by which the arch selects MMU_LAZY_TLB_SHOOTDOWN (a key of
    #: interpreter/version.py's CHANGES; powerpc: 77f68ebeee20); before it the arch refcounts lazy users
    lazy_tlb_shootdown_by: Optional[str] = None
    #: a secondary CPU's bring-up takes init_mm with mmgrab_lazy_tlb (powerpc's start_secondary),
    #: not plain mmgrab (x86, arm64, riscv)
    bringup_grab_lazy_tlb = False
    #: the architecture supports CPU hotplug (offline/online, and so sched_force_init_mm)
    has_cpu_hotplug = True
    #: hardware fields this policy models: any of "loaded_mm", "lazy", "cpumask", "ptbr" (alpha's PCB)
    hardware_fields: tuple = ()
    #: mm_count references on init_mm that boot takes and nothing ever drops (x86: cpu_init on the boot CPU)
    init_mm_boot_pins = 0
    #: the policy says which CPUs each flush reaches (k.hw.tlb_caught_up); off: the kernel takes every
    #: CPU with the mm loaded as reached (generic, arm64's broadcast TLBI, powerpc's tlbie)
    tlb_generations = False
    #: the newest release that has this architecture (ia64: v6.6), None: every modelled release
    newest_kernel: Optional[str] = None
    #: the change (a key of interpreter/version.py's CHANGES) that removed this architecture
    removed_by: Optional[str] = None

    def kernel_problem(self, version) -> Optional[str]:
        """Why this architecture cannot run ``version`` (a KernelVersion), None when it can."""
        # a revert of the removal does not bring the arch back: its code here follows the last release with it
        if self.removed_by and V.lands(self.removed_by, version.release):
            return (f"arch {self.name} was removed from the kernel by {self.removed_by} in "
                    f"{V.change(self.removed_by).release}; {version.name} has no {self.name}: the model runs "
                    f"{self.name} on {V.OLDEST} to {self.newest_kernel} (name `kernel {self.newest_kernel}` or older)")
        return None

    # ---- boot and hotplug ------------------------------------------------
    def trap_init(self, k) -> None:
        """The arch's trap_init on the boot CPU, after sched_init (x86: cpu_init)."""

    def cpu_up(self, k, cpu: int) -> None:
        """Arch state of a CPU coming up on init_mm (at boot and `online`)."""

    def cpu_dead(self, k, cpu: int) -> None:
        """After sched_force_init_mm on a dying CPU, before finish_cpu."""

    # ---- the scheduler's hand-over ------------------------------------------
    def enter_lazy_tlb(self, k, cpu: int, mm, task: int) -> None:
        """The CPU keeps ``mm`` loaded for a task without one (generic: nothing)."""

    def switch_mm_irqs_off(self, k, cpu: int, prev_mm, next_mm: int, task: Optional[int]) -> None:
        """asm-generic switch_mm trusts prev: page tables are loaded when prev != next."""
        k.hw.switch_mm(cpu)
        if prev_mm != next_mm:
            k.hw.load(cpu, next_mm)

    def activate_mm(self, k, cpu: int, prev_mm, next_mm: int, task: int) -> None:
        """exec_mmap's switch to the new mm."""
        self.switch_mm_irqs_off(k, cpu, prev_mm, next_mm, task)

    def switch_to(self, k, cpu: int, prev: int, nxt: int) -> None:
        """The register switch (alpha loads the page-table base here too)."""

    def init_new_context(self, k, task: int, mm: int) -> None:
        """Arch set-up of a fresh mm at fork (alpha writes the child's PCB)."""

    # ---- flushes -----------------------------------------------------------
    def exit_mmap(self, k, mm: int) -> None:
        """The teardown in __mmput, ending in the full-mm TLB flush."""

    def flush_tlb_mm_range(self, k, mm: int, freed_tables: bool, from_cpu) -> None:
        """A TLB flush of ``mm`` requested by `flush @M` (generic: no IPIs modelled)."""

    def interrupt_entry(self, k, cpu: int) -> None:
        """An interrupt lands on ``cpu`` at an irqs-on boundary: the arch may check what it sees."""

    def asid_rollover(self, k, cpu: int) -> None:
        """`rollover cpuN`: the CPU's address-space ids run out at its next allocation."""
        raise Refusal(f"arch {self.name} has no address-space ids with generations in the model; `rollover` "
                      f"runs on arm (ASID versions) and ia64 (context numbers)",
                      "__new_context (arch/arm/mm/context.c), wrap_mmu_context (arch/ia64/mm/tlb.c)")

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
                    and not k.hw.in_cpumask(m, cpu):
                out.append(Violation("mm_cpumask", f"cpu{cpu} has {k.m_name[m]} loaded but is not in its "
                                     f"mm_cpumask: a flush or shootdown of {k.m_name[m]} would miss it",
                                     function, m))

    # ---- invariants of this policy ---------------------------------------------
    def check(self, k, out: list, touched_cpus: set, touched_mms: set) -> None:
        """No CPU's loaded page tables belong to a freed mm (use-after-free).  ``touched_cpus``,
        ``touched_mms``: what the statement touched (the kernel's own sets: do not change them)."""
        m_freed, c_online = k.m_freed, k.c_online
        # (this runs after every statement: where loaded_mm is the generic one, c_loaded is read
        # without a Python call per CPU)
        loaded = k.c_loaded.__getitem__ if type(self).loaded_mm is Policy.loaded_mm \
            else lambda cpu: self.loaded_mm(k, cpu)
        for cpu in touched_cpus:
            m = loaded(cpu)
            if m is not None and m_freed[m] and c_online[cpu]:
                out.append(self.loaded_freed(k, cpu, m, f"{self.name} switch_mm"))
        for m in touched_mms:
            if m_freed[m]:
                for cpu in range(k.ncpus):
                    if cpu not in touched_cpus and c_online[cpu] and loaded(cpu) == m:
                        out.append(self.loaded_freed(k, cpu, m, "__mmdrop (kernel/fork.c)"))

    def loaded_freed(self, k, cpu: int, m: int, function: str) -> Violation:
        """The violation of an online CPU whose loaded page tables belong to freed ``m``."""
        return Violation("use-after-free", f"cpu{cpu} still has the page tables of {k.m_name[m]} loaded, "
                         f"but {k.m_name[m]} was freed", function, m)
