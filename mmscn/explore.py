"""`mmscn explore`: every interleaving of a scenario's per-CPU blocks.

Exit status: 0 the verdict is what the header expects (`expect pass`, the
default: no interleaving fails and `final` holds; `expect fail`: some
interleaving fails or `final` does not hold), 1 it is not, 2 the file cannot
be read or parsed, the witness cannot be written or the command line is
wrong, 3 the search was cut short
(--max-states, --max-seconds, --random) before it could decide.
Only the standard library (and mmscn/formats.py, dsl/diagnostics.py: the same) is
imported here; the search is imported by run().
"""
from __future__ import annotations

import os
import sys

from mmscn import formats
from mmscn.dsl.diagnostics import plural, printable
from mmscn.formats import BOLD, DIM, GREEN, RED, RESET, Format, JsonFormat, use_color


def add_arguments(p) -> None:
    from mmscn.options import positive_float, positive_int
    p.description = ("Run every interleaving of the scenario's per-CPU blocks (each statement one atomic "
                     "kernel operation) and judge it like a litmus test: no interleaving may fail, and "
                     "`final forall`/`final exists` must hold. A failure comes with the shortest "
                     "interleaving that reaches it.")
    p.epilog = ("exit status: 0 the verdict is what the header expects; 1 it is not; 2 unreadable file, "
                "a witness that cannot be written, or bad command line; 3 the search stopped before it could decide (--max-states, --max-seconds, "
                "--max-memory, --compact or --random without a failure).")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--arch", help="override the scenario's `arch`")
    from mmscn.kernels import add_arguments as kernel_arguments
    kernel_arguments(p)
    from mmscn.kernels import add_granularity
    add_granularity(p)
    p.add_argument("--witness", metavar="OUT", help="write the failing interleaving as a plain .mmscn scenario "
                   "that `mmscn run` replays to the same failure; a new file (--force replaces "
                   "an existing one, never the scenario itself)")
    p.add_argument("--svg", metavar="OUT", help="draw the failing interleaving as an SVG timeline "
                   "(docs/pictures.md); a new file (--force replaces one)")
    p.add_argument("--force", action="store_true", help="let --witness and --svg replace an existing file")
    p.add_argument("--all-finals", action="store_true", help="list every distinct final state (and keep "
                   "searching after a failure)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--max-states", type=positive_int, metavar="N", help="stop after N distinct states")
    p.add_argument("--max-seconds", type=positive_float, metavar="S", help="stop after S seconds")
    p.add_argument("--max-memory", type=positive_float, metavar="MB", help="stop once the process has used MB "
                   "megabytes of memory")
    p.add_argument("--compact", action="store_true", help="keep a 64-bit fingerprint of each visited state "
                   "instead of the state (hash compaction): far less memory, but a verdict without a failure "
                   "is then incomplete, with the probability that two states were taken for one")
    p.add_argument("--no-por", action="store_true", help="turn partial-order reduction off")
    p.add_argument("--no-symmetry", action="store_true", help="turn symmetry reduction off")
    p.add_argument("--random", type=positive_int, metavar="N", help="run N random interleavings instead of all")
    p.add_argument("--seed", type=int, metavar="S", help="seed for --random (printed, so a failure replays)")
    p.add_argument("--jobs", type=positive_int, metavar="N", default=1, help="search with N worker processes "
                   "(hash-partitioned breadth first: the same verdict, counts and shortest interleaving as 1, "
                   "the default)")
    p.add_argument("-q", "--quiet", action="store_true", help="print only the verdict and failures")


class Progress:
    """A one-line progress report on stderr, only on a terminal and only after a second."""

    def __init__(self, stream):
        self.stream = stream
        self.shown = False
        self.last = 0.0

    def __call__(self, states, distinct, depth, elapsed):
        if elapsed < 1.0 or elapsed - self.last < 0.2:
            return
        self.last = elapsed
        self.shown = True
        rate = states / elapsed if elapsed else 0
        self.stream.write(f"\r  exploring: {states:,} states, {distinct:,} distinct, depth {depth}, "
                          f"{rate:,.0f} states/s, {elapsed:.0f} s ")
        self.stream.flush()

    def done(self):
        if self.shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()


