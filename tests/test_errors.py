"""Bad inputs through the real CLI: located messages, exit codes, never a traceback.

Each tests/bad_inputs/CASE.mmscn has CASE.expected beside it:

    # mmscn check                 the command (`run_*` cases: mmscn run --quiet)
    # exit 2                      its exit status
    CASE.mmscn:1:6: error: ...    then exactly what it prints: stderr for check,
        1 | spawn                 stdout for run (the other stream must be empty)
          |      ^

`{ARCHES}` in an .expected file stands for the known architectures, which
grow as policies are added.  `MMSCN_REGEN=1 pytest tests/test_errors.py` rewrites the .expected files from
the current output; read the diff before committing it.

Inputs that are awkward to commit (a 100,000-character name, 5,000 nested
parentheses, NUL bytes, UTF-16, invalid UTF-8) are written into tmp_path by
the tests below instead.
"""
import os
import re
import subprocess
from pathlib import Path

import pytest

from mmscn.dsl.diagnostics import printable
from mmscn.dsl.parser import lark_parser
from mmscn.interpreter import policies

CORPUS = Path(__file__).resolve().parent / "bad_inputs"
CASES = sorted(p.stem for p in CORPUS.glob("*.mmscn"))
REGEN = os.environ.get("MMSCN_REGEN") == "1"
# the architectures a message lists grow as policies are added: {ARCHES} in .expected stands for them
ARCHES = ", ".join(policies.names())

HEAD = re.compile(r"^(?P<file>[^\n]*?):(?P<line>\d+):(?P<col>\d+): (?P<sev>error|violation|failure): (?P<msg>.*)$")


def run_cli(mmscn_cmd, args, cwd, **kw):
    env = dict(os.environ, NO_COLOR="1")
    return subprocess.run(mmscn_cmd + args, cwd=cwd, capture_output=True, text=True, env=env,
                          errors="replace", timeout=120, **kw)


def command_for(case: str) -> list:
    return ["run", "--quiet"] if case.startswith("run_") else ["check"]


# ---- what every message must look like ----------------------------------------

def lark_words() -> set:
    """Terminal names of the grammar and Lark's own markers, none of which a user should see.

    `CPU` is left out: it is also the English word ("the scenario has 1 CPU").
    """
    names = {t.name for t in lark_parser().terminals} - {"CPU"}
    return names | {"$END", "_SEP", "__ANON", "Token(", "UnexpectedToken", "UnexpectedCharacters",
                    "UnexpectedEOF", "Tree("}


LARK_WORDS = None


def assert_readable(text: str) -> None:
    """No traceback, no Lark terminal names, no raw control characters."""
    global LARK_WORDS
    if LARK_WORDS is None:
        LARK_WORDS = lark_words()
    assert "Traceback" not in text
    for line in text.splitlines():
        m = HEAD.match(line)
        if not m:
            continue
        msg = m.group("msg")
        for w in LARK_WORDS:
            pattern = re.escape(w) if not w[0].isalpha() else r"(?<![\w`])" + re.escape(w) + r"(?![\w`])"
            assert not re.search(pattern, msg), f"Lark word {w!r} in: {msg}"
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f]", text), "raw control character in the output"


def assert_carets(text: str, sources: dict) -> int:
    """Every `FILE:L:C:` is followed by line L of the file and a caret under column C."""
    lines = text.splitlines()
    n = 0
    for i, line in enumerate(lines):
        m = HEAD.match(line)
        if not m or i + 2 >= len(lines) or not re.match(r"^ *\d+ \| ", lines[i + 1]):
            continue
        n += 1
        ln, col = int(m.group("line")), int(m.group("col"))
        shown, caret = lines[i + 1], lines[i + 2]
        assert re.match(rf"^ *{ln} \| ", shown), (shown, ln)
        gutter = shown.index("| ") + 2
        assert caret.rstrip().endswith("^") and caret.count("^") == 1, caret
        at = caret.index("^")
        src = sources.get(m.group("file"))
        if src is None:
            continue
        real = src.split("\n")[ln - 1].rstrip("\r")
        if col - 1 < len(real):
            want = printable(real[col - 1]).replace("\t", " ")
            assert shown[at] == want, f"caret under {shown[at]!r}, column {col} is {want!r}\n{shown}\n{caret}"
        else:
            assert at == len(shown.rstrip("\r")) and col - 1 == len(real), (shown, caret, col)
        if len(real) <= 100:
            assert at - gutter == col - 1
    return n


