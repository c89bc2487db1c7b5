"""The `mmscn` command line, driven as a user drives it: the installed script in a subprocess.

Exit status: 0 held, 1 failed or refused, 2 unreadable or unparsable file or
bad command line, 70 an internal error (mmscn/cli.py).  Colour only on a
terminal (checked on a real pseudo-terminal) and never under NO_COLOR.
"""
import json
import os
import pty
import select
import subprocess
import sys
from pathlib import Path

import pytest

from mmscn import __version__
from mmscn.interpreter import policies
from mmscn.interpreter.kernel import COST_NAMES

ROOT = Path(__file__).resolve().parent.parent
ZOMBIE = ROOT / "examples" / "zombie_mm.mmscn"
ESC = "\x1b["

PASSES = "spawn A\nschedule cpu0 A\nassert A.mm == @A, @A.users == 1\n"
FAILS = "spawn A\nassert @A.users == 2\nassert @A.count == 1\n"          # one of two assertions fails
REFUSED = "spawn A\nexit A\nassert @A.users == 1\n"                       # A is not running
VIOLATES = "spawn A\nmmput @A\n"                                          # unbalanced mmput
BROKEN = "spawn\nschedule cpu0 B\n"                                       # a syntax error
UNRESOLVED = "schedule cpu0 B\n"                                          # an unknown task
EXPECTED_FAIL = "expect fail\nspawn A\nexit A\n"                          # refused, as the header says


def mmscn(cmd, *args, cwd=None, env=None, **kw):
    e = dict(os.environ)
    e.pop("NO_COLOR", None)
    e.update(env or {})
    return subprocess.run(cmd + [str(a) for a in args], cwd=cwd, env=e, capture_output=True, text=True,
                          timeout=120, **kw)


@pytest.fixture
def write(tmp_path):
    def write(name, text):
        p = tmp_path / name
        p.write_text(text)
        return p
    return write


def no_traceback(p):
    assert "Traceback" not in p.stdout and "Traceback" not in p.stderr
    assert "Exception ignored" not in p.stderr


# ---- --version, --help, the command line itself ---------------------------------

def test_version(mmscn_cmd):
    p = mmscn(mmscn_cmd, "--version")
    assert (p.returncode, p.stdout, p.stderr) == (0, f"mmscn {__version__}\n", "")


def test_help_lists_commands_and_exit_status(mmscn_cmd):
    p = mmscn(mmscn_cmd, "--help")
    assert p.returncode == 0 and p.stderr == ""
    for word in ("run", "check", "exit status", " 70 "):
        assert word in " ".join(p.stdout.split()), word
    for sub in ("run", "check"):
        h = mmscn(mmscn_cmd, sub, "--help")
        assert h.returncode == 0 and "FILE" in h.stdout


@pytest.mark.parametrize("args", [[], ["run"], ["check"], ["frobnicate"], ["run", "--frobnicate", "x.mmscn"]])
def test_bad_command_lines_exit_2(mmscn_cmd, args):
    p = mmscn(mmscn_cmd, *args)
    assert p.returncode == 2
    assert "usage: mmscn" in p.stdout + p.stderr
    no_traceback(p)


@pytest.mark.parametrize("args, usage", [
    (["explore", "a.mmscn", "b.mmscn"], "usage: mmscn explore"),
    (["run", "x.mmscn", "--frobnicate"], "usage: mmscn run"),
    (["check", "--json", "x.mmscn"], "usage: mmscn check"),
    (["--frobnicate"], "usage: mmscn [-h]"),
])
def test_surplus_arguments_show_the_commands_own_usage(mmscn_cmd, args, usage):
    p = mmscn(mmscn_cmd, *args)
    assert p.returncode == 2
    assert usage in p.stderr and "unrecognized arguments" in p.stderr, p.stderr


# ---- exit codes ------------------------------------------------------------------------

@pytest.mark.parametrize("text, run_status, check_status", [
    (PASSES, 0, 0), (FAILS, 1, 0), (REFUSED, 1, 0), (VIOLATES, 1, 0),
    (BROKEN, 2, 2), (UNRESOLVED, 2, 2), (EXPECTED_FAIL, 0, 0),
])
def test_exit_status(mmscn_cmd, write, text, run_status, check_status):
    f = write("s.mmscn", text)
    r = mmscn(mmscn_cmd, "run", f)
    c = mmscn(mmscn_cmd, "check", f)
    assert (r.returncode, c.returncode) == (run_status, check_status), r.stdout + r.stderr
    no_traceback(r)
    no_traceback(c)
    if check_status == 0:
        assert c.stdout.startswith(f"{f}: ok (") and c.stderr == ""
    else:
        assert c.stdout == "" and c.stderr.startswith(f"{f}:")


