"""`mmscn explore`: verdicts, witnesses that replay, reductions that agree with the full search."""
import json
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest

from mmscn.dsl.resolve import load, load_file
from mmscn.interpreter import explore as X
from mmscn.interpreter import policies
from mmscn.interpreter.runner import Runner

from conftest import EXAMPLES, ROOT

GRID = Path("/work/shared/anchors/spin/grid.py")
BLOCK_EXAMPLES = sorted(p for p in EXAMPLES.rglob("*.mmscn") if load_file(p, policies.KnownArches())[0].blocks)
IDS = [str(p.relative_to(EXAMPLES)) for p in BLOCK_EXAMPLES]
MODES = [(True, True), (True, False), (False, True), (False, False)]


def model_of(text, path="t.mmscn", arch=None):
    sc = load(text, path, policies.KnownArches())
    return X.Model(sc, text.split("\n"), arch)


def explore(text, por=True, symmetry=True, **kw):
    m = model_of(text)
    return m, X.Explorer(m, por=por, symmetry=symmetry, **kw).run()


def finals(m, res):
    return sorted(tuple(sorted(X.final_fields(m, s).items())) for s in res.finals)


def cli(mmscn_cmd, *args):
    return subprocess.run([*mmscn_cmd, "explore", *map(str, args)], capture_output=True, text=True, timeout=120)


# ---------------------------------------------------------------- the examples
def test_there_are_racing_examples():
    races = sorted((EXAMPLES / "races").glob("*.mmscn"))
    assert len(races) >= 4
    texts = " ".join(p.read_text() for p in races)
    assert "use_mm" in texts and "mmget_not_zero" in texts and "expect fail" in texts


@pytest.mark.parametrize("path", BLOCK_EXAMPLES, ids=IDS)
def test_example_verdict_is_what_the_header_expects(mmscn_cmd, path):
    p = cli(mmscn_cmd, path)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "verdict:" in p.stdout and "Traceback" not in p.stderr


@pytest.mark.parametrize("path", BLOCK_EXAMPLES, ids=IDS)
def test_reductions_agree_on_example(path):
    text = path.read_text()
    seen = {}
    for por, sym in MODES:
        m = model_of(text, str(path))
        r = X.Explorer(m, por=por, symmetry=sym, all_finals=True).run()
        assert r.complete
        seen[(por, sym)] = (r.holds, finals(m, r) if not sym else None, r.stats.finals if not sym else None)
    assert len({v[0] for v in seen.values()}) == 1, seen
    assert seen[(True, False)][1:] == seen[(False, False)][1:]


# ---------------------------------------------------------------- the grid
def grid(ncpu, ntask):
    if GRID.exists():
        return subprocess.run([sys.executable, str(GRID), str(ncpu), str(ntask), "mmscn"], capture_output=True,
                              text=True, check=True).stdout
    return _grid_fallback(ncpu, ntask)


def _grid_fallback(ncpu, ntask):
    # the same family as ../shared/anchors/spin/grid.py, for machines without it
    name = lambda i: f"u{i}" if i % 2 == 0 else f"k{i}"
    out = [f'scenario "churn {ncpu} cpus {ntask} tasks"', "arch generic", f"cpus {ncpu}"]
    out += [f"spawn {name(i)}" if i % 2 == 0 else f"spawn kthread {name(i)}" for i in range(ntask)]
    out += [f"mmget @{name(i - 1)}" for i in range(1, ntask, 2)]
    for c in range(ncpu):
        prog = []
        for i in range(c, ntask, ncpu):
            if i % 2 == 0:
                prog += [f"schedule {name(i)}", f"exit {name(i)}", "schedule idle"]
            else:
                prog += [f"schedule {name(i)}", f"use_mm {name(i)} @{name(i - 1)}", f"unuse_mm {name(i)}",
                         f"mmput @{name(i - 1)}", "schedule idle"]
        if prog:
            out += [f"cpu{c} {{"] + ["    " + s for s in prog] + ["}"]
    return "\n".join(out) + "\n"


