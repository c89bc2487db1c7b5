"""The grammar-aware fuzzer (tests/fuzzing.py) in the suite: a fixed set of
inputs through the real CLI, every property checked, and the fuzzer's own
parts (strategies, oracle, batch splitting, shrinking) tested on known answers.

The suite's run is bounded and deterministic: MMSCN_FUZZ_EXAMPLES inputs
(default 48), derandomized, no example database, so every machine checks
the same inputs.  For a long run:

    MMSCN_FUZZ_EXAMPLES=5000 pytest tests/test_fuzz.py            # more, still the same ones
    MMSCN_FUZZ_SECONDS=3600 MMSCN_FUZZ_SEED=1 pytest tests/test_fuzz.py   # an hour of fresh ones

(`python benchmarks/fuzz.py --seconds N` does the same with figures and keeps
what it finds.)  A property whose only findings show a bug that issue 12
already names (fuzzing.KNOWN) is an xfail naming the item; anything else
fails.  When a fix is merged its KNOWN entry goes, and the property is strict.
"""
from __future__ import annotations

import json
import os
import re

import pytest

import fuzzing as F
from mmscn.dsl.parser import ParseFailed
from mmscn.dsl.resolve import load
from mmscn.grammar import statement_words, word_classes

EXAMPLES = int(os.environ.get("MMSCN_FUZZ_EXAMPLES", "48"))
SECONDS = float(os.environ.get("MMSCN_FUZZ_SECONDS", "0")) or None
SEED = int(os.environ["MMSCN_FUZZ_SEED"]) if os.environ.get("MMSCN_FUZZ_SEED") else None


@pytest.fixture(scope="module")
def tally():
    if SECONDS:
        return F.fuzz(seconds=SECONDS, seed=SEED)
    return F.fuzz(examples=EXAMPLES, seed=SEED)


def _report(found) -> str:
    return f"{len(found)} finding(s):\n\n" + "\n\n".join(f.report() for f in found[:10])


# ---- the properties, one test per class of finding -----------------------------------------
@pytest.mark.parametrize("kind", F.CLASSES)
def test_property(tally, kind):
    """No finding of this class; one that only shows a bug issue 12 names is an xfail naming the item."""
    assert tally.inputs >= min(EXAMPLES, 20) or SECONDS
    found = [f for f in tally.findings if f.kind == kind]
    new = [f for f in found if F.known(f) is None]
    assert not new, _report(new)
    if found:
        items = sorted({F.known(f) for f in found})
        pytest.xfail(f"{len(found)} finding(s) of known bugs, issue 12 " + "; ".join(items))


# ---- the fuzzer itself ----------------------------------------------------------------------
def test_a_writer_for_every_statement_word():
    """A statement added to the grammar needs a writer, or the fuzzer never writes it."""
    assert set(F.WRITERS) == set(statement_words())


@pytest.fixture(scope="module")
def written():
    return F.draw_inputs(300, strategy=F.scenarios())


def test_scenarios_use_every_word_of_the_grammar(written):
    text = "\n".join(written)
    words = set(re.findall(r"[a-z_]+", text))
    for cls, ws in word_classes().items():
        missing = set(ws) - words
        assert not missing, f"{cls}: {sorted(missing)} never written"
    assert all(op in text for op in F.CMPS)
    assert any(re.search(r"^cpu\d+ \{", s, re.M) for s in written)
    assert any(s.count(" {") >= 7 for s in written)          # many blocks, for symmetry


def test_most_scenarios_are_valid_and_some_are_not(written):
    """Junk would only test the parser; all valid would never test an error."""
    good = blocks = 0
    for s in written:
        try:
            sc = load(s, "f.mmscn", F.ARCHES)
        except ParseFailed:
            continue
        except Exception:      # a crash is test_property's business (exit70); here it only does not count
            continue
        good += 1
        blocks += bool(sc.blocks)
    assert len(written) * 0.4 <= good <= len(written) * 0.9, good
    assert blocks >= len(written) * 0.1, blocks


def test_inputs_mix_generated_mutated_and_encoded():
    xs = F.draw_inputs(300)
    assert len(set(xs)) == len(xs)
    data = [d for d, _ in xs]
    # re-encoded: a BOM of UTF-16 or UTF-8 (which of them the derandomized draws hold shifts with
    # what the process imported before Hypothesis: prompt_toolkit's import alone moves it)
    assert sum(d.startswith((b"\xff\xfe", b"\xfe\xff", b"\xef\xbb\xbf")) for d in data) >= 1
    from hypothesis import strategies as st
    encoded = F.draw_inputs(20, strategy=st.composite(lambda draw: F._encode(draw, b"cpus 1\nspawn A\n"))())
    assert any(d.startswith((b"\xff\xfe", b"\xfe\xff")) for d in encoded), encoded
    assert sum(b"\x00" in d for d in data) >= 3
    assert sum(b"\x1b" in d for d in data) >= 1
    assert any(odd for _, odd in xs)

    # the mutations start from every example and bad input, and change them
    assert len(F.CORPUS) >= 100 and (F.ROOT / "examples" / "races" / "threads_exit_race.mmscn").read_bytes() in F.CORPUS
    from hypothesis import strategies as st
    changed = F.draw_inputs(60, strategy=F.mutated(st.sampled_from(F.CORPUS)))
    assert sum(d not in F.CORPUS for d in changed) >= 55


