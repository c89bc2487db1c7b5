"""LT-03 (sparc64) and LT-15 (Xen PV) as kernel steps: both verdicts through the real CLI, the
rule, the witness's length and the step where the bug bites, the witness replaying, and the step
tables' rows and counters derived by hand from the source (docs/kernel-model.md, "smp_flush_tlb_pending
under granularity step" and "xen_drop_mm_ref under granularity step").

sparc64: arch/sparc/kernel/smp_64.c smp_flush_tlb_pending, before and after bafb056ce279 (the diff in
its 4.19 stable backport).  Xen PV: arch/x86/xen/mmu.c xen_drop_mm_ref/drop_other_mm_ref of the v3.x
trees, before and after 7899891c7d16, and x86's 2012 switch_mm (state = TLBSTATE_OK first)."""
import subprocess
import sys
from pathlib import Path

import pytest

from mmscn.dsl.resolve import load
from mmscn.interpreter import version as V
from mmscn.interpreter.arches import known_arches
from mmscn.interpreter.hw import C_IPI, C_PGTABLE, C_SWITCH_MM
from mmscn.interpreter.kernel import INIT_MM
from mmscn.interpreter.runner import Runner

HISTORY = Path(__file__).resolve().parent.parent / "examples" / "history"
LT03 = "LT-03-sparc64-cpumask-reset-vs-use-mm.mmscn"
LT15 = "LT-15-xen-drop-mm-ref-not-lazy.mmscn"

# file, the fix, the rule its revert breaks, the witness's length, the step where the bug bites
STEPPED = [
    (LT03, V.SPARC64_NO_CPUMASK_CLEAR, "mm_cpumask", 6,
     "smp_flush_tlb_pending: cpumask_copy(mm_cpumask(mm), cpumask_of(cpu)); __flush_tlb_pending(ctx, nr, vaddrs); "
     "put_cpu()"),
    (LT15, V.XEN_LAZY_CHECK, "leave_mm-not-lazy", 6, "drop_other_mm_ref: the IPI from cpu0"),
]


def mmscn(*args):
    return subprocess.run([sys.executable, "-m", "mmscn", *args], capture_output=True, text=True)


@pytest.mark.parametrize("name, fix, rule, length, bites", STEPPED, ids=["LT-03", "LT-15"])
def test_both_verdicts_the_rule_the_bite_and_the_replay(tmp_path, name, fix, rule, length, bites):
    path = HISTORY / name
    p = mmscn("explore", str(path), "--witness", str(tmp_path / "w.mmscn"))
    assert p.returncode == 0, p.stdout + p.stderr
    assert ": holds" in p.stdout and f"expect fail without {fix}" in p.stdout
    assert "fails, as the line expects: line" in p.stdout and f"{rule}:" in p.stdout
    assert f"shortest failing interleaving ({length} steps)" in p.stdout
    assert f"[{bites}]  <- violation" in p.stdout
    w = mmscn("run", str(tmp_path / "w.mmscn"))
    assert w.returncode == 0, w.stdout + w.stderr
    assert f"violation: {rule}:" in w.stdout and "failed, as the header expects" in w.stdout
    # the file's own comment names the witness's length and the rule
    text = path.read_text()
    assert f"interleaving of {length} steps" in text and f"rule {rule}" in text


def play(text, version):
    """Run ``text`` (its `interleave` line decides the order) on ``version``; the run, its kernel."""
    sc = load(text, "t.mmscn", known_arches())
    r = Runner(sc, text.split("\n"), version=version).run()
    return r, r.kernel


def after_steps(text, version, look):
    """``look(kernel)`` after each step of the blocks (the statements before them left out)."""
    sc = load(text, "t.mmscn", known_arches())
    out = []
    runner = Runner(sc, text.split("\n"), version=version,
                    on_step=lambda st, cpu, o, go_on: o is not None and o.step and out.append(look(runner.k)))
    runner.run()
    return out


# ---------------------------------------------------------------- LT-03: sparc64
SPARC = """arch sparc64
cpus 2
granularity step
interleave {order}
spawn T
spawn kthread K
schedule cpu0 T
schedule cpu1 K
cpu0 {{
  flush @T
}}
cpu1 {{
  mmget_not_zero @T
  use_mm K @T
}}
"""
NO_SPARC_FIX = V.KernelVersion(reverts=[V.SPARC64_NO_CPUMASK_CLEAR])


