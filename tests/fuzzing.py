"""The grammar-aware fuzzer: scenario strategies, byte mutations, and the
properties every input must keep when the real `mmscn` runs it.

Shared by tests/test_fuzz.py (a bounded, deterministic run in the suite) and
benchmarks/fuzz.py (a timed run that counts and keeps what it finds).

* `scenarios()` writes whole scenarios from the grammar's own word lists
  (grammar/__init__.py): headers, every statement form with names that exist
  or not, per-CPU blocks (sometimes many identical ones), asserts, expect,
  final.  `inputs()` adds byte-level mutations of examples/**/*.mmscn,
  tests/bad_inputs/*.mmscn and generated files (flipped, inserted and deleted
  bytes, NUL, control characters, ESC sequences, huge numbers, deep
  parentheses, invalid UTF-8, UTF-16).
* `check_batch()` writes a batch of inputs into a folder and runs the
  installed console script on them, many files per process where the command
  takes several (check, run, run --json), one at a time where it takes one
  (explore, compare), and reports a `Finding` for each broken property:

      exit70      exit status 70 or "internal error"
      traceback   "Traceback" in the output
      status      an exit status the command does not document
      unlocated   an error without FILE:LINE:COL, its source line and a caret
                  under that column (the format of tests/test_errors.py)
      json        --json output that is not JSON
      witness     `mmscn run` on the witness `explore --witness` wrote does
                  not fail the way the exploration said
      hashseed    output differs between PYTHONHASHSEED=0 and 12345
      control     raw control bytes (ESC, BEL, other C0/C1) in the output;
                  outputs are pipes, so colour never applies, NO_COLOR unset
      timeout     no answer within the time limit (or the memory limit)

  Every finding names the one input that shows it: the file the output
  names, or, when it names none (a crash, a hash-seed difference), the half
  of the batch that still shows it, until one file is left.
* `minimize()` shrinks a finding's input, line by line then character by
  character, keeping the same class of finding.
"""
from __future__ import annotations

import collections
import concurrent.futures
import dataclasses
import itertools
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Optional

from hypothesis import HealthCheck, Phase, given, seed as hseed, settings, strategies as st

from mmscn.dsl.diagnostics import printable
from mmscn.grammar import grammar_text, keywords, statement_words, word_classes
from mmscn.interpreter import policies

ROOT = Path(__file__).resolve().parent.parent
CLASSES = ("exit70", "traceback", "status", "unlocated", "json", "witness", "hashseed", "control", "timeout")
# The exit statuses each command documents (its --help epilog and docs/).
STATUSES = {"check": {0, 2}, "run": {0, 1, 2}, "explore": {0, 1, 2, 3}, "compare": {0, 2}}
COMMANDS = tuple(STATUSES)
HASH_SEEDS = ("0", "12345")
BATCH_TIMEOUT = 120.0          # seconds for one process on a batch of files
FILE_TIMEOUT = 30.0            # seconds for explore or compare on one file
MEMORY_LIMIT = 2 << 30         # bytes of address space per process (the machine is shared)


def mmscn_cmd() -> list:
    """The installed console script (the one a user runs), as tests/conftest.py finds it."""
    exe = Path(sys.executable).parent / "mmscn"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "mmscn"]


# ============================================================== the words
W = word_classes()
STATEMENT_WORDS = statement_words()
ARCHES = policies.names()
# comparison operators are not words, so word_classes() leaves them out: read them from the same file
CMPS = tuple(re.findall(r'"([^"]+)"', re.search(r"^CMP:(.*)$", grammar_text(), re.M).group(1)))

TASKS = ("A", "B", "C", "T", "U", "kw", "k1", "k2")
HUGE = "1" + "0" * 4400            # beyond Python's int-from-string limit (4,300 digits)
NUMBERS = ("0", "1", "2", "3", "4", "7", "64", "1024", "1025", str(2**64 - 1), str(2**64), "1" + "0" * 30,
           "00", "-1", HUGE)
# what a newcomer who knows the kernel types (issue 12 item 7), and words glued together (item 6)
KERNEL_SPELLINGS = (
    "kthread_use_mm kw @A", "kthread_unuse_mm kw", "mmgrab_lazy_tlb @A", "mmdrop_lazy_tlb @A",
    "assert @A.mm_users == 1", "assert @A.mm_count == 1", "assert A.active-mm == @A", "arch x68", "arch X86",
    "arch linux_2_3", "arch sparc64", "Cpus 2", "CPUS 2", "spawnB", "exit_mm A", "do_exit A", "schedulecpu0 A",
    "switch_mm cpu0 @A", "context_switch cpu0 A", "fork A", "clone T of A", "use_mm(kw, @A)", "mmput(@A)",
    "assert @A.users = 1", "assert @A.users == 1 &&", "assert A is zombie", "flush @A tables tables",
    "spawn thread T", "spawn kthread", "schedule", "online", "expect error", "final", "final forall",
    "assert", "}", "{", "cpu0 {", "cpu0 { }", "cpu0 {}", "cpu0 { schedule A }")
STRINGS = ("t", "two CPUs race", "caf\u00e9 \u2014 \u65e5\u672c", "", "x" * 300, "quote ' and \\ backslash",
           "not running", "has exited", "use-after-teardown", "mm_users", "refused")
# what a hostile file puts in a title or a reason to reach the terminal (issue 12 item 5)
HOSTILE = ("tab\there", "\x1b]0;pwned\x07", "\x1b[31mred\x1b[0m", "bell\x07", "\x1b[2J\x1b[H",
           "c1 \u009b31m csi", "back\x08space", "\x1b", "del\x7f")


# ============================================================== scenarios
class Ctx:
    """What the scenario being written has made so far, so that most names exist."""

    def __init__(self, ncpus: int):
        self.ncpus = ncpus
        self.tasks: list = []       # spawned, in order
        self.users: list = []       # those with an mm of their own
        self.mms: list = ["@init_mm"]
        self.noisy = True

    def cpus(self) -> tuple:
        return tuple(f"cpu{i}" for i in range(min(self.ncpus, 8)))

    def idles(self) -> tuple:
        return tuple(f"idle{i}" for i in range(min(self.ncpus, 8)))

    def new_mm(self, name: str) -> str:
        n, k = name, 2
        while n in self.mms:
            n, k = f"{name}.{k}", k + 1
        self.mms.append(n)
        return n


def _event(kind: str, cpu: str) -> str:
    """An interleave item; `rcu` stands in for `interrupt` on an odd CPU (no draw of its own, so
    the other draws stay as they were)."""
    return ("rcu " if kind == "interrupt " and cpu[-1:] in "13579" and cpu[-1:] else kind) + cpu


def odd(draw, ctx, k: int) -> bool:
    """About once in k draws, when the scenario is a noisy one: a name that
    does not exist, a word out of place."""
    return ctx.noisy and one_in(draw, k)


