"""powerpc under `granularity step` (LT-04's trim race, LT-05's exit-time switch with irqs on):
both verdicts of each example, the rule, the witness's bite step and its replay, and the step
tables' counters derived by hand from arch/powerpc/mm/book3s64/radix_tlb.c."""
import subprocess
import sys
from pathlib import Path

import pytest

from mmscn.dsl.resolve import load
from mmscn.interpreter import steps as STEPS
from mmscn.interpreter import version as V
from mmscn.interpreter.arches import known_arches
from mmscn.interpreter.runner import Runner

HISTORY = Path(__file__).resolve().parent.parent / "examples" / "history"

# file, the fix, the rule its revert breaks, the witness's length, the step where the bug bites
EXAMPLES = [
    ("LT-04-powerpc-trim-race-steps.mmscn", V.PPC_TRIM_SELF, "mm_cpumask", 6,
     "flush_tlb_mm_range: wait for the IPIs (smp_call_function_many, wait=1)"),
    ("LT-05-powerpc-exit-lazy-irqs-on.mmscn", V.PPC_EXIT_LAZY_IRQS_OFF, "active_mm-not-loaded", 5,
     "interrupt on cpu0: the scenario's handler"),
]


def mmscn(*args):
    return subprocess.run([sys.executable, "-m", "mmscn", *map(str, args)], capture_output=True, text=True)


def run(text, reverts=()):
    """Run ``text`` under the kernel its header names (release, configs), less ``reverts``."""
    sc = load(text, "t.mmscn", known_arches())
    version = V.KernelVersion(sc.kernel or V.NEWEST, reverts=reverts, configs=sc.configs)
    return Runner(sc, text.split("\n"), version=version).run()


@pytest.mark.parametrize("name, fix, rule, length, bites", EXAMPLES, ids=[e[0][:5] for e in EXAMPLES])
def test_each_example_both_ways_and_its_witness_replays(tmp_path, name, fix, rule, length, bites):
    path = HISTORY / name
    p = mmscn("explore", path, "--witness", tmp_path / "w.mmscn")
    assert p.returncode == 0, p.stdout + p.stderr
    assert f"expect fail without {fix}" in p.stdout and ": holds" in p.stdout
    assert "fails, as the line expects: line" in p.stdout and f"{rule}:" in p.stdout
    assert f"shortest failing interleaving ({length} steps)" in p.stdout
    assert f"[{bites}]  <- violation" in p.stdout
    w = mmscn("run", tmp_path / "w.mmscn")
    assert w.returncode == 0, w.stdout + w.stderr
    assert f"violation: {rule}:" in w.stdout and "failed, as the header expects" in w.stdout
    t = mmscn("test", path)
    assert t.returncode == 0 and "1 passed, 0 failed" in t.stdout, t.stdout


LT05 = ("arch powerpc\ncpus 1\nkernel {kernel}\nconfig PPC_TRIM_CLOCK_EVERY_FLUSH\ngranularity {g}\n"
        "spawn T\nschedule cpu0 T\ncpu0 {{\n  exit T\n}}\n")


def _exit_steps(r):
    """(step, [(function, counter, old, new) of its refcount events]) of `exit T` (line 9)."""
    return [(o.step, [e[2:] for e in o.events if e[0] == "ref"]) for o in r.steps if o.stmt.line == 9]


def test_lt05_exit_lazy_flush_tlb_steps_before_the_fix_with_refcounted_lazy_mms():
    # v6.3: MMU_LAZY_TLB_REFCOUNT, no lazy helpers (mmgrab/mmdrop).  @T: count 1 (the users'),
    # exit_mm's mmgrab 2; mmput: users 1 -> 0, exit_mmap's flush: cpu0 alone, current->mm NULL, the
    # clock fires: exit_lazy_flush_tlb: mmgrab(&init_mm) (1 -> 2: init_mm's own, idle0's lazy reference
    # went back when T was switched in, and now T's), active_mm =
    # &init_mm, irqs on; switch_mm_irqs_off, mmdrop(@T) 2 -> 1, cpu0 leaves @T's mask; __mmput's
    # mmdrop 1 -> 0: freed.
    r = run(LT05.format(kernel="v6.3", g="step"))
    assert not r.failed, r.diagnostics
    assert _exit_steps(r) == [
        ("exit_mm: mmgrab_lazy_tlb(mm)", [("mmgrab", "count", 1, 2)]),
        ("exit_mm: task_lock(current); local_irq_disable(); current->mm = NULL; enter_lazy_tlb(mm, current); "
         "local_irq_enable(); task_unlock(current)", []),
        ("exit_mm: mmput(mm)", [("mmput", "users", 1, 0)]),
        ("exit_lazy_flush_tlb: mmgrab(&init_mm); current->active_mm = &init_mm", [("mmgrab", "count", 1, 2)]),
        ("exit_lazy_flush_tlb: switch_mm_irqs_off(mm, &init_mm, current); mmdrop(mm); "
         "cpumask_clear_cpu(cpu, mm_cpumask(mm)); _tlbiel_pid", [("mmdrop", "count", 2, 1)]),
        ("__mmput: exit_mmap returned: mmdrop(mm)", [("mmdrop", "count", 1, 0)]),
        ("do_exit: TASK_DEAD: exit_mm returned", [])]
    k = r.kernel
    t, m = k.task_ix["T"], k.mm_ix["@T"]
    assert k.m_freed[m] and k.t_active[t] == 0 and k.c_loaded[0] == 0 and k.m_cpumask[m] == 0
    assert not any(k.m_step_count) and k.c_exit_lazy == [None]


