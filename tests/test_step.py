"""One step (interpreter/step.py): the decision table every scheduler shares.

execute() says what became of a statement; the Runner makes located
diagnostics of its Problems and decides nothing of its own; search_move() is
what `mmscn explore` makes of the same Outcome.
"""
from __future__ import annotations

import pytest

from mmscn.dsl import ast as A
from mmscn.dsl.parser import ParseFailed, parse_items
from mmscn.dsl.resolve import load
from mmscn.interpreter.runner import Runner
from mmscn.interpreter.step import (ASSERTION_FAILED, ENDED, EXPECTED, FAILED, MOVED, OK, REFUSED, SAME, VIOLATION,
                                    deadlock_message, execute, final_verdict, search_move)

PROLOGUE = "cpus 2\nspawn A\nspawn kthread kw\nschedule cpu0 A\n"


def last(text: str):
    """The Runner of PROLOGUE + text, run up to the last statement, which execute() runs
    (with the `expect` before it): (outcome, runner)."""
    src = PROLOGUE + text
    sc = load(src, "t.mmscn")
    r = Runner(sc, src.split("\n"))
    *before, st = sc.stmts
    for s in before:
        assert r.step(s, None) is True, r.result.diagnostics
    expect, r.pending_expect = r.pending_expect, None
    return execute(r.k, r.policy, st, None, expect), r


# text after PROLOGUE -> status, the kinds of the problems, whether a run stops, the first problem's words
TABLE = [
    ("spawn B", OK, [], False, ""),
    ("use_mm A @A", REFUSED, ["refusal"], True, "A is not a kernel thread"),
    ("expect error\nuse_mm A @A", EXPECTED, [], False, ""),
    ('expect error "kernel thread"\nuse_mm A @A', EXPECTED, [], False, ""),
    ('expect error "nope"\nuse_mm A @A', REFUSED, ["expectation"], False,
     'the statement was refused, but not with "nope": A is not a kernel thread'),
    ("expect violation\nuse_mm A @A", REFUSED, ["expectation", "refusal"], True,
     "expected a violation, but the statement was refused: A is not a kernel thread"),
    ("mmput @A", VIOLATION, ["violation"] * 3, True, "unbalanced-mmput: mmput(@A)"),
    ("expect violation\nmmput @A", EXPECTED, [], False, ""),
    ('expect violation "unbalanced-mmput"\nmmput @A', EXPECTED, [], False, ""),
    ('expect violation "nope"\nmmput @A', VIOLATION, ["expectation"], False, 'expected violation "nope", got '
                                                                              "unbalanced-mmput"),
    ("expect error\nmmput @A", VIOLATION, ["expectation"] + ["violation"] * 3, True,
     "expected an error, but the statement ran and broke an invariant: unbalanced-mmput"),
    ("expect error\nspawn B", OK, ["expectation"], False,
     "`expect error`: the next statement (line 6) was expected to be refused, but it ran cleanly"),
    ("expect violation\nspawn B", OK, ["expectation"], False, "was expected to break an invariant, but it ran"),
    ("assert @A.users == 1, A.state == running, cpu1 is idle", OK, [], False, ""),
    ("assert @A.users == 2, A.state == dead, cpu1 is idle", ASSERTION_FAILED, ["assertion", "assertion"], False,
     "assertion failed: @A.users == 2: actual 1"),
]


@pytest.mark.parametrize("text, status, kinds, stops, words", TABLE)
def test_the_decision_table(text, status, kinds, stops, words):
    o, _ = last(text)
    assert (o.status, [p.kind for p in o.problems], o.stops) == (status, kinds, stops)
    assert words in (o.problems[0].message if o.problems else "")


def test_a_problem_sits_at_its_node():
    o, _ = last('expect violation "nope"\nmmput @A')
    assert isinstance(o.problems[0].node, A.Expect) and o.problems[0].node.line == 5
    o, _ = last("expect error\nmmput @A")
    # the expectation first, then each violation at the statement; the others follow from the first
    assert [p.node.line for p in o.problems] == [5, 6, 6, 6] and [p.cause for p in o.problems] == [None, None, 1, 1]
    o, _ = last("assert @A.users == 2, cpu1 is idle, A.state == dead")
    assert [(p.node.line, p.node.col) for p in o.problems] == [(5, 8), (5, 37)]
    assert o.message == "; ".join(p.message for p in o.problems)


