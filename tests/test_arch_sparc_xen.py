"""sparc64 and Xen PV (issue 15 item 4), at operation granularity, derived by hand from the source.

sparc64 (arch/sparc/include/asm/mmu_context_64.h switch_mm, arch/sparc/kernel/smp_64.c
smp_flush_tlb_pending): every switch_mm reloads the secondary context and TSB (a page-table
load), and a CPU not yet in the mm's mask sets itself and flushes the context; a flush
cross-calls the other CPUs of mm_cpumask, except, before bafb056ce279, a flush by the only
user of its own mm, which resets the mask to this CPU (cpumask_copy) and sends nothing.

Xen PV (arch/x86/xen/mmu_pv.c xen_exit_mmap, xen_drop_mm_ref, drop_mm_ref_this_cpu): x86's
counters and switches; at the last mmput, before the teardown, every CPU whose CR3 holds the
pgd is sent to init_mm (leave_mm) so that the pgd can be unpinned; flushes are hypercalls.

LT-03 and LT-15 need a step inside an operation (issue 15's kernel steps): here the race is
played by calling the policy's own pieces in the order the interleaving runs them.
"""
import pytest

from mmscn.dsl.resolve import load
from mmscn.interpreter import policies
from mmscn.interpreter import version as V
from mmscn.interpreter.kernel import INIT_MM, Kernel
from mmscn.interpreter.runner import Runner

from test_arch_golden import snap

I, T_, U_ = "@init_mm", "@T", "@U"
F, T = False, True
FIXED = V.KernelVersion()
NO_SPARC_FIX = V.KernelVersion(reverts=[V.SPARC64_NO_CPUMASK_CLEAR])
NO_XEN_FIX = V.KernelVersion(reverts=[V.XEN_LAZY_CHECK])


def run_steps(src, arch, version, cpus):
    """The snapshots before and after each statement (statement i runs on cpus.get(i), a block's
    CPU) and the trace's events."""
    sc = load(src, "arch.mmscn")
    events = []
    r = Runner(sc, src.split("\n"), arch, version=version,
               on_step=lambda st, cpu, o, go_on: events.extend(o.events if o is not None else ()))
    out = [snap(r)]
    for i, st in enumerate(sc.stmts):
        assert r.step(st, cpus.get(i)) is True, (arch, st, r.result.diagnostics)
        out.append(snap(r))
    assert r.result.diagnostics == []
    return out, events


# ---------------------------------------------------------------- sparc64
SPARC = """cpus 2
spawn T
spawn kthread K
schedule cpu1 T
schedule cpu1 K
schedule cpu0 T
flush @T
schedule cpu0 idle0
schedule cpu1 T
"""
FLUSH_FROM_CPU0 = {5: 0}       # `flush @T` from T, current on cpu0

SPARC_BEFORE_FLUSH = [
    # boot: MMU_LAZY_TLB_REFCOUNT, init_mm count 1 + one lazy reference per idle task
    ({I: (2, 3)}, (I, I), (F, F), {I: set()}, (0, 0, 0, 0, 0, 0)),
    ({I: (2, 3), T_: (1, 1)}, (I, I), (F, F), {I: set(), T_: set()}, (0, 0, 0, 0, 0, 0)),
    ({I: (2, 3), T_: (1, 1)}, (I, I), (F, F), {I: set(), T_: set()}, (0, 0, 0, 0, 0, 0)),
    # idle1 -> T: tsb_context_switch (a load); cpu1 not in T's mask: set, __flush_tlb_mm; init_mm dropped
    ({I: (2, 2), T_: (1, 1)}, (I, T_), (F, F), {I: set(), T_: {1}}, (1, 0, 1, 1, 0, 0)),
    # T -> K: enter_lazy_tlb does nothing, mmgrab_lazy_tlb(T); cpu1 stays in the mask
    ({I: (2, 2), T_: (1, 2)}, (I, T_), (F, T), {I: set(), T_: {1}}, (2, 0, 1, 1, 1, 0)),
    # idle0 -> T on cpu0: a load, cpu0 set in the mask
    ({I: (2, 1), T_: (1, 2)}, (T_, T_), (F, T), {I: set(), T_: {0, 1}}, (3, 0, 2, 2, 1, 0)),
]
SPARC_FIXED = SPARC_BEFORE_FLUSH + [
    # flush from cpu0: smp_call_function_many(mm_cpumask) reaches lazy cpu1: one IPI, the mask stays
    ({I: (2, 1), T_: (1, 2)}, (T_, T_), (F, T), {I: set(), T_: {0, 1}}, (3, 0, 2, 2, 1, 1)),
    # T -> idle0: idle0 borrows T (+1)
    ({I: (2, 1), T_: (1, 3)}, (T_, T_), (T, T), {I: set(), T_: {0, 1}}, (4, 0, 2, 2, 2, 1)),
    # K -> T on cpu1: switch_mm(T, T) still reloads the context (a load); cpu1 in the mask: no flush;
    # rq->prev_mm = T from K, dropped in finish_task_switch (-1)
    ({I: (2, 1), T_: (1, 2)}, (T_, T_), (T, F), {I: set(), T_: {0, 1}}, (5, 0, 3, 3, 2, 1)),
]
SPARC_BUGGY = SPARC_BEFORE_FLUSH + [
    # mm == current->mm && mm_users == 1: cpumask_copy(mm_cpumask, cpumask_of(0)), no IPI
    ({I: (2, 1), T_: (1, 2)}, (T_, T_), (F, T), {I: set(), T_: {0}}, (3, 0, 2, 2, 1, 0)),
    ({I: (2, 1), T_: (1, 3)}, (T_, T_), (T, T), {I: set(), T_: {0}}, (4, 0, 2, 2, 2, 0)),
    # K -> T on cpu1: cpu1 is not in the mask any more: set again and __flush_tlb_mm (what makes the
    # shortcut safe for a lazy CPU: it flushes before it runs T's code)
    ({I: (2, 1), T_: (1, 2)}, (T_, T_), (T, F), {I: set(), T_: {0, 1}}, (5, 0, 3, 3, 2, 0)),
]


