"""The explored state graph of a scenario's per-CPU blocks, for Graphviz (`dot -Tsvg`).

The explorer (interpreter/explore.py) runs with its edge hook: every
statement it fires is an edge from the state before to the state after, or
to a failure.  A node is one distinct state (after the reductions, as
`mmscn explore` counts them): where each block is, then a line per CPU
(`cpu0 runs A on @A`), task and mm (`@A 1/2 live`: mm_users/mm_count) that
tells it from other states (what every state shares is listed once, in the
graph's label).  An edge says which CPU ran which
statement.  The search's path to its first failure (the interleaving `mmscn
explore` reports, before it drops the steps the failure does not depend on)
is drawn thick and vermillion, each of its edges numbered; final states have a double
border, failures and deadlocks are octagons.  The search goes on after a
failure (as `--all-finals`), so the graph is the whole reduced state space,
up to ``max_states``.
"""
from __future__ import annotations

from mmscn.dsl.diagnostics import printable
from mmscn.interpreter import steps as STEPS
from mmscn.interpreter.explore.stepped import Taken

WITNESS_COLOUR = "#D55E00"      # Okabe-Ito vermillion (and thick: legible without colour)
MAX_FIELDS = 12                 # fields written in one node


def _q(text: str) -> str:
    """A DOT string: sanitised, quotes and backslashes escaped, lines left-justified."""
    t = printable(str(text), lines=True).replace("\\", "\\\\").replace('"', '\\"')
    return '"' + t.replace("\n", "\\l") + '\\l"'


class _Graph:
    """What the explorer's edge hook reports: the states, their first parents, the edges."""

    def __init__(self, model):
        self.state = {0: (model.start, model.start_pcs)}
        self.parent = {0: None}
        self.edges = []                 # (src, dst or None, unit, failure)
        self.first_fail = None          # index into edges of the first failing edge

    def edge(self, src, dst, unit, state, pcs, failure):
        if dst is not None and dst not in self.state:
            self.state[dst] = (state, pcs)
            self.parent[dst] = (src, len(self.edges))
        if dst is None and self.first_fail is None:
            self.first_fail = len(self.edges)
        self.edges.append((src, dst, unit, failure))


def dot(model, *, por: bool = True, symmetry: bool = True, max_states: int = 2000) -> str:
    """The state graph as a DOT digraph."""
    from mmscn.interpreter import explore as X
    from mmscn.interpreter.explore import stmt_source
    g = _Graph(model)
    res = X.prologue_result(model)
    if res is None:
        res = X.Explorer(model, por=por, symmetry=symmetry, max_states=max_states, all_finals=True,
                         on_edge=g.edge).run()
    witness = _witness(g, res)
    facts = {}
    for i, (s, _) in sorted(g.state.items()):
        model.restore(s)
        facts[i] = _facts(model)
    keys = list(dict.fromkeys(k for d in facts.values() for k in d))
    varying = [k for k in keys if len({d.get(k) for d in facts.values()}) > 1]
    common = [k for k in keys if k not in varying]
    sc = model.sc
    title = f"{sc.path}: {sc.title}" if sc.title else sc.path
    head = [f"{title} (arch {model.policy.name}): {len(g.state)} states, {len(g.edges)} edges"]
    if res.stop_reason:
        head.append(f"{res.stop_reason}: the graph is partial")
    if res.failure is not None:
        head += _wrap(f"thick vermillion, steps numbered: the search's path to its first failure "
                      f"({res.failure.kind}: {res.failure.message})", 120)
    if common:
        shown = "; ".join(facts[0][k] for k in common[:16])
        head.append("in every state: " + shown + (f"; ... {len(common) - 16} more" if len(common) > 16 else ""))
    out = ["digraph mmscn {",
           f"  graph [label={_q(chr(10).join(head))}, labelloc=t, labeljust=l, fontname=\"DejaVu Sans\", "
           f"fontsize=11, rankdir=TB];",
           '  node [shape=box, fontname="DejaVu Sans", fontsize=9, style=rounded];',
           '  edge [fontname="DejaVu Sans", fontsize=8];']
    has_out = {src for src, _, _, _ in g.edges}
    nfinal = [all(pc >= len(model.units[b]) for b, pc in enumerate(pcs)) for _, (_, pcs) in sorted(g.state.items())]
    wnodes = {n for n in witness["nodes"]}
    for i, (s, pcs) in sorted(g.state.items()):
        where = ", ".join(f"cpu{model.bcpu[b]} " + (f"at line {model.units[b][pc].stmt.line}"
                                                    if pc < len(model.units[b]) else "done")
                          for b, pc in enumerate(pcs))
        lines = [("start: " if i == 0 else f"s{i}: ") + where]
        shown = [k for k in varying if k in facts[i]]
        lines += [facts[i][k] for k in shown[:MAX_FIELDS]]
        if len(shown) > MAX_FIELDS:
            lines.append(f"... {len(shown) - MAX_FIELDS} more")
        attrs = [f"label={_q(chr(10).join(lines))}"]
        if nfinal[i]:
            attrs.append("peripheries=2")
        elif i not in has_out and res.complete:
            attrs += ["shape=octagon", 'xlabel="deadlock"']
        if i in wnodes:
            attrs += [f'color="{WITNESS_COLOUR}"', "penwidth=2.5"]
        out.append(f"  s{i} [{', '.join(attrs)}];")
    for n, (src, dst, u, failure) in enumerate(g.edges):
        if isinstance(u, Taken):        # granularity step: the kernel steps the edge fired
            label = u.text()
        else:
            label = f"cpu{u.cpu}: {stmt_source(model, u.stmt, u.cpu)}\nline {u.stmt.line}"
        attrs = []
        step = witness["edges"].get(n)
        if step is not None:
            label = f"step {step}: " + label
            attrs += [f'color="{WITNESS_COLOUR}"', "penwidth=3", f'fontcolor="{WITNESS_COLOUR}"']
        if dst is None:
            text = chr(10).join(_wrap(f"{failure.kind}: {failure.message}", 60))
            out.append(f"  f{n} [shape=octagon, penwidth=2, label={_q(text)}];")
            target = f"f{n}"
        else:
            target = f"s{dst}"
        out.append(f"  s{src} -> {target} [{', '.join([f'label={_q(label)}'] + attrs)}];")
    out.append("}")
    return "\n".join(out) + "\n"