@pytest.mark.parametrize("entry", ["1:2", "2:4", "2:6", "3:6", "4:8"])
def test_reductions_agree_on_grid(entry):
    c, t = map(int, entry.split(":"))
    text = grid(c, t)
    results = {}
    for por, sym in MODES:
        m, r = explore(text, por, sym, all_finals=True)
        assert r.complete and r.holds is True
        results[(por, sym)] = (r.stats.distinct, finals(m, r) if not sym else None)
    assert results[(True, False)][1] == results[(False, False)][1]
    # the reductions never add states
    assert results[(True, True)][0] <= results[(False, False)][0]


def test_por_and_symmetry_shrink_the_largest_grid_entry():
    m, r = explore(grid(8, 16))
    assert r.holds is True and r.complete
    assert r.stats.distinct == 65    # one interleaving; SPIN stores 93 million states for this entry
    assert r.pruned
    assert r.symmetry == 1           # too small a search to look for symmetry (Explorer.SYMMETRY_AFTER)
    m, r = explore(grid(8, 16), symmetry_after=0)
    assert r.symmetry == 24 and r.stats.distinct <= 65     # the four CPU pairs are interchangeable


def test_symmetry_is_looked_for_once_the_search_grows():
    text = grid(4, 8)
    m, full = explore(text, por=False, symmetry=False)
    m, late = explore(text, por=False, symmetry=True)
    m, early = explore(text, por=False, symmetry=True, symmetry_after=0)
    assert full.stats.distinct == 5929 and late.symmetry == early.symmetry == 2
    # what it saves is kept but for the states stored before it was found
    assert early.stats.distinct < late.stats.distinct < full.stats.distinct
    assert full.holds is late.holds is early.holds is True


def test_interleavings_are_counted_exactly_without_reductions():
    text = ("cpus 2\nspawn A\nspawn B\n"
            "cpu0 {\n  schedule A\n  schedule idle\n}\ncpu1 {\n  schedule B\n  schedule idle\n}\n")
    m, r = explore(text, por=False, symmetry=False)
    assert r.stats.interleavings == 6          # C(4, 2) orders of two 2-statement programs
    assert r.stats.finals == 1 and r.stats.depth == 4
    m, r = explore(text, por=True, symmetry=True)
    assert r.stats.distinct < 9 and r.holds


# ---------------------------------------------------------------- semantics
def test_schedule_of_a_task_running_elsewhere_waits():
    text = ("cpus 2\nspawn A\nschedule cpu0 A\n"
            "cpu0 {\n  schedule idle\n}\ncpu1 {\n  schedule A\n  exit A\n  schedule idle\n}\n"
            "final forall A is dead, cpu1.curr == idle\n")
    m, r = explore(text, por=False)
    assert r.holds is True and r.stats.finals == 1


def test_deadlock_is_reported_with_a_replayable_witness(tmp_path):
    text = ("cpus 2\nspawn A\nspawn B\nschedule cpu0 A\nschedule cpu1 B\n"
            "cpu0 {\n  schedule B\n}\ncpu1 {\n  schedule A\n}\n")
    for por in (True, False):
        m, r = explore(text, por=por)
        assert r.holds is False and r.failure.kind == "deadlock"
        assert "cpu0" in r.failure.message and "cpu1" in r.failure.message
    w = _replay_witness(m, r, tmp_path)
    assert any("running on cpu" in d.message for d in w.diagnostics)


def test_failing_mmget_not_zero_ends_its_block():
    text = ("cpus 2\nspawn A\nspawn kthread kw\nschedule cpu0 A\nschedule cpu1 kw\n"
            "cpu0 {\n  exit A\n}\ncpu1 {\n  mmget_not_zero @A\n  use_mm kw @A\n  unuse_mm kw\n  mmput @A\n}\n"
            "final exists kw.mm == none, kw.active_mm == @init_mm\n")
    m, r = explore(text)
    assert r.holds is True and r.exists_count == 1


def test_final_exists_that_no_interleaving_satisfies_fails():
    text = ("cpus 2\nspawn A\nspawn B\ncpu0 {\n  schedule A\n}\ncpu1 {\n  schedule B\n}\n"
            "final exists cpu0.curr == B\n")
    m, r = explore(text)
    assert r.holds is False and r.failure is None and r.stats.finals == 1