def test_sparc64_flush_rows_by_release():
    # before bafb056ce279: the test, then the reset; a flush that fails the test ends in its first step
    r, _ = play(SPARC.format(order="cpu0 cpu0 cpu1 cpu1 cpu1 cpu1 cpu1"), NO_SPARC_FIX)
    assert [o.step for o in r.steps if o.stmt.line == 10] == [
        "smp_flush_tlb_pending: get_cpu(); if (mm == current->mm && atomic_read(&mm->mm_users) == 1) ... else "
        "smp_call_function_many(mm_cpumask(mm), tlb_pending_func); __flush_tlb_pending; put_cpu()",
        "smp_flush_tlb_pending: cpumask_copy(mm_cpumask(mm), cpumask_of(cpu)); __flush_tlb_pending(ctx, nr, "
        "vaddrs); put_cpu()"]
    # with it: the common flush, one step (nothing sent that it waits for)
    r, _ = play(SPARC.format(order="cpu0 cpu1 cpu1 cpu1 cpu1 cpu1"), V.KernelVersion())
    assert [o.step for o in r.steps if o.stmt.line == 10] == [
        "flush_tlb_mm_range: decide the targets, flush locally, send the IPIs"]


def test_lt03_the_window_by_hand():
    """The test on cpu0 (T alone: mm_users 1), then mmget_not_zero (users 2) and kthread_use_mm's three
    steps on cpu1 (mmgrab: count 2; the stores; switch_mm: cpu1 not in the mask, so set and
    __flush_tlb_mm), then the reset: mask {cpu0}, no cross call."""
    r, k = play(SPARC.format(order="cpu0 cpu1 cpu1 cpu1 cpu1 cpu0"), NO_SPARC_FIX)
    m = k.mm_ix["@T"]
    assert r.failed and [d.message.split(":")[0] for d in r.diagnostics][:1] == ["mm_cpumask"]
    assert k.m_users[m] == 2 and k.m_count[m] == 2 and k.m_cpumask[m] == 0b01
    assert k.cost[C_IPI] == 0 and k.c_op_flushing == [None, None]
    # the flush returned having flushed cpu0 only; cpu1's switch_mm had flushed it at generation 1
    assert k.m_tlb_gen[m] == 1 and k.c_tlb_gen == [1, 1]


def test_lt03_between_the_test_and_the_reset_the_flush_has_not_returned():
    # after cpu0's test T's generation is 1 and cpu0's TLB at 0: no stale-tlb, the flush is in flight
    # (c_op_flushing) until the reset's local __flush_tlb_pending (mmget_not_zero is no kernel step)
    m = 1       # @T: the first mm after init_mm
    got = after_steps(SPARC.format(order="cpu0 cpu1 cpu1 cpu1 cpu1 cpu0"), NO_SPARC_FIX,
                      lambda k: (k.c_op_flushing[0], k.c_pc[0], k.m_tlb_gen[m], tuple(k.c_tlb_gen), k.m_cpumask[m]))
    assert got == [(m, 1, 1, (0, 0), 0b01),         # the test: single user
                   (m, 1, 1, (0, 0), 0b01),         # mmgrab
                   (m, 1, 1, (0, 0), 0b01),         # the stores
                   (m, 1, 1, (0, 1), 0b11),         # switch_mm: cpu1 set in the mask, __flush_tlb_mm
                   (None, 0, 1, (1, 1), 0b01)]      # the reset and the local flush


def test_lt03_with_the_fix_the_same_order_cross_calls():
    # the whole flush after the adoption: mm_users 2, so smp_call_function_many reaches cpu1
    r, k = play(SPARC.format(order="cpu1 cpu1 cpu1 cpu1 cpu0"), V.KernelVersion())
    m = k.mm_ix["@T"]
    assert not r.failed, r.diagnostics
    assert k.m_cpumask[m] == 0b11 and k.cost[C_IPI] == 1 and k.c_tlb_gen == [1, 1]


# ---------------------------------------------------------------- LT-15: Xen PV
XEN = """arch xen-pv
cpus 2
kernel v3.5
granularity step
interleave {order}
spawn U
spawn V
spawn kthread K
schedule cpu1 U
schedule cpu1 K
schedule cpu0 U
cpu0 {{
  exit U
}}
cpu1 {{
  use_mm K @V
}}
"""
V35 = V.KernelVersion("v3.5")
V34 = V.KernelVersion("v3.4")


def test_x86_switch_mm_is_two_steps_where_kthread_use_mm_switches_with_irqs_on():
    r, _ = play(XEN.format(order="cpu1 cpu1 cpu1 cpu1 cpu0 cpu0 cpu0"), V35)
    assert not r.failed, r.diagnostics
    assert [o.step for o in r.steps if o.stmt.line == 16] == [
        "kthread_use_mm: task_lock(tsk); active_mm = tsk->active_mm; if (active_mm != mm) { mmgrab(mm); "
        "tsk->active_mm = mm; } tsk->mm = mm",
        "switch_mm: percpu_write(cpu_tlbstate.state, TLBSTATE_OK)",
        "switch_mm: percpu_write(cpu_tlbstate.active_mm, next); cpumask_set_cpu(cpu, mm_cpumask(next)); "
        "load_cr3(next->pgd); cpumask_clear_cpu(cpu, mm_cpumask(prev)); task_unlock(tsk)",
        "kthread_use_mm: if (active_mm != mm) mmdrop(active_mm)"]
    # v6.17 (38cf307c1f20: irqs off from the stores through switch_mm_irqs_off): one switch step
    r, _ = play(XEN.format(order="cpu1 cpu1 cpu1 cpu0 cpu0 cpu0").replace("kernel v3.5\n", ""), V.KernelVersion())
    assert [o.step for o in r.steps if o.stmt.line == 15] == [
        "kthread_use_mm: mmgrab(mm)",
        "kthread_use_mm: task_lock(tsk); local_irq_disable(); active_mm = tsk->active_mm; tsk->active_mm = mm; "
        "tsk->mm = mm",
        "kthread_use_mm: switch_mm_irqs_off(active_mm, mm, tsk); local_irq_enable(); task_unlock(tsk)",
        "kthread_use_mm: mmdrop_lazy_tlb(active_mm)"]