def _moves(u) -> tuple:
    """An edge's moves as the reported path holds them: (block, unit index), or kernel steps."""
    return _key(u.moves) if isinstance(u, Taken) else ((u.block, u.index),)


def _key(moves) -> tuple:
    return tuple(map(tuple, moves))


def _wrap(text: str, width: int) -> list:
    import textwrap
    return textwrap.wrap(text, width, break_on_hyphens=False) or [""]


def _facts(model) -> dict:
    """The state on the kernel, one short line per CPU, task and mm (keyed by its name)."""
    k, pol = model.k, model.policy
    out = {}
    for c in range(k.ncpus):
        if not k.c_online[c]:
            out[f"cpu{c}"] = f"cpu{c} offline"
            continue
        t = k.c_curr[c]
        lazy = " (lazy)" if k.t_mm[t] is None and k.t_active[t] is not None else ""
        hw = f", loads {k.mm_label(pol.loaded_mm(k, c))}" if "loaded_mm" in pol.hardware_fields else ""
        out[f"cpu{c}"] = f"cpu{c} runs {k.t_name[t]} on {k.mm_label(k.t_active[t])}{lazy}{hw}"
        if model.stepped:       # what tells apart states between two kernel steps
            at = STEPS.current(k, c)
            if at is not None:
                out[f"cpu{c} op"] = f"cpu{c} next: {at.name}"
            if k.c_ipi_from[c]:
                out[f"cpu{c} ipi"] = f"cpu{c} IPI queued from " + ", ".join(
                    f"cpu{s}" for s in range(k.ncpus) if k.c_ipi_from[c] >> s & 1)
            out[f"cpu{c} tlb"] = f"cpu{c} TLB at flush generation {k.c_tlb_gen[c]}"
    for t in range(len(k.t_name)):
        out[k.t_name[t]] = (f"{k.t_name[t]} {k.t_state[t]}, mm {k.mm_label(k.t_mm[t])}, "
                            f"active_mm {k.mm_label(k.t_active[t])}")
    for m in range(len(k.m_name)):
        mask = pol.cpumask(k, m)
        cpus = "" if mask is None else " {" + ", ".join(f"cpu{i}" for i in range(k.ncpus) if mask >> i & 1) + "}"
        gen = f", flushed to generation {k.m_tlb_gen[m]}" if model.stepped else ""
        out[k.m_name[m]] = f"{k.m_name[m]} {k.m_users[m]}/{k.m_count[m]} {k.mm_state(m)}{cpus}{gen}"
    return out


def _witness(g, res) -> dict:
    """The failing interleaving's nodes and edges (edge index -> step number)."""
    nodes, edges = set(), {}
    f = res.failure
    if f is None or res.mode == "prologue":
        return {"nodes": nodes, "edges": edges}
    if f.kind in ("final", "deadlock"):
        # the reported path is the search tree's: follow it edge by edge from the start (over
        # kernel steps an edge takes as many moves of the path as it fused)
        by = {(src, _moves(u)): n for n, (src, dst, u, _) in enumerate(g.edges) if dst is not None}
        i, at = 0, 0
        nodes.add(0)
        step = 0
        while at < len(res.path):
            for width in range(1, len(res.path) - at + 1):
                n = by.get((i, _key(res.path[at:at + width])))
                if n is not None:
                    break
            else:
                break
            step += 1
            edges[n] = step
            at += width
            i = g.edges[n][1]
            nodes.add(i)
        return {"nodes": nodes, "edges": edges}
    last = g.first_fail
    if last is None:
        return {"nodes": nodes, "edges": edges}
    chain = [last]
    i = g.edges[last][0]
    while g.parent.get(i) is not None:
        p, n = g.parent[i]
        chain.append(n)
        i = p
    chain.reverse()
    nodes.add(0)
    for step, n in enumerate(chain, 1):
        edges[n] = step
        if g.edges[n][1] is not None:
            nodes.add(g.edges[n][1])
    return {"nodes": nodes, "edges": edges}