def read_expected(case: str):
    lines = (CORPUS / f"{case}.expected").read_text(encoding="utf-8").split("\n")
    assert lines[0] == "# mmscn " + " ".join(command_for(case)), f"{case}.expected: first line"
    status = int(lines[1].removeprefix("# exit "))
    return status, "\n".join(lines[2:])


def test_corpus_is_big_enough():
    assert len(CASES) >= 40
    assert sum(c.startswith("run_") for c in CASES) >= 10
    missing = [c for c in CASES if not (CORPUS / f"{c}.expected").exists() and not REGEN]
    assert not missing, f"cases without .expected: {missing}"


@pytest.mark.parametrize("case", CASES)
def test_bad_input(mmscn_cmd, case):
    args = command_for(case)
    p = run_cli(mmscn_cmd, args + [f"{case}.mmscn"], CORPUS)
    out, quiet = (p.stdout, p.stderr) if args[0] == "run" else (p.stderr, p.stdout)
    if REGEN:
        (CORPUS / f"{case}.expected").write_text(
            f"# mmscn {' '.join(args)}\n# exit {p.returncode}\n{out.replace(ARCHES, '{ARCHES}')}", encoding="utf-8")
    status, expected = read_expected(case)
    expected = expected.replace("{ARCHES}", ARCHES)
    assert_readable(p.stdout + p.stderr)
    assert quiet == ""
    assert out == expected
    assert p.returncode == status
    # parse and name errors exit 2, runtime trouble 1
    assert status == (1 if case.startswith("run_") else 2)
    src = (CORPUS / f"{case}.mmscn").read_bytes().decode("utf-8", "replace")
    # every case but a scenario that holds against its `expect fail` has a located message
    assert assert_carets(out, {f"{case}.mmscn": src}) >= (case != "run_expect_fail_but_passes")
    if args[0] == "run":
        # a refusal says which kernel function's rule it is
        for block in re.split(r"\n(?=\S)", out):
            head = block.split("\n")[0]
            if HEAD.match(head) and ": error: " in head and not re.search(r": error: no (task|mm) named", head):
                assert re.search(r"note: the rule is in \w[\w /]* \((kernel|mm|fs|include|arch)/", block), block


def test_a_field_the_arch_does_not_model_is_an_error_for_check_and_run(mmscn_cmd):
    """`check` no longer says ok to what `run` cannot evaluate; an `--arch` that models it lifts
    the error (an x86 file run under `--arch generic` fails the assertion: tests/test_arch_policies.py)."""
    c = run_cli(mmscn_cmd, ["check", "cpumask_under_generic.mmscn"], CORPUS)
    r = run_cli(mmscn_cmd, ["run", "cpumask_under_generic.mmscn"], CORPUS)
    assert c.returncode == r.returncode == 2 and c.stderr == r.stderr and r.stdout == ""
    for command in (["run", "--arch", "x86"], ["explore", "--arch", "powerpc"]):
        p = run_cli(mmscn_cmd, command + ["cpumask_under_generic.mmscn"], CORPUS)
        assert p.returncode == 0 and p.stderr == "", p.stdout + p.stderr
    p = run_cli(mmscn_cmd, ["run", "--arch", "arm64", "cpumask_under_generic.mmscn"], CORPUS)
    assert p.returncode == 2 and "arch arm64 does not track mm_cpumask" in p.stderr