def test_the_two_halves_count_one_switch_mm_and_one_load():
    # before the blocks: idle1 -> U (1 switch_mm, 1 load), U -> K (lazy, none), idle0 -> U (1, 1).  K's
    # use_mm of @V: TLBSTATE_OK is the switch_mm (not lazy, CR3 still @U), the rest is the one load
    u, v = 1, 2
    got = after_steps(XEN.format(order="cpu1 cpu1 cpu1 cpu1 cpu0 cpu0 cpu0"), V35,
                      lambda k: (k.cost[C_SWITCH_MM], k.cost[C_PGTABLE], k.c_lazy[1], k.c_loaded[1]))
    assert got[:4] == [(2, 2, True, u),             # the stores: still lazy on @U
                       (3, 2, False, u),            # TLBSTATE_OK
                       (3, 3, False, v),            # active_mm = next, CR3 = @V
                       (3, 3, False, v)]            # mmdrop_lazy_tlb(@U)


def test_lt15_the_ipi_is_queued_and_exit_mmap_waits():
    # exit_mm's steps on cpu0: at mmput xen_drop_mm_ref sees @U's pgd in cpu1's CR3 (lazy K) and queues
    # drop_other_mm_ref; cpu0 waits, the pgd still pinned; then cpu1 takes the IPI (lazy: leave_mm)
    u = 1
    got = after_steps(XEN.format(order="cpu0 cpu0 cpu0 ipi cpu1 cpu0 cpu0 cpu0"), V35,
                      lambda k: (k.c_ipi_from[1], k.c_ipi_fn[0], tuple(k.c_loaded), k.cost[C_IPI], k.m_users[u]))
    assert got[2:4] == [(0b01, "drop_other_mm_ref", (INIT_MM, u), 0, 0),
                        (0, "drop_other_mm_ref", (INIT_MM, INIT_MM), 1, 0)]


@pytest.mark.parametrize("version, rule", [(V35, None), (V34, "leave_mm-not-lazy")], ids=["v3.5", "v3.4"])
def test_lt15_the_ipi_inside_the_switch(version, rule):
    """The IPI after TLBSTATE_OK: before 7899891c7d16 leave_mm on a CPU that is not lazy (BUG); with
    it the handler skips leave_mm and reloads CR3 with swapper_pg_dir, and the switch goes on to @V."""
    r, k = play(XEN.format(order="cpu0 cpu0 cpu0 cpu1 cpu1 ipi cpu1 cpu1 cpu0 cpu0"), version)
    if rule:
        assert r.failed and r.diagnostics[0].message.startswith(f"{rule}: ")
        return
    assert not r.failed, r.diagnostics
    # @U is not freed: the dead U still has it as active_mm (exit_mm's lazy reference) until cpu0 switches
    assert k.c_loaded == [INIT_MM, k.mm_ix["@V"]] and k.cost[C_IPI] == 1 and not k.m_freed[k.mm_ix["@U"]]


def test_lt15_a_context_switch_between_the_snapshot_and_the_ipi_is_harmless(tmp_path):
    """cpu1 switches K -> V (a user task) after xen_drop_mm_ref picked it: the switch runs with irqs off,
    so the IPI lands after it and finds @V loaded; even v3.4's handler does nothing.  Every order holds."""
    order = "cpu0 cpu0 cpu0 cpu1 ipi cpu1"
    r, k = play(XEN.format(order=order).replace("use_mm K @V", "schedule V"), V34)
    assert not r.failed, r.diagnostics
    assert [(o.cpu, o.kind, o.stmt.line) for o in r.steps[-5:-3]] == [(1, "", 16), (1, "ipi", 13)]
    assert k.c_loaded[1] == k.mm_ix["@V"] and not k.c_lazy[1] and k.cost[C_IPI] == 1
    text = XEN.format(order=order).replace(f"interleave {order}\n", "").replace("use_mm K @V", "schedule V")
    (tmp_path / "cs.mmscn").write_text(text.replace("kernel v3.5", "kernel v3.4"))
    p = mmscn("explore", str(tmp_path / "cs.mmscn"))
    assert p.returncode == 0 and "verdict: holds: no interleaving fails" in p.stdout, p.stdout + p.stderr
