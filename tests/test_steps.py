"""Kernel steps (issue 15): the stepped run's trace, the LT examples both ways through
the real CLI with their witnesses replaying, and granularity step agreeing with
granularity operation where nothing can land inside an operation.

The expected traces and step counts are derived by hand from the kernel source
(docs/kernel-model.md "Kernel steps"), not read off the model's output."""
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings, strategies as st

from mmscn.dsl.parser import ParseFailed
from mmscn.dsl.resolve import load
from mmscn.interpreter import explore as X
from mmscn.interpreter import version as V
from mmscn.interpreter.arches import known_arches
from mmscn.interpreter.runner import Runner

HISTORY = Path(__file__).resolve().parent.parent / "examples" / "history"

# file, the fix, the rule its revert breaks, the witness's length, the step where the bug bites
STEPPED = [
    ("LT-01-exec-mmap-lazy-tlb.mmscn", V.EXEC_IRQS_OFF, "active_mm-changed", 4,
     "exec_mmap: tsk->mm = mm; tsk->active_mm = mm"),
    ("LT-02-kthread-use-mm-flush-ipi.mmscn", V.KTHREAD_USE_MM_IRQS_OFF, "stale-tlb", 9,
     "flush_tlb_mm_range: wait for the IPIs (smp_call_function_many, wait=1)"),
]


def mmscn(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "mmscn", *args], capture_output=True, text=True, cwd=cwd)


def run(text, **kw):
    sc = load(text, "t.mmscn", known_arches())
    return Runner(sc, text.split("\n"), **kw).run()


def trace_lines(r):
    """(line, step) of every stepped Outcome, and its refcount events."""
    out = []
    for o in r.steps:
        out.append((o.stmt.line, o.step))
        out += [(e[2], e[3], e[4], e[5]) for e in o.events if e[0] == "ref"]
    return out


def test_a_stepped_kthread_use_mm_and_unuse_mm_step_by_step():
    # kernel/kthread.c (v6.4+): kthread_use_mm: mmgrab(mm); task_lock; local_irq_disable; the stores;
    # switch_mm_irqs_off; local_irq_enable; task_unlock; mmdrop_lazy_tlb(active_mm).  K came from
    # idle0 lazily on init_mm (boot: count 2, idle0's lazy + init's own; K took idle0's over).
    r = run("granularity step\nspawn A\nspawn kthread K\nschedule cpu0 K\nuse_mm K @A\nunuse_mm K\n")
    assert not r.failed, r.diagnostics
    assert trace_lines(r)[-10:] == [
        (5, "kthread_use_mm: mmgrab(mm)"), ("mmgrab", "count", 1, 2),
        (5, "kthread_use_mm: task_lock(tsk); local_irq_disable(); active_mm = tsk->active_mm; tsk->active_mm = mm; "
            "tsk->mm = mm"),
        (5, "kthread_use_mm: switch_mm_irqs_off(active_mm, mm, tsk); local_irq_enable(); task_unlock(tsk)"),
        (5, "kthread_use_mm: mmdrop_lazy_tlb(active_mm)"), ("mmdrop_lazy_tlb", "count", 2, 1),
        # kthread_unuse_mm: the use reference becomes the lazy one, then mmdrop(mm)
        (6, "kthread_unuse_mm: task_lock(tsk); local_irq_disable(); tsk->mm = NULL; mmgrab_lazy_tlb(mm); "
            "enter_lazy_tlb(mm, tsk); local_irq_enable(); task_unlock(tsk)"), ("mmgrab_lazy_tlb", "count", 2, 3),
        (6, "kthread_unuse_mm: mmdrop(mm)"), ("mmdrop", "count", 3, 2)]
    k = r.kernel
    assert k.t_active[k.task_ix["K"]] == k.mm_ix["@A"] and k.m_count[k.mm_ix["@A"]] == 2
    assert all(op is None for op in k.c_op) and not any(k.m_step_count)


