"""The documentation says what the tool does.

Every page a user reads (README.md, docs/*.md, editors/README.md, editors/*/README.md)
is checked:

- a block fenced ```mmscn is a complete scenario: `mmscn check` accepts it and
  `mmscn run` exits 0 on it;
- a marker comment on the line just before the fence says otherwise:
      <!-- mmscn: exit N -->     the block is meant to fail: `mmscn run` exits N
                                 (1: a failure or refusal; 2: `mmscn check` rejects it too)
      <!-- mmscn: fragment -->   statements shown out of context: they must parse
                                 (their names are not resolved)
- an untagged ``` block marked `<!-- mmscn: output -->` shows output of the ```mmscn
  block before it (run as example.mmscn in its directory): each of its lines must be a
  line of that output;
- an untagged block that reads like a scenario (every line a statement or header) is
  an error: tag it ```mmscn so it is checked;
- every `mmscn CMD --option` the pages show exists in `mmscn CMD --help`;
- docs/language.md names every word of the grammar.
"""
import os
import re
import subprocess
from pathlib import Path

import pytest

from mmscn.dsl.parser import ParseFailed, parse_items
from mmscn.grammar import statement_words, word_classes

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")),
         ROOT / "editors" / "README.md", *sorted((ROOT / "editors").glob("*/README.md"))]
COMMANDS = ("run", "check", "explore", "compare", "test", "repl", "lsp", "import", "validate", "record", "draw",
            "history", "bisect")
MARKER = re.compile(r"<!--\s*mmscn:\s*(exit ([0-9]+)|fragment|output)\s*-->")
FENCE = re.compile(r"^```([\w-]*)\n(.*?)^```", re.S | re.M)


def blocks():
    """(page, line, lang, marker, text, previous mmscn block) for every fenced block."""
    out = []
    for page in PAGES:
        text = page.read_text()
        prev = None
        for m in FENCE.finditer(text):
            line = text.count("\n", 0, m.start()) + 1
            before = text[:m.start()].rstrip("\n").rsplit("\n", 1)[-1]
            mk = MARKER.fullmatch(before.strip())
            marker = mk.group(1) if mk else None
            b = (page.relative_to(ROOT).as_posix(), line, m.group(1), marker, m.group(2), prev)
            out.append(b)
            if m.group(1) == "mmscn":
                prev = b
    return out


def ids(bs):
    return [f"{b[0]}:{b[1]}" for b in bs]


SCENARIOS = [b for b in blocks() if b[2] == "mmscn" and b[3] != "fragment"]
FRAGMENTS = [b for b in blocks() if b[2] == "mmscn" and b[3] == "fragment"]
OUTPUTS = [b for b in blocks() if b[3] == "output"]


def test_markers_are_understood():
    """A marker with a typo would silently make a block an ordinary scenario."""
    for page in PAGES:
        for i, ln in enumerate(page.read_text().splitlines(), 1):
            if ln.strip().startswith("<!-- mmscn"):
                assert MARKER.search(ln), f"{page.name}:{i}: unknown marker {ln.strip()!r}"
    for page, line, lang, marker, _, prev in blocks():
        if marker == "output":
            assert lang == "" and prev is not None, f"{page}:{line}: an output marker needs an untagged block after a ```mmscn one"
        elif marker is not None:
            assert lang == "mmscn", f"{page}:{line}: `{marker}` marks a ```mmscn block"


def test_the_pages_have_scenarios():
    assert len(SCENARIOS) >= 8 and len(FRAGMENTS) >= 2 and len(OUTPUTS) >= 2


def run(mmscn_cmd, cwd, *args):
    return subprocess.run([*mmscn_cmd, *args], capture_output=True, text=True, timeout=60, cwd=cwd,
                          env=dict(os.environ, NO_COLOR="1"))


@pytest.mark.parametrize("block", SCENARIOS, ids=ids(SCENARIOS))
def test_scenario_block_does_what_its_marker_says(mmscn_cmd, tmp_path, block):
    page, line, _, marker, src, _ = block
    want = int(marker.split()[1]) if marker else 0
    (tmp_path / "example.mmscn").write_text(src)
    c = run(mmscn_cmd, tmp_path, "check", "example.mmscn")
    assert c.returncode == (2 if want == 2 else 0), f"{page}:{line}\n{src}{c.stdout}{c.stderr}"
    p = run(mmscn_cmd, tmp_path, "run", "example.mmscn")
    assert p.returncode == want, f"{page}:{line}: exit {p.returncode}, the page says {want}\n{src}{p.stdout}{p.stderr}"
    assert "Traceback" not in p.stderr


