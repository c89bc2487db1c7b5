"""The one declaration of the kernel's state (interpreter/state.py) and what is derived from it.

For random reachable states (random valid statements under every policy, as
test_properties.py drives them): explore's captured state restores every
declared field exactly, types included (a counter must not come back as a
flag), whether captured after one statement or many; the kernel's snapshot
does the same; the bookkeeping fields are what they are derived from; and a
state that differs in any one declared field has another key (names and
bookkeeping aside), another snapshot and another captured state.
"""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mmscn.interpreter import state as S
from mmscn.interpreter.explore import Store
from mmscn.interpreter.kernel import Kernel

from test_properties import POLICIES, SETTINGS, Ledger, draw_statement, new_runner, play

STATE = settings(SETTINGS, max_examples=30)


def truth(k) -> str:
    """Every declared field of every task, mm and CPU, with the types of the values."""
    return repr([(f.attr, [(type(v).__name__, v) for v in getattr(k, f.attr)]) for f in S.STORED]
                + [("task_ix", sorted(k.task_ix.items())), ("mm_ix", sorted(k.mm_ix.items()))])


def rows_of(store, s) -> str:
    """What a captured state says of each owner, with types."""
    n = (s[0], s[1], len(store.k.c_curr))
    return repr([[(type(v).__name__, v) for i in range(n[o]) for v in store.row(s, o, i)] for o in range(3)])


def kernel_rows(store) -> str:
    k = store.k
    return repr([[(type(v).__name__, v) for i in range(len(getattr(k, fs[0].attr)))
                  for v in (getattr(k, f.attr)[i] for f in fs)] for fs in store.layout])


def walk(data, arch, label, steps=30):
    """A runner driven by random valid statements: after each, (kernel, statement text)."""
    ncpus = data.draw(st.integers(1, 3), label=f"{label} cpus")
    r = new_runner(arch, ncpus)
    ledger = Ledger()
    yield r, None
    for i in range(data.draw(st.integers(1, steps), label=f"{label} length")):
        for text in draw_statement(data.draw, r.k, r.policy, ledger, f"T{i}", f"{label} {i + 1}").split("; "):
            play(r, text, ledger)
            yield r, text


# ---------------------------------------------------------------- the declaration
def test_every_kernel_list_is_declared():
    """A state list the Kernel keeps outside state.py would escape snapshot, key and capture."""
    # what the Kernel keeps besides: its configuration, the costs (a run's, not a state's), the
    # trace, the statement's violations and touched sets, the CPU it runs on
    assert set(Kernel.__slots__) - set(S.SLOTS) == {"arch", "version", "hw", "ncpus", "refcount_lazy", "cost", "ev",
                                                   "violations", "d_tasks", "d_mms", "d_cpus", "changed", "this_cpu",
                                                       "stepping", "step_args", "rcu_deferred"}
    assert len(S.SLOTS) == len(set(S.SLOTS))
    for f in S.STORED:
        assert f.owner in S.OWNERS and f.kernel and f.kind
        assert (f.role == S.BOOKKEEPING) == bool(f.derived), f.attr
        assert all(d in S.BY_ATTR for d in f.derived.split(", ") if d), f.attr


@pytest.mark.parametrize("arch", POLICIES)
def test_every_entity_has_every_field(arch):
    k = new_runner(arch, 3).k
    k.copy_process("A", "@A")
    k.kthread_create("K")
    for f in S.STORED:
        n = {S.TASK: len(k.t_name), S.MM: len(k.m_name), S.CPU: k.ncpus}[f.owner]
        assert len(getattr(k, f.attr)) == n, f.attr