def run(args) -> int:
    from mmscn.exits import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_INCOMPLETE, EXIT_OK
    from mmscn.loading import load
    from mmscn.interpreter import explore as X
    from mmscn.interpreter.policies import UnknownPolicy

    if args.seed is not None and args.random is None:
        # silently ignoring it would let a user believe a random run replayed
        sys.stderr.write("mmscn explore: error: --seed S goes with --random N (the exhaustive search "
                         "uses no randomness)\n")
        return EXIT_BAD_INPUT
    if args.jobs > 1 and args.random is not None:
        # each walk is one process's sequence of choices: a pool of them would not replay from one seed
        sys.stderr.write("mmscn explore: error: --jobs N partitions the exhaustive search; --random N runs its "
                         "interleavings in one process (drop one of them)\n")
        return EXIT_BAD_INPUT
    from mmscn.dsl.files import Unwritable, check_target, write_file
    if args.witness:
        try:    # refused now, not after a search that may take minutes
            check_target(args.witness, force=args.force, keep=(args.file,))
        except Unwritable as e:
            sys.stderr.write(f"mmscn explore: {e}\n")
            return EXIT_BAD_INPUT
    if args.svg:
        from mmscn.pictures.command import refuse_target
        if refuse_target(args.svg, args.force, (args.file,), "mmscn explore"):
            return EXIT_BAD_INPUT
    loaded = load(args.file, sys.stderr, use_color(sys.stderr), args.arch)
    if loaded is None:
        return EXIT_BAD_INPUT
    sc, text = loaded
    lines = text.split("\n")
    from mmscn import kernels
    try:
        judged = kernels.from_args(sc, args)
        models = [X.Model(j.scenario, lines, args.arch, version=j.version) for j in judged]
    except kernels.FlagError as e:
        sys.stderr.write(f"mmscn explore: {e}\n")
        return EXIT_BAD_INPUT
    except UnknownPolicy as e:
        sys.stderr.write(f"mmscn: {printable(str(e))}\n")
        return EXIT_BAD_INPUT
    progress = Progress(sys.stderr) if sys.stderr.isatty() and not args.json else None
    reports = []    # (model, res, steps), one per `expect` line
    for model in models:
        res = X.prologue_result(model)
        if res is None and args.random:
            seed = args.seed if args.seed is not None else int.from_bytes(os.urandom(4), "little")
            res = X.random_walks(model, args.random, seed, args.max_seconds, progress)
        elif res is None:
            opts = dict(por=not args.no_por, symmetry=not args.no_symmetry,
                        max_states=args.max_states, max_seconds=args.max_seconds,
                        all_finals=args.all_finals, progress=progress, max_memory=args.max_memory,
                        compact=args.compact)
            if args.jobs > 1:
                from mmscn.interpreter.explore.parallel import ParallelExplorer
                ex = ParallelExplorer(model, args.jobs, **opts)
                if model.stepped and not args.json:
                    sys.stderr.write(f"mmscn explore: note: {printable(model.sc.path)} explores kernel steps "
                                     "(granularity step), which one process searches: --jobs ignored\n")
            else:
                ex = X.Explorer(model, **opts)
            res = ex.run()
        if progress is not None:
            progress.done()
        reports.append((model, res, X.failing_steps(model, res)))
    # the witness and the picture: of the first `expect` line whose search found a failure
    model, res, steps = next((r for r in reports if r[1].failure is not None), reports[0])
    if args.witness and res.failure is not None and res.mode != "prologue":
        try:
            write_file(args.witness, X.witness_text(model, res), force=args.force, keep=(args.file,))
        except Unwritable as e:
            sys.stderr.write(f"mmscn explore: cannot write the witness: {e}\n")
            return EXIT_BAD_INPUT
    elif args.witness and not args.json:
        sys.stderr.write(f"mmscn: no failing interleaving, so no witness written to {printable(args.witness)}\n")
    if args.svg:
        from mmscn.pictures.command import write_picture
        picture = formats.render("explore", "svg", [(model, res, steps)], arch=args.arch)
        if not picture:
            if not args.json:
                sys.stderr.write(f"mmscn: no failing interleaving, so no picture written to {printable(args.svg)}\n")
        elif not write_picture(args.svg, picture, args.force, (args.file,), "mmscn explore"):
            return EXIT_BAD_INPUT
    report = formats.chosen("explore", args)(sys.stdout, color=use_color(sys.stdout), quiet=args.quiet,
                                             witness=args.witness, all_finals=args.all_finals)
    if len(reports) > 1:
        report.item(None, kernels.Verdicts(judged, reports), None)
    else:
        report.item(*reports[0], judged[0] if kernels.names_kernel(sc, args) else None)
    report.end()
    verdicts = [r[1].passed for r in reports]
    if None in verdicts:
        return EXIT_INCOMPLETE
    return EXIT_OK if all(verdicts) else EXIT_FAILED


