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
CPUMASK = "cpus 2\nspawn A\nassert A.state == dead and @A.cpumask == {cpu0}\n"
CPUMASK_FINAL = "cpus 2\nspawn A\nfinal forall A.state == dead and @A.cpumask == {cpu0}\n"
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
    p = cli(mmscn_cmd, tmp_path, text, command)
    assert p.returncode == 1, p.stdout + p.stderr
    assert "internal error" not in p.stdout + p.stderr
    assert any(words in ln for ln in failure_lines(p.stdout)), p.stdout


def test_the_repl_shows_the_located_failure_that_run_shows(mmscn_cmd, tmp_path):
    for text, setup in ((CPUMASK, ["cpus 2"]), (NOT_YET, [])):
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
