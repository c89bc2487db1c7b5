"""Kernel traces: import, replay, validate, record, price (docs/traces.md).

The committed traces are in tests/data/traces (tests/data/README.md says
what each one covers).  The live test records this machine's kernel with
`mmscn record` and validates it; it is skipped where perf cannot record,
and fails instead under CI=true.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mmscn.traces import is_trace, scenario_text
from mmscn.traces.importer import Trace, TraceError
from mmscn.traces.parse import FTRACE, PERF, TRACE_CMD, read_ps

DATA = Path(__file__).parent / "data" / "traces"
TRACES = sorted(p.name for p in DATA.glob("*.txt")) + ["public/trappy_trace_not_raw.txt"]
X86_TRACES = [t for t in TRACES if "trappy" not in t]


def mmscn(*args, cwd=None, env=None):
    return subprocess.run([sys.executable, "-m", "mmscn", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=env)


def statements(path, ps=None) -> list:
    return [r.code for r in Trace(str(path), ps).records() if r.kind == "stmt"]


def perf_trace(tmp_path, lines, name="t.txt") -> Path:
    """A perf script trace from (time, cpu, comm, pid, event, fields) rows."""
    out = []
    for t, cpu, comm, pid, event, fields in lines:
        out.append(f"{comm:>16} {pid:>6} [{cpu:03d}] {t:>12.6f}: {event + ':':>25} {fields}")
    p = tmp_path / name
    p.write_text("\n".join(out) + "\n")
    return p


def switch(prev, ppid, state, nxt, npid):
    return ("sched:sched_switch",
            f"prev_comm={prev} prev_pid={ppid} prev_prio=120 prev_state={state} ==> next_comm={nxt} "
            f"next_pid={npid} next_prio=120")


def cr3(pages=0):
    return ("tlb:tlb_flush", f"pages:{pages} reason:flush on task switch (0)")


def rows(*events):
    """Rows for perf_trace: (time, cpu, comm, pid, (event, fields))."""
    return [(t, cpu, comm, pid, *ev) for t, cpu, comm, pid, ev in events]


# ---- formats, told by content ---------------------------------------------------------

@pytest.mark.parametrize("name,fmt", [
    ("perf_basic.txt", PERF), ("edge_perf_lost.txt", PERF), ("ftrace_basic.txt", FTRACE),
    ("edge_trace_pipe_lost.txt", FTRACE), ("edge_late_cpu.txt", FTRACE), ("tracecmd_basic.txt", TRACE_CMD),
    ("edge_pid_reuse.txt", TRACE_CMD), ("public/trappy_trace_not_raw.txt", TRACE_CMD)])
def test_the_format_is_told_by_the_content(name, fmt, tmp_path):
    assert Trace(str(DATA / name)).fmt == fmt
    disguised = tmp_path / "looks_like.mmscn"       # the name says nothing
    shutil.copy(DATA / name, disguised)
    assert Trace(str(disguised)).fmt == fmt


def test_a_scenario_is_no_trace(tmp_path):
    sc = tmp_path / "trace.txt"
    sc.write_text("# tracer: in a comment\ncpus 2\nspawn A\nschedule cpu0 A\n")
    assert not is_trace(str(sc))
    assert scenario_text(str(sc)) is None
    assert mmscn("run", "-q", sc).returncode == 0
    r = mmscn("import", sc)
    assert r.returncode == 2 and "not a kernel trace" in r.stderr


def test_the_three_formats_import_to_the_same_statements():
    perf = statements(DATA / "perf_basic.txt", ps=os.devnull)
    assert perf == statements(DATA / "ftrace_basic.txt") == statements(DATA / "tracecmd_basic.txt")
    assert perf[:8] == [
        "spawn bash_100", "schedule cpu0 bash_100",      # alive before the trace, staged on cpu0
        "spawn bash_101",                               # fork without CLONE_VM: a fresh mm
        "schedule cpu1 bash_101",
        "exec bash_101",                                # at its CR3 write, before sched_process_exec
        "spawn thread ls_102 of bash_101",              # clone_flags 3d0f00 has CLONE_VM
        "schedule cpu0 ls_102",
        "exit ls_102",                                  # a thread: exit_mm at its last switch
    ]
    assert "spawn kthread kthreadd_103" in perf         # kthreadd has no mm: its child is a kernel thread
    assert perf.index("exit bash_101") < perf.index("schedule cpu1 idle")


# ---- every committed trace imports to a scenario that runs -------------------------------

@pytest.mark.parametrize("name", TRACES)
def test_every_trace_imports_to_a_scenario_that_runs(name, tmp_path):
    out = tmp_path / "t.mmscn"
    r = mmscn("import", DATA / name, "-o", out)
    assert r.returncode == 0, r.stderr
    assert "import summary:" in r.stderr
    assert out.read_text() == scenario_text(str(DATA / name))
    run = mmscn("run", "-q", out)
    assert run.returncode == 0, run.stdout + run.stderr
    assert mmscn("run", "-q", DATA / name).returncode == 0       # the trace directly


@pytest.mark.parametrize("name", TRACES)
@pytest.mark.parametrize("arch", ["x86", "powerpc", "linux-2.3"])
def test_the_streaming_replay_runs_what_mmscn_run_runs(name, arch):
    from mmscn.dsl.resolve import load
    from mmscn.interpreter.runner import Runner
    from mmscn.traces.replay import Replay
    tr = Trace(str(DATA / name))
    text = scenario_text(str(DATA / name))
    whole = Runner(load(text, "t"), text.split("\n"), arch, trace=False).run()
    rp = Replay(tr, arch)
    for rec in tr.records():
        if rec.kind == "stmt":
            assert rp.step(rec)
    assert rp.cost == whole.cost and not whole.failed
    assert rp.runner.result.steps == []         # nothing kept behind: memory flat in the trace's length


# ---- what an import never drops silently ---------------------------------------------------

def summary(name, ps=None) -> dict:
    tr = Trace(str(DATA / name), ps)
    for _ in tr.records():
        pass
    return tr.summary


def test_lost_events_are_counted():
    assert summary("edge_perf_lost.txt")["lost_markers"] == 1
    assert summary("edge_perf_lost.txt")["lost_events"] == 7
    assert summary("edge_trace_pipe_lost.txt")["lost_events"] == 42
    s = summary("edge_pid_reuse.txt")
    assert (s["lost_markers"], s["lost_events"]) == (1, 3)
    s = summary("edge_late_cpu.txt")            # `##### CPU 1 buffer started ####`
    assert s["lost_markers"] == 1


def test_a_task_switched_out_where_the_model_did_not_run_it_is_a_counted_fixup():
    s = summary("edge_perf_lost.txt")
    assert s["not_running"] == 1
    assert any("python3[160]" in n for n in s["notes"])
    assert "schedule cpu1 python3_160" in statements(DATA / "edge_perf_lost.txt")


def test_a_truncated_line_is_counted_with_its_line_number():
    s = summary("edge_truncated.txt")
    assert s["malformed"] == 1
    assert s["examples"][0][0] == 18


def test_lines_that_are_no_event_are_counted():
    s = summary("public/trappy_trace_not_raw.txt")
    assert s["unparsable"] == 2                 # the second lines of two bprint records
    assert [n for n, _ in s["examples"]] == [6, 8]
    assert s["unknown"] == {"bprint": 2}


def test_a_cpu_absent_at_the_start_is_staged_at_its_first_event():
    recs = [r for r in Trace(str(DATA / "edge_late_cpu.txt")).records() if r.kind == "stmt"]
    cpu1 = [r for r in recs if r.cpu == 1]
    assert cpu1[0].role == "stage" and cpu1[0].code == "schedule cpu1 python3_500"
    assert recs.index(cpu1[0]) > [r.code for r in recs].index("schedule cpu0 sshd_400")


def test_a_task_first_seen_mid_trace_is_spawned_where_it_appears():
    st = statements(DATA / "edge_late_cpu.txt")
    i = st.index("spawn sshd_400")
    assert st[i + 1] == "schedule cpu0 sshd_400"
    assert i > st.index("schedule cpu0 bash_100")


def test_pid_reuse_makes_a_new_task():
    st = statements(DATA / "edge_pid_reuse.txt")
    assert "spawn bash_300" in st and "spawn bash_300_2" in st
    assert st.index("exit bash_300") < st.index("spawn bash_300_2")
    assert summary("edge_pid_reuse.txt")["pid_reuse"] == 1


def test_perfs_pid_minus_one_is_the_dying_task(tmp_path):
    # perf prints -1 for a thread it can no longer read the pid of, at its last switch
    p = perf_trace(tmp_path, rows(
        (1.000100, 0, "sh", 10, switch("sh", 10, "S", "sh", 11)), (1.000101, 0, "sh", 10, cr3()),
        (1.000200, 0, "sh", 11, ("sched:sched_process_exit", "comm=sh pid=11 prio=120 group_dead=true")),
        (1.000300, 0, ":-1", -1, switch("sh", 11, "X", "sh", 10)), (1.000301, 0, ":-1", -1, cr3())))
    st = statements(p)
    assert st[-2:] == ["exit sh_11", "schedule cpu0 sh_10"]
    s = summary_of(p)
    assert s["not_running"] == 0 and s["malformed"] == 0


def summary_of(path) -> dict:
    tr = Trace(str(path))
    for _ in tr.records():
        pass
    return tr.summary


def test_a_task_preempted_in_do_exit_runs_on_as_a_kernel_thread(tmp_path):
    # sched_process_exit, preempted (R+) inside exit_mm's mmput, switched in again without an mm
    p = perf_trace(tmp_path, rows(
        (2.0001, 0, "py", 20, switch("py", 20, "R", "bash", 21)), (2.000101, 0, "py", 20, cr3()),
        (2.0002, 0, "bash", 21, ("sched:sched_process_exit", "comm=bash pid=21 prio=120 group_dead=true")),
        (2.0003, 0, "bash", 21, switch("bash", 21, "R+", "py", 20)), (2.000301, 0, "bash", 21, cr3(-1)),
        (2.0004, 0, "py", 20, switch("py", 20, "R", "bash", 21)),        # lazy: no CR3 write
        (2.0005, 0, "bash", 21, switch("bash", 21, "Z", "py", 20))))      # borrowed py's mm: none either
    st = statements(p)
    assert st[st.index("exit bash_21") + 1:] == ["schedule cpu0 py_20", "spawn kthread bash_exiting_21",
                                                 "schedule cpu0 bash_exiting_21", "exit bash_exiting_21",
                                                 "schedule cpu0 py_20"]
    r = mmscn("validate", "--json", p)
    assert r.returncode == 0, r.stdout
    assert json.loads(r.stdout)["agreement"] == 100.0


def test_two_cr3_writes_in_a_row_in_one_task_are_a_temporary_mm_not_an_exec(tmp_path):
    p = perf_trace(tmp_path, rows(
        (3.0001, 0, "perf", 30, switch("perf", 30, "S", "bash", 31)), (3.000101, 0, "perf", 30, cr3()),
        (3.0002, 0, "bash", 31, cr3(-1)), (3.0003, 0, "bash", 31, cr3(0)),           # text_poke
        (3.0004, 0, "bash", 31, cr3(-1)),                                               # exec_mmap
        (3.0005, 0, "bash", 31, ("sched:sched_process_exec", "filename=/bin/ls pid=31 old_pid=31"))))
    assert [s for s in statements(p) if s.startswith("exec")] == ["exec bash_31"]
    assert summary_of(p)["temporary_mm"] == 1


# ---- the ps snapshot ---------------------------------------------------------------------------

def test_the_ps_snapshot_formats():
    rec = read_ps(["TGID TID PPID FLAGS COMMAND", "1 1 0 0x00400100 init", "2 2 0 0x00208040 kthreadd",
                   "7 9 1 0x00400040 tokio worker", "8 8 2 0x00000040 user helper"])
    assert [rec[t].kthread for t in (1, 2, 9, 8)] == [False, True, False, False]    # PF_KTHREAD decides
    assert (rec[9].tgid, rec[9].comm) == (7, "tokio worker")
    ps = read_ps(["  PID  PPID F COMMAND", "    2     0 1 kthreadd", "   40     2 1 kworker/0:1-events",
                  "  300     1 4 bash"])
    assert [ps[t].kthread for t in (2, 40, 300)] == [True, True, False]             # F has no PF_KTHREAD
    lwp = read_ps(["  PID   LWP  PPID F COMMAND", "  500   500     1 0 python3", "  500   501     1 1 python3"])
    assert lwp[501].tgid == 500


def test_a_snapshot_beside_the_trace_is_picked_up():
    assert summary("perf_basic.txt")["tasks"] == {"ps": 2, "fork": 3}
    assert summary("perf_basic.txt", ps=os.devnull)["tasks"] == {"guess": 2, "fork": 3}


def test_threads_alive_before_the_trace_share_their_mm_by_the_snapshot(tmp_path):
    p = perf_trace(tmp_path, rows(
        (4.0001, 0, "java", 50, switch("java", 50, "S", "java", 51)),
        (4.0002, 0, "java", 51, switch("java", 51, "S", "java", 50))))
    (tmp_path / "t.txt.ps").write_text("TGID TID PPID FLAGS COMMAND\n50 50 1 0x00400040 java\n50 51 1 0x00400040 java\n")
    assert statements(p) == ["spawn java_50", "schedule cpu0 java_50", "spawn thread java_51 of java_50",
                             "schedule cpu0 java_51", "schedule cpu0 java_50"]


def test_a_bad_snapshot_is_reported_with_its_line(tmp_path):
    bad = tmp_path / "bad.ps"
    bad.write_text("TGID TID PPID FLAGS COMMAND\n1 x 0 0x0 init\n")
    r = mmscn("import", DATA / "perf_basic.txt", "--ps", bad)
    assert r.returncode == 2
    assert f"{bad}:2:1: error: expected numbers" in r.stderr
    assert "    2 | 1 x 0 0x0 init" in r.stderr
    r = mmscn("run", DATA / "perf_basic.txt", "--ps", tmp_path / "missing.ps")
    assert r.returncode == 2 and "cannot read" in r.stderr and "Traceback" not in r.stderr


# ---- validate ---------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["perf_basic.txt", "ftrace_basic.txt", "tracecmd_basic.txt", "edge_late_cpu.txt"])
def test_validate_agrees_on_the_synthetic_traces(name):
    r = mmscn("validate", DATA / name)
    assert r.returncode == 0, r.stdout
    assert "passed: 100.00%" in r.stdout


def test_validate_lists_and_explains_a_disagreement():
    r = mmscn("validate", DATA / "edge_use_mm.txt")
    assert r.returncode == 1
    assert "overall: 2/3 agree (66.67%)" in r.stdout
    assert "400.000300 cpu0" in r.stdout and "kworker/0:2[610] (I) -> qemu[620]" in r.stdout
    assert "kthread_use_mm" in r.stdout
    res = json.loads(mmscn("validate", "--json", DATA / "edge_use_mm.txt").stdout)
    (d,) = res["disagreements"]
    assert d["kernel"] == "the kernel wrote no CR3" and d["explained_by"] and res["unexplained"] == 0
    assert mmscn("validate", "--min-agreement", "66", DATA / "edge_use_mm.txt").returncode == 0
    assert mmscn("validate", "--min-agreement", "67", DATA / "edge_use_mm.txt").returncode == 1


def test_validate_needs_cr3_events():
    r = mmscn("validate", DATA / "public/trappy_trace_not_raw.txt")
    assert r.returncode == 2 and "no tlb:tlb_flush events" in r.stderr


@pytest.mark.parametrize("bad", ["150", "lots"])
def test_validate_refuses_a_bad_threshold(bad):
    r = mmscn("validate", "--min-agreement", bad, DATA / "perf_basic.txt")
    assert r.returncode == 2 and "--min-agreement" in r.stderr


def test_switches_whose_cr3_the_model_cannot_know_are_not_judged(tmp_path):
    p = perf_trace(tmp_path, rows(
        (5.0000, 0, "bash", 60, ("tlb:tlb_flush", "pages:1 reason:local MM shootdown (3)")),
        (5.0001, 0, "bash", 60, switch("bash", 60, "S", "kworker/0:1", 61)),
        (5.0003, 0, "kworker/0:1", 61, switch("kworker/0:1", 61, "I", "bash", 60)),     # agrees: no write
        (5.0004, 0, "bash", 60, switch("bash", 60, "S", "kworker/0:1", 61))))
    with open(p, "a") as f:     # events lost on cpu0: what it loaded meanwhile is unknown
        f.write(f"{'perf':>16} {99:>6} [000] {5.0005:>12.6f}: PERF_RECORD_LOST lost 3\n")
        f.write(f"{'kworker/0:1':>16} {61:>6} [000] {5.0006:>12.6f}: {'sched:sched_switch:':>25} "
                f"prev_comm=kworker/0:1 prev_pid=61 prev_prio=120 prev_state=I ==> next_comm=bash next_pid=60 "
                f"next_prio=120\n")
        f.write(f"{'kworker/0:1':>16} {61:>6} [000] {5.0007:>12.6f}: {'sched:sched_wakeup:':>25} comm=x pid=1\n")
    res = json.loads(mmscn("validate", "--json", p).stdout)
    assert res["judged"] == 2 and res["agreement"] == 100.0
    assert res["not_judged"] == {
        "the trace gives no verdict (it ends or loses events right after the sched_switch)": 1,  # 5.0004
        "the model cannot know lost events at 5.000500": 1}                                       # 5.0006
    res = json.loads(mmscn("validate", "--json", DATA / "perf_basic.txt").stdout)
    assert any("before the trace" in why for why in res["not_judged"])


# ---- compare: the price of lazy TLB on the trace ----------------------------------------------

def test_compare_prices_a_trace_per_policy():
    r = mmscn("compare", DATA / "perf_basic.txt")
    assert r.returncode == 0, r.stderr
    for row in ("lazy switches", "page-table loads", "mm_count atomics", "IPIs", "shootdowns",
                "longest as a zombie (ms):", "@bash_101.2"):
        assert row in r.stdout
    res = json.loads(mmscn("compare", "--json", "--arch", "x86,powerpc", DATA / "perf_basic.txt").stdout)
    x86, ppc = res["policies"]
    # `format` is the JSON's version (tests/test_json_schema.py); the trace's own is `trace_format`
    assert res["kind"] == "compare-trace" and res["trace_format"] == res["import"]["trace_format"] == "perf script"
    # on x86 ls's mm (exec made it @bash_101.2) outlives its exit (100.001010) until cpu1 switches to
    # bash (100.001300): idle1 borrowed it lazily in between
    assert x86["zombies"]["@bash_101.2"]["longest_s"] == pytest.approx(0.000290, abs=1e-9)
    assert ppc["zombies"] == {} and ppc["mm_count_atomics"] < x86["mm_count_atomics"]
    assert x86["shootdowns"] == ppc["shootdowns"] == 1
    assert x86["verdict"] == ppc["verdict"] == "passed"


# ---- record ----------------------------------------------------------------------------------

def test_record_says_clearly_when_perf_is_missing(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    env = dict(os.environ, PATH=str(bin_dir))
    r = subprocess.run([sys.executable, "-m", "mmscn", "record", "-o", tmp_path / "t.txt", "--", "true"],
                       capture_output=True, text=True, env=env)
    assert r.returncode == 2
    assert "perf is not installed" in r.stderr and "linux-perf" in r.stderr


def _perf_can_record(tmp) -> str:
    """Why perf cannot record the events here ("" when it can)."""
    perf = shutil.which("perf")
    if perf is None:
        return "perf is not installed (Debian: linux-perf)"
    from mmscn.traces.record import EVENTS, _tracefs_missing
    if _tracefs_missing():
        return f"this kernel lacks {', '.join(_tracefs_missing())}"
    args = [perf, "record", "-q", "-a", "-o", os.path.join(tmp, "probe.data")]
    for e in EVENTS:
        args += ["-e", e]
    r = subprocess.run(args + ["--", "true"], capture_output=True, text=True)
    if r.returncode != 0 or not os.path.exists(os.path.join(tmp, "probe.data")):
        return "perf cannot record tracepoints here: " + (r.stderr.strip().splitlines() or ["?"])[0]
    return ""


WORKLOAD = (
    "for i in 1 2 3 4 5; do /bin/true; ls / >/dev/null; done; "
    "(sleep 0.01 &); "
    f"{sys.executable} -c 'import threading; ts=[threading.Thread(target=sum, args=([1],)) for _ in range(4)]; "
    "[t.start() for t in ts]; [t.join() for t in ts]'; "
    "sh -c 'exec /bin/true'"
)


def test_live_recording_validates_on_this_kernel(tmp_path):
    why = _perf_can_record(str(tmp_path))
    if why:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true and {why}")
        pytest.skip(why)
    # Every disagreement must name the events that explain it (docs/traces.md, "Blind spots").  This
    # machine agrees 100% nearly always; a task the trace forks unseen (events in some tasks' context
    # never reach it here) is classified by the guess rule and can cost a few switches.
    # Under a loaded machine a switch whose events never reached the trace (perf reports no loss)
    # has been seen once in about 40 runs as one unexplained disagreement, and once (a full test run
    # on 2 cores) as two in 115: allow at most 1 in 100, and where a recording has more, record
    # once more (the workload's events are not the same twice; a fault of the model's is in both).
    first = None
    for attempt in range(2):
        out = tmp_path / f"live{attempt}.txt"
        r = mmscn("record", "-o", out, "--", "sh", "-c", WORKLOAD)
        assert r.returncode == 0, r.stderr
        assert Path(f"{out}.ps").read_text().startswith("TGID TID PPID FLAGS COMMAND\n")
        run = mmscn("run", "-q", out)
        assert run.returncode == 0, run.stdout + run.stderr
        res = json.loads(mmscn("validate", "--json", out).stdout)
        s = res["import"]
        assert s["forks"] >= 10 and s["execs"] >= 10 and s["exits"] >= 10 and s["tasks"].get("ps", 0) > 0
        assert res["judged"] >= 30
        if res["unexplained"] <= res["judged"] // 100:
            break
        first = first or res["disagreements"]
    assert res["unexplained"] <= res["judged"] // 100, (first, res["disagreements"])
    assert res["agreement"] >= 95.0, res["disagreements"]
    assert mmscn("validate", "--min-agreement", "95", out).returncode == 0


def test_a_trace_that_is_not_there_is_an_error_not_a_traceback(tmp_path):
    for cmd in (["import"], ["validate"], ["compare"], ["run"]):
        r = mmscn(*cmd, tmp_path / "nope.txt")
        assert r.returncode == 2 and "Traceback" not in r.stderr and "nope.txt" in r.stderr


def test_trace_error_renders_like_every_error():
    e = TraceError("expected numbers", "f.ps", 2, 3, "1 x 0")
    assert e.render().startswith("f.ps:2:3: error: expected numbers\n    2 | 1 x 0\n")


def test_the_replay_builds_the_statements_the_parser_builds():
    from mmscn.dsl.parser import parse_items
    from mmscn.traces.replay import Replay
    for name in TRACES:
        tr = Trace(str(DATA / name))
        rp = Replay(tr)
        for rec in tr.records():
            if rec.kind == "stmt":
                (parsed,) = parse_items("\n" * (rec.line - 1) + rec.text + "\n")
                assert rp.node(rec) == parsed, rec.text


def test_an_output_that_cannot_be_written_is_said_so(tmp_path):
    r = mmscn("import", DATA / "perf_basic.txt", "-o", tmp_path / "no" / "t.mmscn")
    assert r.returncode == 2 and "cannot write" in r.stderr
    if shutil.which("perf"):        # checked before perf runs
        r = mmscn("record", "-o", tmp_path / "no" / "t.txt", "--", "true")
        assert r.returncode == 2 and "cannot write" in r.stderr and "Traceback" not in r.stderr


def test_a_lazy_cpu_that_missed_a_flush_rewrites_cr3_with_the_same_page_tables(tmp_path):
    # cpu0 goes lazy on @app; app's thread flushes it on cpu1 (should_flush_tlb skips the lazy cpu0);
    # back in app, cpu0's tlb_gen is stale: CR3 rewritten (pages:-1) with app's own pgd
    events = [
        (6.0001, 0, "app", 70, switch("app", 70, "S", "kworker/0:1", 72)),
        (6.0001, 1, "app", 71, ("tlb:tlb_flush", "pages:1 reason:local MM shootdown (3)")),
        (6.0002, 1, "app", 71, ("tlb:tlb_flush", "pages:1 reason:remote IPI send (4)")),
        (6.0003, 0, "kworker/0:1", 72, switch("kworker/0:1", 72, "I", "app", 70)),
        (6.00031, 0, "kworker/0:1", 72, cr3(-1)),
        (6.0004, 0, "app", 70, switch("app", 70, "S", "app", 71)),
        (6.0005, 1, "app", 71, ("tlb:tlb_flush", "pages:1 reason:local MM shootdown (3)")),
    ]
    p = perf_trace(tmp_path, rows(*events))
    (tmp_path / "t.txt.ps").write_text("TGID TID PPID FLAGS COMMAND\n70 70 1 0x00400040 app\n70 71 1 0x00400040 app\n"
                                       "72 72 2 0x04208060 kworker/0:1\n")
    res = json.loads(mmscn("validate", "--json", p).stdout)
    assert res["tlb_gen_catchups"] == 1 and res["agreement"] == 100.0
    # without the flush in the trace the same write is a disagreement, a catch-up only "probably"
    p = perf_trace(tmp_path, rows(*[e for e in events if e[1] == 0]), name="u.txt")
    (tmp_path / "u.txt.ps").write_text((tmp_path / "t.txt.ps").read_text())
    res = json.loads(mmscn("validate", "--json", p).stdout)
    assert res["tlb_gen_catchups"] == 0 and res["unexplained"] == 1
    assert res["disagreements"][0]["explained_by"][0].startswith("probably a tlb_gen catch-up")


def test_a_thread_asleep_in_exit_mm_keeps_its_mm(tmp_path):
    # sched_process_exit, then asleep in D (exit_mm's mmap_read_lock, before current->mm = NULL):
    # switched in again it still has its mm, and the kernel loads it
    p = perf_trace(tmp_path, rows(
        (7.0001, 0, "py", 80, switch("py", 80, "R", "app", 71)), (7.00011, 0, "py", 80, cr3()),
        (7.0002, 0, "app", 71, ("sched:sched_process_exit", "comm=app pid=71 prio=120 group_dead=false")),
        (7.0003, 0, "app", 71, switch("app", 71, "D", "py", 80)), (7.00031, 0, "app", 71, cr3(-1)),
        (7.0004, 0, "py", 80, switch("py", 80, "R", "app", 71)), (7.00041, 0, "py", 80, cr3()),
        (7.0005, 0, "app", 71, switch("app", 71, "X", "py", 80)), (7.00051, 0, "app", 71, cr3())))
    (tmp_path / "t.txt.ps").write_text("TGID TID PPID FLAGS COMMAND\n70 70 1 0x00400040 app\n70 71 1 0x00400040 app\n"
                                       "80 80 1 0x00400040 py\n")
    assert statements(p)[-4:] == ["schedule cpu0 py_80", "schedule cpu0 app_71", "exit app_71",
                                  "schedule cpu0 py_80"]
    res = json.loads(mmscn("validate", "--json", p).stdout)
    assert res["agreement"] == 100.0 and res["judged"] == 4


# ---- what import and record write (dsl/files.py write_file) ----------------------------------

def test_import_never_writes_over_a_file_or_through_a_symlink(tmp_path):
    trace = str(DATA / "perf_basic.txt")
    out = tmp_path / "s.mmscn"
    out.write_text("mine\n")
    r = mmscn("import", trace, "-o", out)
    assert r.returncode == 2 and "exists; pass --force" in r.stderr and out.read_text() == "mine\n"
    target = tmp_path / "elsewhere.mmscn"
    link = tmp_path / "link.mmscn"
    link.symlink_to(target)                 # dangling: its target must never be created
    r = mmscn("import", trace, "-o", link)
    assert r.returncode == 2 and "symlink" in r.stderr and not target.exists()
    assert mmscn("import", trace, "-o", out, "--force").returncode == 0
    assert out.read_text().startswith(mmscn("import", trace).stdout[:200]) and "spawn" in out.read_text()


def test_record_refuses_a_symlinked_output_before_perf_runs(tmp_path):
    target = tmp_path / "elsewhere.txt"
    link = tmp_path / "t.txt"
    link.symlink_to(target)
    r = mmscn("record", "-o", link, "--", "true")
    assert r.returncode == 2 and "symlink" in r.stderr and not target.exists()
    assert not (tmp_path / "t.txt.ps").exists()
