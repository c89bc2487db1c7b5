"""`mmscn bisect FILE [--from vA] [--to vB]`: in which release did the verdict change, and by which commit?

The scenario runs (or, for a file with per-CPU blocks, is explored) under
each release point of the range: the two ends and every release in between
where a modelled change to the file's arch lands (--all-releases: every
mainline release).  The header's `kernel` and `expect` lines are not used:
bisect varies the kernel and reports what the scenario does under each
(holds or fails); its `revert` and `config` lines, and --revert, apply to
every release.  Like git bisect it names the first change of verdict and the
commit responsible: each change landing in that release is reverted alone
there, and the one whose revert brings the old verdict back is named (when
none does alone, all of them are).

Exit status: 0 the verdict changes in the range (the change is named), 1 it
never changes, 2 the file cannot be read or parsed, or the command line is
wrong (a release that is not modelled, --from after --to, an arch that names
its own kernel).  Only the standard library is imported at module level.
"""
from __future__ import annotations

import sys


def add_arguments(p) -> None:
    p.description = ("Run (or, with per-CPU blocks, explore) the scenario under each modelled release in the "
                     "range and print each release's verdict, then, like git bisect, the first release where the "
                     "verdict changes and the commit responsible.")
    p.epilog = ("exit status: 0 the verdict changes in the range (the commit is named); 1 it never changes; "
                "2 unreadable file, or bad command line. See docs/history.md.")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--from", dest="start", metavar="vA", help="the oldest release to run (default: the oldest "
                   "modelled, v2.3.13)")
    p.add_argument("--to", dest="end", metavar="vB", help="the newest release to run (default: the newest modelled)")
    p.add_argument("--all-releases", action="store_true", help="run every mainline release in the range, not only "
                   "those where a modelled change lands")
    p.add_argument("--arch", help="override the scenario's `arch`")
    p.add_argument("--revert", action="append", default=[], metavar="COMMIT",
                   help="leave this modelled change out of every release (repeatable)")
    p.add_argument("--json", action="store_true", help="print the bisection as JSON")


class Point:
    """The verdict under one kernel: holds, fails or incomplete, and the first failure."""
    __slots__ = ("release", "verdict", "failure")

    def __init__(self, release, verdict, failure):
        self.release, self.verdict, self.failure = release, verdict, failure


def judge(sc, lines, arch, version) -> Point:
    """Run the scenario (explore it, when it has blocks) under ``version``."""
    if sc.blocks:
        from mmscn.interpreter import explore as X
        model = X.Model(sc, lines, arch, version=version)
        res = X.prologue_result(model) or X.Explorer(model).run()
        verdict = {True: "holds", False: "fails", None: "incomplete"}[res.holds]
        return Point(version.release, verdict, res.failure)
    from mmscn.interpreter.runner import Runner
    r = Runner(sc, lines, arch, trace=False, version=version).run()
    return Point(version.release, "fails" if r.failed else "holds", r.diagnostics[0] if r.diagnostics else None)


def bisect(sc, lines, arch, start, end, reverts=(), every=False) -> tuple:
    """(points, change): the verdict at each release point, and the first change of verdict
    as (older Point, newer Point, the changes responsible), or None."""
    from mmscn.interpreter import policies
    from mmscn.interpreter import version as V
    policy = policies.get(arch)
    reverts = tuple(dict.fromkeys(sc.reverts + tuple(reverts)))

    def at(release, extra=()):
        return judge(sc, lines, arch, V.for_policy(policy, release, reverts + tuple(extra), sc.configs))
    points = [at(r) for r in V.release_points(start, end, arch, every)]
    for old, new in zip(points, points[1:]):
        if old.verdict != new.verdict:
            landed = [c for c in V.changes_between(old.release, new.release, arch) if c.key not in reverts]
            # the one change whose revert alone brings the old verdict back, if there is one
            alone = [c for c in landed if len(landed) > 1 and at(new.release, (c.key,)).verdict == old.verdict]
            return points, (old, new, alone if len(alone) == 1 else landed)
    return points, None


