"""What the language server knows of one document, without any protocol.

``Analysis.update(text)`` parses and resolves the text like `mmscn check`,
runs it like `mmscn run` and returns a ``Result``: the problems (located, with
the rule and the kernel function), the names (where each task and mm is made
and every place it is used), and the run itself, from which the state after
any statement is rebuilt.

The run keeps checkpoints: kernel snapshots (Kernel.snapshot()) taken between
statements.  After an edit, the first line that differs from the last run's
text is found and the run resumes from the last checkpoint before it, so a
change at the end of a long file re-runs only the end.  A checkpoint costs as
much as the state it copies, so they are spaced by that size (SPACING): the
memory stays linear in the file and rebuilding any state re-runs at most
size/SPACING statements.
"""
from __future__ import annotations

import bisect
import dataclasses
import re
from dataclasses import dataclass, field
from typing import Optional

from mmscn.dsl import ast as A
from mmscn.dsl.parser import ParseFailed, parse_items
from mmscn.dsl.names import INIT_MM_NAME
from mmscn.dsl.resolve import fresh_mm_name, resolve_more
from mmscn.interpreter.arches import known_arches
from mmscn.interpreter.runner import Runner
from mmscn.interpreter.step import REFUSED, VIOLATION

# A checkpoint after every SPACING-th part of the state's size in statements.
SPACING = 40

_NAME_AT = re.compile(r"@[A-Za-z_][A-Za-z0-9_]*(?:\.[0-9]+)?|[A-Za-z_][A-Za-z0-9_]*|\S")
_DID_YOU_MEAN = re.compile(r"did you mean `([^`]+)`\?")


@dataclass
class Problem:
    """A located problem; lines and columns 1-based, ``end`` exclusive, on one line."""
    line: int
    col: int
    end: int
    message: str
    severity: str           # error | violation | failure | warning | info
    code: str               # the rule: syntax, name, refused, a violation's rule, assertion, ...
    function: str = ""      # the kernel function whose rule it is
    fix: Optional[str] = None   # a "did you mean" replacement of [col, end)
    related: tuple = ()     # ((line, col, end, message), ...) elsewhere in the file


@dataclass
class Symbol:
    """A task or an mm the scenario makes; ``line`` 0 for those that exist from boot."""
    kind: str               # task | mm
    name: str
    line: int
    col: int
    end: int
    stmt: object = None     # the statement that makes it
    detail: str = ""
    implicit_of: Optional[str] = None   # the task whose spawn/exec named this mm after itself
    block: Optional[str] = None         # the CPU whose block makes it


@dataclass
class Occurrence:
    kind: str               # task | mm | cpu
    name: str
    line: int
    col: int
    end: int
    definition: bool = False


@dataclass
class Checkpoint:
    ncalls: int             # statements stepped before it
    stmt_next: Optional[int]    # index in sc.stmts of the next one; None inside the blocks
    snap: tuple
    pending: object
    nsteps: int
    ndiags: int
    assertions: int


class _Recorder:
    """Remembers every step() of the runner of `mmscn run`, and checkpoints between them."""

    def __init__(self, runner, calls, checkpoints, stmt_next):
        self.runner = runner
        self.calls, self.checkpoints, self.stmt_next, self.since = calls, checkpoints, stmt_next, 0
        runner.on_step = self.stepped

    def stepped(self, st, cpu, outcome, ok):
        self.calls.append((st, cpu))
        if cpu is None:
            self.stmt_next += 1
        self.since += 1
        k = self.runner.k
        # never after a step that stopped the run: resuming there would run past the stop
        if ok and self.since * SPACING >= len(k.t_name) * 8 + len(k.m_name) * 14 + k.ncpus * 6:
            self.checkpoint(None if cpu is not None else self.stmt_next)

    def checkpoint(self, stmt_next):
        runner = self.runner
        r = runner.result
        self.checkpoints.append(Checkpoint(len(self.calls), stmt_next, runner.k.snapshot(), runner.pending_expect,
                                           len(r.steps), len(r.diagnostics), r.assertions))
        self.since = 0


