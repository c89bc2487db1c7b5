"""Located messages: ``FILE:LINE:COL: error: ...``, the source line, a caret.

Used for syntax errors, resolution errors, runtime refusals, invariant
violations and failed assertions alike, so they all look the same.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

# A line longer than this is shown as a window around the caret.
_SHOW = 100


@dataclass(slots=True)
class Diagnostic:
    path: str
    line: int
    col: int
    message: str
    severity: str = "error"       # error | violation | failure | note
    source_line: Optional[str] = None
    notes: tuple = ()
    consequence_of: Optional[int] = None    # the index of the failure this one follows from (same run)

    def location(self) -> str:
        return f"{self.path}:{self.line}:{self.col}"

    def render(self, color: bool = False) -> str:
        sev = self.severity
        if color:
            c = {"error": "1;31", "violation": "1;35", "failure": "1;31", "note": "1;36"}.get(sev, "1")
            head = f"\x1b[1m{self.location()}:\x1b[0m \x1b[{c}m{sev}:\x1b[0m \x1b[1m{self.message}\x1b[0m"
        else:
            head = f"{self.location()}: {sev}: {self.message}"
        out = [head]
        if self.source_line is not None and self.line > 0:
            out += caret_lines(self.source_line, self.line, self.col, color)
        for n in self.notes:
            out.append(f"  note: {n}")
        return "\n".join(out)

    def to_json(self) -> dict:
        d = {"file": self.path, "line": self.line, "column": self.col,
             "severity": self.severity, "message": self.message}
        if self.consequence_of is not None:
            d["consequence_of"] = self.consequence_of
        return d


def printable(text: str) -> str:
    """Show control characters and odd bytes visibly, never raw."""
    out = []
    for ch in text:
        o = ord(ch)
        if ch == "\t" or (32 <= o < 127) or (o >= 160 and ch.isprintable()):
            out.append(ch)
        else:
            out.append("?")
    return "".join(out)


def caret_lines(src: str, line: int, col: int, color: bool = False) -> list:
    src = src.rstrip("\r\n")
    col = max(1, col)
    start = 0
    if len(src) > _SHOW:
        start = max(0, min(col - 1 - _SHOW // 2, len(src) - _SHOW))
        shown = src[start:start + _SHOW]
        prefix = "..." if start else ""
        suffix = "..." if start + _SHOW < len(src) else ""
    else:
        shown, prefix, suffix = src, "", ""
    shown = printable(shown).replace("\t", " ")
    gutter = f"{line:5d} | "
    pad = " " * (len(prefix) + col - 1 - start)
    caret = "^"
    if color:
        caret = "\x1b[1;32m^\x1b[0m"
    return [f"{gutter}{prefix}{shown}{suffix}", f"{' ' * (len(gutter) - 2)}| {pad}{caret}"]


def close_match(word: str, candidates) -> Optional[str]:
    """The one candidate close to a misspelt ``word``, for a "did you mean" hint."""
    import difflib    # only on the error path
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.75)
    return close[0] if close else None


def did_you_mean(word: str, candidates) -> str:
    """`; did you mean `X`?` when a candidate is close to ``word``, else ""."""
    close = close_match(word, candidates)
    return f"; did you mean `{close}`?" if close else ""


def plural(n: int, word: str, many: str = "", fmt: str = "") -> str:
    """`1 CPU`, `2 CPUs`; ``many`` for irregular plurals, ``fmt`` for the number (`,` groups thousands)."""
    return f"{n:{fmt}} {word if n == 1 else many or word + 's'}"


def read_error(e: OSError) -> str:
    """Why a scenario file could not be read, in the words every command uses."""
    if isinstance(e, IsADirectoryError):
        return "is a directory, not a scenario file"
    return f"cannot read: {e.strerror or e}"


def rule_notes(function: str, violation: bool = False) -> tuple:
    """The note under a located failure that names the kernel function behind it."""
    if not function or function == "the scenario":
        return ()
    return (f"checked by {function}",) if violation else (f"the rule is in {function}",)


def short(text, n: int = 40, escape: bool = False) -> str:
    """A name or word as a message quotes it: at most ``n`` characters; ``escape``
    shows control and non-ASCII characters as escapes (for what a terminal echoes)."""
    text = str(text)
    if escape:
        text = text.encode("ascii", "backslashreplace").decode()
    return text if len(text) <= n else text[: n - 3] + "..."
