"""TraceError, apart from the importer: every `mmscn run` catches it, and only a trace needs the importer."""
from __future__ import annotations

from typing import Optional


class TraceError(Exception):
    """A trace that cannot be imported: located like every other error."""

    def __init__(self, message: str, path: str = "", lineno: int = 0, col: int = 0, line: Optional[str] = None):
        super().__init__(message)
        self.message, self.path, self.lineno, self.col, self.line = message, path, lineno, col, line

    def render(self) -> str:
        from mmscn.dsl.diagnostics import Diagnostic
        if not self.lineno:
            return f"mmscn: {self.path}: {self.message}" if self.path else f"mmscn: {self.message}"
        return Diagnostic(self.path, self.lineno, self.col or 1, self.message, source_line=self.line).render()
