"""Counters that commute (docs/explore.md): partial-order reduction that lets two CPUs' reference
count increments and decrements of one mm pass each other must give the verdict and the final
states of the search without it, on thousands of random programs dense on one shared mm."""
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mmscn.dsl.resolve import load
from mmscn.interpreter import explore as X
from mmscn.interpreter import policies

from test_explore import grid

USERS = ["A", "A1", "A2", "B"]          # A1, A2: threads of A
KTHREADS = ["K", "L"]
MMS = ["@A", "@B"]


def statement(draw) -> list:
    kind = draw(st.sampled_from(["schedule", "schedule", "exit", "use", "use", "ref", "ref", "not_zero", "unlazy",
                                 "assert", "idle"]))
    task = draw(st.sampled_from(USERS + KTHREADS))
    mm = draw(st.sampled_from(MMS))
    if kind == "schedule":
        return [f"schedule {task}"]
    if kind == "exit":
        return [f"schedule {task}", f"exit {task}"] if draw(st.booleans()) else [f"exit {task}"]
    if kind == "use":
        k = draw(st.sampled_from(KTHREADS))
        body = [f"schedule {k}", f"use_mm {k} {mm}", f"unuse_mm {k}"]
        return body + ([f"mmput {mm}"] if draw(st.booleans()) else [])
    if kind == "ref":
        return [f"{draw(st.sampled_from(['mmget', 'mmput', 'mmgrab', 'mmdrop']))} {mm}"]
    if kind == "not_zero":
        return [f"mmget_not_zero {mm}"]
    if kind == "assert":
        return [draw(st.sampled_from([f"assert {mm} is not freed", f"assert {mm}.users >= 1",
                                      f"assert {mm}.count >= 2"]))]
    return ["unlazy"] if kind == "unlazy" else ["schedule idle"]


@st.composite
def programs(draw) -> str:
    ncpu = draw(st.integers(2, 3))
    lines = [f"arch {draw(st.sampled_from(['generic', 'generic', 'generic', 'arm64', 'x86', 'linux-2.3']))}",
             f"cpus {ncpu}", "spawn A", "spawn thread A1 of A", "spawn thread A2 of A", "spawn B",
             "spawn kthread K", "spawn kthread L"]
    lines += [f"{op} {draw(st.sampled_from(MMS))}" for op in draw(st.lists(st.sampled_from(["mmget", "mmgrab"]),
                                                                          max_size=3))]
    for c, t in enumerate(draw(st.lists(st.sampled_from(USERS + KTHREADS), max_size=ncpu, unique=True))):
        lines.append(f"schedule cpu{c} {t}")
    for c in range(ncpu):
        lines.append(f"cpu{c} {{")
        for _ in range(draw(st.integers(1, 3))):
            lines += ["  " + s for s in statement(draw)]
        lines.append("}")
    if draw(st.booleans()):
        lines.append(f"final {draw(st.sampled_from(['forall', 'exists']))} "
                     f"{draw(st.sampled_from(MMS))} is {draw(st.sampled_from(['freed', 'zombie', 'live']))}")
    return "\n".join(lines) + "\n"


def searched(text: str, por: bool):
    sc = load(text, "t.mmscn", policies.KnownArches())
    m = X.Model(sc, text.split("\n"))
    if m.prologue_failure is not None:
        return None
    r = X.Explorer(m, por=por, symmetry=False, all_finals=True).run()
    assert r.complete
    return r.holds, sorted(tuple(sorted(X.final_fields(m, s).items())) for s in r.finals), r


@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)
@given(programs())
def test_counter_commutativity_keeps_verdicts_and_final_states(text):
    full = searched(text, por=False)
    if full is None:
        return
    reduced = searched(text, por=True)
    assert reduced[:2] == full[:2], text
    assert reduced[2].stats.distinct <= full[2].stats.distinct


def test_the_grid_is_one_interleaving_and_the_count_says_so():
    # every cross-CPU pair of the churn grid commutes: 8 CPUs x 8 statements, one path of 65 states
    sc = load(grid(8, 16), "g.mmscn", policies.KnownArches())
    r = X.Explorer(X.Model(sc, grid(8, 16).split("\n")), symmetry=False).run()
    assert r.holds is True and r.stats.distinct == 65 and r.stats.interleavings == 1


def test_a_reader_that_may_see_zero_keeps_the_cpus_ordered():
    # cpu1's kthread borrows @A without a reference of its own: whether A's exit came first decides
    # whether use_mm finds mm_users 0, so the two must not be taken to commute
    text = ("cpus 2\nspawn A\nspawn kthread K\nschedule cpu0 A\nschedule cpu1 K\n"
            "cpu0 {\n  exit A\n}\ncpu1 {\n  use_mm K @A\n  unuse_mm K\n}\n")
    for por in (True, False):
        holds, _, r = searched(text, por)
        assert holds is False and "use-after-teardown" in r.failure.message, por
