"""The search over kernel steps (`granularity step`, interpreter/steps.py).

A transition is one kernel step: the next step of a block (the next step of
the operation in flight on its CPU, or its next statement's first step), an
IPI queued on a CPU whose irqs are on running its handler there (a step of
the target; the IPIs several CPUs queued on one CPU in every order, as the
kernel's call_single_queue allows: docs/kernel-model.md), or
the scenario's `interrupt cpuN { }` handler firing where cpuN's irqs are on,
or (PREEMPT_RT) the RCU callbacks a CPU queued running there once their
grace period ended ("rcu").
A block's program counter moves on when its statement's operation returns.
A visited state is the kernel state (the operations in flight and the IPIs
queued included: state.py) and the blocks' program counters.

The reductions (docs/explore.md, "Reductions over steps"):

* Partial-order reduction.  A process is a CPU: its block's steps, the IPIs
  delivered to it and its interrupt handler.  At a state the search fires
  only the enabled transitions of one CPU p when none of them can depend on
  anything another CPU may still do: their footprint (the static footprint of
  p's statement in flight, which covers every step of its operation; for an
  IPI the sender's operation's and both CPUs') misses the future footprint of
  every other CPU (its block's remaining statements, the IPIs it may still
  take, GLOBAL while its interrupt handler may fire).  Those transitions form
  a persistent set; the graph over steps is acyclic (every step moves a
  program counter, a step counter, an IPI or a handler on), so every final
  state, deadlock and failing step stays reachable.
* Fusion: a step after which its CPU's irqs are off and whose CPU's next step
  is such a persistent set on its own is fired together with that step (no
  IPI or interrupt can land between them, no other CPU tell them apart).
* Symmetry: the operation-granularity group (explore/symmetry.py: the state
  fields of an operation in flight and the IPI masks rename with the CPUs),
  past Explorer.SYMMETRY_AFTER states; never with an interrupt handler (it
  tells its CPU apart).

A path is a list of (kind, cpu): "cpu" a block's step, "ipi" an IPI taken
on cpu (the lowest sender's; ("ipi", cpu, sender) another's), "interrupt"
cpu's handler, "rcu" cpu's RCU callbacks; `interleave` writes it out (`ipi cpuN from cpuM`),
so a witness is the scenario with that line, and `mmscn run` replays it.
"""
from __future__ import annotations

import time
from collections import deque
from typing import TYPE_CHECKING, Optional

from mmscn.dsl.diagnostics import printable

from .. import steps as STEPS
from ..step import deliver, execute, execute_step, interrupt, rcu_callbacks
from .model import ENDED, FAILED, SAME, Failure, search_move

if TYPE_CHECKING:
    from .model import Model
    from .search import Explorer, Result


def fire(m: "Model", kind: str, cpu: int, pcs: tuple, sender: Optional[int] = None):
    """One transition on the kernel as it stands: (move, Failure or None, the new pcs, Outcome).
    An IPI is ``sender``'s, by default the lowest sender's queued on cpu."""
    k = m.k
    if kind == "ipi":
        if sender is None:
            sender = next(s for s in range(k.ncpus) if k.c_ipi_from[cpu] >> s & 1)
        st = _sender_stmt(m, sender, pcs)
        o = deliver(k, m.policy, cpu, sender, st)
        move, fail = search_move(o)
        return (FAILED if move == FAILED else 1), fail, pcs, o
    if kind == "rcu":           # PREEMPT_RT's __mmdrop_delayed, after a grace period (membrt)
        o = rcu_callbacks(k, m.policy, cpu, _sender_stmt(m, cpu, pcs))
        move, fail = search_move(o)
        return (FAILED if move == FAILED else 1), fail, pcs, o
    if kind == "interrupt":
        o = interrupt(k, m.policy, m.handlers[cpu])
        move, fail = search_move(o)
        return (FAILED if move == FAILED else 1), fail, pcs, o
    b = m.block_of[cpu]
    u = m.units[b][pcs[b]]
    if m.sc.granularity == "step" and STEPS.stepped(u.stmt):
        o = execute_step(k, m.policy, u.stmt, cpu, cpu, u.expect)
    else:
        o = execute(k, m.policy, u.stmt, cpu, u.expect)
    move, fail = search_move(o)
    if move == FAILED:
        return FAILED, fail, pcs, o
    if o.refused:
        m.refusal = o.message
    if k.c_op[cpu] is None:         # the statement's operation returned: the block moves on
        npcs = list(pcs)
        npcs[b] = len(m.units[b]) if move == ENDED else pcs[b] + 1
        pcs = tuple(npcs)
    return move, fail, pcs, o


