#!/usr/bin/env python3
"""Speed of `mmscn run` and `mmscn check`: prints figures, asserts nothing.

  python benchmarks/bench_run.py            # the issue's figures
  python benchmarks/bench_run.py --quick    # smaller sizes

Figures:
  1. end to end: `mmscn run --quiet` (and with the full trace to /dev/null) on a
     generated 140,000-line scenario, as lines per second, next to Lark's own
     parse time of the same text (a plain Lark LALR parser building its tree).
  2. flatness: in-process cost per statement at 1,000 ... 1,000,000 statements.
  3. start-up: `mmscn check` on a 20-line file against `python -c "import lark"`.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def churn(lines: int) -> str:
    """fork, borrow, migrate, exit, assert, repeated: each round frees the previous round's mm."""
    out = ['scenario "churn: fork, borrow, migrate, exit, assert"', "arch generic", "cpus 2",
           "spawn kthread kw"]
    i = 0
    while len(out) < lines:
        a = f"A{i}"
        out += [
            f"spawn {a}",                      # fork: a fresh mm @Ai
            f"schedule cpu0 {a}",              # idle0 -> Ai: drops idle0's lazy ref on the last round's mm
            f"schedule cpu0 kw",               # Ai -> kw: kw borrows @Ai
            f"schedule cpu1 {a}",              # migrate: idle1 -> Ai on cpu1
            f"exit {a}",                       # exit_mm, mmput: users 1 -> 0
            f"schedule cpu1 idle",             # idle1 borrows the zombie @Ai
            f"assert @{a} is zombie, @{a}.count == 2, kw.active_mm == @{a}",
            f"schedule cpu0 idle",             # kw -> idle0: the reference is handed over
        ]
        if i:
            out.append(f"assert @A{i - 1} is freed")
        i += 1
    return "\n".join(out[:lines]) + "\n"


def mmscn_exe() -> list:
    exe = Path(sys.executable).parent / "mmscn"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "mmscn"]


def wall(cmd, repeat=1, **kw) -> float:
    best = []
    for _ in range(repeat):
        t = time.perf_counter()
        subprocess.run(cmd, check=False, **kw)
        best.append(time.perf_counter() - t)
    return statistics.median(best)


def lark_parse_time(text: str) -> float:
    from lark import Lark
    from mmscn.grammar import GRAMMAR_FILE
    p = Lark(GRAMMAR_FILE.read_text(), parser="lalr", lexer="contextual")
    t = time.perf_counter()
    p.parse(text)
    return time.perf_counter() - t


def in_process(text: str) -> dict:
    """Parse and run in this process, with the collector off as `mmscn` runs."""
    import gc
    from mmscn.dsl.resolve import load
    from mmscn.interpreter.runner import Runner
    gc.collect()
    gc.disable()
    t0 = time.perf_counter()
    sc = load(text, "bench.mmscn")
    t1 = time.perf_counter()
    r = Runner(sc, text.split("\n"), trace=False).run()
    t2 = time.perf_counter()
    gc.enable()
    assert not r.failed, r.diagnostics[:3]
    return {"parse": t1 - t0, "run": t2 - t1, "total": t2 - t0}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    big = 140_000
    tmp = Path(tempfile.mkdtemp())
    f = tmp / "churn.mmscn"
    f.write_text(churn(big))
    text = f.read_text()
    n = text.count("\n")

    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}")
    print(f"\n1. end to end on a generated {n:,}-line scenario")
    lark_t = lark_parse_time(text)
    quiet = wall(mmscn_exe() + ["run", "--quiet", str(f)], stdout=subprocess.DEVNULL)
    full = wall(mmscn_exe() + ["run", str(f)], stdout=subprocess.DEVNULL)
    # x86 traces its hardware (loaded_mm, is_lazy, mm_cpumask of every live mm) after each statement
    fx = tmp / "churn_x86.mmscn"
    fx.write_text(text.replace("arch generic", "arch x86", 1))
    x86 = wall(mmscn_exe() + ["run", str(fx)], stdout=subprocess.DEVNULL)
    print(f"   Lark's own parse (lalr, tree)   {lark_t:7.2f} s  {n / lark_t:10,.0f} lines/s")
    print(f"   mmscn run --quiet               {quiet:7.2f} s  {n / quiet:10,.0f} lines/s"
          f"   ({quiet / lark_t:.2f} x Lark's parse)")
    print(f"   mmscn run (trace to /dev/null)  {full:7.2f} s  {n / full:10,.0f} lines/s"
          f"   ({full / lark_t:.2f} x Lark's parse)")
    print(f"   the same under arch x86         {x86:7.2f} s  {n / x86:10,.0f} lines/s"
          f"   ({x86 / lark_t:.2f} x Lark's parse)")

    print("\n2. cost per statement, in process (parse + resolve, run without trace)")
    print(f"   {'statements':>10} {'parse us/line':>14} {'run us/line':>12} {'total us/line':>14}")
    sizes = [1_000, 10_000, 100_000] + ([] if args.quick else [1_000_000])
    for size in sizes:
        t = churn(size)
        ph = in_process(t)
        print(f"   {size:>10,} {ph['parse'] / size * 1e6:14.1f} {ph['run'] / size * 1e6:12.1f}"
              f" {ph['total'] / size * 1e6:14.1f}")

    print("\n3. start-up: `mmscn check` on a 20-line file")
    small = tmp / "small.mmscn"
    small.write_text(churn(20))
    rep = 5 if args.quick else 15
    # As installed: pip byte-compiles a package, so both sides run from cached bytecode (an editable
    # install under PYTHONDONTWRITEBYTECODE would recompile mmscn on every start); one warm-up each.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    imp_cmd, chk_cmd = [sys.executable, "-c", "import lark"], mmscn_exe() + ["check", "-q", str(small)]
    wall(imp_cmd, env=env)
    wall(chk_cmd, env=env)
    imp = wall(imp_cmd, repeat=rep, env=env)
    chk = wall(chk_cmd, repeat=rep, env=env)
    print(f"   python -c 'import lark'   {imp * 1000:7.1f} ms")
    print(f"   mmscn check (20 lines)    {chk * 1000:7.1f} ms   ({chk / imp:.2f} x, target <= 2.00 x)")


if __name__ == "__main__":
    main()
