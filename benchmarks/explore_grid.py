#!/usr/bin/env python3
"""Exhaust the churn grid with `mmscn explore` and SPIN, end to end, side by side.

For each grid entry (CPUs:tasks) this writes the scenario and the Promela model with grid.py
of the SPIN reference model (--spin-dir DIR, default ../shared/anchors/spin beside the
repository; it is not part of it), runs `mmscn explore FILE --json` in every mode (all
reductions, each one off, both off, and --jobs 2 with all reductions and with none, where
explore has it) and SPIN (spin -a,
gcc -O2 -DSAFETY, pan, as the anchor's measure.sh does), and prints for each run the states
stored, the time end to end (process start to verdict, SPIN's compile included), the CPU
time, states per CPU second and peak memory (benchmarks/explore_common.py).

    python3 benchmarks/explore_grid.py                         # default grid, every mode, SPIN live
    python3 benchmarks/explore_grid.py --modes mmscn 8:16 12:24 16:32
    python3 benchmarks/explore_grid.py --no-spin --max-seconds 60 2:4 6:12
    python3 benchmarks/explore_grid.py --repeat 3              # the least CPU time of three runs
    python3 benchmarks/explore_grid.py --spin-dir /path/to/anchors/spin

Without spin and gcc on the machine, SPIN's figures recorded in the anchor's RESULTS.md are
printed beside instead.  A script that prints figures, never a test.
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from explore_common import ROOT, modes, run_table, spin  # noqa: E402

# The SPIN reference model lives beside the development tree, not in this repository.
DEFAULT_ANCHOR = Path(os.environ.get("MMSCN_SPIN_ANCHOR", ROOT.parent / "shared" / "anchors" / "spin"))
if not DEFAULT_ANCHOR.exists():         # a worktree beside the main checkout
    DEFAULT_ANCHOR = Path("/work/shared/anchors/spin")
GRID = ["1:2", "2:4", "2:6", "3:6", "4:8", "4:12", "4:16", "6:12", "8:16"]


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


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("entries", nargs="*", default=GRID, metavar="CPUS:TASKS")
    ap.add_argument("--modes", nargs="*", metavar="LABEL", help="only these mmscn runs (labels as printed)")
    ap.add_argument("--no-spin", action="store_true", help="leave SPIN out")
    ap.add_argument("--repeat", type=int, default=1, help="runs of each mmscn mode; the least CPU time counts")
    ap.add_argument("--max-seconds", type=float, default=120.0, help="bound each mmscn run (default 120)")
    ap.add_argument("--spin-timeout", type=float, default=600.0, help="bound SPIN's search (default 600 s)")
    ap.add_argument("--spin-dir", type=Path, default=DEFAULT_ANCHOR, metavar="DIR",
                    help="the SPIN reference model's folder, with grid.py and RESULTS.md "
                         "(default: $MMSCN_SPIN_ANCHOR, else ../shared/anchors/spin beside the repository)")
    args = ap.parse_args()
    anchor = args.spin_dir.resolve()
    grid_py = anchor / "grid.py"
    if not grid_py.exists():
        sys.exit(f"explore_grid.py: no SPIN reference model at {anchor} (no grid.py there): it is not part of "
                 f"this repository; pass --spin-dir DIR (or set MMSCN_SPIN_ANCHOR) to the folder with grid.py "
                 f"and RESULTS.md")

    def make(entry):
        c, t = entry.split(":")
        gen = lambda kind: subprocess.run([sys.executable, str(grid_py), c, t, kind], capture_output=True,
                                          text=True, check=True).stdout
        return gen("mmscn"), gen("pml")

    live = not args.no_spin and spin("active proctype p() { skip }\n", base=False) is not None
    labels = [m for m in modes() if not args.modes or m[0] in args.modes]
    print("churn grid (../shared/anchors/spin/grid.py): CPUs interact in pairs and through init_mm")
    run_table(args.entries, make, labels=labels, spin_timeout=args.spin_timeout, max_seconds=args.max_seconds,
              repeat=args.repeat, with_spin=live)
    if not live and not args.no_spin:
        recorded = recorded_spin(anchor)
        print(f"\nspin or gcc not found: SPIN's figures recorded in {anchor / 'RESULTS.md'}:")
        for entry in args.entries:
            if entry in recorded:
                print(f"{entry:<7} SPIN states {recorded[entry][0]:>12,}  total s {recorded[entry][1]:>8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
