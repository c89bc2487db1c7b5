#!/usr/bin/env python3
"""Run the grammar-aware fuzzer (tests/fuzzing.py) for a while and count what it finds.

Every input goes through the installed `mmscn` (check, run, run --json, explore
with a small --max-states and its witness replayed, compare), each command under
PYTHONHASHSEED 0 and 12345.  At the end it prints inputs/s, command runs/s,
the count per class of finding (exit 70, traceback, undocumented exit
status, unlocated error, bad JSON, witness that does not replay, hash-seed
difference, raw control bytes, timeout), and each distinct finding once, with
its input shrunk (--minimize-seconds) and whether it is a known item of
issue 12.

    python benchmarks/fuzz.py --seconds 60
    python benchmarks/fuzz.py --seconds 3600 --jobs 2 --out /tmp/fuzz-findings
    python benchmarks/fuzz.py --seconds 120 --seed 7          # the same inputs again

--out DIR: a new folder inside DIR (never an existing one) gets every failing
input (NNN-CLASS.mmscn, its command and detail in NNN-CLASS.txt, the shrunk
input in NNN-CLASS.min.mmscn) and summary.json.  Exit status 0 when nothing
was found, 1 otherwise.  A script that prints figures, never a test.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
try:
    import fuzzing as F
except ImportError as e:       # run by a Python without the test extras: use the project's venv
    venv = ROOT / ".venv" / "bin" / "python"
    if venv.exists() and Path(sys.executable).resolve() != venv.resolve() and not os.environ.get("MMSCN_FUZZ_REEXEC"):
        os.environ["MMSCN_FUZZ_REEXEC"] = "1"
        os.execv(str(venv), [str(venv), __file__, *sys.argv[1:]])
    sys.exit(f"benchmarks/fuzz.py needs the project with its test extras ({e}): "
             f"python3 -m venv .venv && .venv/bin/pip install -e '.[test]'")


def new_folder(parent: Path) -> Path:
    """A folder inside parent that did not exist before (never reuses one)."""
    parent.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for n in range(1000):
        d = parent / (f"fuzz-{stamp}" + (f"-{n}" if n else ""))
        try:
            d.mkdir()
            return d
        except FileExistsError:
            continue
    sys.exit(f"cannot make a new folder in {parent}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=60.0, help="how long to fuzz (default 60)")
    ap.add_argument("--seed", type=int, help="first batch's seed (default: random, printed)")
    ap.add_argument("--batch", type=int, default=24, help="inputs per batch (files per check/run process)")
    ap.add_argument("--jobs", type=int, default=1, help="batches checked at the same time (default 1)")
    ap.add_argument("--out", type=Path, help="keep failing inputs in a new folder inside this one")
    ap.add_argument("--minimize-seconds", type=float, default=30.0,
                    help="time to shrink each distinct finding's input (0: do not shrink)")
    args = ap.parse_args()
    seed = args.seed if args.seed is not None else int.from_bytes(os.urandom(3), "little")
    out = new_folder(args.out) if args.out else None
    print(f"fuzzing for {args.seconds:g} s: seed {seed}, batches of {args.batch}, {args.jobs} job(s), "
          f"{F.mmscn_cmd()[0]}" + (f", findings to {out}" if out else ""), flush=True)

    last = [0.0]

    def progress(tally, el):
        if el - last[0] >= 10:
            last[0] = el
            c = {k: v for k, v in tally.counts().items() if v}
            print(f"  {el:5.0f} s: {tally.inputs:,} inputs ({tally.inputs / el:.1f}/s), "
                  f"{sum(tally.runs.values()):,} runs, findings {c or 'none'}", flush=True)

    tally = F.fuzz(seconds=args.seconds, seed=seed, batch=args.batch, jobs=args.jobs, on_batch=progress)
    runs = sum(tally.runs.values())
    print(f"\n{tally.inputs:,} inputs in {tally.seconds:.0f} s: {tally.inputs / tally.seconds:.2f} inputs/s, "
          f"{runs:,} command runs ({runs / tally.seconds:.1f}/s), {tally.batches} batches from seed {seed}")
    print("command runs: " + ", ".join(f"{c} {n:,}" for c, n in sorted(tally.runs.items())))
    counts = tally.counts()
    print("findings per class: " + ", ".join(f"{c} {n}" for c, n in counts.items()))
    distinct = tally.distinct()
    print(f"distinct findings: {len(distinct)}")
    summary = []
    for n, (sig, f) in enumerate(sorted(distinct.items()), 1):
        known = F.known(f)
        small = f.data
        if args.minimize_seconds > 0:
            small = F.minimize(f.data, F.still_fails(f), budget=args.minimize_seconds)
        print(f"\n{n}. {sig}" + (f"   [known: issue 12 {known}]" if known else "   [NEW]"))
        print(f"   {sum(1 for g in tally.findings if g.signature() == sig)} time(s); mmscn {' '.join(map(repr, f.command))}")
        print(f"   {f.detail[:300]}")
        print(f"   input {f.name!r}, shrunk from {len(f.data):,} to {len(small):,} bytes: {small[:400]!r}")
        summary.append({"signature": sig, "class": f.kind, "known": known, "command": f.command,
                        "detail": f.detail, "name": f.name, "minimal": small.decode("utf-8", "backslashreplace")})
        if out:
            stem = f"{n:03d}-{f.kind}"
            (out / f"{stem}.mmscn").write_bytes(f.data)
            (out / f"{stem}.min.mmscn").write_bytes(small)
            (out / f"{stem}.txt").write_text(f"file name: {f.name!r}\nmmscn {' '.join(f.command)}\n{f.detail}\n",
                                             encoding="utf-8")
    if out:
        (out / "summary.json").write_text(json.dumps({
            "seed": seed, "seconds": round(tally.seconds, 1), "inputs": tally.inputs, "runs": dict(tally.runs),
            "counts": counts, "distinct": summary}, indent=2), encoding="utf-8")
        print(f"\nfailing inputs in {out}")
    return 1 if tally.findings else 0


if __name__ == "__main__":
    sys.exit(main())
