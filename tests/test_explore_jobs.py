"""`mmscn explore --jobs N` (interpreter/explore/parallel.py): the partitioned search reports what
the one-process search reports (verdict, counts, shortest interleaving), and leaves no worker behind.
Also the invariant the counters-that-commute proof leans on: an mm freed while mm_users > 0."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from mmscn.dsl.resolve import load
from mmscn.interpreter import explore as X
from mmscn.interpreter import policies
from mmscn.interpreter.explore.parallel import ParallelExplorer
from mmscn.interpreter.runner import Runner

from conftest import EXAMPLES
from test_explore_commute import programs


def model_of(text, path="t.mmscn"):
    return X.Model(load(text, path, policies.KnownArches()), text.split("\n"))


def summary(res):
    st = res.stats
    return {"counts": (st.states, st.distinct, st.transitions, st.finals, st.deadlocks, st.interleavings, st.depth),
            "verdict": (res.holds, res.passed, res.complete, res.stop_reason, res.pruned, res.exists_count),
            "failure": None if res.failure is None else (res.failure.kind, res.failure.message, res.failure.line),
            "path": res.path, "exists_path": res.exists_path, "finals": sorted(map(repr, res.finals))}


def both(make, jobs=2, **kw):
    """The one-process search and the partitioned one, each on a model of its own."""
    one = X.Explorer(make(), **kw).run()
    many = ParallelExplorer(make(), jobs, **kw).run()
    return one, many


def same(make, jobs=2, **kw):
    one, many = both(make, jobs, **kw)
    assert many.stats.jobs == jobs
    a, b = summary(one), summary(many)
    if kw.get("all_finals"):    # row ids are each model's own: compare what the final states hold
        a["finals"] = sorted(map(repr, (X.final_fields(one.model, s) for s in one.finals)))
        b["finals"] = sorted(map(repr, (X.final_fields(many.model, s) for s in many.finals)))
    assert a == b
    return one


def quick_examples():
    out = []
    for p in sorted(EXAMPLES.rglob("*.mmscn")):
        text = p.read_text()
        if "granularity step" in text or "interrupt cpu" in text or "\nexpect fail without" in text:
            continue        # kernel steps: one process searches them (test below)
        out.append(p)
    return out


@pytest.mark.parametrize("path", quick_examples(), ids=lambda p: str(p.relative_to(EXAMPLES)))
def test_every_example_explores_the_same_with_two_workers(path):
    text = path.read_text()
    m = model_of(text, str(path))
    if m.prologue_failure is not None:
        return
    for por, symmetry in [(True, True), (False, False)]:
        same(lambda: model_of(text, str(path)), por=por, symmetry=symmetry)


def dense(ncpu: int, rounds: int) -> str:
    """benchmarks/explore_dense.py's family: every CPU borrows @P with kthread_use_mm and ends
    threads of P (3 CPUs x 2 rounds: 3,375 states without reductions, many levels and segments)."""
    pro, blocks = ["arch generic", f"cpus {ncpu}", "spawn P"], []
    for c in range(ncpu):
        body = []
        for r in range(rounds):
            pro += [f"spawn thread t{c}_{r} of P", f"spawn kthread k{c}_{r}", "mmget @P"]
            body += [f"schedule k{c}_{r}", f"use_mm k{c}_{r} @P", f"unuse_mm k{c}_{r}", "mmput @P",
                     f"schedule t{c}_{r}", f"exit t{c}_{r}", "schedule idle"]
        blocks.append(f"cpu{c} {{\n" + "".join(f"  {s}\n" for s in body) + "}")
    return "\n".join(pro + blocks) + "\n"


WIDE = dense(3, 2)


def test_a_search_of_many_segments_counts_the_same():
    one = same(lambda: model_of(WIDE), por=False, symmetry=False)
    assert one.stats.distinct > 2 * 1024 and one.failure is None


@pytest.mark.parametrize("jobs", [3])
def test_three_workers_count_the_same(jobs):
    same(lambda: model_of(WIDE), jobs=jobs, por=False, symmetry=False)


def test_max_states_stops_where_one_process_stops():
    one = same(lambda: model_of(WIDE), por=False, symmetry=False, max_states=1500)
    assert "--max-states" in one.stop_reason


def test_all_finals_and_compact_count_the_same():
    same(lambda: model_of(WIDE), por=False, symmetry=False, all_finals=True)
    one = same(lambda: model_of(WIDE), por=False, symmetry=False, compact=True)
    assert one.compact is not None and "--compact" in one.stop_reason


def test_symmetry_found_in_the_middle_of_the_search_merges_the_same_states():
    # looked for at the first bound check (1,024 states expanded) once 50 are stored, as
    # search.py would at 2,048: every worker takes the same image of an orbit (least by the
    # rows' fingerprint), so an orbit is one state
    one = same(lambda: model_of(WIDE), por=False, symmetry_after=50)
    assert one.symmetry > 1
    plain = X.Explorer(model_of(WIDE), por=False, symmetry=False).run()
    assert one.stats.distinct < plain.stats.distinct


def test_the_first_failure_and_its_shortest_interleaving_are_the_same():
    text = (EXAMPLES / "races" / "use_mm_vs_exit_unsafe.mmscn").read_text()
    one = same(lambda: model_of(text), por=False, symmetry=False)
    assert one.failure is not None and one.path


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)
@given(programs())
def test_random_programs_explore_the_same_with_two_workers(text):
    m = model_of(text)
    if m.prologue_failure is not None:
        return
    same(lambda: model_of(text), por=bool(len(text) % 2))


# ---------------------------------------------------------------- the command
def run(mmscn_cmd, *args, **kw):
    return subprocess.run([*mmscn_cmd, *map(str, args)], capture_output=True, text=True, timeout=300, **kw)


def test_the_witness_of_two_workers_replays_with_run(mmscn_cmd, tmp_path):
    src = EXAMPLES / "races" / "use_mm_vs_exit_unsafe.mmscn"
    w = tmp_path / "w.mmscn"
    p = run(mmscn_cmd, "explore", "--jobs", "2", "--witness", w, src)
    assert p.returncode == 0 and "2 worker processes" in p.stdout
    one = run(mmscn_cmd, "explore", src)
    assert p.stdout.split("shortest failing")[1].split("  witness written")[0] == \
        one.stdout.split("shortest failing")[1].split("verdict:")[0]
    r = run(mmscn_cmd, "run", w)
    assert r.returncode == 0 and "use-after-teardown" in r.stdout + r.stderr


def test_json_says_how_many_workers(mmscn_cmd):
    src = EXAMPLES / "races" / "use_mm_vs_exit_unsafe.mmscn"
    assert json.loads(run(mmscn_cmd, "explore", "--json", "--jobs", "2", src).stdout)["stats"]["jobs"] == 2
    assert json.loads(run(mmscn_cmd, "explore", "--json", src).stdout)["stats"]["jobs"] == 1


def test_jobs_with_random_is_a_usage_error(mmscn_cmd):
    src = EXAMPLES / "races" / "use_mm_vs_exit_unsafe.mmscn"
    p = run(mmscn_cmd, "explore", "--jobs", "2", "--random", "5", src)
    assert p.returncode == 2 and "--random" in p.stderr and "Traceback" not in p.stderr
    p = run(mmscn_cmd, "explore", "--jobs", "0", src)
    assert p.returncode == 2 and "at least 1" in p.stderr


def test_kernel_steps_run_in_one_process_with_a_note(mmscn_cmd):
    src = next(p for p in sorted((EXAMPLES / "history").glob("LT-01*.mmscn")))
    p = run(mmscn_cmd, "explore", "--jobs", "2", src)
    one = run(mmscn_cmd, "explore", src)
    assert p.returncode == one.returncode and "--jobs ignored" in p.stderr


def _group_left(pgid: int) -> list:
    """The processes still in process group pgid (zombies aside)."""
    left = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                left.append(int(d.name))
    return left


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL])
def test_an_interrupted_search_leaves_no_worker(mmscn_cmd, tmp_path, sig):
    f = tmp_path / "wide.mmscn"
    # the dense family's 6 x 3 without reductions: minutes of work
    f.write_text(dense(6, 3))
    p = subprocess.Popen([*mmscn_cmd, "explore", "--jobs", "2", "--no-por", "--no-symmetry", str(f)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    # the workers are up once the group has three processes
    for _ in range(600):
        if len(_group_left(p.pid)) >= 3:
            break
        time.sleep(0.1)
    assert len(_group_left(p.pid)) >= 3
    os.kill(p.pid, sig)
    p.communicate(timeout=120)
    for _ in range(600):        # a worker notices its coordinator is gone within POLL seconds
        if not _group_left(p.pid):
            break
        time.sleep(0.1)
    assert _group_left(p.pid) == []
    if sig == signal.SIGINT:
        assert p.returncode == 130


# ---------------------------------------------------------------- freed while mm_users > 0
def test_an_mm_freed_while_it_has_users_is_a_use_after_free():
    # A exits with an external mmget still held; B's switch drops cpu0's lazy reference; then a
    # buggy step drops the users' mm_count reference, which it does not hold: __mmdrop frees @A
    # while mm_users is 1, and the holder's mmput would decrement freed memory (KASAN)
    text = "cpus 1\nspawn A\nspawn B\nmmget @A\nschedule cpu0 A\nexit A\nschedule cpu0 B\n"
    r = Runner(load(text, "t.mmscn", policies.KnownArches()), text.split("\n"))
    assert not r.run().failed
    k = r.k
    m = k.mm_ix["@A"]
    assert (k.m_users[m], k.m_count[m]) == (1, 1)
    k.mmdrop(m, "buggy_step")
    v = k.check()
    assert k.m_freed[m] and [x.rule for x in v] == ["use-after-free"]
    assert "mm_users is 1" in v[0].message and "KASAN" in v[0].function


@pytest.mark.parametrize("bound", [{"max_seconds": 1e-9}, {"max_memory": 1.0}])
def test_a_time_or_memory_bound_leaves_the_verdict_incomplete(bound):
    res = ParallelExplorer(model_of(WIDE), 2, por=False, symmetry=False, **bound).run()
    assert res.holds is None and not res.complete and res.failure is None
    assert ("--max-seconds" if "max_seconds" in bound else "--max-memory") in res.stop_reason
