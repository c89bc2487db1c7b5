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
    assert V.release_points("v5.0", "v6.0") == ["v5.0", "v5.4", "v5.7", "v5.8", "v5.9", "v5.10", "v5.11", "v5.16", "v6.0"]
    assert [c.key for c in V.changes_between("v5.3", "v5.4")] == [V.ACTIVE_MM_TRANSFER, V.MEMBARRIER_RQ_STATE]


# ---- end to end, through the installed command line ----------------------------------
import json  # noqa: E402
import os  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import jsonschema  # noqa: E402

from mmscn.pictures.schema import schema  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "kernel_history.mmscn"
LAZY = """scenario "sched_force_init_mm"
kernel v6.14
expect pass
expect fail without 21641bd9a7a7
spawn A
spawn kthread K
schedule cpu0 A
schedule cpu0 K
unlazy cpu0
assert cpu0.active_mm == @init_mm
"""
REFUSED = "has no sched_force_init_mm: a lazy task keeps its borrowed mm until it is switched away"


def cli(mmscn_cmd, *args, stdin=None, cwd=None):
    env = dict(os.environ, NO_COLOR="1")
    p = subprocess.run([*mmscn_cmd, *map(str, args)], capture_output=True, text=True, env=env, input=stdin,
                       cwd=cwd, timeout=120)
    assert "Traceback" not in p.stdout + p.stderr
    return p


@pytest.fixture(scope="module")
def validator():
    return jsonschema.Draft202012Validator(schema())


@pytest.fixture
def lazy(tmp_path):
    f = tmp_path / "lazy.mmscn"
    f.write_text(LAZY)
    return f


def test_run_judges_each_expect_line_under_its_kernel(mmscn_cmd, lazy):
    p = cli(mmscn_cmd, "run", lazy)
    assert p.returncode == 0, p.stdout + p.stderr
    out = p.stdout
    assert out.index("=== line 3: expect pass (Linux v6.14)\n") < \
        out.index("=== line 4: expect fail without 21641bd9a7a7 (Linux v6.14 without 21641bd9a7a7)\n")
    assert out.endswith(
        f"verdicts of {lazy}:\n"
        "  line 3: expect pass (Linux v6.14): holds\n"
        "  line 4: expect fail without 21641bd9a7a7 (Linux v6.14 without 21641bd9a7a7): fails, as the line "
        f"expects: line 9:1: Linux v6.14 without 21641bd9a7a7 {REFUSED}\n")
    # under an older kernel the first line fails: exit 1, and the verdict says where
    p = cli(mmscn_cmd, "run", "-q", lazy, "--kernel", "v6.13")
    assert p.returncode == 1
    assert f"  line 3: expect pass (Linux v6.13): FAILS: line 9:1: Linux v6.13 {REFUSED}\n" in p.stdout


def test_json_of_several_verdicts_and_of_one(mmscn_cmd, lazy, validator, tmp_path):
    d = json.loads(cli(mmscn_cmd, "run", "--json", lazy).stdout)
    validator.validate(d)
    assert d["passed"] is True and [v["expect"] for v in d["verdicts"]] == ["pass", "fail"]
    assert [(v["expect_line"], v["without"], v["kernel"]) for v in d["verdicts"]] == [
        (3, [], {"release": "v6.14", "reverts": [], "configs": []}),
        (4, ["21641bd9a7a7"], {"release": "v6.14", "reverts": ["21641bd9a7a7"], "configs": []})]
    # one `expect` line: the shape of a file without kernel words, plus the kernel it ran
    one = tmp_path / "one.mmscn"
    one.write_text(LAZY.replace("expect fail without 21641bd9a7a7\n", ""))
    d = json.loads(cli(mmscn_cmd, "run", "--json", one, "--revert", "139d025cda1d").stdout)
    validator.validate(d)
    assert d["kernel"] == {"release": "v6.14", "reverts": ["139d025cda1d"], "configs": []} and "verdicts" not in d
    plain = json.loads(cli(mmscn_cmd, "run", "--json", ROOT / "examples" / "zombie_mm.mmscn").stdout)
    assert "kernel" not in plain
    d = json.loads(cli(mmscn_cmd, "explore", "--json", EXAMPLE).stdout)
    validator.validate(d)
    bad = dict(d, verdicts=d["verdicts"][:1])
    assert not validator.is_valid(bad)      # several verdicts are at least two


