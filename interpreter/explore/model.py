"""The model of a scenario for the search: its start state, its blocks' units, one step.

What a captured state holds, how a unit fires, how `final` is judged."""
from __future__ import annotations

from itertools import compress
from operator import ne
from typing import Optional

from mmscn.dsl import ast as A

from .. import state as S
from ..conditions import StatementError
from ..kernel import DEAD, RUNNING, Refusal
from ..runner import Runner
from ..step import (ENDED, EXEC, FAILED, MOVED, SAME, Failure, Outcome, _broke, _dead_current,  # noqa: F401
                    _refusal, deadlock_message, execute, final_verdict, search_move)


class Store:
    """The kernel states of a search, captured and restored (fields: interpreter/state.py).

    A captured state is one flat tuple: the numbers of tasks and mms, then for
    each task, each mm and each CPU the id of its row, a row being the values
    of that owner's fields, interned in a table per owner (a row of one owner
    holds counters where another's holds flags, and (0, 0) == (False, False));
    then the cost counters when the scenario reads them.  Names are part of a
    row only when the blocks make tasks or mms: otherwise they never change.
    Most rows repeat from state to state, so a state is small and hashes fast.

    The kernel tells what each statement touched (check() gathers its d_tasks,
    d_mms, d_cpus into ``Kernel.changed``), and the store knows which state the
    kernel's lists hold: a capture builds only the rows touched since, a restore
    writes only the rows that differ or were touched."""

    HEAD = 2                    # (number of tasks, number of mms) before the row ids

    def __init__(self, k, names: bool, cost: bool, fixed: tuple = ()):
        self.k = k
        self.cost = cost
        self.names = names
        # fixed: fields the search never writes (state.STEP_ONLY outside granularity step), left out
        # of the rows where every owner holds the declared default (a value any renaming keeps); an
        # mm's only while the blocks make none (a new one gets its values from its row)
        fixed = {f.attr for o in ((S.CPU,) if names else (S.CPU, S.MM)) for f in S.OF[o]
                 if f.attr in fixed and all(v == f.default for v in getattr(k, f.attr))}
        self.layout = tuple(tuple(f for f in S.OF[o] if (names or f.role != S.IDENTITY) and f.attr not in fixed)
                            for o in S.OWNERS)
        self.ids = tuple({} for _ in S.OWNERS)          # per owner: row -> id
        self.rows = tuple([] for _ in S.OWNERS)         # per owner: id -> row
        self.cur = None             # the state the kernel's lists hold (but for Kernel.changed), when known
        self.undo = None            # (state, per owner [(index, row)]): what makes cur that state again
        self.cols = self.bound = None
        k.changed = (set(), set(), set())

    def pos(self, owner: str, attr: str) -> int:
        """Where a field sits in its owner's rows."""
        return [f.attr for f in self.layout[S.OWNERS.index(owner)]].index(attr)

    def start(self, s: tuple, o: int) -> int:
        """Where owner o's row ids begin in state s."""
        return self.HEAD + (0, s[0], s[0] + s[1])[o]

    def row(self, s: tuple, o: int, i: int) -> tuple:
        return self.rows[o][s[self.start(s, o) + i]]

    # ---- the kernel's side ------------------------------------------------------
    def _fold(self) -> None:
        """A statement not yet checked: what it touched so far counts as touched."""
        k = self.k
        for ch, d in zip(k.changed, (k.d_tasks, k.d_mms, k.d_cpus)):
            ch |= d

    def _known(self) -> bool:
        """Whether the kernel's lists are the ones bound, with as many tasks and mms as cur;
        if not, they are bound again (the blocks make tasks and mms, or the kernel's lists
        were replaced) and the state they hold forgotten."""
        k, cur = self.k, self.cur
        if k.c_curr is self.bound and cur is not None \
                and (not self.names or (cur[0] == len(k.t_name) and cur[1] == len(k.m_name))):
            return True
        self.bound = k.c_curr           # Kernel.restore replaces every list, this one too
        self.cols = tuple([getattr(k, f.attr) for f in fs] for fs in self.layout)
        counts = [len(cs[0]) for cs in self.cols]
        ends = [self.HEAD + sum(counts[:o + 1]) for o in range(3)]
        self.owners = tuple(_Rows(cs, table, rows, off, end) for cs, table, rows, off, end
                            in zip(self.cols, self.ids, self.rows, [self.HEAD] + ends[:2], ends))
        self.slot = [None] * self.HEAD + [(w, i) for w in self.owners for i in range(w.end - w.off)]
        self.touched = _touched(self.cols, self.ids, self.rows, [w.off for w in self.owners])
        self.cur = self.undo = None
        return False

    # ---- capture and restore ------------------------------------------------------
    def capture(self) -> tuple:
        k = self.k
        if k.d_tasks or k.d_mms or k.d_cpus:
            self._fold()
        changed = k.changed
        if not (k.c_curr is self.bound and self.cur is not None and not self.names) and not self._known():
            ids = [len(cs[0]) for cs in self.cols[:2]]
            for ch, w in zip(changed, self.owners):
                ids.extend(w.intern(w.get(i)) for i in range(w.end - w.off))
                ch.clear()
            if self.cost:
                ids.append(tuple(k.cost))
        else:                                   # the rows touched since cur
            cur = self.cur
            ids, undo = self.touched(cur, *changed)
            if self.cost:
                ids[-1] = tuple(k.cost)
            self.undo = (cur, undo)
        s = self.cur = tuple(ids)
        return s

    def restore(self, s: tuple) -> None:
        k = self.k
        if k.d_tasks or k.d_mms or k.d_cpus:
            self._fold()
        changed = k.changed
        touched = changed[0] or changed[1] or changed[2]
        undo = self.undo
        if undo is not None and undo[0] is s and not touched and k.c_curr is self.bound:
            # back to the state cur was captured from: the rows that capture replaced
            tasks, mms, cpus = undo[1]
            w = self.owners
            if tasks:
                w[0].unput(tasks)
            if mms:
                w[1].unput(mms)
            if cpus:
                w[2].unput(cpus)
            self.cur, self.undo = s, None
            if self.cost:
                k.cost[:] = s[-1]
            return
        if s is not self.cur or touched:
            if not (k.c_curr is self.bound and self.cur is not None and not self.names) and not self._known() \
                    or s[0] != self.cur[0] or s[1] != self.cur[1]:
                self._resize(s)
                for w in self.owners:
                    for p in range(w.off, w.end):
                        w.put(p - w.off, w.rows[s[p]])
            else:                               # the rows that differ, and those touched since
                which = compress(range(self.owners[2].end), map(ne, s, self.cur))
                if touched:
                    which = set(which)
                    for ch, w in zip(changed, self.owners):
                        which.update(w.off + i for i in ch)
                slot = self.slot
                for p in which:
                    w, i = slot[p]
                    w.put(i, w.rows[s[p]])
            if touched:
                for ch in changed:
                    ch.clear()
            if self.names:
                k.task_ix = {n: t for t, n in enumerate(k.t_name)}
                k.mm_ix = {n: m for m, n in enumerate(k.m_name)}
            self.cur, self.undo = s, None
        if self.cost:
            k.cost[:] = s[-1]
        if k.violations:
            k.violations = []
        if k.d_tasks or k.d_mms or k.d_cpus:
            k.d_tasks.clear(); k.d_mms.clear(); k.d_cpus.clear()

    def _resize(self, s: tuple) -> None:
        """Give the kernel's lists as many tasks and mms as s has (the blocks make them)."""
        for cs, n in zip(self.cols, s[:2]):
            have = len(cs[0])
            for c in cs:
                if have > n:
                    del c[n:]
                elif have < n:
                    c.extend([None] * (n - have))
        self.bound = None
        self._known()


