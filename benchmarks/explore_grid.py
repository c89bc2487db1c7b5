#!/usr/bin/env python3
"""Exhaust the churn grid with `mmscn explore`, end to end, next to SPIN.

For each grid entry (CPUs:tasks) this generates the scenario with grid.py of
the SPIN reference model (--spin-dir DIR, default ../shared/anchors/spin beside
the repository; it is not part of it), runs `mmscn explore FILE --json` as a
subprocess and times it from process start to verdict, and prints the states
stored, states per second and total seconds beside SPIN's figures: the ones
recorded in RESULTS.md, or, with --spin, SPIN measured live on this machine
with the same measure.sh (spin -a, gcc, pan), one entry at a time, side by side.

    python3 benchmarks/explore_grid.py                 # default grid, SPIN from RESULTS.md
    python3 benchmarks/explore_grid.py --spin          # and SPIN live (needs Debian's spin and gcc)
    python3 benchmarks/explore_grid.py --no-por --no-symmetry --max-seconds 60 2:4 2:6
    python3 benchmarks/explore_grid.py --repeat 3      # best of three runs per entry
    python3 benchmarks/explore_grid.py --spin-dir /path/to/anchors/spin

A script that prints figures, never a test: times depend on the machine.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The SPIN reference model lives beside the development tree, not in this repository.
DEFAULT_ANCHOR = Path(os.environ.get("MMSCN_SPIN_ANCHOR", ROOT.parent / "shared" / "anchors" / "spin"))
GRID = ["1:2", "2:4", "2:6", "3:6", "4:8", "4:12", "4:16", "6:12", "8:16"]


def mmscn_cmd() -> list:
    exe = Path(sys.executable).parent / "mmscn"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "mmscn"]


def recorded_spin(anchor: Path) -> dict:
    """entry -> (states, total seconds) from the RESULTS.md table."""
    out = {}
    path = anchor / "RESULTS.md"
    if not path.exists():
        return out
    for line in path.read_text().splitlines():
        m = re.match(r"\|\s*(\d+:\d+)\s*\|\s*([\d,]+)\s*\|\s*([\d,]+)\s*\|\s*([\d.]+)\s*\|\s*([\d.]+)", line)
        if m:
            out[m.group(1)] = (int(m.group(2).replace(",", "")), float(m.group(4)))
    return out


def live_spin(anchor: Path, entry: str) -> tuple:
    """(states, total seconds) measured now with measure.sh, or None."""
    p = subprocess.run(["bash", str(anchor / "measure.sh"), entry], capture_output=True, text=True)
    for line in p.stdout.splitlines():
        parts = line.split()
        if parts and parts[0] == entry and len(parts) >= 4:
            try:
                return int(parts[1]), float(parts[3])
            except ValueError:
                return None
    return None


def explore(path: Path, extra: list) -> tuple:
    """(report, wall seconds) of one `mmscn explore --json` run."""
    t0 = time.perf_counter()
    p = subprocess.run([*mmscn_cmd(), "explore", str(path), "--json", *extra], capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if p.returncode not in (0, 1, 3):
        sys.exit(f"mmscn explore {path} failed ({p.returncode}):\n{p.stderr}")
    return json.loads(p.stdout), wall


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("entries", nargs="*", default=GRID, metavar="CPUS:TASKS")
    ap.add_argument("--spin", action="store_true", help="measure SPIN live with measure.sh as well")
    ap.add_argument("--repeat", type=int, default=1, help="runs per entry; the best is shown")
    ap.add_argument("--no-por", action="store_true")
    ap.add_argument("--no-symmetry", action="store_true")
    ap.add_argument("--max-seconds", type=float)
    ap.add_argument("--spin-dir", type=Path, default=DEFAULT_ANCHOR, metavar="DIR",
                    help="the SPIN reference model's folder, with grid.py, RESULTS.md and measure.sh "
                         "(default: $MMSCN_SPIN_ANCHOR, else ../shared/anchors/spin beside the repository)")
    args = ap.parse_args()
    anchor = args.spin_dir.resolve()
    extra = (["--no-por"] if args.no_por else []) + (["--no-symmetry"] if args.no_symmetry else []) + \
        (["--max-seconds", str(args.max_seconds)] if args.max_seconds else [])
    if args.spin and not shutil.which("spin"):
        sys.exit("--spin needs Debian's spin (apt-get install -y spin)")
    grid_py = anchor / "grid.py"
    if not grid_py.exists():
        sys.exit(f"explore_grid.py: no SPIN reference model at {anchor} (no grid.py there): it is not part of "
                 f"this repository; pass --spin-dir DIR (or set MMSCN_SPIN_ANCHOR) to the folder with grid.py, "
                 f"RESULTS.md and measure.sh")
    recorded = recorded_spin(anchor)
    print(f"mmscn explore {' '.join(extra) or '(POR and symmetry on)'}; SPIN "
          f"{'measured live' if args.spin else 'from ' + str(anchor / 'RESULTS.md')}")
    head = (f"{'entry':<7} {'verdict':<10} {'states':>9} {'finals':>6} {'sym':>4} {'states/s':>10} "
            f"{'search s':>9} {'total s':>8} | {'SPIN states':>12} {'SPIN s':>8} {'speed-up':>9}")
    print(head)
    print("-" * len(head))
    with tempfile.TemporaryDirectory() as tmp:
        for entry in args.entries:
            c, t = entry.split(":")
            path = Path(tmp) / f"churn_{c}_{t}.mmscn"
            path.write_text(subprocess.run([sys.executable, str(grid_py), c, t, "mmscn"], capture_output=True,
                                           text=True, check=True).stdout)
            best = None
            for _ in range(max(1, args.repeat)):
                doc, wall = explore(path, extra)
                if best is None or wall < best[1]:
                    best = (doc, wall)
            doc, wall = best
            st = doc["stats"]
            spin = live_spin(anchor, entry) if args.spin else recorded.get(entry)
            verdict = doc["verdict"] if doc["complete"] or doc["verdict"] != "holds" else "partial"
            sp_states = f"{spin[0]:,}" if spin else "-"
            sp_time = f"{spin[1]:.2f}" if spin else "-"
            ratio = f"{spin[1] / wall:.0f}x" if spin else "-"
            print(f"{entry:<7} {verdict:<10} {st['distinct_states']:>9,} {st['final_states']:>6} "
                  f"{doc['reductions']['symmetry_group']:>4} {st['states_per_second']:>10,.0f} "
                  f"{st['seconds']:>9.3f} {wall:>8.2f} | {sp_states:>12} {sp_time:>8} {ratio:>9}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
