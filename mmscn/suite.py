"""`mmscn test`: a tree of scenarios as a regression suite.

Every `.mmscn` file below the given paths runs (sorted by path, so the order
is the same everywhere), each in a worker process that a `--timeout` can
kill.  A file passes when it behaves as its header says: `expect pass` (the
default) holds when nothing fails, `expect fail` when something does, the
way a litmus test's `Result:` line states its outcome.  A file that does not
parse fails; a file whose `arch` names a policy that is not installed is
skipped.  Golden traces (`--update` writes them) pin the trace itself: a run
whose trace differs from its golden fails with a unified diff.

`judge()` is the one place a file is run and judged: `mmscn test` and the
pytest plugin (mmscn/pytest_plugin.py) both call it.  Only the standard
library, dsl/diagnostics.py and mmscn/formats.py (both standard library
only) are imported at module level: the CLI imports this module at start-up.
"""
from __future__ import annotations

import contextlib
import os
import sys
import time

from mmscn import formats
from mmscn.dsl.diagnostics import plural, printable, read_error
from mmscn.formats import Format, use_color

PASS, FAIL, SKIP = "PASS", "FAIL", "SKIP"
GOLDEN_SUFFIX = ".trace"
# A failure shows at most this many statements of the trace before it.
TRACE_STEPS = 60


class Outcome:
    """How one file fared; plain strings only, so a worker process can send it.

    (A plain class, not a dataclass: the CLI imports this module at start-up.)
    """

    def __init__(self, path: str, status: str = PASS, reason: str = "", where: str = "", details: str = "",
                 trace: str = "", hint: str = "", seconds: float = 0.0):
        self.path = path
        self.status = status
        self.reason = reason        # one line: why it failed or was skipped
        self.where = where          # ":LINE:COL" of the first failure, when it has one
        self.details = details      # the failures, located, with carets
        self.trace = trace          # the trace up to the failures, for pytest's report
        self.hint = hint            # the command that shows more
        self.diff = ""              # unified diff golden -> this run
        self.golden_written = False
        self.unwritable = False     # --update was refused (or failed) to write the golden: exit 2
        self.seconds = seconds
        self.notes: list = []       # further reasons (a changed golden after a failed run)
        self.svg = ""               # a failure's timeline, for --html (mmscn/pictures/html.py)
        self.verdicts: list = []    # a file with several `expect` lines: (heading, verdict) per line
        self.failing = None         # the Judgement that failed first, for its timeline (not sent on)

    def report(self) -> str:
        """Everything known about a failed file: located failures, notes, the golden diff."""
        parts = []
        if self.details:
            parts.append(self.details)
        elif self.trace:
            parts.append(self.trace)
        for n in self.notes:
            parts.append(f"{self.path}: also: {n}")
        if self.diff:
            parts.append(self.diff)
        if self.hint and self.details:
            parts.append(f"  ({self.hint})")
        return "\n".join(parts)

    def headline(self) -> str:
        """FILE[:LINE:COL]: why: what `mmscn test`, JUnit XML and pytest's summary show."""
        return f"{self.path}{self.where}: {self.reason}"

    def line(self) -> str:
        return f"PASS {self.path}" if self.status == PASS else f"{self.status} {self.headline()}"

    def verdict_lines(self) -> list:
        """A file with several `expect` lines: the verdict of each, under its line()."""
        return [f"       {h}: {v}" for h, v in self.verdicts]


# ====================================================================== one file
def golden_path(path: str, golden_dir: str | None = None) -> str:
    """FILE.mmscn.trace next to the file, or DIR/<path relative to the working directory>.trace."""
    if golden_dir is None:
        return path + GOLDEN_SUFFIX
    rel = os.path.relpath(os.path.abspath(path))
    if rel == os.pardir or rel.startswith(os.pardir + os.sep):
        raise ValueError(f"{path} is outside the working directory, so it has no place under --golden-dir; "
                         f"run mmscn test from a directory above it")
    return os.path.join(golden_dir, rel + GOLDEN_SUFFIX)