def _touched(cols: tuple, tables: tuple, rows: tuple, offs: list):
    """touched(cur, tasks, mms, cpus): the row ids of state cur with the rows of the tasks, mms
    and CPUs given interned anew from the kernel's lists (the sets are emptied), and per owner
    [(index, the row it replaced)] for Store.restore's undo; written out field by field, all
    three owners in one function (Store.capture runs after every statement)."""
    env = {}
    body = ["def touched(cur, tasks, mms, cpus{lists}):", "    ids = list(cur)"]
    for o, (name, cs) in enumerate(zip(("tasks", "mms", "cpus"), cols)):
        env.update({f"c{o}_{j}": c for j, c in enumerate(cs)})
        env.update({f"table{o}": tables[o], f"tget{o}": tables[o].get, f"rows{o}": rows[o]})
    # the lists and tables as default arguments: locals read faster than globals
    body[0] = body[0].format(lists="".join(f", {n}={n}" for n in env))
    for o, (name, cs) in enumerate(zip(("tasks", "mms", "cpus"), cols)):
        each = "".join(f"c{o}_{j}[i], " for j in range(len(cs)))
        body += [f"    u{o} = []",
                 f"    if {name}:",
                 f"        for i in {name}:",
                 f"            row = ({each})",
                 f"            rid = tget{o}(row)",
                 f"            if rid is None:",
                 f"                rid = table{o}[row] = len(rows{o})",
                 f"                rows{o}.append(row)",
                 f"            p = {offs[o]} + i",
                 f"            if rid != ids[p]:      # (a row touched but unchanged needs no undo)",
                 f"                u{o}.append((i, rows{o}[ids[p]]))",
                 f"                ids[p] = rid",
                 f"        {name}.clear()"]
    body.append("    return ids, (u0, u1, u2)")
    exec("\n".join(body) + "\n", env)
    return env["touched"]


