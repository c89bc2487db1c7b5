"""Hostile and careless files and terminals (issue 12): safe writes, safe reads, one sanitiser, closed pipes.

Every file mmscn writes goes through mmscn.dsl.files.write_file (never through a
symlink, never over a file without --force, atomically); every scenario is read
by files.read_source (regular files only, capped); everything printed from a
scenario or a path passes diagnostics.printable().
"""
import io
import json
import os
import stat
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from mmscn.dsl import files
from mmscn.dsl.diagnostics import printable
from mmscn.interactive import Session

from test_cli import mmscn, run_on_pty

# Blocks whose round robin refuses (exit of a task another CPU runs): run fails, explore finds a witness.
RACE = """\
cpus 2
spawn A
spawn B
cpu0 {
  schedule A
  exit A
}
cpu1 {
  schedule B
  expect error "not running"
  schedule B
}
"""
HOSTILE_TITLE = 'scenario "t\x1b]0;pwned\x07 \x1b[31mred"\n'
HOSTILE_NAME = "evil\x1b]0;pwned\x07\x1b[31m.mmscn"
HOSTILE = HOSTILE_TITLE + RACE.replace('"not running"', '"x\x1b]0;pwned\x07\x1b[31my"')


def no_raw_controls(*texts):
    for t in texts:
        assert "\x1b" not in t and "\x07" not in t, repr(t)


# ======================================================================= writing
@pytest.fixture
def race(tmp_path):
    f = tmp_path / "race.mmscn"
    f.write_text(RACE)
    return f


def test_witness_does_not_replace_an_existing_file_without_force(mmscn_cmd, race, tmp_path):
    out = tmp_path / "w.mmscn"
    out.write_text("mine\n")
    p = mmscn(mmscn_cmd, "explore", race, "--witness", out)
    assert (p.returncode, p.stdout) == (2, "")
    assert p.stderr == f"mmscn explore: {out}: exists; pass --force to replace it\n"
    assert out.read_text() == "mine\n"
    p = mmscn(mmscn_cmd, "explore", race, "--witness", out, "--force")
    assert p.returncode == 1, p.stderr          # every interleaving fails: a witness
    assert out.read_text().startswith("# Witness written by `mmscn explore`")


def test_witness_never_goes_through_a_symlink(mmscn_cmd, race, tmp_path):
    target = tmp_path / "elsewhere" / "created.mmscn"
    dangling = tmp_path / "dangling.mmscn"
    dangling.symlink_to(target)
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    link = tmp_path / "link.mmscn"
    link.symlink_to(victim)
    for path in (dangling, link):
        p = mmscn(mmscn_cmd, "explore", race, "--witness", path, "--force")
        assert p.returncode == 2
        assert p.stderr == f"mmscn explore: {path}: is a symlink; refusing to write through a symlink\n"
    assert not target.exists() and not target.parent.exists()
    assert victim.read_text() == "precious\n"


def test_witness_never_replaces_its_own_scenario(mmscn_cmd, race):
    p = mmscn(mmscn_cmd, "explore", race, "--witness", race, "--force")
    assert p.returncode == 2
    assert p.stderr == f"mmscn explore: {race}: is the scenario file itself; refusing to replace it\n"
    assert race.read_text() == RACE


def test_the_witness_of_a_file_whose_name_has_a_newline_replays(mmscn_cmd, tmp_path):
    # no title: the witness's title and comment quote the file name
    f = tmp_path / "two\nlines.mmscn"
    f.write_text(RACE)
    w = tmp_path / "w.mmscn"
    p = mmscn(mmscn_cmd, "explore", f, "--witness", w)
    assert p.returncode == 1, p.stderr
    assert w.read_text().splitlines()[0].endswith("two?lines.mmscn: an interleaving of its")
    p = mmscn(mmscn_cmd, "run", w)
    assert p.returncode == 0, p.stdout + p.stderr       # `expect fail`: the replayed failure is the pass


