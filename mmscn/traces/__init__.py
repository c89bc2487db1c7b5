"""Real kernel traces: import them as scenarios, replay them, check the model against them.

`mmscn import`, `mmscn validate`, `mmscn record` and the trace side of
`mmscn run` and `mmscn compare` (docs/traces.md).  Only the standard
library is imported here: the CLI imports this package when it starts.
"""
from __future__ import annotations

import os
from typing import Optional

from .errors import TraceError


def is_trace(path: str) -> bool:
    """Whether the file holds kernel trace text (told by its content, not its name)."""
    import stat
    try:
        # only a regular file can be a trace: /dev/zero has no line to end, a FIFO blocks;
        # the loader then says why such a file is no scenario either (dsl/files.py)
        if not stat.S_ISREG(os.stat(path).st_mode):
            return False
        with open(path, encoding="utf-8", errors="replace") as f:
            head = [ln for ln in (f.readline(1 << 16) for _ in range(200)) if ln]
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