class _Rows:
    """One owner's rows over the kernel's lists: get(i) and put(i, row) a row; unput(undo)
    writes back the rows a capture replaced (_touched).  Each is written out field by field,
    once per owner, as a loop over the fields costs about three times as much."""

    def __init__(self, cols: list, table: dict, rows: list, off: int, end: int):
        self.table, self.rows, self.off, self.end = table, rows, off, end
        env = {f"c{j}": c for j, c in enumerate(cols)}
        each = "".join(f"c{j}[i], " for j in range(len(cols)))
        # the lists as default arguments: locals read faster than globals
        lists = "".join(f", c{j}=c{j}" for j in range(len(cols)))
        exec(f"""
def get(i{lists}):
    return ({each})
def put(i, row{lists}):
    {each}= row
def unput(undo{lists}):
    for i, row in undo:
        {each}= row
""", env)
        self.get, self.put, self.unput = env["get"], env["put"], env["unput"]

    def intern(self, row: tuple) -> int:
        rid = self.table.get(row)
        if rid is None:
            rid = self.table[row] = len(self.rows)
            self.rows.append(row)
        return rid


class Unit:
    """One step of a block: a statement (with the `expect` before it, if any)."""
    __slots__ = ("block", "index", "cpu", "stmt", "expect", "waits_for", "fp", "enable_fp", "loc", "mms", "soft",
                 "dec", "run", "dead_check", "memo", "packed")

    def __init__(self, block, index, cpu, stmt, expect):
        self.block, self.index, self.cpu, self.stmt, self.expect = block, index, cpu, stmt, expect
        self.waits_for = None       # task index a block's `schedule T` waits on
        self.fp = 0                 # footprint bits
        self.enable_fp = 0          # what can make a waiting schedule runnable
        self.loc = 0                # footprint bits of its tasks and CPUs (all bits: it may touch anything)
        self.mms = ()               # the mms it may touch (init_mm aside)
        self.soft = False           # it touches them only through their counters (footprints.COUNTER_ONLY)
        self.dec = {}               # mm -> the most mm_users, external mm_users and mm_count references it drops
        # Model.fire's way to run it, step.EXEC's (None: through execute(): an assertion, an `expect`)
        self.run = EXEC.get(type(stmt)) if expect is None else None
        # execute() refuses a block's statement but `schedule` on a CPU whose current task has exited
        self.dead_check = cpu is not None and type(stmt) is not A.Schedule
        self.memo = None            # its remembered runs (explore/memo.py), where they may be
        self.packed = ()            # the same, on the search's bytes (explore/packed.py)