def test_lt05_the_fix_saves_irqs_from_the_store_through_the_switch():
    r = run(LT05.format(kernel="v6.4", g="step"))
    rows = [s for s in STEPS.table(r.kernel, "exit_mm") if s.function == "exit_lazy_flush_tlb"]
    assert [(s.code.split(";")[0], s.irqs_off) for s in rows] == [("local_irq_save(flags)", True),
                                                                   ("switch_mm_irqs_off(mm, &init_mm, current)", False)]
    r = run(LT05.format(kernel="v6.4", g="step"), [V.PPC_EXIT_LAZY_IRQS_OFF])
    rows = [s for s in STEPS.table(r.kernel, "exit_mm") if s.function == "exit_lazy_flush_tlb"]
    assert [s.irqs_off for s in rows] == [False, False]


@pytest.mark.parametrize("text", [LT05.format(kernel="v6.4", g="operation"),                 # one call
                                  LT05.format(kernel="v6.4", g="step").replace("config PPC_TRIM_CLOCK_EVERY_FLUSH\n", "")])
def test_lt05_needs_steps_and_the_trim_clock(text):
    # whole operations: the interrupt lands only between statements; without the clock the exit flush
    # is a local tlbiel and T keeps @T as its active_mm until its final switch (here: @T freed by
    # __mmdrop's cleanup_lazy_tlbs, which moves T with irqs off)
    text = text.replace("cpu0 {", "interrupt cpu0 {\n}\ncpu0 {")
    r = run(text, [V.PPC_EXIT_LAZY_IRQS_OFF])
    assert not r.failed, r.diagnostics
    k = r.kernel
    assert k.m_freed[k.mm_ix["@T"]] and k.t_active[k.task_ix["T"]] == 0


def test_lt05_an_interrupt_that_fires_before_the_window_sees_nothing_wrong():
    # interleave: the interrupt after exit_mm's first step (T still runs @T, loaded @T)
    text = (LT05.format(kernel="v6.4", g="step").replace("granularity step\n", "granularity step\n"
            "interleave cpu0 interrupt cpu0\n").replace("cpu0 {", "interrupt cpu0 {\n}\ncpu0 {"))
    r = run(text, [V.PPC_EXIT_LAZY_IRQS_OFF])
    assert not r.failed, r.diagnostics
    assert [o.kind for o in r.steps if o.cpu == 0][-8:].count("interrupt") == 1


LT04 = (HISTORY / "LT-04-powerpc-trim-race-steps.mmscn").read_text()


def test_lt04_powerpc_ipis_are_queued_under_granularity_step():
    # v5.10 round robin: cpu0's check and IPI to cpu2 (cpu1 is not in @T's mask yet), the IPI taken by
    # cpu2 at its first boundary: idle2 moves to init_mm (@init_mm 2 -> 3, @T 3 -> 2: idle2's lazy ref)
    # and clears its own bit; cpu1's mmget_not_zero comes after the check: mm_users 2, cpu1 joins the mask
    r = run(LT04)
    assert not r.failed, r.diagnostics
    ipis = [o for o in r.steps if o.kind == "ipi"]
    assert [(o.cpu, o.step.split(" (")[0]) for o in ipis] == [(2, "exit_lazy_flush_tlb: the IPI from cpu0")]
    assert [e[2:] for e in ipis[0].events if e[0] == "ref"] == [("mmgrab", "count", 2, 3), ("mmdrop", "count", 3, 2)]
    k = r.kernel
    m = k.mm_ix["@T"]
    assert k.m_cpumask[m] == 0b011 and k.m_users[m] == 2 and k.cost[5] == 1


def test_lt04_before_the_fix_the_reset_runs_once_the_ipis_ran():
    r = run(LT04, [V.PPC_TRIM_SELF])
    wait = [o for o in r.steps if o.step == "flush_tlb_mm_range: wait for the IPIs (smp_call_function_many, wait=1)"]
    assert len(wait) == 1
    assert any(e[2] == "mm_reset_thread_local" for e in wait[0].events if e[0] == "op")


def test_lt04_whole_operation_ipis_run_at_once():
    # granularity operation: the handlers run inside the flush, no IPI step, the same counts
    r = run(LT04.replace("granularity step\n", ""))
    assert not [o for o in r.steps if o.kind == "ipi"]
    assert r.kernel.cost[5] == 1


def test_the_rule_also_sees_exec_mmap_before_d53c3dfb23c4_on_powerpc():
    # the TLB half of d53c3dfb23c4: before it exec_mmap stored tsk->mm/active_mm and only then
    # activate_mm()'d, irqs on between; an interrupt there finds active_mm @K on @U's page tables
    text = ("arch powerpc\ncpus 1\ngranularity step\ninterleave cpu0 cpu0 cpu0 interrupt cpu0\nspawn U\n"
            "spawn kthread K\nschedule cpu0 U\nschedule cpu0 K\ninterrupt cpu0 {\n}\ncpu0 {\n  exec K\n}\n")
    r = run(text, [V.EXEC_IRQS_OFF])
    assert r.failed and "active_mm-not-loaded: an interrupt on cpu0 finds K's active_mm @K while the MMU is " \
                         "still on @U's page tables" in r.diagnostics[0].message
    assert not run(text.replace("interleave cpu0 cpu0 cpu0 interrupt cpu0\n", "")).failed
