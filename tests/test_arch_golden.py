"""Golden traces per policy, derived by hand from the kernel source.

One story (the zombie mm of Documentation/mm/active_mm.rst: A runs on two
CPUs, a kernel thread borrows it, A exits) runs under every built-in policy;
after each statement the test compares the counters, what each CPU has
loaded, is_lazy, mm_cpumask and the cost counters with values worked out from
the functions named in the comments.  A second story drives x86's flushes.
"""
import pytest

from mmscn.dsl.resolve import load
from mmscn.interpreter.kernel import INIT_MM
from mmscn.interpreter.runner import Runner
from mmscn.interpreter.conditions import cost_dict

from test_zombie_golden import SRC as ZOMBIE  # the design's zombie-mm story

COSTS = ("mm_count_atomics", "mm_users_atomics", "switch_mm", "pgtable_loads", "lazy_switches", "ipis")


def snap(r):
    """(counters, loaded_mm per CPU, lazy per CPU, mm_cpumask of live mms, costs) in names."""
    k, p = r.k, r.policy
    counters = {k.m_name[m]: (k.m_users[m], k.m_count[m]) for m in range(len(k.m_name))}
    loaded = tuple(k.mm_label(p.loaded_mm(k, c)) for c in range(k.ncpus))
    lazy = tuple(bool(p.is_lazy(k, c)) for c in range(k.ncpus))
    masks = {}
    for m in range(len(k.m_name)):
        mask = p.cpumask(k, m)
        if mask is not None and not k.m_freed[m]:
            masks[k.m_name[m]] = {c for c in range(k.ncpus) if mask >> c & 1}
    cost = cost_dict(k)
    return counters, loaded, lazy, masks, tuple(cost[n] for n in COSTS)


def run_steps(src, arch):
    sc = load(src, "golden.mmscn")
    r = Runner(sc, src.split("\n"), arch)
    yield snap(r)
    for st in sc.stmts:
        assert r.step(st, None) is True, (arch, st, r.result.diagnostics)
        yield snap(r)


I, A = "@init_mm", "@A"
F, T = False, True

# ---------------------------------------------------------------- generic, arm64
# Counters per kernel/sched/core.c (context_switch, finish_task_switch) and kernel/exit.c (exit_mm),
# MMU_LAZY_TLB_REFCOUNT.  switch_mm trusts prev (asm-generic switch_mm; arm64 switch_mm: __switch_mm
# only when prev != next), so a page-table load is a switch_mm with prev != next.
REFCOUNT_STEPS = [
    # boot: init_mm users 2, count 1 static; sched_init's mmgrab_lazy_tlb for idle0, bring-up mmgrab for idle1
    ({I: (2, 3)}, (I, I), (F, F), (0, 0, 0, 0, 0, 0)),
    # spawn A: mm_init users 1, count 1
    ({I: (2, 3), A: (1, 1)}, (I, I), (F, F), (0, 0, 0, 0, 0, 0)),
    # spawn kthread kw: copy_mm returns early
    ({I: (2, 3), A: (1, 1)}, (I, I), (F, F), (0, 0, 0, 0, 0, 0)),
    # idle0 -> A: switch_mm(init_mm, A) loads; rq->prev_mm = init_mm, mmdrop_lazy_tlb_sched
    ({I: (2, 2), A: (1, 1)}, (A, I), (F, F), (1, 0, 1, 1, 0, 0)),
    # A -> kw: enter_lazy_tlb, mmgrab_lazy_tlb(A)
    ({I: (2, 2), A: (1, 2)}, (A, I), (T, F), (2, 0, 1, 1, 1, 0)),
    # idle1 -> A on cpu1: switch_mm(init_mm, A), mmdrop_lazy_tlb_sched(init_mm)
    ({I: (2, 1), A: (1, 2)}, (A, A), (T, F), (3, 0, 2, 2, 1, 0)),
    # exit A: exit_mm mmgrab_lazy_tlb +1, mmput users 1 -> 0, __mmput's mmdrop -1
    ({I: (2, 1), A: (0, 2)}, (A, A), (T, T), (5, 1, 2, 2, 1, 0)),
    # dead A -> idle1 (kernel -> kernel): the lazy reference is handed over
    ({I: (2, 1), A: (0, 2)}, (A, A), (T, T), (5, 1, 2, 2, 2, 0)),
]


