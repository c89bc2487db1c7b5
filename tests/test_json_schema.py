"""Every `--json` document mmscn prints follows mmscn/schema/mmscn-output.schema.json.

run (one file, several files, --states, --state-at), explore (exhaustive,
--all-finals, --random, a failing prologue, a cut search), compare (the
table and --diff) are produced for every example, compare and validate for
every committed kernel trace, and validated; the schema
itself is checked to reject what it must (a missing or wrong format, an
unknown key), so these tests can fail.
"""
import contextlib
import copy
import gc
import io
import json
from pathlib import Path

import jsonschema
import pytest

from mmscn import cli
from mmscn.interpreter import policies
from mmscn.interpreter.report import JSON_FORMAT
from mmscn.pictures.schema import SCHEMA_PATH, schema

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
EXAMPLE_FILES = sorted(EXAMPLES.rglob("*.mmscn"))
BLOCK_FILES = [p for p in EXAMPLE_FILES if "cpu0 {" in p.read_text() or "cpu1 {" in p.read_text()]
TRACES = ROOT / "tests" / "data" / "traces"
TRACE_FILES = sorted(TRACES.rglob("*.txt"))     # not their .txt.ps snapshots


@pytest.fixture(scope="module")
def validator():
    s = schema()
    jsonschema.Draft202012Validator.check_schema(s)
    return jsonschema.Draft202012Validator(s)


