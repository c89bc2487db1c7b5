"""The pictures (docs/pictures.md): `mmscn draw`, `run --svg`, `explore --svg`, `draw --format dot`,
`run --state-at`, `compare` explaining itself and `--diff`, `test --html`, pytest's `--mmscn-html`,
the REPL's `:draw`.

Every SVG is parsed (xml.etree) and checked for its structure: a lane per CPU,
one cell per stretch a CPU runs the same task on the same mm, one arrow per
IPI, one mark per page-table load, the failure marked.  The counts come from
the run itself (its JSON), and for the three goldens (tests/golden_svg/) by
hand from the scenario.  The SVG, the HTML page and a DOT rendering are opened
in headless Chromium and Graphviz (Debian's chromium and graphviz, installed by
tests/run.sh); the screenshots are PNGs, checked to be pictures of something.
Under CI=true a missing Chromium or Graphviz fails these tests.

MMSCN_UPDATE_GOLDEN_SVG=1 rewrites the golden SVGs (then look at them).
"""
import io
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import xml.etree.ElementTree as ET
import zlib
from html.parser import HTMLParser
from pathlib import Path

import pytest

from mmscn.dsl.resolve import load, load_file
from mmscn.interpreter import explore as X
from mmscn.interpreter import policies
from mmscn.pictures import record
from mmscn.pictures.dot import dot
from mmscn.pictures.html import html_report
from mmscn.pictures.svg import PALETTE, svg

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
GOLDEN = Path(__file__).resolve().parent / "golden_svg"
IN_CI = os.environ.get("CI") == "true"
NS = "{http://www.w3.org/2000/svg}"
EXAMPLE_FILES = sorted(EXAMPLES.rglob("*.mmscn"))


def cli(cmd, *args, cwd=None, **kw):
    return subprocess.run(cmd + [str(a) for a in args], capture_output=True, text=True, timeout=120, cwd=cwd, **kw)


def timeline(rel: str, arch=None):
    """The timeline of a file given relative to the repository, so its path in the picture is that."""
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        sc, text = load_file(rel, policies.KnownArches(), arch)
        return record.run_timeline(sc, text.split("\n"), arch)
    finally:
        os.chdir(cwd)


def parse(text: str):
    return ET.fromstring(text)


def by_class(root, cls):
    return [e for e in root.iter() if cls in (e.get("class") or "").split()]


def lane_cells(root) -> dict:
    """cpu -> [cell titles] over every fold."""
    out = {}
    for lane in by_class(root, "lane"):
        out.setdefault(lane.get("data-cpu"), []).extend(
            c.find(NS + "title").text for c in lane if c.get("class") == "cell")
    return out


# ====================================================================== goldens, by hand
# (file, cells per CPU, IPIs as (sender, target) by line, page-table loads as (line, cpu), mm rows)
HAND = {
    "examples/zombie_mm.mmscn": (
        # cpu0: idle0 | A | kw on @A (lazy) | B;  cpu1: idle1 | A | dead A (lazy) | idle1 on @A (lazy) | C
        {"cpu0": 4, "cpu1": 5}, [],
        [(17, 0), (19, 1), (34, 0), (37, 1)], ["@init_mm", "@A", "@B", "@C"]),
    "examples/arch/x86_lazy_through_flush.mmscn": (
        # cpu0: idle0 | A | kw | A | kw (the flush IPI moves CR3, not active_mm) | A;  cpu1: idle1 | A2 | B
        {"cpu0": 6, "cpu1": 3},
        [(33, None, 1), (44, None, 0), (44, None, 1), (60, None, 0), (60, None, 1)],   # top-level flushes
        [(25, 0), (27, 1), (44, 0), (52, 0), (58, 1)], ["@init_mm", "@A", "@B"]),
    "examples/arch/powerpc_shootdown_at_exit.mmscn": (
        # cpu0: idle0 | A | kw @A | kw @init_mm (shot down) | B | dead B | kw @B | kw @init_mm
        # cpu1: idle1 | A | dead A on @init_mm | idle1;  cpu2: idle2 | io @init_mm | io @B | io @init_mm
        {"cpu0": 8, "cpu1": 4, "cpu2": 4},
        [(31, 1, 0), (48, None, 0), (48, None, 2)],      # exit A on cpu1; the top-level mmput @B
        [(21, 0), (25, 1), (31, 0), (31, 1), (40, 0), (43, 2), (48, 0), (51, 2)], ["@init_mm", "@A", "@B"]),
}


def golden_name(rel: str) -> Path:
    return GOLDEN / (Path(rel).stem + ".svg")


@pytest.mark.parametrize("rel", sorted(HAND))
def test_golden_svg(rel):
    text = svg(timeline(rel))
    g = golden_name(rel)
    if os.environ.get("MMSCN_UPDATE_GOLDEN_SVG"):
        GOLDEN.mkdir(exist_ok=True)
        g.write_text(text, encoding="utf-8")
    assert text == g.read_text(encoding="utf-8"), f"{g} differs (MMSCN_UPDATE_GOLDEN_SVG=1 rewrites it)"


@pytest.mark.parametrize("rel", sorted(HAND))
def test_golden_structure_by_hand(rel):
    cells, ipis, loads, mms = HAND[rel]
    root = parse(golden_name(rel).read_text(encoding="utf-8"))
    assert {cpu: len(ts) for cpu, ts in lane_cells(root).items()} == cells
    got = []
    for g in by_class(root, "ipi"):
        tip = g.find(NS + "title").text
        m = re.fullmatch(r"IPI from (cpu(\d+)|a CPU outside .*) to cpu(\d+): \w+ \(line (\d+)\)", tip)
        assert m, tip
        got.append((int(m.group(4)), int(m.group(2)) if m.group(2) else None, int(m.group(3))))
    assert sorted(got, key=str) == sorted(ipis, key=str)
    marks = [re.fullmatch(r"page-table load on cpu(\d+) \(line (\d+)\)", e.find(NS + "title").text).groups()
             for e in by_class(root, "pgtable-load")]
    assert sorted((int(line), int(cpu)) for cpu, line in marks) == sorted(loads)
    assert [e.get("data-mm") for e in by_class(root, "mm")] == mms
    assert by_class(root, "failure") == []


