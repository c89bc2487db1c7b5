"""From parsed items to the resolved program: header rules, names, types, checked once.

The program is an A.Scenario: the header (title, arch, CPUs, outcome, folded
from the A.Header lines), the statements before the blocks, the per-CPU blocks
and `final`.  What resolution guarantees, so that no later stage checks again:

* every CPU exists and is spelt one way (`cpu1`, not `cpu01`), so its number is
  read off its name as is (Ref.number; dsl/names.py is the one place);
* every task and mm name is one the file makes or the caller says exists; names
  stay names, because the kernel numbers a task or mm when the statement that
  makes it runs, and inside blocks that order is the interleaving's;
* every field is compared with a value of its type (dsl/fields.py), and one the
  architecture does not model is an error when the caller says which it models.

Names are resolved in program order, the way the interpreter will meet them:
a task exists from its `spawn` on, an mm from the `spawn`/`exec` that makes
it.  Statements inside `cpuN { }` blocks may run in any order, so a name made
in one block counts as known in all of them (the interpreter still refuses a
use that comes too early in a given interleaving).
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Callable, Optional

from mmscn.grammar import keywords

from . import ast as A
from .diagnostics import Diagnostic, close_match, did_you_mean, plural, short as _short, source_lines
from .fields import HARDWARE_FIELDS, IS_WORDS, VALUE_KINDS, WORDS, expected_value, field_type
from .fields import FIELD_TYPES, TYPE_WORDS  # noqa: F401 - the REPL's completion imports them from here
from .names import (INIT_MM_NAME, MAX_CPUS, MAX_INT, bounded_int, cpu_number, cpu_spelling, fresh_mm_name,
                    idle_name, is_cpu_name)
from .parser import MAX_NESTING, ParseFailed, decode_source, parse_items


@dataclass(frozen=True)
class Arches:
    """The architectures the caller knows.  dsl/ imports nothing of interpreter/, so
    the front end hands them in (interpreter/arches.py makes this from the policies).

    ``names``: a container of the known names, iterated in the order a message lists
    them; ``hardware``: an arch's hardware fields (its policy's ``hardware_fields``),
    None to leave fields unchecked; ``check``: an unknown `arch` is an error (the
    suite skips such a file instead, so it passes False).
    """
    names: object
    hardware: Optional[Callable] = None
    check: bool = True
    kernels: Optional["Kernels"] = None     # the kernel history, to check `kernel`, `revert`, `config`


@dataclass(frozen=True)
class Kernels:
    """The kernel history as the caller knows it (interpreter/arches.py makes it from
    interpreter/version.py): what `kernel`, `revert`, `config` and `expect ... without`
    may name.  Releases are compared by the caller's functions, never here.

    ``changes``: every modelled change, each with .key, .commit, .title, .release and
    .arches (the architectures whose code it changes; () = every one);
    ``configs``: the kernel options a `config` line may set;
    ``release(text)``: None when ``text`` is a modelled release, else why not;
    ``lands(key, release)``: the change is in that release (None: the newest);
    ``fixed(arch)``: the release an architecture stands for (linux-2.3: v2.3.13), or None.
    """
    changes: tuple
    configs: tuple
    release: Callable
    lands: Callable
    fixed: Callable = lambda arch: None
    #: ``arch_release(arch, release)``: None when the architecture exists in that release, else why not
    arch_release: Callable = lambda arch, release: None
    #: ``newest(arch)``: the release an architecture runs when the file names none and it ends before
    #: the newest modelled (ia64: v6.6), or None
    newest: Callable = lambda arch: None


_HEX = re.compile(r"[0-9a-f]+")
COMMIT_DIGITS = 12      # a commit is named by at least this many hex digits (git log --abbrev=12)


def find_change(text: str, kernels: Optional[Kernels]) -> tuple:
    """(key, None) of the modelled change a commit id names, or (None, why not) in the
    kernel's words, with the close matches and their titles.  Without ``kernels`` the
    id is only checked for its form and its first 12 digits are the key."""
    t = text.lower()
    if not _HEX.fullmatch(t):
        return None, (f"`{_short(text)}` is not a commit id: a commit is named by {COMMIT_DIGITS} or more hex "
                      f"digits, like 38cf307c1f20")
    if len(t) < COMMIT_DIGITS:
        return None, (f"`{_short(text)}` is too short for a commit id: write at least {COMMIT_DIGITS} hex digits "
                      f"(git log --abbrev={COMMIT_DIGITS})")
    if kernels is None:
        return t[:COMMIT_DIGITS], None
    found = [c for c in kernels.changes if c.commit and c.commit.startswith(t)]
    if len(found) == 1:
        return found[0].key, None
    if found:
        return None, (f"commit id {_short(text)} is ambiguous: it starts {len(found)} modelled changes: "
                      + "; ".join(f"{c.commit[:16]} {c.title}" for c in found) + "; write more digits")
    import difflib      # only on the error path
    commits = {c.commit[:len(t)]: c for c in kernels.changes if c.commit}
    close = [commits[m] for m in difflib.get_close_matches(t, commits, n=3, cutoff=0.6)]
    hint = ("; close matches: " + "; ".join(f"{c.key} {c.title}" for c in close)) if close else ""
    return None, f"no modelled change has commit {_short(text)}{hint} (mmscn history lists them all)"


class _Resolver:
    """The names a file may use, known before anything runs: a task from its spawn on,
    an mm from the statement that makes it.  (At run time the kernel's table says
    which of them exist in this interleaving.)"""

    def __init__(self, path: str, lines: list, arches: Optional[Arches], arch: Optional[str] = None):
        self.path = path
        self.lines = lines
        self.arches = arches
        self.arch = arch            # the architecture the run will use, when not the file's
        self.errors: list = []
        self.tasks: dict = {}       # name -> line of its spawn (0 for idle tasks)
        self.mms: set = {INIT_MM_NAME}
        self.cpus_ok: dict = {}     # cpuN -> N for the CPU names cpu() accepted (the header's `cpus` is read first)

    def err(self, node, message: str, notes=()):
        line, col = node.line, node.col
        src = self.lines[line - 1] if 0 < line <= len(self.lines) else None
        self.errors.append(Diagnostic(self.path, line, col, message, source_line=src, notes=tuple(notes)))

    # ---- header and layout
    def build(self, items, header: Optional[A.Scenario] = None) -> A.Scenario:
        sc = A.Scenario(self.path) if header is None else \
            dataclasses.replace(header, path=self.path, stmts=[], blocks=[], final=None)
        seen_header: dict = {}
        kernel_lines: list = []     # `revert`, `config` and `expect` headers, checked once the arch is known
        first_stmt = None
        in_blocks = False
        for it in items:
            if first_stmt is not None and not in_blocks and sc.final is None and isinstance(it, A.Stmt):
                sc.stmts.append(it)     # the common case, asked first: one more straight-line statement
                continue
            if isinstance(it, A.Header):
                kind, value = it.kind, it.value
                ref = A.Ref(value, it.line, it.col)
                if first_stmt is not None:
                    self.err(ref, f"`{header_word(kind)}` belongs in the header, before the first statement "
                                  f"(line {first_stmt.line})")
                    continue
                if kind in ("revert", "config", "outcome"):     # several allowed
                    kernel_lines.append(it)
                    continue
                if kind in seen_header:
                    self.err(ref, f"`{header_word(kind)}` is given twice (first at line {seen_header[kind]})")
                    continue
                seen_header[kind] = ref.line
                if kind == "title":
                    sc.title = value
                elif kind == "arch":
                    sc.arch, sc.arch_ref = value, ref
                    known = self.arches
                    if known is not None and known.check and value not in known.names:
                        close = close_match(value, known.names)
                        hint = f" (did you mean `{close}`?)" if close else ""
                        self.err(ref, f"unknown architecture `{_short(value)}`{hint}; "
                                      f"known: {', '.join(sorted(known.names))}")
                elif kind == "cpus":
                    n = bounded_int(value, MAX_CPUS)
                    sc.ncpus_ref = ref
                    if n < 1 or n > MAX_CPUS:
                        self.err(ref, f"`cpus` must be 1 to {MAX_CPUS}, not {_short(value)}")
                    else:
                        sc.ncpus = n
                elif kind == "kernel":
                    sc.kernel, sc.kernel_ref = value, ref
                elif kind == "granularity":
                    sc.granularity, sc.granularity_ref = value, ref
                continue
            if isinstance(it, A.Interleave):
                if first_stmt is not None:
                    self.err(it, f"`interleave` belongs in the header, before the first statement "
                                 f"(line {first_stmt.line})")
                elif sc.interleave is not None:
                    self.err(it, f"`interleave` is given twice (first at line {sc.interleave.line})")
                else:
                    sc.interleave = it
                continue
            if first_stmt is None:
                first_stmt = it
            if sc.final is not None and not isinstance(it, A.Final):
                self.err(it, f"nothing may follow `final` (line {sc.final.line}): the final condition is "
                             f"judged when everything else has run, so it comes last")
                continue
            if isinstance(it, A.CpuBlock):
                in_blocks = True
                sc.blocks.append(it)
            elif isinstance(it, A.InterruptBlock):
                in_blocks = True
                sc.interrupts.append(it)
            elif isinstance(it, A.Final):
                if sc.final is not None:
                    self.err(it, f"only one `final` condition per scenario (first at line {sc.final.line})")
                sc.final = it
            elif in_blocks:
                self.err(it, "statements after the per-CPU blocks never run; put them before the blocks "
                             "or inside one")
            else:
                sc.stmts.append(it)
        if kernel_lines or sc.kernel is not None:
            self.kernel_header(sc, kernel_lines)
        for i in range(sc.ncpus):
            self.tasks[idle_name(i)] = 0
        # Names: the straight-line part in order, then every block.
        for st in sc.stmts:
            self.stmt(st, sc, None)
        self.expects(sc.stmts)
        for b in sc.blocks:
            self.expects(b.stmts)
        self.one_per_cpu(sc.blocks, sc, "a block")
        for b in sc.blocks:
            self.declare_block(b)
        for b in sc.blocks:
            for st in b.stmts:
                self.stmt(st, sc, b.cpu)
        self.interrupts(sc)
        if sc.interleave is not None:
            for item in sc.interleave.items:
                for ref in item[1:]:
                    self.cpu(ref, sc)
        if sc.final is not None:
            self.conds(sc.final.conds, sc)
        return sc

    def one_per_cpu(self, blocks, sc, what: str) -> None:
        """A CPU has at most one block (or one interrupt handler): a second is an error at its CPU."""
        seen: dict = {}
        for b in blocks:
            cpu = self.cpu(b.cpu, sc)
            if cpu is not None:
                if cpu in seen:
                    self.err(b.cpu, f"{b.cpu.text} already has {what} (line {seen[cpu]})")
                seen[cpu] = b.line

    def interrupts(self, sc) -> None:
        """`interrupt cpuN { }`: one per CPU; its handler runs in interrupt context, so it
        holds only statements an interrupt may do (no schedule, no task's own operation)."""
        self.one_per_cpu(sc.interrupts, sc, "an interrupt handler")
        for b in sc.interrupts:
            for st in b.stmts:
                if not isinstance(st, IN_INTERRUPT):
                    word = self.lines[st.line - 1][st.col - 1:].split()[0] if 0 < st.line <= len(self.lines) else ""
                    self.err(st, f"an interrupt handler cannot `{_short(word)}`: it runs in interrupt context, on "
                                 f"whatever task {b.cpu.text} was running; it may do "
                                 f"{', '.join(INTERRUPT_WORDS)}")
                    continue
                self.stmt(st, sc, b.cpu)

    def kernel_header(self, sc, lines: list) -> None:
        """`kernel`, `revert`, `config` and the `expect` lines, checked against the history
        the caller knows (Arches.kernels): after every header line is read, so that the
        order of the lines does not matter."""
        ks = self.arches.kernels if self.arches is not None else None
        arch = self.arch or sc.arch
        if sc.kernel is not None and ks is not None:
            if ks.fixed(sc.arch):
                self.err(sc.kernel_ref, f"arch {sc.arch} is the generic architecture at {ks.fixed(sc.arch)} and "
                                        f"names its own kernel: write `arch generic` to choose `kernel "
                                        f"{_short(sc.kernel)}`")
            else:
                why = ks.release(sc.kernel) or ks.arch_release(arch, sc.kernel)
                if why:
                    self.err(sc.kernel_ref, why)
        release = sc.kernel if sc.kernel is not None else (ks.fixed(arch) or ks.newest(arch) if ks is not None else None)
        if release is not None and ks is not None and ks.release(release):
            release = None      # reported above; the other lines are checked against the newest
        # what the header already has (the REPL resolves more of a session under way), then these lines
        reverted: dict = dict.fromkeys(sc.reverts, 0)     # key -> line
        configs: dict = dict.fromkeys(sc.configs, 0)
        for h in lines:
            ref = A.Ref(h.value, h.line, h.col)
            if h.kind == "revert":
                key = self.commit(ref, ks, arch, release)
                if key is None:
                    continue
                if key in reverted:
                    first = f" (first at line {reverted[key]})" if reverted[key] else ""
                    self.err(ref, f"`revert {_short(h.value)}` is given twice{first}")
                reverted.setdefault(key, h.line)
            elif h.kind == "config":
                if ks is not None and h.value not in ks.configs:
                    bare = h.value.removeprefix("CONFIG_")
                    close = bare if bare in ks.configs else close_match(h.value, ks.configs)
                    hint = "" if close is None else f" (write it without CONFIG_: `config {bare}`)" \
                        if close == bare else f" (did you mean `{close}`?)"
                    self.err(ref, f"unknown kernel option `{_short(h.value)}`{hint}; the modelled options: "
                                  f"{', '.join(ks.configs)}")
                elif h.value in configs:
                    first = f" (first at line {configs[h.value]})" if configs[h.value] else ""
                    self.err(ref, f"`config {h.value}` is given twice{first}")
                configs.setdefault(h.value, h.line)
        sc.reverts, sc.configs = tuple(reverted), tuple(configs)
        expects: list = []
        judged: dict = {}       # frozenset of keys -> the Expectation that judges that kernel
        for h in lines:
            if h.kind != "outcome":
                continue
            keys, bad = [], False
            for r in h.without:
                key = self.commit(r, ks, arch, release)
                if key is None:
                    bad = True
                    continue
                if key in keys:
                    self.err(r, f"{_short(r.text)} is named twice in this line")
                    bad = True
                elif key in reverted:
                    self.err(r, f"{_short(r.text)} is reverted for the whole file (line {reverted[key]}); "
                                f"`without` names a change the header's kernel has")
                    bad = True
                else:
                    keys.append(key)
            if bad:     # already reported: no second error about the line it leaves
                continue
            e = A.Expectation(h.value, tuple(keys), h.line, h.col)
            first = judged.get(frozenset(keys))
            if first is not None:
                if first.outcome == e.outcome:
                    self.err(A.Ref(h.value, h.line, h.col), f"`{e.label()}` is given twice (first at line "
                                                            f"{first.line})")
                else:
                    self.err(A.Ref(h.value, h.line, h.col), f"line {first.line} already says `{first.label()}`: "
                                                            f"one kernel has one verdict")
                continue
            judged[frozenset(keys)] = e
            expects.append(e)
        if expects:
            sc.expects = tuple(expects)
            sc.outcome = expects[0].outcome

    def commit(self, ref: A.Ref, ks: Optional[Kernels], arch: str, release: Optional[str]) -> Optional[str]:
        """The key of the modelled change a commit id names, or None after a located error:
        unknown, ambiguous, not this arch's code, or not in this release at all."""
        key, why = find_change(ref.text, ks)
        if why:
            self.err(ref, why)
            return None
        if ks is None:
            return key
        c = next(c for c in ks.changes if c.key == key)
        if c.arches and arch not in c.arches and (self.arches is None or arch in self.arches.names):
            self.err(ref, f"{c.key} ({c.title}) changes the code of {', '.join(c.arches)} only, and this scenario "
                          f"runs arch {arch}")
            return None
        if not ks.lands(key, release):
            self.err(ref, f"{c.key} ({c.title}) came in {c.release}, after kernel {release}: there is nothing to "
                          f"revert")
            return None
        return key

    def hardware(self, f: A.Field, sc, label: str) -> None:
        """A field the file's architecture does not model (mm_cpumask under generic)
        cannot be read: an error of the file, which `mmscn check` finds before a run
        fails on it.  An --arch that models it lifts the error; one that does not,
        on a file whose arch does, is a what-if whose assertion fails at run time."""
        need = HARDWARE_FIELDS.get((f.owner, f.name))
        arch = self.arch or sc.arch
        known = self.arches
        if need is None or known is None or known.hardware is None \
                or any(a not in known.names for a in {arch, sc.arch}):
            return
        try:
            if any(need[0] in known.hardware(a) for a in {arch, sc.arch}):
                return
            have = [a for a in known.names if need[0] in known.hardware(a)]
        except Exception:     # a broken policy plug-in must not break the check of a file
            return
        self.err(f, f"arch {arch} does not track {need[1]}, so {label} cannot be read"
                    + (f"; the architectures that do: {', '.join(have)}" if have else ""))

    def expects(self, stmts):
        """`expect` speaks of the next kernel statement: not of an assertion, nor of nothing."""
        for st, nxt in zip(stmts, stmts[1:] + [None]):
            if isinstance(st, A.Expect) and not (isinstance(nxt, A.Stmt) and not isinstance(nxt, (A.Assert, A.Expect))):
                what = "but nothing follows it" if nxt is None else \
                    ("not an assertion" if isinstance(nxt, A.Assert) else "not another `expect`")
                self.err(st, f"`expect {st.kind}` must be followed by the kernel statement it speaks of, {what}")

    def declare_block(self, b):
        for st in b.stmts:
            if isinstance(st, (A.Spawn, A.SpawnThread, A.SpawnKthread)):
                self.declare_task(st.task)
            if isinstance(st, (A.Spawn, A.Exec)):
                self.declare_mm(st)

    # ---- names
    def cpu(self, ref: A.Ref, sc) -> Optional[int]:
        n = self.cpus_ok.get(ref.text)
        if n is not None:       # named before and found good (every statement names its CPU)
            return n
        one = cpu_spelling(ref.text)
        if ref.text != one:
            # one spelling per CPU: blocks and statements compare CPU names as written
            self.err(ref, f"`{_short(ref.text)}` has a leading zero; CPUs are cpu0, cpu1, ..., "
                          f"so write `{_short(one)}`")
            return None
        n = cpu_number(ref.text)
        if n >= sc.ncpus:
            self.err(ref, f"{_short(ref.text)} does not exist: the scenario has {plural(sc.ncpus, 'CPU')} "
                          f"(cpu0 to cpu{sc.ncpus - 1}); "
                          f"raise `cpus` in the header")
            return None
        self.cpus_ok[ref.text] = n
        return n

    def task(self, ref: A.Ref):
        if ref.text not in self.tasks:
            if is_cpu_name(ref.text):
                self.err(ref, f"`{_short(ref.text)}` is a CPU, not a task")
            else:
                self.err(ref, f"no task named `{_short(ref.text)}` (spawn it first)"
                              + did_you_mean(ref.text, self.tasks))

    def mm(self, ref: A.Ref):
        if ref.text not in self.mms:
            self.err(ref, f"no mm named `{_short(ref.text)}`; an mm is made by `spawn` or `exec` "
                          f"(named after the task) or named with `mm @M`" + did_you_mean(ref.text, self.mms))

    def declare_task(self, ref: A.Ref):
        if ref.text in keywords():
            # `A.state == dead` must read `dead` as the state, so no task may be called that
            self.err(ref, f"`{ref.text}` is a word of the language and cannot name a task")
        elif is_cpu_name(ref.text):
            # `cpu0.curr` and `cpu0 is idle` read it as the CPU: such a task could never be asserted on
            self.err(ref, f"`{_short(ref.text)}` names a CPU and cannot name a task")
        elif ref.text in self.tasks:
            first = self.tasks[ref.text]
            where = "is an idle task" if first == 0 else f"was spawned at line {first}"
            self.err(ref, f"a task named `{_short(ref.text)}` already exists: it {where}")
        else:
            self.tasks[ref.text] = ref.line

    def declare_mm(self, st):
        if st.mm is not None:
            if st.mm.text in self.mms:
                self.err(st.mm, f"the mm name `{_short(st.mm.text)}` is taken; names of mms are never reused")
            elif st.mm.text == INIT_MM_NAME:
                self.err(st.mm, "init_mm is never a task's mm")
            self.mms.add(st.mm.text)
        else:
            self.mms.add(fresh_mm_name(st.task.text, self.mms))

    def stmt(self, st, sc, block_cpu: Optional[A.Ref]):
        # the statement classes are disjoint: the commonest (schedule, assert) are asked first
        if isinstance(st, A.Schedule):
            self.where(st, st.cpu, block_cpu, sc, "schedule", "schedule cpu0 A")
            if st.task is not None:
                self.task(st.task)
        elif isinstance(st, A.Assert):
            self.conds(st.conds, sc)
        elif isinstance(st, A.Spawn):
            if block_cpu is None:
                self.declare_task(st.task)
                self.declare_mm(st)
        elif isinstance(st, A.SpawnThread):
            self.task(st.parent)
            if block_cpu is None:
                self.declare_task(st.task)
        elif isinstance(st, A.SpawnKthread):
            if block_cpu is None:
                self.declare_task(st.task)
        elif isinstance(st, A.Exec):
            self.task(st.task)
            if block_cpu is None:
                self.declare_mm(st)
        elif isinstance(st, (A.Exit, A.UnuseMm)):
            self.task(st.task)
        elif isinstance(st, A.UseMm):
            self.task(st.task)
            self.mm(st.mm)
        elif isinstance(st, (A.Unlazy, A.Offline)):
            self.where(st, st.cpu, block_cpu, sc, type(st).__name__.lower(), f"{type(st).__name__.lower()} cpu0")
        elif isinstance(st, (A.Online, A.Rollover)):
            self.cpu(st.cpu, sc)
        elif isinstance(st, (A.Membarrier, A.Tick, A.PerfSample)):
            word = {A.Membarrier: "membarrier", A.Tick: "tick", A.PerfSample: "perf_sample"}[type(st)]
            self.where(st, st.cpu, block_cpu, sc, word, f"{word} cpu0")
        elif isinstance(st, A.TaskWorkRun):
            self.task(st.task)
        elif isinstance(st, (A.MmRef, A.MmgetNotZero, A.Flush)):
            self.mm(st.mm)

    def where(self, st, cpu, block_cpu, sc, word, example):
        if cpu is None and block_cpu is None:
            self.err(st, f"`{word}` needs a CPU outside a per-CPU block, like `{example}`")
        elif cpu is not None:
            self.cpu(cpu, sc)
            if block_cpu is not None and cpu.text != block_cpu.text:
                self.err(cpu, f"this statement is in {block_cpu.text}'s block and cannot act on {cpu.text}; "
                              f"write it without the CPU or move it to {cpu.text}'s block")

    # ---- conditions
    def conds(self, conds, sc):
        for c in conds:
            if type(c) is A.Cmp:            # the common cases: a comparison or a test, no nesting to measure
                self.cmp(c, sc)
                continue
            if type(c) is A.Is:
                self.is_(c, sc)
                continue
            if _depth(c) > MAX_NESTING:
                self.err(c, f"this condition nests more than {MAX_NESTING} levels deep")
                continue
            self.cond(c, sc)

    def cond(self, c, sc):
        for c in A.leaves([c]):
            if isinstance(c, A.Is):
                self.is_(c, sc)
            elif isinstance(c, A.Cmp):
                self.cmp(c, sc)

    def is_(self, c: A.Is, sc):
        self.subject(c.owner, c.obj, sc)
        if c.word not in IS_WORDS[c.owner]:
            what = {"cpu": "a CPU", "task": "a task", "mm": "an mm"}[c.owner]
            self.err(c, f"`is {c.word}` does not apply to {what}; "
                        f"{what} can be {', '.join(IS_WORDS[c.owner])}")

    def subject(self, owner, ref, sc):
        if owner == "cpu":
            self.cpu(ref, sc)
        elif owner == "task":
            self.task(ref)
        elif owner == "mm":
            self.mm(ref)

    def cmp(self, c: A.Cmp, sc):
        f, v = c.field, c.value
        if f.owner != "cost":
            self.subject(f.owner, f.obj, sc)
        typ = field_type(f.owner, f.name)
        label = f"cost.{f.name}" if f.owner == "cost" else f"{f.obj.text}.{f.name}"
        self.hardware(f, sc, label)
        if c.op not in ("==", "!=") and typ != "int":
            self.err(c, f"`{c.op}` compares numbers; {label} is not a number (use == or !=)")
        if v.kind == "int" and v.text > MAX_INT:
            self.err(v, "this number does not fit in 64 bits")
            return
        if typ in WORDS:
            ok = v.kind == "word" and v.text in WORDS[typ]
        else:
            ok = v.kind in VALUE_KINDS.get(typ, ()) or (typ == "task" and v.kind == "word" and v.text == "idle")
        if not ok:
            self.err(v, f"{label} is compared with {expected_value(typ)}, not `{_short(_value_text(v))}`")
            return
        if v.kind == "task":
            self.task(A.Ref(v.text, v.line, v.col))
        elif v.kind == "mm":
            self.mm(A.Ref(v.text, v.line, v.col))
        elif v.kind == "cpu":
            self.cpu(A.Ref(v.text, v.line, v.col), sc)
        elif v.kind == "cpuset":
            for r in v.text:
                self.cpu(r, sc)


def _depth(c) -> int:
    best, stack = 0, [(c, 1)]
    while stack:
        c, d = stack.pop()
        best = max(best, d)
        if d > MAX_NESTING:
            return d
        if isinstance(c, (A.And, A.Or)):
            stack.extend((p, d + 1) for p in c.parts)
        elif isinstance(c, A.Not):
            stack.append((c.part, d + 1))
    return best


def _value_text(v: A.Value) -> str:
    if v.kind == "cpuset":
        return "{" + ", ".join(r.text for r in v.text) + "}"
    if v.kind == "none":
        return "none"
    if v.kind == "bool":
        return "true" if v.text else "false"
    return str(v.text)


#: what an `interrupt cpuN { }` handler may do: operations an interrupt handler does to an
#: mm or to the CPU it lands on (a flush, a reference taken and put, sched_force_init_mm's
#: switch to init_mm as powerpc's flush IPI does it), and assertions
IN_INTERRUPT = (A.Flush, A.MmRef, A.MmgetNotZero, A.Unlazy, A.Assert)
INTERRUPT_WORDS = ("flush", "mmget", "mmput", "mmgrab", "mmdrop", "mmget_not_zero", "unlazy", "assert")


def header_word(kind: str) -> str:
    """The word a header line starts with, for the name the AST gives it."""
    return {"title": "scenario", "outcome": "expect"}.get(kind, kind)


def _known(arches) -> Optional[Arches]:
    """An Arches; a plain container of names stands for Arches(names)."""
    return arches if arches is None or isinstance(arches, Arches) else Arches(arches)


def load(text: str, path: str = "<input>", arches=None, arch: Optional[str] = None) -> A.Scenario:
    """Parse and resolve scenario text; raise ParseFailed with every diagnostic.

    ``arches``: the known architectures (an Arches, or a container of names);
    ``arch`` is the one the run will use when it overrides the file's (`mmscn run --arch`).
    """
    arches = _known(arches)
    items = parse_items(text, path, None if arches is None else arches.names)
    r = _Resolver(path, source_lines(text), arches, arch)
    sc = r.build(items)
    if r.errors:
        r.errors.sort(key=lambda d: (d.line, d.col))
        raise ParseFailed(r.errors)
    return sc


def resolve_more(items, lines, path: str, header: A.Scenario, tasks: dict, mms, arches=None) -> A.Scenario:
    """Resolve parsed items as more of a scenario already under way (the REPL).

    ``lines`` is the source the items' line numbers point into (a sequence of
    lines); ``header`` gives the title, arch, CPUs and outcome in force (header
    lines in the items may change them); ``tasks`` maps each task that exists
    to the line of its spawn (0 for idle tasks) and ``mms`` names the mms that
    exist, so only the new items are looked at.  Raises ParseFailed like load().
    """
    r = _Resolver(path, lines, _known(arches))
    r.tasks = dict(tasks)
    r.mms = set(mms)
    sc = r.build(items, header)
    if r.errors:
        r.errors.sort(key=lambda d: (d.line, d.col))
        raise ParseFailed(r.errors)
    return sc


def load_file(path: str, arches=None, arch: Optional[str] = None) -> tuple:
    """Read (files.read_source: a regular file, capped), decode, parse and resolve a file:
    (Scenario, text).  OSError passes through."""
    from .files import read_source
    text = decode_source(read_source(path), path)
    return load(text, path, arches, arch), text
