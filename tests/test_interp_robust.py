"""Issue 12, the interpreter's part: failure messages that cannot raise, symmetry
detection with a bound, witnesses that replay, violations that follow from
another, and an example whose comment says what `mmscn explore` prints."""
import io
import itertools
import json
import random
import re
import subprocess

import pytest

from mmscn.dsl.parser import ParseFailed
from mmscn.dsl.resolve import load, load_file
from mmscn.interactive import Session
from mmscn.interpreter import explore as X
from mmscn.interpreter import policies
from mmscn.interpreter.runner import Runner

from conftest import EXAMPLES


def model_of(text, path="t.mmscn", arch=None):
    return X.Model(load(text, path, policies.KnownArches()), text.split("\n"), arch)


def cli(mmscn_cmd, tmp_path, text, *args, name="t.mmscn"):
    f = tmp_path / name
    f.write_text(text)
    return subprocess.run([*mmscn_cmd, *args, str(f)], capture_output=True, text=True, timeout=120)


def failure_lines(out: str) -> list:
    return [ln for ln in out.splitlines() if ": failure: " in ln or ": error: " in ln]


# ---------------------------------------------------------------- a failure message reads what it can
# an x86 file run with --arch generic: the resolver accepts @A.cpumask (x86 tracks it),
# the generic run cannot read it
CPUMASK = "arch x86\ncpus 2\nspawn A\nassert A.state == dead and @A.cpumask == {cpu0}\n"
CPUMASK_FINAL = "arch x86\ncpus 2\nspawn A\nfinal forall A.state == dead and @A.cpumask == {cpu0}\n"
NOT_YET = "cpus 2\nspawn A\ncpu0 {\n  assert A.state == dead and B.state == running\n}\ncpu1 {\n  spawn B\n}\n"
NOT_YET_IS = "cpus 2\nspawn A\ncpu0 {\n  assert not (A is runnable or B is running)\n}\ncpu1 {\n  spawn B\n}\n"
UNTRACKED = "@A.cpumask unreadable here (arch generic does not track mm_cpumask)"


@pytest.mark.parametrize("text, words", [
    (CPUMASK, UNTRACKED),
    (CPUMASK_FINAL, UNTRACKED),
    (NOT_YET, "B.state unreadable here (B is not spawned yet in this interleaving)"),
    (NOT_YET_IS, "B unreadable here (B is not spawned yet in this interleaving)"),
])
@pytest.mark.parametrize("command", ["run", "explore"])
def test_a_short_circuited_condition_fails_with_its_fields_not_an_internal_error(mmscn_cmd, tmp_path, text,
                                                                                 words, command):
    # and/or stopped at the first part, so the failure message reads fields that
    # evaluation never read: a field the policy does not track, a task not spawned yet
    p = cli(mmscn_cmd, tmp_path, text, command, *(("--arch", "generic") if text.startswith("arch") else ()))
    assert p.returncode == 1, p.stdout + p.stderr
    assert "internal error" not in p.stdout + p.stderr
    assert any(words in ln for ln in failure_lines(p.stdout)), p.stdout


def test_the_repl_shows_the_located_failure_that_run_shows(mmscn_cmd, tmp_path):
    # (a cpumask the arch does not track is a resolve error in the REPL, as in `mmscn check`)
    for text, setup in ((NOT_YET, []),):
        run = failure_lines(cli(mmscn_cmd, tmp_path, text, "run").stdout)
        out = io.StringIO()
        s = Session(out)
        for piece in setup + [text]:
            s.feed(piece)
        shown = out.getvalue()
        assert "internal error" not in shown
        repl = failure_lines(shown)
        assert len(repl) == len(run) == 1
        # the same message, located at the same statement (the REPL numbers its own lines)
        assert repl[0].split(": failure: ")[1] == run[0].split(": failure: ")[1]
        assert s.failures == 1 and any(ln.strip().startswith("|") and ln.endswith("^") for ln in shown.splitlines())


# ---------------------------------------------------------------- symmetry, bounded
def nine(body: list, prologue: list = (), final: str = "") -> str:
    lines = ["arch generic", "cpus 9", "spawn A", *prologue]
    for c in range(9):
        lines += [f"cpu{c} {{"] + ["  " + b for b in body] + ["}"]
    return "\n".join(lines + ([final] if final else [])) + "\n"


