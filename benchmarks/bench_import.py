#!/usr/bin/env python3
"""Speed and memory of importing and replaying a kernel trace: prints figures, asserts nothing.

  python benchmarks/bench_import.py              # 1,000,000 events (and 100k, 300k for flatness)
  python benchmarks/bench_import.py --quick      # 100,000 events
  python benchmarks/bench_import.py --events N --keep trace.txt

The trace is synthetic `perf script` text from a small scheduler simulation
on 4 CPUs: long-lived processes with threads, kernel threads, idle, and a
steady churn of fork, exec and exit; every x86 CR3 write is a tlb:tlb_flush
"flush on task switch" event where switch_mm_irqs_off would write it, and
there are `local MM shootdown` flushes besides.  Each figure is measured in
a fresh process (so peak RSS is that step's own):

  import   Trace.records(): parse and import, the scenario written to /dev/null
  replay   import and replay every statement under arch x86 (Replay.step)
  validate `mmscn validate`'s work: import, replay, the CR3 comparison
"""
from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NCPUS = 4


def generate(path: str, events: int, seed: int = 1) -> int:
    """Write a consistent synthetic trace of about ``events`` events; the number written."""
    rnd = random.Random(seed)
    t = 1000.0
    out = open(path, "w")
    n = 0
    # tasks: pid -> [comm, mm id or None (kthread)]
    tasks = {}
    procs = []          # user pids that may fork
    next_pid = 1000
    next_mm = 1
    for i in range(6):                              # long-lived processes, two threads each
        mm = next_mm
        next_mm += 1
        for j in range(2):
            tasks[next_pid] = ["worker", mm]
            procs.append(next_pid)
            next_pid += 1
    for i in range(NCPUS):
        tasks[10 + i] = [f"kworker/{i}:1", None]
    curr = [0] * NCPUS                              # pid 0: idle
    loaded = [0] * NCPUS                            # mm loaded per CPU (0: init_mm)
    running = set()
    exiting = {}                                    # pid -> cpu: exited, its last switch to come

    def line(cpu, pid, comm, event, fields):
        nonlocal n
        out.write(f"{comm:>16} {pid:>6} [{cpu:03d}] {t:>12.6f}: {event + ':':>25} {fields}\n")
        n += 1

    def comm_of(pid):
        return "swapper" if pid == 0 else tasks[pid][0]

    def switch(cpu, nxt):
        prev = curr[cpu]
        pcomm, ncomm = comm_of(prev), comm_of(nxt)
        state = "Z" if prev in exiting else "S"
        line(cpu, prev, pcomm, "sched:sched_switch",
             f"prev_comm={pcomm if prev else f'swapper/{cpu}'} prev_pid={prev} prev_prio=120 prev_state={state} "
             f"==> next_comm={ncomm if nxt else f'swapper/{cpu}'} next_pid={nxt} next_prio=120")
        mm = tasks[nxt][1] if nxt else None
        if mm is not None and loaded[cpu] != mm:      # switch_mm_irqs_off writes CR3
            line(cpu, prev, pcomm, "tlb:tlb_flush", f"pages:{rnd.choice((0, -1))} reason:flush on task switch (0)")
            loaded[cpu] = mm
        running.discard(prev)
        if prev in exiting:
            del exiting[prev]
            del tasks[prev]
        curr[cpu] = nxt
        if nxt:
            running.add(nxt)

    while n < events:
        t += 0.000005 + rnd.random() * 0.00002
        cpu = rnd.randrange(NCPUS)
        cur = curr[cpu]
        if cur in exiting:
            idle = [p for p in tasks if p not in running and p not in exiting]
            switch(cpu, rnd.choice(idle + [0]))
            continue
        r = rnd.random()
        if cur and tasks[cur][1] is not None and r < 0.02 and len(tasks) < 60:      # fork
            child = next_pid
            next_pid += 1
            line(cpu, cur, comm_of(cur), "task:task_newtask",
                 f"pid={child} comm={comm_of(cur)} clone_flags=1200000 oom_score_adj=0")
            line(cpu, cur, comm_of(cur), "sched:sched_process_fork",
                 f"comm={comm_of(cur)} pid={cur} child_comm={comm_of(cur)} child_pid={child}")
            tasks[child] = [comm_of(cur), next_mm]
            next_mm += 1
        elif cur and tasks[cur][1] is not None and cur not in procs and r < 0.04:    # exec
            old = tasks[cur][1]
            tasks[cur][1] = next_mm
            next_mm += 1
            for d in range(NCPUS):      # the old mm's last user: exit_mmap's flush moves its lazy CPUs
                if d != cpu and loaded[d] == old and (curr[d] == 0 or tasks[curr[d]][1] is None):
                    line(d, curr[d], comm_of(curr[d]), "tlb:tlb_flush", "pages:-1 reason:flush on task switch (0)")
                    loaded[d] = 0
            line(cpu, cur, comm_of(cur), "tlb:tlb_flush", "pages:-1 reason:flush on task switch (0)")
            loaded[cpu] = tasks[cur][1]
            line(cpu, cur, comm_of(cur), "tlb:tlb_flush", "pages:1 reason:local MM shootdown (3)")
            tasks[cur][0] = "ls"
            line(cpu, cur, "ls", "sched:sched_process_exec", f"filename=/bin/ls pid={cur} old_pid={cur}")
        elif cur and tasks[cur][1] is not None and cur not in procs and r < 0.06:    # exit, the last user
            line(cpu, cur, comm_of(cur), "sched:sched_process_exit",
                 f"comm={comm_of(cur)} pid={cur} prio=120 group_dead=true")
            line(cpu, cur, comm_of(cur), "tlb:tlb_flush", "pages:-1 reason:flush on task switch (0)")
            loaded[cpu] = 0                         # exit_mmap's flush: this lazy CPU to init_mm
            for d in range(NCPUS):                  # and every other CPU lazy on the mm
                if d != cpu and loaded[d] == tasks[cur][1] and (curr[d] == 0 or tasks[curr[d]][1] is None):
                    line(d, curr[d], comm_of(curr[d]), "tlb:tlb_flush", "pages:-1 reason:flush on task switch (0)")
                    loaded[d] = 0
            exiting[cur] = cpu
        elif cur and tasks[cur][1] is not None and r < 0.30:
            line(cpu, cur, comm_of(cur), "tlb:tlb_flush", "pages:1 reason:local MM shootdown (3)")
        else:
            idle = [p for p in tasks if p not in running and p not in exiting]
            nxt = rnd.choice(idle + [0, 0]) if idle else 0
            if nxt != cur:
                switch(cpu, nxt)
    out.close()
    with open(path + ".ps", "w") as ps:     # what `mmscn record` writes beside its trace
        ps.write("TGID TID PPID FLAGS COMMAND\n")
        for pid in procs:
            ps.write(f"{1000 + (pid - 1000) // 2 * 2} {pid} 1 0x00400040 worker\n")
        for i in range(NCPUS):
            ps.write(f"{10 + i} {10 + i} 2 0x00208040 kworker/{i}:1\n")
    return n