def test_several_errors_per_file(mmscn_cmd):
    """Recovery at the next line: three mistakes on three lines, three messages."""
    for case, want in (("three_syntax_errors", [1, 2, 3]), ("three_name_errors", [2, 3, 4]),
                       ("brace_closes_nothing", [2, 3]), ("nested_blocks", [3, 6])):
        _, expected = read_expected(case)
        got = [int(m.group("line")) for m in map(HEAD.match, expected.splitlines()) if m]
        assert got == want, case
        assert expected.rstrip().endswith(f"{case}.mmscn: {len(want)} errors")


def test_check_and_run_agree_on_bad_files(mmscn_cmd):
    """`mmscn run` reports a file that does not parse exactly as `mmscn check` does."""
    for case in ("three_syntax_errors", "final_not_last", "unknown_mm"):
        c = run_cli(mmscn_cmd, ["check", f"{case}.mmscn"], CORPUS)
        r = run_cli(mmscn_cmd, ["run", f"{case}.mmscn"], CORPUS)
        assert r.returncode == c.returncode == 2
        assert r.stderr == c.stderr and r.stdout == ""


def test_kernel_spellings_name_the_languages_words_and_are_not_accepted():
    """dsl/spellings.py only suggests: each kernel word is no word of the language, each
    suggestion is a statement or field of the grammar, and the kernel word is still an error."""
    from mmscn.dsl.parser import ParseFailed, parse_items
    from mmscn.dsl.spellings import STATEMENTS, fields
    from mmscn.grammar import keywords, statement_words, word_classes
    for word, (template, _) in STATEMENTS.items():
        assert word not in statement_words() and template.split()[0] in statement_words(), word
        with pytest.raises(ParseFailed, match=f"unknown statement `{word}`"):
            parse_items(f"{word} A\n")
    for (terminal, word), field in fields().items():
        assert word not in keywords() and field in word_classes()[terminal]
        with pytest.raises(ParseFailed, match=f"did you mean `{field}`"):
            parse_items(f"assert @A.{word} == 1\n")


def test_check_and_run_count_statements_alike(mmscn_cmd, tmp_path):
    """`check` counts what `run` runs: kernel statements (an `expect` is none) and assertions apart."""
    text = ("cpus 2\nspawn A\nassert A.state == runnable\nexpect error\nexit idle0\n"
            "cpu0 {\n  schedule A\n  assert A.state == running, A.mm == @A\n}\ncpu1 { unlazy }\n"
            "final forall @A is live\n")
    c = check_bytes(mmscn_cmd, tmp_path, text.encode())
    r = check_bytes(mmscn_cmd, tmp_path, text.encode(), command="run")
    assert c.returncode == r.returncode == 0, r.stdout
    assert c.stdout == "gen.mmscn: ok (4 statements, 2 assertions, arch generic, 2 CPUs)\n"
    assert "passed: 4 statements, 2/2 assertions held" in r.stdout
    for path in EXAMPLES:
        c = run_cli(mmscn_cmd, ["check", str(path)], tmp_path)
        r = run_cli(mmscn_cmd, ["run", "--quiet", str(path)], tmp_path)
        stmts, asserts = re.search(r"ok \((\d+) statements?, (\d+) assertions?", c.stdout).groups()
        ran = re.search(r"(\d+) statements?, \d+/(\d+) assertions", r.stdout)
        if ran and "stopped early" not in r.stdout:
            assert ran.groups() == (stmts, asserts), path


# ---- generated inputs ---------------------------------------------------------

def check_bytes(mmscn_cmd, tmp_path, data: bytes, name="gen.mmscn", command="check"):
    f = tmp_path / name
    f.write_bytes(data)
    p = run_cli(mmscn_cmd, [command, name], tmp_path)
    assert_readable(p.stdout + p.stderr)
    return p