def _sender_stmt(m: "Model", sender: int, pcs: tuple):
    b = m.block_of.get(sender)
    if b is not None and pcs[b] < len(m.units[b]):
        return m.units[b][pcs[b]].stmt
    return m.sc.stmts[-1] if m.sc.stmts else None


def enabled(m: "Model", s: tuple, pcs: tuple) -> list:
    """The transitions at a state (the kernel holds it): [(kind, cpu)], or [] at a dead end."""
    k = m.k
    out = []
    live = False
    for b, us in enumerate(m.units):
        if pcs[b] >= len(us):
            continue
        live = True
        cpu = m.bcpu[b]
        if k.c_op[cpu] is not None:
            if STEPS.can_advance(k, cpu):
                out.append(("cpu", cpu))
        elif not (us[pcs[b]].waits_for is not None and m.waiting(s, us[pcs[b]])):
            out.append(("cpu", cpu))
    # every IPI queued on a CPU may run first there (steps.deliverable): ("ipi", target) takes the
    # lowest sender's, ("ipi", target, sender) another's
    seen = set()
    for target, sender in STEPS.deliverable(k):
        out.append(("ipi", target) if target not in seen else ("ipi", target, sender))
        seen.add(target)
    out += [("rcu", c) for c in STEPS.rcu_ready(k)]
    if live:
        for cpu in m.handlers:
            if not k.c_irq_done[cpu] and not k.c_irqs_off[cpu]:
                out.append(("interrupt", cpu))
    return out