@pytest.mark.parametrize("version, want", [(FIXED, SPARC_FIXED), (NO_SPARC_FIX, SPARC_BUGGY)],
                         ids=["v6.17", "without bafb056ce279"])
def test_sparc64_step_by_step(version, want):
    got, _ = run_steps(SPARC, "sparc64", version, FLUSH_FROM_CPU0)
    assert got == want


def test_sparc64_trace_names_the_shortcut_and_the_cross_call():
    for version, line in ((NO_SPARC_FIX, "mm == current->mm && mm_users == 1: cpumask_copy(mm_cpumask, "
                                         "cpumask_of(cpu0)), local flush only"),
                          (FIXED, "smp_call_function_many(mm_cpumask): cpu1")):
        _, events = run_steps(SPARC, "sparc64", version, FLUSH_FROM_CPU0)
        assert ("op", "@T", "smp_flush_tlb_pending", line) in events


def test_sparc64_shortcut_needs_current_mm_and_one_user():
    # a flush from outside the scenario's CPUs (no current) and one by a thread of a shared mm cross-call
    src = "cpus 2\nspawn T\nspawn thread T2 of T\nschedule cpu0 T\nschedule cpu1 T2\nflush @T\n"
    for cpus in ({}, {4: 0}):
        got, _ = run_steps(src, "sparc64", NO_SPARC_FIX, cpus)
        assert got[-1][3]["@T"] == {0, 1}
        assert got[-1][4][5] == (1 if cpus else 2)      # IPIs: the other CPU, or both from outside


def lt03_state(version):
    """T alone on cpu0, K (io_uring's SQPOLL thread) on cpu1 borrowing init_mm."""
    k = Kernel(2, policies.get("sparc64"), version=version)
    t = k.copy_process("T", "@T")
    kt = k.kthread_create("K")
    k.schedule(0, t)
    k.schedule(1, kt)
    k.check()
    return k, k.mm_ix["@T"], kt


@pytest.mark.parametrize("version", [FIXED, NO_SPARC_FIX], ids=["v6.17", "without bafb056ce279"])
def test_lt03_the_interleaving_by_hand(version):
    """LT-03: smp_flush_tlb_pending's test, then mmget_not_zero + kthread_use_mm on cpu1, then the
    rest of the flush.  Before bafb056ce279 cpumask_copy wipes cpu1, which runs K on @T: rule
    mm_cpumask; with the fix the flush cross-calls cpu1."""
    k, m, kt = lt03_state(version)
    pol = k.arch
    single = pol.single_user(k, m, 0) and not version.has(V.SPARC64_NO_CPUMASK_CLEAR)   # the test, on cpu0
    assert single == (version is NO_SPARC_FIX)
    assert k.ext_mmget_not_zero(m)                                                          # cpu1
    k.kthread_use_mm(kt, m)
    assert k.check() == [] and k.m_cpumask[m] == 0b11
    k.this_cpu = 0
    if single:                                          # cpu0 goes on with what its test decided
        pol.cpumask_copy(k, m, 0)
    else:
        pol.flush_tlb_mm_range(k, m, False, 0)
    rules = [(v.rule, v.mm) for v in k.check()]
    if single:
        assert rules == [("mm_cpumask", m)] and k.m_cpumask[m] == 0b01
    else:
        assert rules == [] and k.m_cpumask[m] == 0b11 and k.cost[5] == 1
    # T changes its mappings again: mm_users is 2 now, so the cross call, to the mask
    k.flush(m, False, 0)
    rules = [v.rule for v in k.check()]
    assert rules == (["stale-tlb", "mm_cpumask"] if single else [])     # the kernel's rule, then the arch's


