"""`mmscn draw FILE`: the timeline of a run as SVG, or the explored state graph as DOT.

Also the helpers behind `--svg` on `mmscn run` and `mmscn explore`.  Only the
standard library is imported at module level: the CLI imports this module
when it starts.

Exit status: 0 the picture was written (whatever the scenario did: the
picture shows it), 2 the file cannot be read or parsed, the output cannot be
written, `--format dot` on a file without per-CPU blocks, or a bad command line.
"""
from __future__ import annotations

import sys

from mmscn.dsl.diagnostics import printable


def add_arguments(p) -> None:
    from mmscn.options import positive_int
    p.description = ("Draw a scenario: --format svg (the default) the run as a timeline, a lane per CPU "
                     "(the running task coloured by its active mm, hatched while borrowed lazily, page-table "
                     "loads, IPIs), a row per mm (mm_users, mm_count, live/zombie/freed), the failure marked; "
                     "--format dot the explored state graph of the per-CPU blocks, for Graphviz "
                     "(`dot -Tsvg`). See docs/pictures.md.")
    p.epilog = ("exit status: 0 the picture was written, whatever the scenario did; 2 unreadable or "
                "unparsable file, an output that cannot be written, --format dot without per-CPU blocks, "
                "or bad command line.")
    p.add_argument("file", metavar="FILE")
    p.add_argument("-o", "--output", metavar="OUT", help="write the picture to OUT, a new file (--force "
                   "replaces one); default: standard output")
    p.add_argument("--format", choices=("svg", "dot"), default="svg", help="svg: the run's timeline "
                   "(default); dot: the explored state graph")
    p.add_argument("--arch", help="override the scenario's `arch`")
    p.add_argument("--force", action="store_true", help="let -o replace an existing file")
    p.add_argument("--full", action="store_true", help="svg: draw every fold of a long run (by default a long run "
                   "draws its first and last folds and the failure's, and counts what the others did; "
                   "docs/pictures.md)")
    p.add_argument("--max-states", type=positive_int, default=2000, metavar="N",
                   help="--format dot: stop the search after N states (default 2000)")


def refuse_target(path, force, keep, prog) -> bool:
    """Say so and return True when the picture could not be written to ``path``: checked
    before the run, so a refusal comes first."""
    from mmscn.dsl.files import Unwritable, check_target
    try:
        check_target(path, force=force, keep=keep)
    except Unwritable as e:
        sys.stderr.write(f"{prog}: {e}\n")
        return True
    return False


def write_picture(path, text, force, keep, prog) -> bool:
    """Write through dsl/files.write_file (never through a symlink, never over a file
    without ``force``, atomically); False after saying why it could not."""
    from mmscn.dsl.files import Unwritable, write_file
    try:
        write_file(path, text, force=force, keep=keep)
    except Unwritable as e:
        sys.stderr.write(f"{prog}: cannot write the picture: {e}\n")
        return False
    return True


def run(args) -> int:
    from mmscn.exits import EXIT_BAD_INPUT, EXIT_OK
    from mmscn.formats import use_color
    from mmscn.loading import load
    from mmscn.interpreter.policies import UnknownPolicy
    prog = "mmscn draw"
    if args.output and refuse_target(args.output, args.force, (args.file,), prog):
        return EXIT_BAD_INPUT
    loaded = load(args.file, sys.stderr, use_color(sys.stderr), args.arch)
    if loaded is None:
        return EXIT_BAD_INPUT
    sc, text = loaded
    lines = text.split("\n")
    try:
        from mmscn import kernels
        j = kernels.from_args(sc, args)[0]      # a picture is of the first `expect` line's kernel (run --svg's)
        if args.format == "dot":
            if not sc.blocks:
                sys.stderr.write(f"{prog}: {printable(args.file)} has no per-CPU blocks (`cpu0 {{ ... }}`), so "
                                 f"it has one interleaving and no state graph to draw; `mmscn draw` without "
                                 f"--format dot draws its timeline\n")
                return EXIT_BAD_INPUT
            from mmscn.interpreter import explore as X
            from mmscn.pictures.dot import dot
            picture = dot(X.Model(j.scenario, lines, args.arch, version=j.version), max_states=args.max_states)
        else:
            from mmscn import formats
            from mmscn.pictures.record import record_run
            rec = record_run(j.scenario, lines, args.arch, version=j.version)
            picture = formats.render("run", "svg", [(rec.result, lines, None)], recorder=rec, full=args.full)
    except UnknownPolicy as e:
        sys.stderr.write(f"mmscn: {printable(str(e))}\n")
        return EXIT_BAD_INPUT
    if args.output:
        if not write_picture(args.output, picture, args.force, (args.file,), prog):
            return EXIT_BAD_INPUT
    else:
        sys.stdout.write(picture)
    return EXIT_OK
