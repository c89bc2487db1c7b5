"""`offline` under granularity step (interpreter/steps.py cpu_down): cpu_down's stages as kernel
steps, LT-07 (21641bd9a7a7, powerpc shoot lazies) found by `mmscn explore` and replayed, the same
scenario holding both ways on x86 (refcounted lazy mm), and LT-06's idle_task_exit path under steps.

The expected rows and counts are derived by hand from the kernel source (docs/kernel-model.md
"offline under granularity step"), not read off the model's output."""
import subprocess
import sys
from pathlib import Path

import pytest

from mmscn.dsl.resolve import load
from mmscn.interpreter import explore as X
from mmscn.interpreter import steps as STEPS
from mmscn.interpreter import version as V
from mmscn.interpreter.arches import known_arches
from mmscn.interpreter.runner import Runner

HISTORY = Path(__file__).resolve().parent.parent / "examples" / "history"
LT07 = HISTORY / "LT-07-hotplug-shoot-lazies.mmscn"
LT06 = HISTORY / "LT-06-mmdrop-offline-cpu.mmscn"
FIX = V.SCHED_FORCE_INIT_MM
WAIT_EMPTY, TAKE_DOWN, IDLE_DEAD, FINISH = "sched_cpu_wait_empty", "take_cpu_down", "arch_cpu_idle_dead", "finish_cpu"


def ver(release=None, reverts=()):
    return V.KernelVersion(release or V.NEWEST, reverts=list(reverts))


def mmscn(*args):
    return subprocess.run([sys.executable, "-m", "mmscn", *args], capture_output=True, text=True)


def run(text, version=None, **kw):
    sc = load(text, "t.mmscn", known_arches())
    return Runner(sc, text.split("\n"), version=version, **kw).run()


def explore(text, reverts=(), por=True, symmetry=True, release=None):
    sc = load(text, "t.mmscn", known_arches())
    m = X.Model(sc, text.split("\n"), version=ver(release, reverts))
    return X.Explorer(m, por=por, symmetry=symmetry).run()


def steps_of(r, line):
    """(step, [(function, counter, old, new) of its refcount events]) of each stepped Outcome of ``line``."""
    return [(o.step.split(":")[0], [(e[2], e[4], e[5]) for e in o.events if e[0] == "ref"])
            for o in r.steps if o.stmt.line == line and o.step]


# ---- LT-07 through the CLI: both verdicts, the witness, its replay, bisect
def test_lt07_both_ways_and_its_witness_replays(tmp_path):
    w = tmp_path / "w.mmscn"
    p = mmscn("explore", str(LT07), "--witness", str(w))
    assert p.returncode == 0, p.stdout + p.stderr
    assert f"expect fail without {FIX}" in p.stdout and ": holds" in p.stdout
    assert "fails, as the line expects: line 53:3: use-after-free: @U was freed (mm_count 0) but still in use by " \
           "idle1" in p.stdout
    # exit_mm's first two steps, take_cpu_down, and the bite: exit_mm's mmput frees @U
    assert "shortest failing interleaving (4 steps)" in p.stdout
    assert "[exit_mm: mmput(mm)]  <- violation" in p.stdout
    order = [ln.split()[1] for ln in p.stdout.splitlines() if ln.strip()[:1].isdigit() and "line 5" in ln]
    assert order == ["cpu0", "cpu0", "cpu1", "cpu0"], p.stdout
    assert "interleave cpu0 cpu0 cpu1 cpu0" in w.read_text()
    r = mmscn("run", str(w))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "violation: use-after-free: @U was freed" in r.stdout and "failed, as the header expects" in r.stdout
    t = mmscn("test", "--explore", str(LT07))
    assert t.returncode == 0 and "1 passed, 0 failed" in t.stdout, t.stdout


def test_lt07_bites_once_take_cpu_down_ran_and_before_finish_cpu():
    # with the fix reverted, the exit's free is harmless before take_cpu_down (the shootdown reaches
    # cpu1, still online and in the mask: idle1 moves to init_mm) and after finish_cpu; in between
    # idle1's active_mm is @U (after idle_task_exit too: only finish_cpu changes it)
    text = LT07.read_text()
    for order, fails in [("cpu1 cpu0 cpu0 cpu0", True), ("cpu0 cpu0 cpu0", False),
                         ("cpu1 cpu1 cpu0 cpu0 cpu0", True), ("cpu1 cpu1 cpu1 cpu0 cpu0 cpu0", False)]:
        r = run(text.replace("granularity step\n", f"granularity step\ninterleave {order}\n"),
                version=ver("v6.14", [FIX]))
        uaf = [d for d in r.diagnostics if "use-after-free" in d.message]
        assert bool(uaf) == fails, (order, [d.message for d in r.diagnostics])