def one_in(draw, k: int) -> bool:
    """True about once in k draws.  The rare case is the top of the range:
    Hypothesis leans towards the bottom (its simplest), which stays the common case."""
    return draw(st.integers(1, k)) == k


def _odd_cpu(draw) -> str:
    return draw(st.sampled_from(["cpu9", "cpu01", "cpu1024", "cpu" + "0" * 20 + "1", "cpu" + HUGE, "cpu-1",
                                 "cpu", "CPU0", "cpu0x"]))


def cpu(draw, ctx) -> str:
    return _odd_cpu(draw) if odd(draw, ctx, 16) else draw(st.sampled_from(ctx.cpus()))


def _odd_task(draw) -> str:
    return draw(st.sampled_from(sorted(keywords()) + ["spawnB", "A" * 120, "caf\u00e9", "_", "A1_b", "cpu0x",
                                                       "Idle", "B" + "9" * 40, "nobody"]))


def task(draw, ctx) -> str:
    """A task that exists (mostly), an idle task, or a name that names nothing."""
    if odd(draw, ctx, 12):
        return _odd_task(draw)
    if odd(draw, ctx, 8):
        return draw(st.sampled_from(TASKS))
    if ctx.tasks and not one_in(draw, 5):
        return draw(st.sampled_from(ctx.tasks))
    return draw(st.sampled_from(ctx.idles()))


def new_task(draw, ctx) -> str:
    fresh = [t for t in TASKS if t not in ctx.tasks]
    if odd(draw, ctx, 10) or not fresh:
        return task(draw, ctx)
    return draw(st.sampled_from(fresh))


def mm(draw, ctx) -> str:
    if odd(draw, ctx, 10):
        return draw(st.sampled_from(["@X", "@A.2", "@A.1", "@init_mm.0", "@" + "M" * 80, "@A." + HUGE, "@",
                                     "@1", "@A.mm", "@kw"]))
    return draw(st.sampled_from(ctx.mms))


def number(draw) -> str:
    return draw(st.sampled_from(NUMBERS)) if one_in(draw, 4) else str(draw(st.integers(0, 5)))


def string(draw) -> str:
    return '"' + draw(st.sampled_from(HOSTILE if one_in(draw, 6) else STRINGS)) + '"'


def _words(*names):
    return lambda draw, ctx: draw(st.sampled_from(sum((W[n] for n in names), ())))


def _mm_or_none(draw, ctx):
    return "none" if one_in(draw, 4) else mm(draw, ctx)


def _cpuset(draw, ctx):
    return "{" + ", ".join(draw(st.lists(st.sampled_from(ctx.cpus()), max_size=3, unique=True))) + "}"


# the value each field compares with (docs/language.md, "Conditions"); now and
# then any value, which is an error of its own
_FIELDS = {
    "CPU_FIELD": {"curr": task, "active_mm": _mm_or_none, "loaded_mm": _mm_or_none,
                  "lazy": _words("BOOL"), "online": _words("BOOL")},
    "MM_FIELD": {"users": lambda d, c: number(d), "count": lambda d, c: number(d),
                 "state": lambda d, c: d(st.sampled_from(["live", "zombie", "freed"])), "cpumask": _cpuset},
    "TASK_FIELD": {"mm": _mm_or_none, "active_mm": _mm_or_none,
                   "state": lambda d, c: d(st.sampled_from(["running", "runnable", "dead"])),
                   "cpu": lambda d, c: "none" if one_in(d, 4) else cpu(d, c), "kind": _words("KIND_WORD")},
    "COST_FIELD": {w: (lambda d, c: number(d)) for w in W["COST_FIELD"]},
}
# and what each subject of `is` can be
_STATES = {"cpu": ("lazy", "online", "offline", "idle"), "mm": ("live", "zombie", "freed"),
           "task": ("running", "runnable", "dead")}


def any_value(draw, ctx) -> str:
    kind = draw(st.integers(0, 5))
    return [lambda: draw(st.sampled_from(W["NONE"] + W["BOOL"] + W["KIND_WORD"] + W["STATE_WORD"])),
            lambda: mm(draw, ctx), lambda: cpu(draw, ctx), lambda: task(draw, ctx), lambda: _cpuset(draw, ctx),
            lambda: number(draw)][kind]()


def comparison(draw, ctx) -> str:
    cls = draw(st.sampled_from(sorted(_FIELDS)))
    name = draw(st.sampled_from(W[cls]))
    owner = {"CPU_FIELD": cpu, "MM_FIELD": mm, "TASK_FIELD": task,
             "COST_FIELD": lambda d, c: "cost"}[cls](draw, ctx)
    if not odd(draw, ctx, 8) and name in _FIELDS[cls]:
        val = _FIELDS[cls][name](draw, ctx)
    else:
        val = any_value(draw, ctx)
    # ordering applies to numbers (and CPUs); equality to everything
    op = draw(st.sampled_from(CMPS)) if val[:1].isdigit() or odd(draw, ctx, 8) else \
        draw(st.sampled_from(["==", "!="]))
    return f"{owner}.{name} {op} {val}"


def cond(draw, ctx, depth: int = 0) -> str:
    kind = draw(st.integers(0, 9)) if depth < 3 else draw(st.integers(0, 5))
    if kind < 4:
        return comparison(draw, ctx)
    if kind < 6:
        what = draw(st.sampled_from(sorted(_STATES)))
        subject = {"cpu": cpu, "mm": mm, "task": task}[what](draw, ctx)
        state = draw(st.sampled_from(W["STATE_WORD"] if odd(draw, ctx, 8) else _STATES[what]))
        return f"{subject} is {'not ' if draw(st.booleans()) else ''}{state}"
    if kind == 6:
        return "not " + cond(draw, ctx, depth + 1)
    if kind == 7:
        return "(" + cond(draw, ctx, depth + 1) + ")"
    op = draw(st.sampled_from(["and", "or"]))
    return f"{cond(draw, ctx, depth + 1)} {op} {cond(draw, ctx, depth + 1)}"


def conds(draw, ctx) -> str:
    return ", ".join(cond(draw, ctx) for _ in range(draw(st.integers(1, 3))))


def _opt_cpu(draw, ctx, in_block: bool) -> str:
    # in a block the CPU is the block's own: naming one there is an error unless it is that one
    if in_block and not odd(draw, ctx, 5):
        return ""
    return cpu(draw, ctx) + " "


def _spawn(draw, ctx, in_block):
    form = draw(st.integers(0, 3))
    name = new_task(draw, ctx)
    if form == 1 and ctx.users:
        text = f"spawn thread {name} of {draw(st.sampled_from(ctx.users))}"
    elif form == 2:
        text = f"spawn kthread {name}"
    elif form == 3:
        text = f"spawn {name} mm {ctx.new_mm(draw(st.sampled_from(['@sh', '@M', '@X9'])))}"
        ctx.users.append(name)
    else:
        text = f"spawn {name}"
        ctx.new_mm(f"@{name}")
        ctx.users.append(name)
    if name not in ctx.tasks:
        ctx.tasks.append(name)
    return text