@pytest.mark.parametrize("arch", ["generic", "arm64"])
def test_refcount_policies_step_by_step(arch):
    got = [(c, l, z, cost) for c, l, z, _, cost in run_steps(ZOMBIE, arch)]
    assert got == REFCOUNT_STEPS


def test_linux_2_3_step_by_step():
    # 2.4 kernel/sched.c schedule(): to a kernel task atomic_inc(&oldmm->mm_count); if prev had no mm,
    # mmdrop(oldmm) at once before switch_to.  Counters equal generic's after every statement.
    costs = [
        (0, 0, 0, 0, 0, 0),
        (0, 0, 0, 0, 0, 0),
        (0, 0, 0, 0, 0, 0),
        (1, 0, 1, 1, 0, 0),      # idle0 -> A: switch_mm; prev had no mm: mmdrop(init_mm)
        (2, 0, 1, 1, 1, 0),      # A -> kw: atomic_inc(&A->mm_count)
        (3, 0, 2, 2, 1, 0),      # idle1 -> A: mmdrop(init_mm)
        (5, 1, 2, 2, 1, 0),      # exit_mm: atomic_inc, mmput, the final mmdrop of __mmput
        (7, 1, 2, 2, 2, 0),      # dead A -> idle1: atomic_inc for idle1, mmdrop for A: two atomics
    ]
    got = [(c, cost) for c, _, _, _, cost in run_steps(ZOMBIE, "linux-2.3")]
    assert got == [(want[0], cost) for want, cost in zip(REFCOUNT_STEPS, costs)]


# ---------------------------------------------------------------- x86
def test_x86_step_by_step():
    # arch/x86/mm/tlb.c: enter_lazy_tlb sets is_lazy unless loaded_mm is init_mm; switch_mm_irqs_off
    # compares next with loaded_mm, sets the CPU in next's mm_cpumask and never clears prev's;
    # exit_mmap's final flush (tlb_flush -> flush_tlb_mm_range, freed_tables) reaches every CPU in
    # the mask, and a lazy one switches CR3 to init_mm (flush_tlb_func).
    want = [
        ((I, I), (F, F), {I: set()}, (0, 0, 0, 0, 0, 0)),
        ((I, I), (F, F), {I: set(), A: set()}, (0, 0, 0, 0, 0, 0)),
        ((I, I), (F, F), {I: set(), A: set()}, (0, 0, 0, 0, 0, 0)),
        # idle0 -> A: CR3 init_mm -> A, cpu0 set in A's mask
        ((A, I), (F, F), {I: set(), A: {0}}, (1, 0, 1, 1, 0, 0)),
        # A -> kw: is_lazy, CR3 keeps A
        ((A, I), (T, F), {I: set(), A: {0}}, (2, 0, 1, 1, 1, 0)),
        # idle1 -> A: CR3 on cpu1, cpu1 set in A's mask
        ((A, A), (T, F), {I: set(), A: {0, 1}}, (3, 0, 2, 2, 1, 0)),
        # exit A on cpu1: exit_mm's enter_lazy_tlb makes cpu1 lazy; exit_mmap's freed_tables flush:
        # an IPI to cpu0 and the local call on cpu1, both lazy: switch_mm_irqs_off(NULL, &init_mm)
        # twice (two CR3 writes); both CPUs stay in A's mask.  Counters as generic.
        ((I, I), (F, F), {I: set(), A: {0, 1}}, (5, 1, 4, 4, 1, 1)),
        # dead A -> idle1: enter_lazy_tlb returns at once, init_mm is loaded: not lazy
        ((I, I), (F, F), {I: set(), A: {0, 1}}, (5, 1, 4, 4, 2, 1)),
    ]
    steps = list(run_steps(ZOMBIE, "x86"))
    # counters as generic, but init_mm's count one higher throughout: trap_init -> cpu_init also runs
    # on the boot CPU and takes mmgrab(&init_mm) after sched_init's mmgrab_lazy_tlb; nothing drops it
    assert [c for c, *_ in steps] == [{m: (u, n + (m == I)) for m, (u, n) in c.items()}
                                      for c, *_ in REFCOUNT_STEPS]
    assert [(l, z, m, cost) for _, l, z, m, cost in steps] == want


