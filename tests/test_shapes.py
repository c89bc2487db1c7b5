"""The shape front end (dsl/shapes.py) must give exactly the AST that Lark gives.

Every case is parsed twice: by the plain Lark path and by the shape path, and
the results are compared field by field (the AST nodes are dataclasses)."""
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from mmscn.dsl import parser as P

ROOT = Path(__file__).resolve().parent.parent


def plain(text):
    old = P.FAST_PATH_LINES
    P.FAST_PATH_LINES = 10**12
    try:
        return P.parse_items(text, "t.mmscn")
    finally:
        P.FAST_PATH_LINES = old


def shaped(text):
    work = text if text.endswith("\n") else text + "\n"
    return P._parse_by_shapes(work)


def fast_count(text):
    """How many statements the shape path built itself (not left to Lark)."""
    from mmscn.dsl.shapes import ShapeParser
    fast, _ = ShapeParser(P.lark_parser()).items(text)
    return len(fast)


CASES = [
    "spawn A\nschedule cpu0 A\nschedule cpu1 A\n",
    # keywords of other contexts used as task names (the contextual lexer allows it)
    "spawn count\nspawn lazy\nschedule cpu0 count\nschedule cpu0 lazy\nexit lazy\n",
    # a name that starts like a CPU, mm names with a generation suffix
    "spawn cpu0x\nexec cpu0x\nassert @cpu0x.2.users == 1, @cpu0x is freed\n",
    "cpus 2\nspawn A # a comment\n   schedule   cpu1   A   # spaced out\n\n\n# only a comment\nexit A\n",
    "assert (cpu0 is lazy or not cpu1 is lazy) and @A.cpumask == {cpu0, cpu1}\n"
    "assert @A.count >= 2, A.state == running, cost.ipis != 0, cpu0.curr == idle\n",
    "mmget @A\nmmput @A\nmmgrab @A\nmmdrop @A\nmmget_not_zero @A\nflush @A tables\nflush @A\n",
    "expect error\nexit B\nexpect violation \"use-after-free\"\nexit C\n",
    "cpus 2\nspawn A\ncpu0 {\n  schedule A\n  exit A\n}\ncpu1 { unlazy }\nfinal forall @A is freed\n",
    "spawn A; spawn B\nschedule cpu0 A ; exit A\n",
    "unlazy cpu0\noffline cpu1\nonline cpu1\nuse_mm kw @A\nunuse_mm kw\nspawn thread T of A\nspawn kthread k\n",
]


# how many statements of each case are simple lines the shape path must build itself
FAST = [3, 5, 3, 3, 1, 7, 3, 1, 0, 7]


@pytest.mark.parametrize("text,fast", list(zip(CASES, FAST)))
def test_shapes_equal_lark(text, fast):
    assert shaped(text) == plain(text)
    assert fast_count(text) == fast


def test_examples_equal_lark():
    files = sorted(ROOT.glob("examples/**/*.mmscn"))
    assert files
    for f in files:
        text = f.read_text()
        try:
            want = plain(text)
        except P.ParseFailed:
            continue
        assert shaped(text) == want, f


def test_an_error_falls_back_to_the_plain_path_and_its_diagnostics():
    good = "spawn A\nschedule cpu0 A\n" * 200
    text = good + "schedule cpu0\n" + good
    assert shaped(text) is None
    with pytest.raises(P.ParseFailed) as e:
        P.parse_items(text, "t.mmscn")
    d = e.value.diagnostics[0]
    assert (d.line, d.col) == (401, 14)
    assert "after `schedule cpu0`" in d.message


def test_large_files_take_the_shape_path(monkeypatch):
    calls = []
    real = P._parse_by_shapes
    monkeypatch.setattr(P, "_parse_by_shapes", lambda w: calls.append(1) or real(w))
    text = "spawn kthread k\n" + "".join(f"spawn A{i}\nschedule cpu0 A{i}\n" for i in range(300))
    assert P.parse_items(text, "t") == plain(text)
    assert calls == [1]


_word = st.sampled_from(["A", "kw", "count", "lazy", "cpu0x", "idle", "idle0", "B_2", "zombie", "users"])
_mm = st.sampled_from(["@A", "@init_mm", "@A.2", "@x_1.10"])
_cpu = st.sampled_from(["cpu0", "cpu1", "cpu12"])
_num = st.integers(0, 2**70).map(str)
_token = st.one_of(_word, _mm, _cpu, _num, st.sampled_from(
    ["spawn", "schedule", "exit", "exec", "assert", "use_mm", "mm", "thread", "of", "kthread", ".", ",",
     "==", "!=", "<", "is", "not", "and", "or", "(", ")", "users", "count", "curr", "active_mm", "none"]))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(_token, min_size=1, max_size=7).map(" ".join), min_size=1, max_size=6))
def test_random_lines_agree(lines):
    assert_agree("\n".join(lines) + "\n")


def assert_agree(text):
    """The shape path gives Lark's AST, or leaves a text Lark rejects to the plain path."""
    try:
        want = plain(text)
    except P.ParseFailed:
        assert shaped(text) is None
        return
    assert shaped(text) == want


_digit_runs = __import__("re").compile(r"[0-9]+")


@settings(max_examples=200, deadline=None)
@given(st.lists(_token, min_size=1, max_size=7).map(" ".join), st.data())
def test_lines_apart_only_in_their_digits_agree(line, data):
    """Lines of one template (dsl/shapes.py: equal but for their digit runs) are matched by the
    expression made from the first: each must still give Lark's AST, digits of any length."""
    runs = _digit_runs.findall(line)
    variants = [line]
    for _ in range(4):
        new = iter(data.draw(st.lists(st.integers(0, 10**12).map(str), min_size=len(runs), max_size=len(runs))))
        variants.append(_digit_runs.sub(lambda m: next(new), line))
    assert_agree("\n".join(variants) + "\n")


def test_a_template_is_tokenised_once():
    from mmscn.dsl.shapes import ShapeParser
    sp = ShapeParser(P.lark_parser())
    text = "".join(f"spawn A{i}\nschedule cpu{i % 3} A{i}\nassert @A{i}.count == {i}\n" for i in (1, 22, 333, 4444))
    fast, _ = sp.items(text)
    assert len(fast) == 12 and sorted(sp.templates) == ["assert @A0.count == 0", "schedule cpu0 A0", "spawn A0"]
    assert [x for x in P._parse_by_shapes(text)] == plain(text)