# ====================================================================== reports
def search_line(res) -> str:
    if res.mode == "random":
        return f"random interleavings: {res.walks:,} run, seed {res.seed} (replay with --random {res.walks} " \
               f"--seed {res.seed})"
    if res.mode == "prologue":
        return "the prologue failed: nothing to explore"
    if res.mode == "steps":
        red = "on" if res.fused else ("off (blocks create tasks or mms)" if res.model.creates else "off")
        sym = f"on (group of {res.symmetry})" if res.symmetry > 1 else "none used"
        return ("exhaustive search over kernel steps (granularity step): IPIs and interrupts at every irqs-on "
                f"boundary; partial-order reduction and fusion {red}, symmetry {sym}")
    por = "on" if res.por else ("off (blocks create tasks or mms)" if res.model.creates else "off")
    sym = f"on (group of {res.symmetry})" if res.symmetry > 1 else "none found"
    jobs = f", {res.stats.jobs} worker processes" if res.stats.jobs > 1 else ""
    return f"exhaustive search: partial-order reduction {por}, symmetry {sym}{jobs}"


def verdict_text(model, res) -> tuple:
    """(headline, detail) of the verdict, before the header's expectation."""
    f = model.final
    h = res.holds
    if res.failure is not None:
        fl = res.failure
        what = {"final": "a final state breaks `final forall`", "deadlock": "an interleaving deadlocks",
                "prologue": "the prologue fails"}.get(fl.kind, f"an interleaving fails ({fl.kind})")
        return "fails", what
    if h is None:
        return "incomplete", (res.stop_reason or "random interleavings cannot show that none fails") + \
            "; no failure in the part searched"
    if f is None:
        return "holds", "no interleaving fails"
    from mmscn.interpreter.conditions import cond_text
    cond = ", ".join(cond_text(c) for c in f.conds)
    finals = plural(res.stats.finals, "final state", fmt=",")
    if f.quantifier == "forall":
        return "holds", f"no interleaving fails, and `final forall {cond}` holds in all {finals}"
    if res.exists_count:
        return "holds", f"no interleaving fails, and `final exists {cond}` holds in {res.exists_count:,} of {finals}"
    return "fails", f"`final exists {cond}` holds in none of the {finals}"


