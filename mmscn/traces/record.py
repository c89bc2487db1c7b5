"""`mmscn record -o FILE -- COMMAND`: a trace for import, run and validate, in one step.

A thin wrapper over `perf record -a` with the events the importer reads.
The command runs behind a small Python step that first writes FILE.ps, a
snapshot of every task alive at that moment (recording has started, so
every task the trace meets is either in the snapshot or forked in the
trace): TGID, TID, PPID, the whole task flags from /proc/PID/task/TID/stat
(PF_KTHREAD among them, which `ps -o flags` does not show) and the comm.
Then `perf script --show-lost-events` writes the trace to FILE as text.

Only the standard library is imported at module level: the CLI imports this
module when it starts.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile

EVENTS = ("sched:sched_switch", "sched:sched_process_fork", "sched:sched_process_exec",
          "sched:sched_process_exit", "sched:sched_migrate_task", "task:task_newtask", "task:task_rename",
          "tlb:tlb_flush")
HEADER = "TGID TID PPID FLAGS COMMAND"


def snapshot(path: str) -> int:
    """Write every task of /proc as a line of HEADER, after the tasks the file already lists
    (taken before recording started: a task that died meanwhile is still known); the number of tasks."""
    rows = {}
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            for line in list(f)[1:]:
                tgid, tid, ppid, flags, comm = line.rstrip("\n").split(" ", 4)
                rows[int(tid)] = (int(tgid), int(tid), int(ppid), int(flags, 16), comm)
    for tgid in os.listdir("/proc"):
        if not tgid.isdigit():
            continue
        try:
            tids = os.listdir(f"/proc/{tgid}/task")
        except OSError:
            continue        # gone meanwhile
        for tid in tids:
            try:
                with open(f"/proc/{tgid}/task/{tid}/stat", "rb") as f:
                    stat = f.read().decode("utf-8", "replace")
            except OSError:
                continue
            lp, rp = stat.find("("), stat.rfind(")")
            comm = stat[lp + 1:rp]
            rest = stat[rp + 2:].split()
            # after the comm: state ppid pgrp session tty_nr tpgid flags (proc_pid_stat(5))
            rows[int(tid)] = (int(tgid), int(tid), int(rest[1]), int(rest[6]), comm)
    rows = sorted(rows.values(), key=lambda r: r[1])
    with open(path, "w", encoding="utf-8") as f:
        f.write(HEADER + "\n")
        for tgid, tid, ppid, flags, comm in rows:
            f.write(f"{tgid} {tid} {ppid} 0x{flags:08x} {comm}\n")
    return len(rows)


def snapshot_and_exec() -> None:
    """The step perf runs: the snapshot, then the command in its place (argv: PS COMMAND...)."""
    ps, command = sys.argv[1], sys.argv[2:]
    snapshot(ps)
    try:
        os.execvp(command[0], command)
    except OSError as e:
        sys.stderr.write(f"mmscn record: {command[0]}: {e.strerror or e}\n")
        os._exit(127)


def add_arguments(p) -> None:
    p.description = ("Run COMMAND under `perf record -a` with the scheduler, task and TLB tracepoints the importer "
                     "reads; write the trace as `perf script` text to FILE and a snapshot of the tasks alive when "
                     "recording started to FILE.ps, which import, run and validate find by themselves.")
    p.epilog = ("exit status: 0 the trace was written (whatever COMMAND's own exit status, which is printed); "
                "2 perf is missing, cannot record these events, or the command line is wrong.  docs/traces.md")
    p.add_argument("-o", "--output", metavar="FILE", required=True, help="the trace (text), a new file; FILE.ps "
                                                                         "the snapshot")
    p.add_argument("--force", action="store_true", help="let FILE and FILE.ps replace existing files "
                                                        "(never through a symlink)")
    p.add_argument("command", nargs="+", metavar="COMMAND", help="the workload (after --)")


def _tracefs_missing() -> list:
    """The events this kernel does not have (empty when tracefs cannot be read: perf will say)."""
    for root in ("/sys/kernel/tracing/events", "/sys/kernel/debug/tracing/events"):
        if os.path.isdir(root):
            return [e for e in EVENTS if not os.path.isdir(os.path.join(root, *e.split(":")))]
    return []


def run(args) -> int:
    from mmscn.exits import EXIT_BAD_INPUT, EXIT_OK
    perf = shutil.which("perf")
    if perf is None:
        sys.stderr.write("mmscn record: perf is not installed: this command runs `perf record` "
                         "(Debian: apt-get install linux-perf; Fedora: dnf install perf)\n")
        return EXIT_BAD_INPUT
    missing = _tracefs_missing()
    if missing:
        sys.stderr.write(f"mmscn record: this kernel has no tracepoint {', '.join(missing)} "
                         f"(tlb:tlb_flush exists on x86 only); the trace could not be validated\n")
        return EXIT_BAD_INPUT
    from mmscn.dsl.files import Unwritable, check_target, write_file
    out, ps = args.output, args.output + ".ps"
    try:
        for path in (out, ps):      # before perf runs: a wrong -o is not a perf failure
            check_target(path, force=args.force)
    except Unwritable as e:
        sys.stderr.write(f"mmscn record: {e}\n")
        return EXIT_BAD_INPUT
    with tempfile.TemporaryDirectory(prefix="mmscn-record-") as tmp:
        # perf and the snapshot write into this private folder; FILE and FILE.ps are
        # written from it by write_file (never through a symlink, never over a file without --force)
        data, text, tmp_ps = (os.path.join(tmp, n) for n in ("perf.data", "trace.txt", "tasks.ps"))
        snapshot(tmp_ps)                # the tasks alive now; the step under perf adds those of then
        os.utime(tmp_ps, (0, 0))        # its mtime changes when the step ran
        cmd = [perf, "record", "-q", "-a", "-o", data]
        for e in EVENTS:
            cmd += ["-e", e]
        cmd += ["--", sys.executable, "-c", "from mmscn.traces.record import snapshot_and_exec; snapshot_and_exec()",
                tmp_ps] + list(args.command)
        try:
            rec = subprocess.run(cmd, stderr=subprocess.PIPE, text=True, errors="replace")
        except OSError as e:
            sys.stderr.write(f"mmscn record: cannot run perf: {e.strerror or e}\n")
            return EXIT_BAD_INPUT
        if not os.path.exists(data) or os.path.getmtime(tmp_ps) == 0:
            sys.stderr.write("mmscn record: perf could not record: " + _perf_said(rec.stderr) +
                             "\n  (it needs root or kernel.perf_event_paranoid <= -1, and tracefs mounted)\n")
            return EXIT_BAD_INPUT
        with open(text, "w", encoding="utf-8") as f:
            conv = subprocess.run([perf, "script", "-i", data, "--show-lost-events"], stdout=f,
                                  stderr=subprocess.PIPE, text=True, errors="replace")
        if conv.returncode != 0:
            sys.stderr.write("mmscn record: perf script failed: " + _perf_said(conv.stderr) + "\n")
            return EXIT_BAD_INPUT
        try:
            with open(text, "rb") as f:
                write_file(out, iter(lambda: f.read(1 << 20), b""), force=args.force)
            with open(tmp_ps, "rb") as f:
                write_file(ps, f.read(), force=args.force)
        except Unwritable as e:
            sys.stderr.write(f"mmscn record: {e}\n")
            return EXIT_BAD_INPUT
    with open(out, encoding="utf-8", errors="replace") as f:
        n = sum(1 for line in f if line.strip() and not line.startswith("#"))
    status = rec.returncode
    sys.stderr.write(f"mmscn record: {n:,} events in {out}, the task snapshot in {ps}; "
                     f"{' '.join(args.command)} exited with status {status}\n")
    return EXIT_OK


def _perf_said(stderr: str) -> str:
    lines = [line.strip() for line in (stderr or "").splitlines() if line.strip()]
    return "; ".join(lines[:6]) or "no message"
