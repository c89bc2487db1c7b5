#!/usr/bin/env python3
"""The dense family: every CPU touches one shared mm, written as a .mmscn scenario and as the
same model in Promela, and exhausted by `mmscn explore` and SPIN side by side.

dense(NCPU, ROUNDS): a user process P whose mm @P every CPU works on.  P itself sleeps (it is
never scheduled, so mm_users never drops to 0); the prologue clones a thread t<c>_<r> of P and
makes a kernel thread k<c>_<r> (with an mmget of @P for it) for every CPU c and round r.  In
round r, CPU c schedules k<c>_<r>, which borrows @P with kthread_use_mm, gives it back with
kthread_unuse_mm and puts its reference; then it schedules the thread t<c>_<r>, which exits,
and goes idle.  Every statement is one atomic step, the CPUs' programs interleave freely, and
every one of them moves @P's mm_users or mm_count: the static footprints of partial-order
reduction see every pair of CPUs conflict.  No interleaving breaks an invariant.

    python3 benchmarks/explore_dense.py                 # 3x2 4x2 4x3 5x3 6x3
    python3 benchmarks/explore_dense.py 5x3 6x3 --max-seconds 300 --spin-timeout 600
    python3 benchmarks/explore_dense.py --print 2x2 mmscn     # the scenario (or pml) only
    python3 benchmarks/explore_dense.py --no-spin --modes mmscn 6x3
    python3 benchmarks/explore_dense.py --no-spin --modes no-reductions --before a2c87d2 4x3

The Promela model keeps the same atomic steps, the same lazy-TLB refcounting and the same
assertions as ../shared/anchors/spin/grid.py's (no mm used after free, counters never
negative, adopted mms have users).  A script that prints figures, never a test.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from explore_common import BEFORE, modes, run_table  # noqa: E402

DEFAULT = ["3x2", "4x2", "4x3", "5x3", "6x3"]


def programs(ncpu: int, rounds: int) -> dict:
    """Per CPU, its statements: (op, args) with tasks as names."""
    out = {}
    for c in range(ncpu):
        prog = []
        for r in range(rounds):
            k, t = f"k{c}_{r}", f"t{c}_{r}"
            prog += [("schedule", k), ("use_mm", k), ("unuse_mm", k), ("mmput",), ("schedule", t), ("exit", t),
                     ("idle",)]
        out[c] = prog
    return out


def tasks(ncpu: int, rounds: int) -> list:
    return [(f"t{c}_{r}", f"k{c}_{r}") for c in range(ncpu) for r in range(rounds)]


def mmscn(ncpu: int, rounds: int, arch: str = "generic") -> str:
    out = [f'scenario "dense {ncpu} cpus {rounds} rounds: every CPU borrows @P and ends threads of P"',
           f"arch {arch}", f"cpus {ncpu}", "spawn P                # sleeps throughout: mm_users stays above 0"]
    for t, k in tasks(ncpu, rounds):
        out += [f"spawn thread {t} of P", f"spawn kthread {k}", "mmget @P"]
    for c, prog in programs(ncpu, rounds).items():
        out.append(f"cpu{c} {{")
        for st in prog:
            out.append("    " + {"schedule": lambda: f"schedule {st[1]}", "use_mm": lambda: f"use_mm {st[1]} @P",
                                 "unuse_mm": lambda: f"unuse_mm {st[1]}", "mmput": lambda: "mmput @P",
                                 "exit": lambda: f"exit {st[1]}", "idle": lambda: "schedule idle"}[st[0]]())
        out.append("}")
    return "\n".join(out) + "\n"


PML_HEAD = r"""
/* mm 0 is init_mm, mm 1 is P's; task t < NT are the scenario's tasks, NT+c is cpu c's idle task */
#define NONE 255
#define RUNNABLE 0
#define RUNNING 1
#define DEAD 2
byte users[NMM]; byte count[NMM]; bool freed[NMM];
byte tmm[NT+NCPU]; byte tact[NT+NCPU]; byte tst[NT+NCPU];
byte curr[NCPU]; byte prevmm[NCPU];

inline mmdrop(m) { count[m]--; assert(count[m] < 200); if :: count[m] == 0 -> freed[m] = true :: else -> skip fi }
inline mmgrab(m) { assert(!freed[m]); count[m]++ }
inline mmput(m) { users[m]--; assert(users[m] < 200); if :: users[m] == 0 -> mmdrop(m) :: else -> skip fi }