class Persistent:
    """Persistent sets over steps: which CPU's transitions alone may be fired at a state
    (module docstring; docs/explore.md "Reductions over steps").  Footprints are the static
    may-footprints of the statements (explore/footprints.py), one bit per task, mm and CPU."""

    def __init__(self, m: "Model", fp):
        self.m, self.fp, self.k = m, fp, m.k
        self.G = fp.GLOBAL
        self.cb = [fp.cb(c) for c in range(m.k.ncpus)]
        # per block and pc: the reach of the IPIs its stepped statements from pc on may send (a
        # handler runs on its target with the sender's operation's reach); only a stepped
        # operation queues IPIs (hw.smp_call), a statement run whole takes its handlers at once
        self.sends = []
        for us in m.units:
            acc, f = 0, [0] * (len(us) + 1)
            for i in range(len(us) - 1, -1, -1):
                if STEPS.stepped(us[i].stmt):
                    acc |= us[i].fp | self.cb[us[i].cpu]
                f[i] = acc
            self.sends.append(f)

    def _ipi(self, sender: int, pcs: tuple) -> int:
        """The reach of the handler of an IPI ``sender`` queued: its operation in flight's."""
        m = self.m
        b = m.block_of.get(sender)
        if b is None or pcs[b] >= len(m.units[b]) or self.k.c_op[sender] is None:
            return self.G
        return m.units[b][pcs[b]].fp | self.cb[sender]

    def _queued(self, q: int, pcs: tuple) -> int:
        senders, out, s = self.k.c_ipi_from[q], 0, 0
        while senders:
            if senders & 1:
                out |= self._ipi(s, pcs)
            senders >>= 1
            s += 1
        return out

    def future(self, q: int, pcs: tuple, sends: int) -> int:
        """What CPU q may still touch: its block's remaining statements, the IPIs queued on it
        and those still to be sent (``sends``: their reach), its handler (anything)."""
        m, k = self.m, self.k
        if q in m.handlers and not k.c_irq_done[q]:
            return self.G
        f = 0
        b = m.block_of.get(q)
        if b is not None:
            f = self.fp.fut[b][pcs[b]]
        if k.c_ipi_from[q]:
            f |= self.cb[q] | self._queued(q, pcs)
        if sends:
            f |= self.cb[q] | sends
        return f

    def independent(self, p: int, moves: list, pcs: tuple) -> bool:
        """Whether ``moves``, the enabled transitions of CPU p, are a persistent set."""
        m, k, G = self.m, self.k, self.G
        b = m.block_of.get(p)
        mine = self.cb[p]
        if b is not None and pcs[b] < len(m.units[b]):
            if ("cpu", p) not in moves:
                return False        # p's block waits: another CPU may be what it waits for
            mine |= m.units[b][pcs[b]].fp
        for mv in moves:
            if mv[0] in ("interrupt", "rcu"):
                return False        # a handler, or __mmdrop_delayed freeing an mm: not p's alone
            if mv[0] == "ipi":
                mine |= self._queued(p, pcs)
        if mine & G == G:
            return False
        # the IPIs p's own later statements send come after the moves (p's block step is one)
        others = 0
        for c, pc in enumerate(pcs):
            if m.bcpu[c] != p:
                others |= self.sends[c][pc]
        for q in range(k.ncpus):
            if q != p and mine & self.future(q, pcs, others):
                return False
        return True

    def reduce(self, moves: list, pcs: tuple) -> list:
        """The transitions of one CPU that form a persistent set (the fewest), else all."""
        if len(moves) < 2:
            return moves
        by = {}
        for mv in moves:
            by.setdefault(mv[1], []).append(mv)
        if len(by) < 2:
            return moves
        for p in sorted(by, key=lambda c: len(by[c])):
            if self.independent(p, by[p], pcs):
                return by[p]
        return moves