def test_run_trace_names_kernel_functions_and_counters(mmscn_cmd):
    p = mmscn(mmscn_cmd, "run", ZOMBIE)
    assert p.returncode == 0 and p.stderr == ""
    out = p.stdout
    for word in ("copy_process", "context_switch", "mmgrab_lazy_tlb", "exit_mm", "__mmput", "__mmdrop",
                 "count 1 -> 2", "users 1 -> 0"):
        assert word in out, word
    assert out.rstrip().splitlines()[-2].startswith("passed:")


# ---- --json -----------------------------------------------------------------------------

DOCUMENTED_KEYS = {"passed", "failed", "steps", "failures", "assertions", "cost", "state"}


def test_json_is_valid_with_the_documented_keys(mmscn_cmd):
    p = mmscn(mmscn_cmd, "run", "--json", ZOMBIE)
    assert p.returncode == 0 and p.stderr == ""
    d = json.loads(p.stdout)
    assert DOCUMENTED_KEYS <= set(d)
    assert d["passed"] is True and d["failed"] is False and d["failures"] == []
    assert d["assertions"] == 12
    assert set(d["cost"]) == set(COST_NAMES) | {"atomics"}
    for step in d["steps"]:
        assert {"line", "column", "statement", "status", "events"} <= set(step)
        for ev in step["events"]:
            assert ev["kind"] in ("op", "refcount")
    spawn = d["steps"][0]
    assert spawn["statement"] == "spawn A"
    assert {"kind": "refcount", "mm": "@A", "function": "mm_init", "counter": "users", "old": 0, "new": 1} \
        in spawn["events"]
    mms = {m["name"]: m for m in d["state"]["mms"]}
    assert (mms["@A"]["users"], mms["@A"]["count"], mms["@A"]["state"]) == (0, 0, "freed")
    assert {c["cpu"] for c in d["state"]["cpus"]} == {"cpu0", "cpu1"}
    assert ESC not in p.stdout


def test_json_of_a_failure_and_of_several_files(mmscn_cmd, write):
    bad = write("bad.mmscn", FAILS)
    p = mmscn(mmscn_cmd, "run", "--json", ZOMBIE, bad)
    assert p.returncode == 1
    docs = json.loads(p.stdout)
    assert isinstance(docs, list) and [d["passed"] for d in docs] == [True, False]
    [failure] = docs[1]["failures"]
    assert failure == {"file": str(bad), "line": 2, "column": 8, "severity": "failure",
                       "message": "assertion failed: @A.users == 2: actual 1"}


def test_json_with_an_unparsable_file(mmscn_cmd, write):
    """The parse error goes to stderr; stdout stays valid JSON for the files that ran."""
    broken = write("broken.mmscn", BROKEN)
    p = mmscn(mmscn_cmd, "run", "--json", ZOMBIE, broken)
    assert p.returncode == 2
    assert json.loads(p.stdout)["passed"] is True
    assert p.stderr.startswith(f"{broken}:1:6: error: ")


# ---- --quiet --------------------------------------------------------------------------------

def test_quiet_prints_only_failures(mmscn_cmd, write):
    ok = mmscn(mmscn_cmd, "run", "--quiet", ZOMBIE)
    assert (ok.returncode, ok.stdout, ok.stderr) == (0, "", "")
    bad = write("bad.mmscn", FAILS)
    p = mmscn(mmscn_cmd, "run", "-q", ZOMBIE, bad)
    assert p.returncode == 1 and p.stderr == ""
    assert p.stdout == (f"{bad}:2:8: failure: assertion failed: @A.users == 2: actual 1\n"
                        f"    2 | assert @A.users == 2\n"
                        f"      |        ^\n"
                        f"{bad}: FAILED: 1 statement, 1/2 assertions held, 1 failure\n")
    c = mmscn(mmscn_cmd, "check", "-q", ZOMBIE, bad)
    assert (c.returncode, c.stdout, c.stderr) == (0, "", "")


def test_quiet_reports_a_scenario_that_holds_against_expect_fail(mmscn_cmd, write):
    f = write("f.mmscn", "expect fail\nspawn A\n")
    p = mmscn(mmscn_cmd, "run", "-q", f)
    assert p.returncode == 1
    assert p.stdout == f"{f}: PASSED, but the header says `expect fail`: 1 statement, 0/0 assertions held\n"


# ---- several files, missing files ---------------------------------------------------------------