def _exec(draw, ctx, in_block):
    name = task(draw, ctx)
    if name not in ctx.users:
        ctx.users.append(name)
    if one_in(draw, 3):
        return f"exec {name} mm {ctx.new_mm('@ex')}"
    ctx.new_mm(f"@{name}")
    return f"exec {name}"


def _schedule(draw, ctx, in_block):
    target = "idle" if one_in(draw, 4) else task(draw, ctx)
    return f"schedule {_opt_cpu(draw, ctx, in_block)}{target}"


def _expect(draw, ctx, in_block):
    reason = f" {string(draw)}" if draw(st.booleans()) else ""
    then = statement(draw, ctx, in_block, tuple(w for w in STMT_WORDS if w != "expect"))
    return f"expect {draw(st.sampled_from(W['EXPECT_KIND']))}{reason}\n{then}"


def _mmref(word):
    return lambda draw, ctx, in_block: f"{word} {mm(draw, ctx)}"


# One writer per word that can begin a line (grammar.statement_words()); test_fuzz.py
# checks the keys against the grammar, so a new statement needs a writer here.
WRITERS: dict = {
    "scenario": lambda d, c, b: f"scenario {string(d)}",
    "arch": lambda d, c, b: "arch " + (d(st.sampled_from(["x68", "sparc", "linux-2.4", "generic.", "X86"]))
                                       if odd(d, c, 8) else d(st.sampled_from(ARCHES))),
    "cpus": lambda d, c, b: f"cpus {number(d) if odd(d, c, 3) else c.ncpus}",
    # the kernel history (docs/history.md): releases and commits of the table, now and then one that is not
    "kernel": lambda d, c, b: "kernel " + d(st.sampled_from(["v5.20", "5.8", "v9.1", "vX", "v2.2.0"]
                                                            if odd(d, c, 6) else RELEASES)),
    "revert": lambda d, c, b: f"revert {commit(d, c)}",
    "config": lambda d, c, b: "config " + ("PREEMPT" if odd(d, c, 6) else "PREEMPT_RT"),
    # kernel steps (docs/language.md "Kernel steps"): whole operations or the kernel's steps, an interleaving
    "granularity": lambda d, c, b: "granularity " + ("steps" if odd(d, c, 8) else d(st.sampled_from(["step",
                                                                                                    "operation"]))),
    "interleave": lambda d, c, b: "interleave " + " ".join(
        _from(_event(d(st.sampled_from(["", "ipi ", "interrupt "])), cpu(d, c))) for _ in range(d(st.integers(1, 4)))),
    "expect": _expect,
    "spawn": _spawn,
    "schedule": _schedule,
    "exit": lambda d, c, b: f"exit {task(d, c)}",
    "exec": _exec,
    "use_mm": lambda d, c, b: f"use_mm {task(d, c)} {mm(d, c)}",
    "unuse_mm": lambda d, c, b: f"unuse_mm {task(d, c)}",
    "unlazy": lambda d, c, b: f"unlazy {_opt_cpu(d, c, b)}".rstrip(),
    **{w: _mmref(w) for w in W["MMREF_OP"]},
    "mmget_not_zero": _mmref("mmget_not_zero"),
    "offline": lambda d, c, b: f"offline {_opt_cpu(d, c, b)}".rstrip(),
    "online": lambda d, c, b: f"online {cpu(d, c)}",
    "flush": lambda d, c, b: f"flush {mm(d, c)}" + (" tables" if d(st.booleans()) else ""),
    "membarrier": lambda d, c, b: ("membarrier register " if d(st.booleans()) else "membarrier ")
    + _opt_cpu(d, c, b),
    "tick": lambda d, c, b: f"tick {_opt_cpu(d, c, b)}".rstrip(),
    "task_work_run": lambda d, c, b: f"task_work_run {task(d, c)}",
    "perf_sample": lambda d, c, b: f"perf_sample {_opt_cpu(d, c, b)}".rstrip(),
    "rollover": lambda d, c, b: f"rollover {cpu(d, c)}",
    "assert": lambda d, c, b: f"assert {conds(d, c)}",
    "final": lambda d, c, b: f"final {d(st.sampled_from(W['QUANTIFIER']))} {conds(d, c)}",
}
HEADER_WORDS = ("scenario", "arch", "cpus")


def _from(item: str) -> str:
    """`ipi cpuN from cpu0` for an odd N, drawing nothing more (the other draws stay as they were)."""
    return item + " from cpu0" if item.startswith("ipi ") and item[-1] in "13579" else item
KERNEL_WORDS = ("kernel", "revert", "config", "granularity", "interleave")   # header lines too, written less often
RELEASES = ("v6.14", "v6.13", "v5.4", "v5.3", "v2.6.0", "v5.8.3", "v3.0", "v2.3.13")
# what a statement in the prologue or a block can be (headers and final have their own place)
STMT_WORDS = tuple(w for w in STATEMENT_WORDS if w not in HEADER_WORDS + KERNEL_WORDS + ("final",))


def commit(draw, ctx) -> str:
    """A commit of the history table, now and then one that is not (unknown, short, not hex)."""
    if odd(draw, ctx, 6):
        return draw(st.sampled_from(["38cf307c1f20", "139d025", "zz", "139d025cda1e"]))
    return draw(st.sampled_from(["21641bd9a7a7", "139d025cda1d", "139d025cda1da5484e"]))


def statement(draw, ctx, in_block=False, words=STMT_WORDS) -> str:
    if odd(draw, ctx, 40):
        return draw(st.sampled_from(KERNEL_SPELLINGS))
    # the kernel operations more often than the rest, so that runs get somewhere
    common = ("spawn", "schedule", "exit", "use_mm", "unuse_mm", "assert", "mmget_not_zero", "mmput")
    word = draw(st.sampled_from(common)) if draw(st.booleans()) else draw(st.sampled_from(words))
    return WRITERS[word](draw, ctx, in_block)


