"""Static may-footprints of the units, for partial-order reduction (persistent sets)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from mmscn.dsl import ast as A
from mmscn.dsl.names import cpu_number, is_cpu_name

from ..kernel import INIT_MM

if TYPE_CHECKING:
    from .model import Model


def _refs(x, out: list) -> None:
    """Every Ref and named Value inside a node, as (kind, text)."""
    if isinstance(x, A.Ref):
        out.append((_ref_kind(x.text), x.text))
    elif isinstance(x, A.Value):
        if x.kind in ("mm", "task", "cpu"):
            out.append((x.kind, x.text))
        elif x.kind == "cpuset":
            for r in x.text:
                out.append(("cpu", r.text))
    elif isinstance(x, A.Field):
        if x.owner == "cost":
            out.append(("cost", "cost"))
        elif x.obj is not None:
            out.append((x.owner, x.obj.text))
    elif isinstance(x, A.Is):
        out.append((x.owner, x.obj.text))
    elif isinstance(x, (list, tuple)):
        for y in x:
            _refs(y, out)
    elif hasattr(x, "__slots__") and not isinstance(x, (str, int)):
        for name in x.__slots__:
            if name not in ("line", "col"):
                _refs(getattr(x, name), out)


def _ref_kind(text: str) -> str:
    if text.startswith("@"):
        return "mm"
    if is_cpu_name(text):
        return "cpu"
    return "task"


class Footprints:
    """Static may-footprints of every unit, and of each block's remaining program."""

    def __init__(self, model: Model):
        k, units = model.k, model.units
        self.model = model
        nt, nm, nc = len(k.t_name), len(k.m_name), k.ncpus
        self.nt, self.nm = nt, nm
        self.GLOBAL = (1 << (nt + nm + nc)) - 1
        tb = lambda t: 1 << t
        mb = lambda m: 0 if m == INIT_MM else 1 << (nt + m)
        cb = lambda c: 1 << (nt + nm + c)
        self.tb, self.mb, self.cb = tb, mb, cb

        def cpu_of(st, u):
            return u.cpu if getattr(st, "cpu", None) is None else st.cpu.number

        # which tasks may run on each CPU
        run_on = [{k.c_curr[c], c} for c in range(nc)]
        uses = {t: set() for t in range(nt)}
        for us in units:
            for u in us:
                st = u.stmt
                if isinstance(st, A.Schedule):
                    c = cpu_of(st, u)
                    if c < nc and st.task is not None and st.task.text in k.task_ix:
                        run_on[c].add(k.task_ix[st.task.text])
                elif isinstance(st, A.UseMm) and st.task.text in k.task_ix and st.mm.text in k.mm_ix:
                    uses[k.task_ix[st.task.text]].add(k.mm_ix[st.mm.text])
        cpus_of = {t: {c for c in range(nc) if t in run_on[c]} for t in range(nt)}
        for t in range(nt):
            if k.t_cpu[t] is not None:
                cpus_of[t].add(k.t_cpu[t])
        own = {t: ({k.t_mm[t], k.t_active[t]} | uses[t]) - {None} for t in range(nt)}
        active_on = []
        for c in range(nc):
            a = {INIT_MM, k.c_loaded[c], k.c_prev_mm[c], k.t_active[k.c_curr[c]]}
            for t in run_on[c]:
                a |= own[t]
            active_on.append(a - {None})
        holders = {m: {c for c in range(nc) if m in active_on[c]} for m in range(nm)}
        owners = {m: {t for t in range(nt) if m in own[t]} for m in range(nm)}

        def mask(tasks=(), mms=(), cpus=()):
            tasks, mms, cpus = set(tasks), set(mms), set(cpus)
            for c in cpus:
                tasks |= run_on[c]
                mms |= active_on[c]
            for t in list(tasks):
                mms |= own[t]
            # dropping a reference may free an mm: __mmdrop's cleanup and the
            # freed-mm checks reach every CPU that may have it loaded
            for m in list(mms):
                if m != INIT_MM:
                    for c in holders[m]:
                        cpus.add(c)
                        tasks |= run_on[c]
                    tasks |= owners[m]
            bits = 0
            for t in tasks:
                bits |= tb(t)
            for m in mms:
                bits |= mb(m)
            for c in cpus:
                bits |= cb(c)
            return bits

        G = self.GLOBAL
        for us in units:
            for u in us:
                u.fp = self._unit(u, k, mask, cpus_of, cpu_of, G)
                if u.waits_for is not None:
                    u.enable_fp = tb(u.waits_for) if u.waits_for >= 0 else G
        # the future of each block from each pc
        self.fut = []
        for us in units:
            acc, f = 0, [0] * (len(us) + 1)
            for i in range(len(us) - 1, -1, -1):
                acc |= us[i].fp
                f[i] = acc
            self.fut.append(f)

    def _unit(self, u, k, mask, cpus_of, cpu_of, G) -> int:
        st = u.stmt
        refs: list = []
        _refs(st, refs)
        if u.expect is not None:
            _refs(u.expect, refs)
        for kind, text in refs:
            if kind == "cost" or text == "@init_mm":
                return G
            if kind == "task" and text not in k.task_ix and text != "idle":
                return G
            if kind == "mm" and text not in k.mm_ix:
                return G
        if isinstance(st, (A.Spawn, A.SpawnThread, A.SpawnKthread, A.Exec, A.Offline, A.Online)):
            return G
        base = mask(cpus=[u.cpu])          # a block statement first looks at its CPU's current task
        T = lambda ref: k.task_ix[ref.text]
        if isinstance(st, A.Schedule):
            c = cpu_of(st, u)
            tasks = [] if st.task is None else [T(st.task)]
            return base | mask(tasks=tasks, cpus=[c])
        if isinstance(st, (A.Exit, A.UseMm, A.UnuseMm)):
            t = T(st.task)
            mms = [k.mm_ix[st.mm.text]] if isinstance(st, A.UseMm) else []
            return base | mask(tasks=[t], mms=mms, cpus=cpus_of[t])
        if isinstance(st, A.Unlazy):
            return base | mask(cpus=[cpu_of(st, u)])
        if isinstance(st, (A.MmRef, A.MmgetNotZero, A.Flush)):
            return base | mask(mms=[k.mm_ix[st.mm.text]])
        if isinstance(st, A.Assert):
            tasks, mms, cpus = [], [], []
            for kind, text in refs:
                if kind == "task" and text != "idle":
                    tasks.append(k.task_ix[text])
                elif kind == "mm":
                    mms.append(k.mm_ix[text])
                elif kind == "cpu":
                    cpus.append(cpu_number(text))
            return mask(tasks=tasks, mms=mms, cpus=cpus + [u.cpu])
        return G