# nine identical blocks that `final` tells apart: every pairing of them was tried and rejected (9!)
NINE_FINAL = nine(["mmget @A", "mmput @A"], final="final forall " + ", ".join(
    ["cpu0 is idle", "cpu1 is online", "cpu2 is not lazy", "cpu3 is not offline", "cpu4.curr != A",
     "cpu5.active_mm != @A", "cpu6.online == true", "cpu7.lazy == false"]))
# ... that the start state tells apart (each CPU runs its own task, one mm has more users): every
# pairing went as far as an image of the start state, each kept (3 GB)
NINE_START = nine(["mmget @A", "mmput @A"], [f"spawn X{i}" for i in range(9)]
                  + [f"schedule cpu{i} X{i}" for i in range(9)] + ["mmget @X0", "mmget @X1", "mmget @X1"])
# ... that are interchangeable: 9! orders, sorted instead of enumerated
NINE_SAME = nine(["mmget @A", "mmput @A"])


@pytest.mark.parametrize("text", [NINE_FINAL, NINE_START, NINE_SAME], ids=["final", "start", "same"])
def test_nine_identical_blocks_reach_a_verdict_at_max_states_1(mmscn_cmd, tmp_path, text):
    p = cli(mmscn_cmd, tmp_path, text, "explore", "--json", "--max-states", "1", "--max-seconds", "1")
    assert p.returncode == 3, p.stdout + p.stderr      # the search was cut short: incomplete
    doc = json.loads(p.stdout)
    assert doc["verdict"] == "incomplete" and doc["stats"]["states_explored"] <= 1


@pytest.mark.parametrize("text", [NINE_FINAL, NINE_START, NINE_SAME], ids=["final", "start", "same"])
def test_symmetry_detection_tries_a_bounded_number_of_candidates(text):
    sym = X.Symmetry(model_of(text))
    assert sym.tried <= X.Symmetry.MAX_CANDIDATES
    assert len(sym.perms) <= X.Symmetry.MAX_ELEMENTS


def test_cpus_that_final_tells_apart_are_not_paired_at_all():
    sym = X.Symmetry(model_of(NINE_FINAL))
    assert sym.size() == 1 and sym.tried == 0 and not sym.cut


def test_interchangeable_blocks_are_sorted_not_enumerated():
    m = model_of(NINE_SAME)
    sym = X.Symmetry(m)
    assert sym.classes == [tuple(range(9))] and not sym.perms
    assert sym.size() == 362880 and sym.tried < 100
    r = X.Explorer(model_of(NINE_SAME), symmetry_after=0).run()     # symmetry from the first state
    # the states are the multisets of nine program counters in {0, 1, 2}: C(11, 2)
    assert r.complete and r.holds is True and r.stats.distinct == 55


def test_sorted_canonical_forms_count_the_same_orbits_as_the_whole_group():
    # three interchangeable blocks: sorting them must merge exactly the states that
    # the group's six elements, applied one by one, merge
    text = ("arch x86\ncpus 3\nspawn A\nspawn kthread K\nmmget @A\n"
            + "".join(f"cpu{c} {{\n  schedule K\n  mmput @A\n  schedule idle\n}}\n" for c in range(3)))
    assert X.Symmetry(model_of(text)).classes == [(0, 1, 2)]
    sorted_ = X.Explorer(model_of(text), por=False, all_finals=True, symmetry_after=0).run()
    ex = X.Explorer(model_of(text), por=False, all_finals=True, symmetry_after=0)
    k = ex.m.k
    ex.sym.classes = []
    ex.sym.perms = []
    for perm in itertools.permutations(range(3)):
        tp = list(range(len(k.t_name)))
        for c in range(3):
            tp[k._idle(c)] = k._idle(perm[c])
        if perm != (0, 1, 2):
            ex.sym.perms.append((tuple(tp), tuple(range(len(k.m_name))), perm, perm))
    ex.sym.images = [(list(p[3]), ex.sym._image_fn(p)) for p in ex.sym.perms]
    enumerated = ex.run()
    assert sorted_.holds == enumerated.holds
    assert (sorted_.stats.distinct, sorted_.stats.finals) == (enumerated.stats.distinct, enumerated.stats.finals)
    assert sorted_.stats.distinct < X.Explorer(model_of(text), por=False, symmetry=False).run().stats.distinct


def test_the_clock_of_max_seconds_runs_from_before_symmetry_detection():
    sym = X.Symmetry(model_of(NINE_START), deadline=0.0)     # a deadline already past
    assert sym.cut and sym.tried <= 64
    r = X.Explorer(model_of(NINE_START), max_seconds=1e-9).run()
    assert r.stats.states == 0 and "--max-seconds" in r.stop_reason and r.holds is None


