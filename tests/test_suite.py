"""Regression suites: `mmscn test` and the pytest plugin, on examples/ and on small suites made here.

Both run in subprocesses, the way a user or a CI job runs them.
"""
import multiprocessing
import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from mmscn import suite

from conftest import EXAMPLES, ROOT

ALL = sorted(EXAMPLES.rglob("*.mmscn"))

PASSES = """\
scenario "a user task runs on its own mm"
arch generic
cpus 1
spawn A
schedule cpu0 A
assert @A.users == 1
"""
ASSERT_FAILS = """\
scenario "an assertion that does not hold"
arch generic
cpus 1
spawn A
schedule cpu0 A
assert @A.users == 2
assert @A.count == 1
"""
FAILS_AS_EXPECTED = """\
scenario "exit of a task that is not running"
arch generic
expect fail
spawn A
exit A
"""
EXPECT_FAIL_BUT_HOLDS = """\
arch generic
expect fail
spawn A
assert @A.users == 1
"""
DOES_NOT_PARSE = """\
arch generic
spawn A
schedul cpu0 A
"""
REFUSED = """\
arch generic
spawn A
exit A
"""
ARCH_NOT_INSTALLED = """\
arch no-such-policy
spawn A
"""
# Round robin runs use_mm while A still has users; A exiting first is the race only explore finds.
RACE = """\
arch generic
cpus 2
spawn A
spawn kthread kw
schedule cpu1 kw
cpu0 {
    schedule A
    exit A
    schedule idle
}
cpu1 {
    use_mm kw @A
    unuse_mm kw
}
"""


def make_suite(root):
    files = {
        "a_pass.mmscn": PASSES,
        "b_assert_fails.mmscn": ASSERT_FAILS,
        "c_expected/fails_as_expected.mmscn": FAILS_AS_EXPECTED,
        "c_expected/holds_but_expect_fail.mmscn": EXPECT_FAIL_BUT_HOLDS,
        "d_parse.mmscn": DOES_NOT_PARSE,
        "e_refused.mmscn": REFUSED,
        "f_skip.mmscn": ARCH_NOT_INSTALLED,
    }
    for name, text in files.items():
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    (root.parent / "pytest.ini").write_text("[pytest]\n")     # rootdir here, not the project
    return root


# the lines `mmscn test suite` prints for make_suite, in order
SUITE_LINES = [
    "PASS suite/a_pass.mmscn",
    "FAIL suite/b_assert_fails.mmscn:6:8: assertion failed: @A.users == 2: actual 1",
    "PASS suite/c_expected/fails_as_expected.mmscn",
    "FAIL suite/c_expected/holds_but_expect_fail.mmscn: the header says `expect fail`, but the scenario "
    "ran without a failure",
    "FAIL suite/d_parse.mmscn:3:1: ",
    "FAIL suite/e_refused.mmscn:3:1: A is not running; do_exit acts on current",
    "SKIP suite/f_skip.mmscn: arch `no-such-policy` is not installed (known: ",
]


def env():
    e = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "COV_"))}
    e["NO_COLOR"] = "1"
    return e


def mmscn(cmd, *args, cwd):
    return subprocess.run([*cmd, *args], capture_output=True, text=True, cwd=cwd, env=env(), timeout=120)


def pytest_run(*args, cwd):
    return subprocess.run([sys.executable, "-m", "pytest", *args], capture_output=True, text=True, cwd=cwd,
                          env=env(), timeout=180)


def file_lines(stdout):
    return [ln for ln in stdout.splitlines() if ln.startswith(("PASS ", "FAIL ", "SKIP "))]


@pytest.fixture
def work(tmp_path):
    make_suite(tmp_path / "suite")
    return tmp_path


# ====================================================================== examples/, both ways
def test_mmscn_test_runs_the_examples(mmscn_cmd):
    p = mmscn(mmscn_cmd, "test", "examples", cwd=ROOT)
    assert p.returncode == 0, p.stdout + p.stderr
    want = [f"PASS {p.relative_to(ROOT)}" for p in sorted(ALL, key=lambda p: p.relative_to(ROOT).parts)]
    assert file_lines(p.stdout) == want
    assert p.stdout.splitlines()[-1] == f"{len(ALL)} passed, 0 failed"
    assert p.stderr == ""


