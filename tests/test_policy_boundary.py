"""The boundary between the kernel and the policies, and the kernel version beside the arch.

A policy reads the kernel's lists and changes them only through the handle
``k.hw`` (interpreter/hw.py) or a named kernel operation; what changed between
kernel releases is asked of the KernelVersion (interpreter/version.py), whose
oldest point is the 1999 kernel that `arch linux-2.3` runs on the generic
architecture.
"""
import re
from pathlib import Path

import pytest

from mmscn.interpreter import policies
from mmscn.interpreter import version as V
from mmscn.interpreter.kernel import C_COUNT, INIT_MM, Kernel
from mmscn.interpreter.policies.generic import Generic

POLICY_FILES = sorted((Path(__file__).parent.parent / "interpreter" / "policies").glob("*.py"))

# what a policy must not touch: the kernel's private members (the trace, the pointer setters),
# its bookkeeping (the touched sets, the cost list, the violations), or any of its lists by
# assignment -- those changes belong to the handle and the kernel's named operations
FORBIDDEN = [
    (re.compile(r"\bk\._\w+"), "a private member of the kernel"),
    (re.compile(r"\b(d_cpus|d_mms|d_tasks)\b"), "the kernel's touched sets (k.hw marks what it changes)"),
    (re.compile(r"\bk\.(cost|violations)\b"), "the kernel's bookkeeping (k.hw counts; check() appends to out)"),
    (re.compile(r"\bk\.\w+(\[[^\]]*\])*\s*([-+|&^]|<<|>>)?=(?!=)"), "an assignment into the kernel's state"),
]


def test_the_boundary_check_catches_what_it_forbids():
    caught = ["k._op('cpu0', 'x')", "k.d_cpus.add(cpu)", "k.cost[C_IPI] += 1", "k.violations.append(v)",
              "k.c_loaded[cpu] = mm", "k.m_cpumask[mm] |= 1 << cpu", "k.t_ptbr[t] = mm", "k._set_active_mm(t, 0)"]
    allowed = ["k.hw.load(cpu, mm)", "if k.c_loaded[cpu] == mm:", "k.mmgrab_lazy_tlb(INIT_MM)",
               "x = k.m_cpumask[mm]", "k.hw.event(f'cpu{cpu}', 'f')"]
    assert all(any(rx.search(line) for rx, _ in FORBIDDEN) for line in caught)
    assert not any(rx.search(line) for rx, _ in FORBIDDEN for line in allowed)


@pytest.mark.parametrize("path", POLICY_FILES, ids=[p.stem for p in POLICY_FILES])
def test_a_policy_changes_the_kernel_only_through_the_handle(path):
    bad = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        code = line.split("#", 1)[0]
        for rx, what in FORBIDDEN:
            if rx.search(code):
                bad.append(f"{path.name}:{n}: {what}: {line.strip()}")
    assert not bad, "\n".join(bad)


def test_linux_2_3_is_generic_at_the_oldest_kernel():
    pol = policies.get("linux-2.3")
    assert isinstance(pol, Generic)
    # the class states only what it is called and which kernel it runs: no behaviour of its own
    own = {k for k in vars(type(pol)) if not k.startswith("__")}
    assert own == {"name", "summary", "kernel"}
    k = Kernel(2, pol)
    assert (k.version.release, k.version.name) == (V.OLDEST, "linux-2.3")
    assert not any(k.version.has(c.key) for c in V.CHANGES)
    new = Kernel(2, policies.get("generic")).version
    assert new.release == V.NEWEST and all(new.has(c.key) for c in V.CHANGES)


