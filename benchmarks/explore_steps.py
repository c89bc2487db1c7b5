#!/usr/bin/env python3
"""Every examples/history file under `granularity step`, with and without the reductions.

For each file and each of its `expect` lines (each one its own kernel), runs `mmscn explore
FILE --granularity step --json` end to end, once with the defaults (partial-order reduction and
fusion over steps, symmetry past Explorer.SYMMETRY_AFTER states: interpreter/explore/stepped.py)
and once with `--no-por --no-symmetry`, and prints both side by side on one row per expect
line: the distinct states, the transitions and the time (process start to verdict), and the
reduction factor (distinct states without the reductions over those with them).

    python3 benchmarks/explore_steps.py                   # every file of examples/history
    python3 benchmarks/explore_steps.py examples/history/LT-02-kthread-use-mm-flush-ipi.mmscn

The issue's bound: every file in under 10 s with the defaults on this machine.  A script
that prints figures, never a test.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def explore(path: Path, *flags) -> tuple:
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "mmscn", "explore", str(path), "--granularity", "step", "--json",
                        *flags], capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - t0
    doc = json.loads(p.stdout) if p.stdout.strip().startswith("{") else {}
    reports = [v for v in doc.get("verdicts", [])] or [doc]
    return wall, reports


def main(argv) -> int:
    files = [Path(a) for a in argv] or sorted((ROOT / "examples" / "history").glob("*.mmscn"))
    print(f"{'file':<40} {'expect':<26} {'verdict':<7} | {'defaults: distinct':>18} {'trans':>6} {'wall s':>6} "
          f"| {'no reductions: distinct':>23} {'trans':>6} {'wall s':>6} | {'factor':>6}")
    worst = 0.0
    for f in files:
        runs = [explore(f), explore(f, "--no-por", "--no-symmetry")]
        worst = max(worst, runs[0][0])
        (wall, reps), (wall0, reps0) = runs
        for r, r0 in zip(reps, reps0):
            st, st0 = r.get("stats", {}), r0.get("stats", {})
            d, d0 = st.get("distinct_states", 0), st0.get("distinct_states", 0)
            label = r.get("expect", {}).get("line", "") if isinstance(r.get("expect"), dict) else r.get("expect", "")
            same = "" if r.get("holds") == r0.get("holds") else " VERDICTS DIFFER"
            factor = f"{d0 / d:.2f}" if d else "-"
            print(f"{f.name[:40]:<40} {str(label)[:26]:<26} {str(r.get('holds'))[:7]:<7} | {d:>18,} "
                  f"{st.get('transitions', 0):>6,} {wall:>6.2f} | {d0:>23,} {st0.get('transitions', 0):>6,} "
                  f"{wall0:>6.2f} | {factor:>6}{same}")
    print(f"slowest file with the defaults: {worst:.2f} s end to end (bound: 10 s); factor: distinct states "
          f"without the reductions / with them")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