def write_text(model, res, steps, out, color, *, quiet=False, witness=None, all_finals=False) -> None:
    """The report for a terminal: what comes from the scenario passes printable()."""
    from mmscn.interpreter.explore import final_fields, stmt_source
    B, R, G, D, Z = (BOLD, RED, GREEN, DIM, RESET) if color else ("",) * 5
    sc, st = model.sc, res.stats
    w = out.write
    P = printable
    if not quiet:
        title = P(f"{sc.path}: {sc.title}" if sc.title else sc.path)
        w(f"{B}{title}{Z} (arch {model.policy.name}, {plural(sc.ncpus, 'CPU')}, "
          f"{plural(model.nblocks, 'block')})\n")
        w(f"  {search_line(res)}\n")
        if res.mode != "prologue":
            inter = "?" if st.interleavings is None else f"{st.interleavings:,}"
            note = " (paths left by partial-order reduction)" if st.interleavings is not None and res.pruned else ""
            if res.mode == "random":
                w(f"  steps {st.states:,}, distinct final states {st.finals:,}, longest {st.depth}, "
                  f"{st.seconds:.3f} s\n")
            else:
                w(f"  states explored {st.states:,}, distinct states {st.distinct:,}, final states "
                  f"{st.finals:,}, interleavings {inter}{note}, depth {st.depth}\n")
                w(f"  transitions {st.transitions:,}, time {st.seconds:.3f} s, {st.rate:,.0f} states/s\n")
        if res.stop_reason:
            w(f"  {R}{res.stop_reason}: the verdict is incomplete{Z}\n")
    f = res.failure
    if f is not None:
        if steps:
            w(f"{B}shortest failing interleaving{Z} ({plural(len(steps), 'step', fmt=',')}):\n" if res.mode != "random"
              else f"{B}failing interleaving{Z} ({plural(len(steps), 'step', fmt=',')}, seed {res.seed}):\n")
            for n, s in enumerate(steps, 1):
                text = stmt_source(model, s.stmt, s.cpu)
                if s.expect is not None:
                    text = stmt_source(model, s.expect, s.cpu) + "; " + text
                mark = f"  {R}<- {s.failure.kind}{Z}" if s.failure is not None else ""
                step = f"  [{s.step}]" if s.step else ""
                w(f"  {n:3d}  cpu{s.cpu}  line {s.stmt.line:<4d} {P(text)}{P(step)}{mark}\n")
                if s.changes:
                    w(f"{D}" + _wrap(P("; ".join(f"{k} {a} -> {b}" for k, a, b in s.changes)), 18) + f"{Z}\n")
        w(f.diagnostic(sc.path, model.lines).render(color) + "\n")
        if witness and res.mode != "prologue":
            w(f"  witness written to {P(witness)} (mmscn run {P(witness)} replays it)\n")
    elif res.exists_path is not None and not quiet:
        steps_text = plural(len(res.exists_path), "step", fmt=",")
        w(f"{B}shortest interleaving where `final exists` holds{Z} ({steps_text}):\n")
        if model.stepped:       # a path of kernel steps (explore/stepped.py), not of statements
            from mmscn.interpreter.explore.stepped import replay as replay_steps
            for n, r in enumerate(replay_steps(model, res.exists_path), 1):
                step = f"  [{r.step}]" if r.step else ""
                w(f"  {n:3d}  cpu{r.cpu}  line {r.stmt.line:<4d} {P(stmt_source(model, r.stmt, r.cpu))}{P(step)}\n")
        else:
            for n, (b, i) in enumerate(res.exists_path, 1):
                u = model.units[b][i]
                w(f"  {n:3d}  cpu{u.cpu}  line {u.stmt.line:<4d} {P(stmt_source(model, u.stmt, u.cpu))}\n")
    if all_finals and res.finals:
        w(f"{B}final states{Z} ({len(res.finals):,}{', up to symmetry' if res.symmetry > 1 else ''}):\n")
        for n, s in enumerate(res.finals, 1):
            d = final_fields(model, s)
            w(f"  {n:3d}  " + _wrap(P("; ".join(f"{k} {v}" for k, v in d.items())), 7).lstrip() + "\n")
    _, detail = verdict_text(model, res)
    detail = P(detail)
    expected = sc.outcome
    p = res.passed
    if p is None:
        w(f"{R}verdict: INCOMPLETE{Z}: {detail}\n")
    elif expected == "fail":
        w((f"{G}verdict: fails, as the header expects{Z}" if p else
           f"{R}verdict: HOLDS, but the header says `expect fail`{Z}") + f": {detail}\n")
    else:
        w((f"{G}verdict: holds{Z}" if p else f"{R}verdict: FAILS{Z}") + f": {detail}\n")