def _failure_json(f):
    return None if f is None else f.to_json()


def run(args) -> int:
    from mmscn import formats, kernels
    from mmscn.dsl.diagnostics import plural, printable
    from mmscn.exits import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK
    from mmscn.formats import use_color
    from mmscn.interpreter import policies
    from mmscn.interpreter import version as V
    from mmscn.interpreter.arches import fixed_kernel, newest_kernel
    from mmscn.loading import load
    loaded = load(args.file, sys.stderr, use_color(sys.stderr), args.arch)
    if loaded is None:
        return EXIT_BAD_INPUT
    sc, text = loaded
    lines = text.split("\n")
    arch = args.arch or sc.arch
    # an arch that ends before the newest release (ia64: v6.6) is bisected up to its last release
    start, end = args.start or V.OLDEST, args.end or newest_kernel(arch) or V.NEWEST
    try:
        kernels.check_release(start, "--from")
        kernels.check_release(end, "--to")
        if fixed_kernel(arch):
            raise kernels.FlagError(f"arch {arch} is the generic architecture at {fixed_kernel(arch)} and names "
                                    f"its own kernel: bisect `arch generic` (--arch generic)")
        kernels.check_arch_release(arch, start, "--from")
        kernels.check_arch_release(arch, end, "--to")
        if not V.is_before(start, end):
            raise kernels.FlagError(f"--from {printable(start)} must be older than --to {printable(end)}")
        keys = kernels.flag_reverts(args.revert, arch, end)
        points, change = bisect(sc, lines, arch, start, end, keys, args.all_releases)
    except kernels.FlagError as e:
        sys.stderr.write(f"mmscn bisect: {e}\n")
        return EXIT_BAD_INPUT
    except policies.UnknownPolicy as e:
        sys.stderr.write(f"mmscn bisect: {printable(str(e))}\n")
        return EXIT_BAD_INPUT
    from mmscn.history import change_json
    if args.json:
        from mmscn.interpreter.report import json_head
        doc = {**json_head("bisect"), "file": sc.path, "title": sc.name, "cpus": sc.ncpus, "arch": arch,
               "mode": "explore" if sc.blocks else "run", "from": start, "to": end,
               "reverts": sorted(set(sc.reverts) | set(keys)),
               "releases": [{"release": p.release, "verdict": p.verdict, "failure": _failure_json(p.failure)}
                            for p in points],
               "found": change is not None,
               "change": None if change is None else {
                   "good": change[0].verdict, "bad": change[1].verdict, "from": change[0].release,
                   "to": change[1].release, "commits": [change_json(c) for c in change[2]]}}
        formats.write_json(doc, sys.stdout)
    else:
        w = sys.stdout.write
        how = "explored" if sc.blocks else "run"
        title = f"{sc.path}: {sc.title}" if sc.title else sc.path
        w(printable(f"{title} (arch {arch}, {how} under {plural(len(points), 'release')}, {start} to {end})") + "\n")
        for p in points:
            why = "" if p.failure is None else f"  line {p.failure.line}: {p.failure.message}"
            w(printable(f"  {p.release:<9} {p.verdict}{why}") + "\n")
        if change is None:
            w(f"the verdict never changes: the scenario {points[0].verdict} under every release from {start} to "
              f"{end}\n")
        else:
            old, new, commits = change
            w(f"the verdict changes from {old.verdict} ({old.release}) to {new.verdict} ({new.release})\n")
            if len(commits) == 1:
                c = commits[0]
                w(printable(f"{c.key} is the first commit where the scenario {new.verdict}") + "\n")
            elif commits:
                w(f"one of these {len(commits)} commits, which land together in {new.release}, is the first where "
                  f"the scenario {new.verdict}:\n")
            for c in commits:
                w(printable(f"commit {c.commit or c.key}\n    {c.title}\n    first in {c.release} ({c.source})",
                            lines=True) + "\n")
    return EXIT_OK if change is not None else EXIT_FAILED
