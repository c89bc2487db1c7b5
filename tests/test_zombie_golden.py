"""The design's zombie-mm scenario, step by step, against counts derived by hand
from kernel/sched/core.c (context_switch, finish_task_switch) and kernel/exit.c
(exit_mm): see the comments for the derivation."""
from mmscn.dsl.resolve import load
from mmscn.interpreter.runner import Runner

SRC = """cpus 2
spawn A
spawn kthread kw
schedule cpu0 A
schedule cpu0 kw
schedule cpu1 A
exit A
schedule cpu1 idle
"""


def counters(k):
    m = k.mm_ix
    return {name: (k.m_users[i], k.m_count[i]) for name, i in m.items()}


def test_zombie_counts_step_by_step():
    sc = load(SRC, "z.mmscn")
    r = Runner(sc, SRC.split("\n"))
    k = r.k
    # boot: init_mm static users 2, count 1; +1 lazy ref per idle task (sched_init, bring-up)
    assert counters(k) == {"@init_mm": (2, 3)}
    expected = [
        # spawn A: mm_init users 1, count 1
        {"@init_mm": (2, 3), "@A": (1, 1)},
        # spawn kthread kw: nothing
        {"@init_mm": (2, 3), "@A": (1, 1)},
        # idle0 -> A (kernel -> user): rq->prev_mm = init_mm, mmdrop_lazy_tlb in finish_task_switch
        {"@init_mm": (2, 2), "@A": (1, 1)},
        # A -> kw (user -> kernel): mmgrab_lazy_tlb(@A)
        {"@init_mm": (2, 2), "@A": (1, 2)},
        # idle1 -> A on cpu1 (kernel -> user): init_mm drops idle1's lazy ref
        {"@init_mm": (2, 1), "@A": (1, 2)},
        # exit A: mmgrab_lazy_tlb +1, mmput users 1 -> 0, __mmput's mmdrop -1
        {"@init_mm": (2, 1), "@A": (0, 2)},
        # dead A -> idle1 (kernel -> kernel): the lazy reference is transferred, no counter moves
        {"@init_mm": (2, 1), "@A": (0, 2)},
    ]
    for st, want in zip(sc.stmts, expected):
        assert r.step(st, None) is True, r.result.diagnostics
        assert counters(k) == want, st
    assert k.mm_state(k.mm_ix["@A"]) == "zombie"
