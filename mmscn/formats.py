"""The output formats of the commands."""
from __future__ import annotations

import os


def use_color(stream) -> bool:
    return stream.isatty() and "NO_COLOR" not in os.environ and os.environ.get("TERM") != "dumb"
