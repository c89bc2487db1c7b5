"""LT-09 and LT-16 under `granularity step` (membrt): membarrier's loop as the kernel's steps,
and PREEMPT_RT's deferred __mmdrop with its RCU callback as an event.

The step names, counts and counters below are derived by hand from the kernel source
(227a4aadc75b's diff of kernel/sched/membarrier.c, both sides; 8d491de6edc2's patch mail,
include/linux/sched/mm.h mmdrop_sched; docs/kernel-model.md), not read off the model's output."""
import subprocess
import sys
from pathlib import Path

import pytest

from mmscn.dsl.resolve import load
from mmscn.interpreter import policies
from mmscn.interpreter import version as V
from mmscn.interpreter.arches import known_arches
from mmscn.interpreter.kernel import Kernel
from mmscn.interpreter.runner import Runner

HISTORY = Path(__file__).resolve().parent.parent / "examples" / "history"
MB = "membarrier_global_expedited: "

# file, the fix, the rule its revert breaks, the witness's length, the step where the bug bites
EXAMPLES = [
    ("LT-09-membarrier-freed-mm.mmscn", V.MEMBARRIER_RQ_STATE, "use-after-free", 9,
     MB + "atomic_read(&p->mm->membarrier_state) & MEMBARRIER_STATE_GLOBAL_EXPEDITED: __cpumask_set_cpu(cpu, "
          "tmpmask); rcu_read_unlock()"),
    ("LT-16-rt-mmdrop-rcu.mmscn", V.MMDROP_SCHED, "might-sleep", 6, None),
]


def mmscn(*args):
    return subprocess.run([sys.executable, "-m", "mmscn", *args], capture_output=True, text=True)


def run(text, **kw):
    sc = load(text, "t.mmscn", known_arches())
    return Runner(sc, text.split("\n"), **kw).run()


@pytest.mark.parametrize("name, fix, rule, length, bites", EXAMPLES)
def test_each_example_both_ways_and_its_witness_replays(tmp_path, name, fix, rule, length, bites):
    path = HISTORY / name
    w = tmp_path / "w.mmscn"
    p = mmscn("explore", str(path), "--witness", str(w))
    assert p.returncode == 0, p.stdout + p.stderr
    assert f"expect fail without {fix}" in p.stdout and ": holds" in p.stdout
    assert "fails, as the line expects: line" in p.stdout and f"{rule}:" in p.stdout
    assert f"shortest failing interleaving ({length} steps)" in p.stdout
    if bites is not None:
        assert f"[{bites}]  <- violation" in p.stdout
    else:       # a context switch is one step: the bite is the `schedule` itself
        assert f"    {length}  cpu1  line " in p.stdout and "schedule cpu1 X  <- violation" in p.stdout
    r = mmscn("run", str(w))
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"violation: {rule}:" in r.stdout and "failed, as the header expects" in r.stdout
    t = mmscn("test", str(path))
    assert t.returncode == 0 and "1 passed, 0 failed" in t.stdout, t.stdout


# ---------------------------------------------------------------- membarrier's loop (LT-09)
PRE = [MB + "cpus_read_lock(); for_each_online_cpu(cpu) but this one",
       MB + "rcu_read_lock(); p = rcu_dereference(cpu_rq(cpu)->curr)",
       MB + "p->mm (the pointer, no reference taken)",
       EXAMPLES[0][4],
       MB + "smp_call_function_many(tmpmask, ipi_mb, NULL, 1); cpus_read_unlock()"]
THREE = ("cpus 3\ngranularity step\nspawn B\nspawn C\nspawn D\nschedule cpu1 B\nmembarrier register cpu1\n"
         "schedule cpu2 D\nschedule cpu0 C\nmembarrier cpu0\n")


def membarrier_steps(r):
    return [o.step for o in r.steps if o.stmt.line == 10]


