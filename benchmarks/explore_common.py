"""What benchmarks/explore_grid.py and explore_dense.py share: running `mmscn explore` and SPIN
on one model, timing each end to end (process start to verdict) with its CPU time and peak
memory, and the side-by-side table.  Prints figures, asserts nothing."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

ROOT = Path(__file__).resolve().parent.parent

# the mmscn runs of each entry: (label, extra options); `--jobs 2` is added where explore has it.
# An option NAME=VALUE is an environment variable of the run: MMSCN_MEMO=off is the search
# without explore/memo.py's remembered runs (the state store before it, in the same run)
MODES = [("mmscn", []), ("no-symmetry", ["--no-symmetry"]), ("no-por", ["--no-por"]),
         ("no-reductions", ["--no-por", "--no-symmetry"]),
         ("no-red memo-off", ["--no-por", "--no-symmetry", "MMSCN_MEMO=off"])]


@dataclass
class Figures:
    tool: str
    verdict: str
    states: Optional[int]
    total: float            # wall seconds, process start to verdict (SPIN: spin -a + gcc + pan)
    cpu: float              # CPU seconds of the processes
    peak_kb: int            # peak resident memory of the (largest) process
    search: Optional[float] = None      # the search's own seconds (mmscn's report, SPIN's pan run)

    @property
    def rate(self) -> float:
        """States per CPU second of the search (the machine is shared: CPU time is steadier)."""
        return (self.states or 0) / self.cpu if self.cpu > 0 else 0.0

    @property
    def wall_rate(self) -> float:
        """States per second end to end (what --jobs buys, on a machine with cores to spare)."""
        return (self.states or 0) / self.total if self.total > 0 else 0.0

    base_kb: int = 0        # the same tool's peak on a one-state model: what a state does not cost

    @property
    def kb_per_state(self) -> Optional[float]:
        """Peak memory above the tool's own baseline, per state stored."""
        return max(0, self.peak_kb - self.base_kb) / self.states if self.states else None


def mmscn_cmd() -> list:
    exe = Path(sys.executable).parent / "mmscn"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "mmscn"]


def explore_options() -> str:
    """`mmscn explore --help`, to offer only the options this tree has (--jobs, --compact)."""
    return subprocess.run([*mmscn_cmd(), "explore", "--help"], capture_output=True, text=True).stdout


def modes(jobs: bool = True) -> list:
    """The mmscn runs: each reduction on and off in one process, then with all reductions and
    with none in two worker processes (`--jobs 2`, where this tree has it)."""
    out = list(MODES)
    if jobs and "--jobs" in explore_options():
        out += [("jobs-2", ["--jobs", "2"]), ("no-red jobs-2", ["--no-por", "--no-symmetry", "--jobs", "2"])]
    return out