# ---------------------------------------------------------------- witnesses replay
def _witness_failures(mmscn_cmd, paths: list) -> list:
    """`mmscn run --json` on witness files: each one's failures."""
    p = subprocess.run([*mmscn_cmd, "run", "--json", *map(str, paths)], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr      # each fails, as its header expects
    docs = json.loads(p.stdout)
    return [d["failures"] for d in (docs if isinstance(docs, list) else [docs])]


def _norm(text: str) -> str:
    return re.sub(r"line \d+", "line _", text)


def _check_replay(model, res, witness: str, failures: list) -> None:
    """The witness fails at its last step (or the `expect` before it) with the exploration's failure."""
    lines = witness.split("\n")
    assert failures, witness
    first = failures[0]
    here = " ".join(lines[first["line"] - 1:first["line"] + 1])     # the line, and the step an `expect` announces
    f = res.failure
    if f.kind == "final":
        assert "# the final forall" in here, (witness, first)
    elif f.kind == "deadlock":
        assert "waits here" in here, (witness, first)
    else:
        step = re.search(r"# step (\d+):", here)
        assert step and int(step.group(1)) == len(res.path), (witness, first)
    if f.kind == "violation":
        assert [x["message"].split(":")[0] for x in failures] == list(f.rules), (witness, failures)
        assert f.message.startswith(first["message"]), (witness, first)
    elif f.kind in ("refusal", "assertion", "expectation"):
        assert _norm(first["message"]) == _norm(f.message), (witness, first)
    elif f.kind == "final":
        assert f.message.endswith(first["message"]), (witness, first)


RACES = sorted((EXAMPLES / "races").glob("*.mmscn"))


def test_every_race_example_under_every_arch_has_a_witness_that_replays(mmscn_cmd, tmp_path):
    cases = []
    for path in RACES:
        sc, text = load_file(path, policies.KnownArches())
        for arch in policies.builtin_names():
            m = X.Model(sc, text.split("\n"), arch)
            if m.prologue_failure is not None:
                continue
            res = X.Explorer(m).run()
            if res.failure is not None:
                cases.append((m, res, X.witness_text(m, res)))
    assert len(cases) >= 5
    files = []
    for n, (_, _, w) in enumerate(cases):
        files.append(tmp_path / f"w{n}.mmscn")
        files[-1].write_text(w)
    for (m, res, w), failures in zip(cases, _witness_failures(mmscn_cmd, files)):
        _check_replay(m, res, w, failures)


def generated(rng) -> str:
    """A random scenario whose blocks spawn tasks others name, expect refusals, read fields."""
    arch = rng.choice(["generic", "x86", "powerpc", "arm64", "alpha"])
    ncpu = rng.choice([2, 3])
    lines = [f"arch {arch}", f"cpus {ncpu}", "spawn A", "spawn kthread K"]
    if rng.random() < 0.5:
        lines.append("mmget @A")
    if rng.random() < 0.4:
        lines.append("schedule cpu0 A")
    fresh, made = ["N", "P"], []
    for c in range(ncpu):
        lines.append(f"cpu{c} {{")
        for _ in range(rng.randint(1, 4)):
            tasks, mms = ["A", "K"] + made, ["@A"] + ["@" + n for n in made]
            if rng.random() < 0.2:
                lines.append("  expect error" + rng.choice(["", ' "has exited"', ' "not running"', ' "yet"']))
            r = rng.random()
            if r < 0.2:
                lines.append(f"  schedule {rng.choice(tasks + ['idle'])}")
            elif r < 0.3 and fresh:
                made.append(fresh.pop(0))
                lines.append(f"  spawn {made[-1]}")
            elif r < 0.45:
                lines += [f"  schedule {rng.choice(['A'] + made)}", f"  exit {rng.choice(['A'] + made)}"]
            elif r < 0.55:
                lines.append("  unlazy")
            elif r < 0.7:
                lines.append(f"  assert {rng.choice(mms)} is not freed and {rng.choice(tasks)}.state != dead")
            elif r < 0.9:
                lines.append(f"  {rng.choice(['mmget', 'mmput', 'mmgrab', 'mmdrop', 'flush'])} {rng.choice(mms)}")
            else:
                lines.append("  schedule idle")
        if lines[-1].startswith("  expect"):
            lines.append("  schedule idle")
        lines.append("}")
    if rng.random() < 0.3:
        lines.append(f"final forall {rng.choice(['@A'] + ['@' + n for n in made])} is live")
    return "\n".join(lines) + "\n"


def test_witnesses_of_generated_scenarios_replay(mmscn_cmd, tmp_path):
    rng = random.Random(12)
    cases = []
    while len(cases) < 60:
        text = generated(rng)
        try:
            m = model_of(text)
        except ParseFailed:     # an `expect` before an assertion, say
            continue
        if m.prologue_failure is not None:
            continue
        res = X.Explorer(m, max_states=5000).run()
        if res.failure is not None:
            cases.append((m, res, X.witness_text(m, res)))
    # the kinds of step the top level would judge otherwise are among them
    assert any("as a block made it" in w for _, _, w in cases)
    files = []
    for n, (_, _, w) in enumerate(cases):
        files.append(tmp_path / f"g{n}.mmscn")
        files[-1].write_text(w)
    for (m, res, w), failures in zip(cases, _witness_failures(mmscn_cmd, files)):
        _check_replay(m, res, w, failures)


@pytest.mark.parametrize("block, failing", [
    ("schedule B", "no task named `B` yet"),
    ("assert B is running", "no task named `B` yet"),
    ("mmget @B", "no mm named `@B` yet"),
    ("use_mm K @B", "no mm named `@B` yet"),
])
def test_a_witness_step_naming_what_another_block_makes_resolves_and_replays(mmscn_cmd, tmp_path, block, failing):
    text = f"cpus 2\nspawn kthread K\nschedule cpu0 K\ncpu0 {{\n  {block}\n}}\ncpu1 {{\n  spawn B\n}}\n"
    m = model_of(text)
    res = X.Explorer(m).run()
    assert failing in res.failure.message
    w = X.witness_text(m, res)
    (tmp_path / "w.mmscn").write_text(w)
    _check_replay(m, res, w, _witness_failures(mmscn_cmd, [tmp_path / "w.mmscn"])[0])


def test_a_witness_final_that_names_what_no_block_made_replays(mmscn_cmd, tmp_path):
    # cpu1's mmget_not_zero fails and ends the block before its spawn: `final` names B anyway
    text = ("cpus 2\nspawn A\nschedule cpu0 A\ncpu0 {\n  exit A\n}\n"
            "cpu1 {\n  mmget_not_zero @A\n  spawn B\n}\nfinal forall B.state != dead\n")
    m = model_of(text)
    res = X.Explorer(m).run()
    assert res.failure.kind == "final" and "no task named `B` yet" in res.failure.message
    w = X.witness_text(m, res)
    (tmp_path / "w.mmscn").write_text(w)
    _check_replay(m, res, w, _witness_failures(mmscn_cmd, [tmp_path / "w.mmscn"])[0])


EXITED_THEN = ("cpus 2\nspawn A\nspawn B\nspawn kthread K\nschedule cpu1 K\n"
               "cpu0 {\n  schedule A\n  exit A\n  expect error \"exited\"\n  unlazy\n  schedule idle\n}\n")


def test_a_block_only_refusal_the_witness_expected_is_not_met_by_another_at_the_top_level(mmscn_cmd, tmp_path):
    # cpu0's `unlazy` is refused because its current task has exited, which only a block
    # refuses; at the top level `unlazy cpu0` is refused by unlazy itself, whose words also
    # say "exited": the witness must not let that other refusal pass for it
    for tail, where in (("  mmget @A\n}\n", "block"),                       # cpu0 fails: its block, as it ran
                        ("}\ncpu1 {\n  assert idle0.active_mm != @A\n}\n", "left out")):   # cpu1 fails
        text = EXITED_THEN.replace("  schedule idle\n}\n", "  schedule idle\n" + tail)
        m = model_of(text)
        res = X.Explorer(m).run()
        assert any(m.units[b][i].expect is not None for b, i in res.path)
        w = X.witness_text(m, res)
        body = w.split("# the interleaving")[1]
        if where == "block":
            assert ('expect error "cpu0\'s current task A has exited; nothing else runs on cpu0 until it '
                    'schedules away"') in body
        else:
            assert "`unlazy cpu0` is left out" in body and "expect error" not in body
        (tmp_path / "w.mmscn").write_text(w)
        _check_replay(m, res, w, _witness_failures(mmscn_cmd, [tmp_path / "w.mmscn"])[0])


def test_a_refusal_the_witness_expects_is_quoted_in_full():
    text = ("cpus 2\nspawn A\nspawn kthread K\nschedule cpu1 A\n"
            "cpu0 {\n  expect error \"not\"\n  exit K\n  mmput @A\n}\n")
    m = model_of(text)
    res = X.Explorer(m).run()
    w = X.witness_text(m, res)
    assert 'expect error "K is not running; do_exit acts on current, so schedule K on a CPU first"' in w


def test_a_witness_step_whose_cpu_the_policy_tells_apart_runs_in_its_block(tmp_path):
    # powerpc's exit_mmap flushes every other CPU lazy on the mm: on cpu0 that spares
    # cpu0, at the top level (no CPU) it does not
    text = ("arch powerpc\ncpus 2\nspawn A\nspawn kthread K\nmmget @A\nschedule cpu0 A\nschedule cpu0 K\n"
            "schedule cpu1 A\nexit A\nschedule cpu1 idle\n"
            "cpu0 {\n  schedule idle\n  mmput @A\n  assert @A.cpumask == {}\n}\n")
    m = model_of(text)
    res = X.Explorer(m).run()
    w = X.witness_text(m, res)
    assert "cpu0 {\n  mmput @A" in w
    sc = load(w, "w.mmscn", policies.KnownArches())
    r = Runner(sc, w.split("\n")).run()
    assert r.failed and r.diagnostics[0].message == res.failure.message


# ---------------------------------------------------------------- consequences
def test_the_violations_one_bad_mmget_causes_follow_from_it(mmscn_cmd, tmp_path):
    text = "cpus 2\nspawn A\nschedule cpu0 A\nexit A\nmmget @A\n"
    doc = json.loads(cli(mmscn_cmd, tmp_path, text, "run", "--json").stdout)
    rules = [f["message"].split(":")[0] for f in doc["failures"]]
    assert rules == ["mmget-after-teardown", "mm_count-accounting", "users-resurrected"]
    assert "consequence_of" not in doc["failures"][0]
    assert [f.get("consequence_of") for f in doc["failures"][1:]] == [0, 0]
    assert all(f["message"].endswith("(follows from the mmget-after-teardown above)") for f in doc["failures"][1:])
    assert doc["steps"][-1]["message"].count("(follows from the mmget-after-teardown above)") == 2
    # explore says the same of the interleaving that reaches it
    blocks = text.replace("exit A\nmmget @A\n", "cpu0 {\n  exit A\n  schedule idle\n  mmget @A\n}\n")
    fail = json.loads(cli(mmscn_cmd, tmp_path, blocks, "explore", "--json").stdout)["failure"]
    assert fail["rules"] == rules and fail["consequence_of"] == [None, 0, 0]


def test_a_single_violation_has_no_consequence_field(mmscn_cmd, tmp_path):
    doc = json.loads(cli(mmscn_cmd, tmp_path, "cpus 2\nspawn A\nspawn thread T of A\nmmput @A\n", "run",
                         "--json").stdout)
    assert len(doc["failures"]) == 1 and "consequence_of" not in doc["failures"][0]
    fail = json.loads(cli(mmscn_cmd, tmp_path, "cpus 2\nspawn A\nspawn thread T of A\ncpu0 {\n  mmput @A\n}\n",
                          "explore", "--json").stdout)["failure"]
    assert fail["rules"] == ["unbalanced-mmput"] and "consequence_of" not in fail


def test_an_explored_counter_reads_as_a_number_not_a_flag():
    # the capture shares equal columns between states: (0, 0) equals (False, False)
    text = "cpus 2\nspawn A\ncpu0 {\n  schedule A\n  exit A\n  schedule idle\n  mmget @A\n}\n"
    res = X.Explorer(model_of(text)).run()
    assert "0 kthread_use_mm, 0 external mmgrab" in res.failure.message


# ---------------------------------------------------------------- examples say what explore prints
NUMBERS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6}


def test_a_race_comment_gives_the_shortest_witness_length_explore_finds():
    checked = 0
    for path in RACES:
        found = re.search(r"the shortest: (\w+) steps?", re.sub(r"\n# ", " ", path.read_text()))
        if not found:
            continue
        sc, text = load_file(path, policies.KnownArches())
        m = X.Model(sc, text.split("\n"))
        assert len(X.failing_steps(m, X.Explorer(m).run())) == NUMBERS[found.group(1)], path
        checked += 1
    assert checked