def test_before_38cf307c1f20_kthread_use_mm_stores_and_switches_with_irqs_on():
    # v5.8's kthread_use_mm: task_lock; active_mm = tsk->active_mm; mmgrab; the stores; switch_mm;
    # task_unlock; then the drop: three steps, every boundary with irqs on
    text = "granularity step\nspawn A\nspawn kthread K\nschedule cpu0 K\nuse_mm K @A\n"
    sc = load(text, "t.mmscn", known_arches())
    r = Runner(sc, text.split("\n"), version=V.KernelVersion(reverts=[V.KTHREAD_USE_MM_IRQS_OFF])).run()
    steps = [o.step for o in r.steps if o.stmt.line == 5]
    assert steps == ["kthread_use_mm: task_lock(tsk); active_mm = tsk->active_mm; mmgrab(mm); tsk->active_mm = mm; "
                     "tsk->mm = mm", "kthread_use_mm: switch_mm(active_mm, mm, tsk); task_unlock(tsk)",
                     "kthread_use_mm: mmdrop_lazy_tlb(active_mm)"]


def test_run_takes_an_ipi_at_the_first_boundary_and_says_so():
    # alpha flush_tlb_mm with two users IPIs cpu1, whose irqs are on: taken right after the send
    text = ("arch alpha\ncpus 2\ngranularity step\nspawn T\nspawn thread T2 of T\nschedule cpu0 T\n"
            "schedule cpu1 T2\ncpu0 {\n  flush @T\n}\n")
    r = run(text)
    assert [(o.cpu, o.kind, o.step) for o in r.steps[-4:]] == [
        (0, "", "flush_tlb_mm_range: decide the targets, flush locally, send the IPIs"),
        (1, "ipi", "ipi_flush_tlb_mm: the IPI from cpu0 (delivered at the first boundary where cpu1's irqs are on)"),
        (0, "", "flush_tlb_mm_range: wait for the IPIs (smp_call_function_many, wait=1)"),
        (0, "", "flush_tlb_mm_range: the IPIs ran: the flush returns")]
    assert not r.failed


def test_an_interrupt_handler_may_not_schedule():
    with pytest.raises(ParseFailed) as e:
        load("cpus 1\nspawn A\ninterrupt cpu0 {\n  schedule A\n}\n", "t.mmscn", known_arches())
    d = e.value.diagnostics[0]
    assert (d.line, d.col) == (4, 3) and "an interrupt handler cannot `schedule`" in d.message


def test_interleave_that_cannot_be_taken_is_a_located_failure():
    text = "granularity step\ninterleave ipi cpu0\ncpus 1\nspawn A\ncpu0 {\n  schedule A\n}\n"
    r = run(text)
    assert r.failed and r.diagnostics[0].line == 2 and "no IPI can be taken on cpu0" in r.diagnostics[0].message


@pytest.mark.parametrize("name, fix, rule, length, bites", STEPPED)
def test_each_example_both_ways_and_its_witness_replays(tmp_path, name, fix, rule, length, bites):
    path = HISTORY / name
    p = mmscn("explore", str(path), "--witness", str(tmp_path / "w.mmscn"))
    assert p.returncode == 0, p.stdout + p.stderr
    assert f"expect fail without {fix}" in p.stdout and ": holds" in p.stdout
    assert "fails, as the line expects: line" in p.stdout and f"{rule}:" in p.stdout
    assert f"shortest failing interleaving ({length} steps)" in p.stdout
    assert f"[{bites}]  <- violation" in p.stdout
    w = mmscn("run", str(tmp_path / "w.mmscn"))
    assert w.returncode == 0, w.stdout + w.stderr
    assert f"violation: {rule}:" in w.stdout and "failed, as the header expects" in w.stdout
    # and mmscn test judges the file by exploring it, both verdicts shown
    t = mmscn("test", str(path))
    assert t.returncode == 0 and "1 passed, 0 failed" in t.stdout, t.stdout


def test_the_explorer_fuses_nothing_it_should_not():
    # with fusion off the verdicts are the same (fusion only merges steps nothing can land between)
    for name, *_ in STEPPED:
        text = (HISTORY / name).read_text()
        sc = load(text, name, known_arches())
        for e in sc.expectations():
            ver = V.KernelVersion(reverts=e.without)
            verdicts = []
            for por in (True, False):
                m = X.Model(sc, text.split("\n"), version=ver)
                verdicts.append(X.Explorer(m, por=por).run().holds)
            assert verdicts[0] == verdicts[1] == (e.outcome == "pass")