# ---- the oracle, on outputs whose answer is known ------------------------------------------
SRC = {"f000": ["spawn A", "exit B", ""]}
GOOD = ("f000.mmscn:2:6: error: no task named `B` (spawn it first)\n"
        "    2 | exit B\n"
        "      |      ^\n"
        "f000.mmscn: 1 error\n")


def problems(cmd, out=b"", err=b"", status=0, args=None):
    run = F.Run(args or [cmd, "f000.mmscn"], status, out, err)
    return [k for k, *_ in F.output_problems(cmd, run, SRC)]


def test_oracle_passes_a_located_error():
    assert problems("check", err=GOOD.encode(), status=2) == []
    assert problems("run", out=GOOD.encode(), status=1) == []


@pytest.mark.parametrize("bad, kind", [
    (GOOD.replace("    2 | exit B\n", ""), "unlocated"),                         # no source line
    (GOOD.replace("      |      ^\n", ""), "unlocated"),                         # no caret
    (GOOD.replace("|      ^", "|     ^"), "unlocated"),                          # caret off by one
    (GOOD.replace("2 | exit B", "2 | spawn A"), "unlocated"),                     # the wrong line
    (GOOD.replace(":2:6:", ":0:0:"), "unlocated"),
    (GOOD.replace(":2:6:", ":9:1:").replace("    2 |", "    9 |"), "unlocated"),  # past the end
    ("f000.mmscn: error: something\n", "unlocated"),
    ("mmscn: f000.mmscn: something went wrong\n", "unlocated"),
    (GOOD.replace("no task", "no \x1b[31mtask"), "control"),
    (GOOD + "\x07", "control"),
    (GOOD + "\u009b", "control"),
    ("Traceback (most recent call last):\n  ...\nKeyError: 1\n", "traceback"),
])
def test_oracle_sees_each_kind_of_problem(bad, kind):
    assert kind in problems("check", err=bad.encode(), status=2)


def test_oracle_sees_status_json_and_time():
    assert problems("check", status=70, err=b"mmscn: internal error: KeyError: 1; please report it\n") == ["exit70"]
    assert problems("check", status=1) == ["status"]          # check exits 0 or 2
    assert problems("explore", status=3) == []
    assert problems("run", status=0, out=b"{", args=["run", "--json", "f000.mmscn"]) == ["json"]
    assert problems("run", status=0, out=json.dumps({"failures": [{"line": 0, "column": 0}]}).encode(),
                    args=["run", "--json", "f000.mmscn"]) == ["unlocated"]
    assert problems("run", status=None) == ["timeout"]
    assert problems("check", err=b"\xff", status=2) == ["control"]   # not UTF-8


def test_only_timings_may_differ_between_runs():
    a = b"  transitions 8, time 0.000 s, 12,383 states/s\n"
    b = b"  transitions 8, time 0.013 s, 9,001 states/s\n"
    assert F.untimed(a) == F.untimed(b)
    assert F.untimed(b'"seconds": 0.25, "states_per_second": 9.5') == F.untimed(b'"seconds": 1.0, "states_per_second": 1')
    assert F.untimed(b"transitions 8") != F.untimed(b"transitions 9")


def test_a_batch_problem_is_traced_to_its_file(tmp_path, monkeypatch):
    items = [(b"spawn A\n", "")] * 10
    b = F.Batch(items, tmp_path)

    def fake(args, seed="0", timeout=0):
        # file 6 crashes the process; seed 12345 changes file 3's output; file 8's title has an ESC
        names = args[1:]
        status = 70 if "f006.mmscn" in names else 0
        out = b"x" if seed != "0" and "f003.mmscn" in names else b""
        out += b"f008.mmscn: \x1b[2J title\n" if "f008.mmscn" in names else b""
        return F.Run(args, status, out, b"mmscn: internal error: KeyError\n" if status == 70 else b"")
    monkeypatch.setattr(b, "run", fake)
    b.many(["check"], list(range(10)))
    got = sorted((f.kind, f.name, f.command[-1]) for f in b.findings)
    assert got == [("control", "f008.mmscn", "f008.mmscn"), ("exit70", "f006.mmscn", "f006.mmscn"),
                   ("hashseed", "f003.mmscn", "f003.mmscn")]


def test_known_findings_are_told_apart(monkeypatch):
    # KNOWN is empty while no known bug is open; a named entry must match its finding only
    monkeypatch.setitem(F.KNOWN, "item 1 (a number of more than 4,300 digits)",
                        lambda f: f.kind == "exit70" and "4300 digits" in f.detail)
    f = F.Finding("exit70", "f000.mmscn", b"cpus 1" + b"0" * 4400, ["check"],
                  "exit 70: internal error: ValueError: Exceeds the limit (4300 digits) for integer string")
    assert F.known(f).startswith("item 1")
    assert F.known(F.Finding("exit70", "f000.mmscn", b"", ["check"], "exit 70: internal error: KeyError: 3")) is None


def test_minimize_keeps_what_matters():
    data = b"spawn A\nspawn B\nassert XX\nexit A\n"
    assert F.minimize(data, lambda d: b"XX" in d) == b"XX"
    assert F.minimize(data, lambda d: d.count(b"\n") >= 2 and b"B" in d).count(b"\n") == 2