def judge(path: str, golden: str | None = None, update: bool = False, need_golden: bool = False,
          explore: bool = False, tree: tuple = (".",), draw: bool = False, kernel: str | None = None,
          reverts: tuple = ()) -> Outcome:
    """Run one file and judge it; compare with (or with `update`, write) its golden trace.

    ``golden`` is the golden file's path (None: no golden); ``need_golden``
    makes a missing golden a failure instead of a file checked by its header
    only.  ``explore`` judges a scenario with per-CPU blocks by every
    interleaving (`mmscn explore`) instead of the run's round robin.
    ``tree``: the folders `update` may write goldens in (the suite's).
    ``draw``: a failure gets its timeline as SVG in ``svg`` (for --html).
    ``kernel``, ``reverts``: `mmscn test --kernel/--revert` (mmscn/kernels.py).
    A file with several `expect` lines is judged under each (one verdict each, in
    ``verdicts``); it fails when one of them does.
    """
    t0 = time.perf_counter()
    try:
        out = _judge(path, golden, update, need_golden, explore, tree, kernel, reverts)
        if draw and out.status == FAIL:
            from mmscn.pictures.html import failure_svg
            out.svg = failure_svg(path, explore, out.failing)
        out.failing = None
    except Exception as e:   # a bug in mmscn itself: still one failed file, not a crashed suite
        import traceback
        tb = traceback.extract_tb(e.__traceback__)
        at = f" (at {os.path.basename(tb[-1].filename)}:{tb[-1].lineno})" if tb else ""
        out = Outcome(path, FAIL, f"internal error in mmscn: {type(e).__name__}: {e}{at}")
    out.seconds = time.perf_counter() - t0
    return out


def _judge(path, golden, update, need_golden, explore, tree, kernel=None, reverts=()) -> Outcome:
    from mmscn import kernels
    from mmscn.dsl.parser import ParseFailed
    from mmscn.dsl.resolve import Arches, load_file
    from mmscn.interpreter import policies
    from mmscn.interpreter.arches import known_kernels
    from mmscn.interpreter.runner import Runner

    try:
        # the arch is checked below: an unknown one skips the file
        sc, text = load_file(path, Arches(policies.KnownArches(), check=False, kernels=known_kernels()))
    except ParseFailed as e:
        ds = e.diagnostics
        more = f" (and {plural(len(ds) - 1, 'more error')})" if len(ds) > 1 else ""
        text = "\n".join(d.render() for d in ds)
        return Outcome(path, FAIL, ds[0].message + more, f":{ds[0].line}:{ds[0].col}", text, trace=text)
    except OSError as e:
        return Outcome(path, FAIL, read_error(e))
    if sc.arch not in policies.KnownArches():
        return Outcome(path, SKIP, f"arch `{sc.arch}` is not installed (known: {', '.join(policies.names())})")
    lines = text.split("\n")
    out = Outcome(path, hint=f"mmscn run {path} shows the whole trace")
    runs = []       # (Judgement, RunResult)
    try:
        judged = kernels.from_args(sc, _Flags(kernel, reverts))
        for j in judged:
            cut = [0]   # how many steps had run when the run reported its last failure
            runner = Runner(j.scenario, lines, version=j.version,
                            on_diagnostic=lambda d, cut=cut: cut.__setitem__(0, len(runner.result.steps)))
            r = runner.run()
            runs.append((j, r))
            if kernels.by_explore(sc, explore):
                said = _judge_by_explore(out, j, lines)
            else:
                said = kernels.run_verdict(r)
                if not r.passed:
                    _run_failure(out, j, r, lines, cut[0], path)
            if j.several:
                out.verdicts.append((j.heading(), said))
    except (kernels.FlagError, policies.UnknownPolicy) as e:
        return Outcome(path, FAIL, str(e))
    if golden is not None:
        _golden(out, golden, lambda: golden_text(runs, lines, os.path.basename(path), kernels.names_kernel(
            sc, _Flags(kernel, reverts))), update, need_golden, tree)
    return out