# ---------------------------------------------------------------- capture and restore
@pytest.mark.parametrize("arch", POLICIES)
def test_a_captured_state_restores_every_field(arch):
    @STATE
    @given(data=st.data())
    def prop(data):
        seen = []
        store = None
        for r, text in walk(data, arch, "run"):
            if store is None:
                store = Store(r.k, names=True, cost=True)
            s = store.capture()
            # only the rows touched since the last capture are built: they must be all that changed
            assert rows_of(store, s) == kernel_rows(store), text
            seen.append((s, truth(r.k)))
        k = r.k
        order = data.draw(st.permutations(range(len(seen))), label="restore order")
        for j in order:
            s, want = seen[j]
            store.restore(s)
            assert truth(k) == want
        # a kernel changed behind the store's back (the REPL's undo replaces the lists) is read afresh
        s, want = seen[-1]
        k.restore(k.snapshot())
        store.restore(s)
        assert truth(k) == want
    prop()


@pytest.mark.parametrize("arch", POLICIES)
def test_a_snapshot_restores_every_field(arch):
    @STATE
    @given(data=st.data())
    def prop(data):
        seen = []
        for r, _ in walk(data, arch, "run"):
            seen.append((r.k.snapshot(), truth(r.k)))
        k = r.k
        for j in data.draw(st.permutations(range(len(seen))), label="restore order"):
            snap, want = seen[j]
            k.restore(snap)
            assert truth(k) == want
            assert k.snapshot() == snap
    prop()


@pytest.mark.parametrize("arch", POLICIES)
def test_bookkeeping_is_what_it_is_derived_from(arch):
    @STATE
    @given(data=st.data())
    def prop(data):
        for r, text in walk(data, arch, "run"):
            for attr, want in S.recount(r.k).items():
                assert getattr(r.k, attr) == want, (attr, text)
    prop()


# ---------------------------------------------------------------- one field apart
def other(k, f, v):
    """A value of f's kind other than v."""
    n = {S.MM_REF: len(k.m_name), S.TASK_REF: len(k.t_name), S.CPU_REF: k.ncpus}.get(f.kind)
    if n is not None:
        return 0 if v is None else (v + 1) % n if n > 1 else None
    if f.kind == S.CPUMASK:
        return v ^ 1
    if f.kind == S.COUNT:
        return v + 1
    if f.kind == S.FLAG:
        return not v
    if f.kind == S.WORD and f.attr not in ("t_state", "t_kind"):
        return "other" if v is None else None     # the words of an operation in flight (steps.py)
    if f.kind == S.WORD:
        words = {"t_state": (S.RUNNABLE, S.RUNNING, S.DEAD), "t_kind": (S.USER, S.KTHREAD, S.IDLE)}[f.attr]
        return words[(words.index(v) + 1) % len(words)]
    assert f.kind == S.NAME, f.kind
    return v + "'"


@pytest.mark.parametrize("arch", POLICIES)
def test_states_one_field_apart_are_told_apart(arch):
    @STATE
    @given(data=st.data())
    def prop(data):
        for r, _ in walk(data, arch, "run", steps=12):
            pass
        k = r.k
        store = Store(k, names=True, cost=False)
        s, key, snap, want = store.capture(), k.key(), k.snapshot(), truth(k)
        f = data.draw(st.sampled_from(S.STORED), label="field")
        col = getattr(k, f.attr)
        i = data.draw(st.integers(0, len(col) - 1), label="entity")
        col[i] = other(k, f, col[i])
        # the kernel operations mark what they touch; so does this one
        {S.TASK: k.d_tasks, S.MM: k.d_mms, S.CPU: k.d_cpus}[f.owner].add(i)
        assert k.snapshot() != snap
        assert (k.key() != key) == (f.role in (S.KERNEL, S.HARDWARE)), f.attr   # names, bookkeeping aside
        assert store.capture() != s
        store.restore(s)
        assert truth(k) == want
    prop()


def test_without_names_a_capture_leaves_them_out():
    k = new_runner("generic", 2).k
    store = Store(k, names=False, cost=False)
    assert all(f.role != S.IDENTITY for fs in store.layout for f in fs)
    assert {f.attr for fs in store.layout for f in fs} == {f.attr for f in S.STORED if f.role != S.IDENTITY}
