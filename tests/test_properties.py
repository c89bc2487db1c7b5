"""Random valid scenarios (hypothesis): the kernel's rules, recomputed from scratch after every statement.

The generator builds a scenario one statement at a time, each naming only
tasks, mms and CPUs that exist, and runs it through Runner.step like `mmscn
run` does.  Statements the kernel may refuse (exit of a task that is not
running, schedule of a dead task, use_mm from a user task, ...) are generated
on purpose: a refusal must change nothing at all.  What would legitimately
break a rule is not generated: use_mm of init_mm, an mmput/mmdrop that no earlier mmget/mmgrab of
the scenario paid for, mmget or use_mm on an mm whose mm_users is 0, mmgrab or
flush of a freed mm.  So every statement must run cleanly or be refused, and
the checks below, written here without looking at the kernel's own
bookkeeping (m_lazy_tasks, m_task_users, m_kthread_users, m_prev_mm_cpus, m_ext_*), must hold after each.

Parametrized over policies.builtin_names(), so a new architecture file is
covered as soon as it lands.
"""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mmscn.dsl.parser import parse_items
from mmscn.dsl.resolve import load
from mmscn.interpreter import policies
from mmscn.interpreter.kernel import DEAD, INIT_MM, KTHREAD, RUNNING, Refusal
from mmscn.interpreter.runner import Runner
from mmscn.interpreter.step import OK, REFUSED, VIOLATION

POLICIES = policies.builtin_names()

# Hazards a policy models on purpose, which a valid-looking scenario reaches: (statement, rule).
# alpha: ev5_switch_mm never rewrites the PCB's ptbr, so after kthread_use_mm the CPU stays on
# the page tables of the mm it borrowed before; when that mm is freed, they are freed under it
# (interpreter/policies/alpha.py).  The run stops there, so the example ends there too.
# Also on alpha: ev5_switch_mm sets asn_lock, so a flush IPI reaching a kernel thread inside
# kthread_use_mm of the mm it had borrowed reloads nothing (ipi_flush_tlb_mm -> flush_tlb_other),
# and flush_tlb_mm's mm_users <= 1 path only zeroes the other CPUs' mm->context[cpu]: the thread
# runs user code on a TLB the flush did not reach (stale-tlb, at the flush or at its use_mm).
# ia64: exit_mmap's flush_tlb_mm only drops the context number when mm_users is 0 ("happens as a
# result of exit_mmap()"), so a kernel thread the generator let into kthread_use_mm without an
# mm_users reference of its own (the caller's mmget_not_zero) keeps running on the torn-down mm's
# translations: stale-tlb at the statement that drops the last user.
MODELLED_HAZARDS = {"alpha": {("use_mm", "use-after-free"), ("flush", "stale-tlb"), ("use_mm", "stale-tlb")},
                    "ia64": {("exec", "stale-tlb"), ("exit", "stale-tlb"), ("mmput", "stale-tlb")},
                    # without 7899891c7d16: the last mmput finds a kthread inside kthread_use_mm running there
                    "xen-pv": {(w, "leave_mm-not-lazy") for w in ("exit", "exec", "mmput")}}
# init_mm references taken at boot and never dropped: x86's trap_init -> cpu_init does
# mmgrab(&init_mm) on the boot CPU after sched_init's mmgrab_lazy_tlb (arch/x86/kernel/cpu/common.c)
BOOT_PINS = {"x86": 1, "xen-pv": 1}   # xen-pv boots as x86