STEP = {
    "import": ("from mmscn.traces.importer import Trace\n"
               "n = sum(1 for r in Trace(PATH).records() if r.text is not None)\n"),
    "replay": ("from mmscn.traces.importer import Trace\nfrom mmscn.traces.replay import Replay\n"
               "tr = Trace(PATH); rp = Replay(tr, 'x86')\n"
               "for r in tr.records():\n"
               "    if r.kind == 'stmt' and not rp.step(r): raise SystemExit(rp.failure.render())\n"),
    "validate": ("from mmscn.traces.importer import Trace\nfrom mmscn.traces.validate import validate\n"
                 "res = validate(Trace(PATH))\n"
                 "assert res['stopped'] is None, res['stopped']\n"
                 "print('agreement', res['agreement'], file=sys.stderr)\n"),
}


def measure(step: str, path: str) -> tuple:
    """(wall seconds, CPU seconds, peak RSS in MiB) of one step in a fresh interpreter, as `mmscn` runs
    (the cyclic collector off).  On a shared machine the wall time follows the load; the CPU time less."""
    code = ("import gc, resource, sys, time\ngc.disable()\nPATH = sys.argv[1]\n"
            "r0 = resource.getrusage(resource.RUSAGE_SELF)\nt0 = time.perf_counter()\n"
            + STEP[step] +
            "r1 = resource.getrusage(resource.RUSAGE_SELF)\n"
            "print(time.perf_counter() - t0, r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime, "
            "r1.ru_maxrss / 1024)\n")
    r = subprocess.run([sys.executable, "-c", code, path], capture_output=True, text=True, cwd=ROOT)
    if r.returncode != 0:
        raise SystemExit(f"{step} failed: {r.stderr}")
    wall, cpu, rss = r.stdout.split()
    return float(wall), float(cpu), float(rss)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="100,000 events only")
    ap.add_argument("--events", type=int, help="one size only")
    ap.add_argument("--keep", metavar="FILE", help="write the largest trace here and keep it")
    args = ap.parse_args()
    sizes = [args.events] if args.events else [100_000] if args.quick else [100_000, 300_000, 1_000_000]
    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}; synthetic perf script, {NCPUS} CPUs")
    print(f"   {'events':>10} {'MB':>6} {'step':>9} {'wall s':>8} {'CPU s':>8} {'events/CPU s':>13} "
          f"{'peak RSS MiB':>13}")
    tmp = tempfile.mkdtemp()
    for size in sizes:
        path = args.keep if args.keep and size == sizes[-1] else os.path.join(tmp, f"trace_{size}.txt")
        t0 = time.perf_counter()
        n = generate(path, size)
        gen = time.perf_counter() - t0
        mb = os.path.getsize(path) / 1e6
        for step in ("import", "replay", "validate"):
            wall, cpu, rss = measure(step, path)
            print(f"   {n:>10,} {mb:>6.0f} {step:>9} {wall:>8.2f} {cpu:>8.2f} {n / cpu:>13,.0f} {rss:>13.1f}")
        print(f"   ({gen:.1f} s to generate)")
        if path.startswith(tmp):
            os.remove(path)
            os.remove(path + ".ps")


if __name__ == "__main__":
    main()