class _Flags:
    """`mmscn test --kernel/--revert` as mmscn/kernels.py reads a command's arguments."""

    def __init__(self, kernel, revert):
        self.kernel, self.revert, self.arch = kernel, list(revert), None


def _run_failure(out: Outcome, j, r, lines, cut: int, path: str) -> None:
    """The first verdict that failed, as the file's reason; a later one adds nothing."""
    if out.status == FAIL:
        return
    out.status, out.failing = FAIL, j
    at = f"{j.expect.label()}: " if j.several else ""
    if r.failed:
        d = r.diagnostics[0]
        out.where, out.reason = f":{d.line}:{d.col}", at + d.message
        out.details = "\n".join(d.render() for d in r.diagnostics)
    else:
        from mmscn.interpreter.report import summary_line
        out.reason = at + "the header says `expect fail`, but the scenario ran without a failure"
        out.details = f"{path}: {summary_line(r)}"
    out.trace = failure_trace(r, lines, cut, path)


def _judge_by_explore(out: Outcome, j, lines) -> str:
    """The verdict of every interleaving, reported as `mmscn explore -q` does; returns it in words."""
    from mmscn.explore import verdict_text
    from mmscn.interpreter import explore as X
    from mmscn.kernels import verdict

    sc = j.scenario
    model = X.Model(sc, lines, version=j.version)
    res = X.prologue_result(model) or X.Explorer(model).run()
    said = verdict(sc.outcome, res.holds is False, res.failure)
    if res.passed or out.status == FAIL:
        return said
    out.status, out.failing = FAIL, j
    out.hint = f"mmscn explore {sc.path} --witness OUT writes the interleaving as a scenario"
    at = f"{j.expect.label()}: " if j.several else ""
    f = res.failure
    if f is not None:
        out.where, out.reason = f":{f.line}:{f.col}", at + f.message
    else:
        head, detail = verdict_text(model, res)
        out.reason = at + (f"every interleaving {head}: {detail}; the header says `expect fail`" if head == "holds"
                           else f"mmscn explore: {detail}")
    text = formats.render("explore", "text", [(model, res, X.failing_steps(model, res))], quiet=True)
    out.trace = out.details = text.rstrip("\n")
    return said


def failure_trace(r, lines, cut: int, path: str) -> str:
    """The run's text report cut after the statement of its last failure, at most TRACE_STEPS of it."""
    import io

    from mmscn.interpreter.report import write_text
    cut = cut or len(r.steps)
    start = max(0, cut - TRACE_STEPS)
    buf = io.StringIO()
    write_text(r, lines, buf, steps=r.steps[start:cut])
    text = buf.getvalue().rstrip("\n").split("\n")
    if cut < len(r.steps):
        n = len(r.steps) - cut
        first = r.diagnostics[0].render().split("\n")[0]
        at = text.index(first) if first in text else len(text) - 2
        text.insert(at, f"  ... {plural(n, 'later statement')}")
    if start:
        text.insert(2, f"  ... {plural(start, 'earlier statement')} (mmscn run {path} "
                       f"shows them all)")
    return "\n".join(text)


def golden_text(runs, lines, name: str, names_kernel: bool = False) -> str:
    """What `mmscn run` prints of the file (plain text), the file called by its base name:
    the same bytes on every machine.  ``runs``: (Judgement, RunResult) per `expect` line;
    ``names_kernel``: the file names a kernel word (its trace has the kernel's heading)."""
    import copy
    import dataclasses

    from mmscn.kernels import Verdicts

    def renamed(r):
        g = copy.copy(r)
        g.scenario = dataclasses.replace(r.scenario, path=name)
        g.diagnostics = [dataclasses.replace(d, path=name) for d in r.diagnostics]
        return g
    if len(runs) > 1:
        report = (Verdicts([j for j, _ in runs], [renamed(r) for _, r in runs]), lines, None)
    else:
        j, r = runs[0]
        report = (renamed(r), lines, None, j if names_kernel else None)
    return formats.render("run", "text", [report], quiet=False, color=False)


