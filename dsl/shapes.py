"""Parse once per statement shape: the fast front end of dsl/parser.py.

A generated or hand-written scenario repeats a few statement *shapes*
(`schedule cpuN NAME`, `assert @M.count == N`) with different names and
numbers.  The LALR parse of a line depends only on its sequence of terminal
types, so this module tokenises each simple line with the grammar's own
terminal patterns (taken from the Lark parser, not written again here), keys
it by that sequence (keywords and punctuation literally, names, mms, CPUs and
numbers by class), lets Lark parse the first line of every shape, and turns
the resulting AST into a small compiled builder that makes the AST of every
later line of that shape directly.  Each builder is checked against Lark's
result for the line it was made from; a shape whose builder does not
reproduce Lark exactly is always left to Lark.

Most lines of a shape differ from the first only in their digits (`A17` for
`A3`, `cpu1` for `cpu0`).  No terminal pattern tells a run of digits from a
longer one (NAME, INT, CPU and MM's generation take every digit there is), so
two lines equal but for the length and value of their digit runs have the same
tokens at the same places, digits stretched: a line is looked up by its
*template* (every digit run made `0`, one substitution over the whole text) and matched
by one regular expression made from the first line of that template, whose
groups are the tokens; a new template is tokenised as above.

Only simple lines take this path: one statement, outside any `{ }` block, no
string, no `;`.  Everything else (the header, blocks, `final`, anything odd)
is parsed by Lark as usual, and any error sends the whole file back to the
plain Lark path so that diagnostics are exactly the same.
"""
from __future__ import annotations

import dataclasses
import re

from mmscn.grammar import keywords, statement_words

from . import ast as A
from .diagnostics import source_lines
from .names import bounded_int

_HEADER = {"scenario", "arch", "cpus", "final", "kernel", "revert", "config", "granularity", "interleave"}


class NotSimple(Exception):
    pass


class ShapeParser:
    def __init__(self, lark):
        self.lark = lark
        pats = {t.name: t.pattern for t in lark.terminals}
        punct = sorted({p.value for p in pats.values() if p.type == "str" and not p.value[:1].isalnum()
                        and p.value not in "{}"}, key=len, reverse=True)
        self.tok = re.compile(
            r"[ \t\f\r]*(?:(?P<M>%s)|(?P<C>%s)|(?P<W>%s)|(?P<I>%s)|(?P<P>%s|%s))" % (
                pats["MM"].to_regexp(), pats["CPU"].to_regexp(), pats["NAME"].to_regexp(),
                pats["INT"].to_regexp(), pats["CMP"].to_regexp(), "|".join(map(re.escape, punct))))
        self.kw = keywords()
        self.first = set(statement_words()) - _HEADER
        self.cache: dict = {}
        self.templates: dict = {}   # template -> (builder, the tokens' expression) or None
        self.ns = {name: getattr(A, name) for name in dir(A) if isinstance(getattr(A, name), type)}
        self.ns["bounded_int"] = bounded_int

    def tokens(self, s: str):
        """(key, values, 1-based columns) of a simple line, or None."""
        match = self.tok.match
        kw = self.kw
        pos, end = 0, len(s)
        key, vals, cols = [], [], []
        while pos < end:
            m = match(s, pos)
            if m is None:
                return None if s[pos:].strip() else (tuple(key), vals, cols)
            g = m.lastgroup
            text = m.group(g)
            if g == "W":    # a word: a keyword stands for itself, a name for its class
                key.append(text if text in kw else "N")
            elif g == "P":
                key.append(text)
            else:
                key.append(g)
            vals.append(text)
            cols.append(m.start(g) + 1)
            pos = m.end()
        return tuple(key), vals, cols

    def builder(self, key, line: str, vals, cols):
        """Compile the builder of a shape from Lark's parse of one line of it (None: leave to Lark)."""
        try:
            items = self.lark.parse(line + "\n")
        except Exception:
            return None
        if len(items) != 1 or not isinstance(items[0], A.Stmt):
            return None
        node = items[0]
        col2i = {c: i for i, c in enumerate(cols)}
        var = {i for i, k in enumerate(key) if k in ("M", "C", "N", "I")}
        try:
            src = _expr(node, col2i, var, vals)
            # r: the tokens' spans as re.Match.regs gives them (spans()), token i's at r[i + 1]
            fn = eval("lambda L, r, v: " + src, self.ns)  # noqa: S307 - built from the AST, no user text
            if fn(1, spans(cols, vals), tuple(vals)) != node:
                return None
        except (KeyError, ValueError, TypeError, SyntaxError):
            return None
        return fn

    def template(self, s: str):
        """(builder, expression) for the lines of s's template, or None: not a simple statement."""
        t = self.tokens(s)
        if t is None:
            return None
        key, vals, cols = t
        if not key or key[0] not in self.first:
            return None
        fn = self.cache.get(key, False)
        if fn is False:
            fn = self.cache[key] = self.builder(key, s, vals, cols)
        if fn is None:
            return None
        parts, at = [], 0
        for text, col in zip(vals, cols):
            parts.append(re.escape(s[at:col - 1]))      # the blanks before the token, as they are
            parts.append("(" + "[0-9]+".join(map(re.escape, _DIGITS.split(text))) + ")")
            at = col - 1 + len(text)
        return fn, re.compile("".join(parts) + re.escape(s[at:]) + r"\Z")

    def items(self, text: str):
        """(fast statements, the text with their lines blanked) for the Lark pass."""
        out = []
        lines = source_lines(text)
        depth = 0
        strip_re = _STRIP
        templates = self.templates
        # every line's template at once (one substitution over the text, not one per line)
        tlines = source_lines(_DIGITS.sub("0", text))
        for n, line in enumerate(lines):
            if depth or "{" in line or "}" in line or ";" in line or '"' in line:
                if "{" in line or "}" in line:
                    bare = strip_re.sub("", line)
                    depth += bare.count("{") - bare.count("}")
                    if depth < 0:
                        raise NotSimple
                continue
            if "#" in line:
                s, tpl = line.split("#", 1)[0], tlines[n].split("#", 1)[0]
            else:
                s, tpl = line, tlines[n]
            if not s or s.isspace():
                continue
            known = templates.get(tpl, False)
            if known is False:
                known = templates[tpl] = self.template(s)
            if known is None:
                continue
            fn, rx = known
            m = rx.match(s)
            if m is None:   # cannot happen (see the module's text); never guess
                raise NotSimple
            out.append(fn(n + 1, m.regs, m.groups()))
            lines[n] = ""
        return out, "\n".join(lines)


