"""Replaying a path, and the witness: a scenario that replays a failing interleaving."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

from mmscn.dsl import ast as A
from mmscn.dsl.diagnostics import plural
from mmscn.dsl.names import fresh_mm_name

from ..kernel import DEAD, Refusal
from ..conditions import StatementError, cond_text
from ..step import EXEC
from .footprints import _refs
from .model import ENDED, FAILED, SAME, Failure, Model, Unit

if TYPE_CHECKING:
    from .search import Result


@dataclass
class ReplayedStep:
    """One step of a replayed path: the statement, and the fields it changed."""
    cpu: int
    stmt: object
    expect: object
    changes: list               # [(field, old, new)]
    failure: Optional[Failure] = None
    step: str = ""              # granularity step: the kernel step it was (interpreter/steps.py)


def failing_steps(model: Model, res: Result) -> list:
    """The failing interleaving, step by step, or [] when there is none to show."""
    if res.failure is None or not res.path:
        return []
    if model.stepped:
        from .stepped import replay as replay_steps
        return replay_steps(model, res.path)
    return replay(model, res.path)


def replay(model: Model, path: list) -> list:
    """The steps of a path from the start state, each with the fields it changed."""
    model.restore(model.start)
    before = model.fields()
    out = []
    for b, idx in path:
        u = model.units[b][idx]
        outcome, fail = model.fire(u)
        after = model.fields()
        changes = [(key, before.get(key), after.get(key)) for key in after if before.get(key) != after.get(key)]
        out.append(ReplayedStep(u.cpu, u.stmt, u.expect, changes, fail))
        before = after
        if outcome == FAILED:
            break
    return out


def final_fields(model: Model, s: tuple) -> dict:
    model.restore(s)
    return model.fields()


# ====================================================================== witness scenario
def _q(text: str) -> str:
    return '"' + text.replace('"', "'") + '"'


def stmt_source(model: Model, st, cpu: Optional[int]) -> str:
    """The statement as a top-level line, with the CPU a block left implicit written out."""
    from ..report import statement_text
    if isinstance(st, A.Expect):
        return f"expect {st.kind}" + (f" {_q(st.text)}" if st.text else "")
    if isinstance(st, A.Schedule) and cpu is not None and st.cpu is None:
        return f"schedule cpu{cpu} {'idle' if st.task is None else st.task.text}"
    if type(st) in _CPU_IMPLIED and st.cpu is None:
        # a statement a block runs on its own CPU: the top level names the CPU after its words
        words = _CPU_IMPLIED[type(st)]
        if isinstance(st, A.Membarrier) and st.register:
            words += " register"
        return f"{words} cpu{cpu}"
    return statement_text(model.lines, st)


# the statements whose CPU a block leaves implicit, and their words before the CPU
_CPU_IMPLIED = {A.Unlazy: "unlazy", A.Offline: "offline", A.Tick: "tick", A.PerfSample: "perf_sample",
                A.Membarrier: "membarrier"}


def kernel_lines(model: Model) -> list:
    """The header lines of the kernel the exploration ran (none for the arch's own default), so that
    the replay runs the same kernel: `kernel`, a `revert` per reverted change, `config`."""
    from ..arches import default_kernel
    v = model.k.version
    return ([f"kernel {v.release}"] if v.release != default_kernel(model.policy.name) else []) + \
        [f"revert {key}" for key in sorted(v.reverts)] + [f"config {name}" for name in sorted(v.configs)]


def witness_head(model: Model, res: Result, what: str) -> list:
    """A witness's first lines: what it replays and how it fails, its title, arch and CPUs.  A file
    name or message with a newline (or any control character) must not end the comment or the
    title early: printable() keeps them on their line."""
    from mmscn.dsl.diagnostics import printable
    sc, f = model.sc, res.failure
    path = printable(str(sc.path))
    return [f"# Witness written by `mmscn explore` for {path}: an interleaving of its",
            f"# {what} ({plural(len(res.path), 'step')}) that fails:",
            printable(f"#   {f.kind}: {f.message}"[:400]),
            "# `mmscn run` on this file replays it and fails at the last step; the header's",
            "# `expect fail` makes that failure the pass.",
            f"scenario {_q('witness: ' + (sc.title if sc.title is not None else path))}",
            f"arch {model.policy.name}",
            f"cpus {sc.ncpus}"]


def witness_text(model: Model, res: Result) -> str:
    """A scenario that replays the failing interleaving: `mmscn run` fails at its
    last step as the exploration did (the header says `expect fail`).

    Each step is a top-level statement, except where the top level would judge
    it otherwise than its block did: a statement that names a task or mm
    another block makes (a block may, the top level may not before the
    spawn), one on a CPU whose current task has exited (only a block refuses
    that), an mmput or flush whose policy tells the CPU it runs on from none
    (a top-level statement runs on none).  From such a step on, when the
    steps left are all on its CPU, they run in that CPU's block, as they did.
    Otherwise the first two kinds can only have been refused as an `expect
    error` said, and a refusal changes nothing, so the step is left out; the
    third gets a note.  A step refused as expected keeps the refusal's own
    words as its expectation, so that the replay judges the same refusal."""
    if model.stepped:
        from .stepped import witness_text as stepped_witness
        return stepped_witness(model, res)
    sc, f, k = model.sc, res.failure, model.k
    out = [*witness_head(model, res, "per-CPU blocks"),
           *kernel_lines(model),
           "expect fail",
           "",
           "# the prologue"]
    made = _Made(k.ncpus)
    for st in sc.stmts:
        out.append(stmt_source(model, st, None))
        made.add(st)
    out.append("")
    out.append("# the interleaving")
    steps = [model.units[b][idx] for b, idx in res.path]
    final = [] if f.kind != "final" else ["assert " + ", ".join(cond_text(c) for c in model.final.conds)]
    model.restore(model.start)
    for n, u in enumerate(steps, 1):
        missing = made.missing(u.stmt)
        dead = not isinstance(u.stmt, (A.Schedule, A.Assert)) and k.t_state[k.c_curr[u.cpu]] == DEAD
        why = (f"it names {', '.join(f'`{t}`' for _, t in missing)}, which another block makes"
               if missing else f"cpu{u.cpu}'s current task {k.t_name[k.c_curr[u.cpu]]} has exited" if dead else "")
        on_cpu = not why and _cpu_matters(model, u)
        if (why or on_cpu) and f.kind != "deadlock" and all(v.cpu == u.cpu for v in steps[n - 1:]):
            why = why or f"on {model.policy.name} it does something else on cpu{u.cpu} than on no CPU"
            out += _block(model, u.cpu, steps, n, final, made,
                          f"# from step {n} on, cpu{u.cpu}'s block as it ran: the top level would judge step {n} "
                          f"otherwise ({why})")
            return "\n".join(out) + "\n"
        outcome, _ = model.fire(u)
        where = f"# step {n}: cpu{u.cpu}, line {u.stmt.line}"
        if why:     # refused, as its `expect error` said (anything else ended the interleaving)
            out.append(f"{where}: `{stmt_source(model, u.stmt, u.cpu)}` is left out: {why}, so its block "
                       f"refused it as expected; the top level would not, and a refusal changes nothing")
            continue
        if u.expect is not None:
            out.append(_expect_line(model, u, outcome))
        if on_cpu:
            out.append(f"# note: in its block the next step ran on cpu{u.cpu}, which {model.policy.name} tells "
                       f"from no CPU, where a top-level statement runs: the replay may part from the exploration here")
        out.append(f"{stmt_source(model, u.stmt, u.cpu):<40} {where}")
        made.add(u.stmt)
    if final:
        missing = [x for c in model.final.conds for x in made.missing(A.Assert(0, 0, [c]))]
        if missing:
            out += _block(model, 0, [], 1, final, made, "# the final forall, in a block: it names "
                          + ", ".join(f"`{t}`" for _, t in dict.fromkeys(missing))
                          + ", which no statement made in this interleaving")
        else:
            out.append(final[0] + "          # the final forall")
    elif f.kind == "deadlock":
        replay(model, res.path)
        pcs = _pcs_after(model, res.path)
        for b, pc in enumerate(pcs):
            if pc < len(model.units[b]):
                st = model.units[b][pc].stmt
                out.append(f"{stmt_source(model, st, model.bcpu[b])}          # cpu{model.bcpu[b]} waits here "
                           f"(line {st.line}): deadlock")
                break
    return "\n".join(out) + "\n"


def _block(model: Model, cpu: int, steps: list, n: int, final: list, made: "_Made", head: str) -> list:
    """Steps n.. (and the final forall's assertion) in cpu's block, then statements that
    never run: they make the names the block uses known to the file, as the blocks
    that made them did."""
    from ..report import statement_text
    out = [head, f"cpu{cpu} {{"]
    inside = made.copy()
    for u in steps[n - 1:]:
        inside.add(u.stmt)      # a block's spawns count in all of it
    missing = []
    for m, u in enumerate(steps[n - 1:], n):
        outcome, _ = model.fire(u)
        if u.expect is not None:
            out.append("  " + _expect_line(model, u, outcome))
        out.append(f"  {statement_text(model.lines, u.stmt):<38} # step {m}: cpu{u.cpu}, line {u.stmt.line}")
        missing += inside.missing(u.stmt)
    for line in final:
        out.append(f"  {line:<38} # the final forall")
        missing += [x for c in model.final.conds for x in inside.missing(A.Assert(0, 0, [c]))]
    missing = list(dict.fromkeys(missing))
    names = {name for _, name in missing}
    spare = (t for t in (f"_witness{i}" for i in range(1, 2 + len(missing) + len(inside.tasks)))
             if t not in inside.tasks and t not in names)
    for kind, name in missing:
        if kind == "task":
            text = f"spawn {name}" if "@" + name in names and "@" + name not in inside.mms else f"spawn kthread {name}"
        elif name[1:] in names and name[1:] not in inside.tasks:
            continue    # made with its task, above
        else:
            text = f"spawn {next(spare)} mm {name}"
        out.append(f"  {text:<38} # never runs: makes {name} known, as a block made it")
    out.append("}")
    return out


def _expect_line(model: Model, u: Unit, outcome) -> str:
    """A step's `expect`; one that a refusal met quotes the refusal's own words, so the
    replay cannot pass it on another refusal that shares a few."""
    if outcome == SAME and u.expect.kind == "error":
        return f"expect error {_q(_quotable(model.refusal))}"
    return stmt_source(model, u.expect, u.cpu)


def _quotable(text: str) -> str:
    """The longest piece of a message that a string can hold (a string has no escapes)."""
    return max(text.split('"'), key=len)


def _cpu_matters(model: Model, u: Unit) -> bool:
    """Whether the statement does something else at the top level, where it runs on no
    CPU: a policy may tell an mmput's exit_mmap or a flush on this CPU from one elsewhere."""
    if not isinstance(u.stmt, (A.MmRef, A.Flush)):
        return False
    before = model.capture()
    seen = []
    for cpu in (u.cpu, None):
        model.restore(before)
        try:
            EXEC[type(u.stmt)](model.k, u.stmt, cpu)
            seen.append((model.capture(), [v.message for v in model.k.check()]))
        except (Refusal, StatementError) as e:
            seen.append(e.message)
    model.restore(before)
    return seen[0] != seen[1]


class _Made:
    """The tasks and mms the witness has made so far, as the resolver counts them."""

    def __init__(self, ncpus: int):
        self.tasks = {f"idle{c}" for c in range(ncpus)}
        self.mms = {"@init_mm"}

    def copy(self) -> "_Made":
        other = _Made(0)
        other.tasks, other.mms = set(self.tasks), set(self.mms)
        return other

    def add(self, st) -> None:
        if isinstance(st, (A.Spawn, A.SpawnThread, A.SpawnKthread)):
            self.tasks.add(st.task.text)
        if isinstance(st, (A.Spawn, A.Exec)):
            self.mms.add(st.mm.text if st.mm is not None else fresh_mm_name(st.task.text, self.mms))

    def missing(self, st) -> list:
        """The (kind, name) of the tasks and mms st names that nothing has made yet."""
        makes = set()
        if isinstance(st, (A.Spawn, A.SpawnThread, A.SpawnKthread)):
            makes.add(st.task.text)
        if isinstance(st, (A.Spawn, A.Exec)) and st.mm is not None:
            makes.add(st.mm.text)
        refs: list = []
        _refs(st, refs)
        return list(dict.fromkeys((kind, name) for kind, name in refs if name not in makes and (
            (kind == "task" and name not in self.tasks) or (kind == "mm" and name not in self.mms))))


def _pcs_after(model: Model, path: list) -> list:
    pcs = list(model.start_pcs)
    model.restore(model.start)
    for b, idx in path:
        outcome, _ = model.fire(model.units[b][idx])
        pcs[b] = len(model.units[b]) if outcome == ENDED else idx + 1
    return pcs