FLUSHES = """cpus 2
spawn A
spawn thread A2 of A
spawn kthread kw
schedule cpu0 A
schedule cpu0 kw
schedule cpu1 A2
flush @A
flush @A tables
schedule cpu0 A
"""


def test_x86_flushes_step_by_step():
    want = [
        ((I, I), (F, F), {A: set()}, 0, 0, 0),      # after the three spawns
        ((A, I), (F, F), {A: {0}}, 1, 0, 1),        # idle0 -> A: CR3 write
        ((A, I), (T, F), {A: {0}}, 1, 0, 1),        # A -> kw: enter_lazy_tlb
        ((A, A), (T, F), {A: {0, 1}}, 2, 0, 2),     # idle1 -> A2: CR3 write, cpu1 in the mask
        # flush @A from outside: should_flush_tlb skips lazy cpu0, cpu1 has A loaded: one IPI
        ((A, A), (T, F), {A: {0, 1}}, 2, 1, 2),
        # flush @A tables: native_flush_tlb_multi IPIs both; cpu0 is lazy: CR3 -> init_mm
        ((I, A), (F, F), {A: {0, 1}}, 3, 3, 3),
        # kw -> A: loaded_mm is init_mm, not A: CR3 written although prev->active_mm == next
        ((A, A), (F, F), {A: {0, 1}}, 4, 3, 4),
    ]
    steps = list(run_steps(FLUSHES, "x86"))[3:]
    # (loaded_mm, lazy, A's mm_cpumask, pgtable_loads, ipis, switch_mm)
    got = [(l, z, {A: m[A]}, cost[3], cost[5], cost[2]) for _, l, z, m, cost in steps]
    assert got == want
    sc = load(FLUSHES, "f.mmscn")
    r = Runner(sc, FLUSHES.split("\n"), "x86")
    for st in sc.stmts[:-1]:
        r.step(st, None)
    k = r.k
    assert k.t_active[k.task_ix["kw"]] == k.mm_ix["@A"]     # leave_mm left active_mm alone
    assert k.m_count[k.mm_ix["@A"]] == 2                    # and the lazy reference


# ---------------------------------------------------------------- powerpc
def test_powerpc_step_by_step():
    # MMU_LAZY_TLB_SHOOTDOWN: the _lazy_tlb helpers do nothing (include/linux/sched/mm.h), so
    # init_mm's count is its static 1 and A's is 1 while A has users.  switch_mm_irqs_off
    # (arch/powerpc/mm/mmu_context.c) sets the CPU in next's mask; start_secondary puts every CPU
    # in init_mm's.
    want = [
        ({I: (2, 1)}, (I, I), {I: {0, 1}}, (0, 0, 0, 0, 0, 0)),
        ({I: (2, 1), A: (1, 1)}, (I, I), {I: {0, 1}, A: set()}, (0, 0, 0, 0, 0, 0)),
        ({I: (2, 1), A: (1, 1)}, (I, I), {I: {0, 1}, A: set()}, (0, 0, 0, 0, 0, 0)),
        # idle0 -> A: switch_mm loads, cpu0 in A's mask; mmdrop_lazy_tlb_sched(init_mm) is smp_mb()
        ({I: (2, 1), A: (1, 1)}, (A, I), {I: {0, 1}, A: {0}}, (0, 0, 1, 1, 0, 0)),
        # A -> kw: enter_lazy_tlb does nothing on Book3S-64; no mm_count taken
        ({I: (2, 1), A: (1, 1)}, (A, I), {I: {0, 1}, A: {0}}, (0, 0, 1, 1, 1, 0)),
        # idle1 -> A: cpu1 joins A's mask
        ({I: (2, 1), A: (1, 1)}, (A, A), {I: {0, 1}, A: {0, 1}}, (0, 0, 2, 2, 1, 0)),
        # exit A on cpu1: mmput -> __mmput -> exit_mmap -> radix__tlb_flush (fullmm):
        # exit_flush_lazy_tlbs IPIs cpu0, kw moves to init_mm (switch_mm_irqs_off), cpu0 clears
        # itself from the mask; then __mmput's mmdrop: count 0, __mmdrop -> cleanup_lazy_tlbs runs
        # do_shoot_lazy_tlb on cpu1 locally: A itself moves to init_mm; A is freed.
        ({I: (2, 1), A: (0, 0)}, (I, I), {I: {0, 1}}, (1, 1, 4, 4, 1, 1)),
        # dead A -> idle1: idle1 borrows init_mm
        ({I: (2, 1), A: (0, 0)}, (I, I), {I: {0, 1}}, (1, 1, 4, 4, 2, 1)),
    ]
    got = [(c, l, m, cost) for c, l, _, m, cost in run_steps(ZOMBIE, "powerpc")]
    assert got == want


