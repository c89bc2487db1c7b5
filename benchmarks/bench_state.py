#!/usr/bin/env python3
"""The state store before and after, side by side in one run: prints figures, asserts nothing.

  python benchmarks/bench_state.py                  # this tree against the commit before issue 13's state work
  python benchmarks/bench_state.py --base main      # against any commit
  python benchmarks/bench_state.py --max-states 100000 --repeat 3

The base commit is unpacked (git archive) into a temporary folder; each tree is
imported from a folder of links laid out as pyproject.toml's package-dir maps
it (mmscn.interpreter is interpreter/, ...), with this Python's packages (Lark)
for both, and run as `python -m mmscn` from a folder of neither.  Figures:

  1. `mmscn explore --no-por --no-symmetry` on the 6:12 churn grid entry
     (../shared/anchors/spin/grid.py 6 12 mmscn): states explored per second,
     by the wall clock the report gives and by the process's CPU time (the
     machine may be shared), and the ratio after / before;
  2. `mmscn run --quiet` on bench_run.py's generated 140,000-line scenario:
     lines per second, and the time against Lark's own parse of the same text.

With --repeat N each figure is the best of N runs, the trees taking turns.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tarfile
import tempfile
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
from bench_run import churn, lark_parse_time  # noqa: E402

BASE = "77576c2"     # main with the policy, step and rooms work of issue 13, before the state work
ANCHOR = Path(os.environ.get("MMSCN_SPIN_ANCHOR", ROOT.parent / "shared" / "anchors" / "spin"))
if not ANCHOR.exists():
    ANCHOR = Path("/work/shared/anchors/spin")


def unpack(rev: str, into: Path) -> Path:
    """The tree of commit rev, as files under into."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", rev], capture_output=True,
                             check=True).stdout
    tree = into / "tree"
    tree.mkdir()
    with tarfile.open(fileobj=__import__("io").BytesIO(archive)) as tf:
        # commits before issue 13 hold symlinks to a folder outside the tree (dsl/dsl, ...): leave them out
        tf.extractall(tree, members=[m for m in tf.getmembers() if not m.issym()], filter="data")
    return tree


def importable(tree: Path, into: Path) -> Path:
    """A folder to put on PYTHONPATH from which `import mmscn` is tree's, as pyproject.toml maps it:
    mmscn/ holds links to tree/mmscn's files, and to each mapped subpackage's folder."""
    mapping = tomllib.loads((tree / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    top = into / "mmscn"
    top.mkdir(parents=True)
    for entry in (tree / mapping["mmscn"]).iterdir():
        if entry.name != "__pycache__":
            (top / entry.name).symlink_to(entry)
    for package, folder in sorted(mapping.items()):
        parts = package.split(".")
        if len(parts) == 2 and not (top / parts[1]).exists():      # deeper ones lie inside their parents
            (top / parts[1]).symlink_to(tree / folder)
    return into


def timed(cmd: list, path: Path, cwd: Path) -> tuple:
    """(stdout, wall seconds, CPU seconds) of a child run with PYTHONPATH=path."""
    env = dict(os.environ, PYTHONPATH=str(path))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    p = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode not in (0, 1, 3):        # 3: --max-states cut the search short
        sys.exit(f"{' '.join(map(str, cmd))} failed ({p.returncode}):\n{p.stderr[-2000:]}")
    return p.stdout, wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", default=BASE, help=f"the commit to compare with (default {BASE}, main before the "
                                                 f"state schema and its store were merged)")
    ap.add_argument("--repeat", type=int, default=1, help="runs of each figure per tree; the best counts")
    ap.add_argument("--max-states", type=int, help="stop the exploration there (both trees alike)")
    ap.add_argument("--lines", type=int, default=140_000, help="lines of the generated run scenario")
    args = ap.parse_args()
    base = args.base
    grid_py = ANCHOR / "grid.py"
    if not grid_py.exists():
        sys.exit(f"bench_state.py: no grid.py at {ANCHOR} (set MMSCN_SPIN_ANCHOR to the SPIN anchor folder)")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "b").mkdir()
        trees = {"before": importable(unpack(base, tmp / "b"), tmp / "before"),
                 "after": importable(ROOT, tmp / "after")}
        grid = tmp / "churn_6_12.mmscn"
        grid.write_text(subprocess.run([sys.executable, str(grid_py), "6", "12", "mmscn"], capture_output=True,
                                       text=True, check=True).stdout)
        big = tmp / "churn_run.mmscn"
        big.write_text(churn(args.lines))
        lines = big.read_text().count("\n")
        work = tmp / "work"          # a folder of neither tree: `python -m` puts the current one first
        work.mkdir()
        rev = subprocess.run(["git", "-C", str(ROOT), "log", "-1", "--format=%h %s", base], capture_output=True,
                             text=True).stdout.strip()
        print(f"before: {rev[:100]}\nafter:  this tree ({ROOT})\nmachine: {os.cpu_count()} cores, "
              f"load {os.getloadavg()[0]:.1f}, Python {sys.version.split()[0]}")

        explore = [sys.executable, "-m", "mmscn", "explore", str(grid), "--no-por", "--no-symmetry", "--json"]
        if args.max_states:
            explore += ["--max-states", str(args.max_states)]
        run = [sys.executable, "-m", "mmscn", "run", "--quiet", str(big)]
        best = {}
        for _ in range(max(1, args.repeat)):
            for name, path in trees.items():
                out, wall, cpu = timed(explore, path, work)
                st = json.loads(out)["stats"]
                rate = (st["states_per_second"], st["states_explored"] / cpu, st["states_explored"],
                        st["distinct_states"])
                old = best.get(("explore", name), rate)
                best["explore", name] = (max(old[0], rate[0]), max(old[1], rate[1])) + rate[2:]
                _, wall, cpu = timed(run, path, work)
                old = best.get(("run", name), (wall, cpu))
                best["run", name] = (min(old[0], wall), min(old[1], cpu))
        lark = lark_parse_time(big.read_text())

    print("\n1. mmscn explore --no-por --no-symmetry, churn grid 6:12"
          + (f" (--max-states {args.max_states:,})" if args.max_states else ""))
    for name in trees:
        wall_rate, cpu_rate, states, distinct = best["explore", name]
        print(f"   {name:<7} {states:>9,} states ({distinct:,} distinct)  {wall_rate:>9,.0f} states/s "
              f"(report's clock)  {cpu_rate:>9,.0f} states per CPU second")
    b, a = best["explore", "before"], best["explore", "after"]
    print(f"   after / before: {a[0] / b[0]:.2f}x by the report's clock, {a[1] / b[1]:.2f}x by CPU time")

    print(f"\n2. mmscn run --quiet, {lines:,} generated lines (Lark's own parse: {lark:.2f} s, "
          f"{lines / lark:,.0f} lines/s)")
    for name in trees:
        wall, cpu = best["run", name]
        print(f"   {name:<7} {wall:6.2f} s  {lines / wall:>9,.0f} lines/s  ({wall / lark:.2f} x Lark's parse; "
              f"CPU {cpu:.2f} s)")
    b, a = best["run", "before"], best["run", "after"]
    print(f"   after / before: {b[0] / a[0]:.2f}x the lines/s by the clock, {b[1] / a[1]:.2f}x by CPU time")
    return 0


if __name__ == "__main__":
    sys.exit(main())