def _golden(out: Outcome, golden: str, make_text, update: bool, need_golden: bool, tree=(".",)) -> None:
    """Compare the run's trace with its golden, or (update) write it; the trace is
    rendered only when there is a golden to compare with or one to write.  An existing
    golden is replaced without --force, but only inside ``tree`` and never through a symlink."""
    try:
        old = _read(golden)
    except FileNotFoundError:
        old = None
    except (OSError, UnicodeDecodeError) as e:
        if not update:       # --update overwrites an unreadable golden
            _fail(out, f"cannot read the golden trace {golden}: {getattr(e, 'strerror', None) or e}")
            return
        old = None
    if old is None and not update:
        if need_golden:
            _fail(out, f"no golden trace {golden} (mmscn test --update writes it)")
        return
    text = make_text()
    if update:
        if old != text:
            from mmscn.dsl.files import Unwritable, write_file
            try:
                write_file(golden, text, within=tree, parents=True)
            except Unwritable as e:
                out.unwritable = True
                _fail(out, f"cannot write the golden trace {e}")
                return
            out.golden_written = True
        return
    if old == text:
        return
    import difflib
    a, b = old.splitlines(), text.splitlines()
    out.diff = "\n".join(difflib.unified_diff(a, b, golden, "this run", lineterm=""))
    body = out.diff.split("\n")[2:]
    minus, plus = sum(ln[:1] == "-" for ln in body), sum(ln[:1] == "+" for ln in body)
    _fail(out, f"the trace differs from its golden {golden} (-{minus} +{plus} lines; "
               f"mmscn test --update accepts it)")


def _fail(out: Outcome, reason: str) -> None:
    """A second reason (the golden) after a run failure stays a note; alone it is the reason."""
    if out.status == FAIL:
        out.notes.append(reason)
    else:
        out.status, out.reason, out.where = FAIL, reason, ""


def _read(path: str) -> str:
    from mmscn.dsl.files import read_source
    return read_source(path).decode("utf-8")


# ====================================================================== the suite
def discover(paths: list) -> list:
    """Every .mmscn file below the paths, each once, sorted; hidden directories are left out."""
    found = []
    for p in paths:
        if os.path.isdir(p):
            for dirpath, dirnames, filenames in os.walk(p):
                dirnames[:] = [d for d in dirnames if not d.startswith(".")]
                found += [os.path.join(dirpath, f) for f in filenames if f.endswith(".mmscn")]
        else:
            found.append(p)
    seen, files = set(), []
    for f in sorted(found, key=lambda f: os.path.normpath(f).split(os.sep)):
        key = os.path.realpath(f)
        if key not in seen:
            seen.add(key)
            files.append(os.path.normpath(f))
    return files


def _serve(conn) -> None:
    """A pool worker: judge each job it is sent, until it is sent None (or its pipe closes)."""
    import signal
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # ^C is the parent's to handle: it kills the workers
    try:
        while True:
            job = conn.recv()
            if job is None:
                break
            conn.send(judge(*job))
    except (EOFError, OSError):
        pass
    finally:
        conn.close()


def run_jobs(jobs: list, njobs: int, timeout: float | None, done) -> None:
    """judge(*job) for every job on a pool of at most njobs worker processes; done(i, outcome) as each ends.

    The workers are forked once (with the interpreter loaded) and each judges one file after
    another: forking a process per file cost more than judging a small file.  A file that runs
    past `timeout` seconds has its worker killed (SIGKILL), whatever it was doing, and is
    reported as a failure; so is one whose worker dies; a fresh worker takes the dead one's place.
    """
    import multiprocessing as mp
    from collections import deque

    ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    todo = deque(enumerate(jobs))
    pool = {}           # connection -> [process, index of the job it runs or None, deadline]
    try:
        _run_jobs(ctx, jobs, todo, pool, min(njobs, len(jobs)), timeout, done)
        for conn, (p, _, _) in pool.items():
            try:
                conn.send(None)
            except OSError:
                pass
        for conn, (p, _, _) in list(pool.items()):
            p.join(5)
    finally:                # ^C or an error here: no worker outlives the suite
        for conn, (p, _, _) in pool.items():
            if p.is_alive():
                p.kill()
            p.join()
            conn.close()


