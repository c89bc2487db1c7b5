#!/usr/bin/env python3
"""Every examples/history file under `granularity step`, with and without the reductions.

For each file and each of its `expect` lines (each one its own kernel), runs `mmscn explore
FILE --granularity step --json` end to end, once with the defaults (fusion of the steps a CPU
runs with irqs off that touch nothing shared; partial-order reduction and symmetry where the
search applies them) and once with `--no-por --no-symmetry`, and prints the states explored,
the distinct states, the transitions, the verdict and the time (process start to verdict).

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
    print(f"{'file':<42} {'expect line':<34} {'mode':<12} {'states':>8} {'distinct':>9} {'trans':>8} "
          f"{'verdict':<8} {'wall s':>7}")
    worst = 0.0
    for f in files:
        for mode, flags in (("defaults", ()), ("no reduct.", ("--no-por", "--no-symmetry"))):
            wall, reports = explore(f, *flags)
            if mode == "defaults":
                worst = max(worst, wall)
            for r in reports:
                st = r.get("stats", {})
                label = r.get("expect", {}).get("line", "") if isinstance(r.get("expect"), dict) else r.get("expect", "")
                print(f"{f.name[:42]:<42} {str(label)[:34]:<34} {mode:<12} {st.get('states_explored', 0):>8,} "
                      f"{st.get('distinct_states', 0):>9,} {st.get('transitions', 0):>8,} "
                      f"{str(r.get('holds'))[:8]:<8} {wall:>7.2f}")
    print(f"slowest file with the defaults: {worst:.2f} s end to end (bound: 10 s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