def test_lt07_holds_with_the_fix_and_fails_without_it_with_and_without_reductions():
    text = LT07.read_text()
    for por, sym in [(True, True), (False, False)]:
        assert explore(text, por=por, symmetry=sym, release="v6.14").holds
        res = explore(text, [FIX], por=por, symmetry=sym, release="v6.14")
        assert not res.holds and res.failure.rules == ("use-after-free",) and len(res.path) == 4


@pytest.mark.parametrize("reverts", [(), (FIX,)])
def test_lt07_on_x86_holds_both_ways(reverts):
    # refcounted lazy mm: idle1's lazy reference keeps @U alive (a zombie) until sched_force_init_mm
    # (fixed) or finish_cpu (before) drops it, on an online CPU: no interleaving frees it under cpu1
    text = LT07.read_text().replace("arch powerpc", "arch x86")
    res = explore(text, reverts, release="v6.14")
    assert res.holds and res.complete, res.failure
    assert explore(text, reverts, por=False, symmetry=False, release="v6.14").holds


def test_bisect_names_21641bd9a7a7():
    p = mmscn("bisect", "--from", "v6.13", str(LT07))
    assert p.returncode == 0, p.stdout + p.stderr
    assert f"\n{FIX} is the first commit where the scenario holds\n" in p.stdout
    assert "v6.13     fails  line 53: use-after-free" in p.stdout


# ---- the table: one row per stage of Kernel.offline_stages, by release
def table(release=None, reverts=(), arch="powerpc"):
    text = f"arch {arch}\ncpus 2\ngranularity step\n" + (f"kernel {release}\n" if release else "")
    k = run(text, version=ver(release, reverts)).kernel
    return [(s.function, s.irqs_off) for s in STEPS.table(k, "cpu_down")]


def test_the_rows_follow_the_release():
    # v6.14 (21641bd9a7a7): sched_cpu_wait_empty -> sched_force_init_mm first, irqs on after it
    # (local_irq_enable); take_cpu_down runs under stop_machine with irqs off, and the dead CPU's idle
    # loop calls arch_cpu_idle_dead with irqs off; finish_cpu runs on the control CPU
    assert table() == [(WAIT_EMPTY, False), (TAKE_DOWN, True), (IDLE_DEAD, True), (FINISH, False)]
    assert table(reverts=[FIX]) == [(TAKE_DOWN, True), (IDLE_DEAD, True), (FINISH, False)]
    # before bf2c59fce407 (v5.8) idle_task_exit dropped the mm itself: no finish_cpu step
    assert table("v5.7", arch="x86") == [(TAKE_DOWN, True), (IDLE_DEAD, True)]


PROLOGUE = "arch x86\ncpus 2\ngranularity step\nspawn U\nschedule cpu1 U\nschedule cpu1 idle\n"


def test_x86_counts_step_by_step_with_the_fix():
    # boot: init_mm count 1 + each idle's lazy grab + x86's boot pin = 4; idle1 -> U drops idle1's
    # (3); idle1 borrows @U (count 2).  sched_force_init_mm: mmgrab_lazy_tlb(&init_mm) 3 -> 4,
    # mmdrop_lazy_tlb(@U) 2 -> 1; take_cpu_down and arch_cpu_idle_dead count nothing; finish_cpu
    # drops init_mm's 4 -> 3
    r = run(PROLOGUE + "offline cpu1\n")
    assert not r.failed, r.diagnostics
    assert steps_of(r, 7) == [
        (WAIT_EMPTY, [("mmgrab_lazy_tlb", 3, 4), ("mmdrop_lazy_tlb", 2, 1)]),
        (TAKE_DOWN, []), (IDLE_DEAD, []), (FINISH, [("mmdrop_lazy_tlb", 4, 3)])]
    k = r.kernel
    assert not any(k.m_step_count) and not any(k.m_step_users) and k.c_op == [None, None]
    assert k.t_active[k._idle(1)] is None and not k.c_online[1]


def test_x86_counts_step_by_step_before_the_fix():
    # v6.13: idle_task_exit only switches the hardware; finish_cpu drops idle1's lazy @U (2 -> 1)
    r = run(PROLOGUE + "offline cpu1\n", version=ver(reverts=[FIX]))
    assert not r.failed, r.diagnostics
    assert steps_of(r, 7) == [(TAKE_DOWN, []), (IDLE_DEAD, []), (FINISH, [("mmdrop_lazy_tlb", 2, 1)])]


