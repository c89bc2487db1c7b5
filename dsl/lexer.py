"""Pygments lexer for .mmscn scenarios, and the one classification of its words.

Registered through the ``pygments.lexers`` entry point (pyproject.toml), so
``pygmentize -l mmscn``, ``pygmentize FILE.mmscn`` and Sphinx/MkDocs code
blocks find it.  Every word list comes from grammar/mmscn.lark through
:mod:`mmscn.grammar`; :func:`word_groups` sorts those words into the
highlighting groups that the lexer and the generated editor files
(tools/gen_editors.py) share, so no engine keeps a list of its own.
"""
from __future__ import annotations

import functools
import re

from pygments.lexer import RegexLexer, bygroups, default, words
from pygments.token import (Comment, Error, Keyword, Name, Number, Operator,
                            Punctuation, String, Whitespace)

from mmscn.grammar import grammar_text, word_classes, statement_words

# The rules whose quoted words are operators of a condition (and, or, not, is).
_CONDITION_RULES = ("cond", "and_cond", "not_cond", "is_test")


@functools.lru_cache(maxsize=None)
def word_groups() -> dict[str, tuple[str, ...]]:
    """The grammar's words sorted into highlighting groups.

    statement: words that begin a statement, header line or ``final``.
    operator:  words written in the condition rules (and, or, not, is).
    keyword:   the other words written directly in a rule (thread, of, mm...).
    field:     words of the ``*_FIELD`` terminals (after a ``.``).
    constant:  words of every other terminal (states, kinds, none, true...).

    A word may sit in several groups (``online`` is a statement, a state and
    a CPU field); the lexer picks by position, the editors by priority.
    """
    classes = word_classes()
    stmts = statement_words()
    text = grammar_text()
    cond_words: set[str] = set()
    for m in re.finditer(r"^[?!]?([a-z_]+):(.*(?:\n\s+[|].*)*)", text, re.M):
        if m.group(1) in _CONDITION_RULES:
            cond_words.update(re.findall(r'"([a-z_]+)"', m.group(2)))
    groups: dict[str, list[str]] = {g: [] for g in
                                     ("statement", "operator", "keyword", "field", "constant")}

    def put(group, w):
        if w not in groups[group]:
            groups[group].append(w)

    for w in stmts:
        put("statement", w)
    for cls, ws in classes.items():
        for w in ws:
            if cls == "keyword":
                if w in stmts:
                    continue
                put("operator" if w in cond_words else "keyword", w)
            elif cls.endswith("_FIELD"):
                put("field", w)
            elif w in cond_words:
                put("operator", w)      # the NOT of `is not`
            elif not all(x in stmts for x in ws):   # not a statement terminal (MMREF_OP)
                put("constant", w)
    return {g: tuple(ws) for g, ws in groups.items()}


# Where the grammar's own tokens are defined (grammar/mmscn.lark) these mirror them.
_CPU = r"cpu[0-9]+(?![A-Za-z0-9_])"
_MM = r"@[A-Za-z_][A-Za-z0-9_]*(?:\.[0-9]+)?"
_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_ARCH_NAME = r"[A-Za-z0-9_][A-Za-z0-9_.-]*"
_CMP = r"==|!=|<=|>=|<|>"


def _tokens():
    g = word_groups()
    stmt = words(g["statement"], suffix=r"(?![A-Za-z0-9_])")
    common = [
        (r"[ \t\f\r]+", Whitespace),
        (r"#[^\n]*", Comment.Single),
        (r'"[^"\n]*"?', String.Double),
        (_CPU, Name.Builtin),
        (_MM, Name.Entity),
        (r"[0-9]+", Number.Integer),
        (_CMP, Operator),
        (r",", Punctuation),
        (r"[()]", Punctuation),
        (r"(\.)(" + "|".join(map(re.escape, g["field"])) + r")(?![A-Za-z0-9_])",
         bygroups(Punctuation, Name.Attribute)),
    ]
    # Outside the statement-start position a word shared by several groups
    # takes the meaning it has in the middle of a statement.
    later = [
        (words(g["operator"], suffix=r"(?![A-Za-z0-9_])"), Operator.Word),
        (words(g["keyword"], suffix=r"(?![A-Za-z0-9_])"), Keyword.Reserved),
        (words(g["constant"], suffix=r"(?![A-Za-z0-9_])"), Keyword.Constant),
        (stmt, Keyword),
        (words(g["field"], suffix=r"(?![A-Za-z0-9_])"), Name.Attribute),
        (_NAME, Name.Variable),
    ]
    return {
        # the start of a statement: after a newline, `;` or `{`
        "root": [
            (r"[ \t\f\r]+", Whitespace),
            (r"\n", Whitespace),
            (r";", Punctuation),
            (r"[{}]", Punctuation),
            (r"#[^\n]*", Comment.Single),
            # a header line's value: the arch, the release, a commit, an option
            (r"(arch|kernel|revert|config)([ \t\f\r]+)(" + _ARCH_NAME + ")",
             bygroups(Keyword, Whitespace, Name.Constant), "rest"),
            (stmt, Keyword, "rest"),
            default("rest"),
        ],
        "rest": [
            (r"(?=[\n;{}])", Whitespace, "#pop"),
            (r"without(?![A-Za-z0-9_])", Keyword.Reserved, "commits"),
            (r"(" + _CMP + r")([ \t\f\r]*)", bygroups(Operator, Whitespace), "value"),
            *common,
            *later,
            (r"\.", Punctuation),
            (r".", Error),
        ],
        # the commits after `expect pass|fail without`
        "commits": [
            (r"[ \t\f\r]+", Whitespace),
            (r"[A-Za-z0-9_]+", Name.Constant),
            default("#pop"),
        ],
        # the value after a comparison: a word here is a constant (`kind == kthread`)
        "value": [
            (words(g["constant"], suffix=r"(?![A-Za-z0-9_])"), Keyword.Constant, "#pop"),
            default("#pop"),
        ],
    }


class MmscnLexer(RegexLexer):
    """Lexer for mmscn scenarios: how Linux lends address spaces (task->mm, active_mm)."""

    name = "mmscn"
    aliases = ["mmscn"]
    filenames = ["*.mmscn"]
    mimetypes = ["text/x-mmscn"]
    url = "https://docs.kernel.org/mm/active_mm.html"
    version_added = ""

    tokens = _tokens()