def test_assertion_in_a_block_is_checked_where_it_runs():
    # true before cpu1's schedule, false after: some interleaving fails it
    text = ("cpus 2\nspawn A\ncpu0 {\n  assert A.state == runnable\n}\ncpu1 {\n  schedule A\n}\n")
    for por, sym in MODES:
        m, r = explore(text, por, sym)
        assert r.holds is False and r.failure.kind == "assertion", (por, sym)


def test_init_mm_counter_read_in_a_block_conflicts_with_every_cpu():
    # init_mm's counters are left out of the footprints, so an assertion that
    # reads them must conflict with everything
    text = ("cpus 3\nspawn A\nspawn B\n"
            "cpu0 {\n  assert @init_mm.count == 4\n}\n"
            "cpu1 {\n  schedule A\n}\ncpu2 {\n  schedule B\n}\n")
    for por, sym in MODES:
        m, r = explore(text, por, sym)
        assert r.holds is False and r.failure.kind == "assertion", (por, sym)


def test_an_external_mmput_conflicts_with_a_read_of_its_mm():
    # neither CPU runs a task of @A: only the footprint of the mm itself orders them
    for a, b in (("mmput @A", "assert @A.users == 2"), ("assert @A.users == 2", "mmput @A")):
        text = ("cpus 2\nspawn A\nspawn kthread kw\nschedule cpu1 kw\nmmget @A\n"
                f"cpu0 {{\n  {a}\n}}\ncpu1 {{\n  {b}\n}}\n")
        for por, sym in MODES:
            m, r = explore(text, por, sym)
            assert r.holds is False and r.failure.kind == "assertion", (a, por, sym)


def test_expect_in_a_block_applies_to_its_next_statement():
    text = ("cpus 2\nspawn A\nschedule cpu0 A\n"
            "cpu0 {\n  exit A\n  schedule idle\n}\n"
            "cpu1 {\n  expect error \"has exited\"\n  schedule A\n}\n")
    m, r = explore(text, por=False)
    # cpu1's schedule waits while A runs, so it only runs after A exited: refused as expected
    assert r.holds is True


def test_header_expect_fail_turns_the_verdict(mmscn_cmd):
    p = cli(mmscn_cmd, EXAMPLES / "races" / "use_mm_vs_exit_unsafe.mmscn")
    assert p.returncode == 0 and "fails, as the header expects" in p.stdout
    text = (EXAMPLES / "races" / "use_mm_vs_exit_safe.mmscn").read_text().replace("cpus 2", "cpus 2\nexpect fail")
    m, r = explore(text)
    assert r.holds is True and r.passed is False


# ---------------------------------------------------------------- witnesses
def _replay_witness(m, r, tmp_path):
    out = tmp_path / "w.mmscn"
    out.write_text(X.witness_text(m, r))
    sc, text = load_file(out, policies.KnownArches())
    assert not sc.blocks
    return Runner(sc, text.split("\n")).run()


