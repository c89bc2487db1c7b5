"""The Pygments lexer: registered for pygmentize/Sphinx/MkDocs, golden tokens, words from the grammar.

Agreement with the parser token by token, over every example and statement
form, is tested for all engines together in tests/test_editors.py.
"""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from pygments.lexers import (find_lexer_class_by_name, get_lexer_by_name,
                             get_lexer_for_filename, get_lexer_for_mimetype)
from pygments.token import (Comment, Error, Keyword, Name, Number, Operator, Punctuation,
                            String, Whitespace)

import mmscn.grammar as grammar
from mmscn.dsl import lexer as lexmod
from mmscn.dsl.lexer import MmscnLexer, word_groups

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("**/*.mmscn"))
FORMS = ROOT / "tests" / "highlighting" / "statement_forms.mmscn"


def toks(text):
    """(token type, text) without the whitespace between tokens."""
    return [(t, v) for t, v in MmscnLexer().get_tokens(text) if t is not Whitespace and v.strip()]


def test_registered_through_the_entry_point():
    assert find_lexer_class_by_name("mmscn") is MmscnLexer
    assert isinstance(get_lexer_by_name("mmscn"), MmscnLexer)
    assert isinstance(get_lexer_for_filename("examples/zombie_mm.mmscn"), MmscnLexer)
    assert isinstance(get_lexer_for_mimetype("text/x-mmscn"), MmscnLexer)