def test_the_same_bytes_every_time(mmscn_cmd, tmp_path):
    """Byte-identical from run to run, whatever the hash seed."""
    outs = []
    for seed in ("1", "2"):
        out = tmp_path / f"z{seed}.svg"
        p = cli(mmscn_cmd, "draw", "examples/zombie_mm.mmscn", "-o", out, cwd=ROOT,
                env={**os.environ, "PYTHONHASHSEED": seed})
        assert p.returncode == 0 and p.stderr == "", p.stderr
        outs.append(out.read_bytes())
    assert outs[0] == outs[1] == golden_name("examples/zombie_mm.mmscn").read_bytes()


# ====================================================================== every example, checked against its run
def run_json(path, arch=None):
    from mmscn.interpreter.report import run_json as rj
    sc, text = load_file(str(path), policies.KnownArches(), arch)
    rec = record.record_run(sc, text.split("\n"), arch, states=True)
    return rec, rj(rec.result, text.split("\n"), rec.states)


def stretches(doc, cpu) -> int:
    """The number of stretches a CPU runs one task on one mm the same way, from the run's JSON."""
    out, last = 0, None
    for st in doc["steps"]:
        c = st["state"]["cpus"][cpu]
        task = next(t for t in st["state"]["tasks"] if t["name"] == c["curr"])
        key = (c["online"], c["curr"], c["active_mm"], task["mm"] == "none" and c["active_mm"] != "none",
               task["state"] == "dead")
        if key != last:
            out += 1
            last = key
    return out


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=lambda p: str(p.relative_to(EXAMPLES)))
def test_every_example_draws_what_it_ran(path):
    rec, doc = run_json(path)
    root = parse(svg(record.timeline_of(rec)))
    cells = lane_cells(root)
    n = doc["cpus"]
    assert sorted(cells) == [f"cpu{c}" for c in range(n)], "a lane per CPU"
    # one cell per stretch (a stretch that a fold cuts is two cells: these examples fit one fold)
    assert len(by_class(root, "fold")) == 1
    for c in range(n):
        assert len(cells[f"cpu{c}"]) == stretches(doc, c), f"cpu{c}"
    assert len(by_class(root, "ipi")) == doc["cost"]["ipis"]
    assert len(by_class(root, "pgtable-load")) == doc["cost"]["pgtable_loads"]
    assert len(by_class(root, "step")) == len(doc["steps"])
    assert [e.get("data-mm") for e in by_class(root, "mm")] == [m["name"] for m in doc["state"]["mms"]]
    assert len(by_class(root, "failure")) == (1 if doc["failures"] else 0)
    ran = sum(1 for s in doc["steps"] if "cpu" in s)
    assert len(by_class(root, "ran")) == ran, "a bar under each block statement's CPU"


@pytest.mark.parametrize("arch", policies.names())
def test_ipis_and_loads_are_found_under_every_policy(arch):
    """record.py reads IPI targets and page-table loads off the trace: every IPI the
    cost counter counts has its target, never the sender itself, under every policy."""
    from mmscn.dsl.parser import ParseFailed
    from mmscn.interpreter.arches import known_arches
    for path in EXAMPLE_FILES:
        try:        # the file's header under this arch, as `mmscn draw --arch` checks it
            load_file(str(path), known_arches(), arch)
        except ParseFailed:
            continue        # e.g. `kernel v6.17` under ia64 (removed in v6.7): refused with its line
        rec, doc = run_json(path, arch)
        cols = rec.columns
        assert sum(len(c.ipis) for c in cols) == doc["cost"]["ipis"], path
        for c in cols:
            for sender, target, fn in c.ipis:
                assert sender != target and 0 <= target < doc["cpus"], (path, c.line, fn)
            assert all(0 <= cpu < doc["cpus"] for cpu in c.loads)


def test_a_failure_is_marked_where_it_happened():
    sc = load('scenario "x"\ncpus 2\nspawn A\nschedule cpu0 A\nassert @A.users == 2\nspawn B\n',
              "f.mmscn", policies.KnownArches())
    tl = record.run_timeline(sc, ['scenario "x"', "cpus 2", "spawn A", "schedule cpu0 A", "assert @A.users == 2",
                                  "spawn B"])
    root = parse(svg(tl))
    [f] = by_class(root, "failure")
    assert "line 5: assertion failed: @A.users == 2: actual 1" in f.find(NS + "title").text
    # the frame is around the third column (spawn A, schedule, assert)
    rect = f.find(NS + "rect")
    steps = by_class(root, "step")
    assert rect.get("x") == str(int(steps[2].find(NS + "rect").get("x")) - 1)
    assert "assertion failed" in "".join(e.text for e in by_class(root, "failure-label"))


def test_hatched_while_borrowed_coloured_by_mm():
    root = parse(golden_name("examples/zombie_mm.mmscn").read_text())
    fills = {}
    for lane in by_class(root, "lane"):
        for cell in lane:
            if cell.get("class") == "cell":
                head = cell.find(NS + "title").text.split("\n")[0]
                fills[re.sub(r" \(lines? [0-9-]+\)$", "", head)] = cell.find(NS + "rect").get("fill")
    assert fills["cpu0: kw on @A, borrowed lazily (mm NULL)"] == f"url(#h{PALETTE[0][1:]})"
    assert fills["cpu0: A on @A, its own mm"] == PALETTE[0]
    assert fills["cpu0: B on @B, its own mm"] == PALETTE[1]
    assert fills["cpu1: A (dead) on @A, borrowed lazily (mm NULL)"] == f"url(#h{PALETTE[0][1:]})"
    assert fills["cpu1: idle1 on @init_mm, borrowed lazily (mm NULL)"] == "url(#hBBBBBB)"
    # the mm rows: @A live, then zombie (hatched), then freed
    a = next(e for e in by_class(root, "mm") if e.get("data-mm") == "@A")
    states = [g.get("data-state") for g in a if g.get("class") == "mm-state"]
    assert states[0] == "live" and "zombie" in states and states[-1] == "freed"
    assert len(a.findall(NS + "path")) == 2, "mm_users and mm_count step lines"


