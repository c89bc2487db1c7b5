"""`mmscn repl`: an interactive session with the kernel model.

Each statement runs as soon as it is typed and prints its trace; `:state`,
`:trace`, `:undo`, `:save` and the other meta-commands sit outside the
scenario grammar.  On a terminal the prompt is prompt_toolkit's (highlighting
with the project's Pygments lexer, completion from the grammar and the live
session, history in the user's data folder, a toolbar with the live picture);
without one (standard input or output not a terminal) it reads statements
line by line, so scripts and tests can pipe a session through it.

Exit status: interactive, always 0 (Ctrl-D, `:quit`); reading standard
input, 0 when every input held and 1 when any failed (a syntax or name
error, a refusal, an invariant violation, a failed assertion, a deadlock,
a meta-command that could not be carried out); 2 when FILE cannot be read
or parsed, or the command line is wrong.

This module is only the command line, imported whenever `mmscn` starts; the
REPL itself is the rest of this package, imported by run(), one room each as
pgcli has them:
    session.py     Session: the kernel of one session, its statements, undo, load, save
    commands.py    the meta-commands, one registry (name, syntax, help, aliases, handler)
    help.py        the help texts of the statements, fields and keys
    completion.py  the words that may follow the text before the cursor
    prompt.py      on a terminal: prompt_toolkit's prompt, key bindings, history, toolbar
    piped.py       without one: the session read line by line from standard input
"""
from __future__ import annotations

import sys


# ============================================================ command line
def add_arguments(p) -> None:
    p.description = ("An interactive session with the kernel model: type statements (spawn, schedule, "
                     "exit, use_mm, assert ...) and watch active_mm, mm_users and mm_count change. "
                     "Meta-commands start with `:` (:help, :state, :trace, :undo, :save FILE ...). "
                     "Without a terminal it reads statements from standard input.")
    p.epilog = ("exit status: interactive, 0; reading standard input, 0 when every input held and 1 when "
                "any failed (syntax or name error, refusal, violation, failed assertion, deadlock, failed "
                "meta-command); 2 when FILE cannot be read or parsed, or the command line is wrong. "
                "History: $XDG_DATA_HOME/mmscn/history (default ~/.local/share/mmscn/history).")
    p.add_argument("file", nargs="?", metavar="FILE", help="a scenario to run first; the session goes on from "
                   "its state")
    p.add_argument("--arch", metavar="NAME", help="the switch policy (overrides FILE's `arch`)")
    p.add_argument("--cpus", type=_cpus, metavar="N", help="the number of CPUs (overrides FILE's `cpus`)")
    from mmscn.kernels import add_arguments as kernel_arguments
    kernel_arguments(p, "the kernel release (replaces FILE's `kernel`; later, :kernel vX.Y)")


def _cpus(text):
    import argparse
    from mmscn.dsl.resolve import MAX_CPUS
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of CPUs, got {text!r}")
    if not 1 <= n <= MAX_CPUS:
        raise argparse.ArgumentTypeError(f"must be 1 to {MAX_CPUS}")
    return n


def run(args) -> int:
    from mmscn.exits import EXIT_BAD_INPUT
    from mmscn.formats import use_color
    from mmscn.interpreter import policies
    if args.arch is not None and args.arch not in policies.names():
        from mmscn.dsl.diagnostics import printable
        sys.stderr.write(f"mmscn: {printable(policies.unknown(args.arch))}\n")
        return EXIT_BAD_INPUT
    from mmscn import kernels
    try:
        from mmscn.interpreter.arches import default_kernel
        if args.kernel is not None:
            kernels.check_release(args.kernel)
            kernels.check_arch_release(args.arch or "generic", args.kernel)
        reverts = kernels.flag_reverts(args.revert, args.arch, args.kernel or default_kernel(args.arch or "generic"))
    except kernels.FlagError as e:
        sys.stderr.write(f"mmscn repl: {e}\n")
        return EXIT_BAD_INPUT
    from mmscn.repl.piped import read_lines
    from mmscn.repl.prompt import interact
    from mmscn.repl.session import Session
    interactive = sys.stdin.isatty() and sys.stdout.isatty()
    session = Session(sys.stdout, arch=args.arch or "generic", ncpus=args.cpus or 1,
                      color=use_color(sys.stdout), kernel=args.kernel, reverts=reverts)
    if args.file is not None:
        if session.load(args.file, arch=args.arch, ncpus=args.cpus) == "bad":
            return EXIT_BAD_INPUT
    if interactive:
        return interact(session)
    return read_lines(session, sys.stdin.buffer)
