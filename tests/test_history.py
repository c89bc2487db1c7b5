"""The kernel history (issue 14): the header words `kernel`, `revert`, `config` and
`expect pass|fail [without COMMIT ...]`, resolved against the table the caller hands
in (interpreter/version.py through interpreter/arches.py).  The located messages of
the CLI are in tests/bad_inputs/history_*; here is what needs a table of its own."""
from collections import namedtuple

import pytest

from mmscn.dsl import ast as A
from mmscn.dsl.parser import ParseFailed
from mmscn.dsl.resolve import Arches, Kernels, load
from mmscn.interpreter import version as V
from mmscn.interpreter.arches import known_arches

Row = namedtuple("Row", "key commit title release arches")
FAKE = (Row("aaaaaaaaaaaa", "aaaaaaaaaaaa1111", "one fix", "v5.0", ()),
        Row("aaaaaaaaaaaa", "aaaaaaaaaaaa2222", "another fix", "v5.1", ()),
        Row("bbbbbbbbbbbb", "bbbbbbbbbbbb3333", "powerpc/64s: a fix of its own", "v5.2", ("powerpc",)))


def fake_arches():
    ks = Kernels(FAKE, ("PREEMPT_RT",), lambda text: None, lambda key, release: True)
    return Arches(("generic", "powerpc"), kernels=ks)


def errors(text, arches=None):
    with pytest.raises(ParseFailed) as e:
        load(text, "f.mmscn", arches or known_arches())
    return [f"{d.line}:{d.col}: {d.message}" for d in e.value.diagnostics]


def test_the_header_words_resolve_to_keys_of_the_table():
    sc = load("kernel v6.14\nrevert 139d025cda1da5484e\nconfig PREEMPT_RT\nexpect pass\n"
              "expect fail without 21641BD9A7A7\n", "f.mmscn", known_arches())
    assert (sc.kernel, sc.reverts, sc.configs) == ("v6.14", (V.ACTIVE_MM_TRANSFER,), ("PREEMPT_RT",))
    assert sc.expects == (A.Expectation("pass", (), 4, 1), A.Expectation("fail", (V.SCHED_FORCE_INIT_MM,), 5, 1))
    assert sc.outcome == "pass"
    assert sc.expects[1].label() == "expect fail without 21641bd9a7a7"


def test_a_file_without_the_words_is_judged_as_before():
    sc = load("expect fail\nspawn A\n", "f.mmscn", known_arches())
    assert (sc.kernel, sc.reverts, sc.configs, sc.outcome) == (None, (), (), "fail")
    assert sc.expectations() == (A.Expectation("fail", (), 1, 1),)
    assert load("spawn A\n", "f.mmscn", known_arches()).expectations() == (A.Expectation("pass"),)


def test_an_ambiguous_commit_lists_the_changes_it_starts():
    assert errors("revert aaaaaaaaaaaa\n", fake_arches()) == [
        "1:8: commit id aaaaaaaaaaaa is ambiguous: it starts 2 modelled changes: aaaaaaaaaaaa1111 one fix; "
        "aaaaaaaaaaaa2222 another fix; write more digits"]
    assert load("revert aaaaaaaaaaaa2\n", "f.mmscn", fake_arches()).reverts == ("aaaaaaaaaaaa",)


def test_a_commit_of_another_arch_is_an_error():
    msg = ("1:21: bbbbbbbbbbbb (powerpc/64s: a fix of its own) changes the code of powerpc only, and this "
           "scenario runs arch generic")
    assert errors("expect fail without bbbbbbbbbbbb\n", fake_arches()) == [msg]
    assert load("arch powerpc\nrevert bbbbbbbbbbbb\n", "f.mmscn", fake_arches()).reverts == ("bbbbbbbbbbbb",)
    # the arch the run will use (`--arch powerpc`) is the one the commit must touch
    assert load("revert bbbbbbbbbbbb\n", "f.mmscn", fake_arches(), "powerpc").reverts == ("bbbbbbbbbbbb",)


def test_the_order_of_the_header_lines_does_not_matter():
    sc = load("expect fail without 21641bd9a7a7\nkernel v6.14\narch generic\n", "f.mmscn", known_arches())
    assert sc.expects[0].without == (V.SCHED_FORCE_INIT_MM,)
    assert errors("revert 21641bd9a7a7\nkernel v6.13\n")[0].startswith("1:8: 21641bd9a7a7 (lazy tlb: fix hotplug "
                                                                        "exit race with MMU_LAZY_TLB_SHOOTDOWN) came "
                                                                        "in v6.14, after kernel v6.13")


@pytest.mark.parametrize("text, why", [
    ("v5.8", None), ("v5.8.3", None), ("v2.6.39", None), ("v2.3.13", None), ("v6.17", None), ("v3.0", None),
    ("v4.21", "there is no Linux v4.21: the 4.x releases are v4.0 to v4.20"),
    ("v2.6.40", "there is no Linux v2.6.40: the 2.6 releases are v2.6.0 to v2.6.39"),
    ("v2.3.12", "kernel v2.3.12 is outside the modelled releases, v2.3.13 to v6.17"),
    ("v6.18", "kernel v6.18 is outside the modelled releases, v2.3.13 to v6.17"),
    ("v2.7.1", "there is no Linux v2.7.1: the 2.x series are 2.3, 2.4, 2.5 and 2.6"),
    ("linux", "`linux` is not a kernel release: write vX.Y or vX.Y.Z, like v5.8"),
])
def test_release_problem(text, why):
    assert V.release_problem(text) == why


def test_mainline_and_release_points():
    assert V.mainline("v4.19", "v5.2") == ["v4.19", "v4.20", "v5.0", "v5.1", "v5.2"]
    assert V.mainline("v2.6.38", "v3.1") == ["v2.6.38", "v2.6.39", "v3.0", "v3.1"]
    pts = V.release_points()
    assert pts[0] == V.OLDEST and pts[-1] == V.NEWEST and "v5.4" in pts and "v6.14" in pts
    assert V.release_points("v5.0", "v6.0") == ["v5.0", "v5.4", "v6.0"]
    assert [c.key for c in V.changes_between("v5.3", "v5.4")] == [V.ACTIVE_MM_TRANSFER]