def first_head(text: str):
    m = next(filter(None, map(HEAD.match, text.splitlines())))
    return int(m.group("line")), int(m.group("col")), m.group("msg")


def test_huge_name(mmscn_cmd, tmp_path):
    name = "A" * 100_000
    p = check_bytes(mmscn_cmd, tmp_path, f"spawn {name}\nschedule cpu0 {name}\nexit B{name}\n".encode())
    assert p.returncode == 2
    line, col, msg = first_head(p.stderr)
    assert (line, col) == (3, 6)
    assert msg == f"no task named `B{'A' * 36}...` (spawn it first)"
    assert max(map(len, p.stderr.splitlines())) < 200   # the source line is shown as a window
    assert assert_carets(p.stderr, {"gen.mmscn": (tmp_path / "gen.mmscn").read_text()}) == 1
    ok = check_bytes(mmscn_cmd, tmp_path, f"spawn {name}\nschedule cpu0 {name}\nexit {name}\n".encode(),
                     command="run")
    assert ok.returncode == 0, ok.stdout[-500:]


def test_huge_name_in_a_syntax_error(mmscn_cmd, tmp_path):
    p = check_bytes(mmscn_cmd, tmp_path, b"spawn A " + b"B" * 100_000 + b"\n")
    assert p.returncode == 2
    line, col, msg = first_head(p.stderr)
    assert (line, col) == (1, 9)
    assert msg == f"expected `mm` or the end of the statement after `spawn A`, found `{'B' * 37}...`"
    assert assert_carets(p.stderr, {"gen.mmscn": (tmp_path / "gen.mmscn").read_text()}) == 1


def test_deep_parentheses(mmscn_cmd, tmp_path):
    cond = "(" * 5000 + "@init_mm.users == 2" + ")" * 5000
    p = check_bytes(mmscn_cmd, tmp_path, f"assert {cond}\n".encode())
    assert p.returncode == 0 and p.stderr == ""
    r = check_bytes(mmscn_cmd, tmp_path, f"assert {cond}\n".encode(), command="run")
    assert r.returncode == 0
    p = check_bytes(mmscn_cmd, tmp_path, f"assert {cond[:-1]}\n".encode())
    assert p.returncode == 2
    line, col, msg = first_head(p.stderr)
    assert (line, col) == (1, len(f"assert {cond}"))
    assert msg.startswith("expected `or` or `)` after `...)))") and msg.endswith("found the end of the line")
    assert len(msg) < 200


def test_deep_nesting_of_not_and_or(mmscn_cmd, tmp_path):
    p = check_bytes(mmscn_cmd, tmp_path, ("assert " + "not " * 5000 + "@init_mm.users == 2\n").encode())
    assert p.returncode == 2
    line, col, msg = first_head(p.stderr)
    assert msg == "this condition nests more than 200 levels deep"
    deep_or = " or ".join(["@init_mm.users == 2"] * 5000)
    p = check_bytes(mmscn_cmd, tmp_path, f"assert {deep_or}\n".encode(), command="run")
    assert p.returncode == 0   # a long flat `or` is not deep


def test_numbers_beyond_64_bits(mmscn_cmd, tmp_path):
    big = "1" + "0" * 30
    for text, want in (
            (f"assert @init_mm.users == {big}\n", (1, 26, "this number does not fit in 64 bits")),
            (f"assert @init_mm.users == {2**64}\n", (1, 26, "this number does not fit in 64 bits")),
            (f"cpus {big}\n", (1, 6, f"`cpus` must be 1 to 1024, not {big}")),
            (f"cpus {10**50}\n", (1, 6, f"`cpus` must be 1 to 1024, not {str(10**50)[:37]}...")),
            (f"schedule cpu{big} idle\n", (1, 10, f"cpu{big} does not exist: the scenario has 1 CPU "
                                                  f"(cpu0 to cpu0); raise `cpus` in the header")),
            (f"spawn A mm @A.{big}\nassert @A.{big}.users == {big}\n",
             (2, len(f"assert @A.{big}.users == ") + 1, "this number does not fit in 64 bits"))):
        p = check_bytes(mmscn_cmd, tmp_path, text.encode())
        assert p.returncode == 2, text
        assert first_head(p.stderr) == want
    ok = check_bytes(mmscn_cmd, tmp_path, f"assert @init_mm.users != {2**64 - 1}\n".encode(), command="run")
    assert ok.returncode == 0


