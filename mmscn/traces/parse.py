"""Read kernel trace text a line at a time: `perf script`, ftrace and `trace-cmd report`.

The three formats share the shape of an event line (who was current, on
which CPU, when, which event, its fields) and differ in the details:

  perf script        ``  comm  tid [cpu]  time:  sched:sched_switch: prev_comm=...``
  ftrace trace/pipe  ``  comm-pid  [cpu] flags  time: sched_switch: prev_comm=...``
  trace-cmd report   ``  comm-pid  [cpu]  time: sched_switch:  comm:pid [prio] S ==> ...``

The format is told from the content (headers first, then the lines
themselves), never from the file name.  Nothing here keeps more than one
line: the importer pulls events through ``events()`` as it goes.
"""
from __future__ import annotations

import functools
import re
from typing import Iterator, Optional

PERF, FTRACE, TRACE_CMD = "perf script", "ftrace", "trace-cmd report"

_P = {}     # the patterns, compiled on first use (the CLI imports this module when it starts)


@functools.lru_cache(maxsize=None)
def rx(name: str):
    return re.compile(_P[name])


# An event line of perf script: the comm may hold spaces, `tid` may be `pid/tid`.
_P["perf"] = (
    r"\s*(?P<comm>.*?)\s+(?P<pid>-?\d+)(?:/(?P<tid>-?\d+))?\s+\[(?P<cpu>\d+)\]\s+(?P<time>\d+\.\d+):\s+"
    r"(?:\d+\s+)?(?P<event>[\w-]+:[\w-]+:|PERF_RECORD_\w+)\s*(?P<rest>.*)")
# ftrace and trace-cmd: `comm-pid`, an optional `(tgid)`, optional latency flags.
_P["ftrace"] = (
    r"\s*(?P<comm>.*?)-(?P<pid>\d+)\s+(?:\(\s*(?P<tgid>[\d-]+)\)\s+)?\[(?P<cpu>\d+)\]\s+"
    r"(?:(?P<flags>\S+)\s+)??(?P<time>\d+\.\d+):\s+(?P<event>[\w-]+):\s*(?P<rest>.*)")

# Lost-event markers of each format.
_P["ftrace_lost"] = r"CPU:(?P<cpu>\d+) \[LOST (?P<n>\d+) EVENTS\]"
_P["started"] = r"#{5} CPU (?P<cpu>\d+) buffer started #{4}"
_P["tracecmd_lost"] = r"CPU:(?P<cpu>\d+) \[(?:(?P<n>\d+) )?EVENTS DROPPED\]"

_CPUS_HEADERS = (r"#P:(\d+)", r"^cpus=(\d+)", r"#\s*nrcpus avail\s*:\s*(\d+)")


class Event:
    """One event line: what ran where and when, and the event's own text (``rest``)."""
    __slots__ = ("lineno", "cpu", "time", "pid", "comm", "name", "rest", "f")

    def __init__(self, lineno, cpu, time, pid, comm, name, rest):
        self.lineno, self.cpu, self.time, self.pid = lineno, cpu, time, pid
        self.comm, self.name, self.rest = comm, name, rest
        self.f = False          # its fields, parsed once (None: they do not parse)

    @property
    def fields(self):
        if self.f is False:
            self.f = switch_fields(self.rest) if self.name == "sched_switch" else fields(self.name, self.rest)
        return self.f

    @property
    def t(self) -> float:
        return float(self.time)


class Lost:
    """A lost-events marker: ``n`` events of ``cpu`` (None: every CPU) are missing here."""
    __slots__ = ("lineno", "cpu", "n", "time", "text")

    def __init__(self, lineno, cpu, n, time, text):
        self.lineno, self.cpu, self.n, self.time, self.text = lineno, cpu, n, time, text


class Bad:
    """A line that is no event, no header and no marker (a truncated or garbled line)."""
    __slots__ = ("lineno", "text")

    def __init__(self, lineno, text):
        self.lineno, self.text = lineno, text


