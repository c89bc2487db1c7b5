"""The REPL's session: the kernel of one session and what it ran.

Session takes an input (statements, a block, or a `:command`, which goes to
commands.py), runs it, prints what the kernel did and keeps what ran for
:undo, :arch and :save.  piped.py drives it from a byte stream, prompt.py
from prompt_toolkit.  Imported only when `mmscn repl` runs, so `mmscn check`
does not pay for compiling it.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Optional

from mmscn.dsl.diagnostics import plural, printable, read_error
from mmscn.formats import BOLD as _BOLD, DIM as _DIM, RED as _RED, RESET as _RESET
from mmscn.repl.commands import run_command
from mmscn.repl.completion import completions

REPL_PATH = "<repl>"
MAX_INPUT = 1 << 20            # bytes of one input; longer ones are refused, not parsed
CHECKPOINTS = 64               # kernel snapshots kept for :undo; older states are re-run from boot


# ============================================================ the session
@dataclass(slots=True)
class Entry:
    """A statement that ran, with what it did, as the session keeps it."""
    stmt: object
    cpu: Optional[int]          # the block's CPU, None at the top level
    step: object                # step.Outcome: status, events, message
    expect: object              # the `expect` it ran under, or None
    lines: list                 # the source its line numbers point into
    path: str


class Session:
    """The state of one REPL session and everything it can be asked.

    The kernel state is always what the kept statements did: a statement that
    is refused changes nothing and is not kept, a failed assertion is shown and
    not kept, a statement that breaks an invariant is kept (the state shows the
    breakage; :undo takes it back).  Parse and name errors run nothing.
    """

    def __init__(self, out, arch: str = "generic", ncpus: int = 1, color: bool = False,
                 kernel: Optional[str] = None, reverts: tuple = ()):
        self.out = out
        self.color = color
        self.arch = arch
        self.ncpus = ncpus
        # the kernel (mmscn/kernels.py): the release (None: the arch's, else the newest), the
        # changes left out, the options set; --kernel/--revert win over a loaded file's header
        self.release, self.reverts, self.configs = kernel, tuple(reverts), ()
        self.flag_release, self.flag_reverts = kernel, tuple(reverts)
        self.lines: list = []        # every input line that parsed, numbered through the session
        self.failures = 0
        self.quit = False
        self.version = 0             # inputs fed so far: the toolbar is redrawn when it changes
        self.start_over()

    def start_over(self) -> None:
        """An empty session on the current arch and CPUs, freshly booted."""
        self.title, self.outcome = None, "pass"
        self.kept: list = []         # Entry, in the order they ran
        self.pending: list = []      # the lines of a lone `expect`, waiting for its statement
        self.spawn_line: dict = {}   # task name -> session line of its spawn (for messages)
        self.checkpoints: dict = {}  # len(kept) -> Kernel.snapshot()
        self._boot()

    # ---------------------------------------------------------------- basics
    @property
    def k(self):
        return self.runner.k

    @property
    def policy(self):
        return self.runner.policy

    def _take_header(self, sc, arch: str, ncpus: int) -> bool:
        """The header of a fresh session: title and outcome, and arch and CPUs, which boot
        the kernel again when they change (True then)."""
        self.title, self.outcome = sc.title, sc.outcome
        kernel = (self.flag_release or sc.kernel, tuple(dict.fromkeys(sc.reverts + self.flag_reverts)), sc.configs)
        if (arch, ncpus, kernel) == (self.arch, self.ncpus, (self.release, self.reverts, self.configs)):
            return False
        self.arch, self.ncpus = arch, ncpus
        self.release, self.reverts, self.configs = kernel
        self.checkpoints.clear()
        self._boot()
        return True

    def _header(self):
        from mmscn.dsl import ast as A
        return A.Scenario(REPL_PATH, self.title, self.arch, self.ncpus, self.outcome, kernel=self.release,
                          reverts=self.reverts, configs=self.configs)

    def kernel_version(self):
        """The KernelVersion the session runs (interpreter/version.py)."""
        from mmscn.interpreter import policies
        from mmscn.interpreter import version as V
        return V.for_policy(policies.get(self.arch), self.release, self.reverts, self.configs)

    def _boot(self) -> None:
        from mmscn.interpreter.runner import Runner
        # the session prints no `hw:` lines (:state shows the hardware)
        self.runner = Runner(self._header(), self.lines, self.arch, hardware=False, on_step=self._ran,
                             version=self.kernel_version())
        self._settle()

    def _ran(self, st, cpu, outcome, go_on) -> None:
        """Record each statement the runner steps through (with its `expect`)."""
        if outcome is not None:
            self.entries.append(Entry(st, cpu, outcome, outcome.expect, self.runner.lines, self.runner.sc.path))

    def _settle(self) -> None:
        """Forget the bookkeeping of the last input (not state): the kernel's events,
        violations and dirty sets, and what the runner recorded of it."""
        r = self.runner
        r.result.steps, r.result.diagnostics, r.result.final, r.result.stopped = [], [], None, False
        r.pending_expect, self.entries = None, []
        k = self.k
        if k.ev is not None:
            k.ev.clear()
        k.violations.clear()
        k.d_tasks.clear(); k.d_mms.clear(); k.d_cpus.clear()

    def w(self, text: str = "") -> None:
        self.out.write(text + "\n")

    def c(self, code: str, text: str) -> str:
        return f"{code}{text}{_RESET}" if self.color else text

    def fail(self, message: str) -> bool:
        self.failures += 1
        self.w(self.c(_RED, "error: ") + printable(message))
        return False

    def boot_line(self) -> str:
        n = self.k.ncpus
        idles = ", ".join(f"idle{i}" for i in range(min(n, 8))) + (", ..." if n > 8 else "")
        return f"arch {self.arch}, {plural(n, 'CPU')}: {idles} on @init_mm ({self._boot_counts()})"

    def _boot_counts(self) -> str:
        """init_mm's counters as boot left them (the runner recorded the boot)."""
        from mmscn.interpreter.report import k_boot_count, k_boot_users
        r = self.runner.result
        return f"users {k_boot_users(r)}, count {k_boot_count(r)}"

    # ---------------------------------------------------------------- input
    def feed(self, text: str) -> bool:
        """Run one input (statements, a block, or a :command); False if it failed."""
        if len(text) > MAX_INPUT:
            return self.fail(f"the input is {len(text):,} characters long; the REPL takes at most {MAX_INPUT:,}")
        try:
            s = text.strip()
            if not s:
                return True
            if s.startswith(":"):
                return run_command(self, s)
            return self.statements(text)
        except Exception as e:    # a bug in the model must not end the session
            self.runner.pending_expect = None
            self.rewind(len(self.kept))
            return self.fail(f"internal error ({type(e).__name__}: {e}); the input was taken back. "
                             f"Please report this with the input.")
        finally:
            self.version += 1     # whatever the input did, the toolbar redraws

    def statements(self, text: str) -> bool:
        from mmscn.dsl import ast as A
        from mmscn.dsl.parser import ParseFailed, parse_items
        from mmscn.dsl.resolve import resolve_more
        from mmscn.interpreter.arches import known_arches
        arches = known_arches()
        src = self.pending + text.split("\n")
        first = len(self.lines) + 1
        npend = len(self.pending)
        try:
            # the input alone, then numbered on from the session's lines: the cost of
            # an input does not grow with the session
            try:
                items = parse_items("\n".join(src), REPL_PATH, arches.names)
            except ParseFailed as e:
                for d in e.diagnostics:
                    d.line += first - 1
                raise
            renumber(items, first - 1)
            stmts = [it for it in items if not isinstance(it, A.Header)]
            headers = [it for it in items if isinstance(it, A.Header)]
            if stmts and not headers and all(isinstance(it, A.Expect) for it in stmts):
                self.pending = src
                self.w(self.c(_DIM, f"  `{printable(src[-1].strip())}` applies to the next statement"))
                return True
            if headers and self.kept:
                from mmscn.dsl.diagnostics import Diagnostic
                from mmscn.dsl.resolve import header_word
                raise ParseFailed([Diagnostic(
                    REPL_PATH, h.line, h.col,
                    f"`{header_word(h.kind)}` is a header line: it can be set only before the first statement; "
                    f"`:reset` starts over" + {"arch": ", `:arch NAME` replays the session on another architecture",
                                               "kernel": ", `:kernel vX.Y` replays the session on another release",
                                               "revert": ", `:revert COMMIT` replays the session without a change"}
                    .get(h.kind, ""),
                    source_line=src[h.line - first] if 0 <= h.line - first < len(src) else None)
                    for h in headers])
            sc = resolve_more(items, _Lines(self.lines, src), REPL_PATH, self._header(), self._tasks(),
                              self.k.mm_ix, arches)
        except ParseFailed as e:
            for d in e.diagnostics:
                self.w(d.render(self.color))
            if npend and any(d.line < first + npend for d in e.diagnostics):
                self.pending = []
            self.failures += 1
            return False
        if sc.final is not None:
            from mmscn.dsl.diagnostics import Diagnostic
            self.w(Diagnostic(REPL_PATH, sc.final.line, sc.final.col,
                              "`final` judges the end of a scenario file (and every interleaving in mmscn "
                              "explore); in the REPL, `assert` checks the state now",
                              source_line=src[sc.final.line - first]).render(self.color))
            self.failures += 1
            return False
        self.pending = []
        self.lines.extend(src)
        if headers and self._take_header(sc, sc.arch, sc.ncpus):
            self.w("  " + self.boot_line())
        return self._run(sc, self.lines)

    def _run(self, sc, lines, judge_final: bool = False) -> bool:
        """Run a resolved piece: its statements in order, then its blocks as `mmscn run` does."""
        from mmscn.interpreter.report import INTERLEAVING_NOTE
        from mmscn.interpreter.step import EXPECTED, OK, VIOLATION
        r = self.runner
        self._checkpoint()
        self._settle()
        r.sc, r.lines = sc, lines
        stopped = False
        for st in sc.stmts:
            if not r.step(st, None):
                stopped = True
                break
        if not stopped and sc.blocks:
            r.run_blocks()
            stopped = r.result.stopped
        if judge_final and not stopped and sc.final is not None:
            r.judge_final()
        blocks_shown = False
        for e in self.entries:
            if e.cpu is not None and not blocks_shown:
                blocks_shown = True
                self.w(self.c(_BOLD, f"  {INTERLEAVING_NOTE}"))
            self.show(e, fresh=True)
            if e.step.status in (OK, EXPECTED, VIOLATION):
                self.kept.append(e)
                if type(e.stmt).__name__ in ("Spawn", "SpawnThread", "SpawnKthread"):
                    self.spawn_line[e.stmt.task.text] = e.stmt.line   # a :load-ed file's own line
        for d in r.result.diagnostics:
            self.w(d.render(self.color))
        if r.result.final is not None:
            q, held, detail = r.result.final
            self.w(f"  final {q}: {'holds' if held else 'does not hold'} in this interleaving"
                   + ("" if held else f": {printable(detail)}"))
        if any(e.step.status == VIOLATION for e in self.entries):
            self.w(self.c(_DIM, "  the statement ran, so the state keeps what it did; :undo takes it back"))
        failed = bool(r.result.diagnostics)
        self._settle()
        if failed:
            self.failures += 1
        return not failed

    def _tasks(self) -> dict:
        """The tasks that exist, each with the session line of its spawn (0: idle, or from a file)."""
        tasks = dict.fromkeys(self.k.task_ix, 0)
        tasks.update(self.spawn_line)
        return tasks

    def _checkpoint(self) -> None:
        """A snapshot before an input; in a big state only every few inputs (undo re-runs the rest)."""
        n = len(self.kept)
        k = self.k
        every = 1 + (len(k.t_name) + len(k.m_name)) // 500
        if n not in self.checkpoints and (not self.checkpoints or n - max(self.checkpoints) >= every):
            self.checkpoints[n] = self.k.snapshot()
            while len(self.checkpoints) > CHECKPOINTS:
                del self.checkpoints[min(self.checkpoints)]

    def finish(self) -> None:
        """The input ended: an `expect` still waiting has nothing to speak of."""
        if self.pending:
            self.fail(f"`{self.pending[-1].strip()}` at the end of the input is not followed by a statement")
            self.pending = []

    # ---------------------------------------------------------------- showing
    def source(self, e, flat: bool = True) -> str:
        """The statement as written; ``flat``: as a top-level line (a block's implicit CPU written out)."""
        from types import SimpleNamespace
        from mmscn.interpreter.explore import stmt_source
        from mmscn.interpreter.report import statement_text
        from mmscn.interpreter.conditions import cond_text
        if type(e.stmt).__name__ == "Assert":
            # from the tree, in the normal form (`A.mm==@A` shows as `A.mm == @A`)
            return "assert " + ", ".join(cond_text(c) for c in e.stmt.conds)
        if not flat:
            return statement_text(e.lines, e.stmt)
        return stmt_source(SimpleNamespace(lines=e.lines), e.stmt, e.cpu)

    def show(self, e, fresh: bool = False) -> None:
        from mmscn.interpreter.report import format_event, status_mark
        from mmscn.interpreter.step import EXPECTED, VIOLATION
        st = e.step
        mark = status_mark(st, self.c)
        where = f"cpu{e.cpu}: " if e.cpu is not None else ""
        num = f"{e.stmt.line:5d}" if e.path == REPL_PATH else f"{os.path.basename(e.path)}:{e.stmt.line}".rjust(5)
        self.w(f"{printable(num)}  {where}{printable(self.source(e, flat=False))}{mark}")
        for ev in st.events:
            self.w(self.c(_DIM, "         " + printable(format_event(ev))))
        if st.message and (st.status == EXPECTED or (not fresh and st.status == VIOLATION)):
            self.w(f"         {printable(st.message)}")

    def boot_line_at_boot(self) -> str:
        return (f"arch {self.arch}, {plural(self.k.ncpus, 'CPU')}, every idle task on @init_mm "
                f"({self._boot_counts()})")

    def rewind(self, t: int) -> None:
        """Back to the state after the first t kept statements: the nearest snapshot, then re-run."""
        below = [i for i in self.checkpoints if i <= t]
        if below:
            c = max(below)
            self.k.restore(self.checkpoints[c])
            self._settle()
        else:
            c = 0
            self._boot()
        self._replay(self.kept[c:t])
        del self.kept[t:]
        for i in [i for i in self.checkpoints if i > t]:
            del self.checkpoints[i]
        self.spawn_line = {n: ln for n, ln in self.spawn_line.items() if n in self.k.task_ix}

    def _replay(self, entries) -> list:
        """Run kept statements again, as they ran; the fresh entries, in order."""
        from mmscn.interpreter.step import EXPECTED
        r = self.runner
        self._settle()
        for e in entries:
            r.lines = e.lines
            if e.expect is not None and e.step.status == EXPECTED:
                r.step(e.expect, e.cpu)
            r.step(e.stmt, e.cpu)
            r.pending_expect = None
        fresh = self.entries
        self._settle()
        return fresh

    def replay_on(self, arch: Optional[str] = None, **kernel) -> Optional[list]:
        """Boot on ``arch`` (and the kernel ``kernel`` says: release=, reverts=) and replay the
        kept statements there: None when each did what it did before (the session is on them
        now), else the (entry, fresh) pairs that differ (the session stays as it was)."""
        old = self.runner, self.arch, self.release, self.reverts
        self.arch = arch or self.arch
        self.release, self.reverts = kernel.get("release", self.release), kernel.get("reverts", self.reverts)
        self._boot()
        fresh = self._replay(self.kept)
        diff = [(e, f) for e, f in zip(self.kept, fresh) if e.step.status != f.step.status]
        if diff or len(fresh) != len(self.kept):
            self.runner, self.arch, self.release, self.reverts = old
            return diff
        for e, f in zip(self.kept, fresh):
            e.step = f.step
        self.checkpoints.clear()
        return None

    def load(self, path: str, arch: Optional[str] = None, ncpus: Optional[int] = None) -> str:
        """Run a scenario file into the session: "ok", "failed" (it ran and something failed),
        or "bad" (it could not be read, parsed or fitted to the session; nothing ran)."""
        from mmscn.dsl.diagnostics import Diagnostic
        from mmscn.dsl.files import read_source
        from mmscn.dsl.parser import ParseFailed, decode_source, parse_items
        from mmscn.dsl import ast as A
        from mmscn.dsl.resolve import resolve_more
        from mmscn.interpreter.arches import known_arches
        arches = known_arches()
        try:
            data = read_source(path)
        except OSError as e:
            self.fail(f"{path}: {read_error(e)}")
            return "bad"
        try:
            text = decode_source(data, path)
            items = parse_items(text, path, arches.names)
            lines = text.split("\n")
            if self.kept:
                bad = []
                for h in (it for it in items if isinstance(it, A.Header)):
                    now = {"arch": self.arch, "cpus": self.ncpus}.get(h.kind)
                    if now is not None and str(now) != h.value:
                        bad.append(Diagnostic(path, h.line, h.col,
                                              f"the session has `{h.kind} {now}` and has run statements; this "
                                              f"file's `{h.kind} {h.value}` fits only a fresh session (:reset first)",
                                              source_line=lines[h.line - 1]))
                if bad:
                    raise ParseFailed(bad)
            sc = resolve_more(items, lines, path, self._header(), self._tasks(), self.k.mm_ix, arches)
        except ParseFailed as e:
            for d in e.diagnostics:
                self.w(d.render(self.color))
            n = len(e.diagnostics)
            self.fail(f"{path}: {plural(n, 'error')}; nothing was loaded")
            return "bad"
        fresh = not self.kept
        if fresh:
            self._take_header(sc, arch or sc.arch, ncpus or sc.ncpus)
        sc.ncpus, sc.arch = self.ncpus, self.arch
        # the boot line only where the file starts from boot; mid-session it would describe the past
        self.w(self.c(_BOLD, printable(path)) + (f": {printable(sc.title)}" if sc.title else "")
               + (f" ({self.boot_line()})" if fresh else ""))
        before = len(self.kept)
        ok = self._run(sc, lines, judge_final=True)
        n = len(self.kept) - before
        self.w(f"  loaded {plural(n, 'statement')} from {printable(path)}" + ("" if ok else ", with failures"))
        return "ok" if ok else "failed"

    def save_text(self) -> str:
        """The session as a scenario that `mmscn run` replays to the same state."""
        from mmscn.interpreter.step import EXPECTED, VIOLATION
        out = ["# written by `mmscn repl` (:save): `mmscn run` on this file replays the session",
               "# to the same state; per-CPU block statements appear in the order they ran."]
        if self.title is not None:
            out.append(f'scenario "{self.title}"')
        out += [f"arch {self.arch}", f"cpus {self.ncpus}"]
        out += ([f"kernel {self.release}"] if self.release else []) + [f"revert {k}" for k in self.reverts] \
            + [f"config {c}" for c in self.configs]
        if self.outcome != "pass":
            out.append(f"expect {self.outcome}")
        out.append("")
        for e in self.kept:
            if e.step.status == VIOLATION:
                # it broke an invariant in the session; the expectation lets the run go on as the session did
                rule = e.step.message.split(":", 1)[0]
                out.append(f"expect violation                         # {rule}")
            elif e.step.status == EXPECTED and e.expect is not None:
                out.append(self.source(Entry(e.expect, e.cpu, None, None, e.lines, e.path)))
            out.append(self.source(e))
        return "\n".join(out) + "\n"

    # ---------------------------------------------------------------- completion
    def completions(self, before: str) -> list:
        """(word, what it is) that may follow ``before``: completion.completions on this session."""
        return completions(self, before)