class ExploreText(Format):
    """The report of the search; a file with several `expect` lines (item(None, Verdicts, None))
    gets one per line, each under its heading, then the verdict of each line."""

    def item(self, model, res, steps, judgement=None) -> None:
        o = self.opts
        color = o.get("color", False)
        B, Z = (BOLD, RESET) if color else ("", "")

        def one(model, res, steps):
            write_text(model, res, steps, self.out, color, quiet=o.get("quiet", False),
                       witness=o.get("witness"), all_finals=o.get("all_finals", False))
        if model is not None:
            if judgement is not None and not o.get("quiet", False):
                self.out.write(f"{B}=== {judgement.heading()}{Z}\n")
            one(model, res, steps)
            return
        from mmscn.kernels import verdict
        v = res
        for j, (model, res, steps) in v.pairs():
            self.out.write(f"{B}=== {j.heading()}{Z}\n")
            one(model, res, steps)
        self.out.write(f"verdicts of {printable(v.judged[0].scenario.path)}:\n")
        for j, (model, res, steps) in v.pairs():
            said = "INCOMPLETE" if res.holds is None else verdict(j.scenario.outcome, not res.holds, res.failure)
            self.out.write(f"  {j.heading()}: {said}\n")


class ExploreJson(JsonFormat):
    def doc(self, model, res, steps, judgement=None):
        o = self.opts
        if model is not None:
            d = report_json(model, res, steps, witness=o.get("witness"), all_finals=o.get("all_finals", False))
            if judgement is not None:
                d["kernel"] = judgement.json()
            return d
        from mmscn.interpreter.report import json_head
        v = res
        sc = v.judged[0].scenario
        docs = [{**report_json(*r, witness=o.get("witness"), all_finals=o.get("all_finals", False)),
                 "kernel": j.json(), "expect_line": j.expect.line, "without": list(j.expect.without)}
                for j, r in v.pairs()]
        passed = [d["passed"] for d in docs]
        return {**json_head("explore"), "file": sc.path, "title": sc.name, "arch": docs[0]["arch"], "cpus": sc.ncpus,
                "passed": None if None in passed else all(passed), "verdicts": docs}


def _wrap(text, indent) -> str:
    import textwrap
    return "\n".join(textwrap.wrap(text, width=110, initial_indent=" " * indent, subsequent_indent=" " * indent,
                                   break_on_hyphens=False))


def report_json(model, res, steps, *, witness=None, all_finals=False) -> dict:
    from mmscn.interpreter.explore import final_fields, stmt_source
    from mmscn.interpreter.report import json_head
    sc, st = model.sc, res.stats
    head, detail = verdict_text(model, res)
    doc = {
        **json_head("explore"),
        "file": sc.path, "title": sc.name, "arch": model.policy.name, "cpus": sc.ncpus,
        "blocks": model.nblocks, "expect": sc.outcome, "mode": res.mode,
        "reductions": {"partial_order": res.por, "pruned": res.pruned, "symmetry_group": res.symmetry},
        "stats": {"states_explored": st.states, "distinct_states": st.distinct, "transitions": st.transitions,
                  "final_states": st.finals, "deadlocks": st.deadlocks, "interleavings": st.interleavings,
                  "depth": st.depth, "seconds": round(st.seconds, 6), "states_per_second": round(st.rate, 1),
                  "jobs": st.jobs},
        "complete": res.complete, "stop_reason": res.stop_reason or None,
        "verdict": head, "holds": res.holds, "passed": res.passed, "detail": detail,
        "failure": res.failure.to_json() if res.failure is not None else None,
        "interleaving": [{"step": n, "cpu": f"cpu{s.cpu}", "line": s.stmt.line,
                          "statement": stmt_source(model, s.stmt, s.cpu),
                          "changes": {k: [a, b] for k, a, b in s.changes},
                          **({"kernel_step": s.step} if s.step else {}),
                          **({"failure": s.failure.kind} if s.failure is not None else {})}
                         for n, s in enumerate(steps, 1)],
    }
    if getattr(st, "peak_kb", None):     # --jobs N: every process's peak resident memory, added up
        doc["stats"]["peak_memory_kb"] = st.peak_kb
    if res.mode == "random":
        doc["seed"], doc["walks"] = res.seed, res.walks
    if res.compact is not None:
        doc["compact"] = res.compact
    if model.final is not None:
        doc["final"] = {"quantifier": model.final.quantifier, "satisfied_in": res.exists_count
                        if model.final.quantifier == "exists" else None}
    if all_finals:
        doc["final_states"] = [final_fields(model, s) for s in res.finals]
    if witness and res.failure is not None:
        doc["witness"] = witness
    return doc
