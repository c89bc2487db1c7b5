"""argparse types of the options the commands share (counts, seconds)."""
from __future__ import annotations

import argparse


def positive_int(text):
    """argparse type of a count: a whole number, at least 1."""
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}")
    if v <= 0:
        raise argparse.ArgumentTypeError("must be at least 1")
    return v


def positive_float(text):
    """argparse type of a time in seconds: more than 0."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}")
    if not v > 0:
        raise argparse.ArgumentTypeError("must be more than 0")
    return v
