"""The search over kernel steps (`granularity step`, interpreter/steps.py).

A transition is one kernel step: the next step of a block (the next step of
the operation in flight on its CPU, or its next statement's first step), an
IPI queued on a CPU whose irqs are on running its handler there (a step of
the target; the IPIs queued on one CPU are taken lowest sender first), or
the scenario's `interrupt cpuN { }` handler firing where cpuN's irqs are on,
or (PREEMPT_RT) the RCU callbacks a CPU queued running there once their
grace period ended ("rcu").
A block's program counter moves on when its statement's operation returns.
A visited state is the kernel state (the operations in flight and the IPIs
queued included: state.py) and the blocks' program counters.

The reduction: a step after which its CPU's irqs are off and that touched
nothing but its own CPU's fields is fused with that CPU's next step (no IPI
or interrupt can land between them, and no other CPU can tell them apart).
Partial-order reduction and symmetry are not applied to steps: the search is
exhaustive over what remains (docs/explore.md).

A path is a list of (kind, cpu): "cpu" a block's step, "ipi" an IPI taken
on cpu, "interrupt" cpu's handler, "rcu" cpu's RCU callbacks; `interleave` writes it out, so a witness
is the scenario with that line, and `mmscn run` replays it.
"""
from __future__ import annotations

import time
from collections import deque
from typing import TYPE_CHECKING

from mmscn.dsl.diagnostics import plural, printable

from .. import steps as STEPS
from ..step import deliver, execute, execute_step, interrupt, rcu_callbacks
from .model import ENDED, FAILED, SAME, Failure, search_move

if TYPE_CHECKING:
    from .model import Model
    from .search import Explorer, Result


def fire(m: "Model", kind: str, cpu: int, pcs: tuple):
    """One transition on the kernel as it stands: (move, Failure or None, the new pcs, Outcome)."""
    k = m.k
    if kind == "ipi":
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
    seen = set()
    for target, _ in STEPS.deliverable(k):
        if target not in seen:
            seen.add(target)
            out.append(("ipi", target))
    out += [("rcu", c) for c in STEPS.rcu_ready(k)]
    if live:
        for cpu in m.handlers:
            if not k.c_irq_done[cpu] and not k.c_irqs_off[cpu]:
                out.append(("interrupt", cpu))
    return out


def search(ex: "Explorer", res: "Result", fuse: bool = True) -> "Result":
    """Breadth-first over steps: the shortest failing interleaving of steps, every final state."""
    m = ex.m
    st = res.stats
    t0 = ex.t0
    index = {(m.start, m.start_pcs): 0}
    states, pcs_of, parent, via, depth = [m.start], [m.start_pcs], [-1], [None], [0]
    queue = deque([0])
    final = m.final
    failure = fail_from = None
    stop = ""
    expanded = transitions = 0
    exists = final is not None and final.quantifier == "exists"
    exists_id = None
    while queue:
        i = queue.popleft()
        s, pcs = states[i], pcs_of[i]
        expanded += 1
        if ex.max_seconds is not None and expanded % 256 == 0 and time.perf_counter() - t0 > ex.max_seconds:
            stop = f"stopped after {ex.max_seconds:g} s (--max-seconds)"
            break
        m.restore(s)
        moves = enabled(m, s, pcs)
        if not moves:
            if all(pc >= len(us) for pc, us in zip(pcs, m.units)):
                st.finals += 1
                if final is not None:
                    held, detail = m.judge_final()
                    if exists and held:
                        res.exists_count += 1
                        exists_id = i if exists_id is None else exists_id
                    elif not held and final.quantifier == "forall":
                        failure = Failure("final", f"final forall does not hold: {detail}", "", final.line, final.col)
                        fail_from = (i, [])
                        break
                continue
            st.deadlocks += 1
            failure = _deadlock(m, pcs)
            fail_from = (i, [])
            break
        for kind, cpu in moves:
            m.restore(s)
            taken = [(kind, cpu)]
            move, fail, npcs, _ = fire(m, kind, cpu, pcs)
            transitions += 1
            while fuse and move != FAILED and kind == "cpu" and _fusible(m, cpu):
                taken.append((kind, cpu))
                move, fail, npcs, _ = fire(m, kind, cpu, npcs)
                transitions += 1
            if move == FAILED:
                failure, fail_from = fail, (i, taken)
                break
            s2 = m.capture() if move != SAME else s
            key = (s2, npcs)
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
            if ex.max_states is not None and len(states) >= ex.max_states:
                stop = f"stopped at {ex.max_states:,} states (--max-states)"
                break
        if failure is not None or stop:
            break
    st.states, st.transitions, st.distinct = expanded, transitions, len(states)
    st.seconds = time.perf_counter() - t0
    res.stop_reason = stop
    res.complete = not stop and not queue
    res.por, res.symmetry, res.mode, res.fused = False, 1, "steps", fuse
    if failure is not None:
        res.failure = failure
        i, last = fail_from
        res.path = _path(parent, via, i) + last
    if exists_id is not None:
        res.exists_path = _path(parent, via, exists_id)
    return res


def _fusible(m: "Model", cpu: int) -> bool:
    """The step that just ran on cpu left its irqs off and touched only cpu's own fields, and
    the operation goes on: nothing can land before its next step, nothing tell them apart."""
    k = m.k
    if k.c_op[cpu] is None or not k.c_irqs_off[cpu] or not STEPS.can_advance(k, cpu):
        return False
    tasks, mms, cpus = k.changed
    return not tasks and not mms and cpus <= {cpu}


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
    for kind, cpu in path:
        move, fail, npcs, o = fire(m, kind, cpu, pcs)
        after = m.fields()
        changes = [(key, before.get(key), after.get(key)) for key in after if before.get(key) != after.get(key)]
        expect = o.expect if kind == "cpu" else None
        out.append(ReplayedStep(cpu, o.stmt, expect, changes, fail, o.step or ""))
        before, pcs = after, npcs
        if move == FAILED:
            break
    return out


def interleave_line(path: list) -> str:
    return "interleave " + " ".join(f"cpu{c}" if kind == "cpu" else f"{kind} cpu{c}" for kind, c in path)


def witness_text(m: "Model", res: "Result") -> str:
    """The scenario with the failing interleaving of steps as its `interleave` line, under the
    kernel the search ran: `mmscn run` on it fails at the last step (`expect fail`)."""
    sc, f, v = m.sc, res.failure, m.k.version
    path = printable(str(sc.path))
    first = min([x.line for x in sc.stmts + sc.blocks + sc.interrupts] + ([sc.final.line] if sc.final else []))
    out = [f"# Witness written by `mmscn explore` for {path}: an interleaving of its",
           f"# kernel steps ({plural(len(res.path), 'step')}) that fails:",
           printable(f"#   {f.kind}: {f.message}"[:400]),
           "# `mmscn run` on this file replays it and fails at the last step; the header's",
           "# `expect fail` makes that failure the pass.",
           f"scenario \"{('witness: ' + (sc.title if sc.title is not None else path)).replace(chr(34), chr(39))}\"",
           f"arch {m.policy.name}",
           f"cpus {sc.ncpus}"]
    if not m.policy.kernel:
        out.append(f"kernel {v.release}")
    out += [f"revert {key}" for key in sorted(v.reverts)] + [f"config {c}" for c in sorted(v.configs)]
    out += ["granularity step", "expect fail", interleave_line(res.path), ""]
    out += [printable(line) for line in m.lines[first - 1:]]
    return "\n".join(out).rstrip("\n") + "\n"
