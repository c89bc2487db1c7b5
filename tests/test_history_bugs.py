"""The bug examples of examples/history (issue 14 item 5): each one passes under its
kernel and fails under it with the fix reverted, with the bug's own rule, at the
statement where the bug bites; and each mechanism under the releases around its fix.

The expected values are read off the kernel source (docs/kernel-model.md,
"membarrier, tick, task_work_run, perf_sample" and "offline / online"), not off
the model's output.
"""
from pathlib import Path

import pytest

from mmscn.dsl.resolve import load, load_file
from mmscn.interpreter import policies
from mmscn.interpreter import version as V
from mmscn.interpreter.arches import known_arches
from mmscn.interpreter.kernel import INIT_MM, Kernel
from mmscn.interpreter.runner import Runner

HISTORY = Path(__file__).resolve().parent.parent / "examples" / "history"

# file, the fix, the rule its revert breaks, the statement where it bites
BUGS = [
    ("LT-04-powerpc-trim-vs-use-mm.mmscn", V.PPC_TRIM_SELF, "mm_cpumask", "flush @T"),
    ("LT-06-mmdrop-offline-cpu.mmscn", V.ILLEGAL_RCU_OFFLINE, "mmdrop-offline-cpu", "offline cpu1"),
    ("LT-08-powerpc-offline-trim.mmscn", V.PPC_TRIM_OFFLINE, "offline-cpu-in-mm_cpumask", "offline cpu1"),
    ("LT-10-membarrier-use-mm.mmscn", V.MEMBARRIER_USE_MM, "membarrier-missed", "membarrier cpu2"),
    ("LT-11-numa-work-kthread.mmscn", V.NUMA_NO_KTHREAD, "task_numa_work-null-mm", "task_work_run K"),
    ("LT-13-perf-active-mm.mmscn", V.NO_ACTIVE_MM_UACCESS, "user-context", "perf_sample cpu1"),
]


def run_file(path, without=(), release=None):
    """The file under its header's kernel (or ``release``), with ``without`` reverted too."""
    sc, text = load_file(str(path), known_arches())
    ver = V.for_policy(policies.get(sc.arch), release or sc.kernel, tuple(sc.reverts) + tuple(without),
                       sc.configs)
    return Runner(sc, text.split("\n"), version=ver).run(), text


def line_of(text, stmt):
    """The first line whose statement (before any comment) is ``stmt``."""
    for n, ln in enumerate(text.split("\n"), 1):
        if ln.split("#", 1)[0].strip() == stmt:
            return n
    raise AssertionError(f"no line `{stmt}`")


def test_every_history_example_of_this_work_is_listed():
    mine = {name for name, *_ in BUGS}
    assert mine <= {p.name for p in HISTORY.glob("*.mmscn")}


@pytest.mark.parametrize("name,fix,rule,stmt", BUGS, ids=[b[0].split("-")[0] + "-" + b[0].split("-")[1] for b in BUGS])
def test_passes_with_the_fix_and_fails_without_it(name, fix, rule, stmt):
    path = HISTORY / name
    sc, _ = load_file(str(path), known_arches())
    assert [(e.outcome, e.without) for e in sc.expectations()] == [("pass", ()), ("fail", (fix,))]
    r, text = run_file(path)
    assert not r.failed, "\n".join(d.render() for d in r.diagnostics)
    r, text = run_file(path, without=[fix])
    assert r.failed
    d = r.diagnostics[0]
    assert d.message.startswith(rule + ":"), d.render()
    assert d.line == line_of(text, stmt), d.render()


# ---------------------------------------------------------------- each mechanism, around its fix
def kernel(release="v6.17", reverts=(), arch="generic", ncpus=3):
    return Kernel(ncpus, policies.get(arch), version=V.KernelVersion(release, reverts=reverts))


def rules(k):
    return [v.rule for v in k.check()]


def kthread_in_use_mm(k):
    """P (registered for GLOBAL_EXPEDITED) on cpu0, K inside kthread_use_mm(@P) on cpu1."""
    p, kt = k.copy_process("P", "@P"), k.kthread_create("K")
    m = k.mm_ix["@P"]
    k.schedule(0, p)
    k.membarrier_register_global_expedited(0)
    k.ext_mmget(m)
    k.schedule(1, kt)
    k.kthread_use_mm(kt, m)
    assert rules(k) == []
    return p, kt, m


@pytest.mark.parametrize("release,missed", [("v5.3", False), ("v5.4", True), ("v5.10", True), ("v5.11", False)])
def test_membarrier_reaches_a_kthread_in_use_mm_except_from_v5_4_to_v5_10(release, missed):
    # v5.3: p->mm && p->mm->membarrier_state; 227a4aadc75b: rq state and !PF_KTHREAD; 618758ed3a4f: p->mm
    k = kernel(release)
    _, kt, m = kthread_in_use_mm(k)
    ipis = k.cost[5]
    k.membarrier_global_expedited(2)
    assert rules(k) == (["membarrier-missed"] if missed else [])
    assert k.cost[5] - ipis == (1 if missed else 2)