def sniff(head: list) -> Optional[str]:
    """The format of a trace from its first lines, or None when it is not a trace.

    The first line that is neither blank nor a header decides: an event line of one of the
    formats, or no trace at all (a scenario's first statement).  Header lines only say which
    of ftrace and trace-cmd an event line in their shared shape belongs to, and name the
    format of a trace without events.
    """
    hint = None
    for line in head:
        s = line.strip()
        if not s:
            continue
        if s.startswith("#"):
            if s.startswith("# tracer:") or rx("started").match(s):
                hint = hint or FTRACE
            continue
        if s.startswith(("version = ", "cpus=")) or re.match(r"CPU \d+ is empty$", s):
            hint = TRACE_CMD
            continue
        if rx("ftrace_lost").search(s) or rx("tracecmd_lost").search(s):
            continue
        if rx("perf").match(line):
            return PERF
        if rx("ftrace").match(line):
            if hint is not None:
                return hint
            m = re.search(r"sched_switch:\s+(\S+)", line)
            if m and not m.group(1).startswith("prev_comm="):
                return TRACE_CMD      # trace-cmd's sched_switch plugin: `comm:pid [prio] S ==> ...`
            return FTRACE
        return None
    return hint


def header_cpus(line: str) -> Optional[int]:
    """The number of CPUs a header line states (ftrace `#P:N`, trace-cmd `cpus=N`, perf --header)."""
    for pattern in _CPUS_HEADERS:
        m = re.search(pattern, line)
        if m:
            return int(m.group(1))
    return None


def events(lines, fmt: str) -> Iterator:
    """Event, Lost or Bad for every line that is not blank or a header."""
    match = rx("perf" if fmt == PERF else "ftrace").match
    last_time = "0"
    perf = fmt == PERF
    for lineno, line in enumerate(lines, 1):
        m = match(line)
        if m is not None:
            if perf:
                comm, pid, tid, cpu, time, ev, rest = m.groups()
                if ev[-1] != ":":           # PERF_RECORD_*
                    if ev == "PERF_RECORD_LOST":
                        n = re.search(r"lost (\d+)", rest)
                        yield Lost(lineno, int(cpu), int(n.group(1)) if n else None, time, line.strip())
                    continue
                ev = ev[ev.index(":") + 1:-1]      # sched:sched_switch: -> sched_switch
                pid = int(tid or pid)
            else:
                comm, pid, _, cpu, _, time, ev, rest = m.groups()
                pid = int(pid)
            last_time = time
            yield Event(lineno, int(cpu), time, pid, comm, ev, rest)
            continue
        s = line.strip()
        if not s:
            continue
        lost = rx("ftrace_lost").search(s) or rx("tracecmd_lost").search(s)
        if lost is not None:
            yield Lost(lineno, int(lost.group("cpu")), int(lost.group("n")) if lost.group("n") else None,
                       last_time, s)
            continue
        started = rx("started").match(s)
        if started is not None:     # the ring buffer of this CPU overran: its earlier events are gone
            yield Lost(lineno, int(started.group("cpu")), None, last_time, s)
            continue
        if s.startswith("#") or s.startswith(("version = ", "cpus=")) or re.match(r"CPU \d+ is empty$", s):
            continue
        yield Bad(lineno, line.rstrip("\n"))


# ---- the fields of the events the importer uses ---------------------------------------

_P["switch_kv"] = (r"prev_comm=(.*?) prev_pid=(-?\d+) prev_prio=(-?\d+) prev_state=(\S*)\s+(?:==> )?"
                        r"next_comm=(.*?) next_pid=(-?\d+) next_prio=(-?\d+)\s*$")
_P["switch_plugin"] = (r"(.*?):(-?\d+) \[(-?\d+)\] (\S+) ==> (.*?):(-?\d+) \[(-?\d+)\]\s*$")
_P.update({
    "sched_process_fork": r"comm=(.*?) pid=(\d+) child_comm=(.*?) child_pid=(\d+)",
    "sched_process_exec": r"filename=(.*) pid=(\d+) old_pid=(\d+)",
    "sched_process_exit": r"comm=(.*?) pid=(\d+) prio=(-?\d+)",
    "sched_migrate_task": r"comm=(.*?) pid=(\d+) prio=(-?\d+) orig_cpu=(\d+) dest_cpu=(\d+)",
    "task_newtask": r"pid=(\d+) comm=(.*?) clone_flags=([0-9a-fA-Fx]+)",
    "task_rename": r"pid=(\d+) oldcomm=(.*?) newcomm=(.*?) oom_score_adj=",
    "tlb_flush": r"pages:(-?\d+) reason:(.*?)(?: \((\d+)\))?\s*$",
})
_FIELDS = frozenset(("sched_process_fork", "sched_process_exec", "sched_process_exit", "sched_migrate_task",
                     "task_newtask", "task_rename", "tlb_flush"))


