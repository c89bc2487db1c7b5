"""How the language spells names and numbers: the one place each spelling is read.

A CPU is `cpuN`; the number N is read here (cpu_number), nowhere else.  Task
and mm names stay names through every stage: the kernel gives a task or an mm
its index when the statement that makes it runs, which inside the per-CPU
blocks is the interleaving's choice (and a refused statement makes nothing).
An mm made without `mm @M` is named by fresh_mm_name, the one rule the
resolver applies in program order to know the names a file may use and the
interpreter applies when the statement runs, against the mms made so far.
"""
from __future__ import annotations

import functools
import re

MAX_INT = 2**64 - 1
MAX_CPUS = 1024
INIT_MM_NAME = "@init_mm"

_CPU_NAME = re.compile(r"cpu[0-9]+")


def bounded_int(digits: str, most: int = MAX_INT) -> int:
    """The number a run of digits spells, or ``most + 1`` for anything larger.

    Decided by length before converting: Python refuses to convert more than
    4,300 digits, so a huge number must fail the range check without int().
    """
    d = digits.lstrip("0") or "0"
    return int(d) if len(d) <= len(str(most)) and int(d) <= most else most + 1


def is_cpu_name(text: str) -> bool:
    return _CPU_NAME.fullmatch(text) is not None


@functools.lru_cache(maxsize=4096)     # every statement naming a CPU asks
def cpu_number(name: str) -> int:
    """N of `cpuN` (MAX_CPUS + 1 for a number beyond any CPU)."""
    return bounded_int(name[3:], MAX_CPUS)


def idle_name(cpu: int) -> str:
    return f"idle{cpu}"


def fresh_mm_name(base: str, taken) -> str:
    """``@A`` for task A, or the next free of ``@A.2``, ``@A.3``, ... (language.md)."""
    name = "@" + base
    if name not in taken:
        return name
    n = 2
    while f"{name}.{n}" in taken:
        n += 1
    return f"{name}.{n}"


def cpu_spelling(name: str) -> str:
    """The one way to write the CPU ``name`` names: `cpu01` is written `cpu1`."""
    return "cpu" + (name[3:].lstrip("0") or "0")
