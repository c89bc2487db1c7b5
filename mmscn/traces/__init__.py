"""Real kernel traces: import them as scenarios, replay them, check the model against them.

`mmscn import`, `mmscn validate`, `mmscn record` and the trace side of
`mmscn run` and `mmscn compare` (docs/traces.md).  Only the standard
library is imported here: the CLI imports this package when it starts.
"""
from __future__ import annotations

from typing import Optional

from .importer import TraceError


def is_trace(path: str) -> bool:
    """Whether the file holds kernel trace text (told by its content, not its name)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            head = [line for _, line in zip(range(200), f)]
    except (OSError, ValueError):
        return False
    from .parse import sniff
    return sniff(head) is not None


def scenario_text(path: str, ps: Optional[str] = None) -> Optional[str]:
    """The scenario text of a trace file, or None when the file is not a trace (TraceError: unreadable)."""
    if not is_trace(path):
        return None
    from .importer import scenario_text as text_of
    return text_of(path, ps)


__all__ = ["TraceError", "is_trace", "scenario_text"]