def test_explore_judges_each_line(mmscn_cmd, tmp_path):
    f = tmp_path / "blocks.mmscn"
    f.write_text("cpus 2\n" + LAZY.replace("unlazy cpu0\nassert cpu0.active_mm == @init_mm\n", "")
                 + "cpu0 {\n  unlazy\n}\ncpu1 {\n  spawn B\n}\n")
    p = cli(mmscn_cmd, "explore", f)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "  line 4: expect pass (Linux v6.14): holds\n" in p.stdout
    assert "  line 5: expect fail without 21641bd9a7a7 (Linux v6.14 without 21641bd9a7a7): fails, as the line " \
           "expects: line 11:3:" in p.stdout


def test_test_shows_both_verdicts_and_keeps_them_in_the_golden(mmscn_cmd, lazy):
    p = cli(mmscn_cmd, "test", lazy.parent)
    assert p.returncode == 0, p.stdout
    assert p.stdout.startswith(
        f"PASS {lazy}\n       line 3: expect pass (Linux v6.14): holds\n"
        f"       line 4: expect fail without 21641bd9a7a7 (Linux v6.14 without 21641bd9a7a7): fails, as the line "
        f"expects: line 9:1: Linux v6.14 without 21641bd9a7a7 {REFUSED}\n")
    assert cli(mmscn_cmd, "test", "--update", lazy.parent).returncode == 0
    golden = (lazy.parent / "lazy.mmscn.trace").read_text()
    assert golden == cli(mmscn_cmd, "run", "lazy.mmscn", cwd=lazy.parent).stdout
    # --kernel v6.13: the first line fails, the file fails, the golden differs
    p = cli(mmscn_cmd, "test", lazy.parent, "--kernel", "v6.13")
    assert p.returncode == 1
    assert p.stdout.startswith(f"FAIL {lazy}:9:1: expect pass: Linux v6.13 {REFUSED}\n       line 3: expect pass "
                               f"(Linux v6.13): FAILS")


@pytest.mark.parametrize("args, message", [
    (["run", "{f}", "--kernel", "v5.20"], "mmscn run: --kernel v5.20: there is no Linux v5.20: the 5.x releases are "
                                          "v5.0 to v5.19\n"),
    (["run", "{f}", "--revert", "66acd46080bd"], "mmscn run: --revert 66acd46080bd: no modelled change has commit "
                                                 "66acd46080bd (mmscn history lists them all)\n"),
    (["run", "{f}", "--arch", "linux-2.3", "--kernel", "v5.4"],
     "mmscn run: --kernel v5.4: arch linux-2.3 is the generic architecture at v2.3.13 and names its own kernel; "
     "use --arch generic\n"),
    (["explore", "{f}", "--revert", "21641bd9a7a"], "mmscn explore: --revert 21641bd9a7a: `21641bd9a7a` is too short "
                                                    "for a commit id: write at least 12 hex digits (git log "
                                                    "--abbrev=12)\n"),
    (["test", "{f}", "--kernel", "5.8"], "mmscn test: --kernel 5.8: `5.8` is not a kernel release as git tags it: "
                                         "write `v5.8`\n"),
    (["compare", "{f}", "--kernel", "v5.4,v9.0"], "mmscn compare: --kernel v9.0: kernel v9.0 is outside the modelled "
                                                  "releases, v2.3.13 to v6.17\n"),
    (["repl", "--revert", "zz"], "mmscn repl: --revert zz: `zz` is not a commit id: a commit is named by 12 or more "
                                 "hex digits, like 38cf307c1f20\n"),
    (["bisect", "{f}", "--from", "v6.0", "--to", "v5.0"], "mmscn bisect: --from v6.0 must be older than --to v5.0\n"),
    (["bisect", "{f}", "--arch", "linux-2.3"], "mmscn bisect: arch linux-2.3 is the generic architecture at v2.3.13 "
                                               "and names its own kernel: bisect `arch generic` (--arch generic)\n"),
    (["history", "--arch", "vax"], None),
])
def test_bad_flags_exit_2_with_the_reason(mmscn_cmd, lazy, args, message):
    p = cli(mmscn_cmd, *[a.replace("{f}", str(lazy)) for a in args], stdin="")
    assert p.returncode == 2, p.stdout + p.stderr
    if message is not None:
        assert p.stderr == message
    else:
        assert p.stderr.startswith("mmscn history: unknown architecture `vax`; known: ")