def test_pytest_runs_the_examples():
    p = pytest_run("examples/", "-p", "no:cacheprovider", "-q", "-rA", cwd=ROOT)
    assert p.returncode == 0, p.stdout[-4000:] + p.stderr
    passed = sorted(ln.split()[1] for ln in p.stdout.splitlines() if ln.startswith("PASSED "))
    assert passed == sorted(f"{f.relative_to(ROOT)}::{f.stem}" for f in ALL)
    assert f"{len(ALL)} passed" in p.stdout.splitlines()[-1]


def test_project_tests_do_not_collect_their_mmscn_inputs():
    """tests/ holds .mmscn files that are test inputs (highlighting, bad inputs): conftest ignores them."""
    inputs = [d for d in ("tests/highlighting", "tests/bad_inputs") if (ROOT / d).is_dir()]
    assert any((ROOT / d).glob("*.mmscn") for d in inputs)
    p = pytest_run("--collect-only", "-q", "-p", "no:cacheprovider", *inputs, cwd=ROOT)
    assert p.returncode == 5, p.stdout[-3000:] + p.stderr      # 5: no tests collected
    assert "no tests collected" in p.stdout


# ====================================================================== mmscn test
def test_one_line_per_file_and_the_summary(mmscn_cmd, work):
    p = mmscn(mmscn_cmd, "test", "suite", cwd=work)
    assert p.returncode == 1, p.stdout + p.stderr
    lines = file_lines(p.stdout)
    assert len(lines) == len(SUITE_LINES)
    for got, want in zip(lines, SUITE_LINES):
        assert got.startswith(want), (got, want)
    assert p.stdout.splitlines()[-1] == "2 passed, 4 failed, 1 skipped"
    # the failures in full: located, with the source line and a caret
    assert "suite/b_assert_fails.mmscn:6:8: failure: assertion failed: @A.users == 2: actual 1\n" \
           "    6 | assert @A.users == 2\n      |        ^" in p.stdout
    assert "suite/d_parse.mmscn:3:1: error:" in p.stdout and "    3 | schedul cpu0 A" in p.stdout
    assert "Traceback" not in p.stdout + p.stderr


def test_only_passing_files_exit_0(mmscn_cmd, work):
    p = mmscn(mmscn_cmd, "test", "suite/a_pass.mmscn", "suite/c_expected/fails_as_expected.mmscn",
              "suite/f_skip.mmscn", cwd=work)
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout.splitlines()[-1] == "2 passed, 0 failed, 1 skipped"


def test_parallel_jobs_print_the_same(mmscn_cmd, work):
    one = mmscn(mmscn_cmd, "test", "suite", cwd=work)
    two = mmscn(mmscn_cmd, "test", "--jobs", "2", "suite", cwd=work)
    assert (two.returncode, two.stdout) == (one.returncode, one.stdout)


def test_junit_xml(mmscn_cmd, work):
    p = mmscn(mmscn_cmd, "test", "suite", "--junit-xml", "out/results.xml", "-j", "2", cwd=work)
    assert p.returncode == 1, p.stderr
    root = ET.parse(work / "out" / "results.xml").getroot()
    assert root.tag == "testsuites"
    (ts,) = root.findall("testsuite")
    assert (ts.get("tests"), ts.get("failures"), ts.get("skipped"), ts.get("errors")) == ("7", "4", "1", "0")
    cases = ts.findall("testcase")
    assert [c.get("file") for c in cases] == [ln.split()[1].split(":")[0] for ln in SUITE_LINES]
    by_name = {c.get("name"): c for c in cases}
    f = by_name["b_assert_fails.mmscn"].find("failure")
    assert f.get("message") == "suite/b_assert_fails.mmscn:6:8: assertion failed: @A.users == 2: actual 1"
    assert "    6 | assert @A.users == 2" in f.text
    assert by_name["b_assert_fails.mmscn"].get("classname") == "suite"
    assert by_name["f_skip.mmscn"].find("skipped") is not None
    assert by_name["a_pass.mmscn"].find("failure") is None and by_name["a_pass.mmscn"].find("skipped") is None
    assert by_name["fails_as_expected.mmscn"].get("classname") == "suite.c_expected"


def test_junit_xml_unwritable_is_bad_input(mmscn_cmd, work):
    p = mmscn(mmscn_cmd, "test", "suite/a_pass.mmscn", "--junit-xml", "suite/a_pass.mmscn/r.xml", cwd=work)
    assert p.returncode == 2
    assert "mmscn test: suite/a_pass.mmscn/r.xml: cannot write" in p.stderr