def test_write_file_is_atomic_and_keeps_modes(tmp_path):
    new = tmp_path / "new.txt"
    old = os.umask(0o027)
    try:
        files.write_file(str(new), "one\n")
    finally:
        os.umask(old)
    assert new.read_text() == "one\n" and stat.S_IMODE(new.stat().st_mode) == 0o640
    new.chmod(0o600)
    with pytest.raises(files.Unwritable, match="exists; pass --force to replace it"):
        files.write_file(str(new), "two\n")
    files.write_file(str(new), b"two\n", force=True)
    assert new.read_text() == "two\n" and stat.S_IMODE(new.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new.txt"]      # no temporary file left
    with pytest.raises(files.Unwritable, match="is a directory"):
        files.write_file(str(tmp_path), "x", force=True)
    with pytest.raises(files.Unwritable, match=r"^.*/x\?y: cannot write: No such file or directory$"):
        files.write_file(str(tmp_path / "nowhere" / "x\ny"), "x")


def test_repl_save_asks_for_a_bang_to_replace_a_file(tmp_path):
    out = io.StringIO()
    s = Session(out)
    f = tmp_path / "s.mmscn"
    f.write_text("mine\n")
    assert s.feed("spawn A") and not s.feed(f":save {f}")
    assert f"error: {f}: exists; `:save! FILE` replaces it" in out.getvalue()
    assert f.read_text() == "mine\n"
    assert s.feed(f":save! {f}")
    assert "spawn A" in f.read_text()
    link = tmp_path / "link.mmscn"
    link.symlink_to(tmp_path / "target.mmscn")
    assert not s.feed(f":save! {link}")
    assert f"error: {link}: is a symlink; refusing to write through a symlink" in out.getvalue()
    assert not (tmp_path / "target.mmscn").exists()
    assert "`:save! FILE` replaces an existing file" in s.completions(":sa")[0][1]


@pytest.fixture
def suite_dir(tmp_path):
    d = tmp_path / "suite"
    d.mkdir()
    (d / "a.mmscn").write_text("spawn A\nschedule cpu0 A\n")
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    return d


def test_update_replaces_goldens_but_never_through_a_symlink(mmscn_cmd, suite_dir, tmp_path):
    p = mmscn(mmscn_cmd, "test", "--update", "suite", cwd=tmp_path)
    assert p.returncode == 0, p.stdout + p.stderr
    golden = suite_dir / "a.mmscn.trace"
    golden.write_text("old\n")
    p = mmscn(mmscn_cmd, "test", "--update", "suite", cwd=tmp_path)       # goldens need no --force
    assert p.returncode == 0 and golden.read_text().startswith("a.mmscn (arch generic")
    outside = tmp_path / "outside.txt"
    outside.write_text("precious\n")
    golden.unlink()
    golden.symlink_to(outside)
    p = mmscn(mmscn_cmd, "test", "--update", "suite", cwd=tmp_path)
    assert p.returncode == 2
    assert ("FAIL suite/a.mmscn: cannot write the golden trace suite/a.mmscn.trace: is a symlink; "
            "refusing to write through a symlink") in p.stdout
    assert outside.read_text() == "precious\n"


def test_update_writes_goldens_only_inside_the_golden_dir(mmscn_cmd, suite_dir, tmp_path):
    away = tmp_path / "away"
    away.mkdir()
    (tmp_path / "gold").mkdir()
    (tmp_path / "gold" / "suite").symlink_to(away)      # a folder of the golden dir that is elsewhere
    p = mmscn(mmscn_cmd, "test", "--update", "--golden-dir", "gold", "suite", cwd=tmp_path)
    assert p.returncode == 2, p.stdout
    assert ("FAIL suite/a.mmscn: cannot write the golden trace gold/suite/a.mmscn.trace: resolves outside "
            "gold; refusing to write there") in p.stdout
    assert not list(away.iterdir())


def test_junit_xml_is_a_new_file_unless_forced(mmscn_cmd, suite_dir, tmp_path):
    xml = tmp_path / "r.xml"
    xml.write_text("keep\n")
    p = mmscn(mmscn_cmd, "test", "suite", "--junit-xml", "r.xml", cwd=tmp_path)
    assert (p.returncode, p.stdout, p.stderr) == (2, "", "mmscn test: r.xml: exists; pass --force to replace it\n")
    assert xml.read_text() == "keep\n"
    p = mmscn(mmscn_cmd, "test", "suite", "--junit-xml", "r.xml", "--force", cwd=tmp_path)
    assert p.returncode == 0 and ET.parse(xml).getroot().tag == "testsuites"
    (tmp_path / "l.xml").symlink_to(tmp_path / "made.xml")
    p = mmscn(mmscn_cmd, "test", "suite", "--junit-xml", "l.xml", "--force", cwd=tmp_path)
    assert p.returncode == 2 and "l.xml: is a symlink; refusing to write through a symlink" in p.stderr
    assert not (tmp_path / "made.xml").exists()


# ======================================================================= reading
def test_check_refuses_devices_fifos_and_huge_files(mmscn_cmd, tmp_path):
    p = mmscn(mmscn_cmd, "check", "/dev/zero")
    assert (p.returncode, p.stderr) == (2, "mmscn: /dev/zero: is a character device, not a scenario file\n")
    fifo = tmp_path / "f.mmscn"
    os.mkfifo(fifo)
    p = mmscn(mmscn_cmd, "check", fifo)            # no writer: an open without O_NONBLOCK would wait forever
    assert (p.returncode, p.stderr) == (2, f"mmscn: {fifo}: is a FIFO (named pipe), not a scenario file\n")
    big = tmp_path / "big.mmscn"
    with open(big, "wb") as fh:
        fh.truncate(files.MAX_SOURCE_BYTES + 1)    # sparse: costs no disk
    p = mmscn(mmscn_cmd, "check", big)
    assert (p.returncode, p.stderr) == (2, f"mmscn: {big}: is larger than 64 MiB, the most a scenario file may be\n")


@pytest.mark.skipif(not os.path.exists("/proc/self/maps"), reason="needs Linux's /proc")
def test_read_source_stops_at_the_cap_where_the_size_says_nothing(monkeypatch):
    monkeypatch.setattr(files, "MAX_SOURCE_BYTES", 100)
    assert os.stat("/proc/self/maps").st_size == 0         # a regular file that says it is empty
    with pytest.raises(files.NotASource, match="larger than"):
        files.read_source("/proc/self/maps")


def test_suite_and_repl_refuse_a_fifo_without_blocking(mmscn_cmd, suite_dir, tmp_path):
    os.mkfifo(suite_dir / "b.mmscn")
    p = mmscn(mmscn_cmd, "test", "suite", cwd=tmp_path)
    assert p.returncode == 1
    assert "FAIL suite/b.mmscn: is a FIFO (named pipe), not a scenario file" in p.stdout
    out = io.StringIO()
    s = Session(out)
    assert not s.feed(f":load {suite_dir / 'b.mmscn'}")
    assert "is a FIFO (named pipe), not a scenario file" in out.getvalue()


# ======================================================================= one sanitiser
def test_printable_keeps_columns_and_lines():
    assert printable("a\x1b]0;x\x07b\x9bc\u202ed\te") == "a?]0;x?b?c?d\te"
    assert printable("a\nb") == "a?b" and printable("a\nb\r", lines=True) == "a\nb?"
    assert printable("spawn A") == "spawn A" and printable("é ✓") == "é ✓"


@pytest.fixture
def hostile(tmp_path):
    f = tmp_path / HOSTILE_NAME
    f.write_text(HOSTILE)
    return f


@pytest.mark.parametrize("command", [["run"], ["run", "-q"], ["check"], ["explore"], ["explore", "-q"],
                                     ["compare"], ["test"]])
def test_nothing_from_a_scenario_reaches_the_terminal_raw(mmscn_cmd, hostile, command):
    p = mmscn(mmscn_cmd, *command, hostile)
    assert p.returncode in (0, 1), p.stderr
    no_raw_controls(p.stdout, p.stderr)
    assert "evil?]0;pwned??[31m.mmscn" in p.stdout + p.stderr


def test_errors_about_a_hostile_file_are_sanitised(mmscn_cmd, tmp_path):
    f = tmp_path / HOSTILE_NAME
    f.write_text(HOSTILE_TITLE + 'spawn A\nexpect error "\x1b[31m"\nschedule cpu0 nobody\n')
    for command in ("check", "run", "explore", "compare", "test"):
        p = mmscn(mmscn_cmd, command, f)
        assert p.returncode in (1, 2), (command, p.stderr)
        no_raw_controls(p.stdout, p.stderr)
    p = mmscn(mmscn_cmd, "run", tmp_path / "\x1b[31mmissing.mmscn")
    assert p.returncode == 2 and "?[31mmissing.mmscn: cannot read" in p.stderr
    no_raw_controls(p.stderr)


def test_colour_on_a_terminal_does_not_let_the_scenario_retitle_it(mmscn_cmd, hostile):
    for command in ("run", "explore"):
        status, out = run_on_pty(mmscn_cmd, [command, hostile], {})
        assert status in (0, 1) and "\x1b[1m" in out         # colour is on
        assert "\x07" not in out and "\x1b]" not in out and "?[31mred" in out


def test_json_keeps_the_exact_text_escaped(mmscn_cmd, hostile):
    for command in ("run", "explore", "compare"):
        p = mmscn(mmscn_cmd, command, "--json", hostile)
        no_raw_controls(p.stdout, p.stderr)
        doc = json.loads(p.stdout)
        assert doc["title"] == "t\x1b]0;pwned\x07 \x1b[31mred" and doc["file"] == str(hostile)


def test_junit_xml_carries_no_control_characters(mmscn_cmd, hostile, tmp_path):
    p = mmscn(mmscn_cmd, "test", hostile, "--junit-xml", tmp_path / "r.xml", "--update")
    no_raw_controls(p.stdout, p.stderr)
    raw = (tmp_path / "r.xml").read_text()
    no_raw_controls(raw)
    case = ET.fromstring(raw.encode()).find("testsuite/testcase")
    assert case.get("name") == printable(HOSTILE_NAME)
    golden = hostile.parent / (HOSTILE_NAME + ".trace")
    no_raw_controls(golden.read_text())         # the golden is the terminal's text too


def test_the_repl_prints_nothing_raw(mmscn_cmd, hostile, tmp_path):
    env = dict(os.environ, HOME=str(tmp_path), XDG_DATA_HOME=str(tmp_path))
    data = f":load {hostile}\n:trace\n:undo\nexpect error \"\x1b]0;x\x07\"\n:save {tmp_path / 'x'}\n".encode()
    p = subprocess.run(mmscn_cmd + ["repl"], input=data, capture_output=True, env=env, timeout=120)
    out = p.stdout.decode() + p.stderr.decode()
    assert "evil?]0;pwned??[31m.mmscn" in out and "undone" in out
    no_raw_controls(out)


def test_pytest_reports_a_hostile_scenario_sanitised(tmp_path):
    # (pytest itself prints the file's name in its node ids: the name here is plain)
    f = tmp_path / "hostile.mmscn"
    f.write_text(HOSTILE)
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    p = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", str(f)],
                       capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert p.returncode == 1 and "?[31my" in p.stdout, p.stdout
    no_raw_controls(p.stdout, p.stderr)


# ======================================================================= a closed pipe
def closed_pipe_run(cmd, *args, cwd=None):
    """Run with standard output a pipe whose reader has already gone: every write fails (EPIPE).
    Output is block-buffered, as by default on a pipe (not PYTHONUNBUFFERED), so a command
    whose output fits the buffer finishes before its first write fails."""
    r, w = os.pipe()
    os.close(r)
    env = dict(os.environ, NO_COLOR="1")
    env.pop("PYTHONUNBUFFERED", None)
    try:
        p = subprocess.run(cmd + [str(a) for a in args], stdout=w, stderr=subprocess.PIPE, text=True,
                           cwd=cwd, timeout=300, env=env)
    finally:
        os.close(w)
    assert "Traceback" not in p.stderr and "Exception ignored" not in p.stderr, p.stderr
    return p.returncode


def test_a_closed_pipe_never_turns_a_failure_into_success(mmscn_cmd, suite_dir, race, tmp_path):
    (suite_dir / "b.mmscn").write_text("spawn A\nassert @A.users == 2\n")
    # `mmscn test` prints a line per file as it goes: cut off at the first, it has no verdict
    assert closed_pipe_run(mmscn_cmd, "test", "suite", cwd=tmp_path) == 141
    # `mmscn run` with little output finishes first: its own status stands
    assert closed_pipe_run(mmscn_cmd, "run", race) == 1
    assert closed_pipe_run(mmscn_cmd, "run", suite_dir / "a.mmscn") == 0
    assert closed_pipe_run(mmscn_cmd, "check", "/dev/zero") == 2
