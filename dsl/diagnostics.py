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
        where, message = printable(self.location()), printable(self.message)
        if color:
            c = {"error": "1;31", "violation": "1;35", "failure": "1;31", "note": "1;36"}.get(sev, "1")
            head = f"\x1b[1m{where}:\x1b[0m \x1b[{c}m{sev}:\x1b[0m \x1b[1m{message}\x1b[0m"
        else:
            head = f"{where}: {sev}: {message}"
        out = [head]
        if self.source_line is not None and self.line > 0:
            out += caret_lines(self.source_line, self.line, self.col, color)
        for n in self.notes:
            out.append(f"  note: {printable(n)}")
        return "\n".join(out)

    def to_json(self) -> dict:
        d = {"file": self.path, "line": self.line, "column": self.col,
             "severity": self.severity, "message": self.message}
        if self.consequence_of is not None:
            d["consequence_of"] = self.consequence_of
        return d


def source_lines(text: str) -> list:
    """The lines of a scenario as the lexer counts them: only a newline ends one.

    (str.splitlines() also ends a line at a form feed, a vertical tab, \\x1c-\\x1e,
    \\x85, U+2028 and U+2029, and would show the wrong line under a message.)
    """
    return text.split("\n")


def locate(text: str, offset: int) -> tuple:
    """(line, column, source line) of the character at ``offset``, 1-based."""
    start = text.rfind("\n", 0, offset) + 1
    end = text.find("\n", offset)
    return text.count("\n", 0, offset) + 1, offset - start + 1, text[start:end if end >= 0 else len(text)]


def printable(text: str, lines: bool = False) -> str:
    """The one sanitiser of what mmscn shows on a terminal: every control character
    (ESC, BEL, CR, C1 controls like CSI) and unprintable character becomes `?`, one
    character for one, so columns stay; a tab stays, and ``lines`` keeps newlines.
    A title, an `expect` string or a file name cannot retitle or recolour a terminal."""
    if text.isprintable():
        return text
    keep = "\t\n" if lines else "\t"
    return "".join(ch if ch in keep or ch.isprintable() else "?" for ch in text)


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
    candidates = list(candidates)
    close = difflib.get_close_matches(word, candidates, n=1, cutoff=0.75)
    if close:
        return close[0]
    # two neighbours swapped: difflib scores that low in a short word (`x68` for x86)
    swaps = {word[:i] + word[i + 1] + word[i] + word[i + 2:] for i in range(len(word) - 1)} - {word}
    return next((c for c in candidates if c in swaps), None) if len(word) >= 3 else None


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
    if getattr(e, "reason", None):     # files.NotASource: not a regular file, or too big
        return e.reason
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