@pytest.mark.parametrize("args, message", [
    (["nowhere"], "mmscn test: nowhere: no such file or directory"),
    (["empty"], "mmscn test: no .mmscn files below empty"),
    (["--jobs", "0", "suite"], "must be at least 1"),
    (["--timeout", "-1", "suite"], "must be more than 0"),
])
def test_bad_command_line(mmscn_cmd, work, args, message):
    (work / "empty").mkdir()
    p = mmscn(mmscn_cmd, "test", *args, cwd=work)
    assert p.returncode == 2, p.stdout + p.stderr
    assert message in p.stderr
    assert "Traceback" not in p.stderr


def long_scenario(path, statements=300_000):
    with open(path, "w") as fh:
        fh.write("arch generic\ncpus 1\nspawn A\n")
        fh.write("schedule cpu0 A\nschedule cpu0 idle\n" * (statements // 2))


def test_timeout_kills_a_long_scenario(mmscn_cmd, work):
    long_scenario(work / "suite" / "long.mmscn")
    p = mmscn(mmscn_cmd, "test", "--timeout", "0.5", "suite/long.mmscn", "suite/a_pass.mmscn", cwd=work)
    assert p.returncode == 1, p.stdout + p.stderr
    assert file_lines(p.stdout) == [
        "PASS suite/a_pass.mmscn",
        "FAIL suite/long.mmscn: timed out after 0.5 s (the worker running it was killed)"]
    assert p.stdout.splitlines()[-1] == "1 passed, 1 failed"


def test_timeout_leaves_no_worker_running(tmp_path):
    """run_jobs kills the worker itself (not only at exit): none is left when it returns."""
    long_scenario(tmp_path / "long.mmscn")
    outs = []
    suite.run_jobs([(str(tmp_path / "long.mmscn"),)], 1, 0.3, lambda i, o: outs.append(o))
    assert [(o.status, o.reason) for o in outs] == [
        ("FAIL", "timed out after 0.3 s (the worker running it was killed)")]
    assert multiprocessing.active_children() == []


def test_the_pool_carries_on_after_a_timeout(tmp_path):
    """The worker killed for a stuck file is replaced: the files after it still run."""
    long_scenario(tmp_path / "long.mmscn")
    ok = tmp_path / "ok.mmscn"
    ok.write_text("cpus 1\nspawn A\nschedule cpu0 A\n")
    from mmscn.dsl.parser import lark_parser
    lark_parser()       # as `mmscn test` does: built once, before the workers fork
    outs = []
    suite.run_jobs([(str(tmp_path / "long.mmscn"),), (str(ok),), (str(ok),)], 1, 0.3,
                   lambda i, o: outs.append((i, o.status, o.reason)))
    assert [o[:2] for o in outs] == [(0, "FAIL"), (1, "PASS"), (2, "PASS")], outs
    assert multiprocessing.active_children() == []


def test_workers_judge_file_after_file(monkeypatch):
    """A persistent pool: twelve files on --jobs 2 are judged by two processes, not twelve."""
    monkeypatch.setattr(suite, "judge", lambda path, *rest: suite.Outcome(path, suite.PASS, str(os.getpid())))
    outs = []
    suite.run_jobs([(f"f{n}.mmscn",) for n in range(12)], 2, None, lambda i, o: outs.append(o.reason))
    assert len(outs) == 12 and len(set(outs)) <= 2 and str(os.getpid()) not in outs
    assert multiprocessing.active_children() == []


def _marked(mark: str) -> list:
    """Pids of live processes whose environment carries `mark`."""
    pids = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/environ", "rb") as fh:
                    if mark.encode() in fh.read():
                        pids.append(int(d))
            except OSError:
                pass
    return pids


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs /proc to find the workers")
def test_ctrl_c_stops_the_suite_and_its_workers(mmscn_cmd, tmp_path):
    """^C from a terminal reaches the whole foreground process group: the workers ignore it, the
    parent kills them, says so and exits 130; no worker is left behind."""
    import signal
    import time
    for n in range(3):
        long_scenario(tmp_path / f"long{n}.mmscn", statements=2_000_000)
    mark = f"MMSCN_CTRL_C_TEST={os.getpid()}_{time.monotonic_ns()}"
    e = env()
    e[mark.split("=")[0]] = mark.split("=")[1]
    p = subprocess.Popen([*mmscn_cmd, "test", "--jobs", "2", str(tmp_path)], env=e, cwd=tmp_path,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while len(_marked(mark)) < 3 and time.monotonic() < deadline:   # the parent and two workers
            time.sleep(0.05)
        assert len(_marked(mark)) >= 3, "the workers never started"
        os.killpg(p.pid, signal.SIGINT)
        out, err = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
    assert p.returncode == 130, (out, err)
    assert "interrupted" in err and "Traceback" not in err, err
    deadline = time.monotonic() + 10
    while _marked(mark) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _marked(mark) == []


def test_a_worker_that_dies_is_a_failure_of_its_file(monkeypatch, tmp_path):
    """A worker killed from outside (the OOM killer, a crash) fails its file; the suite goes on."""
    monkeypatch.setattr(suite, "judge", lambda *job: os._exit(3))    # the forked worker inherits it
    outs = []
    suite.run_jobs([("x.mmscn",), ("y.mmscn",)], 2, None, lambda i, o: outs.append((i, o.status, o.reason)))
    assert sorted(outs) == [(0, "FAIL", "the worker process died (exit status 3)"),
                            (1, "FAIL", "the worker process died (exit status 3)")]


# ====================================================================== golden traces
def test_update_then_a_changed_trace_shows_a_diff(mmscn_cmd, work):
    p = mmscn(mmscn_cmd, "test", "--update", "suite", cwd=work)
    assert p.returncode == 1      # the failures stay failures; their traces are written all the same
    assert p.stdout.splitlines()[-2:] == ["5 golden traces written", "2 passed, 4 failed, 1 skipped"]
    s = work / "suite"
    golden = (s / "a_pass.mmscn.trace").read_text()
    assert golden.startswith('a_pass.mmscn: a user task runs on its own mm (arch generic, 1 CPU)\n')
    assert str(work) not in golden and "suite/" not in golden
    assert not (s / "d_parse.mmscn.trace").exists() and not (s / "f_skip.mmscn.trace").exists()
    assert "b_assert_fails.mmscn:6:8: failure: assertion failed" in (s / "b_assert_fails.mmscn.trace").read_text()

    p = mmscn(mmscn_cmd, "test", "suite/a_pass.mmscn", "suite/c_expected", cwd=work)
    assert p.returncode == 1 and p.stdout.splitlines()[-1] == "2 passed, 1 failed"

    (s / "a_pass.mmscn").write_text(PASSES.replace("cpus 1", "cpus 2"))
    p = mmscn(mmscn_cmd, "test", "suite/a_pass.mmscn", cwd=work)
    assert p.returncode == 1
    assert file_lines(p.stdout) == [
        "FAIL suite/a_pass.mmscn: the trace differs from its golden suite/a_pass.mmscn.trace "
        "(-3 +3 lines; mmscn test --update accepts it)"]
    assert "--- suite/a_pass.mmscn.trace\n+++ this run\n@@ " in p.stdout
    assert "\n-a_pass.mmscn: a user task runs on its own mm (arch generic, 1 CPU)\n" \
           "-  boot: idle0 on @init_mm" in p.stdout
    assert "\n+a_pass.mmscn: a user task runs on its own mm (arch generic, 2 CPUs)\n" \
           "+  boot: idle0, idle1 on @init_mm" in p.stdout
    assert p.stdout.splitlines()[-1] == "0 passed, 1 failed"

    p = mmscn(mmscn_cmd, "test", "--update", "suite/a_pass.mmscn", cwd=work)
    assert p.returncode == 0 and p.stdout.splitlines()[-2:] == ["1 golden trace written", "1 passed, 0 failed"]
    p = mmscn(mmscn_cmd, "test", "--update", "suite/a_pass.mmscn", cwd=work)
    assert p.stdout.splitlines()[-2] == "0 golden traces written"     # unchanged: not rewritten
    assert mmscn(mmscn_cmd, "test", "suite/a_pass.mmscn", cwd=work).returncode == 0


def test_a_failed_run_with_a_changed_trace_says_both(mmscn_cmd, work):
    mmscn(mmscn_cmd, "test", "--update", "suite/b_assert_fails.mmscn", cwd=work)
    s = work / "suite" / "b_assert_fails.mmscn"
    s.write_text(ASSERT_FAILS.replace("assert @A.count == 1", "assert @A.count == 3"))
    p = mmscn(mmscn_cmd, "test", "suite/b_assert_fails.mmscn", cwd=work)
    assert file_lines(p.stdout) == [SUITE_LINES[1]]
    assert "suite/b_assert_fails.mmscn: also: the trace differs from its golden" in p.stdout
    assert "+b_assert_fails.mmscn:7:8: failure: assertion failed: @A.count == 3: actual 1" in p.stdout


def test_goldens_of_the_examples_are_the_same_bytes_anywhere(mmscn_cmd, tmp_path):
    """Two copies at different absolute paths, one run with --jobs 2: byte-identical goldens."""
    here, there = tmp_path / "one", tmp_path / "two" / "deeper"
    for d in (here, there):
        shutil.copytree(EXAMPLES, d / "examples")
    a = mmscn(mmscn_cmd, "test", "--update", "examples", cwd=here)
    b = mmscn(mmscn_cmd, "test", "--update", "-j", "2", str(there / "examples"), cwd=tmp_path)
    assert a.returncode == b.returncode == 0, a.stdout + b.stdout
    ga = sorted(p.relative_to(here) for p in here.rglob("*.trace"))
    gb = sorted(p.relative_to(there) for p in there.rglob("*.trace"))
    assert ga == gb and len(ga) == len(ALL)
    for rel in ga:
        text = (here / rel).read_bytes()
        assert text == (there / rel).read_bytes(), rel
        assert str(tmp_path).encode() not in text and b"\x1b[" not in text
    # and a later run checks them: both pass as they are
    assert mmscn(mmscn_cmd, "test", "examples", cwd=here).stdout.splitlines()[-1] == f"{len(ALL)} passed, 0 failed"


def test_golden_dir(mmscn_cmd, work):
    p = mmscn(mmscn_cmd, "test", "--golden-dir", "gold", "suite/a_pass.mmscn", cwd=work)
    assert p.returncode == 1
    assert file_lines(p.stdout) == ["FAIL suite/a_pass.mmscn: no golden trace gold/suite/a_pass.mmscn.trace "
                                    "(mmscn test --update writes it)"]
    p = mmscn(mmscn_cmd, "test", "--golden-dir", "gold", "--update", "suite/a_pass.mmscn", cwd=work)
    assert p.returncode == 0
    assert (work / "gold" / "suite" / "a_pass.mmscn.trace").is_file()
    assert not (work / "suite" / "a_pass.mmscn.trace").exists()
    p = mmscn(mmscn_cmd, "test", "--golden-dir", "gold", "suite/a_pass.mmscn", cwd=work)
    assert p.returncode == 0, p.stdout
    p = mmscn(mmscn_cmd, "test", "--golden-dir", "gold", str(work / "suite" / "a_pass.mmscn"), cwd=work / "gold")
    assert p.returncode == 2 and "outside the working directory" in p.stderr


# ====================================================================== explore's verdict
def test_explore_finds_the_race_the_round_robin_misses(mmscn_cmd, work):
    (work / "race.mmscn").write_text(RACE)
    assert mmscn(mmscn_cmd, "test", "race.mmscn", cwd=work).returncode == 0
    p = mmscn(mmscn_cmd, "test", "--explore", "race.mmscn", cwd=work)
    assert p.returncode == 1
    assert file_lines(p.stdout) == ["FAIL race.mmscn:12:5: use-after-teardown: kw adopts @A whose mm_users is 0: "
                                    "its page tables were torn down by exit_mmap (the caller must hold a "
                                    "reference from mmget_not_zero)"]
    assert "shortest failing interleaving (3 steps):" in p.stdout


# ====================================================================== the pytest plugin
def test_pytest_reports_failures_located_with_their_trace(work):
    p = pytest_run("suite", "-p", "no:cacheprovider", "-rfs", cwd=work)
    assert p.returncode == 1, p.stdout[-3000:] + p.stderr
    assert p.stdout.splitlines()[-1].strip("= ").startswith("4 failed, 2 passed, 1 skipped")
    out = p.stdout
    # the assertion failure: FILE:LINE:COL first, then the trace up to it, then the caret
    sect = out.split("scenario suite/b_assert_fails.mmscn", 1)[1].split("\n_", 1)[0]
    assert "suite/b_assert_fails.mmscn:6:8: assertion failed: @A.users == 2: actual 1" in sect
    assert "    5  schedule cpu0 A\n" in sect and "    6  assert @A.users == 2  FAILED" in sect
    assert "  ... 1 later statement" in sect
    assert sect.index("schedule cpu0 A") < sect.index("    6 | assert @A.users == 2")
    # a parse error is a failed test with its located error, not a collection error
    assert "FAILED suite/d_parse.mmscn::d_parse - suite/d_parse.mmscn:3:1: " in out
    assert "error" not in p.stdout.splitlines()[-1]
    assert "SKIPPED [1] suite/f_skip.mmscn:1: arch `no-such-policy` is not installed" in out, out[-500:]
    assert "Traceback" not in out


def test_pytest_k_and_x(work):
    p = pytest_run("suite", "-p", "no:cacheprovider", "-q", "-k", "a_pass or e_refused", cwd=work)
    assert p.returncode == 1
    assert "1 failed, 1 passed, 5 deselected" in p.stdout.splitlines()[-1]
    p = pytest_run("suite", "-p", "no:cacheprovider", "-q", "-x", cwd=work)
    assert p.returncode == 1
    assert p.stdout.splitlines()[-1].startswith("1 failed, 1 passed")


def test_pytest_last_failed(work):
    first = pytest_run("suite", "-q", cwd=work)
    assert first.returncode == 1
    again = pytest_run("suite", "--lf", "-rA", cwd=work)
    assert again.returncode == 1
    assert "run-last-failure: rerun previous 4 failures" in again.stdout
    assert again.stdout.splitlines()[-1].strip("= ").startswith("4 failed in")
    assert "PASSED suite" not in again.stdout and "SKIPPED" not in again.stdout


def test_pytest_xdist(work):
    p = pytest_run("suite", "-p", "no:cacheprovider", "-q", "-n", "2", cwd=work)
    assert p.returncode == 1, p.stdout[-3000:] + p.stderr
    assert p.stdout.splitlines()[-1].startswith("4 failed, 2 passed, 1 skipped")


def test_pytest_checks_goldens_and_explores_when_asked(mmscn_cmd, work):
    s = work / "suite"
    mmscn(mmscn_cmd, "test", "--update", "suite/a_pass.mmscn", cwd=work)
    (s / "a_pass.mmscn").write_text(PASSES.replace("cpus 1", "cpus 2"))
    (s / "race.mmscn").write_text(RACE)
    p = pytest_run("suite/a_pass.mmscn", "suite/race.mmscn", "-p", "no:cacheprovider", cwd=work)
    assert p.returncode == 1
    assert "1 failed, 1 passed" in p.stdout.splitlines()[-1]
    assert "+a_pass.mmscn: a user task runs on its own mm (arch generic, 2 CPUs)" in p.stdout
    (work / "pytest.ini").write_text("[pytest]\nmmscn_goldens = false\nmmscn_explore = true\n")
    p = pytest_run("suite/a_pass.mmscn", "suite/race.mmscn", "-p", "no:cacheprovider", cwd=work)
    assert "1 failed, 1 passed" in p.stdout.splitlines()[-1]
    assert "FAILED suite/race.mmscn::race - suite/race.mmscn:12:5: use-after-teardown" in p.stdout
    assert "shortest failing interleaving" in p.stdout


# ====================================================================== pieces
def test_discover_is_sorted_and_counts_each_file_once(tmp_path):
    for name in ("b.mmscn", "a/z.mmscn", "a/b/c.mmscn", ".hidden/x.mmscn", "notes.txt", "a.mmscn"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("")
    t = str(tmp_path)
    got = suite.discover([t, os.path.join(t, "b.mmscn"), os.path.join(t, "a")])
    assert [os.path.relpath(g, t) for g in got] == ["a/b/c.mmscn", "a/z.mmscn", "a.mmscn", "b.mmscn"]


def test_a_golden_that_is_not_utf8_is_reported_and_update_repairs_it(mmscn_cmd, work):
    golden = work / "suite" / "a_pass.mmscn.trace"
    golden.write_bytes(b"\xff\xfe not a trace")
    p = mmscn(mmscn_cmd, "test", "suite/a_pass.mmscn", cwd=work)
    assert p.returncode == 1
    assert file_lines(p.stdout)[0].startswith(
        "FAIL suite/a_pass.mmscn: cannot read the golden trace suite/a_pass.mmscn.trace: "), p.stdout
    p = mmscn(mmscn_cmd, "test", "--update", "suite/a_pass.mmscn", cwd=work)
    assert p.returncode == 0 and p.stdout.splitlines()[-2:] == ["1 golden trace written", "1 passed, 0 failed"]
    assert golden.read_text().startswith("a_pass.mmscn: a user task runs on its own mm")