def spans(cols, vals) -> list:
    """A builder's token spans from 1-based columns and texts, laid out as re.Match.regs (group 0 unused)."""
    return [None] + [(c - 1, c - 1 + len(v)) for c, v in zip(cols, vals)]


_STRIP = re.compile(r'"[^"\n]*"|#.*')
_DIGITS = re.compile(r"[0-9]+")


def _expr(obj, col2i, var, vals) -> str:
    if obj is None or isinstance(obj, (bool, str)):
        return repr(obj)
    if isinstance(obj, int):
        return repr(obj)
    if isinstance(obj, A.Ref):
        i = col2i[obj.col]
        if vals[i] != obj.text:
            raise ValueError
        return f"Ref(v[{i}], L, r[{i + 1}][0] + 1)" if i in var else f"Ref({obj.text!r}, L, r[{i + 1}][0] + 1)"
    if isinstance(obj, list):
        return "[" + ", ".join(_expr(x, col2i, var, vals) for x in obj) + "]"
    if isinstance(obj, tuple):
        return "(" + "".join(_expr(x, col2i, var, vals) + ", " for x in obj) + ")"
    if dataclasses.is_dataclass(obj):
        i = col2i[obj.col]
        args = []
        for f in dataclasses.fields(obj):
            val = getattr(obj, f.name)
            if f.name == "line":
                args.append("L")
            elif f.name == "col":
                args.append(f"r[{i + 1}][0] + 1")
            elif isinstance(val, str) and i in var and val == vals[i]:
                args.append(f"v[{i}]")
            elif isinstance(val, int) and not isinstance(val, bool) and i in var and vals[i].isdigit() \
                    and val == bounded_int(vals[i]):
                args.append(f"bounded_int(v[{i}])")
            else:
                args.append(_expr(val, col2i, var, vals))
        return f"{type(obj).__name__}({', '.join(args)})"
    raise TypeError(type(obj))