def test_tooltips_have_the_statement_and_its_trace():
    root = parse(golden_name("examples/zombie_mm.mmscn").read_text())
    tips = [e.find(NS + "title").text for e in by_class(root, "step")]
    assert tips[0].startswith("line 14: spawn A\n  A copy_process fork: A gets a fresh mm @A")
    cell = next(t for t in lane_cells(root)["cpu0"] if t.startswith("cpu0: kw on @A"))
    assert "line 18: schedule cpu0 kw" in cell and "@A mmgrab_lazy_tlb count 1 -> 2" in cell


def test_hostile_text_is_escaped():
    """A title with markup and control characters: the SVG still parses, shows the
    markup as text, and carries no control character."""
    text = 'scenario "<script>alert(1)</script> & \x1b]0;pwned\x07"\nspawn A\nassert @A.users == 5\n'
    sc = load(text, "evil\x1b[2J<b>.mmscn", policies.KnownArches())
    out = svg(record.run_timeline(sc, text.split("\n")))
    root = parse(out)
    assert "<script>" not in out and "&lt;script&gt;" in out
    assert not re.search(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", out)
    assert root.find(NS + "title").text.startswith("evil?[2J<b>.mmscn: <script>")


def test_long_runs_fold():
    """150 statements: three folds of 60, each with only the mms alive in it."""
    lines = ["cpus 2", "spawn kthread kw"]
    i = 0
    while len(lines) < 152:
        lines += [f"spawn A{i}", f"schedule cpu0 A{i}", "schedule cpu0 kw", f"schedule cpu1 A{i}", f"exit A{i}",
                  "schedule cpu1 idle", "schedule cpu0 idle"]
        i += 1
    lines = lines[:152]
    sc = load("\n".join(lines), "churn.mmscn", policies.KnownArches())
    tl = record.run_timeline(sc, lines)
    root = parse(svg(tl))
    folds = by_class(root, "fold")
    assert len(folds) == 3 and len(tl.columns) == 151
    for f in folds:
        mms = [e.get("data-mm") for e in by_class(f, "mm")]
        assert len(mms) < 14 and mms[0] == "@init_mm", mms     # not all 22 mms in every fold
    assert len(by_class(root, "step")) == 151


def churn(n: int, arch: str = "generic", fail_at=None) -> list:
    """About n lines of fork, borrow, migrate, flush, exit (a new mm every 8 lines); a failing
    assertion after line ``fail_at``."""
    lines = [f"arch {arch}", "cpus 2", "spawn kthread kw"]
    i = 0
    while len(lines) < n:
        lines += [f"spawn A{i}", f"schedule cpu0 A{i}", "schedule cpu0 kw", f"schedule cpu1 A{i}", f"flush @A{i}",
                  f"exit A{i}", "schedule cpu1 idle", "schedule cpu0 idle"]
        if fail_at is not None and fail_at < len(lines):
            lines.append(f"assert @A{i}.users == 7")
            fail_at = None
        i += 1
    return lines


def drawn(lines):
    sc = load("\n".join(lines), "churn.mmscn", policies.KnownArches())
    rec = record.record_run(sc, lines)
    return rec, record.timeline_of(rec)


def band_counts(band) -> dict:
    """What a folded band says: label (cpu0, mms, statements) -> {words: the number before them}."""
    texts = [t.text for t in band if t.tag == NS + "text"]
    words = ("page-table load", "IPI", "task", "change", "made", "freed", "ok", "failed")
    return {label: {w: int(m.group(1).replace(",", "")) for w in words
                    for m in [re.search(rf"([\d,]+) {w}", text)] if m}
            for label, text in zip(texts[1::2], texts[2::2])}


def test_a_long_run_folds_its_middle_into_counts():
    """A run of more than MAX_FOLDS folds draws its first and last folds and counts the rest: every
    statement, page-table load and IPI is drawn or counted, once."""
    from mmscn.pictures import svg as S
    rec, tl = drawn(churn(1200, "x86"))
    n = len(tl.columns)
    assert n > S.FOLD * (S.MAX_FOLDS + 1)
    root = parse(svg(tl))
    folds = by_class(root, "fold")
    assert len(folds) == S.HEAD_FOLDS + S.TAIL_FOLDS
    [band] = by_class(root, "folded")
    a, b = int(band.get("data-from")) - 1, int(band.get("data-to"))
    assert (a, b) == (S.HEAD_FOLDS * S.FOLD, (len(range(0, n, S.FOLD)) - S.TAIL_FOLDS) * S.FOLD)
    assert int(band.get("data-statements")) + len(by_class(root, "step")) == n == b - a + len(by_class(root, "step"))
    said = band_counts(band)
    from mmscn.interpreter.kernel import C_IPI, C_PGTABLE
    loads, ipis = rec.k.cost[C_PGTABLE], rec.k.cost[C_IPI]
    assert ipis > 0 and loads > 0
    assert sum(said[f"cpu{c}"]["page-table load"] for c in range(2)) + len(by_class(root, "pgtable-load")) == loads
    assert sum(said[f"cpu{c}"]["IPI"] for c in range(2)) + len(by_class(root, "ipi")) == ipis
    made = sum(1 for m in tl.mm_names if m != "@init_mm" and a <= record_life(tl, m) < b)
    assert said["mms"]["made"] == made > 50
    assert said["statements"] == {"ok": b - a}
    # the mm rows go on after the band with the mms alive then, not with all of them
    assert len(by_class(folds[S.HEAD_FOLDS], "mm")) < 15 < len(tl.mm_names)
    # --full (svg(full=True)) draws every statement
    assert len(by_class(parse(svg(tl, full=True)), "step")) == n


def record_life(tl, m) -> int:
    return next(i for i, c in enumerate(tl.columns) if m in c.mms)


def test_a_failure_in_the_middle_is_drawn():
    from mmscn.pictures import svg as S
    _, tl = drawn(churn(2000, fail_at=1000))
    col = tl.failure[0]
    assert S.FOLD * S.HEAD_FOLDS < col < len(tl.columns) - S.FOLD * S.TAIL_FOLDS
    root = parse(svg(tl))
    [f] = by_class(root, "failure")
    assert f.find(NS + "title").text.startswith(f"line {tl.columns[col].line}: assertion failed: @A")
    bands = by_class(root, "folded")
    assert len(bands) == 2 and len(by_class(root, "fold")) == S.HEAD_FOLDS + S.TAIL_FOLDS + 2
    steps = [int(e.find(NS + "title").text.split(":")[0].split()[1]) for e in by_class(root, "step")]
    assert tl.columns[col].line in steps and tl.columns[col - S.FOLD].line in steps   # the fold before it too
    assert band_counts(bands[1])["statements"]["ok"] == int(bands[1].get("data-statements"))


def test_a_long_run_stays_small():
    """The size of a folded picture does not grow with the run: 10,000 statements in well under 1 MB
    (the whole of it would be 6.5 MB, benchmarks/bench_draw.py)."""
    small = svg(drawn(churn(2000))[1])
    _, tl = drawn(churn(10000))
    big = svg(tl)
    assert len(tl.columns) > 9900
    assert len(big.encode()) < 400_000 and len(big) < 1.2 * len(small)


# ====================================================================== the witness, the state graph
def model_of(rel):
    sc, text = load_file(str(ROOT / rel), policies.KnownArches())
    return X.Model(sc, text.split("\n"))


def test_witness_timeline_is_the_failing_interleaving():
    model = model_of("examples/races/use_mm_vs_exit_unsafe.mmscn")
    res = X.Explorer(model).run()
    tl = record.witness_timeline(model, res)
    root = parse(svg(tl))
    steps = [e.find(NS + "title").text for e in by_class(root, "step")]
    assert len(steps) == len(model.sc.stmts) + len(res.path)
    assert [s.split(":")[0] for s in steps[-3:]] == ["line 28", "line 29", "line 33"]
    assert steps[-1].startswith("line 33: cpu1: use_mm kw @A (violation)")
    [f] = by_class(root, "failure")
    assert "use-after-teardown" in f.find(NS + "title").text
    assert len(by_class(root, "ran")) == 3


def test_explore_svg_cli(mmscn_cmd, tmp_path):
    out = tmp_path / "w.svg"
    p = cli(mmscn_cmd, "explore", EXAMPLES / "races" / "use_mm_vs_exit_unsafe.mmscn", "--svg", out)
    assert p.returncode == 0, p.stderr
    assert by_class(parse(out.read_text()), "failure")
    safe = tmp_path / "s.svg"
    p = cli(mmscn_cmd, "explore", EXAMPLES / "races" / "use_mm_vs_exit_safe.mmscn", "--svg", safe)
    assert p.returncode == 0 and "no failing interleaving, so no picture written" in p.stderr
    assert not safe.exists()
    p = cli(mmscn_cmd, "explore", EXAMPLES / "races" / "use_mm_vs_exit_unsafe.mmscn", "--svg", out)
    assert p.returncode == 2 and "exists; pass --force" in p.stderr and p.stdout == ""


def test_the_edge_hook_sees_every_transition():
    model = model_of("examples/races/use_mm_vs_exit_safe.mmscn")
    plain = X.Explorer(model).run()
    seen = []
    hooked = X.Explorer(model, on_edge=lambda *a: seen.append(a)).run()
    assert len(seen) == hooked.stats.transitions == plain.stats.transitions
    assert hooked.stats.distinct == plain.stats.distinct
    assert len({a[1] for a in seen if a[1] is not None} | {0}) == hooked.stats.distinct


def test_dot_graph():
    model = model_of("examples/races/use_mm_vs_exit_unsafe.mmscn")
    text = dot(model)
    res = X.Explorer(model_of("examples/races/use_mm_vs_exit_unsafe.mmscn"), all_finals=True).run()
    nodes = re.findall(r"^  s(\d+) \[", text, re.M)
    assert len(nodes) == res.stats.distinct
    edges = re.findall(r"^  s\d+ -> [sf]\d+ ", text, re.M)
    assert len(edges) == res.stats.transitions
    witness = re.findall(r'label="step (\d+): ', text)
    assert witness == ["1", "2", "3"]
    assert "use-after-teardown" in text and "peripheries=2" in text
    assert re.search(r'label="cpu1: use_mm kw @A\\lline 33\\l"', text)


def test_dot_graph_over_kernel_steps(mmscn_cmd):
    """granularity step: an edge per transition of the search over steps, named by the kernel step
    it ran; the kernel drawn is the header's (`revert 38cf307c1f20`), so the failure is there and
    its path numbered as `mmscn explore` reports it (9 steps)."""
    p = cli(mmscn_cmd, "draw", "--format", "dot", EXAMPLES / "history" / "LT-02-witness.mmscn")
    assert p.returncode == 0, p.stderr
    text = p.stdout
    seen = []
    res = X.Explorer(model_of("examples/history/LT-02-witness.mmscn"), all_finals=True,
                     on_edge=lambda *a: seen.append(a)).run()
    assert res.complete and res.failure.kind == "violation" and len(res.path) == 9
    assert len(re.findall(r"^  s(\d+) \[", text, re.M)) == res.stats.distinct
    assert len(re.findall(r"^  s\d+ -> [sf]\d+ ", text, re.M)) == len(seen) > res.stats.distinct - 1
    steps = re.findall(r'label="step (\d+): ([^\\]*)', text)
    assert [int(n) for n, _ in steps] == list(range(1, 10))
    assert steps[0][1] == "cpu0: flush_tlb_mm_range: decide the targets, flush locally, send the IPIs"
    assert steps[2][1] == "ipi cpu1: ipi_flush_tlb_mm: the IPI from cpu0"
    assert "stale-tlb" in text and "1 states" not in text
    # a node says what sets it apart between two kernel steps: the next step, IPIs queued, TLB generations
    labels = re.findall(r'^  s\d+ \[label="\w+: ([^"]*)"', text, re.M)
    assert len(labels) == res.stats.distinct == len(set(labels))
    assert "cpu0 next: flush_tlb_mm_range: wait for the IPIs (smp_call_function_many, wait=1)" in text
    assert "cpu1 IPI queued from cpu0" in text and "@T 2/2 live, flushed to generation 1" in text


def test_draw_takes_the_first_expect_lines_kernel(mmscn_cmd, tmp_path):
    """A picture is of the first `expect` line's kernel, as `run --svg`: LT-02 with `expect fail
    without 38cf307c1f20` first is drawn on the reverted kernel (its failure marked), as it is
    (`expect pass` first) on the fixed one."""
    text = (EXAMPLES / "history" / "LT-02-kthread-use-mm-flush-ipi.mmscn").read_text()
    f = tmp_path / "lt02.mmscn"
    f.write_text(text.replace("expect pass\nexpect fail without 38cf307c1f20\n",
                              "expect fail without 38cf307c1f20\nexpect pass\n"))
    assert "stale-tlb" in cli(mmscn_cmd, "draw", "--format", "dot", f).stdout
    assert "stale-tlb" not in cli(mmscn_cmd, "draw", "--format", "dot",
                                  EXAMPLES / "history" / "LT-02-kthread-use-mm-flush-ipi.mmscn").stdout


def test_dot_needs_blocks(mmscn_cmd):
    p = cli(mmscn_cmd, "draw", "--format", "dot", EXAMPLES / "zombie_mm.mmscn")
    assert p.returncode == 2 and "no per-CPU blocks" in p.stderr and p.stdout == ""


# ====================================================================== the command line
def test_draw_writes_only_new_files(mmscn_cmd, tmp_path):
    out = tmp_path / "z.svg"
    assert cli(mmscn_cmd, "draw", EXAMPLES / "zombie_mm.mmscn", "-o", out).returncode == 0
    first = out.read_text()
    p = cli(mmscn_cmd, "draw", EXAMPLES / "zombie_mm.mmscn", "-o", out)
    assert p.returncode == 2 and "exists; pass --force to replace it" in p.stderr
    link = tmp_path / "link.svg"
    link.symlink_to(tmp_path / "elsewhere.svg")
    p = cli(mmscn_cmd, "draw", EXAMPLES / "zombie_mm.mmscn", "-o", link, "--force")
    assert p.returncode == 2 and "symlink" in p.stderr and not (tmp_path / "elsewhere.svg").exists()
    scen = tmp_path / "s.mmscn"
    scen.write_text("spawn A\n")
    p = cli(mmscn_cmd, "draw", scen, "-o", scen, "--force")
    assert p.returncode == 2 and "the scenario file itself" in p.stderr and scen.read_text() == "spawn A\n"
    p = cli(mmscn_cmd, "draw", EXAMPLES / "zombie_mm.mmscn", "-o", out, "--force", "--arch", "x86")
    assert p.returncode == 0 and out.read_text() != first and "arch x86" in out.read_text()
    p = cli(mmscn_cmd, "draw", EXAMPLES / "zombie_mm.mmscn")
    assert p.returncode == 0 and p.stdout.startswith("<svg ")


def test_run_svg(mmscn_cmd, tmp_path):
    out = tmp_path / "r.svg"
    p = cli(mmscn_cmd, "run", EXAMPLES / "zombie_mm.mmscn", "--svg", out)
    assert p.returncode == 0 and "passed: " in p.stdout
    assert len(by_class(parse(out.read_text()), "lane")) == 2
    both = tmp_path / "both.svg"
    p = cli(mmscn_cmd, "run", EXAMPLES / "zombie_mm.mmscn", "--svg", both, "--state-at", "21")
    assert p.returncode == 0 and "the state after line 21" in p.stdout and both.read_text() == out.read_text()
    p = cli(mmscn_cmd, "run", EXAMPLES / "zombie_mm.mmscn", EXAMPLES / "two_counters.mmscn", "--svg", tmp_path / "x.svg")
    assert p.returncode == 2 and "--svg and --state-at take one FILE" in p.stderr


def test_run_svg_is_the_drawing(mmscn_cmd, tmp_path):
    """`run --svg` and `mmscn draw` write the same picture (a file with blocks: the note on the round robin too)."""
    src = EXAMPLES / "races" / "use_mm_vs_exit_unsafe.mmscn"
    out = tmp_path / "r.svg"
    cli(mmscn_cmd, "run", src, "--svg", out)
    p = cli(mmscn_cmd, "draw", src)
    assert p.returncode == 0 and out.read_text() == p.stdout and "round robin" in p.stdout


def test_svg_goes_through_the_registry_of_formats(monkeypatch, tmp_path, capsys):
    """--svg on run and explore, and `mmscn draw`, write what formats.py's ("run"|"explore", "svg") writes."""
    import types
    from mmscn import cli as C, formats

    class Mark(formats.Format):
        def item(self, *report):
            self.out.write(f"<svg>{type(report[0]).__name__} {sorted(self.opts)}</svg>\n")

    mod = types.ModuleType("tests_pictures_mark")
    mod.Mark = Mark
    monkeypatch.setitem(sys.modules, "tests_pictures_mark", mod)
    monkeypatch.setattr(formats, "FORMATS", dict(formats.FORMATS))
    formats.register("run", "svg", "tests_pictures_mark:Mark")
    formats.register("explore", "svg", "tests_pictures_mark:Mark")
    src = EXAMPLES / "races" / "use_mm_vs_exit_unsafe.mmscn"
    for argv, want in ((["run", src, "--svg", tmp_path / "r.svg"], "<svg>RunResult ['recorder']</svg>\n"),
                       (["explore", src, "--svg", tmp_path / "e.svg"], "<svg>Model ['arch']</svg>\n"),
                       (["draw", src, "-o", tmp_path / "d.svg"], "<svg>RunResult ['full', 'recorder']</svg>\n")):
        C.main([str(a) for a in argv])
        assert Path(argv[-1]).read_text() == want, argv
    capsys.readouterr()


def test_draw_full(mmscn_cmd, tmp_path):
    src = tmp_path / "long.mmscn"
    src.write_text("\n".join(churn(800)) + "\n")
    folded, full = cli(mmscn_cmd, "draw", src), cli(mmscn_cmd, "draw", src, "--full")
    assert folded.returncode == full.returncode == 0
    assert 'class="folded"' in folded.stdout and 'class="folded"' not in full.stdout
    assert len(by_class(parse(full.stdout), "step")) == len(by_class(parse(folded.stdout), "step")) + int(
        by_class(parse(folded.stdout), "folded")[0].get("data-statements"))


STATE_SC = "cpus 2\nspawn A\nschedule cpu0 A\nspawn kthread kw\n\nschedule cpu0 kw; assert @A.count == 2\nexit A\n"


def test_state_at(mmscn_cmd, tmp_path):
    f = tmp_path / "s.mmscn"
    f.write_text(STATE_SC)
    p = cli(mmscn_cmd, "run", f, "--state-at", "6")
    assert p.returncode == 1, "`exit A` is refused (A does not run): the run's own status"
    out = p.stdout
    assert out.startswith(f"{f}: the state after line 6 (assert @A.count == 2), arch generic, 2 CPUs\n")
    assert re.search(r"^  cpu0  yes +kw +@A +yes$", out, re.M)
    assert re.search(r"^  @A +1 +2 +live$", out, re.M)
    p = cli(mmscn_cmd, "run", f, "--state-at", "5")
    assert p.returncode == 2 and f"{f}:5: no statement at line 5; the nearest is at line 4: spawn kthread kw\n" in p.stderr
    p = cli(mmscn_cmd, "run", f, "--state-at", "7")
    assert p.returncode == 1 and "the run stopped" not in p.stdout
    g = tmp_path / "g.mmscn"
    g.write_text("spawn A\nexit A\nspawn B\n")
    p = cli(mmscn_cmd, "run", g, "--state-at", "3")
    assert p.returncode == 1 and "the run never reached line 3: it stopped at line 2" in p.stderr
    assert "error: A is not running" in p.stderr
    doc = json.loads(cli(mmscn_cmd, "run", f, "--state-at", "3", "--json").stdout)
    assert doc["kind"] == "state" and doc["line"] == 3 and doc["state"]["cpus"][0]["curr"] == "A"
    p = cli(mmscn_cmd, "run", f, "--states")
    assert p.returncode == 2 and "--states goes with --json" in p.stderr


def test_json_states_follow_the_run(mmscn_cmd):
    doc = json.loads(cli(mmscn_cmd, "run", "--json", "--states", EXAMPLES / "zombie_mm.mmscn").stdout)
    assert doc["format"] == 1 and doc["kind"] == "run"
    assert all("state" in s for s in doc["steps"])
    assert doc["steps"][-1]["state"] == doc["state"]
    after_exit = next(s for s in doc["steps"] if s["statement"] == "exit A")["state"]
    assert {m["name"]: m["state"] for m in after_exit["mms"]}["@A"] == "zombie"


def test_compare_explains_each_column(mmscn_cmd):
    p = cli(mmscn_cmd, "compare", EXAMPLES / "arch" / "x86_lazy_through_flush.mmscn")
    assert p.returncode == 0
    tail = p.stdout.split("first failure of each column:\n")[1]
    assert re.search(r"^  generic: \S+x86_lazy_through_flush.mmscn:29:26: failure: arch generic does not track "
                     r"mm_cpumask\n +29 \| assert cpu1 is not lazy, @A.cpumask == \{cpu0, cpu1\}\n +\| +\^$",
                     tail, re.M)
    assert "  x86: no failure" in tail
    doc = json.loads(cli(mmscn_cmd, "compare", "--json", EXAMPLES / "arch" / "x86_lazy_through_flush.mmscn").stdout)
    cols = {c["arch"]: c for c in doc["policies"]}
    assert cols["x86"]["failure"] is None
    assert cols["powerpc"]["failure"] == {"file": str(EXAMPLES / "arch" / "x86_lazy_through_flush.mmscn"),
                                          "line": 30, "column": 8, "severity": "failure",
                                          "message": "assertion failed: @A.count == 2: actual 1"}
    p = cli(mmscn_cmd, "compare", EXAMPLES / "borrow_on_switch.mmscn", "--arch", "generic,x86")
    assert p.returncode == 0 and p.stdout.endswith("every policy ran without a failure\n"), p.stdout


def test_compare_diff(mmscn_cmd):
    p = cli(mmscn_cmd, "compare", EXAMPLES / "zombie_mm.mmscn", "--diff", "generic,x86")
    assert p.returncode == 0
    lines = p.stdout.split("\n")
    assert lines[:4] == ["--- generic", "+++ x86", "they part at statement 3 (line 17: schedule cpu0 A), event 2",
                         "  (the 2 statements before it: the same 4 events)"]
    assert "+         cpu0 switch_mm_irqs_off CR3 @init_mm -> @A" in lines
    assert "-         @init_mm mmdrop_lazy_tlb_sched count 3 -> 2" in lines
    doc = json.loads(cli(mmscn_cmd, "compare", "--json", EXAMPLES / "zombie_mm.mmscn", "--diff", "generic,x86").stdout)
    assert doc["diff"]["parted_at"] == {"step": 3, "line": 17, "statement": "schedule cpu0 A", "event": 2,
                                        "ran": "both"}
    same = cli(mmscn_cmd, "compare", EXAMPLES / "zombie_mm.mmscn", "--diff", "generic,arm64")
    assert "part at" in same.stdout or "the same, event for event" in same.stdout
    same = cli(mmscn_cmd, "compare", EXAMPLES / "zombie_mm.mmscn", "--diff", "generic,generic")
    assert "the traces of generic and generic are the same, event for event (23 statements)" in same.stdout
    for bad, want in (("generic", "--diff takes two policies"), ("generic,x68", "unknown architecture `x68`")):
        p = cli(mmscn_cmd, "compare", EXAMPLES / "zombie_mm.mmscn", "--diff", bad)
        assert p.returncode == 2 and want in p.stderr, p.stderr
    for flags in (["--kernel", "v5.10"], ["--revert", "38cf307c1f20"]):     # refused, not ignored
        p = cli(mmscn_cmd, "compare", EXAMPLES / "zombie_mm.mmscn", "--diff", "generic,x86", *flags)
        assert p.returncode == 2 and "drop --kernel and --revert" in p.stderr and p.stdout == "", p.stderr


def test_repl_draw(tmp_path):
    from mmscn.interactive import Session
    out = io.StringIO()
    s = Session(out, ncpus=2)
    for line in ("spawn A", "schedule cpu0 A", "spawn kthread kw", "schedule cpu0 kw"):
        assert s.feed(line)
    f = tmp_path / "s.svg"
    assert s.feed(f":draw {f}") and "drew 4 statements to" in out.getvalue()
    root = parse(f.read_text())
    assert [len(v) for v in lane_cells(root).values()] == [3, 1]    # idle0 | A | kw on @A;  idle1
    assert s.feed(f":draw {f}") is False and "`:draw! FILE` replaces it" in out.getvalue()
    assert s.feed("exit kw") is True or True
    assert s.feed(f":draw! {f}")
    assert s.feed(":draw") is False and "needs a file name" in out.getvalue()


# ====================================================================== the HTML page
class Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.rows, self.scripts, self.refs, self.tags = [], [], [], []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append(tag)
        if tag == "tr" and "data-verdict" in a:
            self.rows.append(a["data-verdict"])
        if tag == "script":
            self.scripts.append(a)
        for k in ("src", "href"):
            if k in a:
                self.refs.append(a[k])


def suite_dir(tmp_path) -> Path:
    d = tmp_path / "suite"
    d.mkdir()
    shutil.copy(EXAMPLES / "zombie_mm.mmscn", d)
    (d / "bad.mmscn").write_text('scenario "<b>bold</b> \x1b[31m"\ncpus 2\nspawn A\nschedule cpu0 A\n'
                                 "assert @A.users == 2\n")
    (d / "broken.mmscn").write_text("spawn\n")
    (d / "sparc.mmscn").write_text("arch sparc32\nspawn A\n")
    return d


def test_test_html(mmscn_cmd, tmp_path):
    d = suite_dir(tmp_path)
    page = tmp_path / "report.html"
    p = cli(mmscn_cmd, "test", d, "--html", page)
    assert p.returncode == 1
    text = page.read_text()
    h = Page()
    h.feed(text)
    assert h.rows == ["FAIL", "FAIL", "FAIL", "FAIL", "SKIP", "PASS"]   # bad, broken: a row and a detail each
    assert h.refs == [] and h.scripts == [{}], "no external script, no link"
    assert "default-src 'none'" in text
    assert "&lt;b&gt;bold&lt;/b&gt;" in text and "\x1b" not in text
    assert text.count("<svg ") == 1, "the failing run's timeline (a file that does not parse has none)"
    inline = parse(text[text.index("<svg "):text.index("</svg>") + 6])
    assert len(lane_cells(inline)) == 2 and len(by_class(inline, "failure")) == 1
    assert "bad.mmscn:5:8: failure: assertion failed: @A.users == 2: actual 1" in text
    p = cli(mmscn_cmd, "test", d, "--html", page)
    assert p.returncode == 2 and "exists; pass --force" in p.stderr and p.stdout == ""
    assert cli(mmscn_cmd, "test", d, "--html", page, "--force").returncode == 1


def test_test_html_draws_the_expect_line_that_failed(mmscn_cmd, tmp_path):
    """A file judged under two `expect` lines, the second failing: the page's timeline is of the
    second's kernel (LT-02 without 38cf307c1f20: the witness's stale TLB), not of the first's."""
    d = tmp_path / "suite"
    d.mkdir()
    text = (EXAMPLES / "history" / "LT-02-kthread-use-mm-flush-ipi.mmscn").read_text()
    (d / "lt02.mmscn").write_text(text.replace("expect fail without 38cf307c1f20", "expect pass without 38cf307c1f20"))
    page = tmp_path / "report.html"
    assert cli(mmscn_cmd, "test", d, "--html", page).returncode == 1
    html = page.read_text()
    inline = html[html.index("<svg "):html.index("</svg>") + 6]
    assert len(by_class(parse(inline), "failure")) == 1 and "stale-tlb" in inline


def test_html_report_keeps_each_svg_apart():
    from mmscn.suite import Outcome
    a, b = Outcome("a.mmscn", "FAIL", "x"), Outcome("b.mmscn", "FAIL", "y")
    a.svg, b.svg = svg(timeline("examples/zombie_mm.mmscn"), "pa-"), svg(timeline("examples/zombie_mm.mmscn"), "pb-")
    text = html_report([a, b], 1.0)
    ids = re.findall(r'\bid="([^"]+)"', text)
    assert len(ids) == len(set(ids)) and any(i.startswith("pa-") for i in ids)


def test_pytest_html(tmp_path):
    d = suite_dir(tmp_path)
    page = tmp_path / "pt.html"
    p = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--mmscn-html", str(page),
                        str(d)], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert p.returncode == 1, p.stdout + p.stderr
    h = Page()
    h.feed(page.read_text())
    assert sorted(h.rows) == sorted(["FAIL", "FAIL", "FAIL", "FAIL", "SKIP", "PASS"])
    assert page.read_text().count("<svg ") == 1
    p = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--mmscn-html", str(page),
                        str(d)], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert p.returncode == 4 and "exists; pass --mmscn-html-force to replace it" in p.stderr


