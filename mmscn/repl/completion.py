"""The REPL's completion: the word at the cursor and the words that may follow."""
from __future__ import annotations

import re
from typing import Optional

from mmscn.repl.commands import lookup


def open_block(text: str) -> Optional[str]:
    """The CPU of the per-CPU block still open at the end of ``text`` (`cpu0 {` not closed), or None."""
    stack = []      # a block's CPU, or None for the `{` of a CPU set
    for line in text.split("\n"):
        line = re.sub(r'"[^"\n]*"?', "", line).split("#", 1)[0]
        for m in re.finditer(r"(cpu[0-9]+)\s*\{|[{}]", line):
            if m.group(0) == "}":
                if stack:
                    stack.pop()
            else:
                stack.append(m.group(1))
    return next((c for c in reversed(stack) if c), None)


def partial_word(before: str) -> str:
    """The word the cursor is in: names, @mms, cpuN, fields after a dot, :commands."""
    m = re.search(r"[:@A-Za-z0-9_.]*$", before)
    return m.group(0) if m else ""


def _pick(cands, partial: str) -> list:
    seen, out = set(), []
    for word, meta in cands:
        if word.startswith(partial) and word not in seen:
            seen.add(word)
            out.append((word, meta))
    return out


def make_completer(session):
    from prompt_toolkit.completion import Completer, Completion, PathCompleter
    from prompt_toolkit.document import Document
    paths = PathCompleter(expanduser=True)

    class ReplCompleter(Completer):
        def get_completions(self, document, complete_event):
            before = document.text_before_cursor
            s = before.lstrip()
            if s.startswith(":") and " " in s and "\n" not in s:
                name, arg = s.split(" ", 1)
                cmd, _ = lookup(name)
                if cmd is not None and cmd.argument == "file":
                    arg = arg.lstrip()
                    yield from paths.get_completions(Document(arg, len(arg)), complete_event)
                    return
            partial = partial_word(before)
            for word, meta in session.completions(before):
                yield Completion(word, -len(partial), display_meta=meta)

    return ReplCompleter()