def test_sparc64_whole_operations_cannot_race():
    # with every operation atomic the adoption comes before or after the flush, and both are safe
    for version in (FIXED, NO_SPARC_FIX):
        k, m, kt = lt03_state(version)
        k.ext_mmget_not_zero(m)
        k.kthread_use_mm(kt, m)
        k.flush(m, False, 0)                    # mm_users is 2: the cross call
        assert k.check() == [] and k.m_cpumask[m] == 0b11
        k, m, kt = lt03_state(version)
        k.flush(m, False, 0)                    # the shortcut, if any, before the adoption
        k.ext_mmget_not_zero(m)
        k.kthread_use_mm(kt, m)
        assert k.check() == [] and k.m_cpumask[m] == 0b11


# ---------------------------------------------------------------- Xen PV
XEN = """cpus 2
spawn U
spawn kthread K
schedule cpu1 U
schedule cpu1 K
schedule cpu0 U
exit U
schedule cpu0 idle0
"""
XEN_STEPS = [
    # boot: x86's counters (cpu_init's second init_mm reference on the boot CPU)
    ({I: (2, 4)}, (I, I), (F, F), {I: set()}, (0, 0, 0, 0, 0, 0)),
    ({I: (2, 4), U_: (1, 1)}, (I, I), (F, F), {I: set(), U_: set()}, (0, 0, 0, 0, 0, 0)),
    ({I: (2, 4), U_: (1, 1)}, (I, I), (F, F), {I: set(), U_: set()}, (0, 0, 0, 0, 0, 0)),
    # idle1 -> U: CR3 init_mm -> U, cpu1 in U's mask
    ({I: (2, 3), U_: (1, 1)}, (I, U_), (F, F), {I: set(), U_: {1}}, (1, 0, 1, 1, 0, 0)),
    # U -> K: is_lazy, CR3 keeps U, mmgrab_lazy_tlb(U)
    ({I: (2, 3), U_: (1, 2)}, (I, U_), (F, T), {I: set(), U_: {1}}, (2, 0, 1, 1, 1, 0)),
    # idle0 -> U on cpu0
    ({I: (2, 2), U_: (1, 2)}, (U_, U_), (F, T), {I: set(), U_: {0, 1}}, (3, 0, 2, 2, 1, 0)),
    # exit U: exit_mm +1 and lazy; mmput 1 -> 0; xen_exit_mmap: cpu0 (lazy, local) leave_mm -> CR3
    # init_mm; cpu1 (lazy, CR3 on U's pgd) one IPI, leave_mm -> CR3 init_mm; unpin; the final flush is a
    # hypercall (no IPI); __mmput's mmdrop -1.  Both CPUs stay in U's mask (x86 never clears at a switch).
    ({I: (2, 2), U_: (0, 2)}, (I, I), (F, F), {I: set(), U_: {0, 1}}, (5, 1, 4, 4, 1, 1)),
    # dead U -> idle0: kernel -> kernel, U's lazy reference handed over
    ({I: (2, 2), U_: (0, 2)}, (I, I), (F, F), {I: set(), U_: {0, 1}}, (5, 1, 4, 4, 2, 1)),
]


@pytest.mark.parametrize("version", [FIXED, NO_XEN_FIX], ids=["v6.17", "without 7899891c7d16"])
def test_xen_pv_exit_sends_lazy_cpus_to_init_mm(version):
    got, events = run_steps(XEN, "xen-pv", version, {})
    assert got == XEN_STEPS                      # the fix changes nothing where every CPU is lazy
    assert ("op", "cpu1", "drop_mm_ref_this_cpu", "IPI: lazy on @U: leave_mm") in events
    assert ("op", "@U", "xen_drop_mm_ref", "xen_current_cr3 is its pgd on: cpu1") in events


def test_xen_pv_flush_is_a_hypercall():
    src = "cpus 2\nspawn U\nspawn thread U2 of U\nschedule cpu0 U\nschedule cpu1 U2\nflush @U tables\n"
    got, events = run_steps(src, "xen-pv", FIXED, {})
    assert got[-1][4][5] == 0 and got[-1][1] == (U_, U_)       # no IPI, nobody leaves the mm
    assert ("op", "@U", "xen_flush_tlb_multi", "MMUEXT_TLB_FLUSH_MULTI, no IPI: cpu0, cpu1") in events