def test_shortest_witness_replays_to_the_same_violation(tmp_path, mmscn_cmd):
    path = EXAMPLES / "races" / "use_mm_vs_exit_unsafe.mmscn"
    w = tmp_path / "witness.mmscn"
    p = cli(mmscn_cmd, path, "--witness", w)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "shortest failing interleaving (3 steps)" in p.stdout
    assert "@A.users 1 -> 0" in p.stdout           # only the fields the step changed
    text = w.read_text()
    assert "cpu0 {" not in text and "expect fail" in text
    run = subprocess.run([*mmscn_cmd, "run", str(w)], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr          # fails, as its header expects
    assert "use-after-teardown" in run.stdout
    sc, src = load_file(w, policies.KnownArches())
    res = Runner(sc, src.split("\n")).run()
    assert res.failed and res.steps[-1].status == "violation"
    assert "use-after-teardown" in res.steps[-1].message


def test_witness_makes_the_cpu_explicit_and_ends_in_the_failing_assertion(tmp_path):
    text = ("cpus 2\nspawn A\nspawn kthread kw\nschedule cpu0 A\n"
            "cpu0 {\n  schedule kw\n  unlazy\n}\n"
            "cpu1 {\n  schedule A\n  exit A\n  schedule idle\n}\n"
            "final forall kw.active_mm == @A\n")
    m, r = explore(text)
    assert r.holds is False and r.failure.kind == "final"
    wt = X.witness_text(m, r)
    assert "schedule cpu0 kw" in wt and "unlazy cpu0" in wt and "assert kw.active_mm == @A" in wt
    res = _replay_witness(m, r, tmp_path)
    assert res.failed and res.steps[-1].status == "failed" and "kw.active_mm == @A" in res.steps[-1].message


def test_witness_of_a_refusal_replays_it(tmp_path):
    text = ("cpus 2\nspawn A\nschedule cpu0 A\n"
            "cpu0 {\n  exit A\n  schedule idle\n}\ncpu1 {\n  schedule idle\n  schedule A\n}\n")
    m, r = explore(text)
    assert r.failure.kind == "refusal" and "has exited" in r.failure.message
    res = _replay_witness(m, r, tmp_path)
    assert res.steps[-1].status == "refused" and "has exited" in res.steps[-1].message


# ---------------------------------------------------------------- symmetry
def test_symmetry_respects_final():
    base = ("cpus 2\nspawn A\nspawn B\n"
            "cpu0 {\n  schedule A\n  exit A\n}\ncpu1 {\n  schedule B\n  exit B\n}\n")
    assert X.Symmetry(model_of(base + "final forall A is dead, B is dead\n")).size() == 2
    assert X.Symmetry(model_of(base + "final forall A is dead\n")).size() == 1


def test_symmetry_needs_the_start_state_symmetric_too():
    text = ("cpus 2\nspawn A\nspawn B\nmmget @A\n"
            "cpu0 {\n  schedule A\n  exit A\n}\ncpu1 {\n  schedule B\n  exit B\n}\n")
    assert X.Symmetry(model_of(text)).size() == 1


# ---------------------------------------------------------------- random programs
def random_program(rng):
    ncpu = rng.choice([2, 3])
    users = ["A", "B"][:rng.choice([1, 2])]
    kth = ["K", "L"][:rng.choice([1, 2])]
    lines = ["arch generic", f"cpus {ncpu}"] + [f"spawn {u}" for u in users] + [f"spawn kthread {k}" for k in kth]
    mms = ["@" + u for u in users]
    if rng.random() < 0.5:
        lines.append(f"mmget {rng.choice(mms)}")
    tasks = users + kth
    for c in range(ncpu):
        lines.append(f"cpu{c} {{")
        for _ in range(rng.randint(1, 4)):
            x = rng.choice(tasks)
            r = rng.random()
            if r < 0.3:
                lines.append(f"  schedule {rng.choice(tasks + ['idle'])}")
            elif r < 0.45 and x in kth:
                m = rng.choice(mms)
                lines += [f"  schedule {x}", f"  mmget_not_zero {m}", f"  use_mm {x} {m}", f"  unuse_mm {x}",
                          f"  mmput {m}"]
            elif r < 0.6:
                lines += [f"  schedule {rng.choice(users)}", f"  exit {rng.choice(users)}"]
            elif r < 0.7:
                lines.append("  unlazy")
            elif r < 0.75:
                lines.append(f"  assert {rng.choice(mms)} is not freed")
            elif r < 0.85:
                lines.append(f"  {rng.choice(['mmget', 'mmput', 'mmgrab', 'mmdrop', 'mmget_not_zero'])} "
                             f"{rng.choice(mms)}")
            else:
                lines.append("  schedule idle")
        lines.append("}")
    if rng.random() < 0.5:
        lines.append(f"final {rng.choice(['forall', 'exists'])} {rng.choice(mms)} is zombie")
    return "\n".join(lines) + "\n"


def reductions_agree(text) -> bool:
    """Assert every combination of the reductions gives the same verdict, and
    without symmetry the same final states; False when the prologue fails."""
    out = {}
    for por, sym in MODES:
        m = model_of(text)
        if m.prologue_failure is not None:
            return False
        r = X.Explorer(m, por=por, symmetry=sym, all_finals=True).run()
        out[(por, sym)] = (r.holds, finals(m, r) if not sym else None)
    assert len({v[0] for v in out.values()}) == 1, text
    assert out[(True, False)][1] == out[(False, False)][1], text
    return True


@pytest.mark.parametrize("seed", range(16))
def test_reductions_agree_on_random_programs(seed):
    rng = random.Random(seed)
    for _ in range(8):
        reductions_agree(random_program(rng))


# ---------------------------------------------------------------- the command
def test_cli_report_and_json(mmscn_cmd):
    path = EXAMPLES / "races" / "two_kthreads_adopt.mmscn"
    p = cli(mmscn_cmd, path)
    assert p.returncode == 0
    for words in ("states explored", "distinct states", "final states", "interleavings", "depth", "states/s",
                  "verdict: holds"):
        assert words in p.stdout
    p = cli(mmscn_cmd, path, "--json", "--all-finals", "--no-symmetry")
    doc = json.loads(p.stdout)
    assert doc["verdict"] == "holds" and doc["passed"] is True and doc["complete"] is True
    assert doc["stats"]["final_states"] == len(doc["final_states"]) == 1
    assert doc["final_states"][0]["@A.state"] == "freed"


def test_cli_bounds_say_the_verdict_is_incomplete(mmscn_cmd, tmp_path):
    f = tmp_path / "g.mmscn"
    f.write_text(grid(3, 6))
    p = cli(mmscn_cmd, f, "--max-states", "10")     # the entry needs 25 (one interleaving)
    assert p.returncode == 3
    assert "incomplete" in p.stdout.lower() and "--max-states" in p.stdout


def test_cli_compact_says_the_verdict_is_incomplete_and_how_likely_a_collision_is(mmscn_cmd, tmp_path):
    f = tmp_path / "g.mmscn"
    f.write_text(grid(3, 6))
    p = cli(mmscn_cmd, f, "--compact", "--no-por")
    assert p.returncode == 3 and "verdict: INCOMPLETE" in p.stdout
    assert "--compact" in p.stdout and "64-bit fingerprint" in p.stdout
    doc = json.loads(cli(mmscn_cmd, f, "--compact", "--no-por", "--json").stdout)
    assert doc["verdict"] == "incomplete" and doc["complete"] is False
    assert doc["compact"]["fingerprint_bits"] == 64 and 0 < doc["compact"]["collision_probability"] < 1e-9
    # the states are the same ones, told apart by their fingerprints
    assert doc["stats"]["distinct_states"] == json.loads(cli(mmscn_cmd, f, "--no-por", "--json").stdout)[
        "stats"]["distinct_states"]


def test_cli_compact_failure_is_definite(mmscn_cmd):
    # a failure found is a real interleaving, fingerprints or not
    p = cli(mmscn_cmd, EXAMPLES / "races" / "use_mm_vs_exit_unsafe.mmscn", "--compact")
    assert p.returncode == 0 and "fails, as the header expects" in p.stdout


def test_cli_max_memory_stops_the_search_as_incomplete(mmscn_cmd, tmp_path):
    f = tmp_path / "g.mmscn"
    f.write_text(grid(4, 8))
    p = cli(mmscn_cmd, f, "--no-por", "--no-symmetry", "--max-memory", "1")    # less than Python itself
    assert p.returncode == 3 and "--max-memory" in p.stdout and "verdict: INCOMPLETE" in p.stdout


def test_cli_random_prints_the_seed_and_replays(mmscn_cmd):
    path = EXAMPLES / "races" / "use_mm_vs_exit_unsafe.mmscn"
    a = cli(mmscn_cmd, path, "--random", "20", "--seed", "7")
    b = cli(mmscn_cmd, path, "--random", "20", "--seed", "7")
    assert a.returncode == 0 and "seed 7" in a.stdout
    # the same seed, the same interleavings: equal output but for the timings
    untimed = lambda out: re.sub(r"[0-9.,]+ s\b|[0-9,]+ states/s", "T", out)
    assert untimed(a.stdout) == untimed(b.stdout)
    assert "failing interleaving" in a.stdout
    safe = cli(mmscn_cmd, EXAMPLES / "races" / "use_mm_vs_exit_safe.mmscn", "--random", "5", "--seed", "1")
    assert safe.returncode == 3 and "INCOMPLETE" in safe.stdout


def test_cli_seed_without_random_is_a_command_line_error(mmscn_cmd):
    p = cli(mmscn_cmd, EXAMPLES / "races" / "use_mm_vs_exit_safe.mmscn", "--seed", "1")
    assert p.returncode == 2 and "--seed S goes with --random N" in p.stderr and p.stdout == ""


def test_cli_unparsable_file_is_exit_2(mmscn_cmd, tmp_path):
    f = tmp_path / "bad.mmscn"
    f.write_text("cpus 2\ncpu0 {\n  schedule\n}\n")
    p = cli(mmscn_cmd, f)
    assert p.returncode == 2 and "bad.mmscn:3" in p.stderr and "Traceback" not in p.stderr


def test_cli_failure_exit_1(mmscn_cmd, tmp_path):
    f = tmp_path / "race.mmscn"
    f.write_text((EXAMPLES / "races" / "use_mm_vs_exit_unsafe.mmscn").read_text().replace("expect fail", ""))
    p = cli(mmscn_cmd, f)
    assert p.returncode == 1 and "verdict: FAILS" in p.stdout


def test_witness_under_partial_order_reduction_keeps_only_the_steps_the_failure_depends_on():
    # POR fires cpu0's independent block first; the witness must still be
    # cpu1's three steps, as short as the unreduced search's.
    text = ("cpus 2\nspawn A\nspawn B\nspawn C\ncpu0 {\n  schedule B\n  schedule C\n  schedule idle0\n}\n"
            "cpu1 {\n  schedule A\n  exit A\n  assert @A.users == 1\n}\n")
    lengths = {}
    for por, sym in MODES:
        m, r = explore(text, por, sym)
        assert r.failure.kind == "assertion", (por, sym)
        assert [b for b, _ in r.path] == [1, 1, 1], (por, sym, r.path)
        lengths[por, sym] = len(r.path)
    assert set(lengths.values()) == {3}


def test_all_finals_goes_on_from_the_state_a_failure_left_not_from_what_it_changed():
    # cpu0's mmput fails unless cpu1's mmget came first; the violation changes the kernel
    # (mm_users 0, the mm torn down), and cpu1's mmget from the same state must not see it
    text = "cpus 2\nspawn A\ncpu0 {\n  mmput @A\n}\ncpu1 {\n  mmget @A\n}\nfinal forall @A.users == 1\n"
    for por, sym in MODES:
        m, r = explore(text, por, sym, all_finals=True)
        assert r.failure.kind == "violation" and "unbalanced-mmput" in r.failure.message
        assert [X.final_fields(m, s)["@A.users"] for s in r.finals] == [1], (por, sym)


def test_all_finals_prints_counters_as_numbers(mmscn_cmd, tmp_path):
    # a state's columns once shared one intern table: (1, 1, 1) came back as (True, True, True)
    f = tmp_path / "three.mmscn"
    f.write_text("arch powerpc\ncpus 3\nspawn kthread k0\nschedule cpu0 k0\ncpu0 {\n  exec k0\n}\n")
    p = cli(mmscn_cmd, f, "--all-finals")
    assert p.returncode == 0, p.stdout + p.stderr
    assert "@init_mm.users 2; @init_mm.count 1;" in p.stdout and "@k0.users 1; @k0.count 1;" in p.stdout
    assert "True" not in p.stdout
    doc = json.loads(cli(mmscn_cmd, f, "--all-finals", "--json").stdout)
    [final] = doc["final_states"]
    assert final["@k0.count"] == 1 and type(final["@k0.count"]) is int
    assert final["@init_mm.users"] == 2 and type(final["@init_mm.users"]) is int