# ============================================================ helpers
class _Lines:
    """The session's lines followed by an input's, without copying the session's."""

    def __init__(self, base: list, extra: list):
        self.base, self.extra = base, extra

    def __len__(self):
        return len(self.base) + len(self.extra)

    def __getitem__(self, i):
        n = len(self.base)
        return self.base[i] if i < n else self.extra[i - n]


def renumber(items, delta: int) -> None:
    """Move parsed items ``delta`` lines down (in place; Refs are frozen, so replaced)."""
    import dataclasses
    from mmscn.dsl import ast as A
    if not delta:
        return
    stack = list(items)
    while stack:
        node = stack.pop()
        for f in dataclasses.fields(node):
            v = getattr(node, f.name)
            if f.name == "line":
                setattr(node, "line", v + delta)
            elif isinstance(v, A.Ref):
                setattr(node, f.name, A.Ref(v.text, v.line + delta, v.col))
            elif isinstance(v, (list, tuple)):
                new = [A.Ref(x.text, x.line + delta, x.col) if isinstance(x, A.Ref) else x for x in v]
                stack.extend(x for x in v if dataclasses.is_dataclass(x) and not isinstance(x, A.Ref))
                setattr(node, f.name, type(v)(new))
            elif dataclasses.is_dataclass(v):
                stack.append(v)


def open_braces(text: str) -> int:
    """How many `{` are still open (strings and comments aside): a block input goes on while > 0."""
    depth = 0
    for line in text.split("\n"):
        line = re.sub(r'"[^"\n]*"?', "", line).split("#", 1)[0]
        depth += line.count("{") - line.count("}")
    return depth