def test_compare_has_kernels_as_columns(mmscn_cmd, lazy, validator):
    p = cli(mmscn_cmd, "compare", lazy, "--kernel", "v6.13,v6.14", "--arch", "generic,linux-2.3")
    assert p.returncode == 0
    head = p.stdout.split("\n")[1].split()
    assert head == ["generic", "v6.13", "generic", "v6.14", "linux-2.3", "v2.3.13"]
    verdicts = p.stdout.split("\n")[2].split()
    assert verdicts[:3] == ["verdict", "failed", "(1),"] and "passed" in verdicts
    d = json.loads(cli(mmscn_cmd, "compare", "--json", lazy, "--kernel", "v6.13,v6.14").stdout)
    validator.validate(d)
    assert [(c["arch"], c.get("kernel")) for c in d["policies"]][:3] == [("generic", "v6.13"), ("generic", "v6.14"),
                                                                         ("linux-2.3", "v2.3.13")]


def test_history_lists_the_table_newest_first(mmscn_cmd, validator):
    p = cli(mmscn_cmd, "history")
    assert p.returncode == 0
    lines = p.stdout.splitlines()
    assert lines[0] == (f"{len(V.CHANGES)} modelled kernel changes, newest first (releases v2.3.13 to v6.17; "
                        f"`arches` all: the kernel's own code):")
    releases = [ln.split()[0] for ln in lines[1::2]]
    assert releases == [c.release for c in V.newest_first()]
    assert any(ln.endswith("UNVERIFIED") for ln in lines)
    d = json.loads(cli(mmscn_cmd, "history", "--json", "--arch", "powerpc").stdout)
    validator.validate(d)
    assert [c["key"] for c in d["changes"]] == [c.key for c in V.newest_first("powerpc")]
    assert {c["key"]: c["verified"] for c in d["changes"]}[V.USE_MM] is False