def _program(draw, ctx) -> list:
    """What a CPU does in a race: a task's life, a kernel thread adopting an mm,
    a fork there and its use elsewhere; names from the prologue or another block."""
    user = draw(st.sampled_from(ctx.users)) if ctx.users else task(draw, ctx)
    kth = draw(st.sampled_from([t for t in ctx.tasks if t not in ctx.users] or [task(draw, ctx)]))
    m = mm(draw, ctx)
    kind = draw(st.integers(0, 5))
    if kind == 0:
        prog = [f"schedule {user}", f"exit {user}", "schedule idle"]
    elif kind == 1:
        prog = [f"schedule {kth}", f"mmget_not_zero {m}", f"use_mm {kth} {m}", f"unuse_mm {kth}", f"mmput {m}",
                "unlazy"]
    elif kind == 2:                 # a task another block may name before it exists
        prog = [_spawn(draw, ctx, True), f"schedule {ctx.tasks[-1]}", f"exit {ctx.tasks[-1]}", "schedule idle"]
    elif kind == 3:
        prog = [f"schedule {user}", f"exec {user}", "schedule idle"]
        ctx.new_mm(f"@{user}")
    elif kind == 4:
        prog = [f"schedule {kth}", f"use_mm {kth} {m}", f"unuse_mm {kth}", "schedule idle"]
    else:
        prog = [statement(draw, ctx, True) for _ in range(draw(st.integers(1, 3)))]
    # an `expect` before a statement that can be refused here and not at the top level (or the reverse)
    if one_in(draw, 3):
        i = draw(st.integers(0, len(prog) - 1))
        prog.insert(i, "expect error" + draw(st.sampled_from(["", ' "not running"', ' "has exited"'])))
    return prog


def _block(draw, ctx, c: int, body: Optional[list] = None) -> list:
    if body is None:
        body = [statement(draw, ctx, True) for _ in range(draw(st.integers(0, 5)))]
    if not one_in(draw, 4):
        return [f"cpu{c} {{"] + ["    " + s.replace("\n", "\n    ") for s in body] + ["}"]
    return [f"cpu{c} {{ " + "; ".join(s.replace("\n", "; ") for s in body) + " }"]


@st.composite
def scenarios(draw) -> str:
    """A whole scenario as text: header, prologue, per-CPU blocks, final."""
    ncpus = draw(st.integers(1, 10)) if one_in(draw, 10) else draw(st.integers(1, 4))
    ctx = Ctx(ncpus)
    ctx.noisy = draw(st.booleans())             # names that do not exist, wrong words, ...: half the time
    lines = []
    header = [h for h in HEADER_WORDS if not one_in(draw, 3)]
    if "cpus" not in header:
        ctx.ncpus = 1
    if one_in(draw, 6):
        header = draw(st.permutations(header))      # out of order now and then
    for h in header:
        lines.append(WRITERS[h](draw, ctx, False))
    for h in KERNEL_WORDS:
        if one_in(draw, 5):
            lines.append(WRITERS[h](draw, ctx, False))
    for _ in range(draw(st.integers(1, 2)) if one_in(draw, 4) else 0):
        without = f" without {commit(draw, ctx)}" if one_in(draw, 2) else ""
        lines.append(f"expect {draw(st.sampled_from(W['OUTCOME_WORD']))}{without}")
    shape = draw(st.integers(0, 9))             # 0, 1: no blocks; 2, 3: races; 4: symmetry; 5 to 9: blocks
    # spawn a few tasks first, so that the statements after have something to act on
    for _ in range(draw(st.integers(0, 4))):
        lines.append(_spawn(draw, ctx, False))
    if shape >= 2:
        # before blocks, a prologue that mostly runs: a refusal there leaves nothing to explore
        for c, t in enumerate(draw(st.permutations(ctx.tasks))[:draw(st.integers(0, ctx.ncpus))]):
            lines.append(f"schedule cpu{c} {t}")
    for _ in range(draw(st.integers(0, 8 if shape < 2 else 2))):
        lines.append(statement(draw, ctx))
    if shape >= 5:                              # a few blocks, each its own program
        cpus = draw(st.lists(st.integers(0, ctx.ncpus if odd(draw, ctx, 6) else ctx.ncpus - 1),
                             min_size=1, max_size=3, unique=True))
        for c in cpus:
            lines += _block(draw, ctx, c)
    elif shape in (2, 3) and ctx.ncpus >= 2:   # kernel-like programs racing each other
        cpus = draw(st.lists(st.integers(0, ctx.ncpus - 1), min_size=2, max_size=3, unique=True))
        for c in cpus:
            lines += _block(draw, ctx, c, _program(draw, ctx))
    elif shape == 4:                            # the same program on many CPUs (symmetry)
        n = draw(st.integers(2, 9))
        if ctx.ncpus < n:
            lines = [f"cpus {n}"] + [l for l in lines if not l.startswith("cpus ")]
            ctx.ncpus = n
        body = [statement(draw, ctx, True) for _ in range(draw(st.integers(1, 3)))]
        for c in range(n):
            lines += _block(draw, ctx, c, body)
    if one_in(draw, 3):
        lines.append(WRITERS["final"](draw, ctx, False))
    if one_in(draw, 6):                          # statement after statement on one line
        sep = draw(st.sampled_from(["; ", ";", " ;; "]))
        text = sep.join(lines)
    else:
        text = "\n".join(lines)
    if one_in(draw, 8):
        text = text.replace("\n", draw(st.sampled_from(["\r\n", "\n\n", "  # a comment\n", "\t\n"])))
    return text + ("" if one_in(draw, 6) else "\n")


# ============================================================== byte mutations
def corpus() -> list:
    """The examples and the bad inputs, as bytes: what the mutations start from."""
    paths = sorted((ROOT / "examples").rglob("*.mmscn")) + sorted((ROOT / "tests" / "bad_inputs").glob("*.mmscn"))
    return [p.read_bytes() for p in paths]


_INSERTS = (b"\x00", b"\x1b", b"\x1b[31m", b"\x1b]0;title\x07", b"\x07", b"\x08", b"\x0c", b"\x0c\x00", b"\x7f",
            b"\r", b"\r\n", b"\n", b";", b"{", b"}", b"(", b")", b",", b"\"", b"#", b"@", b".", b"\t", b" ",
            b"\xc2\x9b", b"\xe2\x80\xae", b"\xef\xbb\xbf", b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xf4\x90\x80\x80",
            HUGE.encode(), b"9" * 40, b"(" * 300, b")" * 300, b"not " * 300, b"cpu" + HUGE.encode())


