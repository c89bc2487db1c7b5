"""The TLB's truth (issue 14 items 4, 6, 7): flush generations, address-space id generations,
`rollover`, alpha's asn_lock, the arm and ia64 policies, and LT-12 / LT-14 both ways.

The golden steps are derived by hand from the kernel source each policy names (its docstring);
each rule has a scenario that breaks it under the kernel without its fix.
"""
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from mmscn.dsl.resolve import load
from mmscn.interpreter import policies
from mmscn.interpreter import version as V
from mmscn.interpreter.arches import known_arches
from mmscn.interpreter.kernel import Kernel
from mmscn.interpreter.runner import Runner

from test_arch_golden import run_steps
from test_zombie_golden import SRC as ZOMBIE

HISTORY = Path(__file__).resolve().parent.parent / "examples" / "history"
I, A = "@init_mm", "@A"
F, T = False, True


def run(src, arch=None, version=None, path="t.mmscn"):
    sc = load(src, path, known_arches())
    r = Runner(sc, src.split("\n"), arch, version=version)
    return r, r.run()


def rules(res):
    return [(d.line, d.message.split(":", 1)[0]) for d in res.diagnostics]


# ---------------------------------------------------------------- golden steps of the new arches
def _gens(k):
    return tuple(k.c_asid_gen), {k.m_name[m]: k.m_asid_gen[m] for m in range(len(k.m_name))}


def test_arm_zombie_step_by_step():
    # switch_mm: cpu_test_and_set(cpu, next->cpu_vm_mask) || prev != next -> check_context (A's
    # context.id is version 0 at fork: __new_context hands out version 1 and cpu_vm_mask = {cpu}),
    # cpu_switch_mm.  exit_mmap's flush_tlb_mm: on_each_cpu_mask over {cpu0, cpu1} from cpu1: one IPI.
    want = [
        ((I, I), (F, F), {I: set()}, (0, 0, 0, 0, 0, 0)),
        ((I, I), (F, F), {I: set(), A: set()}, (0, 0, 0, 0, 0, 0)),
        ((I, I), (F, F), {I: set(), A: set()}, (0, 0, 0, 0, 0, 0)),
        ((A, I), (F, F), {I: set(), A: {0}}, (1, 0, 1, 1, 0, 0)),        # __new_context: version 1
        ((A, I), (T, F), {I: set(), A: {0}}, (2, 0, 1, 1, 1, 0)),
        ((A, A), (T, F), {I: set(), A: {0, 1}}, (3, 0, 2, 2, 1, 0)),     # version 1 is current: no new id
        ((A, A), (T, T), {I: set(), A: {0, 1}}, (5, 1, 2, 2, 1, 1)),     # flush_tlb_mm IPIs cpu0
        ((A, A), (T, T), {I: set(), A: {0, 1}}, (5, 1, 2, 2, 2, 1)),
    ]
    assert [(l, z, m, cost) for _, l, z, m, cost in run_steps(ZOMBIE, "arm")] == want


def test_ia64_zombie_step_by_step():
    # switch_mm is activate_mm: activate_context on every switch (get_mmu_context gives A number 1
    # and an emptied cpu_vm_mask); exit_mmap's flush_tlb_mm finds mm_users 0: mm->context = 0, no IPI.
    want = [
        ((I, I), (F, F), {I: set()}, (0, 0, 0, 0, 0, 0)),
        ((I, I), (F, F), {I: set(), A: set()}, (0, 0, 0, 0, 0, 0)),
        ((I, I), (F, F), {I: set(), A: set()}, (0, 0, 0, 0, 0, 0)),
        ((A, I), (F, F), {I: set(), A: {0}}, (1, 0, 1, 1, 0, 0)),
        ((A, I), (T, F), {I: set(), A: {0}}, (2, 0, 1, 1, 1, 0)),
        ((A, A), (T, F), {I: set(), A: {0, 1}}, (3, 0, 2, 2, 1, 0)),
        ((A, A), (T, T), {I: set(), A: {0, 1}}, (5, 1, 2, 2, 1, 0)),
        ((A, A), (T, T), {I: set(), A: {0, 1}}, (5, 1, 2, 2, 2, 0)),
    ]
    assert [(l, z, m, cost) for _, l, z, m, cost in run_steps(ZOMBIE, "ia64")] == want


def test_the_counters_of_the_new_arches_are_generics():
    generic = [c for c, *_ in run_steps(ZOMBIE, "generic")]
    for arch in ("arm", "ia64"):
        assert [c for c, *_ in run_steps(ZOMBIE, arch)] == generic, arch


# ---------------------------------------------------------------- LT-12, LT-14 both ways
@pytest.mark.parametrize("name, key, line, rule", [
    ("LT-12-arm-asid-rollover.mmscn", V.ARM_ASID_SWITCH, "schedule cpu1 A              # idle1 -> A",
     "stale-asid"),
    ("LT-14-ia64-kswapd-stale-context.mmscn", V.IA64_SYSTEM_THREAD_FLUSH, "  flush @A                   # kswapd",
     "stale-tlb"),
])
def test_history_example_passes_with_the_fix_and_fails_without(name, key, line, rule):
    path = HISTORY / name
    src = path.read_text()
    sc = load(src, str(path), known_arches())
    assert [e.outcome for e in sc.expects] == ["pass", "fail"]
    pol = policies.get(sc.arch)
    _, fixed = run(src, version=V.for_policy(pol, sc.kernel), path=str(path))
    assert fixed.diagnostics == []
    _, buggy = run(src, version=V.for_policy(pol, sc.kernel, [key]), path=str(path))
    where = [n for n, text in enumerate(src.split("\n"), 1) if text.startswith(line)]
    assert rules(buggy) == [(where[0], rule)] and len(where) == 1      # where the bug bites