def test_pytest_html_under_xdist(tmp_path):
    pytest.importorskip("xdist")
    d = suite_dir(tmp_path)
    page = tmp_path / "pt.html"
    p = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "2",
                        "--mmscn-html", str(page), str(d)], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert p.returncode == 1, p.stdout + p.stderr
    assert page.read_text().count("<svg ") == 1 and page.read_text().count('data-verdict="PASS"') == 1


# ====================================================================== in a real browser and in Graphviz
def tool(name: str) -> str:
    exe = shutil.which(name)
    if exe is None:
        msg = f"{name} is not installed; `bash tests/run.sh` installs it (Debian chromium / graphviz)"
        if IN_CI:
            pytest.fail("CI=true and " + msg, pytrace=False)
        pytest.skip(msg)
    return exe


def screenshot(target: Path, png: Path, size="1200,800") -> None:
    exe = tool("chromium")
    home = png.parent / "chromium-home"
    home.mkdir(exist_ok=True)
    p = subprocess.run([exe, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                        f"--user-data-dir={home}", f"--screenshot={png}", f"--window-size={size}", target.as_uri()],
                       capture_output=True, text=True, timeout=120, env={**os.environ, "HOME": str(home)})
    assert p.returncode == 0 and png.exists(), p.stderr


def png_pixels(png: Path):
    """(width, height, distinct byte values of the scanlines): a PNG that shows something."""
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    w, h = struct.unpack(">II", data[16:24])
    pos, idat = 8, b""
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if kind == b"IDAT":
            idat += data[pos + 8:pos + 8 + n]
        pos += 12 + n
    return w, h, len(set(zlib.decompress(idat)))