def _mutate_once(draw, data: bytes) -> bytes:
    n = len(data)
    at = draw(st.integers(0, n))
    op = draw(st.integers(0, 9))
    if op == 0 and n:                            # flip bits of one byte
        i = min(at, n - 1)
        return data[:i] + bytes([data[i] ^ draw(st.sampled_from([1, 2, 4, 8, 16, 32, 64, 128, 255]))]) + data[i + 1:]
    if op == 1 and n:                            # delete a run
        return data[:at] + data[at + draw(st.integers(1, 16)):]
    if op == 2:                                  # insert a nasty byte sequence
        return data[:at] + draw(st.sampled_from(_INSERTS)) + data[at:]
    if op == 3:                                  # a random byte
        return data[:at] + bytes([draw(st.integers(0, 255))]) + data[at:]
    if op == 4:                                  # a grammar word at a random place
        word = draw(st.sampled_from(sorted(keywords()) + list(CMPS) + list(TASKS) + ["@A", "cpu1", "idle"]))
        return data[:at] + b" " + word.encode() + b" " + data[at:]
    if op == 5 and n:                            # duplicate a line
        lines = data.split(b"\n")
        i = draw(st.integers(0, len(lines) - 1))
        return b"\n".join(lines[:i + 1] + [lines[i]] + lines[i + 1:])
    if op == 6:                                  # truncate
        return data[:at]
    if op == 7:                                  # a number grows huge
        m = list(re.finditer(rb"\d+", data))
        if m:
            x = draw(st.sampled_from(m))
            return data[:x.start()] + draw(st.sampled_from([HUGE.encode(), b"9" * 30, str(2**64).encode()])) + \
                data[x.end():]
    if op == 8:                                  # wrap a condition in deep parentheses
        m = list(re.finditer(rb"(?m)^(\s*(?:assert|final \w+) )(.*)$", data))
        if m:
            x = draw(st.sampled_from(m))
            k = draw(st.sampled_from([50, 250, 5000]))
            return data[:x.start(2)] + b"(" * k + x.group(2) + b")" * k + data[x.end(2):]
    # a line of another kind of statement
    return data[:at] + b"\n" + draw(st.sampled_from(KERNEL_SPELLINGS)).encode() + b"\n" + data[at:]


def _encode(draw, data: bytes) -> bytes:
    how = draw(st.integers(0, 19))           # 0 to 14: as it is
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return data
    if how == 15:
        return text.encode("utf-16")             # with a BOM
    if how == 16:
        return text.encode(draw(st.sampled_from(["utf-16-le", "utf-16-be"])))   # without one
    if how == 17:
        return b"\xef\xbb\xbf" + data
    if how == 18:
        return text.encode("latin-1", "replace")
    if how == 19:
        return data.replace(b"\n", b"\r")        # classic Mac line ends
    return data


@st.composite
def mutated(draw, base: st.SearchStrategy) -> bytes:
    data = draw(base)
    for _ in range(draw(st.integers(1, 4))):
        data = _mutate_once(draw, data)
    return _encode(draw, data)


# Names of the files an input is written as: mostly plain, sometimes what a
# careless or hostile user names a file (issue 12 items 3 and 5).
ODD_NAMES = ("", " with space", "-caf\u00e9", "\x1b[31m", "\x1b]0;x\x07", "\nnewline", "'quote", "\"dq", "\\bs")


@st.composite
def inputs(draw) -> tuple:
    """(bytes, odd part of its file name): a generated scenario, a mutated
    example or bad input, or a mutated generated scenario."""
    kind = draw(st.integers(0, 9))
    gen = scenarios().map(lambda s: s.encode("utf-8"))
    if kind < 5:
        data = draw(gen)
        if one_in(draw, 6):
            data = _encode(draw, data)
    elif kind < 8:
        data = draw(mutated(st.sampled_from(CORPUS)))
    else:
        data = draw(mutated(gen))
    odd = draw(st.sampled_from(ODD_NAMES[1:])) if one_in(draw, 12) else ""
    return data, odd


CORPUS = corpus()


def draw_inputs(n: int, seed: Optional[int] = None, strategy=None) -> list:
    """n inputs from the strategy: the same ones every time when seed is None
    (derandomized, no example database), else those of that seed."""
    out, seen = [], set()
    strategy = strategy if strategy is not None else inputs()

    # Hypothesis draws some inputs twice: ask for more, keep the first n distinct ones
    @settings(max_examples=n + n // 2 + 1, derandomize=seed is None, database=None, deadline=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def collect(x):
        if x not in seen:
            seen.add(x)
            out.append(x)

    if seed is not None:
        collect = hseed(seed)(collect)
    collect()
    return out[:n]


# ============================================================== running the CLI
@dataclasses.dataclass
class Run:
    args: list
    status: Optional[int]          # None: killed by the time limit
    out: bytes
    err: bytes
    seconds: float = 0.0


def _limit_memory():
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))


def cli(args: list, cwd: Path, hash_seed: str = HASH_SEEDS[0], timeout: float = BATCH_TIMEOUT) -> Run:
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "MMSCN_DEBUG", "PYTHONHASHSEED")}
    env.update(PYTHONHASHSEED=hash_seed, TERM="xterm-256color")
    t0 = time.perf_counter()
    try:
        p = subprocess.run(mmscn_cmd() + args, cwd=cwd, capture_output=True, env=env, timeout=timeout,
                           preexec_fn=_limit_memory, stdin=subprocess.DEVNULL)
        return Run(args, p.returncode, p.stdout, p.stderr, time.perf_counter() - t0)
    except subprocess.TimeoutExpired as e:
        return Run(args, None, e.stdout or b"", e.stderr or b"", time.perf_counter() - t0)


# ============================================================== the properties
@dataclasses.dataclass
class Finding:
    kind: str                      # one of CLASSES
    name: str                      # the file (as written in the batch folder)
    data: bytes                    # its content
    command: list                  # mmscn's arguments
    detail: str

    def signature(self) -> str:
        """What tells findings apart: the class, the command, and the gist of the
        detail (the problem and the message it is about, without names and numbers)."""
        d = self.detail
        if self.kind == "control":
            d = d.split(":")[0]                      # which byte on which stream
        elif self.kind == "unlocated":
            problem = re.split(r"[:'\d]", d, maxsplit=1)[0]
            msg = re.search(r"(?:error|violation|failure): (.*)", d)
            d = problem + "| " + (msg.group(1) if msg else d)
        d = re.sub(r"`[^`]*`|'[^']*'|\"[^\"]*\"", "X", d)
        d = re.sub(r"\b[fw]\d{3}\S*", "FILE", d)
        d = re.sub(r"\d+", "N", d)
        return f"{self.kind}: {self.command[0]}: {d[:120]}"

    def report(self, limit: int = 1500) -> str:
        shown = self.data if len(self.data) <= limit else self.data[:limit] + b"..."
        return (f"[{self.kind}] mmscn {' '.join(self.command)}\n  {self.detail}\n"
                f"  file {self.name!r} ({len(self.data)} bytes): {shown!r}")


HEAD = re.compile(r"^(?P<file>.*?):(?P<line>\d+):(?P<col>\d+): (?P<sev>error|violation|failure): (?P<msg>.*)$")
SHOWN = re.compile(r"^ *(?P<line>\d+) \| (?P<text>.*)$")
CARET = re.compile(r"^ *\| (?P<pad> *)\^$")
# a message that names a file but not where in it
BARE = re.compile(r"^(?P<file>[^\s:]*?[fw]\d{3}[^:]*?)(?::(?P<line>\d+))?(?::(?P<col>\d+))?: "
                  r"(?P<sev>error|violation|failure): ")
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# stderr lines of mmscn itself that are no located error and need none
PLAIN_NOTES = ("mmscn: no failing interleaving, so no witness written to ",)