/* context_switch + finish_task_switch, lazy TLB refcounting */
inline sched(c, n) {
  tst[n] == RUNNABLE ->
  p = curr[c];
  if
  :: tmm[n] == NONE ->
       tact[n] = tact[p];
       if :: tmm[p] != NONE -> mmgrab(tact[p]) :: else -> tact[p] = NONE fi
  :: else ->
       if :: tmm[p] == NONE -> prevmm[c] = tact[p]; tact[p] = NONE :: else -> skip fi
  fi;
  tst[n] = RUNNING; curr[c] = n;
  if :: tst[p] != DEAD -> tst[p] = RUNNABLE :: else -> skip fi;
  if :: prevmm[c] != NONE -> mmdrop(prevmm[c]); prevmm[c] = NONE :: else -> skip fi;
  assert(tact[n] == NONE || !freed[tact[n]]);
  p = 0
}
inline do_exit(t) { m = tmm[t]; mmgrab(m); tmm[t] = NONE; mmput(m); tst[t] = DEAD; m = 0 }
inline use_mm(t, mm) { assert(users[mm] > 0); mmgrab(mm); m = tact[t]; tact[t] = mm; tmm[t] = mm; mmdrop(m); m = 0 }
inline unuse_mm(t) { m = tmm[t]; tmm[t] = NONE; mmgrab(m); mmdrop(m); m = 0 }
"""


def pml(ncpu: int, rounds: int) -> str:
    names = ["P"] + [x for pair in tasks(ncpu, rounds) for x in pair]
    ix = {n: i for i, n in enumerate(names)}
    nt = len(names)
    lines = [f"#define NCPU {ncpu}", f"#define NT {nt}", "#define NMM 2", PML_HEAD]
    for c, prog in programs(ncpu, rounds).items():
        lines.append(f"active proctype cpu{c}() {{ byte p, m;")
        lines.append("  (started) ->")
        for st in prog:
            lines.append("  atomic { " + {"schedule": lambda: f"sched({c}, {ix[st[1]]})",
                                          "idle": lambda: f"sched({c}, NT+{c})",
                                          "exit": lambda: f"do_exit({ix[st[1]]})",
                                          "use_mm": lambda: f"use_mm({ix[st[1]]}, 1)",
                                          "unuse_mm": lambda: f"unuse_mm({ix[st[1]]})",
                                          "mmput": lambda: "mmput(1)"}[st[0]]() + " };")
        lines.append("}")
    init = ["bool started;", "init { byte i; atomic {",
            "  users[0] = 2; count[0] = 1 + NCPU;",
            "  i = 0; do :: i < NCPU -> curr[i] = NT+i; tmm[NT+i] = NONE; tact[NT+i] = 0; tst[NT+i] = RUNNING; "
            "prevmm[i] = NONE; i++ :: else -> break od;",
            "  users[1] = 1; count[1] = 1; tmm[0] = 1; tact[0] = 1; tst[0] = RUNNABLE;"]
    for t, k in tasks(ncpu, rounds):
        init.append(f"  users[1]++; tmm[{ix[t]}] = 1; tact[{ix[t]}] = 1; tst[{ix[t]}] = RUNNABLE;")
        init.append(f"  users[1]++; tmm[{ix[k]}] = NONE; tact[{ix[k]}] = NONE; tst[{ix[k]}] = RUNNABLE;")
    init += ["  started = true", "} }"]
    return "\n".join(lines[:4] + init + lines[4:]) + "\n"


def parse(entry: str) -> tuple:
    c, r = entry.lower().split("x")
    return int(c), int(r)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("entries", nargs="*", default=DEFAULT, metavar="CPUSxROUNDS")
    ap.add_argument("--print", nargs=2, metavar=("ENTRY", "KIND"), help="print one entry's scenario "
                    "(KIND mmscn) or Promela model (KIND pml) and stop")
    ap.add_argument("--modes", nargs="*", metavar="LABEL", help="only these mmscn runs (labels as printed)")
    ap.add_argument("--no-spin", action="store_true", help="leave SPIN out")
    ap.add_argument("--repeat", type=int, default=1, help="runs of each mmscn mode; the least CPU time counts")
    ap.add_argument("--max-seconds", type=float, default=120.0, help="bound each mmscn run (default 120)")
    ap.add_argument("--arch", default="generic", help="the scenario's arch (SPIN's model is the same: its "
                    "checks are arch-free)")
    ap.add_argument("--max-states", type=int, metavar="N", help="bound each mmscn run to its first N states "
                    "(with --before: the raw speed over the same states where the old tree cannot finish)")
    ap.add_argument("--spin-timeout", type=float, default=600.0, help="bound SPIN's search (default 600 s)")
    ap.add_argument("--before", metavar="REV", help=f"also run the search without reductions from commit REV's "
                    f"tree ({BEFORE}: before issue 16's work), in the same run: the raw speed after / before")
    args = ap.parse_args()
    if args.print:
        c, r = parse(args.print[0])
        print(mmscn(c, r, args.arch) if args.print[1] == "mmscn" else pml(c, r), end="")
        return 0
    labels = [m for m in modes() if not args.modes or m[0] in args.modes]
    print("dense family: every CPU borrows one shared mm (kthread_use_mm) and ends threads of it")
    run_table(args.entries, lambda e: (mmscn(*parse(e), args.arch), pml(*parse(e))), labels=labels,
              spin_timeout=args.spin_timeout, max_seconds=args.max_seconds, repeat=args.repeat,
              with_spin=not args.no_spin, before=args.before,
              max_states=args.max_states)
    return 0


if __name__ == "__main__":
    sys.exit(main())
