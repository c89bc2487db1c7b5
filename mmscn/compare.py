"""`mmscn compare FILE`: one scenario under every switch policy, side by side.

Each policy runs the scenario as `mmscn run --arch NAME` would (per-CPU
blocks in the run's round robin) and gets one column: the verdict and its
number of failures, every cost counter, and the final mm_users/mm_count and
state of each mm.  Exit status 0 when every policy ran, whatever the
verdicts (the differences are the point of the comparison), 2 when the file
cannot be read or parsed or an --arch name is unknown.

Only the standard library (and mmscn/formats.py, dsl/diagnostics.py: the same)
is imported at module level: the CLI imports this module when it starts.
"""
from __future__ import annotations

import sys

from mmscn import formats
from mmscn.dsl.diagnostics import plural, printable
from mmscn.formats import Format, JsonFormat, use_color


def add_arguments(p) -> None:
    p.description = ("Run one scenario under every switch policy (generic, linux-2.3, the architectures) and "
                     "print one column per policy: verdict, cost counters, final counters of each mm.")
    p.epilog = "exit status: 0 when every policy ran, whatever the verdicts; 2 bad file or unknown --arch."
    p.add_argument("file", metavar="FILE")
    p.add_argument("--json", action="store_true", help="print the comparison as JSON")
    p.add_argument("--arch", metavar="A,B,...", help="only these policies, in this order (default: all)")
    p.add_argument("--ps", metavar="FILE", help="for a kernel trace: the ps snapshot of its tasks (docs/traces.md)")
    p.add_argument("--diff", metavar="A,B", help="instead of the table: where the traces of policies A and B "
                   "part, event by event (docs/pictures.md)")
    p.add_argument("--kernel", metavar="vA,vB,...", help="also one column per kernel release: each policy under "
                   "each of these releases (default: the header's `kernel`, else the newest; linux-2.3 keeps its own)")
    p.add_argument("--revert", action="append", default=[], metavar="COMMIT",
                   help="leave this modelled change out of every kernel (12+ hex digits of its commit; repeatable; "
                        "adds to the header's `revert` lines)")


def compare(scenario, lines: list, arches: list, releases=(None,), reverts=()) -> list:
    """One dict per policy (per policy and kernel release, with ``releases`` from --kernel:
    None is the header's): verdict, failures, cost, and per mm (users, count, state).
    A policy that stands for a release of its own (linux-2.3) gets one column, at it."""
    from mmscn.interpreter import policies
    from mmscn.interpreter import version as V
    from mmscn.interpreter.arches import arch_release, default_kernel
    from mmscn.interpreter.runner import Runner
    cols = []
    for arch, release in [(a, v) for a in arches for v in releases]:
        policy = policies.get(arch)
        if policy.kernel and release != releases[0]:
            continue
        if arch_release(arch, release or scenario.kernel or default_kernel(arch)):
            continue        # ia64 in v6.7 on: no such kernel (run() refuses it for an arch --arch names)
        version = V.for_policy(policy, release or scenario.kernel, scenario.reverts + tuple(reverts),
                               scenario.configs)
        if policy.kernel_problem(version):      # an arch this kernel does not have (ia64 from v6.7): no column
            continue
        r = Runner(scenario, lines, arch, trace=False, version=version).run()
        k = r.kernel
        cols.append({
            "arch": r.arch,
            **({"kernel": version.release} if release is not None else {}),
            "verdict": "passed" if r.passed else "failed",
            "failures": len(r.diagnostics),
            "first_failure": r.diagnostics[0].message if r.diagnostics else None,
            "failure": r.diagnostics[0].to_json() if r.diagnostics else None,    # located (explain.py)
            "stopped": r.stopped,
            "cost": r.cost,
            "mms": {k.m_name[m]: {"users": k.m_users[m], "count": k.m_count[m], "state": k.mm_state(m)}
                    for m in range(len(k.m_name))},
        })
    return cols


def reverts_of(texts, arches, releases, header_kernel) -> tuple:
    """The keys --revert names, each checked as `mmscn run` checks it against some column (an arch
    whose code it changes, a release it is in); FlagError with the reason for the first arch it
    changes (else the first column) when no column has it."""
    from mmscn import kernels
    from mmscn.interpreter import version as V
    from mmscn.interpreter.arches import default_kernel
    keys = []
    for text in texts:
        errors = []
        for arch in arches:
            for v in releases:
                try:
                    keys += kernels.flag_reverts([text], arch, v or header_kernel or default_kernel(arch))
                    break
                except kernels.FlagError as e:
                    errors.append((arch, e))
            else:
                continue
            break
        else:
            key = next((c.key for c in V.CHANGES if c.key.startswith(text[:12].lower())), None)
            own = [e for a, e in errors if key and V.touches(V.change(key), a)]
            raise (own or [e for _, e in errors])[0]
    return tuple(dict.fromkeys(keys))