def test_powerpc_cpu_offline_leaves_every_mask():
    # cpu_disable -> cleanup_cpu_mmu_context -> clear_tasks_mm_cpumask; __cpu_die: init_mm's mask
    src = "cpus 2\nspawn A\nschedule cpu1 A\nschedule cpu1 idle\noffline cpu1\n"
    steps = list(run_steps(src, "powerpc"))
    assert steps[3][3] == {I: {0, 1}, A: {1}}
    assert steps[4][3] == {I: {0}, A: set()}
    assert steps[4][0][I] == (2, 1)     # finish_cpu's mmdrop_lazy_tlb counts nothing


# ---------------------------------------------------------------- alpha
def test_alpha_step_by_step():
    # arch/alpha/include/asm/mmu_context.h: init_new_context writes the child's PCB ptbr,
    # enter_lazy_tlb the incoming task's; alpha_switch_to's swpctx loads the PCB (a context load
    # on every switch); ev5_switch_mm only assigns an ASN.  Counters as generic.  exit A on cpu1:
    # exit_mmap's tlb_flush -> flush_tlb_mm: current->active_mm is A, so flush_tlb_current
    # (__load_new_mm_context reloads the PCB: one context load); mm_users 0 <= 1: no IPI.
    loads = [0, 0, 0, 1, 2, 3, 4, 5]
    loaded = [(I, I), (I, I), (I, I), (A, I), (A, I), (A, A), (A, A), (A, A)]
    steps = list(run_steps(ZOMBIE, "alpha"))
    assert [c for c, *_ in steps] == [c for c, *_ in REFCOUNT_STEPS]
    assert [cost[3] for *_, cost in steps] == loads
    assert [cost[2] for *_, cost in steps] == [0, 0, 0, 1, 1, 2, 2, 2]
    assert [l for _, l, *_ in steps] == loaded
    sc = load(ZOMBIE, "z.mmscn")
    r = Runner(sc, ZOMBIE.split("\n"), "alpha")
    k = r.k
    for st in sc.stmts:
        r.step(st, None)
    a = k.mm_ix["@A"]
    assert k.t_ptbr[k.task_ix["kw"]] == a and k.t_ptbr[k.task_ix["idle1"]] == a   # borrowed ptbr
    assert k.t_ptbr[k.task_ix["idle0"]] == INIT_MM


def test_alpha_kthread_use_mm_keeps_the_old_page_tables():
    # kthread_use_mm -> switch_mm_irqs_off = ev5_switch_mm: an ASN, no pcb.ptbr write, no swpctx
    src = "cpus 1\nspawn A\nspawn kthread kw\nschedule cpu0 kw\nuse_mm kw @A\n"
    steps = list(run_steps(src, "alpha"))
    assert steps[-1][1] == (I,)                       # the CPU still runs on init_mm's tables
    assert steps[-1][4][2:4] == (1, 1)               # one switch_mm, one context load (the schedule)


