#!/usr/bin/env python3
"""Speed and size of `mmscn draw`: prints figures, asserts nothing.

  python benchmarks/bench_draw.py            # 1,000 / 10,000 / 30,000 statements
  python benchmarks/bench_draw.py --quick    # 1,000 / 10,000

The scenario is bench_run.py's churn (fork, borrow, migrate, exit, assert;
each round frees the last round's mm), so a long run makes a new mm every
nine statements.  Figures: the run recorded for drawing (record.py), the SVG
written (svg.py), their sum, the file's size and bytes per statement, the
folds drawn in full and the statements counted in folded bands, and the size
of the text trace of the same run (`mmscn run`) for comparison; each twice:
as `mmscn draw` writes it (a long run's middle folded into counts) and as
`mmscn draw --full` does (every fold drawn).  Then `mmscn draw` end to end
(a fresh process) on the 10,000-statement file, both ways.
"""
from __future__ import annotations

import argparse
import gc
import io
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_run import churn, mmscn_exe  # noqa: E402


def best(f, repeat=3):
    times, out = [], None
    for _ in range(repeat):
        gc.collect()
        t = time.perf_counter()
        out = f()
        times.append(time.perf_counter() - t)
    return min(times), out


def measure(n: int) -> list:
    from mmscn.dsl.resolve import load
    from mmscn.interpreter.report import write_text
    from mmscn.pictures.record import record_run, timeline_of
    from mmscn.pictures.svg import svg
    text = churn(n + 1)           # the header lines are not statements: about n statements
    lines = text.split("\n")
    sc = load(text, "churn.mmscn")
    gc.disable()
    try:
        t_run, rec = best(lambda: record_run(sc, lines))
        tl = timeline_of(rec)
        pictures = {full: best(lambda: svg(tl, full=full)) for full in (False, True)}
    finally:
        gc.enable()
    buf = io.StringIO()
    write_text(rec.result, lines, buf)
    out = []
    for full, (t_svg, picture) in pictures.items():
        size = len(picture.encode())
        counted = sum(int(m) for m in re.findall(r'class="folded" data-from="\d+" data-to="\d+" '
                                                  r'data-statements="(\d+)"', picture))
        out.append({"how": "--full" if full else "folded", "statements": len(tl.columns), "mms": len(tl.mm_names),
                    "record": t_run, "svg": t_svg, "total": t_run + t_svg, "bytes": size,
                    "per_statement": size / max(1, len(tl.columns)), "trace_bytes": len(buf.getvalue().encode()),
                    "folds": picture.count('class="fold"'), "counted": counted})
    return out


def end_to_end(n: int, *flags) -> float:
    with tempfile.TemporaryDirectory() as d:
        src = os.path.join(d, "churn.mmscn")
        Path(src).write_text(churn(n + 1))
        out = os.path.join(d, "churn.svg")
        times = []
        for i in range(3):
            t = time.perf_counter()
            subprocess.run(mmscn_exe() + ["draw", src, "-o", out, "--force", *flags], check=True)
            times.append(time.perf_counter() - t)
        return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    sizes = (1_000, 10_000) if args.quick else (1_000, 10_000, 30_000)
    print("statements  mms     drawn   record   svg      total    SVG size    per stmt  text trace  folds  counted")
    for n in sizes:
        for m in measure(n):
            print(f"{m['statements']:>10,}  {m['mms']:>5,}  {m['how']:>6}  {m['record']:.3f} s  {m['svg']:.3f} s  "
                  f"{m['total']:.3f} s  {m['bytes'] / 1e6:>6.2f} MB  {m['per_statement']:>6.0f} B  "
                  f"{m['trace_bytes'] / 1e6:>6.2f} MB   {m['folds']:>5,}  {m['counted']:>7,}")
    for flags in ((), ("--full",)):
        print(f"mmscn draw {' '.join(flags) + ' ' if flags else ''}on 10,000 statements, end to end "
              f"(a fresh process): {end_to_end(10_000, *flags):.2f} s")


if __name__ == "__main__":
    main()