@pytest.mark.parametrize("args", [["-l", "mmscn"], []], ids=["-l mmscn", "by filename"])
def test_pygmentize(args):
    exe = Path(sys.executable).parent / "pygmentize"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "pygments"]
    r = subprocess.run(cmd + args + ["-f", "raw", str(ROOT / "examples" / "zombie_mm.mmscn")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "Token.Keyword\t'spawn'" in r.stdout
    assert "Token.Name.Entity\t'@A'" in r.stdout
    assert "Token.Error" not in r.stdout


GOLDEN = [
    ("spawn thread T of A  # a thread shares A's mm", [
        (Keyword, "spawn"), (Keyword.Reserved, "thread"), (Name.Variable, "T"),
        (Keyword.Reserved, "of"), (Name.Variable, "A"),
        (Comment.Single, "# a thread shares A's mm")]),
    ("scenario \"x\"; arch linux-2.3\n", [
        (Keyword, "scenario"), (String.Double, '"x"'), (Punctuation, ";"),
        (Keyword, "arch"), (Name.Constant, "linux-2.3")]),
    ("assert @A.1.users >= 2, cpu0 is online, cpu1.online == false", [
        (Keyword, "assert"), (Name.Entity, "@A.1"), (Punctuation, "."), (Name.Attribute, "users"),
        (Operator, ">="), (Number.Integer, "2"), (Punctuation, ","),
        (Name.Builtin, "cpu0"), (Operator.Word, "is"), (Keyword.Constant, "online"),
        (Punctuation, ","), (Name.Builtin, "cpu1"), (Punctuation, "."), (Name.Attribute, "online"),
        (Operator, "=="), (Keyword.Constant, "false")]),
    ("online cpu1; offline", [
        (Keyword, "online"), (Name.Builtin, "cpu1"), (Punctuation, ";"), (Keyword, "offline")]),
    ("cpu0 { schedule kw; mmget_not_zero @A }", [
        (Name.Builtin, "cpu0"), (Punctuation, "{"), (Keyword, "schedule"), (Name.Variable, "kw"),
        (Punctuation, ";"), (Keyword, "mmget_not_zero"), (Name.Entity, "@A"), (Punctuation, "}")]),
    ("assert kw.kind == kthread and not (kw.mm != none or cost.ipis < 3)", [
        (Keyword, "assert"), (Name.Variable, "kw"), (Punctuation, "."), (Name.Attribute, "kind"),
        (Operator, "=="), (Keyword.Constant, "kthread"), (Operator.Word, "and"),
        (Operator.Word, "not"), (Punctuation, "("), (Name.Variable, "kw"), (Punctuation, "."),
        (Name.Attribute, "mm"), (Operator, "!="), (Keyword.Constant, "none"),
        (Operator.Word, "or"), (Keyword.Reserved, "cost"), (Punctuation, "."),
        (Name.Attribute, "ipis"), (Operator, "<"), (Number.Integer, "3"), (Punctuation, ")")]),
    ("expect error \"use_mm from a user task\"\nfinal forall @B is freed", [
        (Keyword, "expect"), (Keyword.Constant, "error"), (String.Double, '"use_mm from a user task"'),
        (Keyword, "final"), (Keyword.Constant, "forall"), (Name.Entity, "@B"),
        (Operator.Word, "is"), (Keyword.Constant, "freed")]),
    ("spawn cpu0x; exec online2 mm @N", [
        (Keyword, "spawn"), (Name.Variable, "cpu0x"), (Punctuation, ";"), (Keyword, "exec"),
        (Name.Variable, "online2"), (Keyword.Reserved, "mm"), (Name.Entity, "@N")]),
]


@pytest.mark.parametrize("text,want", GOLDEN, ids=[g[0].split()[0] + str(i) for i, g in enumerate(GOLDEN)])
def test_golden_tokens(text, want):
    assert toks(text) == want


def test_junk_is_an_error_token():
    """Characters outside the language show as Error (so the no-Error tests mean something)."""
    assert (Error, "$") in toks("spawn A $")
    assert (Error, "bogus") not in toks("assert A.bogus == 1")
    assert (Name.Attribute, "bogus") not in toks("assert A.bogus == 1")


@pytest.mark.parametrize("path", EXAMPLES + [FORMS], ids=lambda p: p.name)
def test_no_error_token(path):
    text = path.read_text(encoding="utf-8")
    errors = [v for t, v in MmscnLexer().get_tokens(text) if t in Error]
    assert not errors
    # and the lexer gives back the text it was given
    assert "".join(v for _, v in MmscnLexer().get_tokens(text)) == text + ("" if text.endswith("\n") else "\n")


def test_no_error_token_in_the_docs_code_blocks():
    """```mmscn blocks of the docs (what Sphinx/MkDocs highlight) that parse show no Error."""
    from mmscn.dsl.parser import ParseFailed, parse_items
    blocks = []
    for md in sorted([ROOT / "README.md", *(ROOT / "docs").glob("**/*.md")]):
        if md.is_file():
            blocks += [(md.name, b) for b in
                       re.findall(r"^```mmscn\n(.*?)^```", md.read_text(encoding="utf-8"), re.S | re.M)]
    checked = 0
    for name, block in blocks:
        try:
            parse_items(block, name)
        except ParseFailed:
            continue        # a block showing a mistake may show it as an error
        checked += 1
        assert not [v for t, v in MmscnLexer().get_tokens(block) if t in Error], (name, block)
    assert checked or not blocks


def test_word_groups_are_the_grammar_words():
    g = word_groups()
    assert set().union(*map(set, g.values())) == grammar.keywords()
    assert g["statement"] == grammar.statement_words()
    assert set(g["field"]) == {w for cls, ws in grammar.word_classes().items()
                               if cls.endswith("_FIELD") for w in ws}
    assert set(g["operator"]) == {"and", "or", "not", "is"}


def test_a_new_grammar_word_reaches_the_lexer(tmp_path, monkeypatch):
    """No second list: a statement added to grammar/mmscn.lark is a Keyword at once."""
    text = grammar.GRAMMAR_FILE.read_text(encoding="utf-8")
    text = text.replace("| offline | online | flush", "| offline | online | flush | migrate")
    text += '\n!migrate: "migrate" NAME CPU\n'
    (tmp_path / "mmscn.lark").write_text(text, encoding="utf-8")

    def clear():
        for f in (grammar.word_classes, grammar.keywords, grammar.statement_words, word_groups):
            f.cache_clear()
    monkeypatch.setattr(grammar, "GRAMMAR_FILE", tmp_path / "mmscn.lark")
    clear()
    try:
        assert "migrate" in word_groups()["statement"]

        class Fresh(MmscnLexer):
            tokens = lexmod._tokens()
        got = [(t, v) for t, v in Fresh().get_tokens("migrate A cpu1\n") if v.strip()]
        assert got[0] == (Keyword, "migrate")
    finally:
        monkeypatch.undo()
        clear()
    assert "migrate" not in word_groups()["statement"]