def timed(cmd: list, cwd=None, timeout: Optional[float] = None, env: Optional[dict] = None) -> tuple:
    """(returncode, stdout, stderr, wall s, CPU s, peak KB) of one child, measured with wait4
    (its own rusage, not the sum over every child so far)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, cwd=cwd, stdout=out, stderr=err, env=None if env is None else {**os.environ, **env})
        deadline = None if timeout is None else t0 + timeout
        while True:
            pid, status, ru = os.wait4(p.pid, os.WNOHANG)
            if pid:
                break
            if deadline is not None and time.perf_counter() > deadline:
                p.kill()
                pid, status, ru = os.wait4(p.pid, 0)
                break
            time.sleep(0.005)
        wall = time.perf_counter() - t0
        p.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return (p.returncode, out.read().decode(), err.read().decode(), wall, ru.ru_utime + ru.ru_stime,
                ru.ru_maxrss)


def mmscn(path: Path, extra: list, max_seconds: Optional[float], base: bool = True,
          tree: Optional[Path] = None, max_states: Optional[int] = None) -> Figures:
    """``tree``: a folder to import mmscn from instead of this checkout (before_tree()), run from
    a folder of neither."""
    bound = (["--max-seconds", f"{max_seconds:g}"] if max_seconds else []) + \
        (["--max-states", str(max_states)] if max_states else [])
    env = dict(x.split("=", 1) for x in extra if "=" in x)
    extra = [x for x in extra if "=" not in x]
    # a tree's bytecode is written on its first run and read after, as an installed tool's is (a
    # machine that sets PYTHONDONTWRITEBYTECODE would compile every module on every run)
    env = {k: v for k, v in {**os.environ, **env}.items() if k != "PYTHONDONTWRITEBYTECODE"}
    cmd, cwd = mmscn_cmd(), None
    if tree is not None:
        cmd, cwd, env["PYTHONPATH"] = [sys.executable, "-m", "mmscn"], tempfile.gettempdir(), str(tree)
    rc, out, err, wall, cpu, peak = timed([*cmd, "explore", str(path), "--json", *extra, *bound], cwd=cwd,
                                          env=env)
    if rc not in (0, 1, 3):
        sys.exit(f"mmscn explore {path} {' '.join(extra)} failed ({rc}):\n{err[-2000:]}")
    doc = json.loads(out)
    st = doc["stats"]
    verdict = doc["verdict"] if doc["complete"] or doc["verdict"] != "holds" else "incomplete"
    # with --jobs the processes' peaks add up (wait4 gives the largest one's): the search says the sum,
    # and each process (the coordinator and its workers) has the interpreter's own baseline
    peak = max(peak, st.get("peak_memory_kb") or 0)
    procs = st.get("jobs", 1) + 1 if st.get("jobs", 1) > 1 else 1
    return Figures("mmscn", verdict, st["distinct_states"], wall, cpu, peak, st["seconds"],
                   baseline("mmscn") * procs if base else 0)


def spin(pml: str, timeout: Optional[float] = None, width: int = 24, base: bool = True) -> Optional[Figures]:
    """SPIN end to end on a Promela model as ../shared/anchors/spin/measure.sh runs it:
    spin -a, gcc -O2 -DSAFETY, pan -m10000000 -wW (SPIN's partial-order reduction on)."""
    if not (shutil.which("spin") and shutil.which("gcc")):
        return None
    with tempfile.TemporaryDirectory() as work:
        Path(work, "m.pml").write_text(pml)
        cpu = total = 0.0
        for cmd in (["spin", "-a", "m.pml"], ["gcc", "-O2", "-w", "-DSAFETY", "-o", "pan", "pan.c"]):
            rc, _, err, wall, c, _ = timed(cmd, cwd=work)
            if rc:
                sys.exit(f"{' '.join(cmd)} failed:\n{err[-2000:]}")
            cpu, total = cpu + c, total + wall
        rc, out, _, wall, c, peak = timed(["./pan", "-m10000000", f"-w{width}"], cwd=work, timeout=timeout)
    m = re.search(r"([\d.e+]+) states, stored", out)
    errors = re.search(r"errors: (\d+)", out)
    verdict = "incomplete" if m is None or errors is None else ("holds" if errors.group(1) == "0" else "fails")
    return Figures("SPIN", verdict, int(float(m.group(1))) if m else None, total + wall, cpu + c, peak, wall,
                   baseline("SPIN") if base else 0)


TINY_MMSCN = "cpus 1\ncpu0 {\n  schedule idle\n}\n"
TINY_PML = "active proctype p() { skip }\n"
_BASE: dict = {}


def tiny(tree: Optional[Path] = None) -> Figures:
    """mmscn (this checkout's, or tree's) on a one-state model."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "tiny.mmscn"
        path.write_text(TINY_MMSCN)
        return mmscn(path, [], None, base=False, tree=tree)


def baseline(tool: str) -> int:
    """Peak KB of the tool on a one-state model (the interpreter, pan's hash table and stack)."""
    if tool not in _BASE:
        if tool == "mmscn":
            _BASE[tool] = tiny().peak_kb
        else:
            f = spin(TINY_PML, base=False)
            _BASE[tool] = f.peak_kb if f else 0
    return _BASE[tool]


HEAD = (f"{'entry':<7} {'run':<14} {'verdict':<10} {'states':>11} {'total s':>8} {'CPU s':>7} "
        f"{'states/CPU s':>12} {'states/s':>9} {'peak MB':>8} {'KB/state':>9}")


def row(entry: str, label: str, f: Figures) -> str:
    states = "-" if f.states is None else f"{f.states:,}"
    kb = f.kb_per_state
    return (f"{entry:<7} {label:<14} {f.verdict:<10} {states:>11} {f.total:>8.2f} {f.cpu:>7.2f} "
            f"{f.rate:>12,.0f} {f.wall_rate:>9,.0f} {f.peak_kb / 1024:>8.1f} {'-' if kb is None else f'{kb:.2f}':>9}")


def compare(entry: str, figures: dict) -> str:
    """One line: mmscn (all reductions) against SPIN, end to end and per state."""
    a, s = figures.get("mmscn"), figures.get("SPIN")
    if not a or not s or not s.states:
        return ""
    return (f"{entry:<7} mmscn vs SPIN: {s.total / a.total:.2f}x end to end "
            f"({'mmscn faster' if a.total < s.total else 'SPIN faster'}), states {a.states:,} vs {s.states:,}")


# the commit before issue 16's work on the search (the state store, memo, visited set), for --before
BEFORE = "a2c87d2"


def before_tree(rev: str, into: Path) -> Path:
    """A folder from which `import mmscn` is commit rev's tree (as benchmarks/bench_state.py lays it out)."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from bench_state import importable, unpack
    into.mkdir(parents=True, exist_ok=True)
    return importable(unpack(rev, into), into / "import")


def best_of(repeat: int, path: Path, extra: list, max_seconds: Optional[float], tree=None,
            max_states: Optional[int] = None) -> Figures:
    """The run of `repeat` with the least CPU time."""
    return min((mmscn(path, extra, max_seconds, tree=tree, max_states=max_states) for _ in range(max(1, repeat))),
               key=lambda f: f.cpu)


def run_table(entries: list, make, *, labels: list, spin_timeout: Optional[float], max_seconds: Optional[float],
              repeat: int = 1, with_spin: bool = True, before: Optional[str] = None,
              max_states: Optional[int] = None) -> None:
    """For each entry: make(entry) -> (mmscn text, Promela text); every mode of mmscn and SPIN,
    the best of `repeat` runs by CPU time, side by side.  ``before``: a commit whose tree also runs
    the search without reductions, in the same run, for the raw speed after / before (over the
    same first ``max_states`` states where an entry is too big for the old tree to finish)."""
    print(f"machine: {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}, Python {sys.version.split()[0]}; "
          f"states/CPU s from the processes' own CPU time; KB/state from the peak RSS above the "
          f"tool's own on a one-state model (mmscn {baseline('mmscn') / 1024:.0f} MB, SPIN {baseline('SPIN') / 1024:.0f} MB)")
    print(HEAD)
    print("-" * len(HEAD))
    summary = []
    with tempfile.TemporaryDirectory() as tmp:
        old = before_tree(before, Path(tmp) / "before") if before else None
        if old is not None:
            tiny(old)                   # its bytecode written, as baseline() wrote this tree's
        for entry in entries:
            text, pml = make(entry)
            path = Path(tmp) / f"{entry.replace(':', '_').replace('x', '_')}.mmscn"
            path.write_text(text)
            figures = {}
            for label, extra in labels:
                best = best_of(repeat, path, extra, max_seconds, max_states=max_states)
                figures[label] = best
                print(row(entry, label, best), flush=True)
            if old is not None:
                best = best_of(repeat, path, ["--no-por", "--no-symmetry"], max_seconds, tree=old,
                               max_states=max_states)
                print(row(entry, f"{before} no-red", best), flush=True)
                now = figures.get("no-reductions")
                if now is not None and now.states == best.states and best.verdict == now.verdict:
                    summary.append(f"{entry:<7} raw speed (no reductions): {now.rate / best.rate:.2f}x the states "
                                   f"per CPU second of {before}, {best.kb_per_state or 0:.2f} -> "
                                   f"{now.kb_per_state or 0:.2f} KB/state")
                elif now is not None:
                    summary.append(f"{entry:<7} raw speed: not compared ({before} gave {best.verdict}, "
                                   f"{best.states} states; this tree {now.verdict}, {now.states})")
            if with_spin:
                f = spin(pml, spin_timeout)
                if f is None:
                    print(f"{entry:<7} SPIN           (spin or gcc not found: apt-get install -y spin)")
                else:
                    figures["SPIN"] = f
                    print(row(entry, "SPIN", f), flush=True)
            summary.append(compare(entry, figures))
    print()
    for line in summary:
        if line:
            print(line)