@pytest.mark.parametrize("command", ["check", "run"])
def test_numbers_beyond_pythons_digit_limit(mmscn_cmd, tmp_path, command):
    """More than 4,300 digits: Python refuses to convert them, so the range check must not need to."""
    huge = "1" + "0" * 5000
    zeros = "0" * 5000 + "1"      # leading zeros: a small number after all
    for text, want in (
            (f"cpus {huge}\n", (1, 6, f"`cpus` must be 1 to 1024, not {huge[:37]}...")),
            (f"schedule cpu{huge} idle\n", (1, 10, f"cpu{huge[:34]}... does not exist: the scenario has 1 CPU "
                                                  f"(cpu0 to cpu0); raise `cpus` in the header")),
            (f"assert @init_mm.users == {huge}\n", (1, 26, "this number does not fit in 64 bits")),
            (f"cpus 2\nschedule cpu{zeros} idle\n",
             (2, 10, f"`cpu{zeros[:34]}...` has a leading zero; CPUs are cpu0, cpu1, ..., so write `cpu1`")),
            # a long file takes the shape path (dsl/shapes.py), which builds numbers itself
            ("assert @init_mm.users == 2\n" * 400 + f"assert @init_mm.users == {huge}\n",
             (401, 26, "this number does not fit in 64 bits"))):
        p = check_bytes(mmscn_cmd, tmp_path, text.encode(), command=command)
        assert p.returncode == 2, (text[:60], p.stderr[-300:])
        assert first_head(p.stderr) == want
    ok = check_bytes(mmscn_cmd, tmp_path, f"cpus {'0' * 5000}2\nschedule cpu1 idle\n"
                                          f"assert @init_mm.users == {'0' * 5000}2\n".encode(), command="run")
    assert ok.returncode == 0, ok.stdout[-300:]


def test_nul_byte(mmscn_cmd, tmp_path):
    p = check_bytes(mmscn_cmd, tmp_path, b"spawn A\nsched\x00ule cpu0 A\n")
    assert p.returncode == 2
    assert p.stderr.splitlines()[:3] == [
        "gen.mmscn:2:6: error: NUL byte in the file; is it a binary file?",
        "    2 | sched?ule cpu0 A",
        "      |      ^"]


def test_nul_byte_after_a_form_feed(mmscn_cmd, tmp_path):
    """Only a newline ends a line: the line shown is the one the line number counts."""
    p = check_bytes(mmscn_cmd, tmp_path, b"spawn A\f\x0b\x1c\nsched\x00ule cpu0 A\n")
    assert p.returncode == 2
    assert p.stderr.splitlines()[:3] == [
        "gen.mmscn:2:6: error: NUL byte in the file; is it a binary file?",
        "    2 | sched?ule cpu0 A",
        "      |      ^"]


def test_binary_junk(mmscn_cmd, tmp_path):
    p = check_bytes(mmscn_cmd, tmp_path, bytes(range(256)) * 4)
    assert p.returncode == 2
    line, col, msg = first_head(p.stderr)
    assert (line, col, msg) == (2, 118, "this is not UTF-8 text (byte 0x80); is it a binary file?")
    p = check_bytes(mmscn_cmd, tmp_path, bytes(range(1, 32)) * 3)
    assert p.returncode == 2 and "plain text" in p.stderr