def png_rgb(png: Path):
    """(width, rows of (r, g, b)) of an 8-bit RGB or RGBA PNG, unfiltered (what Chromium writes)."""
    data = png.read_bytes()
    w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", data[16:29])
    assert depth == 8 and ctype in (2, 6) and interlace == 0
    pos, idat = 8, b""
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if kind == b"IDAT":
            idat += data[pos + 8:pos + 8 + n]
        pos += 12 + n
    raw, bpp = zlib.decompress(idat), 3 if ctype == 2 else 4
    stride, rows, prev = w * bpp, [], bytearray(w * bpp)
    for y in range(h):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a, b, c = line[i - bpp] if i >= bpp else 0, prev[i], prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append([tuple(line[x * bpp:x * bpp + 3]) for x in range(w)])
        prev = line
    return w, rows


def test_the_colours_render(tmp_path):
    """In the browser the cells and the bands have their mm's colour (a style sheet rule must
    not override an element's own fill)."""
    src = golden_name("examples/zombie_mm.mmscn")
    root = parse(src.read_text())
    out = tmp_path / "z.svg"
    out.write_text(src.read_text())
    png = tmp_path / "z.png"
    screenshot(out, png, f"{root.get('width')},{root.get('height')}")
    _, rows = png_rgb(png)

    def colour_at(rect):
        x = int(rect.get("x")) + int(rect.get("width")) // 2
        y = int(rect.get("y")) + int(rect.get("height")) // 2
        return "#%02X%02X%02X" % rows[y][x + 1]

    cells = {c.find(NS + "title").text.split(" (")[0]: c.find(NS + "rect") for l in by_class(root, "lane")
             for c in l if c.get("class") == "cell"}
    assert colour_at(cells["cpu0: B on @B, its own mm"]) == PALETTE[1]
    a = next(e for e in by_class(root, "mm") if e.get("data-mm") == "@A")
    live = next(g for g in a if g.get("data-state") == "live")
    assert colour_at(next(r for r in live if r.get("class") == "band")) == PALETTE[0]
    freed = next(g for g in a if g.get("data-state") == "freed")
    assert colour_at(next(r for r in freed if r.get("class") == "band")) == "#DDDDDD"