def lt15_exit(version):
    """LT-15's window: cpu1 lazy on @U is picked by xen_drop_mm_ref (its CR3 holds @U's pgd) and,
    before the IPI lands, leaves lazy mode: inside the 2012 switch_mm, after cpu_tlbstate.state =
    TLBSTATE_OK and before the CR3 write.  Whole operations never leave a CPU so; the test puts cpu1
    there by hand, then the last user exits on cpu0."""
    k = Kernel(2, policies.get("xen-pv"), version=version)
    u = k.copy_process("U", "@U")
    kt = k.kthread_create("K")
    k.schedule(1, u)
    k.schedule(1, kt)                   # lazy on @U
    k.schedule(0, u)
    k.check()
    k.hw.switch_mm(1)                   # switch_mm has begun on cpu1: not lazy, CR3 still @U's pgd
    k.check()
    k.do_exit(u)                        # exit_mmap -> xen_exit_mmap: the IPI finds cpu1 so
    return k, k.mm_ix["@U"]


@pytest.mark.parametrize("version", [FIXED, NO_XEN_FIX], ids=["v6.17", "without 7899891c7d16"])
def test_lt15_the_handler_on_a_cpu_that_left_lazy_mode(version):
    k, m = lt15_exit(version)
    got = [(v.rule, v.cause) for v in k.check()]
    if version is NO_XEN_FIX:
        # leave_mm BUG()s on TLBSTATE_OK; the pgd is still in cpu1's CR3 at the unpin, which follows
        assert got == [("leave_mm-not-lazy", None), ("xen-pinned-pgd", 0)]
    else:
        # 7899891c7d16: no leave_mm; the stale-cr3 test moves CR3 off the pgd
        assert got == [] and k.c_loaded[1] == INIT_MM


# ---------------------------------------------------------------- offline in stages (issue 15 item 3)
def stage_names(version):
    k = Kernel(2, policies.get("powerpc"), version=version)
    return [f.__name__ for f in k.offline_stages()]


def test_offline_stages_by_release():
    assert stage_names(FIXED) == ["sched_cpu_wait_empty", "take_cpu_down", "arch_cpu_idle_dead", "finish_cpu"]
    assert stage_names(V.KernelVersion("v6.13")) == ["take_cpu_down", "arch_cpu_idle_dead", "finish_cpu"]
    assert stage_names(V.KernelVersion("v5.7")) == ["take_cpu_down", "arch_cpu_idle_dead"]


def lt07(version, exit_after):
    """LT-07 on powerpc (MMU_LAZY_TLB_SHOOTDOWN): idle1 lazy on @U, U's last thread on cpu0; cpu1 goes
    down stage by stage and U exits on cpu0 after stage ``exit_after``."""
    k = Kernel(2, policies.get("powerpc"), version=version)
    u = k.copy_process("U", "@U")
    k.schedule(1, u)
    k.schedule(1, 1)                    # idle1 lazy on @U: no count under shootdown
    k.schedule(0, u)
    assert k.check() == []
    m = k.mm_ix["@U"]
    rules = []
    for stage in k.offline_stages():
        stage(1)
        rules += [(stage.__name__, v.rule) for v in k.check()]
        if stage.__name__ == exit_after:
            k.do_exit(u)
            rules += [("exit", v.rule) for v in k.check()]
    return k, m, rules


def test_lt07_exit_between_cpu_disable_and_the_dead_cpu():
    # v6.13 (before 21641bd9a7a7): __cpu_disable clears cpu1 from @U's mask while idle1 is still lazy on
    # it; the exit's __mmdrop shoots down only the mask (cpu0) and frees @U under idle1
    k, m, rules = lt07(V.KernelVersion("v6.13"), "take_cpu_down")
    assert rules[0] == ("exit", "use-after-free") and k.m_freed[m]
    # v6.14: sched_cpu_wait_empty moved idle1 to init_mm first; the same order is safe
    k, m, rules = lt07(V.KernelVersion("v6.14"), "take_cpu_down")
    assert rules == [] and k.m_freed[m] and k.t_active[1] is None


def test_offline_stages_run_in_order_as_one_statement():
    # `offline` runs the stages in order: the same state as the stages one by one
    for version in (FIXED, V.KernelVersion("v6.13"), V.KernelVersion("v5.7")):
        a = Kernel(2, policies.get("powerpc"), version=version)
        b = Kernel(2, policies.get("powerpc"), version=version)
        a.cpu_down(1)
        for stage in b.offline_stages():
            stage(1)
        assert a.key() == b.key() and not a.c_online[1]
