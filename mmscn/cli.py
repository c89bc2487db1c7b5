"""The `mmscn` command line: `run` and `check` here, the other commands in
the modules EXTRA_COMMANDS names.  The exit statuses are mmscn/exits.py's."""
from __future__ import annotations

import argparse
import gc
import importlib
import os
import sys

from mmscn import __version__, formats, kernels
from mmscn.dsl.diagnostics import plural, printable
from mmscn.exits import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_OK, EXIT_PIPE
from mmscn.formats import use_color
from mmscn.loading import load
from mmscn.options import positive_int

# Commands defined in other modules: name -> module with add_parser(sub) and run(args).
EXTRA_COMMANDS = {
    "repl": ("mmscn.repl", "an interactive session: type statements, watch active_mm and the counters"),
    "explore": ("mmscn.explore", "run every interleaving of the per-CPU blocks and judge it like a litmus test"),
    "compare": ("mmscn.compare", "run one scenario under every switch policy and print them side by side"),
    "test": ("mmscn.suite", "run every scenario below the paths as a regression suite (goldens, JUnit XML)"),
    "lsp": ("mmscn.lsp", "the language server for editors: diagnostics as you type, the kernel state on hover"),
    "import": ("mmscn.traces.importer", "read a kernel trace (perf script, ftrace, trace-cmd) and write a scenario"),
    "validate": ("mmscn.traces.validate", "check the model's page-table loads against an x86 trace's CR3 writes"),
    "record": ("mmscn.traces.record", "record a command's scheduling with perf for import, run and validate"),
    "draw": ("mmscn.pictures.command", "draw a run as an SVG timeline per CPU, or the explored state graph as DOT"),
    "history": ("mmscn.history", "list the kernel changes the model tells apart, newest first (mmscn history)"),
    "bisect": ("mmscn.bisect", "find the release, and the commit, where a scenario's verdict changes"),
}


def cmd_check(args) -> int:
    color = use_color(sys.stderr)
    status = EXIT_OK
    for path in args.files:
        loaded = load(path, sys.stderr, color)
        if loaded is None:
            status = EXIT_BAD_INPUT
        elif not args.quiet:
            sc = loaded[0]
            stmts, asserts = sc.counts()
            print(f"{printable(path)}: ok ({plural(stmts, 'statement')}, {plural(asserts, 'assertion')}, "
                  f"arch {sc.arch}, {plural(sc.ncpus, 'CPU')})")
    return status


def cmd_run(args) -> int:
    from mmscn.interpreter.runner import Runner
    from mmscn.interpreter.policies import UnknownPolicy
    report = formats.chosen("run", args)(sys.stdout, quiet=args.quiet, color=use_color(sys.stdout))
    status = EXIT_OK
    # --svg, --state-at and --states record the run (mmscn/pictures/record.py)
    pictures = args.svg or args.state_at is not None or args.states
    if (args.svg or args.state_at is not None) and len(args.files) > 1:
        args.subparser.error("--svg and --state-at take one FILE")
    if args.states and not args.json:
        args.subparser.error("--states goes with --json (the state after every statement)")
    if args.svg:
        from mmscn.pictures.command import refuse_target
        if refuse_target(args.svg, args.force, tuple(args.files), "mmscn run"):
            return EXIT_BAD_INPUT
    for path in args.files:
        loaded = load(path, sys.stderr, use_color(sys.stderr), args.arch, args.ps)
        if loaded is None:
            status = max(status, EXIT_BAD_INPUT)
            continue
        sc, text = loaded
        lines = text.split("\n")
        try:
            judged = kernels.from_args(sc, args)
            runners = []
            for j in judged:
                if pictures:
                    from mmscn.pictures.record import Recorder
                    runners.append(Recorder(j.scenario, lines, args.arch, frames=bool(args.svg),
                                            states=args.states, state_at=args.state_at, version=j.version))
                    break       # a picture is of the first `expect` line's kernel
                runners.append(Runner(j.scenario, lines, args.arch, trace=not args.quiet or args.json,
                                      version=j.version))
        except kernels.FlagError as e:
            sys.stderr.write(f"mmscn run: {e}\n")
            return EXIT_BAD_INPUT
        except UnknownPolicy as e:
            sys.stderr.write(f"mmscn: {printable(str(e))}\n")
            status = max(status, EXIT_BAD_INPUT)
            continue
        results = [r.run() for r in runners]
        runner, result = runners[0], results[0]
        if args.svg:
            from mmscn.pictures.command import write_picture
            picture = formats.render("run", "svg", [(result, lines, None)], recorder=runner)
            if not write_picture(args.svg, picture, args.force, (path,), "mmscn run"):
                return EXIT_BAD_INPUT
        if args.state_at is not None:
            from mmscn.pictures.state import print_state_at
            return print_state_at(runner, lines, args, use_color(sys.stdout) and not args.json)
        if len(judged) > 1 and not pictures:
            report.item(kernels.Verdicts(judged, results), lines, None)
        else:
            report.item(result, lines, runner.states if args.states else None,
                        judged[0] if kernels.names_kernel(sc, args) else None)
        if not all(r.passed for r in results):
            status = max(status, EXIT_FAILED)
    report.end()
    return status