@pytest.mark.parametrize("block", FRAGMENTS, ids=ids(FRAGMENTS))
def test_fragment_block_parses(block):
    page, line, _, _, src, _ = block
    try:
        parse_items(src, "fragment.mmscn")
    except ParseFailed as e:
        pytest.fail(f"{page}:{line}: " + "\n".join(d.render(False) for d in e.diagnostics))


@pytest.mark.parametrize("block", OUTPUTS, ids=ids(OUTPUTS))
def test_shown_output_is_what_the_run_prints(mmscn_cmd, tmp_path, block):
    page, line, _, _, shown, prev = block
    (tmp_path / "example.mmscn").write_text(prev[4])
    p = run(mmscn_cmd, tmp_path, "run", "example.mmscn")
    printed = {ln.rstrip() for ln in (p.stdout + p.stderr).splitlines()}
    missing = [ln for ln in shown.splitlines() if ln.strip() and ln.rstrip() not in printed]
    assert not missing, f"{page}:{line} shows lines `mmscn run` does not print:\n" + "\n".join(missing) \
        + "\n--- it prints:\n" + p.stdout + p.stderr


def _scenario_words():
    return set(statement_words()) | {"scenario", "arch", "cpus", "expect", "assert", "final", "}"}


def test_untagged_blocks_are_not_scenarios():
    """A scenario in an untagged block would escape these tests."""
    words = _scenario_words()
    for page, line, lang, _, src, _ in blocks():
        if lang:
            continue
        first = [ln.split()[0] for ln in src.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
        looks = first and all(w.rstrip(";") in words or re.fullmatch(r"cpu[0-9]+", w) for w in first)
        assert not looks, f"{page}:{line}: this block is a scenario: fence it ```mmscn (or mark it)"


# ---- the commands and options the pages show exist

def shown_commands():
    """(page, command, [--options]) for each `mmscn CMD ...` the pages show."""
    found = set()
    for page in PAGES:
        text = page.read_text()
        for m in re.finditer(r"(?:^|[`$] ?|&& )mmscn ([a-z]+)((?: +[^\s`|#&]+)*)", text, re.M):
            cmd, rest = m.group(1), m.group(2)
            opts = tuple(sorted(set(re.findall(r"(?<![\w-])(--?[a-z][a-z-]*)", rest))))
            found.add((page.name, cmd, opts))
    return sorted(found)


def test_the_pages_show_every_command():
    shown = {cmd for _, cmd, _ in shown_commands()}
    assert set(COMMANDS) <= shown, set(COMMANDS) - shown


_helps = {}


@pytest.fixture
def helps(mmscn_cmd):
    if not _helps:
        for cmd in COMMANDS:
            _helps[cmd] = subprocess.run([*mmscn_cmd, cmd, "--help"], capture_output=True, text=True, timeout=60)
    return _helps


@pytest.mark.parametrize("page, cmd, opts", shown_commands())
def test_shown_command_and_options_exist(helps, page, cmd, opts):
    assert cmd in helps, f"{page} shows `mmscn {cmd}`, which is not a command"
    usage = helps[cmd].stdout
    for opt in opts:
        assert re.search(rf"(?<![\w-]){re.escape(opt)}\b", usage), f"{page}: `mmscn {cmd}` has no option {opt}"


def test_every_help_gives_its_exit_status(helps):
    """README: "Exit status (each command's `--help` gives its own)"."""
    for cmd, p in helps.items():
        assert p.returncode == 0 and "exit status" in p.stdout, f"`mmscn {cmd} --help` gives no exit status"


# ---- docs/language.md is the reference: it names every word of the grammar

def test_language_doc_names_every_word():
    text = (ROOT / "docs" / "language.md").read_text()
    classes = word_classes()
    missing = []
    for cls in ("CPU_FIELD", "MM_FIELD", "TASK_FIELD"):
        missing += [w for w in classes[cls] if f".{w}`" not in text]
    missing += [w for w in classes["COST_FIELD"] if f"`cost.{w}`" not in text]
    for cls in ("STATE_WORD", "KIND_WORD", "BOOL", "OUTCOME_WORD", "QUANTIFIER", "EXPECT_KIND", "MMREF_OP"):
        missing += [w for w in classes[cls] if w not in text]
    missing += [w for w in statement_words() if f"`{w}" not in text]
    assert not missing, f"docs/language.md does not mention: {missing}"