def test_the_runqueue_copy_of_membarrier_state():
    # 618758ed3a4f: kthread_use_mm / kthread_unuse_mm keep rq->membarrier_state (membarrier_update_current_mm)
    k = kernel()
    p, kt, m = kthread_in_use_mm(k)
    assert k.c_membarrier == [True, True, False] and k.m_membarrier[m]
    k.kthread_unuse_mm(kt)
    assert k.c_membarrier[1] is False
    # before it, kthread_use_mm left cpu1's copy as the idle task left it
    k = kernel(reverts=[V.MEMBARRIER_USE_MM])
    kthread_in_use_mm(k)
    assert k.c_membarrier == [True, False, False]
    # exec: membarrier_exec_mmap clears this CPU's copy; 5bc78502322a: exit_mm too
    k = kernel()
    p, _, m = kthread_in_use_mm(k)
    k.exec_mmap(p, "@P.2")
    assert k.c_membarrier[0] is False
    for reverts, after in (((), False), ((V.MEMBARRIER_EXIT_MM,), True)):
        k = kernel(reverts=reverts)
        p, _, _ = kthread_in_use_mm(k)
        k.do_exit(p)
        assert k.c_membarrier[0] is after


def test_registration_with_several_users_syncs_every_runqueue_running_the_mm():
    # sync_runqueues_membarrier_state: mm_users > 1 -> every CPU whose current->mm is mm, by IPI
    k = kernel()
    p = k.copy_process("P", "@P")
    t = k.copy_process_clone_vm("T", p)
    k.schedule(0, p)
    k.schedule(1, t)
    k.membarrier_register_global_expedited(0)
    assert rules(k) == [] and k.c_membarrier == [True, True, False] and k.cost[5] == 1


@pytest.mark.parametrize("release,queued", [("v5.6", True), ("v5.7", False)])
def test_task_tick_numa_and_a_kthread_in_use_mm(release, queued):
    k = kernel(release, ncpus=1)
    p, kt = k.copy_process("P", "@P"), k.kthread_create("K")
    m = k.mm_ix["@P"]
    k.ext_mmget(m)
    k.schedule(0, kt)
    k.kthread_use_mm(kt, m)
    k.scheduler_tick(0)
    assert k.t_numa_work[kt] is queued and rules(k) == []
    k.kthread_unuse_mm(kt)
    k.task_work_run(kt)
    assert rules(k) == (["task_numa_work-null-mm"] if queued else [])
    assert k.t_numa_work[kt] is False


def test_a_user_task_runs_its_numa_work_at_the_tick_and_a_dying_one_never():
    k = kernel(ncpus=1)
    p = k.copy_process("P", "@P")
    k.schedule(0, p)
    k.scheduler_tick(0)
    assert not k.t_numa_work[p] and [e[2] for e in k.ev[-3:]] == ["task_tick_numa", "exit_to_user_mode",
                                                                   "task_numa_work"]
    # a kthread's pending work at exit: exit_task_work -> task_numa_work returns for PF_EXITING
    k = kernel("v5.6", ncpus=1)
    kt = k.kthread_create("K")
    p = k.copy_process("P", "@P")
    k.ext_mmget(k.mm_ix["@P"])
    k.schedule(0, kt)
    k.kthread_use_mm(kt, k.mm_ix["@P"])
    k.scheduler_tick(0)
    k.kthread_unuse_mm(kt)
    k.do_exit(kt)
    assert rules(k) == [] and not k.t_numa_work[kt]


def lazy_kthread_after_flush(release, reverts=()):
    k = kernel(release, reverts, arch="x86", ncpus=2)
    u, kt = k.copy_process("U", "@U"), k.kthread_create("K")
    k.schedule(1, u)
    k.schedule(1, kt)
    return k, kt, k.mm_ix["@U"]


@pytest.mark.parametrize("release,broken", [("v6.15", True), ("v6.16", False)])
def test_get_segment_base_takes_current_mm_only_when_it_is_loaded(release, broken):
    k, kt, m = lazy_kthread_after_flush(release)
    k.flush(m, True, None)      # the lazy CPU's CR3 goes to init_mm, K keeps active_mm @U
    assert rules(k) == [] and k.c_loaded[1] == INIT_MM and k.t_active[kt] == m
    k.get_segment_base(1)
    assert rules(k) == (["user-context"] if broken else [])
    # inside kthread_use_mm the user context is real in every release
    k.ext_mmget(m)
    k.kthread_use_mm(kt, m)
    k.check()
    k.get_segment_base(1)
    assert rules(k) == []