def test_a_refused_statement_changes_nothing():
    o, r = last("use_mm A @A")
    before = r.k.snapshot()
    assert o.refused and r.k.violations == [] and not (r.k.d_tasks or r.k.d_mms or r.k.d_cpus)
    assert execute(r.k, r.policy, o.stmt, None).refused and r.k.snapshot() == before


def test_events_belong_to_the_statement_that_made_them():
    o, r = last("spawn B")
    assert [e[2] for e in o.events] == ["copy_process", "mm_init", "mm_init"] and r.k.ev == []
    o, r = last("assert @A.users == 1")
    assert list(o.events) == []


def test_a_failing_mmget_not_zero_ends_its_block_and_the_runner_ends_it():
    text = "cpus 2\nspawn A\nschedule cpu0 A\nexit A\ncpu1 {\n  mmget_not_zero @A\n  spawn B\n}\n"
    sc = load(text, "t.mmscn")
    r = Runner(sc, text.split("\n"))
    for st in sc.stmts:
        r.step(st, None)
    o = execute(r.k, r.policy, sc.blocks[0].stmts[0], 1)
    assert o.ends_block and not o.problems and search_move(o) == (ENDED, None)
    res = Runner(sc, text.split("\n")).run()
    assert [s.stmt.line for s in res.steps] == [2, 3, 4, 6] and not res.failed     # spawn B never runs


def test_on_a_cpu_whose_task_exited_nothing_else_runs():
    text = "cpus 2\nspawn A\nschedule cpu0 A\ncpu0 {\n  exit A\n  spawn B\n}\n"
    sc = load(text, "t.mmscn")
    r = Runner(sc, text.split("\n"))
    r.run()
    o = r.result.steps[-1]
    assert o.status == REFUSED and o.function == "do_task_dead (kernel/exit.c)"
    assert o.message == "cpu0's current task A has exited; nothing else runs on cpu0 until it schedules away"


# ---------------------------------------------------------------- what explore makes of it
@pytest.mark.parametrize("text, move, kind", [
    ("spawn B", MOVED, None),
    ("expect error\nuse_mm A @A", SAME, None),
    ("assert @A.users == 1", SAME, None),
    ("use_mm A @A", FAILED, "refusal"),
    ('expect error "nope"\nuse_mm A @A', FAILED, "expectation"),
    ("expect violation\nmmput @A", MOVED, None),
    ("expect error\nmmput @A", FAILED, "expectation"),
    ("mmput @A", FAILED, "violation"),
    ("assert @A.users == 2", FAILED, "assertion"),
    ("expect error\nspawn B", FAILED, "expectation"),
])
def test_search_move(text, move, kind):
    o, _ = last(text)
    got, failure = search_move(o)
    assert got == move and (failure is None) == (kind is None)
    if failure is not None:
        p = o.problems[0]
        assert (failure.kind, failure.line, failure.col) == (kind, p.node.line, p.node.col)


def test_a_violation_fails_a_search_with_every_rule_and_what_follows_from_what():
    o, _ = last("mmput @A")
    _, f = search_move(o)
    assert f.message == o.message and f.function == "mmput (kernel/fork.c)"
    assert f.rules == ("unbalanced-mmput", "use-after-free", "use-after-free") and f.causes == (None, 0, 0)
    assert f.to_json()["consequence_of"] == [None, 0, 0]