def test_before_227a4aadc75b_each_other_cpu_is_three_reads():
    # v5.3: per CPU rcu_read_lock; p = curr; p->mm; p->mm->membarrier_state; rcu_read_unlock.
    # cpu1 (B, registered) and cpu2 (D, not): 1 + 3 + 3 + 1 steps, one IPI (to cpu1)
    r = run(THREE, version=V.KernelVersion("v5.3"))
    assert not r.failed, r.diagnostics
    assert membarrier_steps(r) == PRE[:4] + PRE[1:4] + PRE[4:]
    assert r.cost["ipis"] == 1
    k = r.kernel
    assert k.c_op_cpu == [None] * 3 and k.c_op_cpus == [0] * 3 and k.c_op_mm == [None] * 3
    assert not any(k.c_rcu_reader) and not any(k.m_step_count)


def test_since_227a4aadc75b_it_reads_the_runqueues_copy_only():
    # v5.4: rcu_read_lock around the loop, one step per other CPU (rq->membarrier_state, curr, PF_KTHREAD)
    r = run(THREE, version=V.KernelVersion("v5.4"))
    assert not r.failed, r.diagnostics
    steps = membarrier_steps(r)
    assert steps[0] == MB + "cpus_read_lock(); rcu_read_lock(); for_each_online_cpu(cpu) but this one"
    assert steps[1] == steps[2] == (MB + "READ_ONCE(cpu_rq(cpu)->membarrier_state); p = rcu_dereference("
                                         "cpu_rq(cpu)->curr); p->flags & PF_KTHREAD: __cpumask_set_cpu(cpu, tmpmask)")
    assert len(steps) == 4 and r.cost["ipis"] == 1
    # 618758ed3a4f (v5.11): the test is !p->mm
    r = run(THREE)
    assert "!p->mm: __cpumask_set_cpu" in membarrier_steps(r)[1]


def test_the_bare_pointer_holds_no_reference():
    # between `p->mm` and the read of the state the loop holds @B without a count: B's exit and the
    # switch to X free it (count 2 -> 1 -> 0) while cpu0 is at the read
    text = (HISTORY / "LT-09-membarrier-freed-mm.mmscn").read_text().replace(
        "granularity step", "granularity step\ninterleave cpu0 cpu0 cpu0 cpu1 cpu1 cpu1 cpu1 cpu1")
    r = run(text, version=V.KernelVersion(reverts=[V.MEMBARRIER_RQ_STATE]))
    assert r.failed and r.steps[-1].step == PRE[3] and r.steps[-1].violations[0].rule == "use-after-free"
    # the switch to X dropped @B's last count (1 -> 0): the loop's pointer held none
    assert ("ref", "@B", "mmdrop_lazy_tlb_sched", "count", 1, 0) in r.steps[-2].events
    assert [o.step for o in r.steps if o.cpu == 0] == PRE[:4]


def test_one_online_cpu_is_one_step():
    text = "granularity step\nspawn C\nschedule cpu0 C\nmembarrier cpu0\n"
    for version, first in ((V.KernelVersion("v5.3"), PRE[0]), (None, MB + "cpus_read_lock(); rcu_read_lock(); "
                                                                     "for_each_online_cpu(cpu) but this one")):
        r = run(text, version=version)
        assert [o.step for o in r.steps if o.stmt.line == 4] == [first] and r.cost["ipis"] == 0


# ---------------------------------------------------------------- PREEMPT_RT (LT-16)
def rt_kernel(reverts=(), configs=("PREEMPT_RT",), deferred=True):
    k = Kernel(2, policies.get("generic"), version=V.KernelVersion(reverts=reverts, configs=configs))
    k.rcu_deferred = deferred
    a = k.copy_process("A", "@A")
    x = k.copy_process("X", "@X")
    k.schedule(1, a)
    k.do_exit(a)
    assert k.check() == []
    return k, k.mm_ix["@A"], x


def test_rt_the_count_drops_at_once_and_the_free_waits_for_the_callback():
    k, a, x = rt_kernel()
    assert k.m_count[a] == 1
    k.schedule(1, x)                    # finish_task_switch: mmdrop_lazy_tlb_sched: 1 -> 0, call_rcu
    assert k.check() == []              # count 0, free pending: accounted for
    assert k.m_count[a] == 0 and not k.m_freed[a] and k.m_rcu_cpu[a] == 1 and k.mm_state(a) == "zombie"
    assert k.rcu_ready(1) == [a]
    k.rcu_do_batch(1)                   # __mmdrop_delayed -> __mmdrop
    assert k.m_freed[a] and k.m_rcu_cpu[a] is None and k.check() == []