@contextlib.contextmanager
def _sigint_held():
    """Block SIGINT for the duration (where the platform can); a ^C meanwhile arrives after."""
    import signal
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _run_jobs(ctx, jobs, todo, pool, size, timeout, done) -> None:
    from multiprocessing.connection import wait

    def retire(conn):
        p = pool.pop(conn)[0]
        if p.is_alive():
            p.kill()
        p.join()
        conn.close()

    while todo or any(w[1] is not None for w in pool.values()):
        while len(pool) < size and todo:
            mine, theirs = ctx.Pipe(duplex=True)
            p = ctx.Process(target=_serve, args=(theirs,), daemon=True)
            # ^C between the fork and `pool` would leave a worker nobody kills (it
            # holds our stdout open): SIGINT waits until the worker is on the books
            with _sigint_held():
                p.start()
                pool[mine] = [p, None, None]
            theirs.close()
        for conn, w in pool.items():
            if w[1] is None and todo:
                i, job = todo.popleft()
                try:
                    conn.send(job)
                except OSError:         # died idle: its job is judged as a death below
                    pass
                w[1], w[2] = i, time.monotonic() + timeout if timeout else None
        busy = [c for c, w in pool.items() if w[1] is not None]
        deadlines = [w[2] for w in pool.values() if w[2] is not None]
        left = max(0.0, min(deadlines) - time.monotonic()) if deadlines else None
        for conn in wait(busy, left):
            p, i, _ = pool[conn]
            try:
                out = conn.recv()
            except (EOFError, OSError):
                p.join()
                out = Outcome(jobs[i][0], FAIL, f"the worker process died (exit status {p.exitcode})")
                retire(conn)
            else:
                pool[conn][1] = pool[conn][2] = None
            done(i, out)
        now = time.monotonic()
        for conn, (p, i, d) in list(pool.items()):
            if d is not None and now >= d and not conn.poll():
                retire(conn)
                done(i, Outcome(jobs[i][0], FAIL, f"timed out after {timeout:g} s (the worker running it "
                                                  f"was killed)", seconds=timeout))


def junit_xml(outcomes: list, seconds: float) -> bytes:
    """JUnit XML as Jenkins, GitLab and GitHub test reporters read it."""
    import re
    import xml.etree.ElementTree as ET

    def clean(s: str) -> str:      # the terminal's sanitiser, then what XML 1.0 cannot carry (lone surrogates)
        return re.sub(r"[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]", "?", printable(s, lines=True))

    fails = sum(o.status == FAIL for o in outcomes)
    skips = sum(o.status == SKIP for o in outcomes)
    root = ET.Element("testsuites", name="mmscn test", tests=str(len(outcomes)), failures=str(fails),
                      errors="0", skipped=str(skips), time=f"{seconds:.3f}")
    suite = ET.SubElement(root, "testsuite", name="mmscn", tests=str(len(outcomes)), failures=str(fails),
                          errors="0", skipped=str(skips), time=f"{seconds:.3f}")
    for o in outcomes:
        d, base = os.path.split(o.path)
        case = ET.SubElement(suite, "testcase", classname=clean(d.replace(os.sep, ".") or "."), name=clean(base),
                             file=clean(o.path), time=f"{o.seconds:.3f}")
        if o.status == FAIL:
            f = ET.SubElement(case, "failure", message=clean(o.headline()))
            f.text = clean(o.report())
        elif o.status == SKIP:
            ET.SubElement(case, "skipped", message=clean(o.reason))
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"