def search(ex: "Explorer", res: "Result", fuse: bool = True) -> "Result":
    """Breadth-first over steps: the shortest failing interleaving of steps, every final state.
    ``fuse``: the reductions over steps (partial-order reduction and fusion; ex.por)."""
    m = ex.m
    st = res.stats
    t0 = ex.t0
    red = Persistent(m, ex.fp) if fuse and ex.fp is not None else None
    # an interrupt handler tells its CPU apart from the others: no symmetry then
    if m.handlers:
        ex.sym, ex.want_symmetry = None, False
    canon = ex.sym.canonical if ex.sym is not None else None
    key0 = (m.start, m.start_pcs)
    index = {canon(*key0) if canon else key0: 0}
    states, pcs_of, parent, via, depth = [m.start], [m.start_pcs], [-1], [None], [0]
    queue = deque([0])
    final = m.final
    failure = fail_from = None
    stop = ""
    expanded = transitions = 0
    exists = final is not None and final.quantifier == "exists"
    exists_id = None
    on_edge = ex.on_edge
    while queue:
        i = queue.popleft()
        s, pcs = states[i], pcs_of[i]
        expanded += 1
        if expanded % 256 == 0:
            if ex.max_seconds is not None and time.perf_counter() - t0 > ex.max_seconds:
                stop = f"stopped after {ex.max_seconds:g} s (--max-seconds)"
                break
            if ex.want_symmetry and len(states) >= ex.symmetry_after:
                ex._find_symmetry()
                canon = ex.sym.canonical if ex.sym is not None else None
        m.restore(s)
        moves = enabled(m, s, pcs)
        if not moves:
            if all(pc >= len(us) for pc, us in zip(pcs, m.units)):
                st.finals += 1
                if ex.all_finals:
                    res.finals.append(s)
                if final is not None:
                    held, detail = m.judge_final()
                    if exists and held:
                        res.exists_count += 1
                        exists_id = i if exists_id is None else exists_id
                    elif not held and final.quantifier == "forall":
                        if failure is None:
                            failure = Failure("final", f"final forall does not hold: {detail}", "", final.line,
                                              final.col)
                            fail_from = (i, [])
                        if not ex.all_finals:
                            break
                continue
            st.deadlocks += 1
            if failure is None:
                failure = _deadlock(m, pcs)
                fail_from = (i, [])
            if not ex.all_finals:       # --all-finals: the search goes on past failures, as search.py's
                break
            continue
        if red is not None:
            fire_set = red.reduce(moves, pcs)
            if len(fire_set) < len(moves):
                res.pruned = True
        else:
            fire_set = moves
        for mv in fire_set:
            m.restore(s)
            kind, cpu = mv[0], mv[1]
            taken = [mv]
            move, fail, npcs, o = fire(m, *mv[:2], pcs, *mv[2:])
            names = [o.step]
            transitions += 1
            while red is not None and move != FAILED and kind == "cpu" and _fusible(m, red, cpu, npcs):
                taken.append((kind, cpu))
                move, fail, npcs, o = fire(m, kind, cpu, npcs)
                names.append(o.step)
                transitions += 1
            if move == FAILED:
                if on_edge is not None:
                    on_edge(i, None, Taken(taken, names), None, None, fail)
                if failure is None:
                    failure, fail_from = fail, (i, taken)
                if not ex.all_finals:
                    break
                continue
            s2 = m.capture() if move != SAME else s
            key = (s2, npcs)
            if canon is not None:
                key = canon(*key)
            j = index.get(key)
            if j is None:
                j = index[key] = len(states)
                states.append(s2)
                pcs_of.append(npcs)
                parent.append(i)
                via.append(taken)
                depth.append(depth[i] + len(taken))
                st.depth = max(st.depth, depth[-1])
                queue.append(j)
            if on_edge is not None:
                on_edge(i, j, Taken(taken, names), s2, npcs, None)
            if ex.max_states is not None and len(states) >= ex.max_states:
                stop = f"stopped at {ex.max_states:,} states (--max-states)"
                break
        if (failure is not None and not ex.all_finals) or stop:
            break
    st.states, st.transitions, st.distinct = expanded, transitions, len(states)
    st.seconds = time.perf_counter() - t0
    res.stop_reason = stop
    res.complete = not stop and not queue
    res.por = red is not None
    res.symmetry = ex.sym.size() if canon is not None else 1
    res.mode, res.fused = "steps", red is not None
    if failure is not None:
        res.failure = failure
        i, last = fail_from
        res.path = _path(parent, via, i) + last
    if exists_id is not None:
        res.exists_path = _path(parent, via, exists_id)
    return res


def walk(m: "Model", rng, st) -> tuple:
    """One random interleaving of steps (search.random_walks drives it): at each boundary one
    enabled transition (a block's next step, an IPI taken, an interrupt) picked uniformly.
    (path, the final state or None, (failure, path) or None)."""
    s, pcs, path = m.start, m.start_pcs, []
    while True:
        moves = enabled(m, s, pcs)
        if not moves:
            if all(pc >= len(us) for pc, us in zip(pcs, m.units)):
                return path, (s, pcs), None
            st.deadlocks += 1
            return path, None, (_deadlock(m, pcs), list(path))
        mv = rng.choice(moves)
        move, f, pcs, _ = fire(m, *mv[:2], pcs, *mv[2:])
        st.transitions += 1
        st.states += 1
        path.append(mv)
        if move == FAILED:
            return path, None, (f, path)
        if move != SAME:
            s = m.capture()