def build_parser(command=None) -> argparse.ArgumentParser:
    """The command line's parser; given the command about to run, only that command's module is
    imported for its options (`mmscn run` need not import the explorer, the suite, the tracers, ...)."""
    p = argparse.ArgumentParser(
        prog="mmscn",
        description="Run .mmscn scenarios against a model of how Linux lends address spaces "
                    "(task->mm, active_mm, mm_users, mm_count).",
        epilog="exit status: 0 everything held; 1 an assertion, invariant, expectation or final "
               "condition failed, or a statement was refused; 2 a file could not be read or parsed, "
               "or the command line was wrong; 70 an internal error of mmscn (a bug: please report it "
               "with the scenario; MMSCN_DEBUG=1 shows the traceback). When standard output is a pipe "
               "that closes early (mmscn test DIR | head): the command's own status if it had finished, "
               "else 141 (128 + SIGPIPE); never 0 for a failure.")
    p.add_argument("--version", action="version", version=f"mmscn {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    r = sub.add_parser("run", help="run scenarios and print what each statement did",
                       description="Run each scenario: a trace line per kernel event, the assertions, a summary.",
                       epilog="exit status (the worst over the files): 0 every assertion, invariant, expectation "
                              "and `final forall` held (under `expect fail`: something failed); 1 one of them "
                              "failed, or a statement was refused; 2 a file could not be read, decoded or parsed, "
                              "a name did not resolve, or the command line was wrong.")
    r.add_argument("files", nargs="+", metavar="FILE")
    r.add_argument("--json", action="store_true", help="print the run as JSON")
    r.add_argument("-q", "--quiet", action="store_true", help="print only failures")
    r.add_argument("--arch", help="override the scenario's `arch`")
    kernels.add_arguments(r)
    kernels.add_granularity(r)
    r.add_argument("--ps", metavar="FILE", help="for a kernel trace: the ps snapshot of its tasks (docs/traces.md)")
    # pictures and states (mmscn/pictures/, docs/pictures.md)
    r.add_argument("--svg", metavar="OUT", help="also draw the run as an SVG timeline to OUT, a new file "
                   "(--force replaces one)")
    r.add_argument("--force", action="store_true", help="let --svg replace an existing file")
    r.add_argument("--state-at", type=positive_int, metavar="LINE", help="print the whole state (CPUs, tasks, "
                   "mms, hardware) after the statement at LINE, instead of the trace (with --json: as JSON)")
    r.add_argument("--states", action="store_true", help="with --json: the state after every statement, in "
                   "each step")
    r.set_defaults(func=cmd_run, subparser=r)

    c = sub.add_parser("check", help="parse and resolve names only (a linter)",
                       description="Parse each file and resolve its names without running it.",
                       epilog="exit status: 0 every file parsed and its names resolved; 2 a file could not be "
                              "read, decoded or parsed, a name did not resolve, or the command line was wrong.")
    c.add_argument("files", nargs="+", metavar="FILE")
    c.add_argument("-q", "--quiet", action="store_true", help="print only errors")
    c.set_defaults(func=cmd_check, subparser=c)

    for name, (modname, helptext) in EXTRA_COMMANDS.items():
        sp = sub.add_parser(name, help=helptext)
        sp.set_defaults(func=_lazy(modname), subparser=sp)
        if command is None or command == name:
            importlib.import_module(modname).add_arguments(sp)
    return p


def _lazy(modname):
    def run(args):
        return importlib.import_module(modname).run(args)
    return run


def main(argv=None) -> int:
    # A run allocates many small objects and frees none until it ends; the
    # cyclic collector would rescan them all again and again for nothing.
    gc.disable()
    words = sys.argv[1:] if argv is None else argv
    # the first word names the command, or is an option of mmscn's own (--help: every command)
    parser = build_parser(words[0] if words and not words[0].startswith("-") else None)
    # argparse reports a command's surplus arguments with the top-level usage;
    # the command's own usage says what `mmscn explore` actually takes.
    args, surplus = parser.parse_known_args(argv)
    if surplus:
        getattr(args, "subparser", parser).error("unrecognized arguments: " + printable(" ".join(surplus)))
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_BAD_INPUT
    status = None
    try:
        status = args.func(args)
        sys.stdout.flush()      # here, not at exit: a closed pipe is handled below
        return status
    except KeyboardInterrupt:
        sys.stderr.write("mmscn: interrupted\n")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        _discard_stdout()
        # finished: what it found stands (a failure must not become 0); cut short: 141
        return EXIT_PIPE if status is None else status
    except Exception as e:   # last resort: a bug of ours must not greet the user with a traceback
        if os.environ.get("MMSCN_DEBUG"):
            raise
        sys.stderr.write(f"mmscn: internal error: {type(e).__name__}: {printable(str(e))}; "
                         f"please report it with the scenario\n")
        return EXIT_INTERNAL


def _discard_stdout() -> None:
    """Standard output's reader is gone: what is still buffered goes to /dev/null, so
    Python's flush at exit does not fail again."""
    try:
        fd = os.open(os.devnull, os.O_WRONLY)
        os.dup2(fd, sys.stdout.fileno())
        os.close(fd)
    except (OSError, ValueError):
        pass