def table(cols: list) -> str:
    """The columns as a text table, a row per item."""
    from mmscn.interpreter.kernel import COST_NAMES
    rows = [("", [c["arch"] + (f" {c['kernel']}" if "kernel" in c else "") for c in cols]),
            ("verdict", [c["verdict"] + (f" ({c['failures']})" if c["failures"] else "")
                         + (", stopped" if c["stopped"] else "") for c in cols])]
    for name in ("atomics",) + COST_NAMES:
        rows.append((f"cost.{name}", [str(c["cost"][name]) for c in cols]))
    mm_names = list(dict.fromkeys(m for c in cols for m in c["mms"]))   # in order of creation
    for m in mm_names:
        vals = []
        for c in cols:
            d = c["mms"].get(m)
            vals.append("-" if d is None else f"{d['users']}/{d['count']} {d['state']}")
        rows.append((f"{m} users/count", vals))
    w0 = max(len(label) for label, _ in rows)
    widths = [max(len(vals[i]) for _, vals in rows) for i in range(len(cols))]
    out = []
    for label, vals in rows:
        out.append("  ".join([label.ljust(w0)] + [v.rjust(widths[i]) for i, v in enumerate(vals)]).rstrip())
    return "\n".join(out) + "\n"


def run(args) -> int:
    from mmscn.exits import EXIT_BAD_INPUT, EXIT_OK
    from mmscn.loading import load
    from mmscn.interpreter import policies
    known = policies.names()
    if args.arch:
        arches = [a.strip() for a in args.arch.split(",") if a.strip()]
        bad = [a for a in arches if a not in known]
        if bad or not arches:
            sys.stderr.write(f"mmscn compare: {printable(policies.unknown(*bad))}\n")
            return EXIT_BAD_INPUT
    else:       # today's kernel and the 1999 one first, then the architectures
        arches = sorted(known, key=lambda a: (a not in ("generic", "linux-2.3"), a))
    if args.diff is not None:
        pair = [a.strip() for a in args.diff.split(",")]
        if len(pair) != 2 or not all(pair):
            sys.stderr.write(f"mmscn compare: --diff takes two policies, A,B (got {printable(args.diff)!r})\n")
            return EXIT_BAD_INPUT
        bad = [a for a in pair if a not in known]
        if bad:
            sys.stderr.write(f"mmscn compare: {printable(policies.unknown(*bad))}\n")
            return EXIT_BAD_INPUT
        if args.kernel or args.revert:
            sys.stderr.write("mmscn compare: --diff compares two policies under the header's kernel; "
                             "drop --kernel and --revert (or name them in the file's `kernel`/`revert` lines)\n")
            return EXIT_BAD_INPUT
    from mmscn.traces import is_trace
    if is_trace(args.file):     # a recorded kernel trace: priced as it streams (docs/traces.md)
        from mmscn.traces.price import run as price_trace
        return price_trace(args, arches)
    loaded = load(args.file, sys.stderr, use_color(sys.stderr))
    if loaded is None:
        return EXIT_BAD_INPUT
    sc, text = loaded
    if args.diff is not None:
        from mmscn.pictures.explain import diff_text, trace_diff
        d = trace_diff(sc, text.split("\n"), *pair)
        if args.json:
            formats.write_json({**head(args.file, sc), "diff": d}, sys.stdout)
        else:
            sys.stdout.write(diff_text(d))
        return EXIT_OK
    from mmscn import kernels
    try:
        releases = [kernels.check_release(v.strip()) for v in args.kernel.split(",") if v.strip()] \
            if args.kernel else [None]
        if not releases:
            raise kernels.FlagError(f"--kernel takes releases, vA,vB (got {printable(args.kernel)!r})")
        if args.arch:       # a policy the command names runs every release it names, or says why not
            for a in arches:
                for v in releases:
                    if not policies.get(a).kernel:
                        kernels.check_arch_release(a, v or sc.kernel, "--kernel" if v else "kernel")
        keys = reverts_of(args.revert, arches, releases, sc.kernel)
        cols = compare(sc, text.split("\n"), arches, releases, keys)
    except kernels.FlagError as e:
        sys.stderr.write(f"mmscn compare: {e}\n")
        return EXIT_BAD_INPUT
    except policies.UnknownPolicy as e:     # an entry point that does not load a Policy
        sys.stderr.write(f"mmscn compare: {printable(str(e))}\n")
        return EXIT_BAD_INPUT
    report = formats.chosen("compare", args)(sys.stdout, color=use_color(sys.stdout))
    report.item(args.file, sc, cols, text.split("\n"))
    report.end()
    return EXIT_OK


def head(path, sc) -> dict:
    """What a compare document (the table's or --diff's) says first."""
    from mmscn.interpreter.report import json_head
    return {**json_head("compare"), "file": path, "title": sc.name, "arch": sc.arch, "cpus": sc.ncpus,
            "expect": sc.outcome}


class CompareText(Format):
    """The table, then the first failure of each column that failed (mmscn/pictures/explain.py)."""

    def item(self, path, sc, cols, lines) -> None:
        from mmscn.pictures.explain import first_failures_text
        title = f"{path}: {sc.title}" if sc.title else path
        self.out.write(printable(f"{title} ({plural(sc.ncpus, 'CPU')}; the file says arch {sc.arch})") + "\n")
        self.out.write(printable(table(cols), lines=True))
        self.out.write(first_failures_text(cols, lines, self.opts.get("color", False)))


class CompareJson(JsonFormat):
    def doc(self, path, sc, cols, lines):
        return {**head(path, sc), "policies": cols}