# ---------------------------------------------------------------- the Runner over it
def test_the_runner_reports_callbacks_instead_of_being_subclassed():
    text = "cpus 2\nspawn A\nexpect error\nuse_mm A @A\nassert @A.users == 5\nmmput @A\nspawn B\n"
    sc = load(text, "t.mmscn")
    steps, diags = [], []
    r = Runner(sc, text.split("\n"), on_step=lambda st, cpu, o, go: steps.append((st.line, o and o.status, go)),
               on_diagnostic=lambda d: diags.append((d.line, d.severity, len(r.result.steps))))
    res = r.run()
    # the `expect` is stepped with no outcome of its own; the run stops at the violation
    assert steps == [(2, OK, True), (3, None, True), (4, EXPECTED, True), (5, ASSERTION_FAILED, True),
                     (6, VIOLATION, False)]
    assert diags == [(5, "failure", 3), (6, "violation", 4), (6, "violation", 4)]
    assert res.stopped and res.assertions == 1 and [d.consequence_of for d in res.diagnostics] == [None, None, 1]
    assert [d.notes for d in res.diagnostics][1:] == [("checked by mmput (kernel/fork.c)",),
                                                       ("checked by __mmdrop (kernel/fork.c): WARN_ON_ONCE"
                                                        "(mm == current->active_mm)",)]


def test_hardware_is_kept_only_when_asked():
    text = "arch x86\ncpus 2\nspawn A\nschedule cpu0 A\n"
    sc = load(text, "t.mmscn")
    assert Runner(sc, text.split("\n")).run().steps[-1].hw["cpus"]["cpu0"]["loaded_mm"] == "@A"
    assert Runner(sc, text.split("\n"), hardware=False).run().steps[-1].hw is None


def test_final_and_deadlock_are_said_once():
    text = "cpus 2\nspawn A\nspawn B\nschedule cpu0 A\ncpu1 {\n  schedule A\n}\nfinal forall A.state == dead\n"
    sc = load(text, "t.mmscn")
    r = Runner(sc, text.split("\n"))
    res = r.run()
    block = sc.blocks[0].stmts[0]
    assert res.diagnostics[0].message == deadlock_message([(1, block)]) == (
        "deadlock: every remaining block waits for a task running elsewhere (cpu1 at line 6)")
    assert deadlock_message([(1, block)], quote=True).endswith("(cpu1 at line 6 (`schedule A`))")
    assert final_verdict(r.k, r.policy, sc.final) == (False, "assertion failed: A.state == dead: actual running")


# ---------------------------------------------------------------- the resolved program
def test_header_lines_are_nodes_at_their_words():
    items = parse_items('scenario "t"\narch x86\ncpus 2\nexpect fail\nspawn A\n', "t.mmscn", ["x86"])
    assert [(h.kind, h.value, h.line, h.col) for h in items if isinstance(h, A.Header)] == [
        ("title", "t", 1, 1), ("arch", "x86", 2, 6), ("cpus", "2", 3, 6), ("outcome", "fail", 4, 1)]


def test_a_cpu_is_a_number_once_resolved():
    sc = load("cpus 3\nspawn A\nschedule cpu2 A\ncpu1 {\n  unlazy\n}\n", "t.mmscn")
    assert sc.stmts[1].cpu.number == 2 and sc.blocks[0].cpu.number == 1


def test_the_one_spelling_of_a_cpu_with_only_zeros():
    with pytest.raises(ParseFailed) as e:
        load("cpus 2\nspawn A\nschedule cpu00 A\n", "t.mmscn")
    assert e.value.diagnostics[0].message.endswith("so write `cpu0`")


def test_the_architectures_come_from_the_caller():
    from mmscn.dsl.resolve import Arches
    text = "arch generic\nspawn A\nassert @A.cpumask == {cpu0}\n"
    load(text, "t.mmscn", Arches(["x86", "generic"]))     # no hardware fields given: unchecked
    hardware = {"x86": ("cpumask",)}.get
    load(text, "t.mmscn", Arches(["x86", "generic"], lambda a: hardware(a, ())), "x86")
    with pytest.raises(ParseFailed) as e:
        load(text, "t.mmscn", Arches(["x86", "generic"], lambda a: hardware(a, ())))
    assert e.value.diagnostics[0].message == ("arch generic does not track mm_cpumask, so @A.cpumask cannot be "
                                              "read; the architectures that do: x86")
    load("arch sparc\n", "t.mmscn", Arches(["x86"], check=False))
    with pytest.raises(ParseFailed) as e:
        load("arch\n", "t.mmscn", Arches(["generic", "x86"]))
    assert e.value.diagnostics[0].message == "expected an architecture (generic, x86) after `arch`, found the end " \
                                            "of the line"