def test_several_files_report_each_and_exit_with_the_worst(mmscn_cmd, write):
    good, bad, broken = write("good.mmscn", PASSES), write("bad.mmscn", REFUSED), write("broken.mmscn", BROKEN)
    r = mmscn(mmscn_cmd, "run", good, bad)
    assert r.returncode == 1
    assert r.stdout.index(f"{good} (arch generic") < r.stdout.index(f"{bad} (arch generic")
    assert f"{bad}:2:1: error: A is not running" in r.stdout
    r = mmscn(mmscn_cmd, "run", broken, good, bad)
    assert r.returncode == 2
    assert f"{good} (arch generic" in r.stdout and f"{bad}:2:1: error:" in r.stdout
    assert f"{broken}: 1 error" in r.stderr
    c = mmscn(mmscn_cmd, "check", good, broken, bad)
    assert c.returncode == 2
    assert c.stdout.splitlines() == [f"{good}: ok (2 statements, 1 assertion, arch generic, 1 CPU)",
                                     f"{bad}: ok (2 statements, 1 assertion, arch generic, 1 CPU)"]


@pytest.mark.parametrize("command", ["run", "check"])
def test_missing_file_and_directory(mmscn_cmd, tmp_path, write, command):
    good = write("good.mmscn", PASSES)
    p = mmscn(mmscn_cmd, command, tmp_path / "nope.mmscn", tmp_path, good)
    assert p.returncode == 2
    no_traceback(p)
    assert p.stderr.splitlines() == [
        f"mmscn: {tmp_path / 'nope.mmscn'}: cannot read: No such file or directory",
        f"mmscn: {tmp_path}: is a directory, not a scenario file"]
    assert str(good) in p.stdout      # the readable file still ran


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file(mmscn_cmd, write):
    f = write("secret.mmscn", PASSES)
    f.chmod(0)
    p = mmscn(mmscn_cmd, "check", f)
    assert p.returncode == 2
    assert p.stderr == f"mmscn: {f}: cannot read: Permission denied\n"


# ---- colour ---------------------------------------------------------------------------------------

def run_on_pty(cmd, args, env):
    """Run with stdout and stderr on a pseudo-terminal; return (status, everything it printed)."""
    master, slave = pty.openpty()
    e = dict(os.environ)
    e.pop("NO_COLOR", None)
    e["TERM"] = "xterm"
    e.update(env)
    proc = subprocess.Popen(cmd + [str(a) for a in args], stdin=subprocess.DEVNULL, stdout=slave, stderr=slave,
                            env=e, close_fds=True)
    os.close(slave)
    out = b""
    while True:
        ready, _, _ = select.select([master], [], [], 60)
        if not ready:
            break
        try:
            chunk = os.read(master, 65536)
        except OSError:        # EIO: the child closed its side
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    return proc.wait(timeout=60), out.decode("utf-8", "replace")


@pytest.mark.parametrize("command, text", [("run", FAILS), ("check", BROKEN)])
def test_colour_only_on_a_terminal(mmscn_cmd, write, command, text):
    f = write("s.mmscn", text)
    status, out = run_on_pty(mmscn_cmd, [command, f], {})
    assert status in (1, 2) and ESC in out and "Traceback" not in out
    for env in ({"NO_COLOR": "1"}, {"NO_COLOR": ""}, {"TERM": "dumb"}):
        status, plain = run_on_pty(mmscn_cmd, [command, f], env)
        assert status in (1, 2) and ESC not in plain, env
        assert f"{f}:{'2:8' if command == 'run' else '1:6'}: " in plain
    piped = mmscn(mmscn_cmd, command, f)
    assert ESC not in piped.stdout + piped.stderr


def test_json_is_never_coloured(mmscn_cmd):
    status, out = run_on_pty(mmscn_cmd, ["run", "--json", ZOMBIE], {})
    assert status == 0 and ESC not in out
    json.loads(out)


# ---- --arch ---------------------------------------------------------------------------------------

def test_arch_override(mmscn_cmd, write):
    f = write("a.mmscn", "arch generic\nspawn A\nspawn kthread k\nschedule cpu0 k\nuse_mm k @A\n")
    assert mmscn(mmscn_cmd, "run", f).returncode == 0
    p = mmscn(mmscn_cmd, "run", "--arch", "linux-2.3", f)
    assert p.returncode == 1
    assert p.stdout.startswith(f"{f} (arch linux-2.3, 1 CPU)")
    assert "kthread_use_mm does not exist in linux-2.3" in p.stdout
    j = json.loads(mmscn(mmscn_cmd, "run", "--json", "--arch", "linux-2.3", f).stdout)
    assert j["arch"] == "linux-2.3" and j["passed"] is False


@pytest.mark.parametrize("arch", policies.builtin_names())
def test_arch_override_accepts_every_builtin_policy(mmscn_cmd, arch):
    p = mmscn(mmscn_cmd, "run", "-q", "--arch", arch, ROOT / "examples" / "two_counters.mmscn")
    no_traceback(p)
    assert p.returncode in (0, 1)