def test_svg_and_html_in_chromium(mmscn_cmd, tmp_path):
    out = tmp_path / "x86.svg"
    out.write_text(golden_name("examples/arch/x86_lazy_through_flush.mmscn").read_text())
    png = tmp_path / "x86.png"
    screenshot(out, png)
    w, h, distinct = png_pixels(png)
    assert (w, h) == (1200, 800) and distinct > 20
    d = suite_dir(tmp_path)
    page = tmp_path / "report.html"
    cli(mmscn_cmd, "test", d, "--html", page)
    png = tmp_path / "report.png"
    screenshot(page, png)
    assert png_pixels(png)[2] > 20
    # the filter runs: #FAIL shows only the failures (the page's script, in the browser)
    exe = tool("chromium")
    home = tmp_path / "chromium-home"
    dom = subprocess.run([exe, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={home}",
                          "--dump-dom", page.as_uri() + "#FAIL"], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "HOME": str(home)}).stdout
    rows = re.findall(r'<tr class="\w+" data-verdict="(\w+)"( hidden="")?', dom)
    assert len(rows) == 6 and all((hidden == "") == (v == "FAIL") for v, hidden in rows), rows


def test_dot_in_graphviz(tmp_path):
    exe = tool("dot")
    g = tmp_path / "g.dot"
    g.write_text(dot(model_of("examples/races/use_mm_vs_exit_unsafe.mmscn")))
    png = tmp_path / "g.png"
    p = subprocess.run([exe, "-Tpng", str(g), "-o", str(png)], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and p.stderr == "", p.stderr
    assert png_pixels(png)[2] > 20
    # and Graphviz's SVG of it in the browser
    p = subprocess.run([exe, "-Tsvg", str(g)], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0
    (tmp_path / "g.svg").write_text(p.stdout)
    screenshot(tmp_path / "g.svg", tmp_path / "g-chromium.png")
    assert png_pixels(tmp_path / "g-chromium.png")[2] > 20


def test_docs_show_the_committed_pictures():
    """docs/pictures.md shows every picture tools/gen_pictures.py makes, and only those."""
    doc = (ROOT / "docs" / "pictures.md").read_text()
    shown = re.findall(r"\]\((pictures/[\w.-]+\.png)\)", doc)
    made = subprocess.run([sys.executable, str(ROOT / "tools" / "gen_pictures.py"), "--list"], capture_output=True,
                          text=True, timeout=60)
    assert made.returncode == 0, made.stderr
    assert sorted(shown) == sorted("pictures/" + line.split(":")[0] for line in made.stdout.splitlines())
    assert sorted(shown) == sorted(f"pictures/{p.name}" for p in (ROOT / "docs" / "pictures").glob("*.png"))
    for rel in shown:
        w, h, distinct = png_pixels(ROOT / "docs" / rel)
        assert w > 300 and distinct > 20, rel
    assert "Okabe-Ito" in doc


def test_the_script_makes_the_pictures(tmp_path):
    """tools/gen_pictures.py, end to end: a timeline through Chromium, the graph through Graphviz."""
    tool("chromium")
    tool("dot")
    p = subprocess.run([sys.executable, str(ROOT / "tools" / "gen_pictures.py"), "--out", str(tmp_path),
                        "zombie_mm", "long_run", "state_graph"], capture_output=True, text=True, timeout=300,
                       env={**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"})
    assert p.returncode == 0, p.stderr
    for name in ("zombie_mm", "long_run", "state_graph"):
        w, h, distinct = png_pixels(tmp_path / f"{name}.png")
        assert w > 300 and distinct > 20, name
    assert png_pixels(tmp_path / "zombie_mm.png")[:2] == png_pixels(ROOT / "docs" / "pictures" / "zombie_mm.png")[:2]
    p = subprocess.run([sys.executable, str(ROOT / "tools" / "gen_pictures.py"), "--out", str(tmp_path), "nope"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and "no picture named nope" in p.stderr