# ====================================================================== the model
class Model:
    """The scenario after its prologue: a start state and the blocks' units."""

    def __init__(self, scenario: A.Scenario, lines: list, arch: Optional[str] = None, version=None):
        self.sc = scenario
        self.lines = lines
        runner = Runner(scenario, lines, arch, trace=False, version=version)
        self.runner = runner
        self.policy = runner.policy
        self.k = k = runner.k
        self.prologue_failure: Optional[Failure] = None
        self.refusal = ""       # the words of the last refusal fire() met (a witness quotes them)
        # granularity step, or the scenario's own interrupts: the search goes over kernel steps
        # (explore/stepped.py)
        self.stepped = scenario.granularity == "step" or bool(scenario.interrupts)
        self.handlers = {b.cpu.number: b for b in scenario.interrupts}
        for st in scenario.stmts:
            if not runner.step(st, None):
                d = runner.result.diagnostics[-1] if runner.result.diagnostics else None
                self.prologue_failure = Failure("prologue", d.message if d else "the prologue failed",
                                                line=d.line if d else st.line, col=d.col if d else st.col)
                break
        if self.prologue_failure is None and runner.pending_expect is not None:
            e = runner.pending_expect
            self.prologue_failure = Failure("expectation", f"`expect {e.kind}` is not followed by a statement",
                                            line=e.line, col=e.col)
        if self.prologue_failure is None and runner.result.diagnostics:
            d = runner.result.diagnostics[0]
            self.prologue_failure = Failure("assertion", d.message, line=d.line, col=d.col)
        blocks = sorted(scenario.blocks, key=lambda b: b.cpu.number)
        self.bcpu = [b.cpu.number for b in blocks]
        self.block_of = {c: b for b, c in enumerate(self.bcpu)}
        self.units = []
        for bi, b in enumerate(blocks):
            us, pending = [], None
            for st in b.stmts:
                if isinstance(st, A.Expect):
                    pending = st
                    continue
                u = Unit(bi, len(us), self.bcpu[bi], st, pending)
                pending = None
                if isinstance(st, A.Schedule) and st.task is not None and st.cpu is None:
                    u.waits_for = k.task_ix.get(st.task.text, -1)
                us.append(u)
            self.units.append(us)
        self.nblocks = len(self.units)
        self.creates = any(isinstance(u.stmt, (A.Spawn, A.SpawnThread, A.SpawnKthread, A.Exec))
                           for us in self.units for u in us)
        self.uses_cost = _mentions_cost(scenario)
        self.final = scenario.final
        self.store = Store(k, names=self.creates, cost=self.uses_cost, fixed=() if self.stepped else S.STEP_ONLY)
        self.capture, self.restore = self.store.capture, self.store.restore
        self._t_state, self._t_cpu = self.store.pos(S.TASK, "t_state"), self.store.pos(S.TASK, "t_cpu")
        self.start = self.capture()
        self.start_pcs = tuple(0 for _ in self.units)

    # ---- one step -----------------------------------------------------------
    def waiting(self, s: tuple, u: Unit) -> bool:
        """A block's `schedule T` waits while T runs on another CPU (read off the state)."""
        t = u.waits_for
        if t is None:
            return False
        if t < 0:   # a task made by another block: look it up in the live kernel
            return self.k_waits(s, u)
        return self.row_waits(self.store.rows[0][s[Store.HEAD + t]], u)

    def row_waits(self, row: tuple, u: Unit) -> bool:
        """waiting()'s rule on the task's row: it runs, on another CPU."""
        return row[self._t_state] == RUNNING and row[self._t_cpu] != u.cpu

    def k_waits(self, s, u) -> bool:
        self.restore(s)
        t = self.k.task_ix.get(u.stmt.task.text)
        return t is not None and self.k.t_state[t] == RUNNING and self.k.t_cpu[t] != u.cpu

    def fire(self, u: Unit):
        """Run a unit on the kernel as it stands: (outcome, Failure or None).

        A statement without an `expect` that runs cleanly is the common case of a search:
        it is run here through step.EXEC, as execute() would, without the Outcome that only
        says so; anything else (a refusal, a broken invariant, an assertion, an `expect`, a
        traced kernel) takes execute()'s own paths, so the words are written once."""
        k = self.k
        run = u.run
        if run is not None and k.ev is None:
            cpu = u.cpu
            try:
                if u.dead_check and k.t_state[k.c_curr[cpu]] == DEAD:       # k.current_dead(cpu)
                    raise _dead_current(k, u.stmt, cpu)
                ends = run(k, u.stmt, cpu) is False
            except (Refusal, StatementError) as e:
                o = _refusal(k, Outcome(u.stmt, cpu), e, None, 0)
                self.refusal = o.message
                return search_move(o)
            violations = k.check()
            if violations:
                o = Outcome(u.stmt, cpu)
                o.ends_block = ends
                _broke(o, violations)
                return search_move(o)
            return (ENDED if ends else MOVED), None
        o = execute(k, self.policy, u.stmt, u.cpu, u.expect)
        if o.refused:
            self.refusal = o.message
        return search_move(o)

    def judge_final(self) -> tuple:
        """(held, detail) of `final` on the kernel as it stands."""
        return final_verdict(self.k, self.policy, self.final)

    def deadlock(self, pcs) -> Failure:
        waiting = [(self.bcpu[b], self.units[b][pc].stmt) for b, pc in enumerate(pcs) if pc < len(self.units[b])]
        first = next(self.units[b][pc] for b, pc in enumerate(pcs) if pc < len(self.units[b]))
        return Failure("deadlock", deadlock_message(waiting, quote=True), "", first.stmt.line, first.stmt.col,
                       first.cpu)

    # ---- fields, for diffs and final-state listings ---------------------------
    def fields(self) -> dict:
        k, pol = self.k, self.policy
        d = {}
        for c in range(k.ncpus):
            t = k.c_curr[c]
            d[f"cpu{c}.curr"] = k.t_name[t]
            d[f"cpu{c}.active_mm"] = k.mm_label(k.t_active[t]) if k.c_online[c] else "none"
            if "loaded_mm" in pol.hardware_fields:
                d[f"cpu{c}.loaded_mm"] = k.mm_label(pol.loaded_mm(k, c))
            if not k.c_online[c]:
                d[f"cpu{c}.online"] = "false"
        for t in range(len(k.t_name)):
            n = k.t_name[t]
            d[f"{n}.mm"] = k.mm_label(k.t_mm[t])
            d[f"{n}.active_mm"] = k.mm_label(k.t_active[t])
            d[f"{n}.state"] = k.t_state[t]
        for m in range(len(k.m_name)):
            n = k.m_name[m]
            d[f"{n}.users"] = k.m_users[m]
            d[f"{n}.count"] = k.m_count[m]
            d[f"{n}.state"] = k.mm_state(m)
            mask = pol.cpumask(k, m)
            if mask is not None:
                d[f"{n}.cpumask"] = "{" + ", ".join(f"cpu{i}" for i in range(k.ncpus) if mask >> i & 1) + "}"
        return d


def _mentions_cost(sc: A.Scenario) -> bool:
    def walk(x):
        if isinstance(x, A.Field):
            return x.owner == "cost"
        if isinstance(x, (A.Cmp,)):
            return walk(x.field)
        if isinstance(x, (A.And, A.Or)):
            return any(walk(p) for p in x.parts)
        if isinstance(x, A.Not):
            return walk(x.part)
        return False
    conds = [c for b in sc.blocks for st in b.stmts if isinstance(st, A.Assert) for c in st.conds]
    if sc.final is not None:
        conds += sc.final.conds
    return any(walk(c) for c in conds)