def test_invalid_utf8(mmscn_cmd, tmp_path):
    # the column counts characters: `é` before the bad byte is one column
    p = check_bytes(mmscn_cmd, tmp_path, "spawn A\n# café\nspawn B".encode() + b"\xff\n")
    assert p.returncode == 2
    assert first_head(p.stderr) == (3, 8, "this is not UTF-8 text (byte 0xff); is it a binary file?")
    p = check_bytes(mmscn_cmd, tmp_path, "spawn caf\u00e9\n".encode("latin-1"))
    assert first_head(p.stderr) == (1, 10, "this is not UTF-8 text (byte 0xe9); is it a binary file?")


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le-bom", "utf-16-be-bom"])
def test_utf16_with_bom_is_read(mmscn_cmd, tmp_path, encoding):
    text = "spawn A\nschedule cpu0 A\nexit B\n"
    data = {"utf-16": text.encode("utf-16"),
            "utf-16-le-bom": b"\xff\xfe" + text.encode("utf-16-le"),
            "utf-16-be-bom": b"\xfe\xff" + text.encode("utf-16-be")}[encoding]
    p = check_bytes(mmscn_cmd, tmp_path, data)
    assert p.returncode == 2
    assert p.stderr.splitlines()[:3] == [
        "gen.mmscn:3:6: error: no task named `B` (spawn it first)",
        "    3 | exit B",
        "      |      ^"]


@pytest.mark.parametrize("codec,shown,caret", [("utf-16-le", "s?p?a?w?n? ?A?", " ^"),
                                               ("utf-16-be", "?s?p?a?w?n? ?A?", "^")])
def test_utf16_without_bom(mmscn_cmd, tmp_path, codec, shown, caret):
    """Located at the first NUL, with the line shown."""
    p = check_bytes(mmscn_cmd, tmp_path, "spawn A\nschedule cpu0 A\n".encode(codec))
    assert p.returncode == 2
    assert p.stderr.splitlines()[:3] == [
        f"gen.mmscn:1:{len(caret)}: error: this looks like UTF-16 text without a byte-order mark; save it as UTF-8",
        f"    1 | {shown}",
        f"      | {caret}"]


def test_utf16_bom_that_does_not_decode(mmscn_cmd, tmp_path):
    text = "spawn A\nexit \ud800A\n"    # a lone surrogate on line 2
    p = check_bytes(mmscn_cmd, tmp_path, b"\xff\xfe" + text.encode("utf-16-le", "surrogatepass"))
    assert p.returncode == 2
    assert first_head(p.stderr) == (2, 6, "the file starts like UTF-16 but does not decode; save it as UTF-8")
    assert p.stderr.splitlines()[1:3] == ["    2 | exit \ufffdA", "      |      ^"]


def test_utf8_bom_is_skipped(mmscn_cmd, tmp_path):
    p = check_bytes(mmscn_cmd, tmp_path, b"\xef\xbb\xbfspawn A\nexit\n")
    assert first_head(p.stderr)[:2] == (2, 5)


@pytest.mark.parametrize("text", ["", "\n\n\n", "# only\n   # comments\n\n", ";;;\n", "   \t\n"])
def test_empty_scenarios_are_valid(mmscn_cmd, tmp_path, text):
    """Nothing to do is no mistake: check and run accept it and say so."""
    p = check_bytes(mmscn_cmd, tmp_path, text.encode())
    assert p.returncode == 0 and p.stderr == ""
    assert p.stdout == "gen.mmscn: ok (0 statements, 0 assertions, arch generic, 1 CPU)\n"
    r = check_bytes(mmscn_cmd, tmp_path, text.encode(), command="run")
    assert r.returncode == 0 and "passed: 0 statements" in r.stdout


def test_cr_only_line_ends(mmscn_cmd, tmp_path):
    p = check_bytes(mmscn_cmd, tmp_path, b"spawn A\rschedule cpu0 A\rexit B\r")
    assert p.returncode == 2
    assert p.stderr.splitlines()[:3] == [
        "gen.mmscn:3:6: error: no task named `B` (spawn it first)",
        "    3 | exit B",
        "      |      ^"]