@dataclass
class Run:
    """A finished run: the runner (its kernel is the state at the end), every step() it made."""
    runner: Runner
    lines: list             # the text it ran
    calls: list
    checkpoints: list
    rerun: int              # statements this run stepped itself (the rest came from the last run)
    by_line: dict = field(default_factory=dict)    # line -> [call index]
    top_lines: list = field(default_factory=list)  # lines of the calls outside blocks, in order

    def __post_init__(self):
        for i, (st, cpu) in enumerate(self.calls):
            self.by_line.setdefault(st.line, []).append(i)
            if cpu is None:
                self.top_lines.append(st.line)

    @property
    def result(self):
        return self.runner.result

    @property
    def kernel(self):
        return self.runner.k

    def kernel_after(self, call: int):
        """A kernel in the state after call ``call`` (-1: at boot), rebuilt from a checkpoint."""
        if call >= len(self.calls) - 1:
            return self.runner.k
        cps = self.checkpoints
        i = bisect.bisect_right([c.ncalls for c in cps], call + 1) - 1
        c = cps[max(i, 0)]
        r = Runner(self.runner.sc, self.lines, trace=False, policy=self.runner.policy, version=self.runner.k.version)
        r.k.restore(c.snap)
        r.pending_expect = c.pending
        for st, cpu in self.calls[c.ncalls:call + 1]:
            r.step(st, cpu)
        return r.k

    def last_call_before(self, line: int) -> int:
        """The last call outside the blocks on a line before ``line`` (-1 if none)."""
        n = bisect.bisect_left(self.top_lines, line)
        return n - 1

    def call_at(self, line: int, col: int) -> Optional[int]:
        """The call of the statement at (line, col): the last one starting at or before col."""
        best = None
        for i in self.by_line.get(line, ()):
            st = self.calls[i][0]
            if st.col <= col and (best is None or st.col >= self.calls[best][0].col):
                best = i
        if best is None and self.by_line.get(line):
            best = self.by_line[line][0]
        return best

    def step_of(self, call: int):
        st = self.calls[call][0]
        for s in reversed(self.result.steps):
            if s.stmt is st:
                return s
        return None

    def stop_line(self) -> Optional[int]:
        r = self.result
        if not r.stopped:
            return None
        return self.calls[-1][0].line if self.calls else None


@dataclass
class Result:
    version: object
    text: str
    lines: list
    problems: list
    scenario: Optional[A.Scenario] = None
    symbols: dict = field(default_factory=dict)       # (kind, name) -> Symbol
    occurrences: list = field(default_factory=list)
    run: Optional[Run] = None
    fresh: bool = True      # the run is of this text (False: of the last text that resolved)
    previous: Optional["Result"] = None     # when not fresh: the last result that resolved
    _by_line: Optional[dict] = None

    def occurrence_at(self, line: int, col: int) -> Optional[Occurrence]:
        if self._by_line is None:
            self._by_line = {}
            for o in self.occurrences:
                self._by_line.setdefault(o.line, []).append(o)
        for o in self._by_line.get(line, ()):
            if o.col <= col < o.end:
                return o
        return None

    def occurrences_of(self, kind: str, name: str) -> list:
        return [o for o in self.occurrences if o.kind == kind and o.name == name]


class _SyntaxFailed(ParseFailed):
    pass


class Analysis:
    """One document's analyses, in order; keeps the last run for the next update."""

    def __init__(self, path: str):
        self.path = path
        self.last: Optional[Run] = None
        self.last_result: Optional[Result] = None

    def update(self, text: str, version=None) -> Result:
        try:
            return self._update(text, version)
        except Exception as e:     # a bug of ours: say so where the user looks, never die
            self.last = self.last_result = None
            msg = f"mmscn lsp: internal error: {type(e).__name__}: {e}; please report it with the scenario"
            return Result(version, text, text.split("\n"), [Problem(1, 1, 2, msg, "error", "internal")])

    def _update(self, text: str, version) -> Result:
        lines = text.split("\n")
        try:
            return self._resolved(text, lines, version)
        except ParseFailed as e:
            problems = [_problem(d, lines, "syntax" if isinstance(e, _SyntaxFailed) else "name")
                        for d in e.diagnostics]
        # a text that does not resolve: its problems, and for the lines before the first of
        # them the last text that resolved, or the part of this one before it
        first = min(p.line for p in problems)
        prev = self.last_result
        if first > 1 and (prev is None or (first_difference(prev.lines, lines) or first) < first):
            try:
                self._resolved("\n".join(lines[:first - 1]), lines[:first - 1], version)
            except ParseFailed:
                pass
        return Result(version, text, lines, problems, fresh=False, previous=self.last_result)

    def _resolved(self, text: str, lines: list, version) -> Result:
        """The Result of a text that parses and resolves, run; ParseFailed otherwise."""
        arches = known_arches()
        try:
            items = parse_items(text, self.path, arches.names)
        except ParseFailed as e:
            raise _SyntaxFailed(e.diagnostics)
        sc = resolve_more(items, lines, self.path, A.Scenario(self.path), {}, {INIT_MM_NAME}, arches)
        symbols, occurrences = names(sc)
        run = self._run(sc, lines)
        self.last = run
        self.last_result = Result(version, text, lines, run_problems(run, lines), sc, symbols, occurrences, run)
        return self.last_result

    def _run(self, sc: A.Scenario, lines: list) -> Run:
        old = self.last
        r = Runner(sc, lines, version=_kernel(sc))
        resume = _resume_point(old, sc, lines) if old is not None else None
        if resume is None:
            rec = _Recorder(r, [], [], 0)
            rec.checkpoint(0)
        else:
            c, ci = resume
            r.k.restore(c.snap)
            r.pending_expect = c.pending
            res, was = r.result, old.result
            res.steps, res.diagnostics, res.assertions = was.steps[:c.nsteps], was.diagnostics[:c.ndiags], c.assertions
            rec = _Recorder(r, old.calls[:c.ncalls], old.checkpoints[:ci + 1], c.stmt_next)
        done = len(rec.calls)
        start = rec.stmt_next
        r.sc = dataclasses.replace(sc, stmts=sc.stmts[start:]) if start else sc
        try:
            r.run()
        finally:
            r.sc = sc
        return Run(r, lines, rec.calls, rec.checkpoints, len(rec.calls) - done)