def _fusible(m: "Model", red: Persistent, cpu: int, pcs: tuple) -> bool:
    """The step that just ran on cpu left its irqs off (no IPI, no interrupt can land before
    its next step), the operation goes on, and that next step alone is a persistent set."""
    k = m.k
    if k.c_op[cpu] is None or not k.c_irqs_off[cpu] or not STEPS.can_advance(k, cpu):
        return False
    return red.independent(cpu, [("cpu", cpu)], pcs)


def _path(parent, via, i) -> list:
    out = []
    while parent[i] >= 0:
        out[:0] = via[i]
        i = parent[i]
    return out


def _deadlock(m: "Model", pcs) -> Failure:
    k = m.k
    waiting = [m.bcpu[b] for b, us in enumerate(m.units) if pcs[b] < len(us)]
    stuck = [c for c in waiting if k.c_op[c] is not None]
    first = next(m.units[b][pcs[b]] for b, us in enumerate(m.units) if pcs[b] < len(us))
    if stuck:
        return Failure("deadlock", "deadlock: " + ", ".join(f"cpu{c} waits for the IPIs it sent" for c in stuck)
                       + ", and no CPU they wait on can take them (their irqs are off)", "smp_call_function_many",
                       first.stmt.line, first.stmt.col, first.cpu)
    return m.deadlock(pcs)


# ====================================================================== replay and witness
def replay(m: "Model", path: list) -> list:
    """The steps of a path from the start state, each with the fields it changed."""
    from .witness import ReplayedStep
    m.restore(m.start)
    pcs = m.start_pcs
    before = m.fields()
    out = []
    for mv in path:
        kind, cpu = mv[0], mv[1]
        move, fail, npcs, o = fire(m, kind, cpu, pcs, *mv[2:])
        after = m.fields()
        changes = [(key, before.get(key), after.get(key)) for key in after if before.get(key) != after.get(key)]
        expect = o.expect if kind == "cpu" else None
        out.append(ReplayedStep(cpu, o.stmt, expect, changes, fail, o.step or ""))
        before, pcs = after, npcs
        if move == FAILED:
            break
    return out


def interleave_line(path: list) -> str:
    return "interleave " + " ".join(_move_text(mv) for mv in path)


def _move_text(mv) -> str:
    return (f"cpu{mv[1]}" if mv[0] == "cpu" else f"{mv[0]} cpu{mv[1]}") + ("" if len(mv) < 3 else f" from cpu{mv[2]}")


class Taken:
    """What one transition of the search over steps fired, for Explorer.on_edge (the state graph
    of `mmscn draw --format dot`): its moves, as an `interleave` line writes them (fusion fires
    several), and the kernel step each one ran (Outcome.step)."""
    __slots__ = ("moves", "steps")

    def __init__(self, moves: list, steps: list):
        self.moves, self.steps = moves, steps

    def text(self) -> str:
        return "\n".join(f"{_move_text(mv)}: {name}" if name else _move_text(mv)
                         for mv, name in zip(self.moves, self.steps))


def witness_text(m: "Model", res: "Result") -> str:
    """The scenario with the failing interleaving of steps as its `interleave` line, under the
    kernel the search ran: `mmscn run` on it fails at the last step (`expect fail`)."""
    from .witness import witness_head
    sc, v = m.sc, m.k.version
    first = min([x.line for x in sc.stmts + sc.blocks + sc.interrupts] + ([sc.final.line] if sc.final else []))
    out = witness_head(m, res, "kernel steps")
    if not m.policy.kernel:
        out.append(f"kernel {v.release}")
    out += [f"revert {key}" for key in sorted(v.reverts)] + [f"config {c}" for c in sorted(v.configs)]
    out += ["granularity step", "expect fail", interleave_line(res.path), ""]
    out += [printable(line) for line in m.lines[first - 1:]]
    return "\n".join(out).rstrip("\n") + "\n"