def test_crlf_and_tabs_are_whitespace(mmscn_cmd, tmp_path):
    p = check_bytes(mmscn_cmd, tmp_path, b"spawn A\r\n\tschedule\tcpu0\tA\r\nassert A.mm == @A\r\n",
                    command="run")
    assert p.returncode == 0, p.stdout


def test_messages_over_the_whole_corpus_use_no_lark_words():
    """The corpus' expected messages themselves, checked once more as a whole."""
    text = "\n".join((CORPUS / f"{c}.expected").read_text(encoding="utf-8") for c in CASES)
    assert_readable(text)
    for bad in ("NAME", "_SEP", "LBRACE", "RBRACE", "$END", "STRING", "INT"):
        assert bad not in text


# ---- whatever the input: a located message or a run, never an exception ------------------------

EXAMPLES = sorted((CORPUS.parent.parent / "examples").glob("*.mmscn"))


def _soup_words() -> list:
    from mmscn.grammar import keywords
    return sorted(keywords()) + [
        "A", "B", "kw", "@A", "@B", "@init_mm", "@A.2", "cpu0", "cpu1", "cpu99", "idle0", "idle1", "0", "1", "2",
        str(2**64), "==", "!=", "<", ">=", ".", ",", "(", ")", "{", "}", ";", "\n", "\n", '"x"', '"', "#",
        "\t", "\r\n", "\u00e9", "$", "-", "@", "users", "count", "mm", "active_mm", "state", "cpumask", "curr"]


def test_no_exception_escapes_whatever_the_input():
    """Token soup and mutated examples: ParseFailed with located diagnostics, or a run to the end."""
    from hypothesis import given, settings, strategies as st
    from mmscn.dsl.parser import ParseFailed
    from mmscn.dsl.resolve import load
    from mmscn.interpreter import policies
    from mmscn.interpreter.report import run_json, write_text
    from mmscn.interpreter.runner import Runner
    import io
    import json

    words = _soup_words()
    texts = [p.read_text() for p in EXAMPLES]
    arches = policies.names()
    soup = st.lists(st.sampled_from(words), max_size=40).map(" ".join)

    @st.composite
    def mutated(draw):
        toks = draw(st.sampled_from(texts)).split(" ")
        for _ in range(draw(st.integers(1, 4))):
            j = draw(st.integers(0, len(toks) - 1))
            how = draw(st.sampled_from(["drop", "insert", "replace"]))
            if how == "drop" and len(toks) > 1:
                del toks[j]
            elif how == "insert":
                toks.insert(j, draw(st.sampled_from(words)))
            else:
                toks[j] = draw(st.sampled_from(words))
        return " ".join(toks)

    @settings(max_examples=300, deadline=None, derandomize=True, database=None)
    @given(text=st.one_of(soup, mutated()), arch=st.sampled_from([None] + arches))
    def prop(text, arch):
        lines = text.split("\n")
        try:
            sc = load(text, "f.mmscn", arches)
        except ParseFailed as e:
            assert e.diagnostics
            for d in e.diagnostics:
                assert 1 <= d.line <= len(lines) + 1 and d.col >= 1, d
                assert_readable(d.render(False))
                assert_carets(d.render(False), {"f.mmscn": text})
            return
        r = Runner(sc, lines, arch).run()
        out = io.StringIO()
        write_text(r, lines, out)
        assert_readable(out.getvalue())
        json.dumps(run_json(r, lines))
    prop()


# ---- hostile surroundings: the parse tables Lark caches on disk -----------------------------

PLANT = """
import os, pickle, sys
class Plant:
    def __reduce__(self):
        return (os.mkdir, (sys.argv[1],))
with open(sys.argv[2], "wb") as f:
    f.write(b"0" * 64 + b"\\n")
    pickle.dump(Plant(), f)
"""