def test_history_picks_up_rows_other_helpers_append(monkeypatch):
    """The table's rows are all that `history` and docs/history.md read: a row appended to
    CHANGES shows in both (tlb and bugs append theirs)."""
    import importlib.util
    from mmscn import history
    row = V.Change("0123456789ab", "0123456789abcdef", "arch/x86: a new row", "v6.1", "strong: a test", ("x86",))
    monkeypatch.setattr(V, "CHANGES", V.CHANGES + (row,))
    assert row in V.newest_first("x86") and row not in V.newest_first("alpha")
    assert "0123456789ab" in history.table_text(V.newest_first())
    spec = importlib.util.spec_from_file_location("gen_history", ROOT / "tools" / "gen_history.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    assert "| v6.1 | `0123456789ab` |" in gen.table()


def test_docs_history_is_generated_from_the_table():
    r = subprocess.run([sys.executable, str(ROOT / "tools" / "gen_history.py"), "--check"], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    page = (ROOT / "docs" / "history.md").read_text()
    for c in V.CHANGES:
        assert f"`{c.key}`" in page
        assert (f"| {c.release} **UNVERIFIED** |" in page) == c.source.startswith("UNVERIFIED")


def test_docs_history_check_fails_when_stale(tmp_path, monkeypatch):
    import importlib.util
    spec = importlib.util.spec_from_file_location("gen_history", ROOT / "tools" / "gen_history.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    stale = tmp_path / "history.md"
    stale.write_text((ROOT / "docs" / "history.md").read_text().replace("| v5.4 |", "| v5.3 |"))
    monkeypatch.setattr(gen, "PAGE", stale)
    monkeypatch.setattr(gen, "ROOT", tmp_path)
    assert gen.main(["--check"]) == 1
    assert gen.main([]) == 0 and gen.main(["--check"]) == 0


def test_bisect_names_the_commit(mmscn_cmd, lazy, validator):
    p = cli(mmscn_cmd, "bisect", lazy)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "  v6.14     holds\n" in p.stdout and f"  v5.4      fails  line 9: Linux v5.4 {REFUSED}\n" in p.stdout
    assert ("the verdict changes from fails (v6.4) to holds (v6.14)\n"
            "21641bd9a7a7 is the first commit where the scenario holds\n"
            "commit 21641bd9a7a7ce0360106a5a8e5b89a4fc74529d\n"
            "    lazy tlb: fix hotplug exit race with MMU_LAZY_TLB_SHOOTDOWN\n") in p.stdout
    d = json.loads(cli(mmscn_cmd, "bisect", "--json", lazy, "--from", "v6.0", "--all-releases").stdout)
    validator.validate(d)
    assert [r["release"] for r in d["releases"]] == [f"v6.{n}" for n in range(18)]
    assert d["found"] and d["change"]["from"] == "v6.13" and d["change"]["to"] == "v6.14"
    assert [c["key"] for c in d["change"]["commits"]] == [V.SCHED_FORCE_INIT_MM]
    # no change of verdict in the range: exit 1
    p = cli(mmscn_cmd, "bisect", lazy, "--from", "v5.0", "--to", "v6.0")
    assert p.returncode == 1
    assert p.stdout.endswith("the verdict never changes: the scenario fails under every release from v5.0 to "
                             "v6.0\n")


def test_bisect_names_the_one_commit_of_several_that_changes_the_verdict(monkeypatch):
    """Two changes land in the same release: the one whose revert alone brings the old
    verdict back is the one bisect names."""
    from mmscn.bisect import bisect
    from mmscn.interpreter.runner import Runner  # noqa: F401 - the module bisect runs
    other = V.Change("0123456789ab", "0123456789abcdef", "an unrelated change of v6.14", "v6.14", "strong: a test")
    monkeypatch.setattr(V, "CHANGES", V.CHANGES + (other,))
    monkeypatch.setitem(V._CHANGE, other.key, other)
    sc = load(LAZY, "lazy.mmscn", known_arches())
    points, (old, new, commits) = bisect(sc, LAZY.split("\n"), "generic", "v6.0", "v6.17")
    assert (old.release, new.release, [c.key for c in commits]) == ("v6.4", "v6.14", [V.SCHED_FORCE_INIT_MM])


def test_repl_kernel_and_revert(mmscn_cmd):
    steps = "spawn A\nspawn kthread K\nschedule cpu0 A\nschedule cpu0 K\nunlazy cpu0\n"
    p = cli(mmscn_cmd, "repl", stdin=steps + ":kernel v6.13\n:revert 21641bd9a7a7\n:kernel\n")
    assert p.returncode == 1    # the two replays were refused
    assert ("the session does not replay with kernel v6.13, so it stays on Linux v6.17:\n"
            f"  line 5: unlazy cpu0: refused: Linux v6.13 {REFUSED}\n") in p.stdout
    assert "the session does not replay with 21641bd9a7a7 reverted, so it stays on Linux v6.17:\n" in p.stdout
    assert "  Linux v6.17\n  in        v6.14    21641bd9a7a7" in p.stdout
    p = cli(mmscn_cmd, "repl", stdin=steps.replace("unlazy cpu0\n", "") + ":revert 21641bd9a7a7\n:kernel v6.10\n"
                                     ":revert\n:revert none\n:revert 66acd46080bd\n")
    assert p.returncode == 1
    assert "  Linux v6.17 without 21641bd9a7a7; 4 statements replayed\n" in p.stdout
    assert "  Linux v6.10; 4 statements replayed\n" in p.stdout       # a revert of a later change goes with it
    assert "  no modelled change is reverted" in p.stdout
    assert "error: :revert 66acd46080bd: no modelled change has commit 66acd46080bd" in p.stdout
    # the header words before the first statement, --revert on the command line, :save writes them
    p = cli(mmscn_cmd, "repl", "--revert", "139d025cda1d", stdin="kernel v6.14\n" + steps + ":kernel\n")
    assert p.returncode == 0, p.stdout
    assert "  Linux v6.14 without 139d025cda1d\n" in p.stdout


def test_repl_save_keeps_the_kernel(tmp_path):
    import io
    from mmscn.repl.session import Session
    s = Session(io.StringIO(), kernel="v6.14", reverts=("139d025cda1d",))
    s.feed("spawn A")
    text = s.save_text()
    assert "kernel v6.14\nrevert 139d025cda1d\n" in text
    sc = load(text, "saved.mmscn", known_arches())
    assert (sc.kernel, sc.reverts) == ("v6.14", ("139d025cda1d",))


def test_linux_2_3_is_generic_at_v2_3_13():
    from mmscn.interpreter import policies
    v = V.for_policy(policies.get("linux-2.3"))
    assert (v.release, v.name) == ("v2.3.13", "linux-2.3")
    assert not any(v.has(c.key) for c in V.CHANGES)
    # the header's kernel does not move it; a revert names the version after the release
    assert V.for_policy(policies.get("linux-2.3"), "v6.14").release == "v2.3.13"


def test_the_language_server_runs_the_header_s_kernel():
    from mmscn.lsp.analysis import Analysis
    text = "kernel v6.13\nspawn A\nspawn kthread K\nschedule cpu0 A\nschedule cpu0 K\nunlazy cpu0\n"
    problems = Analysis("f.mmscn").update(text).problems
    assert [p.message for p in problems] == [f"Linux v6.13 {REFUSED}"]
    assert Analysis("f.mmscn").update(text.replace("v6.13", "v6.14")).problems == []