def output(*args):
    """The exit status and the stdout of an `mmscn` command, run in this process."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        status = cli.main([str(a) for a in args])
    gc.enable()       # main() turns the collector off for its run
    return status, out.getvalue()


def doc(*args):
    """The JSON an `mmscn` command prints."""
    status, text = output(*args)
    assert status in (0, 1, 3), (args, status)
    return json.loads(text)


def valid(validator, d):
    errors = sorted(validator.iter_errors(d), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message[:300]}" for e in errors[:5])


def test_the_schema_is_shipped_and_versioned():
    assert Path(SCHEMA_PATH).is_file() and Path(SCHEMA_PATH).parent.name == "schema"
    assert schema()["$defs"]["head"]["properties"]["format"] == {"const": JSON_FORMAT}
    assert "schema/*.json" in (ROOT / "pyproject.toml").read_text()


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: str(p.relative_to(EXAMPLES)))
def test_run_json(validator, path):
    d = doc("run", "--json", path)
    assert (d["format"], d["kind"]) == (JSON_FORMAT, "run")
    valid(validator, d)
    if "verdicts" in d:     # several `expect` lines: --states draws the header's kernel, not theirs
        return
    d = doc("run", "--json", "--states", path)
    assert all("state" in s for s in d["steps"])
    valid(validator, d)


def runs_under(path, arch) -> bool:
    """Whether the file can run as a what-if under ``arch``: a `revert` or `expect ... without` of
    a fix to another architecture's code, or one later than the release the arch stands for
    (linux-2.3), is a located error there (examples/history); so is a `kernel` the arch does not have."""
    import re
    from mmscn.interpreter import version as V
    from mmscn.interpreter.arches import arch_release
    keys = re.findall(r"^(?:revert|expect \w+ without)\s+([0-9a-f ]+)", path.read_text(), re.M)
    changes, fixed = {c.key: c for c in V.CHANGES}, policies.get(arch).kernel
    release = re.search(r"^kernel\s+(v[\d.]+)", path.read_text(), re.M)
    if release and arch_release(arch, release.group(1)):   # ia64 has no v6.14: a located error
        return False
    return all(V.touches(changes[k], arch) and (fixed is None or V.lands(k, fixed))
               for ks in keys for k in ks.split() if k in changes)


@pytest.mark.parametrize("arch", policies.names())
def test_run_json_under_every_policy(validator, arch):
    """The hardware fields (loaded_mm, lazy, mm_cpumask, ptbr) differ by policy."""
    for path in EXAMPLE_FILES:
        if runs_under(path, arch):
            valid(validator, doc("run", "--json", "--arch", arch, path))
            valid(validator, doc("run", "--json", "--states", "--arch", arch, path))


def test_several_files_and_failures(validator, tmp_path):
    bad = tmp_path / "bad.mmscn"
    bad.write_text("spawn A\nassert @A.users == 2\nexit A\n")
    d = doc("run", "--json", EXAMPLES / "zombie_mm.mmscn", bad)
    assert isinstance(d, list) and d[1]["failures"]
    valid(validator, d)


def test_state_at_json(validator):
    d = doc("run", "--json", "--state-at", 33, EXAMPLES / "arch" / "x86_lazy_through_flush.mmscn")
    assert d["kind"] == "state" and d["line"] == 33
    valid(validator, d)
    d = doc("run", "--json", "--state-at", 30, EXAMPLES / "arch" / "alpha_context_load.mmscn")
    assert "ptbr" in d["state"]["tasks"][0]
    valid(validator, d)


@pytest.mark.parametrize("path", BLOCK_FILES, ids=lambda p: str(p.relative_to(EXAMPLES)))
def test_explore_json(validator, path):
    for extra in ((), ("--all-finals",), ("--random", "5", "--seed", "1"), ("--max-states", "2")):
        d = doc("explore", "--json", path, *extra)
        assert (d["format"], d["kind"]) == (JSON_FORMAT, "explore")
        valid(validator, d)


def test_explore_json_of_a_failing_prologue(validator, tmp_path):
    f = tmp_path / "p.mmscn"
    f.write_text("cpus 2\nspawn A\nassert @A.users == 3\ncpu0 {\n  schedule A\n}\ncpu1 {\n  schedule idle\n}\n")
    d = doc("explore", "--json", f)
    assert d["mode"] == "prologue"
    valid(validator, d)


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: str(p.relative_to(EXAMPLES)))
def test_compare_json(validator, path):
    d = doc("compare", "--json", path)
    assert (d["format"], d["kind"]) == (JSON_FORMAT, "compare")
    assert all("failure" in c for c in d["policies"])
    valid(validator, d)


def test_compare_diff_json(validator):
    d = doc("compare", "--json", "--diff", "generic,powerpc", EXAMPLES / "zombie_mm.mmscn")
    assert d["diff"]["parted_at"] is not None
    valid(validator, d)
    d = doc("compare", "--json", "--diff", "x86,x86", EXAMPLES / "zombie_mm.mmscn")
    assert d["diff"]["parted_at"] is None
    valid(validator, d)


@pytest.mark.parametrize("path", TRACE_FILES, ids=lambda p: str(p.relative_to(TRACES)))
def test_trace_compare_json(validator, path):
    d = doc("compare", "--json", path)
    assert (d["format"], d["kind"]) == (JSON_FORMAT, "compare-trace")
    assert d["trace_format"] == d["import"]["trace_format"] in ("perf script", "ftrace", "trace-cmd report")
    valid(validator, d)


@pytest.mark.parametrize("path", TRACE_FILES, ids=lambda p: str(p.relative_to(TRACES)))
def test_trace_validate_json(validator, path):
    status, text = output("validate", "--json", path)
    if status == 2:     # no tlb:tlb_flush events: said on stderr, no document
        assert text == "" and "tlb_flush" not in path.read_text()
        return
    d = json.loads(text)
    assert (d["format"], d["kind"]) == (JSON_FORMAT, "validate")
    valid(validator, d)


def test_the_schema_rejects(validator):
    good = doc("run", "--json", EXAMPLES / "zombie_mm.mmscn")
    valid(validator, good)
    for change in (lambda d: d.pop("format"), lambda d: d.update(format=2), lambda d: d.update(kind="explore"),
                   lambda d: d.update(surprise=1), lambda d: d["steps"][0].update(status="fine"),
                   lambda d: d["state"]["mms"][0].update(state="zombified"),
                   lambda d: d["steps"][0]["events"][0].update(kind="other")):
        bad = copy.deepcopy(good)
        change(bad)
        assert not validator.is_valid(bad), change
    cmp = doc("compare", "--json", EXAMPLES / "zombie_mm.mmscn")
    bad = copy.deepcopy(cmp)
    bad["policies"][0].pop("failure")
    assert not validator.is_valid(bad)
    trace = doc("compare", "--json", TRACES / "perf_basic.txt")
    checked = doc("validate", "--json", TRACES / "perf_basic.txt")
    valid(validator, trace)
    valid(validator, checked)
    for d, change in ((trace, lambda d: d.update(format="perf script")), (trace, lambda d: d.update(kind="compare")),
                      (trace, lambda d: d["policies"][0].update(surprise=1)),
                      (trace, lambda d: d["import"].update(surprise=1)),
                      (checked, lambda d: d.pop("agreement")), (checked, lambda d: d["per_cpu"][0].pop("judged"))):
        bad = copy.deepcopy(d)
        change(bad)
        assert not validator.is_valid(bad), change
