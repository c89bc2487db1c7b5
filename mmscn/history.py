"""`mmscn history [--arch A] [--json]`: what the model knows of the kernel's history.

The table is interpreter/version.py's CHANGES, the one place every modelled
change is listed: its commit, title, first release, the architectures whose
code it changes and where that release was read.  Newest first.  An entry
whose source starts with UNVERIFIED is marked: its release is a best
estimate.  docs/history.md is written from the same table (tools/gen_history.py).

Exit status: 0; 2 an unknown --arch.  Only the standard library is imported at
module level: the CLI imports this module when it starts.
"""
from __future__ import annotations

import sys


def add_arguments(p) -> None:
    p.description = ("List the kernel changes the model tells apart, newest first: the first release that has "
                     "each, its commit and title, the architectures whose code it changes, and where the "
                     "release was verified (UNVERIFIED entries are marked). A scenario names a release with "
                     "`kernel vX.Y` and leaves a change out with `revert COMMIT`.")
    p.epilog = "exit status: 0; 2 an unknown --arch. See docs/history.md."
    p.add_argument("--arch", metavar="A", help="only the changes that apply to architecture A (the kernel's own "
                   "code and A's arch code)")
    p.add_argument("--json", action="store_true", help="print the table as JSON")


def verified(change) -> bool:
    """Was the change's first release read in a source (not UNVERIFIED)?"""
    return not change.source.startswith("UNVERIFIED")


def change_json(c) -> dict:
    return {"key": c.key, "commit": c.commit, "title": c.title, "release": c.release, "arches": list(c.arches),
            "source": c.source, "verified": verified(c)}


def table_text(rows) -> str:
    """The table as `mmscn history` prints it: a line per change, its source below."""
    width = max([len(c.key) for c in rows] + [12])
    out = []
    for c in rows:
        mark = "  UNVERIFIED" if not verified(c) else ""
        out.append(f"{c.release:<9} {c.key:<{width}}  {', '.join(c.arches) or 'all':<8} {c.title}{mark}")
        out.append(f"{'':<9} {'':<{width}}  {'':<8} ({c.source})")
    return "\n".join(out) + "\n"


def run(args) -> int:
    from mmscn.dsl.diagnostics import plural, printable
    from mmscn.exits import EXIT_BAD_INPUT, EXIT_OK
    from mmscn.interpreter import policies
    from mmscn.interpreter import version as V
    if args.arch is not None and args.arch not in policies.KnownArches():
        sys.stderr.write(f"mmscn history: {printable(policies.unknown(args.arch))}\n")
        return EXIT_BAD_INPUT
    rows = V.newest_first(args.arch)
    if args.json:
        from mmscn.formats import write_json
        from mmscn.interpreter.report import json_head
        write_json({**json_head("history"), "arch": args.arch, "oldest": V.OLDEST, "newest": V.NEWEST,
                    "changes": [change_json(c) for c in rows]}, sys.stdout)
        return EXIT_OK
    scope = f" that apply to arch {args.arch}" if args.arch else ""
    sys.stdout.write(f"{plural(len(rows), 'modelled kernel change')}{scope}, newest first (releases {V.OLDEST} "
                     f"to {V.NEWEST}; `arches` all: the kernel's own code):\n")
    sys.stdout.write(printable(table_text(rows), lines=True))
    return EXIT_OK