# ---- granularity step agrees with granularity operation where nothing lands inside an operation
TASKS = ("A", "B", "K")
STATEMENTS = st.sampled_from([
    "spawn A", "spawn B", "spawn thread A2 of A", "spawn kthread K", "schedule cpu0 A", "schedule cpu1 B",
    "schedule cpu0 K", "schedule cpu1 K", "schedule cpu0 idle", "schedule cpu1 idle", "exit A", "exit B",
    "exec A", "exec K", "use_mm K @A", "use_mm K @B", "unuse_mm K", "mmget_not_zero @A", "mmput @A",
    "flush @A", "flush @B", "exit A2", "schedule cpu1 A2"])


# the kernels the step tables change with: before 6cad87b0d216 and aa464ba9a1e4 (v6.4: kthread_use_mm's
# and kthread_unuse_mm's refcounting), before 38cf307c1f20 (v5.8: their irqs-on switch), before
# d53c3dfb23c4; and the newest with each of those reverted
KERNELS = [(None, ()), ("v5.4", ()), ("v5.8", ()), ("v5.10", ()), ("v6.1", ()), ("v6.3", ()),
           (None, (V.KTHREAD_USE_MM_REFCOUNT,)), (None, (V.LAZY_TLB_HELPERS,)),
           (None, (V.KTHREAD_USE_MM_IRQS_OFF,)), (None, (V.EXEC_IRQS_OFF,)),
           (None, (V.KTHREAD_USE_MM_REFCOUNT, V.KTHREAD_USE_MM_IRQS_OFF))]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(arch=st.sampled_from(["generic", "x86", "arm64", "powerpc", "alpha"]),
       kernel=st.sampled_from(KERNELS),
       stmts=st.lists(STATEMENTS, min_size=1, max_size=14))
# kthread_use_mm of the mm the kernel thread is lazy on, and back, before v6.4 (the stepped
# kthread_unuse_mm held and dropped a reference the old kernel never took: mm_count-accounting)
@example(arch="x86", kernel=("v6.1", ()), stmts=["spawn A", "spawn kthread K", "schedule cpu0 A", "schedule cpu0 K",
                                                "use_mm K @A", "unuse_mm K", "use_mm K @A", "schedule cpu0 A"])
@example(arch="generic", kernel=(None, (V.KTHREAD_USE_MM_REFCOUNT, V.LAZY_TLB_HELPERS)),
         stmts=["spawn A", "spawn B", "spawn kthread K", "schedule cpu0 A", "schedule cpu0 K", "use_mm K @B",
                "unuse_mm K", "schedule cpu0 B", "exit A", "schedule cpu1 K", "use_mm K @B"])
def test_whole_operations_end_in_the_same_state_under_either_granularity(arch, kernel, stmts):
    release, reverts = kernel
    ends = []
    for g in ("operation", "step"):
        lines, made = [f"arch {arch}", "cpus 2", f"granularity {g}"], set()
        for s in stmts:         # keep the names resolvable: a statement naming what is not made yet is dropped
            words = s.replace("@", "").split()
            if words[0] == "spawn":
                name = words[2] if words[1] in ("thread", "kthread") else words[1]
                if name in made or (words[1] == "thread" and words[-1] not in made):
                    continue
                made.add(name)
            elif any(w in TASKS + ("A2",) and w not in made for w in words[1:]):
                continue
            lines.append(s)
        text = "\n".join(lines) + "\n"
        sc = load(text, "t.mmscn", known_arches())
        version = V.KernelVersion(release or V.NEWEST, reverts=reverts)     # (Runner reads no `kernel` line)
        r = Runner(sc, text.split("\n"), trace=False, version=version).run()
        ends.append((r.failed, None if r.failed else r.kernel.key(), [d.line for d in r.diagnostics][:1]))
    assert ends[0] == ends[1]