class SuiteText(Format):
    """A line per file as it is judged (PASS, FAIL with its first reason, SKIP), then the failures
    in full and `N passed, N failed`."""
    MARK = {PASS: "\x1b[32mPASS\x1b[0m", FAIL: "\x1b[1;31mFAIL\x1b[0m", SKIP: "\x1b[33mSKIP\x1b[0m"}

    def __init__(self, out, **opts):
        super().__init__(out, **opts)
        self.outcomes: list = []

    def item(self, o) -> None:
        self.outcomes.append(o)
        if self.opts.get("quiet") and o.status != FAIL:
            return
        line = printable(o.line())
        if self.opts.get("color"):
            line = self.MARK[o.status] + line[4:]
        self.out.write(line + "\n")
        for v in o.verdict_lines():
            self.out.write(printable(v) + "\n")
        self.out.flush()

    def end(self) -> None:
        results, w = self.outcomes, self.out.write
        failed = [o for o in results if o.status == FAIL]
        texts = [printable(t, lines=True) for t in (o.report() for o in failed) if t] if not self.opts.get("quiet") else []
        for t in texts:
            w("\n" + t + "\n")
        if texts:
            w("\n")
        if self.opts.get("update"):
            written = sum(o.golden_written for o in results)
            w(f"{plural(written, 'golden trace')} written\n")
        n_pass = sum(o.status == PASS for o in results)
        n_skip = sum(o.status == SKIP for o in results)
        w(f"{n_pass} passed, {len(failed)} failed" + (f", {n_skip} skipped" if n_skip else "") + "\n")


class SuiteJUnit(Format):
    """JUnit XML (--junit-xml FILE); ``seconds`` is the suite's time."""

    def __init__(self, out, **opts):
        super().__init__(out, **opts)
        self.outcomes: list = []

    def item(self, o) -> None:
        self.outcomes.append(o)

    def end(self) -> None:
        self.out.write(junit_xml(self.outcomes, self.opts["seconds"]).decode("utf-8"))


# ====================================================================== command line
def add_arguments(p) -> None:
    from mmscn.options import positive_float, positive_int
    p.description = ("Run every .mmscn file below the paths as a regression suite: one line per file "
                     "(PASS, FAIL with the first reason, SKIP), the failures in full, then `N passed, "
                     "N failed`. A file passes when it behaves as its header says (`expect fail` passes "
                     "when it fails); a file that does not parse fails; one whose `arch` is not installed "
                     "is skipped. Golden traces (--update) also pin each trace.")
    p.epilog = ("exit status: 0 every file passed or was skipped; 1 some file failed (including parse "
                "errors, timeouts, changed traces); 2 bad command line, a path that does not exist, "
                "no scenario found, or a file it was to write could not be written (--junit-xml, a golden "
                "under --update). See docs/regression.md.")
    p.add_argument("paths", nargs="+", metavar="PATH", help="scenario files or directories (searched recursively)")
    p.add_argument("-j", "--jobs", type=positive_int, default=1, metavar="N",
                   help="run N files at once, each in its own process (default 1)")
    p.add_argument("--timeout", type=positive_float, metavar="S",
                   help="fail (and kill) a file that runs longer than S seconds")
    p.add_argument("--junit-xml", metavar="FILE", help="also write the results as JUnit XML (a new file; "
                   "--force replaces an existing one)")
    p.add_argument("--html", metavar="FILE", help="also write one self-contained HTML page: every file's "
                   "verdict and time, each failure with its message and timeline (a new file; --force "
                   "replaces one; docs/pictures.md)")
    p.add_argument("--force", action="store_true", help="let --junit-xml and --html replace an existing file")
    p.add_argument("--update", action="store_true",
                   help="write each scenario's trace as its golden (FILE.mmscn.trace, or under --golden-dir); "
                        "an existing golden is replaced, but only inside the paths given (or --golden-dir) "
                        "and never through a symlink")
    p.add_argument("--golden-dir", metavar="DIR",
                   help="keep goldens in DIR, mirroring the paths below the working directory; then every "
                        "scenario must have one (next to the files, goldens are optional per file)")
    p.add_argument("--explore", action="store_true",
                   help="judge scenarios with per-CPU blocks by every interleaving (mmscn explore), not "
                        "the run's round robin")
    p.add_argument("-q", "--quiet", action="store_true", help="print only failing files and the summary")
    from mmscn.kernels import add_arguments as kernel_arguments
    kernel_arguments(p, "run every file on this kernel release (replaces each header's `kernel`)")