# ---- LT-06's path (idle_task_exit's mmdrop on the dead CPU) under steps
def test_lt06_under_steps_both_ways(tmp_path):
    # v5.8: idle_task_exit switches the hardware only, finish_cpu drops @U on cpu0; before
    # bf2c59fce407 idle_task_exit's mmdrop frees it on the dead cpu1, at arch_cpu_idle_dead
    text = LT06.read_text().replace("expect pass\n", "granularity step\nexpect pass\n")
    r = run(text, version=ver("v5.8"))
    assert not r.failed and [o.step.split(":")[0] for o in r.steps if o.stmt.line == 39] == [TAKE_DOWN, IDLE_DEAD,
                                                                                              FINISH]
    r = run(text, version=ver("v5.8", [V.ILLEGAL_RCU_OFFLINE]))
    bite = [o for o in r.steps if o.violations]
    assert [o.step.split(":")[0] for o in bite] == [IDLE_DEAD]
    assert bite[0].violations[0].rule == "mmdrop-offline-cpu"
    (tmp_path / "lt06.mmscn").write_text(text)
    t = mmscn("test", "--explore", str(tmp_path / "lt06.mmscn"))
    assert t.returncode == 0 and "fails, as the line expects: line 39:1: mmdrop-offline-cpu" in t.stdout, t.stdout


# ---- where the stages run
def test_finish_cpu_runs_on_the_control_cpu():
    # the dying CPU's own block runs the stages; finish_cpu runs on the lowest other online CPU
    text = ("arch x86\ncpus 3\ngranularity step\nspawn U\nschedule cpu1 U\nschedule cpu1 idle\n"
            "cpu0 {\n  offline cpu0\n}\ncpu1 {\n  schedule cpu1 idle\n}\n")
    r = run(text.replace("offline cpu0", "schedule cpu0 idle").replace("schedule cpu1 idle\n}", "offline cpu1\n}"),
            version=ver(reverts=[FIX]))
    assert not r.failed, r.diagnostics
    [fin] = [e for o in r.steps for e in o.events if e[0] == "op" and e[2] == "finish_cpu"]
    assert fin[3].startswith("on cpu0: idle1 active_mm @U")


def test_two_cpu_downs_at_once_are_refused_not_a_traceback():
    # cpu_maps_update_begin serializes hotplug; before the check both went down and finish_cpu
    # found no online CPU to run on (StopIteration)
    text = "arch x86\ncpus 2\ngranularity step\ncpu0 {\n  offline cpu0\n}\ncpu1 {\n  offline cpu1\n}\n"
    r = run(text)
    assert r.failed
    d = r.diagnostics[0]
    assert (d.line, d.col) == (8, 3) and "cpu0 is in the middle of cpu_down" in d.message


def test_online_waits_for_a_cpu_down_in_flight():
    # cpu_up takes the same lock: cpu1 cannot come back between take_cpu_down and finish_cpu
    text = ("arch x86\ncpus 2\ngranularity step\ninterleave cpu1 cpu1 cpu0\ncpu0 {\n  online cpu1\n}\n"
            "cpu1 {\n  offline cpu1\n}\n")
    r = run(text)
    assert r.failed
    d = r.diagnostics[0]
    assert (d.line, d.col) == (6, 3) and "cpu1 is in the middle of cpu_down" in d.message, d.message
    assert "so cpu_up waits for it" in d.message


def test_take_cpu_down_runs_the_ipis_still_queued_on_the_dying_cpu():
    # smpcfd_dying_cpu (a CPU_DYING callback of take_cpu_down) flushes the call-function queue:
    # an IPI cpu0 queued on cpu1 runs there, and cpu0's wait ends
    text = "arch powerpc\ncpus 2\ngranularity step\nspawn U\nschedule cpu1 U\nschedule cpu1 idle\nschedule cpu0 U\n"
    k = run(text).kernel
    u = k.mm_ix["@U"]
    k.stepping, k.this_cpu = True, 0
    k.hw.smp_call([1], "exit_lazy_flush_tlb", u)
    k.stepping = False
    assert k.c_ipi_from[1] == 1 and k.smp_call_waiting(0)
    k.version = ver(reverts=[FIX])
    STEPS.begin(k, 1, "cpu_down", (1,))
    assert k.c_ipi_from[1] == 0 and not k.smp_call_waiting(0)
    assert k.t_active[k._idle(1)] == 0          # the handler moved idle1 to init_mm


# ---- granularity step ends where granularity operation does
@pytest.mark.parametrize("arch, release, reverts", [
    ("powerpc", None, ()), ("powerpc", None, (FIX,)), ("x86", None, ()), ("x86", None, (FIX,)),
    ("x86", "v5.8", ()), ("generic", "v5.7", ())])
def test_a_top_level_offline_ends_in_the_same_state_under_either_granularity(arch, release, reverts):
    body = (f"arch {arch}\ncpus 2\n" + (f"kernel {release}\n" if release else "")
            + "spawn U\nspawn X\nschedule cpu1 U\nschedule cpu1 idle\nschedule cpu0 U\nexit U\n"
            "schedule cpu0 X\noffline cpu1\nonline cpu1\nschedule cpu1 idle\n")
    version = ver(release, reverts)
    ends = []
    for g in ("operation", "step"):
        r = run(body.replace("cpus 2\n", f"cpus 2\ngranularity {g}\n"), version=version, trace=False)
        ends.append((r.failed, [d.message for d in r.diagnostics], r.kernel.key()))
    assert ends[0] == ends[1]