def test_unknown_arch_option(mmscn_cmd):
    p = mmscn(mmscn_cmd, "run", "--arch", "sparc", ZOMBIE)
    assert p.returncode == 2 and p.stdout == ""
    no_traceback(p)
    assert p.stderr == f"mmscn: unknown architecture `sparc`; known: {', '.join(policies.names())}\n"


# ---- broken pipe, internal errors -------------------------------------------------------------------

def test_broken_pipe_exits_quietly(mmscn_cmd, tmp_path):
    """`mmscn run big.mmscn | head -1`: the reader goes away, mmscn stops without a traceback,
    with 141 (128 + SIGPIPE): the run was cut short, so it has no verdict to report."""
    big = tmp_path / "big.mmscn"
    big.write_text("cpus 2\n" + "".join(f"spawn T{i}\nschedule cpu0 T{i}\nexit T{i}\nschedule cpu0 idle\n"
                                         for i in range(5000)))
    e = dict(os.environ, NO_COLOR="1")
    proc = subprocess.Popen(mmscn_cmd + ["run", str(big)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=e)
    first = proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read().decode()
    status = proc.wait(timeout=120)
    assert first.startswith(str(big).encode())
    assert err == ""
    assert status == 141
    sh = subprocess.run(["sh", "-c", f"'{mmscn_cmd[-1]}' run '{big}' | head -1"] if len(mmscn_cmd) == 1 else
                        ["sh", "-c", f"'{sys.executable}' -m mmscn run '{big}' | head -1"],
                        capture_output=True, text=True, env=e, timeout=120)
    assert sh.stdout.startswith(str(big)) and sh.stderr == ""


INTERNAL = """
import sys
import mmscn.cli as cli
def boom(args):
    raise RuntimeError("boom")
cli.cmd_check = boom
sys.exit(cli.main(["check", "x.mmscn"]))
"""


def test_internal_error_is_one_line_and_exit_70(tmp_path):
    p = subprocess.run([sys.executable, "-c", INTERNAL], capture_output=True, text=True, cwd=tmp_path,
                       env={k: v for k, v in os.environ.items() if k != "MMSCN_DEBUG"}, timeout=120)
    assert p.returncode == 70
    assert p.stderr == "mmscn: internal error: RuntimeError: boom; please report it with the scenario\n"
    assert p.stdout == ""
    debug = subprocess.run([sys.executable, "-c", INTERNAL], capture_output=True, text=True, cwd=tmp_path,
                           env=dict(os.environ, MMSCN_DEBUG="1"), timeout=120)
    assert debug.returncode == 1 and "Traceback" in debug.stderr and "RuntimeError: boom" in debug.stderr



@pytest.mark.parametrize("line, want", [
    ('expect error "a;b # c}"  # why', 'expect error "a;b # c}"'),
    ("assert @A.cpumask == {cpu0, cpu1}; spawn B", "assert @A.cpumask == {cpu0, cpu1}"),
    ("  exit A   # gone", "exit A"),
    ("schedule A }", "schedule A"),          # the `}` closing a one-line block
])
def test_statement_as_written_ends_at_the_right_character(line, want):
    # the trace and explore's witnesses quote each statement as written: a `;`,
    # `#` or `}` inside a string or a CPU set does not end it
    from types import SimpleNamespace
    from mmscn.interpreter.report import statement_text
    st = SimpleNamespace(line=1, col=len(line) - len(line.lstrip()) + 1)
    assert statement_text([line], st) == want


ONLY_ITS_MODULE = """
import sys
import mmscn.cli as cli
status = cli.main(["run", "--quiet", "a.mmscn"])
print(sorted(m for m in ("mmscn.explore", "mmscn.suite", "mmscn.compare", "mmscn.traces.record",
                         "mmscn.traces.validate", "mmscn.traces.importer") if m in sys.modules), status)
"""


def test_run_imports_no_other_commands_module(tmp_path):
    # `mmscn run` builds only its own options, and imports the trace importer only for a trace:
    # importing every command's module cost its start-up
    (tmp_path / "a.mmscn").write_text("spawn A\nschedule cpu0 A\n")
    p = subprocess.run([sys.executable, "-c", ONLY_ITS_MODULE], capture_output=True, text=True, cwd=tmp_path,
                       timeout=120)
    assert (p.stdout, p.stderr) == ("[] 0\n", "")
    explore = subprocess.run([sys.executable, "-m", "mmscn", "explore", "--help"], capture_output=True, text=True,
                             cwd=tmp_path, timeout=120)
    assert "--no-por" in explore.stdout     # a command's own options are still there when it runs
