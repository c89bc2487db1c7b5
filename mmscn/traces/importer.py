"""`mmscn import TRACE`: a recorded kernel trace as a scenario that runs.

The importer reads the trace's events in order and writes the statements
that replay them: `spawn` at task_newtask (CLONE_VM makes a thread, a parent
without an mm makes a kernel thread), `schedule` at sched_switch, `exit` at
sched_process_exit, `exec` at sched_process_exec.  It keeps the little of the
model it needs to write only statements the model accepts: which task runs
on which CPU, which tasks have exited, which share an mm.  Each CPU's events
keep their order; a task first seen mid-trace is spawned where it appears
(and classified by the `ps` snapshot, or by the documented guess rule); a
CPU's first event puts the task it switches away from on that CPU (a
"stage" statement), and a task switched out where the model does not run it
is put there first (a "fix-up").  Nothing is dropped silently: unknown
events, lost-events markers, unparsable lines, fix-ups and pid reuse are
counted and summarised at the end.

Besides the statement lines, the importer yields facts the scenario text
only comments on: for each context switch whether the kernel wrote CR3 (the
tlb:tlb_flush "flush on task switch" event right after the sched_switch on
that CPU), CR3 writes outside context switches, other TLB flushes and lost
events.  `mmscn validate` and `mmscn compare TRACE` read those.

Only the standard library is imported at module level: the CLI imports this
module when it starts.
"""
from __future__ import annotations

import os
import re
import sys
from typing import Iterator, Optional

from . import parse
from .errors import TraceError

CLONE_VM = 0x100
# A CPU whose next event needs a task that another CPU still runs waits this long (trace
# time) for that CPU's switch-out: the trace is merged by timestamp, and the clocks of two
# CPUs can disagree by a little.  After that the switch-out is taken as lost (a fix-up).
SKEW = 0.002
# switch_mm_irqs_off runs in the same IRQs-off section as trace_sched_switch: its CR3
# event follows within microseconds, or not at all.
CR3_WINDOW = 0.001
TASK_SWITCH = "flush on task switch"

# The guess rule for a task alive before the trace that the ps snapshot does not list:
# kthreadd (pid 2), or a name only kernel threads take.
KTHREAD_NAMES = (
    r"(kworker/|ksoftirqd/|migration/|rcu|cpuhp/|idle_inject/|watchdog|irq/|jbd2/|napi/|scsi_|card\d+-|"
    r"kthreadd$|khugepaged$|kswapd|kcompactd|ksmd$|oom_reaper$|kauditd$|khungtaskd$|kdevtmpfs$|kblockd$|"
    r"writeback$|pool_workqueue|psimon$|kthrotld$|kintegrityd$|kstrp$|zswap|hwrng$|kdamond)")


class Rec:
    """One item of the import: a line of the scenario, a statement, or a fact about the kernel.

    kind: "text" (a header or comment line), "stmt" (a statement line), "switched"
    (a context switch's CR3 verdict: ``wrote`` True/False/None), "cr3" (a CR3 write
    outside a context switch, with a comment line), "flush" (another TLB flush),
    "lost" (lost events, with a comment line).
    """
    __slots__ = ("kind", "line", "text", "code", "time", "cpu", "role", "task", "pid", "comm", "info")

    def __init__(self, kind, text=None, code=None, time=None, cpu=None, role=None, task=None,
                 pid=None, comm=None, info=None):
        self.kind, self.text, self.code, self.time, self.cpu = kind, text, code, time, cpu
        self.role, self.task, self.pid, self.comm, self.info = role, task, pid, comm, info
        self.line = 0


class Task:
    __slots__ = ("pid", "name", "comm", "kind", "group", "dead", "cpu", "how", "exiting", "resume", "execd")

    def __init__(self, pid, name, comm, kind, how):
        self.pid, self.name, self.comm, self.kind, self.how = pid, name, comm, kind, how
        self.group = None       # the set of tasks sharing this task's mm (None: no mm)
        self.dead = False       # `exit` written: the model will never run it again
        self.cpu = None         # the CPU the model runs it on
        self.exiting = None     # the time of its sched_process_exit while its exit_mm is still to come
        self.resume = False     # switched out after `exit` but not dead yet: it will run again
        self.execd = False      # `exec` written at its CR3 write, before its sched_process_exec

    def label(self) -> str:
        return f"{self.comm}[{self.pid}]"