def test_alpha_use_mm_leaves_the_cpu_on_page_tables_that_get_freed():
    # kw borrows @A, then kthread_use_mm(@B): ev5_switch_mm, ptbr still @A, and mmdrop_lazy_tlb(@A).
    # A exits on cpu1 (exit_mmap's flush: A is current->active_mm there, mm_users 0: no IPI), and the
    # switch idle1 -> B drops the last reference: @A is freed while cpu0 still walks its tables.
    src = ("cpus 2\nspawn A\nspawn B\nspawn kthread kw\nschedule cpu0 A\nschedule cpu0 kw\nuse_mm kw @B\n"
           "schedule cpu1 A\nexit A\nschedule cpu1 idle\nschedule cpu1 B\n")
    sc = load(src, "uaf.mmscn")
    for arch, want in (("generic", []), ("alpha", [
            ("use-after-free: cpu0 runs kw on the page tables of @A (the ptbr its last swpctx loaded), "
             "but @A was freed", 11)])):
        r = Runner(sc, src.split("\n"), arch)
        for st in sc.stmts:
            r.step(st, None)
        assert [(d.message, d.line) for d in r.result.diagnostics] == want, arch


def test_alpha_flush_reloads_the_ptbr_where_the_mm_is_active():
    # flush_tlb_mm from outside the scenario's CPUs (arch/alpha/kernel/smp.c): smp_call_function IPIs
    # every online CPU; ipi_flush_tlb_mm: `mm == current->active_mm && !asn_locked()` ->
    # flush_tlb_current -> __load_new_mm_context writes the current PCB's ptbr and reloads it.  cpu0
    # (A itself, asn_lock cleared by check_mmu_context after its swpctx) reloads @A.  kw is inside
    # kthread_use_mm(@A): ev5_switch_mm set asn_lock and no switch_to has cleared it, so cpu1 takes
    # flush_tlb_other (mm->context[1] = 0, nothing reloaded) and stays on init_mm's tables.
    # (Before the asn_lock correction this test said cpu1 reloads @A: issue 14 item 6.)
    src = ("cpus 2\nspawn A\nspawn thread A2 of A\nspawn kthread kw\nschedule cpu0 A\n"
           "schedule cpu1 kw\nuse_mm kw @A\nflush @A\n")
    steps = list(run_steps(src, "alpha"))
    assert steps[-2][1] == (A, I)                    # after use_mm: cpu1 still on init_mm's tables
    assert steps[-1][1] == (A, I)                    # after the flush too: asn_locked() on cpu1
    # (switch_mm, pgtable_loads, ipis): two swpctx before; the flush adds one reload and two IPIs
    assert (steps[-2][4][2], steps[-2][4][3], steps[-2][4][5]) == (2, 2, 0)
    assert (steps[-1][4][2], steps[-1][4][3], steps[-1][4][5]) == (2, 3, 2)
    assert steps[-1][0] == steps[-2][0]              # a flush moves no counter


def test_alpha_asn_lock_lasts_from_switch_mm_to_switch_to():
    # ev5_switch_mm sets cpu_data[cpu].asn_lock; check_mmu_context (switch_to, after swpctx) clears it
    src = ("cpus 1\nspawn A\nspawn kthread kw\nschedule cpu0 A\nschedule cpu0 kw\nuse_mm kw @A\n"
           "unuse_mm kw\nschedule cpu0 A\n")
    sc = load(src, "asn.mmscn")
    r = Runner(sc, src.split("\n"), "alpha")
    locks = []
    for st in sc.stmts:
        assert r.step(st, None) is True
        locks.append(r.k.c_asn_lock[0])
    assert locks == [False, False, False, False, True, True, False]


def test_x86_flush_reads_the_raw_mm_cpumask():
    # flush_tlb_mm_range: `cpumask_any_but(mm_cpumask(mm), cpu) < nr_cpu_ids` sees cpu1's bit although
    # cpu1 is offline (x86 leaves it), so flush_tlb_multi runs: on_each_cpu_mask reaches the online
    # CPUs of the mask, here cpu0 itself, whose flush_tlb_func finds @B loaded and clears cpu0's bit.
    src = ("cpus 2\nspawn A\nspawn B\nschedule cpu1 A\nschedule cpu1 idle\noffline cpu1\n"
           "schedule cpu0 A\nschedule cpu0 B\n")
    sc = load(src, "x.mmscn")
    r = Runner(sc, src.split("\n"), "x86")
    for st in sc.stmts:
        assert r.step(st, None) is True
    k = r.k
    a = k.mm_ix["@A"]
    assert k.m_cpumask[a] == 0b11
    k.flush(a, True, 0)
    assert k.m_cpumask[a] == 0b10 and k.cost[5] == 0      # cpu0 cleared locally, no IPI
