"""The handle through which a policy changes the machine (``k.hw``).

An architecture's hooks read the kernel's lists (who runs where, which mm a
task has) but change only hardware, and only through these methods, each of
which does the bookkeeping: the cost counters, the set of CPUs, mms and tasks
the statement touched (which the invariants look at afterwards) and the trace
line.  Everything else a hook needs is a named kernel operation
(``k.mmgrab``, ``k.mmgrab_lazy_tlb``, ``k.switch_to_init_mm``, ...).
tests/test_policy_boundary.py holds the policies to this.
"""
from __future__ import annotations

from typing import Optional

# cost counters, indexes into Kernel.cost
C_COUNT, C_USERS, C_SWITCH_MM, C_PGTABLE, C_LAZY, C_IPI = range(6)
COST_NAMES = ("mm_count_atomics", "mm_users_atomics", "switch_mm", "pgtable_loads",
              "lazy_switches", "ipis")


class Hardware:
    __slots__ = ("k",)

    def __init__(self, k):
        self.k = k

    # ---- effects ---------------------------------------------------------------
    def switch_mm(self, cpu: int) -> None:
        """One call of the arch's switch_mm on ``cpu`` (counted), which leaves lazy mode."""
        k = self.k
        k.cost[C_SWITCH_MM] += 1
        k.c_lazy[cpu] = False
        k.d_cpus.add(cpu)

    def load(self, cpu: int, mm: int) -> None:
        """``cpu`` loads ``mm``'s page tables (CR3, TTBR0, the PCB's ptbr): one page-table load.
        The TLB holds nothing stale of ``mm`` after it (a CR3 write flushes; an ASID or context
        number still valid was reached by every flush of ``mm`` since it was handed out)."""
        k = self.k
        k.cost[C_PGTABLE] += 1
        k.c_loaded[cpu] = mm
        k.c_lazy[cpu] = False
        k.c_tlb_gen[cpu] = k.m_tlb_gen[mm]
        k.d_cpus.add(cpu)

    def set_lazy(self, cpu: int) -> None:
        """x86's cpu_tlbstate_shared.is_lazy = true: the CPU runs a kernel thread on what it has loaded."""
        k = self.k
        k.c_lazy[cpu] = True
        k.d_cpus.add(cpu)

    def cpumask_set(self, mm: int, cpu: int) -> None:
        k = self.k
        k.m_cpumask[mm] |= 1 << cpu
        k.d_mms.add(mm)
        k.d_cpus.add(cpu)

    def cpumask_clear(self, mm: int, cpu: int) -> None:
        k = self.k
        k.m_cpumask[mm] &= ~(1 << cpu)
        k.d_mms.add(mm)
        k.d_cpus.add(cpu)

    def flush_tlb(self, cpu: int) -> None:
        """``cpu`` flushes its own TLB (invlpg/CR3 reload, tlbiel): nothing is counted; it has caught
        up with its loaded mm's flush generation."""
        self.k.d_cpus.add(cpu)
        self.tlb_caught_up(cpu)

    def tlb_caught_up(self, cpu: int) -> None:
        """``cpu`` flushed its TLB of its loaded mm (flush_tlb_func, local_flush_tlb_mm, ptc.l/ptc.ga,
        a catch-up at switch_mm): it holds nothing older than that mm's flush generation."""
        k = self.k
        m = k.c_loaded[cpu]
        if m is not None and k.c_tlb_gen[cpu] != k.m_tlb_gen[m]:
            k.c_tlb_gen[cpu] = k.m_tlb_gen[m]
            k.d_cpus.add(cpu)

    def set_asid(self, cpu: int, gen: int) -> None:
        """``cpu``'s registers now hold an address-space id of generation ``gen`` (cpu_switch_mm's
        CONTEXTIDR write, ia64 reload_context)."""
        k = self.k
        k.c_asid_gen[cpu] = gen
        k.d_cpus.add(cpu)

    def new_asid(self, mm: int, gen: int) -> None:
        """``mm`` is handed an address-space id of generation ``gen`` (ARM __new_context, ia64
        get_mmu_context); 0: it has none (ia64 flush_tlb_mm's mm->context = 0)."""
        k = self.k
        k.m_asid_gen[mm] = gen
        k.d_mms.add(mm)

    def set_rollover(self, cpu: int, pending: bool) -> None:
        """`rollover cpuN` arms the CPU's next id allocation; the allocation that rolls over disarms it."""
        k = self.k
        k.c_rollover[cpu] = pending
        k.d_cpus.add(cpu)

    def set_asn_lock(self, cpu: int, locked: bool) -> None:
        """alpha cpu_data[cpu].asn_lock: ev5_switch_mm sets it, check_mmu_context (switch_to) clears it."""
        k = self.k
        k.c_asn_lock[cpu] = locked
        k.d_cpus.add(cpu)

    def set_ptbr(self, task: int, mm: Optional[int]) -> None:
        """alpha: the page-table base in ``task``'s PCB, what its next swpctx loads."""
        k = self.k
        k.t_ptbr[task] = mm
        k.d_tasks.add(task)

    def ipi(self, cpu: int) -> None:
        """An IPI to ``cpu`` (counted); its handler is the caller's next step."""
        self.k.cost[C_IPI] += 1

    def smp_call(self, cpus, fn: str, mm: int, after: Optional[str] = None) -> None:
        """smp_call_function_many(cpus, fn, mm, wait=1) from k.this_cpu: the policy's method ``fn``
        (k, cpu, mm) runs on each target, then its method ``after`` (k, mm, this_cpu), if any.
        Inside a kernel step (granularity step) the IPIs are queued on the targets and the
        sender's operation waits for them (interpreter/steps.py); otherwise each handler runs
        at once, as the whole operation's next step."""
        k = self.k
        sender = k.this_cpu
        cpus = list(cpus)
        if not k.stepping or sender is None or not cpus:
            for c in cpus:
                self.ipi(c)
                getattr(k.arch, fn)(k, c, mm)
            k.this_cpu = sender
            if after is not None:
                getattr(k.arch, after)(k, mm, sender)
            return
        for c in cpus:              # counted when taken (Kernel.run_ipi), where its handler runs
            k.c_ipi_from[c] |= 1 << sender
            k.d_cpus.add(c)
        k.c_ipi_fn[sender], k.c_ipi_mm[sender], k.c_ipi_after[sender] = fn, mm, after
        k.d_cpus.add(sender)
        self.event(f"cpu{sender}", "smp_call_function_many", "{} to {}: queued, cpu{} waits",
                   fn, ", ".join(f"cpu{c}" for c in cpus), sender)

    def event(self, subject: str, function: str, detail: str = "", *args) -> None:
        """A line of the trace: ``function`` did ``detail`` to ``subject``.  With args, detail is
        a str.format template, formatted only when the trace is kept (as Kernel._op)."""
        ev = self.k.ev
        if ev is not None:
            ev.append(("op", subject, function, detail.format(*args) if args else detail))

    # ---- read-only views ---------------------------------------------------------
    def in_cpumask(self, mm: int, cpu: int) -> bool:
        return bool(self.k.m_cpumask[mm] >> cpu & 1)

    def cpus_in_mask(self, mm: int) -> list:
        """The online CPUs in mm_cpumask(mm), in order."""
        k = self.k
        mask = k.m_cpumask[mm]
        return [c for c in range(k.ncpus) if mask >> c & 1 and k.c_online[c]]
