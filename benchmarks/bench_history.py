#!/usr/bin/env python3
"""The kernel history's cost (issue 14, Speed): prints figures, asserts nothing.

  python benchmarks/bench_history.py                 # this tree, and `run` against a2c87d2
  python benchmarks/bench_history.py --base main --repeat 3

1. `mmscn bisect` over 30 releases (v5.1 to v6.10, --all-releases) of a
   40-statement scenario, end to end (a fresh `python -m mmscn` process, as a
   user runs it): the wall time (target: under 2 s), and the time per release.
2. `mmscn run --quiet` of bench_run.py's generated scenario (140,000 lines by
   default) under the default kernel, before the header words (the base commit,
   a2c87d2, unpacked as benchmarks/bench_state.py does it) and after, side by
   side in one run: the default kernel must cost `run` nothing measurable.

With --repeat N each figure is the best of N runs, the trees taking turns.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
from bench_run import churn  # noqa: E402
from bench_state import importable, timed, unpack  # noqa: E402

BASE = "a2c87d2"     # main before the header words (issue 14's shared surface only)


def scenario(statements: int) -> str:
    """bench_run.py's churn, cut to ``statements`` statements, with the header words of a bisection."""
    body = churn(statements + 4).split("\n")
    return "\n".join(body[:3] + ["kernel v6.10"] + body[3:]) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", default=BASE, help=f"the commit to compare `run` with (default {BASE})")
    ap.add_argument("--repeat", type=int, default=1, help="runs of each figure per tree; the best counts")
    ap.add_argument("--lines", type=int, default=140_000, help="lines of the generated run scenario")
    ap.add_argument("--statements", type=int, default=40, help="statements of the bisected scenario")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "b").mkdir()
        trees = {"before": importable(unpack(args.base, tmp / "b"), tmp / "before"),
                 "after": importable(ROOT, tmp / "after")}
        small = tmp / "bisect.mmscn"
        text = scenario(args.statements)
        small.write_text(text)
        big = tmp / "churn_run.mmscn"
        big.write_text(churn(args.lines))
        lines = big.read_text().count("\n")
        work = tmp / "work"
        work.mkdir()
        rev = subprocess.run(["git", "-C", str(ROOT), "log", "-1", "--format=%h %s", args.base],
                             capture_output=True, text=True).stdout.strip()
        print(f"before: {rev[:100]}\nafter:  this tree ({ROOT})\nmachine: {os.cpu_count()} cores, "
              f"load {os.getloadavg()[0]:.1f}, Python {sys.version.split()[0]}")

        bisect = [sys.executable, "-m", "mmscn", "bisect", str(small), "--from", "v5.1", "--to", "v6.10",
                  "--all-releases"]
        run = [sys.executable, "-m", "mmscn", "run", "--quiet", str(big)]
        best: dict = {}
        out = ""
        for _ in range(max(1, args.repeat)):
            out, wall, cpu = timed(bisect, trees["after"], work)
            old = best.get("bisect", (wall, cpu))
            best["bisect"] = (min(old[0], wall), min(old[1], cpu))
            for name, path in trees.items():
                _, wall, cpu = timed(run, path, work)
                old = best.get(("run", name), (wall, cpu))
                best["run", name] = (min(old[0], wall), min(old[1], cpu))
    releases = sum(1 for ln in out.splitlines() if ln.startswith("  v"))
    stmts = sum(1 for ln in text.splitlines()[4:] if ln and not ln.startswith("assert"))
    wall, cpu = best["bisect"]
    print(f"\n1. mmscn bisect --all-releases, {releases} releases of a {args.statements}-line scenario "
          f"({stmts} kernel statements), end to end")
    print(f"   {wall:.2f} s wall (target < 2 s), CPU {cpu:.2f} s, {1000 * wall / max(1, releases):.1f} ms per release")
    print(f"\n2. mmscn run --quiet, {lines:,} generated lines, the default kernel")
    for name in trees:
        w, c = best["run", name]
        print(f"   {name:<7} {w:6.2f} s  {lines / w:>9,.0f} lines/s  (CPU {c:.2f} s)")
    b, a = best["run", "before"], best["run", "after"]
    print(f"   after / before: {a[0] / b[0]:.3f}x the time by the clock, {a[1] / b[1]:.3f}x by CPU time")
    return 0


if __name__ == "__main__":
    sys.exit(main())