def run(args) -> int:
    from mmscn.exits import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK
    from mmscn.dsl.files import Unwritable, check_target, write_file

    missing = [p for p in args.paths if not os.path.exists(p)]
    if missing:
        for p in missing:
            sys.stderr.write(f"mmscn test: {printable(p)}: no such file or directory\n")
        return EXIT_BAD_INPUT
    from mmscn import kernels
    try:    # the command line's own mistakes now; a --revert that a file's arch lacks fails that file
        if args.kernel is not None:
            kernels.check_release(args.kernel)
        kernels.flag_reverts(args.revert, None)
    except kernels.FlagError as e:
        sys.stderr.write(f"mmscn test: {e}\n")
        return EXIT_BAD_INPUT
    files = discover(args.paths)
    if not files:
        sys.stderr.write(f"mmscn test: no .mmscn files below {printable(' '.join(args.paths))}\n")
        return EXIT_BAD_INPUT
    # --update writes goldens only in the suite's own tree: the folders given (a file's folder)
    tree = (args.golden_dir,) if args.golden_dir is not None else \
        tuple(p if os.path.isdir(p) else os.path.dirname(p) or "." for p in args.paths)
    try:
        jobs = [(f, golden_path(f, args.golden_dir), args.update,
                 args.golden_dir is not None, args.explore, tree, args.html is not None, args.kernel,
                 tuple(args.revert)) for f in files]
        if args.junit_xml:      # refused now, not after the whole suite has run
            check_target(args.junit_xml, force=args.force)
        if args.html:
            check_target(args.html, force=args.force)
    except ValueError as e:
        sys.stderr.write(f"mmscn test: {printable(str(e))}\n")
        return EXIT_BAD_INPUT
    except Unwritable as e:
        sys.stderr.write(f"mmscn test: {e}\n")
        return EXIT_BAD_INPUT
    # Loaded once here, the interpreter is shared by every forked worker.
    import mmscn.interpreter.report  # noqa: F401
    import mmscn.interpreter.runner  # noqa: F401
    from mmscn.dsl.parser import lark_parser
    lark_parser()

    shown = formats.chosen("test", args)(sys.stdout, quiet=args.quiet, color=use_color(sys.stdout), update=args.update)
    results: list = [None] * len(files)
    printed = 0
    t0 = time.perf_counter()

    def done(i, out):
        nonlocal printed
        results[i] = out
        while printed < len(results) and results[printed] is not None:     # in path order
            shown.item(results[printed])
            printed += 1

    run_jobs(jobs, args.jobs, args.timeout, done)
    seconds = time.perf_counter() - t0
    shown.end()
    failed = [o for o in results if o.status == FAIL]
    if args.junit_xml:
        try:
            write_file(args.junit_xml, formats.render("test", "junit", [(o,) for o in results], seconds=seconds),
                       force=args.force, parents=True)
        except Unwritable as e:
            sys.stderr.write(f"mmscn test: {e}\n")
            return EXIT_BAD_INPUT
    if args.html:
        try:
            write_file(args.html, formats.render("test", "html", [(o,) for o in results], seconds=seconds),
                       force=args.force, parents=True)
        except Unwritable as e:
            sys.stderr.write(f"mmscn test: {e}\n")
            return EXIT_BAD_INPUT
    if any(o.unwritable for o in results):
        return EXIT_BAD_INPUT
    return EXIT_FAILED if failed else EXIT_OK