def source_lines(data: bytes) -> Optional[list]:
    """The lines of a file as mmscn reads them (dsl/parser.py decode_source), or
    None when it is not text: the lines an error message must show."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            data = data.decode("utf-16").encode("utf-8")
        except UnicodeDecodeError:
            return None
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    text = data.decode("utf-8", "replace")
    if "\r" in text and "\n" not in text:
        text = text.replace("\r", "\n")
    return text.split("\n")


def _file_index(name: str) -> Optional[str]:
    m = re.search(r"[fw]\d{3}", name)
    return m.group(0) if m else None


def located_problems(text: str, sources: dict) -> list:
    """(detail, file index or None) for each error line of ``text`` not in the
    form FILE:LINE:COL: with the source line and a caret under the column;
    ``sources`` maps the file index (f000, w000) to its lines (None: not
    text, so not compared)."""
    probs = []
    lines = text.split("\n")
    for i, line in enumerate(lines):
        m = HEAD.match(line)
        if not m:
            b = BARE.match(line)
            if b:
                probs.append((f"an error without line and column: {line[:200]!r}", _file_index(line)))
            elif line.startswith("mmscn: ") and not line.startswith(PLAIN_NOTES) and "internal error" not in line:
                probs.append((f"an error without a location: {line[:200]!r}", None))
            continue
        where = _file_index(m.group("file"))
        ln, col = int(m.group("line")), int(m.group("col"))
        if ln < 1 or col < 1:
            probs.append((f"location {ln}:{col} is no place in the file: {line[:200]!r}", where))
            continue
        shown = SHOWN.match(lines[i + 1]) if i + 1 < len(lines) else None
        caret = CARET.match(lines[i + 2]) if i + 2 < len(lines) else None
        if not shown or not caret:
            probs.append((f"no source line and caret under: {line[:200]!r}", where))
            continue
        if int(shown.group("line")) != ln:
            probs.append((f"line {shown.group('line')} shown for {ln}: {line[:200]!r}", where))
            continue
        src = sources.get(where or "")
        if src is None:
            continue
        if ln > len(src):
            probs.append((f"line {ln} is past the end of the file ({len(src)} lines): {line[:200]!r}", where))
            continue
        real = src[ln - 1].rstrip("\r")
        got, at = shown.group("text"), len(caret.group("pad"))
        if len(real) <= 100:
            want = printable(real).replace("\t", " ")
            if got != want:
                probs.append((f"line {ln} shown as {got[:80]!r}, it is {want[:80]!r}: {line[:200]!r}", where))
            elif at != min(col - 1, len(real)) or col - 1 > len(real):
                probs.append((f"caret at column {at + 1}, the message says {col}: {line[:200]!r}", where))
        elif col - 1 < len(real):
            want = printable(real[col - 1]).replace("\t", " ")
            if at >= len(got) or got[at] != want:
                probs.append((f"caret under {got[at:at + 1]!r}, column {col} is {want!r}: {line[:200]!r}", where))
    return probs


def output_problems(cmd: str, run: Run, sources: dict) -> list:
    """(class, detail, file index or None) for each property the run breaks,
    judged from its output alone; the file index when the output says which
    file of a batch the problem is in."""
    out = []
    if run.status is None:
        return [("timeout", f"no answer in {run.seconds:.0f} s", None)]
    both = run.out + run.err
    if run.status == 70 or b"internal error" in both or (run.status < 0 and run.status != -13):
        m = re.search(rb"internal error[^\n]*|MemoryError[^\n]*", both)
        out.append(("exit70", f"exit {run.status}: " + (m.group(0).decode("utf-8", "replace")[:300] if m else ""),
                    None))
    if b"Traceback" in both:
        last = [l for l in both.decode("utf-8", "replace").split("\n") if l.strip()][-1:]
        out.append(("traceback", "Traceback ... " + "".join(last)[:300], None))
    if run.status not in STATUSES[cmd] and run.status != 70:
        out.append(("status", f"exit {run.status}, documented {sorted(STATUSES[cmd])}", None))
    for stream, data in (("stdout", run.out), ("stderr", run.err)):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as e:
            out.append(("control", f"{stream} is not UTF-8 (byte 0x{data[e.start]:02x})", None))
            text = data.decode("utf-8", "replace")
        placed = set()
        for c in CONTROL.finditer(text):
            start = text.rfind("\n", 0, c.start()) + 1
            # a line that begins with a file's name is about that file
            m = re.match(r"[fw]\d{3}", text[start:start + 4])
            where = m.group(0) if m else None
            if where in placed:
                continue
            placed.add(where)
            ctx = text[max(start, c.start() - 40):c.start() + 20]
            out.append(("control", f"raw {c.group(0)!r} on {stream}: {ctx!r}", where))
        if "--json" in run.args and stream == "stdout":
            if data.strip() or run.status in (0, 1, 3):
                try:
                    doc = json.loads(text)
                except ValueError as e:
                    out.append(("json", f"stdout is not JSON: {e}", None))
                else:
                    out += [("unlocated", p, None) for p in _json_locations(doc)]
            continue
        out += [("unlocated", p, where) for p, where in located_problems(text, sources)]
    return out


def _json_locations(doc) -> list:
    probs = []
    docs = doc if isinstance(doc, list) else [doc]
    for d in docs:
        if not isinstance(d, dict):
            continue
        items = list(d.get("failures") or [])
        if isinstance(d.get("failure"), dict):
            items.append(d["failure"])
        for f in items:
            if f.get("kind") in ("final", "deadlock", "prologue"):
                continue
            if not (isinstance(f.get("line"), int) and f["line"] >= 1 and isinstance(f.get("column"), int)
                    and f["column"] >= 1):
                probs.append(f"a JSON failure without a place: {json.dumps(f)[:200]}")
    return probs


_TIMES = [(re.compile(rb"\d+\.\d+ s\b"), b"T s"), (re.compile(rb"[\d,]+ states/s"), b"R states/s"),
          (re.compile(rb'"(seconds|states_per_second)": [\d.e+-]+'), rb'"\1": T')]


def untimed(data: bytes) -> bytes:
    """Output with the timings (which differ from run to run) taken out."""
    for rx, rep in _TIMES:
        data = rx.sub(rep, data)
    return data


# ============================================================== checking a batch
class Batch:
    """Inputs written into a folder as f000.mmscn, f001 ..., and the command runs on them."""

    def __init__(self, items: list, folder: Path):
        self.folder = folder
        self.items = items
        self.names = []
        for i, (data, odd) in enumerate(items):
            name = f"f{i:03d}{odd}.mmscn"
            try:
                (folder / name).write_bytes(data)
            except OSError:      # a name this file system refuses
                name = f"f{i:03d}.mmscn"
                (folder / name).write_bytes(data)
            self.names.append(name)
        self.sources = {f"f{i:03d}": source_lines(d) for i, (d, _) in enumerate(items)}
        self.runs = collections.Counter()       # command -> processes run
        self.findings: list = []
        self._seen: set = set()

    def run(self, args, seed=HASH_SEEDS[0], timeout=BATCH_TIMEOUT, label=None) -> Run:
        self.runs[label or " ".join(a for a in args[:2] if a in COMMANDS or a == "--json")] += 1
        return cli(args, self.folder, seed, timeout)

    def add(self, kind, i, args, detail):
        f = Finding(kind, self.names[i], self.items[i][0], args, detail)
        key = (f.kind, f.name, f.command[0], f.detail)
        if key not in self._seen:            # a batch and its halves report the same problem
            self._seen.add(key)
            self.findings.append(f)

    # ---- commands that take many files: run the batch, split it when it shows a problem
    def many(self, args: list, idx: list, seeds=HASH_SEEDS, seen: Optional[list] = None) -> list:
        """Run `mmscn ARGS FILES...` on the files idx and trace every problem to one file:
        at once when the output names it, else by running each half of the batch.
        Returns every run made (a crash stops a process early: its halves say the rest)."""
        seen = [] if seen is None else seen
        runs = [self.run(args + [self.names[i] for i in idx], s) for s in seeds]
        seen += runs
        index = {f"f{i:03d}": i for i in idx}
        unplaced = []
        for kind, detail, where in self._problems(args[0], runs):
            if where in index:
                self.add(kind, index[where], args + [self.names[index[where]]], detail)
            else:
                unplaced.append((kind, detail))
        if unplaced and len(idx) > 1:
            half = len(idx) // 2
            before = len(self.findings)
            # the halves need the second hash seed only to find a hash-seed difference
            again = seeds if any(k == "hashseed" for k, _ in unplaced) else seeds[:1]
            self.many(args, idx[:half], again, seen)
            self.many(args, idx[half:], again, seen)
            if len(self.findings) == before:     # only the files together show it
                for kind, detail in unplaced:
                    self.add(kind, idx[0], args + ["..."], f"{detail} (files {idx[0]}-{idx[-1]} together)")
        else:
            for kind, detail in unplaced:
                self.add(kind, idx[0], args + [self.names[idx[0]]], detail)
        return seen

    def _problems(self, cmd, runs) -> list:
        probs = output_problems(cmd, runs[0], self.sources)
        if len(runs) > 1 and runs[0].status is not None and runs[1].status is not None:
            a, b = runs[0], runs[1]
            if (a.status, untimed(a.out), untimed(a.err)) != (b.status, untimed(b.out), untimed(b.err)):
                probs.append(("hashseed", _first_difference(a, b), None))
        return _dedup(probs)

    # ---- commands that take one file
    def one(self, args: list, i: int, seeds=HASH_SEEDS, timeout=FILE_TIMEOUT) -> list:
        full = args + [self.names[i]]
        runs = []
        for s in seeds:
            runs.append(self.run(full, s, timeout))
            if runs[-1].status is None:          # a hang once is enough
                break
        for kind, detail, _ in self._problems(args[0], runs):
            self.add(kind, i, full, detail)
        return runs


def _dedup(probs):
    seen, out = set(), []
    for p in probs:
        if p not in seen:
            seen.add(p)
            out.append(p)
    return out


def _first_difference(a: Run, b: Run) -> str:
    if a.status != b.status:
        return f"exit {a.status} under PYTHONHASHSEED={HASH_SEEDS[0]}, {b.status} under {HASH_SEEDS[1]}"
    for stream, x, y in (("stdout", untimed(a.out), untimed(b.out)), ("stderr", untimed(a.err), untimed(b.err))):
        if x != y:
            xl, yl = x.split(b"\n"), y.split(b"\n")
            n = next((k for k, (p, q) in enumerate(zip(xl, yl)) if p != q), min(len(xl), len(yl)))
            return (f"{stream} line {n + 1} differs: {xl[n][:120] if n < len(xl) else b''!r} vs "
                    f"{yl[n][:120] if n < len(yl) else b''!r}")
    return "differs"


EXPLORE_FLAGS = (["--max-states", "300"], ["--max-states", "60", "--all-finals"], ["--max-states", "300", "--no-por"],
                 ["--random", "25", "--seed", "7"], ["--max-states", "300", "--no-symmetry"])
OK_LINE = re.compile(r"^(?P<file>.*?): ok \(")


def check_batch(items: list, folder: Optional[Path] = None, compare_every: int = 3, only=COMMANDS) -> tuple:
    """Run the commands (all, or those in ``only``) on the inputs, a list of
    (bytes, odd part of the file name); returns (findings, a Counter of the
    processes run per command)."""
    if folder is None:
        with tempfile.TemporaryDirectory(prefix="mmscn-fuzz-") as tmp:
            return check_batch(items, Path(tmp), compare_every, only)
    b = Batch(items, folder)
    loaded = list(range(len(items)))
    if "check" in only:
        ok = {_file_index(m.group("file")) for r in b.many(["check"], loaded)
              for m in map(OK_LINE.match, r.out.decode("utf-8", "replace").split("\n")) if m}
        loaded = [i for i in loaded if f"f{i:03d}" in ok]
    # a file that does not load, `run` reports exactly as `check` does (tests/test_errors.py checks that)
    if loaded and "run" in only:
        b.many(["run"], loaded)
        b.many(["run", "--json"], loaded)
    if "explore" in only:
        blocks = [i for i in loaded if b"{" in items[i][0]]
        for n, i in enumerate(blocks):
            explore_one(b, i, EXPLORE_FLAGS[i % len(EXPLORE_FLAGS)], text_too=n % 3 == 0)
    if "compare" in only and compare_every:
        for n, i in enumerate(loaded[::compare_every]):
            b.one(["compare"] + (["--json"] if n % 2 else []), i)
    return b.findings, b.runs


def explore_one(b: Batch, i: int, flags: list, text_too: bool) -> None:
    """explore --json under both hash seeds (the reports and the witnesses they
    write must agree), the witness replayed, and now and then the text report."""
    w = b.folder / f"w{i:03d}.mmscn"
    args = ["explore", "--json", "--witness", w.name] + flags
    runs, witnesses = [], []
    for seed in HASH_SEEDS:
        w.unlink(missing_ok=True)
        runs.append(b.run(args + [b.names[i]], seed, FILE_TIMEOUT))
        witnesses.append(w.read_bytes() if w.exists() else None)
        if runs[-1].status is None:
            break
    for kind, detail, _ in b._problems("explore", runs):
        b.add(kind, i, args + [b.names[i]], detail)
    if len(witnesses) == 2 and witnesses[0] != witnesses[1]:
        b.add("hashseed", i, args + [b.names[i]], "the witness differs between the two hash seeds")
    if runs[0].status in (0, 1, 3):
        try:
            doc = json.loads(runs[0].out)
        except ValueError:
            return                               # a json finding already
        replay_witness(b, i, doc, w)
    if text_too:
        b.one(["explore", "--witness", f"w{i:03d}t.mmscn"] + flags, i, seeds=HASH_SEEDS[:1])


def replay_witness(b: Batch, i: int, doc: dict, wpath: Path) -> None:
    f = doc.get("failure")
    args = ["explore", "--json", "--witness", wpath.name] + ["(replayed with mmscn run --json)"]
    if f is None or doc.get("mode") == "prologue":
        if wpath.exists():
            b.add("witness", i, args, "a witness was written without a failing interleaving")
        return
    if not wpath.exists():
        b.add("witness", i, args, f"explore found a failure ({f['kind']}) but wrote no witness")
        return
    w = wpath.read_bytes()
    b.sources[wpath.stem[:4]] = source_lines(w)
    r = b.run(["run", "--json", wpath.name], timeout=FILE_TIMEOUT, label="run --json (a witness)")
    for kind, detail, _ in output_problems("run", r, b.sources):
        b.add(kind, i, args, f"the witness run: {detail}")
    if r.status != 0:
        err = r.err.decode("utf-8", "replace").strip().split("\n")[0][:200]
        b.add("witness", i, args, f"`mmscn run` on the witness exits {r.status}, not 0 (a failure its "
                                  f"`expect fail` expects): {err}")
        return
    try:
        run = json.loads(r.out)
    except ValueError:
        return
    fails = run.get("failures") or []
    if not run.get("failed") or not fails:
        b.add("witness", i, args, f"the witness run does not fail; explore said {f['kind']}: {f['message'][:150]}")
        return
    special = f["kind"] == "refusal" and "has exited; nothing else runs" in f["message"]
    # explore joins the violations of one step with "; ", a run lists each one; a
    # message may name a line, which is another line in the witness
    said, got = (re.sub(r"\bline \d+", "line N", m) for m in (f["message"], fails[0]["message"]))
    same = got == said or said.startswith(got + "; ")
    if f["kind"] in ("violation", "refusal", "assertion", "expectation") and not special and not same:
        b.add("witness", i, args, f"the witness fails with {fails[0]['message'][:150]!r}; explore said "
                                  f"{f['kind']}: {f['message'][:150]!r}")


# ============================================================== minimizing
def still_fails(finding: Finding) -> Callable[[bytes], bool]:
    """A predicate: does this content, under the same file name, still show
    the same finding (its signature), checked afresh with the same command?"""
    odd = finding.name[4:-len(".mmscn")]
    want = finding.signature()

    def pred(data: bytes) -> bool:
        found, _ = check_batch([(data, odd)], compare_every=1, only=(finding.command[0],))
        return any(f.signature() == want for f in found)
    return pred


def minimize(data: bytes, pred: Callable[[bytes], bool], budget: float = 60.0) -> bytes:
    """A smaller input for which pred still holds: drop lines, then tokens, then bytes
    (delta debugging), until nothing more can go or the budget (seconds) is spent."""
    end = time.monotonic() + budget
    if not pred(data):
        return data                # it does not show again on its own: nothing to shrink

    def chunks(d: bytes, unit: str) -> list:
        if unit == "line":
            return d.split(b"\n")
        if unit == "token":
            return re.split(rb"(?<=[ ;\n])", d)
        return [d[k:k + 1] for k in range(len(d))]

    for unit, join in (("line", b"\n"), ("token", b""), ("byte", b"")):
        if unit == "byte" and len(data) > 2000:
            break                  # one byte at a time would take too many runs
        parts = chunks(data, unit)
        n = 2
        while len(parts) >= 1 and time.monotonic() < end:
            size = max(1, len(parts) // n)
            reduced = False
            for start in range(0, len(parts), size):
                cand = parts[:start] + parts[start + size:]
                if time.monotonic() >= end:
                    break
                if pred(join.join(cand)):
                    parts = cand
                    n = max(n - 1, 2)
                    reduced = True
                    break
            if not reduced:
                if size == 1:
                    break
                n = min(len(parts), n * 2)
        data = join.join(parts)
    return data


# ============================================================== a whole run
@dataclasses.dataclass
class Tally:
    inputs: int = 0
    batches: int = 0
    seed: Optional[int] = None
    runs: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    seconds: float = 0.0
    findings: list = dataclasses.field(default_factory=list)

    def counts(self) -> dict:
        c = {k: 0 for k in CLASSES}
        for f in self.findings:
            c[f.kind] += 1
        return c

    def distinct(self) -> dict:
        """signature -> the first finding with it."""
        out = {}
        for f in self.findings:
            out.setdefault(f.signature(), f)
        return out


def fuzz(*, examples: Optional[int] = None, seconds: Optional[float] = None, seed: Optional[int] = None,
         batch: int = 24, jobs: int = 1, on_batch: Optional[Callable] = None) -> Tally:
    """Check inputs batch after batch until `examples` are checked or `seconds`
    have passed, `jobs` batches at a time.  seed None with a number of
    examples: the derandomized inputs, the same on every run (what the suite
    uses); else batch k is drawn from seed + k.  on_batch(tally, seconds) after each batch."""
    t = Tally()
    t0 = time.monotonic()
    if seed is None and examples is not None:
        pool = draw_inputs(examples)
        batches = iter([pool[k:k + batch] for k in range(0, len(pool), batch)])
    else:
        t.seed = seed if seed is not None else int.from_bytes(os.urandom(3), "little")
        batches = (draw_inputs(batch, seed=t.seed + k) for k in itertools.count())
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
        pending = set()
        while True:
            while len(pending) < jobs and (seconds is None or time.monotonic() - t0 < seconds):
                # inputs are drawn here, in one thread (Hypothesis is not thread-safe); the threads run the CLI
                items = next(batches, [])
                if examples is not None:
                    items = items[:examples - t.inputs - sum(len(p.items) for p in pending)]
                if not items:
                    break
                fut = pool.submit(check_batch, items)
                fut.items = items
                pending.add(fut)
            if not pending:
                break
            done, pending = concurrent.futures.wait(pending, return_when=concurrent.futures.FIRST_COMPLETED)
            for fut in done:
                found, runs = fut.result()
                t.inputs += len(fut.items)
                t.batches += 1
                t.runs += runs
                t.findings += found
            if on_batch:
                on_batch(t, time.monotonic() - t0)
    t.seconds = time.monotonic() - t0
    return t


# ============================================================== known bugs
# Findings of bugs that issue 12 names and other branches are fixing: the
# suite marks them xfail (tests/test_fuzz.py) and benchmarks/fuzz.py labels
# them.  Delete an entry once its fix is merged, so the property is strict again.
# Findings that are known bugs, each naming where it is tracked, so that the suite's
# run stays strict on everything else.  Empty: the issue 12 fixes are merged.
KNOWN: dict = {}


def known(f: Finding) -> Optional[str]:
    """The issue 12 item a finding is a known case of, or None."""
    return next((item for item, match in KNOWN.items() if match(f)), None)