def test_a_pickle_planted_in_tmpdir_is_never_loaded(mmscn_cmd, tmp_path):
    """Another user of a shared /tmp cannot run code as whoever runs mmscn next.

    Lark's ``cache=True`` (what mmscn used) names its file in $TMPDIR after the
    user, a digest of the grammar and options, and the Python version, all
    predictable: plant a pickle under exactly that name, and every other
    .lark_cache_* name, and check mmscn neither unpickles nor opens any of them.
    """
    import sys
    from lark import Lark
    from mmscn.grammar import GRAMMAR_FILE
    tmpdir, cache_home = tmp_path / "tmp", tmp_path / "cache"
    tmpdir.mkdir()
    env = dict(os.environ, TMPDIR=str(tmpdir), XDG_CACHE_HOME=str(cache_home), NO_COLOR="1")
    # the name the old mmscn read: Lark's own choice for the options it passed (transformer aside)
    subprocess.run([sys.executable, "-c", "import sys; from lark import Lark; Lark(open(sys.argv[1]).read(), "
                    "parser='lalr', lexer='contextual', maybe_placeholders=True, cache=True)",
                    str(GRAMMAR_FILE)], env=env, check=True)
    planted = sorted(tmpdir.glob(".lark_cache_*"))
    assert planted, "Lark no longer caches in $TMPDIR under this name: update the test"
    marker = tmp_path / "ran"
    for f in planted:
        subprocess.run([sys.executable, "-c", PLANT, str(marker), str(f)], check=True)
    scenario = tmp_path / "s.mmscn"
    scenario.write_text("spawn A\nschedule cpu0 A\n")
    # an audit hook lists every file the run opens
    hook = ("import sys; opened = []; sys.addaudithook(lambda e, a: opened.append(str(a[0])) if e == 'open' else None)\n"
            "from mmscn.cli import main\n"
            "try:\n    main(['check', sys.argv[1]])\nexcept SystemExit:\n    pass\n"
            "sys.stdout.write(''.join(o + '\\n' for o in opened if o.startswith(sys.argv[2])))\n")
    for _ in range(2):      # the first run writes the user's cache, the second reads it
        p = subprocess.run([sys.executable, "-c", hook, str(scenario), str(tmpdir)], env=env,
                           capture_output=True, text=True)
        assert p.returncode == 0 and p.stderr == "", p.stderr
        assert not marker.exists(), "mmscn unpickled a file planted in $TMPDIR"
        assert p.stdout.splitlines()[0].endswith("ok (2 statements, 0 assertions, arch generic, 1 CPU)")
        assert p.stdout.splitlines()[1:] == [], "mmscn opened files in $TMPDIR"
    assert sorted(tmpdir.iterdir()) == planted
    cached = list((cache_home / "mmscn").iterdir())
    assert len(cached) == 1 and (cache_home / "mmscn").stat().st_mode & 0o777 == 0o700


def test_the_grammar_cache_is_used_only_when_only_its_user_can_write_it(tmp_path, monkeypatch):
    from mmscn.dsl.parser import cache_file
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    folder = tmp_path / "mmscn"
    path = cache_file()
    assert path is not None and os.path.dirname(path) == str(folder)
    assert folder.stat().st_mode & 0o777 == 0o700
    folder.chmod(0o777)                     # anyone may write the folder: no cache
    assert cache_file() is None
    folder.chmod(0o700)
    os.symlink(tmp_path / "elsewhere", path)   # a symlink where the file goes: no cache
    assert cache_file() is None
    os.unlink(path)
    os.mkdir(path)                          # not a regular file
    assert cache_file() is None
    os.rmdir(path)
    folder.rmdir()
    os.symlink(tmp_path / "other", folder)  # the folder itself a symlink: no cache
    (tmp_path / "other").mkdir(mode=0o700)
    assert cache_file() is None