def test_the_history_table():
    keys = [c.key for c in V.CHANGES]
    assert len(keys) == len(set(keys))
    for c in V.CHANGES:
        assert c.title and c.source
        if c.commit:        # a commit: keyed by its first 12 hex digits
            assert re.fullmatch(r"[0-9a-f]{40}", c.commit) and c.key == c.commit[:12], c
        else:               # older than git: a descriptive key, and the source says how sure it is
            assert not re.fullmatch(r"[0-9a-f]+", c.key) and "UNVERIFIED" in c.source, c
        V.KernelVersion(c.release)      # within the modelled range
    assert V.KernelVersion("v5.3").has(V.CONTEXT_SWITCH) and not V.KernelVersion("v5.3").has(V.ACTIVE_MM_TRANSFER)
    assert V.KernelVersion("v5.4").has(V.ACTIVE_MM_TRANSFER)
    assert not V.KernelVersion("v6.13").has(V.SCHED_FORCE_INIT_MM) and V.KernelVersion("v6.14.2").has(
        V.SCHED_FORCE_INIT_MM)
    with pytest.raises(KeyError):
        V.KernelVersion().has("0123456789ab")
    for bad in ("v2.2", "v9.0", "6.1", "v6", "linux-2.3"):
        with pytest.raises(ValueError):
            V.KernelVersion(bad)


def kernel_to_kernel(release):
    """user A -> kthread kw1 -> kthread kw2 on one CPU; what the second switch does."""
    k = Kernel(1, policies.get("generic"), version=V.KernelVersion(release))
    a = k.copy_process("A", "@A")
    kw1, kw2 = k.kthread_create("kw1"), k.kthread_create("kw2")
    for t in (a, kw1):
        k.schedule(0, t)
        assert k.check() == []
    atomics, events = k.cost[C_COUNT], len(k.ev)
    k.schedule(0, kw2)
    assert k.check() == []
    m = k.mm_ix["@A"]
    assert (k.m_users[m], k.m_count[m], k.t_active[kw1], k.t_active[kw2]) == (1, 2, None, m)
    assert k.c_prev_mm[0] is None and k.m_count[INIT_MM] == 1
    return k.cost[C_COUNT] - atomics, k.ev[events:]


def test_context_switch_follows_the_kernel_release():
    # today: the borrowed mm is handed over from kw1 to kw2 (139d025cda1d), no atomics
    n, ev = kernel_to_kernel(V.NEWEST)
    assert n == 0 and [e[2] for e in ev] == ["context_switch"]
    # v2.6 to v5.3: kw2 grabs, and finish_task_switch drops kw1's through rq->prev_mm (plain
    # mmgrab and mmdrop: the _lazy_tlb helpers are aa464ba9a1e4, v6.4)
    n, ev = kernel_to_kernel("v5.3")
    assert n == 2 and [e[2] for e in ev] == ["context_switch", "mmgrab", "mmdrop"]
    # 2.4: schedule() grabs with atomic_inc and drops at once, before switch_to
    n, ev = kernel_to_kernel(V.OLDEST)
    assert n == 2 and [e[2] for e in ev] == ["schedule", "atomic_inc", "mmdrop"]


def test_a_kernel_without_a_change_refuses_what_it_lacks_in_its_own_name():
    from mmscn.interpreter.kernel import Refusal
    k = Kernel(2, policies.get("x86"), version=V.KernelVersion("v2.4.0"))
    with pytest.raises(Refusal, match="^Linux v2.4.0 has no CPU hotplug"):
        k.cpu_down(1)
    kw = k.kthread_create("kw")
    k.schedule(0, kw)
    with pytest.raises(Refusal, match="^kthread_use_mm does not exist in Linux v2.4.0"):
        k.kthread_use_mm(kw, INIT_MM)
    assert Kernel(2, policies.get("alpha")).version.has(V.CPU_HOTPLUG)   # alpha lacks it as an arch
    with pytest.raises(Refusal, match="^alpha has no CPU hotplug"):
        Kernel(2, policies.get("alpha")).cpu_down(1)


def test_the_docs_list_every_modelled_change():
    page = (Path(__file__).parent.parent / "docs" / "kernel-model.md").read_text()
    section = page.split("## Kernel versions", 1)[1].split("\n## ", 1)[0]
    listed = re.findall(r"^\| `([^`]+)` \|", section, re.M)
    assert listed == [c.key for c in V.CHANGES]