def test_the_lazy_cpu_before_any_flush_is_no_user_context_either():
    k, kt, m = lazy_kthread_after_flush("v6.15")
    assert k.c_loaded[1] == m      # still loaded, but K has no mm: nmi_uaccess_okay() is false
    k.get_segment_base(1)
    assert rules(k) == ["user-context"]


def zombie_on_idle1(release, reverts=()):
    """@U is a zombie whose only reference is idle1's lazy one (LT-06's setup)."""
    k = kernel(release, reverts, ncpus=2)
    u, x = k.copy_process("U", "@U"), k.copy_process("X", "@X")
    k.schedule(1, u)
    k.schedule(1, 1)
    k.schedule(0, u)
    k.do_exit(u)
    k.schedule(0, x)
    m = k.mm_ix["@U"]
    assert rules(k) == [] and (k.m_users[m], k.m_count[m]) == (0, 1)
    return k, m


@pytest.mark.parametrize("release,where", [("v5.7", "idle_task_exit"), ("v5.8", "finish_cpu"),
                                           ("v6.13", "finish_cpu"), ("v6.14", "sched_force_init_mm")])
def test_which_cpu_frees_the_lazy_mm_at_offline(release, where):
    k, m = zombie_on_idle1(release)
    k.cpu_down(1)
    ops = [e for e in k.ev if e[0] == "op"]
    freed = next(i for i, e in enumerate(ops) if e[2] == "__mmdrop")
    dropper = [e[2] for e in ops[:freed] if e[2] in ("idle_task_exit", "finish_cpu", "sched_force_init_mm")][-1]
    assert dropper == where and k.m_freed[m]
    assert rules(k) == (["mmdrop-offline-cpu"] if release == "v5.7" else [])
    assert k.t_active[1] is None and not k.c_online[1]
    k.cpu_up(1)
    assert rules(k) == [] and k.t_active[1] == INIT_MM


def powerpc_trim(release, reverts=()):
    k = kernel(release, reverts, arch="powerpc")
    t, kt = k.copy_process("T", "@T"), k.kthread_create("K")
    m = k.mm_ix["@T"]
    k.ext_mmgrab(m)
    k.schedule(2, t)
    k.schedule(2, 2)
    k.schedule(0, t)
    k.schedule(1, kt)
    k.kthread_use_mm(kt, m)
    assert rules(k) == [] and k.m_cpumask[m] == 0b111
    k.flush(m, False, 0)
    return k, m


@pytest.mark.parametrize("release,mask,broken", [("v5.9", 0b001, True), ("v5.10", 0b011, False)])
def test_the_powerpc_trim_keeps_a_cpu_inside_kthread_use_mm(release, mask, broken):
    k, m = powerpc_trim(release)
    assert k.m_cpumask[m] == mask and k.t_active[2] == INIT_MM
    assert rules(k) == (["mm_cpumask"] if broken else [])


@pytest.mark.parametrize("release,broken", [("v5.10", True), ("v5.11", False), ("v6.17", False)])
def test_powerpc_offline_leaves_or_clears_the_mm_cpumask(release, broken):
    k = kernel(release, arch="powerpc", ncpus=2)
    t = k.copy_process("T", "@T")
    m = k.mm_ix["@T"]
    k.schedule(1, t)
    k.schedule(1, 1)
    k.schedule(0, t)
    k.check()
    k.cpu_down(1)
    assert rules(k) == (["offline-cpu-in-mm_cpumask"] if broken else [])
    assert k.m_cpumask[m] == (0b11 if broken else 0b01)


def test_the_new_statements_are_refused_in_kernel_words():
    from mmscn.interpreter.kernel import Refusal
    k = kernel(ncpus=2)
    kt = k.kthread_create("K")
    k.schedule(1, kt)
    with pytest.raises(Refusal, match="has no mm: membarrier registers current->mm"):
        k.membarrier_register_global_expedited(1)
    with pytest.raises(Refusal, match="K is not running"):
        k.schedule(1, 1)
        k.task_work_run(kt)
    k.cpu_down(1)
    for op in (k.membarrier_global_expedited, k.scheduler_tick, k.get_segment_base):
        with pytest.raises(Refusal, match="cpu1 is offline"):
            op(1)


def test_the_statements_outside_a_block_name_their_cpu():
    from mmscn.dsl.parser import ParseFailed
    for st in ("membarrier", "membarrier register", "tick", "perf_sample"):
        with pytest.raises(ParseFailed, match=f"`{st.split()[0]}` needs a CPU outside a per-CPU block"):
            load(f"cpus 2\n{st}\n", "t.mmscn")
    sc = load("cpus 2\nspawn A\ncpu1 { schedule A; membarrier register; tick; perf_sample }\n", "t.mmscn")
    r = Runner(sc, [], None).run()
    assert not r.failed