def test_a_grace_period_waits_for_the_readers_inside_rcu_read_lock():
    k, a, x = rt_kernel()
    k.rcu_read_lock(0)
    k.this_cpu = 1
    k.schedule(1, x)
    assert k.m_rcu_wait[a] == 1 and k.rcu_ready(1) == []
    k.rcu_read_unlock(0)
    assert k.m_rcu_wait[a] == 0 and k.rcu_ready(1) == [a]


def test_taking_a_pending_mm_back_is_a_use_after_free():
    k, a, x = rt_kernel()
    k.schedule(1, x)
    k.check()
    k.mmgrab(a)                         # mm_count 0 -> 1 under a queued __mmdrop_delayed
    assert [v.rule for v in k.check()] == ["use-after-free"]


def test_without_rt_or_at_operation_granularity_the_mm_is_freed_in_the_switch():
    for configs, deferred in (((), True), (("PREEMPT_RT",), False)):
        k, a, x = rt_kernel(configs=configs, deferred=deferred)
        k.schedule(1, x)
        assert k.m_freed[a] and k.m_rcu_cpu[a] is None and k.check() == []


def test_before_8d491de6edc2_only_rt_breaks_might_sleep():
    k, a, x = rt_kernel(reverts=[V.MMDROP_SCHED])
    k.schedule(1, x)
    assert [v.rule for v in k.check()] == ["might-sleep"] and k.m_freed[a]
    k, a, x = rt_kernel(reverts=[V.MMDROP_SCHED], configs=())
    k.schedule(1, x)
    assert k.check() == [] and k.m_freed[a]
    # a drop that is not the last one frees nothing and sleeps nowhere
    k, a, x = rt_kernel(reverts=[V.MMDROP_SCHED])
    k.mmgrab(a)
    k.m_ext_count[a] += 1
    k.schedule(1, x)
    assert k.check() == [] and k.m_count[a] == 1


def test_run_takes_the_callback_at_the_first_boundary_and_says_so():
    r = run((HISTORY / "LT-16-rt-mmdrop-rcu.mmscn").read_text(), version=V.KernelVersion(configs=["PREEMPT_RT"]))
    assert not r.failed, r.diagnostics
    cb = [o for o in r.steps if o.kind == "rcu"]
    assert len(cb) == 1 and cb[0].cpu == 1 and "(run at the first boundary after the grace period)" in cb[0].step
    i = r.steps.index(cb[0])
    assert r.steps[i - 1].stmt.line == cb[0].stmt.line      # right after the switch that queued it
    assert [e[2] for e in cb[0].events] == ["__mmdrop_delayed", "__mmdrop"]


def test_interleave_rcu_where_no_callback_is_ready_is_a_clean_failure():
    text = (HISTORY / "LT-16-rt-mmdrop-rcu.mmscn").read_text().replace(
        "granularity step", "granularity step\ninterleave rcu cpu1")
    r = run(text, version=V.KernelVersion(configs=["PREEMPT_RT"]))
    assert r.failed
    assert "`interleave` cannot take this step: no RCU callback can run on cpu1 here" in r.diagnostics[0].message


def test_callbacks_an_interleave_leaves_queued_run_before_final():
    # the items end right after the switch that queued the callback: `final forall @A is freed` still holds
    text = (HISTORY / "LT-16-rt-mmdrop-rcu.mmscn").read_text().replace(
        "granularity step", "granularity step\ninterleave cpu0 cpu1 cpu1 cpu1 cpu1 cpu1 cpu1")
    r = run(text, version=V.KernelVersion(configs=["PREEMPT_RT"]))
    assert not r.failed, r.diagnostics
    assert r.final[1] and [o.kind for o in r.steps][-1] == "rcu"