# ---------------------------------------------------------------- the rules, each broken once
X86_LAZY = ("arch x86\ncpus 2\nspawn A\nspawn thread A2 of A\nspawn kthread kw\nschedule cpu0 A\n"
            "schedule cpu0 kw\nschedule cpu1 A2\nflush @A\nschedule cpu0 A\n")


def test_x86_lazy_cpu_catches_up_when_it_returns():
    # should_flush_tlb skips lazy cpu0; switch_mm_irqs_off finds ctxs[].tlb_gen behind next's and flushes
    r = Runner(load(X86_LAZY, "x.mmscn", known_arches()), X86_LAZY.split("\n"))
    stmts = r.sc.stmts
    for st_ in stmts[:-1]:
        assert r.step(st_, None) is True
    k = r.k
    assert (k.c_tlb_gen[0], k.c_tlb_gen[1], k.m_tlb_gen[k.mm_ix[A]]) == (0, 1, 1)
    assert r.step(stmts[-1], None) is True and r.result.diagnostics == []
    assert k.c_tlb_gen[0] == 1


def test_stale_tlb_fires_when_a_lazy_cpu_skips_the_catch_up(monkeypatch):
    # the rule can fail: an x86 that forgot the tlb_gen comparison runs A on the stale TLB
    from mmscn.interpreter.hw import Hardware
    caught_up = Hardware.tlb_caught_up
    monkeypatch.setattr(Hardware, "flush_tlb", lambda self, cpu: caught_up(self, cpu))   # flush_tlb_func works
    monkeypatch.setattr(Hardware, "tlb_caught_up", lambda self, cpu: None)             # the catch-up does not
    _, res = run(X86_LAZY)
    assert rules(res) == [(10, "stale-tlb")]     # cpu0 leaves lazy mode on @A without flushing


def test_alpha_flush_inside_kthread_use_mm_leaves_the_tlb_stale():
    # kw borrows @A (swpctx loaded @A's ptbr), kthread_use_mm(@A): ev5_switch_mm sets asn_lock;
    # the flush IPI takes flush_tlb_other: kw runs user code of @A on a TLB the flush did not reach
    src = ("arch alpha\ncpus 2\nspawn A\nspawn thread A2 of A\nspawn kthread kw\nschedule cpu0 A\n"
           "schedule cpu0 kw\nschedule cpu1 A2\nmmget_not_zero @A\nuse_mm kw @A\nflush @A\n")
    _, res = run(src)
    assert rules(res) == [(11, "stale-tlb")]


def test_rollover_is_refused_where_ids_have_no_generations():
    _, res = run("arch generic\ncpus 1\nrollover cpu0\n")
    assert [(d.line, d.col, d.severity) for d in res.diagnostics] == [(3, 1, "error")]
    assert "no address-space ids with generations" in res.diagnostics[0].message


def test_ia64_refuses_a_kernel_without_ia64():
    assert Kernel(1, policies.get("ia64")).version.release == "v6.6"      # its last, when none is named
    with pytest.raises(ValueError, match="removed"):
        Kernel(1, policies.get("ia64"), version=V.KernelVersion("v6.7"))
    from mmscn.dsl.parser import ParseFailed
    with pytest.raises(ParseFailed) as e:
        load("arch ia64\nkernel v6.7\ncpus 1\n", "k.mmscn", known_arches())
    d = e.value.diagnostics[0]
    assert (d.line, d.col) == (2, 8) and "cf8e8658100d" in d.message and "v6.6" in d.message


# ---------------------------------------------------------------- property: fixed kernels keep the truth
STMTS = ["schedule cpu{c} {t}", "schedule cpu{c} idle", "flush @A", "flush @A tables", "flush @B"]


@settings(max_examples=60, deadline=None)
@given(arch=st.sampled_from(["arm", "ia64", "x86"]),
       steps=st.lists(st.tuples(st.sampled_from(STMTS), st.integers(0, 1), st.sampled_from("AB")),
                      max_size=14))
def test_fixed_kernels_never_break_the_tlb_rules(arch, steps):
    # user tasks moving between CPUs, flushes from outside: no use_mm (alpha's asn_lock window is a
    # real stale TLB) and no rollover (2007 ARM leaves a running thread on the old version: LT-12's
    # "related case ... not fixed by this commit")
    lines = [f"arch {arch}", "cpus 2", "spawn A", "spawn B"]
    for tmpl, c, t in steps:
        lines.append(tmpl.format(c=c, t=t))
    src = "\n".join(lines) + "\n"
    sc = load(src, "p.mmscn", known_arches())
    r = Runner(sc, src.split("\n"))
    for s in sc.stmts:
        if not r.step(s, None):
            break
    assert not [d for d in r.result.diagnostics if d.message.startswith(("stale-tlb", "stale-asid"))], src


def test_lt14_explored_fails_only_without_the_fix():
    # every order of the two blocks' flushes: the fixed kernel holds in all, the buggy one fails in
    # the order of the story, at kswapd's purge
    from mmscn.interpreter.explore.model import Model
    from mmscn.interpreter.explore.search import Explorer
    path = HISTORY / "LT-14-ia64-kswapd-stale-context.mmscn"
    src = path.read_text()
    sc = load(src, str(path), known_arches())
    pol = policies.get("ia64")
    fixed = Explorer(Model(sc, src.split("\n"), version=V.for_policy(pol))).run()
    buggy = Explorer(Model(sc, src.split("\n"), version=V.for_policy(pol, None, [V.IA64_SYSTEM_THREAD_FLUSH]))).run()
    assert fixed.failure is None
    assert (buggy.failure.rules, buggy.failure.line, buggy.failure.cpu) == (("stale-tlb",), 42, 1)
