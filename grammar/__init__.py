"""The .mmscn grammar: grammar/mmscn.lark is the only place the syntax is written.

Everything that needs the language's words (the parser, the Pygments lexer, the
editor grammars, REPL completion) asks this module, which reads them out of
the .lark file, so there is no second keyword list to drift.
"""
from __future__ import annotations

import functools
import re
from pathlib import Path

GRAMMAR_FILE = Path(__file__).with_name("mmscn.lark")

_WORD = re.compile(r'"([a-z_][a-z0-9_]*)"')
_TERMINAL_DEF = re.compile(r"^([A-Z_][A-Z0-9_]*)(?:\.\d+)?\s*:(.*)$")


def grammar_text() -> str:
    return GRAMMAR_FILE.read_text(encoding="utf-8")


@functools.lru_cache(maxsize=None)
def word_classes() -> dict[str, tuple[str, ...]]:
    """Every quoted word of the grammar, by where it is defined.

    The key is the named terminal whose alternatives the word is (for example
    ``STATE_WORD`` -> live, zombie, ...), or ``"keyword"`` for a word written
    directly in a rule (spawn, schedule, assert, ...).  Order follows the file.
    """
    classes: dict[str, list[str]] = {}
    current = None
    for raw in grammar_text().splitlines():
        line = raw.split("//", 1)[0].rstrip()
        if not line.strip():
            current = None
            continue
        m = _TERMINAL_DEF.match(line)
        if m:
            current, body = m.group(1), m.group(2)
        elif line[:1].isspace() and current:
            body = line  # continuation of a terminal's alternatives
        else:
            current, body = None, line
        key = current or "keyword"
        for w in _WORD.findall(body):
            bucket = classes.setdefault(key, [])
            if w not in bucket:
                bucket.append(w)
    return {k: tuple(v) for k, v in classes.items()}


@functools.lru_cache(maxsize=None)
def keywords() -> frozenset[str]:
    """All reserved words of the language (every quoted word of the grammar)."""
    return frozenset(w for ws in word_classes().values() for w in ws)


@functools.lru_cache(maxsize=None)
def statement_words() -> tuple[str, ...]:
    """The words that begin a statement, a header line or the final clause.

    Read from the alternatives of ``?header``, ``?stmt`` and from ``final``:
    the first quoted word of each rule, or the words of its first terminal.
    """
    text = grammar_text()
    rules = {}
    for m in re.finditer(r"^[?!]?([a-z_]+):(.*(?:\n\s+[|].*)*)", text, re.M):
        rules[m.group(1)] = m.group(2)
    names: list[str] = []
    for group in ("header", "stmt"):
        names += re.findall(r"[a-z_]+", rules[group])
    names.append("final")
    words: list[str] = []
    classes = word_classes()
    for name in names:
        first = rules[name].split()[0]
        found = [first.strip('"')] if first.startswith('"') else list(classes.get(first, ()))
        words += [w for w in found if w not in words]
    return tuple(words)