def _kernel(sc: A.Scenario):
    """The kernel the file's header names, under its first `expect` line (mmscn/kernels.py);
    None (the arch's) when it cannot be built: the run reports the arch."""
    from mmscn import kernels
    try:
        return kernels.judgements(sc)[0].version
    except Exception:
        return None


def _resume_point(old: Run, sc: A.Scenario, lines: list):
    """(checkpoint, its index) of the last run to go on from, or None for a run from boot."""
    was = old.runner.sc
    if (was.arch, was.ncpus, was.kernel, was.reverts, was.configs) != \
            (sc.arch, sc.ncpus, sc.kernel, sc.reverts, sc.configs):
        return None
    n = first_difference(old.lines, lines)
    if n is None:
        n = len(lines) + 1
    # statements before line n are unchanged; a checkpoint is usable if all it ran is before n
    unchanged = bisect.bisect_left([st.line for st in sc.stmts], n)
    best = None
    for i, c in enumerate(old.checkpoints):
        if c.stmt_next is None or c.stmt_next > unchanged:
            break
        if c.ncalls and old.calls[c.ncalls - 1][0].line >= n:
            break
        best = (c, i)
    return best


def first_difference(a: list, b: list) -> Optional[int]:
    """The first line (1-based) where two texts differ, None if they are the same."""
    if a == b:
        return None
    lo, hi = 0, min(len(a), len(b))
    # equal prefixes compare fast as slices; halve down to the first differing line
    while lo < hi:
        mid = (lo + hi) // 2
        if a[lo:mid + 1] == b[lo:mid + 1]:
            lo = mid + 1
        else:
            hi = mid
    return lo + 1


# ---- problems ------------------------------------------------------------------

def _problem(d, lines: list, code: str) -> Problem:
    col, end = token_span(lines, d.line, d.col)
    m = _DID_YOU_MEAN.search(d.message)
    return Problem(d.line, col, end, d.message, "error", code, function_of(d), m.group(1) if m else None)


def function_of(d) -> str:
    """The kernel function a located failure names in its note (diagnostics.rule_notes writes them)."""
    for n in d.notes:
        for head in ("the rule is in ", "checked by "):
            if n.startswith(head):
                return n[len(head):]
    return ""


def run_problems(run: Run, lines: list) -> list:
    """The run's failures, each with its rule: what `mmscn run` prints, located."""
    out = []
    by_line = {}
    for s in run.result.steps:
        by_line[s.stmt.line] = s
    for d in run.result.diagnostics:
        s = by_line.get(d.line)
        if d.severity == "violation":
            code = d.message.split(":", 1)[0]
        elif d.severity == "error":
            code = "refused"
        elif d.message.startswith("assertion failed"):
            code = "assertion"
        elif d.message.startswith("deadlock"):
            code = "deadlock"
        elif d.message.startswith("final"):
            code = "final"
        else:
            code = "expectation"
        if s is not None and s.status in (REFUSED, VIOLATION) and d.col == s.stmt.col:
            col, end = statement_span(lines, d.line, d.col)    # the statement the kernel refused
        else:
            col, end = token_span(lines, d.line, d.col)
        out.append(Problem(d.line, col, end, d.message, d.severity, code, function_of(d)))
    r = run.result
    if r.scenario.outcome == "fail" and not r.failed:
        out.append(Problem(1, 1, 2, "the header says `expect fail`, but everything held", "failure", "expectation"))
    return out


def token_span(lines: list, line: int, col: int) -> tuple:
    """(col, end) of the word at a 1-based position; one column at the end of a line."""
    text = lines[line - 1] if 0 < line <= len(lines) else ""
    col = max(1, col)
    m = _NAME_AT.match(text, col - 1) if col - 1 < len(text) else None
    return (col, col + len(m.group())) if m else (col, col + 1)