def switch_fields(rest: str):
    """(prev_comm, prev_pid, prev_state, next_comm, next_pid) of a sched_switch, or None."""
    m = rx("switch_kv").match(rest) or rx("switch_plugin").match(rest)
    if m is None:
        return None
    return m.group(1), int(m.group(2)), m.group(4), m.group(5), int(m.group(6))


def fields(name: str, rest: str):
    """The groups of an event's fields, or None when they do not parse."""
    m = rx(name).match(rest) if name in _FIELDS else None
    return m.groups() if m is not None else None


# ---- a `ps` snapshot --------------------------------------------------------------------

PF_KTHREAD = 0x00200000


class PsEntry:
    __slots__ = ("pid", "tgid", "ppid", "flags", "comm")

    def __init__(self, pid, tgid, ppid, flags, comm):
        self.pid, self.tgid, self.ppid, self.flags, self.comm = pid, tgid, ppid, flags, comm

    @property
    def kthread(self) -> bool:
        """PF_KTHREAD when the snapshot has the whole task flags; kthreadd and its children otherwise."""
        if self.flags is not None:
            return bool(self.flags & PF_KTHREAD)
        return self.pid == 2 or self.ppid == 2


class PsError(ValueError):
    def __init__(self, lineno, col, message, line):
        super().__init__(message)
        self.lineno, self.col, self.message, self.line = lineno, col, message, line


_PS_COLUMNS = {"PID": "pid", "TGID": "tgid", "LWP": "tid", "TID": "tid", "SPID": "tid", "PPID": "ppid",
               "F": "f", "FLAGS": "flags", "COMMAND": "comm", "COMM": "comm", "CMD": "comm"}


def read_ps(lines) -> dict:
    """tid -> PsEntry from `ps -eo pid,ppid,flags,comm` (or -eLo with lwp) or `mmscn record`'s snapshot.

    procps prints in F only the bits PF_FORKNOEXEC and PF_SUPERPRIV of the task flags (as an octal
    digit), so PF_KTHREAD is read only from a FLAGS column in hex (0x...), as `mmscn record` writes
    it from /proc/PID/stat; with ps's F, kernel threads are kthreadd (pid 2) and its children.
    """
    out = {}
    cols = None
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        words = line.split()
        if cols is None:
            cols = [_PS_COLUMNS.get(w.upper()) for w in words]
            if "pid" not in cols and "tid" not in cols:
                raise PsError(lineno, 1, "expected a header line naming the columns (PID PPID F COMMAND, "
                              "as `ps -eo pid,ppid,flags,comm` prints)", line)
            if cols[-1] != "comm":
                raise PsError(lineno, 1, "the last column must be the command name (COMMAND)", line)
            continue
        n = len(cols) - 1
        if len(words) < len(cols):
            raise PsError(lineno, 1, f"expected {len(cols)} columns like the header, found {len(words)}", line)
        vals = dict(zip(cols[:n], words[:n]))
        comm = line.split(None, n)[n].rstrip("\n")
        try:
            pid = int(vals.get("pid") or vals["tid"])
            tid = int(vals.get("tid") or pid)
            ppid = int(vals.get("ppid", -1))
            flags = vals.get("flags")
            flags = int(flags, 16) if flags is not None and flags.lower().startswith("0x") else None
        except (ValueError, KeyError):
            col = line.find(words[0]) + 1
            raise PsError(lineno, col, "expected numbers in the PID, PPID and FLAGS columns", line)
        tgid = int(vals["tgid"]) if "tgid" in vals else pid
        out[tid] = PsEntry(tid, tgid, ppid, flags, comm)
    return out