SETTINGS = settings(max_examples=80, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


# ---- the independent checks ----------------------------------------------------

class Ledger:
    """References the scenario itself took with mmget/mmgrab and not yet dropped, by mm name."""

    def __init__(self):
        self.users: dict = {}
        self.count: dict = {}


def from_scratch(k, policy, ledger: Ledger) -> list:
    """Every rule the model must keep, recomputed from the task, CPU and mm pointers alone."""
    bad = []
    ntask, nmm = len(k.t_name), len(k.m_name)
    for m in range(nmm):
        name = k.m_name[m]
        users, count = k.m_users[m], k.m_count[m]
        if users < 0 or count < 0:
            bad.append(f"{name}: negative counter (users {users}, count {count})")
        if m != INIT_MM and k.m_freed[m] != (count == 0):
            bad.append(f"{name}: freed is {k.m_freed[m]} with mm_count {count}")
        if k.m_freed[m]:
            holders = [k.t_name[t] for t in range(ntask) if k.t_mm[t] == m
                       or (k.t_active[t] == m and k.t_state[t] == RUNNING)]
            if holders:
                bad.append(f"{name} is freed but used by {holders}")
            continue
        # mm_users: user tasks whose mm it is, references the scenario took, init_mm's static 2
        owners = sum(1 for t in range(ntask) if k.t_mm[t] == m and k.t_kind[t] != KTHREAD)
        want_users = owners + ledger.users.get(name, 0) + (2 if m == INIT_MM else 0)
        if users != want_users:
            bad.append(f"{name}: mm_users {users}, want {want_users}")
        # mm_count: one for all users, the lazy borrowers (when the policy refcounts lazy TLB),
        # kernel threads inside kthread_use_mm, references the scenario took
        lazy = 0
        if lazy_refcounted(policy, k.version):
            lazy = sum(1 for t in range(ntask) if k.t_mm[t] is None and k.t_active[t] == m)
            lazy += sum(1 for c in range(k.ncpus) if k.c_prev_mm[c] == m)
        use = sum(1 for t in range(ntask) if k.t_mm[t] == m and k.t_kind[t] == KTHREAD)
        pins = BOOT_PINS.get(policy.name, 0) if m == INIT_MM else 0
        want_count = (1 if users > 0 else 0) + lazy + use + ledger.count.get(name, 0) + pins
        if count != want_count:
            bad.append(f"{name}: mm_count {count}, want {want_count} (lazy {lazy}, use_mm {use})")
    if k.m_freed[INIT_MM] or k.m_count[INIT_MM] <= 0:
        bad.append("init_mm freed")
    for t in range(ntask):
        m = k.t_mm[t]
        if m is not None:
            if k.t_active[t] != m:
                bad.append(f"{k.t_name[t]}: mm {k.m_name[m]} but active_mm {k.mm_label(k.t_active[t])}")
            if m == INIT_MM:
                bad.append(f"{k.t_name[t]} has init_mm as its mm")
        if k.t_state[t] == RUNNING:
            c = k.t_cpu[t]
            if c is None or k.c_curr[c] != t or not k.c_online[c]:
                bad.append(f"{k.t_name[t]} is running but not current on an online CPU")
            elif k.t_active[t] is None:
                bad.append(f"{k.t_name[t]} runs without an active_mm")
        elif k.t_cpu[t] is not None and k.c_curr[k.t_cpu[t]] == t and k.t_state[t] != DEAD \
                and k.c_online[k.t_cpu[t]]:
            bad.append(f"{k.t_name[t]} is current on cpu{k.t_cpu[t]} but {k.t_state[t]}")
    for c in range(k.ncpus):
        if k.c_online[c] and k.t_cpu[k.c_curr[c]] != c:
            bad.append(f"cpu{c}'s current task does not know it runs there")
    return bad


def lazy_refcounted(policy, version) -> bool:
    """Do lazy users hold mm_count?  Yes, unless the arch selects MMU_LAZY_TLB_SHOOTDOWN and the kernel
    has it: the helpers aa464ba9a1e4, the configurable refcount 88e3009b5283, the scheme 2655421ae69f
    and the arch's select (powerpc: 77f68ebeee20), all v6.4 (docs/history-sources.md rows B-E)."""
    if policy.lazy_tlb_refcount:
        return True
    keys = ["aa464ba9a1e4", "88e3009b5283", "2655421ae69f"] + \
        ([policy.lazy_tlb_shootdown_by] if policy.lazy_tlb_shootdown_by else [])
    return not all(version.has(key) for key in keys)


# ---- the generator -------------------------------------------------------------

def candidates(k, policy, ledger: Ledger, fresh: str) -> dict:
    """Statements by kind that name only what exists; some may be refused, none may break a rule.

    Statements that act on current (exit, exec, use_mm, unuse_mm) mostly name
    a running task, so that they run rather than being refused.
    """
    tasks = list(k.t_name)
    running = [k.t_name[t] for t in range(len(tasks)) if k.t_state[t] == RUNNING and k.t_kind[t] != "idle"]
    kthreads = [k.t_name[t] for t in range(len(tasks)) if k.t_kind[t] == KTHREAD]
    cpus = [f"cpu{c}" for c in range(k.ncpus)]
    live = [k.m_name[m] for m in range(len(k.m_name)) if k.m_users[m] > 0]
    unfreed = [k.m_name[m] for m in range(len(k.m_name)) if not k.m_freed[m]]
    users = [m for m in live if m != "@init_mm"]   # init_mm as a task's mm is a violation
    on_current = running * 6 + tasks
    running_kthreads = [t for t in running if t in kthreads]
    owners = [k.t_name[t] for t in range(len(tasks)) if k.t_mm[t] is not None and k.t_state[t] != DEAD]
    runnable = [k.t_name[t] for t in range(len(tasks)) if k.t_state[t] == "runnable" and k.t_kind[t] != "idle"]
    waiting_kthreads = [k.t_name[t] for t in range(len(tasks)) if k.t_state[t] == "runnable" and k.t_kind[t] == KTHREAD]
    out = {
        "spawn": [f"spawn {fresh}", f"spawn {fresh} mm @{fresh}_mm"],
        "kthread": [f"spawn kthread {fresh}"],
        "thread": [f"spawn thread {fresh} of {t}" for t in owners * 3 + tasks],
        "schedule": [f"schedule {c} {t}" for c in cpus for t in runnable * 3 + waiting_kthreads * 6 + tasks + ["idle"] * 2],
        "exit": [f"exit {t}" for t in on_current],
        "exec": [f"exec {t}" for t in on_current],
        "use_mm": [f"use_mm {t} {m}" for t in running_kthreads * 6 + tasks for m in users],
        "unuse_mm": [f"unuse_mm {t}" for t in running_kthreads * 6 + tasks],
        # a kernel thread comes in and adopts an mm (vhost, io_uring): two statements in a row
        "borrow": [f"schedule {c} {t}; use_mm {t} {m}" for c in cpus for t in waiting_kthreads for m in users],
        "unlazy": [f"unlazy {c}" for c in cpus],
        "hotplug": [f"{op} {c}" for c in cpus for op in ("offline", "online")],
        "flush": [f"flush {m}{tables}" for m in unfreed for tables in ("", " tables")],
        "mmget": [f"mmget {m}" for m in live],
        "mmget_not_zero": [f"mmget_not_zero {m}" for m in unfreed],
        "mmgrab": [f"mmgrab {m}" for m in unfreed],
        "mmput": [f"mmput {m}" for m, n in ledger.users.items() if n > 0],
        "mmdrop": [f"mmdrop {m}" for m, n in ledger.count.items() if n > 0],
    }
    return {kind: stmts for kind, stmts in out.items() if stmts}


# the scheduler moves the story along; exit and kthread_use_mm make the interesting counts
KIND_WEIGHT = {"schedule": 4, "spawn": 2, "kthread": 2, "exit": 2, "use_mm": 2, "unuse_mm": 3, "borrow": 2}


def draw_statement(draw, k, policy, ledger: Ledger, fresh: str, label: str) -> str:
    """One candidate: a statement, or a few separated by `; ` (play them one by one)."""
    cands = candidates(k, policy, ledger, fresh)
    kinds = [kind for kind in sorted(cands) for _ in range(KIND_WEIGHT.get(kind, 1))]
    kind = draw(st.sampled_from(kinds), label=f"{label} kind")
    return draw(st.sampled_from(cands[kind]), label=label)


def statement(text: str):
    [node] = parse_items(text + "\n")
    return node


def new_runner(arch: str, ncpus: int) -> Runner:
    text = f"arch {arch}\ncpus {ncpus}\n"
    return Runner(load(text, "<property>", policies.names()), text.split("\n"), trace=False)


def play(r: Runner, text: str, ledger: Ledger) -> str:
    """Run one statement as `mmscn run` would; keep the ledger; return the step's status."""
    k = r.k
    op, _, arg = text.partition(" ")
    users_before = k.m_users[k.mm_ix[arg]] if op in ("mmget_not_zero",) else None
    r.step(statement(text), None)
    status = r.result.steps[-1].status
    if status == OK:
        if op == "mmget" or (op == "mmget_not_zero" and users_before > 0):
            ledger.users[arg] = ledger.users.get(arg, 0) + 1
        elif op == "mmput":
            ledger.users[arg] -= 1
        elif op == "mmgrab":
            ledger.count[arg] = ledger.count.get(arg, 0) + 1
        elif op == "mmdrop":
            ledger.count[arg] -= 1
    return status


@st.composite
def scenarios(draw, arch: str):
    """(ncpus, statements) built against the model as it runs, so every name exists."""
    ncpus = draw(st.integers(1, 3))
    r = new_runner(arch, ncpus)
    ledger = Ledger()
    out = []
    for i in range(draw(st.integers(1, 40))):
        for text in draw_statement(draw, r.k, r.policy, ledger, f"T{i}", f"line {i + 1}").split("; "):
            play(r, text, ledger)
            out.append(text)
    return ncpus, out


# ---- the properties --------------------------------------------------------------

@pytest.mark.parametrize("arch", POLICIES)
def test_rules_hold_after_every_statement(arch):
    @settings(SETTINGS, max_examples=150)
    @given(data=st.data())
    def prop(data):
        ncpus = data.draw(st.integers(1, 3), label="cpus")
        r = new_runner(arch, ncpus)
        k, policy, ledger = r.k, r.policy, Ledger()
        assert from_scratch(k, policy, ledger) == [], "boot"
        for i in range(data.draw(st.integers(1, 40), label="length")):
            for text in draw_statement(data.draw, k, policy, ledger, f"T{i}", f"line {i + 1}").split("; "):
                before = k.snapshot()
                status = play(r, text, ledger)
                step = r.result.steps[-1]
                if status == REFUSED:
                    # refused before any change: not a counter, a pointer or a cost moved
                    assert k.snapshot() == before, text
                    assert step.message and step.function, text
                    continue
                bad = from_scratch(k, policy, ledger)
                assert not bad, f"after `{text}`: {bad}"
                if status == VIOLATION and (text.split()[0], step.message.split(":")[0]) \
                        in MODELLED_HAZARDS.get(arch, ()):
                    return
                assert status == OK, f"{text}: {step.status}: {step.message}"
    prop()


@pytest.mark.parametrize("arch", POLICIES)
def test_snapshot_restore_and_key(arch):
    @SETTINGS
    @given(data=st.data())
    def prop(data):
        ncpus, prefix = data.draw(scenarios(arch), label="prefix")
        r = new_runner(arch, ncpus)
        ledger = Ledger()
        for text in prefix:
            play(r, text, ledger)
        k = r.k
        snap, key = k.snapshot(), k.key()
        hash(key)
        # a copy of the state is as good as the state
        k.restore(snap)
        assert k.key() == key and k.snapshot() == snap
        suffix = []
        for i in range(data.draw(st.integers(1, 15), label="suffix length")):
            for text in draw_statement(data.draw, k, r.policy, ledger, f"S{i}", f"suffix {i + 1}").split("; "):
                play(r, text, ledger)
                suffix.append(text)
        after = k.key()
        # back to the snapshot: the same key; the suffix again: the same state again
        k.restore(snap)
        assert k.key() == key
        for text in suffix:
            r.step(statement(text), None)
        assert k.key() == after
        # the same statements from boot in a fresh kernel: equal keys at every step
        a, b = new_runner(arch, ncpus), new_runner(arch, ncpus)
        for text in prefix + suffix:
            a.step(statement(text), None)
            b.step(statement(text), None)
            assert a.k.key() == b.k.key(), text
        assert a.k.key() == after
    prop()


@pytest.mark.parametrize("arch", POLICIES)
def test_only_refusal_escapes_the_kernel(arch):
    """Kernel operations called directly on random arguments raise Refusal or nothing."""
    ops = ("copy_process", "copy_process_clone_vm", "kthread_create", "schedule", "do_exit", "exec_mmap",
           "kthread_use_mm", "kthread_unuse_mm", "unlazy", "cpu_down", "cpu_up", "ext_mmget_not_zero")

    @SETTINGS
    @given(data=st.data())
    def prop(data):
        r = new_runner(arch, data.draw(st.integers(1, 3)))
        k = r.k
        for i in range(data.draw(st.integers(1, 30))):
            op = data.draw(st.sampled_from(ops))
            task = data.draw(st.integers(0, len(k.t_name) - 1))
            cpu = data.draw(st.integers(0, k.ncpus - 1))
            mm = data.draw(st.integers(0, len(k.m_name) - 1))
            args = {"copy_process": (f"N{i}", f"@N{i}"), "copy_process_clone_vm": (f"N{i}", task),
                    "kthread_create": (f"N{i}",), "schedule": (cpu, task), "do_exit": (task,),
                    "exec_mmap": (task, f"@E{i}"), "kthread_use_mm": (task, mm), "kthread_unuse_mm": (task,),
                    "unlazy": (cpu,), "cpu_down": (cpu,), "cpu_up": (cpu,), "ext_mmget_not_zero": (mm,)}[op]
            before = k.snapshot()
            try:
                getattr(k, op)(*args)
            except Refusal as e:
                assert e.message and e.function
                assert k.snapshot() == before, (op, args)
            if k.check():
                break   # a broken rule; `mmscn run` stops there too
    prop()


def test_the_independent_check_sees_a_broken_state():
    """from_scratch is what the properties lean on: it must see each kind of damage."""
    r = new_runner("generic", 2)
    ledger = Ledger()
    for text in ("spawn A", "spawn kthread kw", "schedule cpu0 A", "schedule cpu0 kw", "mmgrab @A"):
        assert play(r, text, ledger) == OK, text
    k = r.k
    assert from_scratch(k, r.policy, ledger) == []
    A, kw, mA = k.task_ix["A"], k.task_ix["kw"], k.mm_ix["@A"]

    def count(k): k.m_count[mA] += 1
    def users(k): k.m_users[mA] -= 1
    def lazy(k): k.t_active[kw] = None                     # kw runs without its borrowed mm
    def mismatch(k): k.t_active[A] = 0
    def init_as_mm(k): k.t_mm[A] = 0
    def freed(k): k.m_freed[mA] = True
    def init_freed(k): k.m_freed[0] = True
    def negative(k): k.m_count[0] = -1
    def prev_mm(k): k.c_prev_mm[1] = mA                   # a pending mmdrop nobody paid for
    def two_cpus(k): k.c_curr[1] = kw
    snap = k.snapshot()
    for damage in (count, users, lazy, mismatch, init_as_mm, freed, init_freed, negative, prev_mm, two_cpus):
        damage(k)
        assert from_scratch(k, r.policy, ledger), damage.__name__
        k.restore(snap)
    ledger.count["@A"] = 0                                  # forget the scenario's mmgrab
    assert from_scratch(k, r.policy, ledger)


# ---- a random kernel per scenario (issue 14): the header words, through the front end ------

from mmscn import kernels as front  # noqa: E402
from mmscn.interpreter import version as V  # noqa: E402
from mmscn.interpreter.arches import known_arches  # noqa: E402

RELEASES = V.mainline()     # every mainline release the model covers, v2.3.13 to the newest
ARCHES_WITH_KERNELS = [a for a in POLICIES if not policies.get(a).kernel]   # linux-2.3 names its own


def kernel_runner(arch: str, ncpus: int, release: str, reverts=()) -> Runner:
    """A Runner on the kernel a file's header names, built as `mmscn run` builds it
    (mmscn/kernels.py from the resolved header)."""
    text = f"arch {arch}\ncpus {ncpus}\nkernel {release}\n" + "".join(f"revert {c}\n" for c in reverts)
    sc = load(text, "<property>", known_arches())
    [j] = front.judgements(sc)
    return Runner(sc, text.split("\n"), trace=False, version=j.version)


# A revert that makes a kernel that never existed and breaks the rules on purpose: under
# MMU_LAZY_TLB_SHOOTDOWN a lazy user holds no mm_count, so the kthread_use_mm of before
# 6cad87b0d216 (which turned the lazy reference into its own) counts one reference short; the
# series put 6cad87b0d216 first for that reason (tests/test_history_done.py shows the break).
BROKEN_WITHOUT = {V.KTHREAD_USE_MM_REFCOUNT}


@st.composite
def kernels_of(draw, arch: str):
    """A release of the range the arch's policy covers and some of the changes it has, reverted."""
    newest = policies.get(arch).newest_kernel or V.NEWEST
    release = draw(st.sampled_from(V.mainline(V.OLDEST, newest)), label="kernel")
    revertible = [c.key for c in V.CHANGES if c.commit and V.lands(c.key, release) and V.touches(c, arch)
                  and c.key != policies.get(arch).removed_by]
    reverts = draw(st.lists(st.sampled_from(revertible), unique=True, max_size=2), label="revert") \
        if revertible else []
    if not lazy_refcounted(policies.get(arch), V.KernelVersion(release, reverts=reverts)):
        reverts = [key for key in reverts if key not in BROKEN_WITHOUT]
    return release, reverts


@pytest.mark.parametrize("arch", ARCHES_WITH_KERNELS)
def test_rules_hold_under_a_random_kernel(arch):
    """The independent checks hold after every statement whatever release the header names
    and whatever it reverts: every kernel of the history is a kernel the rules describe."""
    @settings(SETTINGS, max_examples=40)
    @given(data=st.data())
    def prop(data):
        release, reverts = data.draw(kernels_of(arch))
        ncpus = data.draw(st.integers(1, 3), label="cpus")
        r = kernel_runner(arch, ncpus, release, reverts)
        k, policy, ledger = r.k, r.policy, Ledger()
        assert k.version.release == release and k.version.reverts == frozenset(reverts)
        for i in range(data.draw(st.integers(1, 40), label="length")):
            for text in draw_statement(data.draw, k, policy, ledger, f"T{i}", f"line {i + 1}").split("; "):
                before = k.snapshot()
                status = play(r, text, ledger)
                step = r.result.steps[-1]
                if status == REFUSED:
                    assert k.snapshot() == before, text
                    assert step.message and step.function, text
                    continue
                bad = from_scratch(k, policy, ledger)
                assert not bad, f"{release} without {reverts}, after `{text}`: {bad}"
                if status == VIOLATION and (text.split()[0], step.message.split(":")[0]) \
                        in MODELLED_HAZARDS.get(arch, ()):
                    return
                assert status == OK, f"{release} without {reverts}: {text}: {step.status}: {step.message}"
    prop()


@pytest.mark.parametrize("arch", ["generic", "x86"])
def test_a_release_runs_like_the_modelled_point_before_it(arch):
    """Oracle: a release between two modelled changes behaves like the newest release point
    at or before it (interpreter/version.py release_points), statement by statement."""
    points = V.release_points()

    @SETTINGS
    @given(data=st.data())
    def prop(data):
        release, reverts = data.draw(kernels_of(arch))
        point = [p for p in points if not V.is_before(release, p)][-1]
        ncpus, stmts = data.draw(scenarios(arch), label="scenario")
        a, b = kernel_runner(arch, ncpus, release, reverts), kernel_runner(arch, ncpus, point, reverts)
        for text in stmts:
            sa, sb = a.step(statement(text), None), b.step(statement(text), None)
            assert (sa, a.result.steps[-1].status) == (sb, b.result.steps[-1].status), (release, point, text)
            assert a.k.key() == b.k.key(), (release, point, text)
            if not sa:
                break
    prop()