def statement_span(lines: list, line: int, col: int) -> tuple:
    """(col, end) of the statement starting at col: up to `;`, `#` or the end of the line."""
    text = lines[line - 1] if 0 < line <= len(lines) else ""
    rest = re.split(r"[;#]", text[col - 1:], maxsplit=1)[0].rstrip()
    return col, col + max(1, len(rest))


# ---- names ---------------------------------------------------------------------

def names(sc: A.Scenario) -> tuple:
    """(symbols, occurrences): where each task and mm is made, and every name as written."""
    symbols = {}
    for i in range(sc.ncpus):
        symbols[("task", f"idle{i}")] = Symbol("task", f"idle{i}", 0, 0, 0, detail=f"cpu{i}'s idle task")
    symbols[("mm", INIT_MM_NAME)] = Symbol("mm", INIT_MM_NAME, 0, 0, 0, detail="init_mm, static")
    taken = {INIT_MM_NAME}
    defs = set()

    def make(st, block):
        cpu = block.cpu.text if block is not None else None
        if isinstance(st, (A.Spawn, A.SpawnThread, A.SpawnKthread)):
            t = st.task
            detail = {A.Spawn: "user task (fork)", A.SpawnKthread: "kernel thread"}.get(
                type(st), f"thread of {getattr(st, 'parent', t).text} (clone CLONE_VM)")
            symbols.setdefault(("task", t.text), Symbol("task", t.text, t.line, t.col, t.col + len(t.text), st,
                                                        detail, block=cpu))
            defs.add((t.line, t.col))
        if isinstance(st, (A.Spawn, A.Exec)):
            if st.mm is not None:
                m = st.mm
                name, pos, implicit = m.text, m, None
                defs.add((m.line, m.col))
            else:
                name, pos, implicit = fresh_mm_name(st.task.text, taken), st.task, st.task.text
            taken.add(name)
            verb = "fork" if isinstance(st, A.Spawn) else "exec"
            symbols.setdefault(("mm", name), Symbol("mm", name, pos.line, pos.col, pos.col + len(pos.text), st,
                                                    f"mm of {st.task.text} ({verb}, mm_alloc)", implicit, cpu))

    # the resolver's order: the straight-line part, then every block
    for st in sc.stmts:
        make(st, None)
    for b in sc.blocks:
        for st in b.stmts:
            make(st, b)
    occ = []
    _walk([sc.stmts, sc.blocks, sc.final], occ)
    for o in occ:
        o.definition = (o.line, o.col) in defs
    occ.sort(key=lambda o: (o.line, o.col))
    return symbols, occ


def _walk(x, out: list) -> None:
    if isinstance(x, A.Ref):
        out.append(Occurrence(ref_kind(x.text), x.text, x.line, x.col, x.col + len(x.text)))
    elif isinstance(x, A.Value):
        if x.kind in ("mm", "task", "cpu"):
            out.append(Occurrence(x.kind, x.text, x.line, x.col, x.col + len(x.text)))
        elif x.kind == "cpuset":
            _walk(x.text, out)
    elif isinstance(x, (list, tuple)):
        for y in x:
            _walk(y, out)
    elif dataclasses.is_dataclass(x):
        for f in dataclasses.fields(x):
            if f.name not in ("line", "col"):
                _walk(getattr(x, f.name), out)


def ref_kind(text: str) -> str:
    if text.startswith("@"):
        return "mm"
    if re.fullmatch(r"cpu[0-9]+", text):
        return "cpu"
    return "task"


def fields_in(sc: A.Scenario) -> list:
    """Every field of a condition, with the statement it is read in: [(Field, stmt or Final)]."""
    out = []

    def conds(cs, owner):
        out.extend((c, owner) for c in A.leaves(cs) if isinstance(c, A.Cmp))

    for st in sc.stmts + [s for b in sc.blocks for s in b.stmts]:
        if isinstance(st, A.Assert):
            conds(st.conds, st)
    if sc.final is not None:
        conds(sc.final.conds, sc.final)
    return out


def block_ranges(sc: A.Scenario, lines: list) -> list:
    """(block, first line, last line): a block runs to the `}` that closes it."""
    out = []
    for b in sc.blocks:
        depth, end = 0, b.line
        for ln in range(b.line, len(lines) + 1):
            s = re.sub(r'"[^"]*"?', "", lines[ln - 1].split("#", 1)[0])
            if ln == b.line:
                s = s[b.col - 1:]
            for ch in s:
                depth += {"{": 1, "}": -1}.get(ch, 0)
            end = ln
            if depth <= 0:
                break
        out.append((b, b.line, end))
    return out