class Trace:
    """What one look at a trace file tells before the import: format, CPUs, arch."""

    def __init__(self, path: str, ps: Optional[str] = None):
        self.path = path
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                head = [line for _, line in zip(range(200), f)]
        except OSError as e:
            from mmscn.dsl.diagnostics import read_error
            raise TraceError(read_error(e), path)
        self.fmt = parse.sniff(head)
        if self.fmt is None:
            raise TraceError("not a kernel trace: expected `perf script`, ftrace or `trace-cmd report` text", path)
        self.ncpus, self.has_tlb, self.arch_header = self._prescan()
        self.ps_path = ps if ps is not None else (path + ".ps" if os.path.exists(path + ".ps") else None)
        self.ps = self._read_ps() if self.ps_path else None

    def _prescan(self):
        ncpus, top, tlb, arch = 0, -1, False, None
        cpu_rx = re.compile(r"\[(\d{1,4})\]")
        with open(self.path, encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("#") or line.startswith("cpus="):
                    n = parse.header_cpus(line)
                    if n:
                        ncpus = max(ncpus, n)
                    if line.startswith("# arch :"):
                        arch = line.split(":", 1)[1].strip()
                    continue
                m = cpu_rx.search(line)
                if m:
                    top = max(top, int(m.group(1)))
                if not tlb and "tlb_flush" in line:
                    tlb = True
        return max(ncpus, top + 1, 1), tlb, arch

    def _read_ps(self) -> dict:
        try:
            with open(self.ps_path, encoding="utf-8", errors="replace") as f:
                return parse.read_ps(f)
        except OSError as e:
            from mmscn.dsl.diagnostics import read_error
            raise TraceError(f"the ps snapshot {read_error(e)}", self.ps_path)
        except parse.PsError as e:
            raise TraceError(e.message, self.ps_path, e.lineno, e.col, e.line)

    @property
    def arch(self) -> str:
        """x86 when the trace has x86's tlb:tlb_flush events (or perf says x86), else generic."""
        return "x86" if self.has_tlb or (self.arch_header or "").startswith(("x86", "i386", "i686")) else "generic"

    def json_head(self, kind: str) -> dict:
        """The keys a --json document about this trace starts with: every document's (json_head), then
        `trace_format`, the trace's text format (`format` is the JSON's version)."""
        from mmscn.interpreter.report import json_head
        return {**json_head(kind), "file": self.path, "title": _title(self.path), "cpus": self.ncpus,
                "trace_format": self.fmt}

    def records(self) -> Iterator[Rec]:
        imp = Importer(self)
        with open(self.path, encoding="utf-8", errors="replace") as f:
            yield from imp.run(f)
        self.summary = imp.summary


class Importer:
    def __init__(self, trace: Trace):
        self.tr = trace
        n = trace.ncpus
        self.curr = [None] * n          # the task the model runs on each CPU (None: its idle task)
        self.seen = [False] * n         # the CPU has had an event
        self.pend = {}                  # cpu -> (time, prev pid, switch Rec): the CR3 verdict is awaited
        self.parked = {}                # cpu -> [events]: waiting for a task to leave another CPU
        self.park_since = {}            # cpu -> (trace time, the task awaited)
        self.tasks = {}                 # pid -> Task (the latest task with that pid)
        self.names = set()
        self.tgid_groups = {}           # tgid in the ps snapshot -> the mm group of its threads
        self.forks = set()              # children made by task_newtask whose sched_process_fork is to come
        self.hold = {}                  # cpu -> (event, task): a CR3 write in a user task, exec's or not
        self.out = []
        self.line = 0
        self.first = self.last = None
        self.c = Counts()

    # ---- output
    def emit(self, rec: Rec) -> Rec:
        if rec.text is not None:
            self.line += 1
            rec.line = self.line
        self.out.append(rec)
        return rec

    def comment(self, text: str) -> None:
        self.emit(Rec("text", text=f"# {text}" if text else "#"))

    def stmt(self, code: str, ev, note: str, role: str, cpu=None, task=None) -> Rec:
        where = f"{ev.time} L{ev.lineno}" if ev is not None else "end of trace"
        return self.emit(Rec("stmt", text=f"{code:<40} # {where} {note}", code=code,
                             time=ev.time if ev is not None else self.last, cpu=cpu, role=role, task=task))

    # ---- the whole trace
    def run(self, lines) -> Iterator[Rec]:
        tr = self.tr
        self.comment(f"imported by `mmscn import` from {os.path.basename(tr.path)} ({tr.fmt}, "
                     f"{tr.ncpus} CPUs); docs/traces.md says how")
        self.comment("each statement's comment: trace time, trace line, and the event (comm[pid])")
        self.emit(Rec("text", text=f'scenario "{_title(tr.path)}"'))
        self.emit(Rec("text", text=f"arch {tr.arch}"))
        self.emit(Rec("text", text=f"cpus {tr.ncpus}"))
        yield from self._drain()
        for item in parse.events(lines, tr.fmt):
            if isinstance(item, parse.Event):
                self.event(item)
            elif isinstance(item, parse.Lost):
                self.lost(item)
            else:
                self.c.bad += 1
                if len(self.c.bad_examples) < 5:
                    self.c.bad_examples.append((item.lineno, item.text))
            yield from self._drain()
        self.finish()
        yield from self._drain()

    def _drain(self):
        out, self.out = self.out, []
        return out

    def event(self, ev) -> None:
        self.c.events += 1
        self.last = ev.time
        if self.first is None:
            self.first = ev.time
        if self.pend or self.parked:
            t = ev.t
            if self.pend:
                for cpu, (pt, _, _) in list(self.pend.items()):
                    if t - pt > CR3_WINDOW and cpu != ev.cpu and cpu not in self.parked:
                        self.verdict(cpu, False, None)
            if self.parked:
                self.timeouts(t)
        if ev.cpu >= len(self.curr):     # only when the prescan and the file disagree
            self.c.unknown["(a CPU beyond the trace's count)"] += 1
            return
        if ev.cpu in self.parked:
            self.parked[ev.cpu].append(ev)
            return
        self.dispatch(ev)
        if self.parked:
            self.release()

    def dispatch(self, ev) -> None:
        c = ev.cpu
        if ev.pid < 0:      # perf's pid -1: a dying task whose pid it could no longer read
            f = ev.fields if ev.name == "sched_switch" else None
            if f is not None:
                ev.pid, ev.comm = f[1], f[0]
        p = self.pend.get(c)
        if p is not None:
            if ev.name == "tlb_flush" and (ev.pid == p[1] or ev.pid < 0):
                f = ev.fields
                if f is not None and f[1] == TASK_SWITCH:
                    self.verdict(c, True, int(f[0]), ev)
                    return
            self.verdict(c, False, None)
        hold = self.hold.pop(c, None)
        if hold is not None and self.held(c, hold, ev):
            return
        blocker = self.blocker(ev)
        if blocker is not None:
            self.parked[c] = [ev]
            self.park_since[c] = (ev.t, blocker)
            self.c.waits += 1
            return
        if ev.name != "sched_process_exec":     # exec names its task itself (de_thread changes the pid)
            self.current(ev)
        handler = _HANDLERS.get(ev.name)
        if handler is None:
            self.c.unknown[ev.name] += 1
        else:
            handler(self, ev)

    def held(self, c: int, hold, ev) -> bool:
        """Decide a held CR3 write with the next event on its CPU: True when this event was its pair.

        exec_mmap's activate_mm writes CR3 once, before sched_process_exec is traced (and the task
        may be preempted in between); use_temporary_mm and unuse_temporary_mm (text_poke, EFI)
        write it twice in a row in the same task, with no context switch around.
        """
        hev, t = hold
        if ev.name == "tlb_flush" and ev.pid == hev.pid:
            f = ev.fields
            if f is not None and f[1] == TASK_SWITCH:
                self.c.temporary += 1
                self.cr3_fact(hev, "use_temporary_mm")
                self.cr3_fact(ev, "unuse_temporary_mm")
                return True
        if not t.dead and self.curr[c] is t:
            self.stmt(f"exec {t.name}", hev, f"exec_mmap's activate_mm in {t.label()}: CR3 written before "
                                             f"sched_process_exec", "exec", c, t)
            self.exec_mm(t)
            t.execd = True
        self.cr3_fact(hev)
        return False

    def exec_mm(self, t: Task) -> None:
        self.c.execs += 1
        t.kind = "user"
        if t.group is not None:
            t.group.discard(t)
        t.group = {t}

    def do_exit(self, t: Task, ev, note: str) -> None:
        self.stmt(f"exit {t.name}", ev, note, "exit", ev.cpu, t)
        self.c.exits += 1
        t.dead = True
        t.exiting = None
        if t.group is not None:
            t.group.discard(t)
            t.group = None

    def current(self, ev) -> Optional[Task]:
        """Every event says who is current on its CPU: make the model agree (stage, fix-up)."""
        c = ev.cpu
        if ev.pid < 0:      # unknown: trust the model
            return self.curr[c]
        t = self.tasks.get(ev.pid) if ev.pid else None
        if ev.pid and (t is None or (t.dead and self.curr[c] is not t)):
            t = self.ensure(ev.pid, ev.comm, ev)
        if self.curr[c] is not t or not self.seen[c]:
            self.place(c, t, ev, f"is current at {ev.name}")
        return t

    # ---- waiting for another CPU
    def blocker(self, ev) -> Optional[Task]:
        """The task this event needs on its CPU that the model still runs on another one."""
        c, name, tasks = ev.cpu, ev.name, self.tasks
        if name == "sched_process_exec":
            f = ev.fields
            pids = (int(f[2]),) if f else ()
        elif name == "sched_switch":
            f = ev.fields
            pids = (ev.pid, f[4]) if f else (ev.pid,)
        else:
            pids = (ev.pid,)
        for pid in pids:
            t = tasks.get(pid)
            if t is not None and t.cpu is not None and t.cpu != c and not t.dead and pid > 0:
                return t
        return None

    def release(self) -> None:
        progress = True
        while progress and self.parked:
            progress = False
            for c in sorted(self.parked):
                q = self.parked[c]
                if self.blocker(q[0]) is not None:
                    continue
                progress = True
                del self.parked[c], self.park_since[c]
                for i, ev in enumerate(q):
                    if c in self.parked:        # parked again: the rest waits behind
                        self.parked[c].extend(q[i:])
                        break
                    self.dispatch(ev)

    def timeouts(self, now: float, force: bool = False) -> None:
        for c in sorted(self.parked):
            since, t = self.park_since[c]
            if force or now - since > SKEW:
                if not t.dead and t.cpu is not None and t.cpu != c:
                    d = t.cpu
                    self.c.fixups += 1
                    self.c.note(f"cpu{c} switched to {t.label()} at {self.parked[c][0].time} while cpu{d} still "
                                f"ran it: its switch-out on cpu{d} is missing (lost events?)")
                    self.stmt(f"schedule cpu{d} idle", self.parked[c][0],
                              f"fix-up: {t.label()} left cpu{d} unseen (lost events?)", "fixup", d)
                    self.leave(d)
                self.park_since[c] = (now, t)
        self.release()

    # ---- the model's side of the schedule
    def leave(self, cpu: int, nxt: Optional[Task] = None) -> None:
        old = self.curr[cpu]
        if old is not None:
            old.cpu = None
        self.curr[cpu] = nxt
        if nxt is not None:
            nxt.cpu = cpu

    def place(self, cpu: int, t: Optional[Task], ev, what: str) -> None:
        """Make the model run ``t`` on ``cpu`` before an event that says it runs there."""
        seen, self.seen[cpu] = self.seen[cpu], True
        if self.curr[cpu] is t:
            return
        label = f"idle{cpu}" if t is None else t.label()
        if t is not None and t.dead:        # it ran on after its exit here, but the model moved it
            self.c.note(f"{ev.time} cpu{cpu}: {label} {what}, but it had exited elsewhere")
            return
        name = "idle" if t is None else t.name
        if not seen:
            self.c.staged += 1
            self.stmt(f"schedule cpu{cpu} {name}", ev, f"stage: {label} runs on cpu{cpu} when its trace starts",
                      "stage", cpu, t)
        else:
            self.c.not_running += 1
            cur = self.curr[cpu]
            self.c.note(f"{ev.time} cpu{cpu}: {label} {what}, but the model ran "
                        f"{'idle' if cur is None else cur.label()} there (lost events?)")
            self.stmt(f"schedule cpu{cpu} {name}", ev, f"fix-up: {label} {what} but was not running here",
                      "fixup", cpu, t)
        self.leave(cpu, t)

    def verdict(self, cpu: int, wrote, pages, ev=None) -> None:
        """The CR3 verdict of the last context switch on ``cpu``."""
        _, _, rec = self.pend.pop(cpu)
        note = None
        if wrote:
            self.c.flushes[TASK_SWITCH + " (at a context switch)"] += 1
            kind = "a fresh ASID, TLB flushed" if pages == -1 else "ASID reused, no flush"
            note = f"#   {ev.time} L{ev.lineno} kernel: CR3 written at this switch (pages:{pages}: {kind})"
        self.emit(Rec("switched", text=note, time=ev.time if ev else None, cpu=cpu, info=(wrote, pages, rec)))

    # ---- tasks
    def name_for(self, comm: str, pid: int) -> str:
        base = re.sub(r"[^A-Za-z0-9_]+", "_", comm).strip("_") or "task"
        if not (base[0].isalpha() or base[0] == "_"):
            base = "t_" + base
        name = f"{base}_{pid}"
        n = 2
        while name in self.names:
            name = f"{base}_{pid}_{n}"
            n += 1
        self.names.add(name)
        return name

    def new_task(self, pid, comm, kind, how) -> Task:
        old = self.tasks.get(pid)
        if old is not None:
            if old.dead:
                self.c.reused += 1
            else:
                self.c.reused_alive += 1
                self.c.note(f"pid {pid} was given to {comm} while {old.label()} never exited in the trace "
                            f"(lost events?); the model keeps {old.name} alive")
        t = Task(pid, self.name_for(comm, pid), comm, kind, how)
        self.tasks[pid] = t
        self.c.tasks[how] += 1
        return t

    def ensure(self, pid: int, comm: str, ev, alive: bool = True) -> Optional[Task]:
        """The task with this pid; one alive before the trace (or reused unseen) is spawned here."""
        if pid == 0:
            return None
        t = self.tasks.get(pid)
        if t is not None and not (alive and t.dead):
            if comm and comm != "<...>" and t.comm in ("<...>", ""):
                t.comm = comm
            return t
        if t is not None and t.resume:      # preempted in do_exit after exit_mm: it runs without an mm
            p = Task(pid, self.name_for(f"{t.comm}_exiting", pid), t.comm, "kthread", "exiting")
            self.tasks[pid] = p
            self.c.tasks["exiting"] += 1
            self.stmt(f"spawn kthread {p.name}", ev, f"{t.label()} runs again after its exit_mm (preempted in "
                                                     f"do_exit): without an mm it switches like a kernel thread",
                      "spawn", task=p)
            return p
        comm = comm if comm and comm != "<...>" else "task"
        old = t
        if t is not None:       # a dead task's pid runs again: its fork was not in the trace
            self.c.note(f"{ev.time} pid {pid} ({comm}) runs again after {t.label()} exited, without a fork "
                        f"in the trace (lost events?)")
        kind, tgid, how = self.classify(pid, comm)
        t = self.new_task(pid, comm, kind, how)
        where = "alive before the trace" if old is None else "seen again without a fork in the trace"
        src = {"ps": "the ps snapshot says", "guess": "guess rule, docs/traces.md"}[how]
        if kind == "kthread":
            self.stmt(f"spawn kthread {t.name}", ev, f"{t.label()} {where}: a kernel thread ({src})", "spawn",
                      task=t)
            return t
        group = self.tgid_groups.get(tgid) if tgid is not None else None
        member = next((m for m in group if not m.dead), None) if group else None
        if member is not None:
            self.stmt(f"spawn thread {t.name} of {member.name}", ev,
                      f"{t.label()} {where}: a thread of tgid {tgid} ({src})", "spawn", task=t)
            t.group = member.group
            t.group.add(t)
        else:
            self.stmt(f"spawn {t.name}", ev, f"{t.label()} {where}: a process ({src})", "spawn", task=t)
            t.group = {t}
            if tgid is not None:
                self.tgid_groups[tgid] = t.group
        return t

    def classify(self, pid: int, comm: str) -> tuple:
        """(kind, tgid or None, how) of a task alive before the trace."""
        ps = self.tr.ps
        e = ps.get(pid) if ps is not None else None
        if e is not None:
            return ("kthread", None, "ps") if e.kthread else ("user", e.tgid, "ps")
        if pid == 2 or re.match(KTHREAD_NAMES, comm):
            return "kthread", None, "guess"
        return "user", None, "guess"

    # ---- events
    def on_switch(self, ev) -> None:
        f = ev.fields
        if f is None:
            return self.malformed(ev)
        pcomm, ppid, pstate, ncomm, npid = f
        c = ev.cpu
        prev = self.curr[c]
        final = pstate[:1] in ("X", "Z")        # EXIT_DEAD, EXIT_ZOMBIE: its last switch
        if prev is not None and prev.exiting and (final or pstate[:1] != "D"):
            # preempted in do_exit: most likely inside exit_mm's mmput (exit_mmap is long), after
            # current->mm = NULL; a thread's exit_mm writes no CR3 at all.  Asleep in D, it more likely
            # waits in exit_mm's mmap_read_lock, before current->mm = NULL: the exit waits on.
            self.do_exit(prev, ev, f"exit_mm of {prev.label()} (sched_process_exit at {prev.exiting}), "
                                   f"by its {'last' if final else 'preempted'} switch at the latest")
            if not final:
                prev.resume = True
        elif prev is not None and not prev.dead and final:
            if prev.how == "exiting":
                note = f"{prev.label()} dies: do_task_dead"
            else:
                self.c.exit_unseen += 1
                note = f"{prev.label()} dead at its last switch without sched_process_exit"
            self.do_exit(prev, ev, note)
        elif prev is not None and prev.dead and not final:
            prev.resume = True
        nxt = self.ensure(npid, ncomm, ev)
        self.c.switches += 1
        name = "idle" if nxt is None else nxt.name
        rec = self.stmt(f"schedule cpu{c} {name}", ev,
                        f"{_label(pcomm, ppid)} ({pstate}) -> {_label(ncomm, npid)}", "switch", c, nxt)
        rec.pid, rec.comm, rec.info = ppid, pcomm, prev
        self.leave(c, nxt)
        self.pend[c] = (ev.t, ppid, rec)

    def on_exit(self, ev) -> None:
        t = self.curr[ev.cpu]
        if t is None or t.dead or t.exiting or t.pid != ev.pid and ev.pid >= 0:
            return self.malformed(ev)
        # v6.16+ traces sched_process_exit before exit_mm: the `exit` waits for exit_mmap's CR3 write
        # (the last user) or the task's next switch-out that is not a sleep in D, whichever comes first
        t.exiting = ev.time

    def on_exec(self, ev) -> None:
        f = ev.fields
        if f is None:
            return self.malformed(ev)
        filename, pid, old_pid = f[0], int(f[1]), int(f[2])
        t = self.tasks.get(old_pid)
        if t is None or t.dead and self.curr[ev.cpu] is not t:
            t = self.ensure(old_pid, ev.comm, ev)
        self.place(ev.cpu, t, ev, "exec'd")
        if t is None or t.dead:
            return self.malformed(ev)
        if pid != old_pid:      # de_thread: the thread that execs takes the leader's pid
            leader = self.tasks.get(pid)
            if leader is not None and not leader.dead:
                self.c.note(f"{ev.time} {t.label()} took pid {pid} at exec, but {leader.label()} never exited")
            self.tasks[pid] = t
            del self.tasks[old_pid]
            t.pid = pid
        if t.execd:     # written at its CR3 write already
            t.execd = False
            self.comment(f"{ev.time} L{ev.lineno} sched_process_exec {filename} {t.label()} (exec written above)")
        else:
            self.stmt(f"exec {t.name}", ev, f"sched_process_exec {filename} {t.label()}", "exec", ev.cpu, t)
            self.exec_mm(t)
        t.comm = os.path.basename(filename)[:15]

    def on_newtask(self, ev) -> None:
        f = ev.fields
        if f is None:
            return self.malformed(ev)
        child, comm = int(f[0]), f[1]
        flags = int(f[2], 16)
        self.spawn_child(self.curr[ev.cpu], child, comm, ev, flags)
        self.forks.add(child)

    def on_fork(self, ev) -> None:
        f = ev.fields
        if f is None:
            return self.malformed(ev)
        child = int(f[3])
        if child in self.forks:     # task_newtask made it already
            self.forks.discard(child)
            return
        parent = self.ensure(int(f[1]), f[0], ev)
        self.spawn_child(parent, child, f[2], ev, None)

    def spawn_child(self, parent: Optional[Task], pid: int, comm: str, ev, flags) -> None:
        self.c.forks += 1
        by = "idle" if parent is None else parent.label()
        if parent is None or parent.group is None:      # copy_mm: no current->mm, no mm for the child
            t = self.new_task(pid, comm, "kthread", "fork")
            self.stmt(f"spawn kthread {t.name}", ev, f"{by} forks {t.label()}: no mm to copy (kernel thread)",
                      "spawn", task=t)
        elif flags is not None and flags & CLONE_VM:
            t = self.new_task(pid, comm, "user", "fork")
            self.stmt(f"spawn thread {t.name} of {parent.name}", ev,
                      f"{by} clones {t.label()} with CLONE_VM (clone_flags={flags:x})", "spawn", task=t)
            t.group = parent.group
            t.group.add(t)
        else:
            t = self.new_task(pid, comm, "user", "fork")
            if flags is None:
                self.c.fork_guess += 1
                note = f"{by} forks {t.label()} (sched_process_fork without task_newtask: taken as a process)"
            else:
                note = f"{by} forks {t.label()} (clone_flags={flags:x}: a fresh mm)"
            self.stmt(f"spawn {t.name}", ev, note, "spawn", task=t)
            t.group = {t}

    def on_migrate(self, ev) -> None:
        f = ev.fields
        if f is None:
            return self.malformed(ev)
        self.c.migrations += 1
        self.comment(f"{ev.time} L{ev.lineno} sched_migrate_task {_label(f[0], f[1])} cpu{f[3]} -> cpu{f[4]}")

    def on_rename(self, ev) -> None:
        f = ev.fields
        t = self.tasks.get(int(f[0])) if f else None
        if t is not None:
            t.comm = f[2]

    def on_tlb_flush(self, ev) -> None:
        f = ev.fields
        if f is None:
            return self.malformed(ev)
        reason = f[1]
        self.c.flushes[reason + (" (outside context switches)" if reason == TASK_SWITCH else "")] += 1
        if reason == TASK_SWITCH:
            t = self.curr[ev.cpu]
            if t is not None and not t.dead:
                if t.exiting:       # exit_mm -> mmput -> exit_mmap: the flush finds this CPU lazy
                    self.do_exit(t, ev, f"exit_mm of {t.label()} (sched_process_exit at {t.exiting}): "
                                        f"exit_mmap's flush moves cpu{ev.cpu} to init_mm")
                elif t.kind == "user" and not t.execd:
                    self.hold[ev.cpu] = (ev, t)
                    return
            self.cr3_fact(ev)
        else:
            self.emit(Rec("flush", time=ev.time, cpu=ev.cpu, pid=ev.pid, comm=ev.comm, info=reason,
                          task=self.curr[ev.cpu]))

    def cr3_fact(self, ev, why: str = "") -> None:
        f = ev.fields
        self.emit(Rec("cr3", text=f"#   {ev.time} L{ev.lineno} kernel: CR3 written on cpu{ev.cpu} outside a "
                                  f"context switch, in {_label(ev.comm, ev.pid)} (pages:{f[0]})"
                                  + (f": {why}" if why else ""),
                      time=ev.time, cpu=ev.cpu, pid=ev.pid, comm=ev.comm, info=int(f[0]),
                      task=self.curr[ev.cpu], role=why or None))

    def malformed(self, ev) -> None:
        self.c.malformed += 1
        if len(self.c.bad_examples) < 5:
            self.c.bad_examples.append((ev.lineno, f"{ev.name}: {ev.rest}"))

    def lost(self, item) -> None:
        self.c.lost_markers += 1
        self.c.lost_events += item.n or 0
        cpus = [item.cpu] if item.cpu is not None and item.cpu < len(self.curr) else range(len(self.curr))
        for c in cpus:
            if c in self.pend:
                self.verdict(c, None, None)
            if c in self.hold:
                self.cr3_fact(self.hold.pop(c)[0])
        self.emit(Rec("lost", text=f"# L{item.lineno} lost events: {item.text}", time=item.time,
                      cpu=item.cpu, info=item.n))

    def finish(self) -> None:
        if self.parked:
            self.timeouts(0.0, force=True)
        for c in list(self.pend):
            self.verdict(c, None, None)
        for c in list(self.hold):
            self.cr3_fact(self.hold.pop(c)[0])
        for line in self.summary_lines():
            self.comment(line)

    # ---- the summary
    @property
    def summary(self) -> dict:
        c = self.c
        return {"trace_format": self.tr.fmt, "cpus": self.tr.ncpus, "arch": self.tr.arch, "events": c.events,
                "first": self.first, "last": self.last, "switches": c.switches, "forks": c.forks,
                "execs": c.execs, "exits": c.exits, "migrations": c.migrations,
                "tasks": dict(c.tasks), "ps": self.tr.ps_path,
                "tlb_flush": dict(c.flushes), "unknown": dict(c.unknown),
                "lost_markers": c.lost_markers, "lost_events": c.lost_events, "unparsable": c.bad,
                "malformed": c.malformed, "examples": c.bad_examples, "staged": c.staged,
                "not_running": c.not_running, "fixups": c.fixups, "waits": c.waits,
                "pid_reuse": c.reused, "pid_reuse_alive": c.reused_alive, "exit_unseen": c.exit_unseen,
                "fork_guess": c.fork_guess, "temporary_mm": c.temporary, "notes": c.notes, "notes_more": c.notes_more}

    def summary_lines(self) -> list:
        return summary_lines(self.summary)


class Counts:
    def __init__(self):
        from collections import Counter
        self.events = self.switches = self.forks = self.execs = self.exits = self.migrations = 0
        self.bad = self.malformed = self.lost_markers = self.lost_events = 0
        self.staged = self.not_running = self.fixups = self.waits = 0
        self.reused = self.reused_alive = self.exit_unseen = self.fork_guess = self.temporary = 0
        self.tasks, self.flushes, self.unknown = Counter(), Counter(), Counter()
        self.bad_examples, self.notes = [], []
        self.notes_more = 0

    def note(self, text: str) -> None:
        if len(self.notes) < 10:
            self.notes.append(text)
        else:
            self.notes_more += 1


def summary_lines(s: dict) -> list:
    """The import summary, a line each, for the end of the scenario and for stderr."""
    from mmscn.dsl.diagnostics import plural
    span = f" from {s['first']} to {s['last']} s" if s["first"] else ""
    out = ["", f"import summary: {plural(s['events'], 'event', fmt=',')} on {plural(s['cpus'], 'CPU')}{span} "
               f"({s['trace_format']})",
           f"  modelled: {s['switches']:,} sched_switch, {s['forks']:,} forks, {s['execs']:,} execs, "
           f"{s['exits']:,} exits, {s['migrations']:,} migrations (comments)"]
    tasks = s["tasks"]
    before = tasks.get("ps", 0) + tasks.get("guess", 0)
    out.append(f"  tasks: {sum(tasks.values()):,} ({tasks.get('fork', 0):,} forked in the trace, {before:,} alive "
               f"before it: {tasks.get('ps', 0):,} from the ps snapshot, {tasks.get('guess', 0):,} guessed"
               f"{' by name (no --ps)' if not s['ps'] else ' (not in the snapshot)'}"
               + (f"; {tasks['exiting']:,} preempted in do_exit after exit_mm, run on as kernel threads"
                  if tasks.get("exiting") else "") + ")")
    if s["temporary_mm"]:
        out.append(f"  use_temporary_mm: {s['temporary_mm']:,} pairs of CR3 writes in one task (text_poke, EFI)")
    if s["tlb_flush"]:
        out.append("  tlb:tlb_flush: " + ", ".join(f"{n:,} {r}" for r, n in sorted(s["tlb_flush"].items())))
    if s["unknown"]:
        out.append("  not modelled (no mm effect the model knows): "
                   + ", ".join(f"{n:,} {e}" for e, n in sorted(s["unknown"].items(), key=lambda x: -x[1])))
    problems = [
        (s["lost_markers"], "lost-events marker", "lost-events markers",
         f" ({s['lost_events']:,} events)" if s["lost_events"] else ""),
        (s["unparsable"], "unparsable line", "unparsable lines", ""),
        (s["malformed"], "event whose fields do not parse", "events whose fields do not parse", ""),
        (s["not_running"], "fix-up: a task current where the model ran another",
         "fix-ups: a task current where the model ran another", ""),
        (s["fixups"], "fix-up: a switch-out never seen", "fix-ups: a switch-out never seen", ""),
        (s["pid_reuse"], "pid reused", "pids reused", ""),
        (s["pid_reuse_alive"], "pid reused before its task exited", "pids reused before their task exited", ""),
        (s["exit_unseen"], "task dead at its last switch without sched_process_exit",
         "tasks dead at their last switch without sched_process_exit", ""),
        (s["fork_guess"], "fork without task_newtask (taken as a process)",
         "forks without task_newtask (taken as processes)", ""),
        (s["waits"], "event that waited for another CPU's switch-out (clock skew)",
         "events that waited for another CPU's switch-out (clock skew)", "")]
    listed = [f"{n:,} {one if n == 1 else many}{x}" for n, one, many, x in problems if n]
    out.append("  problems: " + ("; ".join(listed) if listed else "none"))
    for lineno, text in s["examples"]:
        out.append(f"    trace line {lineno}: {_short(text)}")
    for n in s["notes"]:
        out.append(f"    {n}")
    if s["notes_more"]:
        out.append(f"    ... and {s['notes_more']} more")
    return out


def _short(text: str, n: int = 100) -> str:
    from mmscn.dsl.diagnostics import printable, short
    return short(printable(text), n)


def _label(comm: str, pid) -> str:
    return f"{comm}[{pid}]"


def _title(path: str) -> str:
    return os.path.basename(path).replace('"', "'").replace("\n", " ")


_HANDLERS = {
    "sched_switch": Importer.on_switch,
    "sched_process_exit": Importer.on_exit,
    "sched_process_exec": Importer.on_exec,
    "task_newtask": Importer.on_newtask,
    "sched_process_fork": Importer.on_fork,
    "sched_migrate_task": Importer.on_migrate,
    "task_rename": Importer.on_rename,
    "tlb_flush": Importer.on_tlb_flush,
}


# ---- the command ------------------------------------------------------------------------

def add_arguments(p) -> None:
    p.description = ("Read a kernel trace (perf script, ftrace or trace-cmd report text, told apart by content) "
                     "and write a scenario that replays it: spawn at fork, schedule at sched_switch, exit, exec.")
    p.epilog = ("exit status: 0 the scenario was written (problems are summarised on stderr); 2 the trace or the "
                "ps snapshot could not be read.  docs/traces.md")
    p.add_argument("trace", metavar="TRACE")
    p.add_argument("-o", "--output", metavar="FILE", help="write the scenario here, a new file (default: standard "
                                                          "output)")
    p.add_argument("--force", action="store_true", help="let -o replace an existing file (never through a symlink)")
    p.add_argument("--ps", metavar="FILE", help="a `ps -eo pid,ppid,flags,comm` snapshot taken when the trace "
                                                "started (default: TRACE.ps when it exists)")


def run(args) -> int:
    from mmscn.exits import EXIT_BAD_INPUT, EXIT_OK
    from mmscn.dsl.files import Unwritable, check_target, write_file
    try:
        if args.output:     # refused before the import, not after it
            check_target(args.output, force=args.force)
        tr = Trace(args.trace, args.ps)
        texts = (rec.text + "\n" for rec in tr.records() if rec.text is not None)
        if args.output:
            write_file(args.output, texts, force=args.force)
        else:
            for text in texts:
                sys.stdout.write(text)
    except TraceError as e:
        sys.stderr.write(e.render() + "\n")
        return EXIT_BAD_INPUT
    except Unwritable as e:
        sys.stderr.write(f"mmscn import: {e}\n")
        return EXIT_BAD_INPUT
    for line in summary_lines(tr.summary)[1:]:
        sys.stderr.write(line + "\n")
    return EXIT_OK


def scenario_text(path: str, ps: Optional[str] = None) -> str:
    """The scenario a trace file imports to (TraceError when it cannot be read)."""
    tr = Trace(path, ps)
    return "".join(rec.text + "\n" for rec in tr.records() if rec.text is not None)
