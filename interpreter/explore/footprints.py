"""Static may-footprints of the units, for partial-order reduction (persistent sets)."""
from __future__ import annotations

from typing import TYPE_CHECKING

from mmscn.dsl import ast as A
from mmscn.dsl.names import cpu_number, is_cpu_name

from .. import state as S
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


# Statements whose effect on an mm, while its mm_users cannot reach 0, is only to add to and
# subtract from its counters (mm_users, mm_count, the external references, the bookkeeping
# counts): kthread_use_mm, kthread_unuse_mm, context_switch, do_exit's exit_mm, mmget/mmput/
# mmgrab/mmdrop, mmget_not_zero.  Their tests of a counter (mmget_not_zero, kthread_use_mm's
# mm_users, mmput's and mmdrop's zero) then always come out the same way.
COUNTER_ONLY = (A.Schedule, A.Exit, A.UseMm, A.UnuseMm, A.MmRef, A.MmgetNotZero)
# statements that never drop an mm_users or external reference
NO_DECREMENT = (A.Schedule, A.UseMm, A.UnuseMm, A.Unlazy, A.MmgetNotZero, A.Assert, A.Flush, A.Offline, A.Online)
MANY = 1 << 30          # a statement that may drop any number of them


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

        def bits_of(tasks=(), mms=(), cpus=()) -> int:
            bits = 0
            for t in tasks:
                bits |= tb(t)
            for m in mms:
                bits |= mb(m)
            for c in cpus:
                bits |= cb(c)
            return bits

        # dropping a reference may free an mm: __mmdrop's cleanup and the freed-mm checks
        # reach every CPU that may have it loaded, and the tasks that may hold it
        expand = [0] * nm
        for m in range(nm):
            if m != INIT_MM:
                cs = holders[m]
                expand[m] = bits_of(set().union(owners[m], *(run_on[c] for c in cs)), (), cs)
        self.expand = expand

        def mask(tasks=(), mms=(), cpus=()):
            """(the bits of the tasks and CPUs a statement reaches directly, the mms it may touch)"""
            tasks, mms, cpus = set(tasks), set(mms), set(cpus)
            for c in cpus:
                tasks |= run_on[c]
                mms |= active_on[c]
            for t in list(tasks):
                mms |= own[t]
            return bits_of(tasks, (), cpus), frozenset(mms - {INIT_MM})

        G = self.GLOBAL
        # the kernel's guarantee on the counters (docs/explore.md, "Counters that commute"): only
        # where no policy hook writes an mm's own hardware state (mm_cpumask)
        counters_commute = not any((S.MM, h) in S.VIEW for h in model.policy.hardware_fields)
        self.pinnable = set()           # the mms some statement touches only through its counters
        for us in units:
            for u in us:
                part = self._unit(u, k, mask, cpus_of, cpu_of)
                if part is None:
                    u.fp, u.loc, u.mms, u.soft = G, G, (), False
                else:
                    u.loc, mms = part
                    u.mms = tuple(sorted(mms))
                    u.fp = u.loc
                    for m in u.mms:
                        u.fp |= mb(m) | expand[m]
                    u.soft = counters_commute and type(u.stmt) in COUNTER_ONLY
                    if u.soft:
                        self.pinnable.update(u.mms)
                u.dec = self._decrements(u, k, own)
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
        self._dynamic_setup(model, units, nt, nm, nc)

    def _unit(self, u, k, mask, cpus_of, cpu_of):
        """(bits, mms) the statement may reach (see mask), or None: it may touch anything."""
        st = u.stmt
        refs: list = []
        _refs(st, refs)
        if u.expect is not None:
            _refs(u.expect, refs)
        for kind, text in refs:
            if kind == "cost" or text == "@init_mm":
                return None
            if kind == "task" and text not in k.task_ix and text != "idle":
                return None
            if kind == "mm" and text not in k.mm_ix:
                return None
        if isinstance(st, (A.Spawn, A.SpawnThread, A.SpawnKthread, A.Exec, A.Offline, A.Online)):
            return None
        base = mask(cpus=[u.cpu])          # a block statement first looks at its CPU's current task
        join = lambda a, b: (a[0] | b[0], a[1] | b[1])
        T = lambda ref: k.task_ix[ref.text]
        if isinstance(st, A.Schedule):
            c = cpu_of(st, u)
            tasks = [] if st.task is None else [T(st.task)]
            return join(base, mask(tasks=tasks, cpus=[c]))
        if isinstance(st, (A.Exit, A.UseMm, A.UnuseMm)):
            t = T(st.task)
            mms = [k.mm_ix[st.mm.text]] if isinstance(st, A.UseMm) else []
            return join(base, mask(tasks=[t], mms=mms, cpus=cpus_of[t]))
        if isinstance(st, A.Unlazy):
            return join(base, mask(cpus=[cpu_of(st, u)]))
        if isinstance(st, (A.MmRef, A.MmgetNotZero, A.Flush)):
            return join(base, mask(mms=[k.mm_ix[st.mm.text]]))
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
        return None

    # ---- counters that commute (docs/explore.md, "Counters that commute") ------------
    @staticmethod
    def _decrements(u, k, own) -> dict:
        """mm -> (mm_users, external mm_users, external mm_count references) that the unit
        may drop at most; MANY for a statement not known to drop none."""
        st = u.stmt
        if isinstance(st, NO_DECREMENT):
            return {}
        if isinstance(st, A.Exit) and st.task.text in k.task_ix:
            return {m: (1, 0, 0) for m in own[k.task_ix[st.task.text]]}
        if isinstance(st, A.MmRef) and st.mm.text in k.mm_ix:
            return {k.mm_ix[st.mm.text]: {"mmput": (1, 1, 0), "mmdrop": (0, 0, 1)}.get(st.op, (0, 0, 0))}
        return {m: (MANY, MANY, MANY) for m in range(len(k.m_name))}

    @staticmethod
    def _reads(u, k):
        """(mm, which counter) a unit tests against zero, or None: kthread_use_mm, mmget,
        mmgrab and mmget_not_zero need mm_users above 0 (0 users, a freed mm or a failing
        mmget_not_zero otherwise), mmput an external mm_users reference, mmdrop an external
        mm_count reference (unbalanced otherwise)."""
        st = u.stmt
        if isinstance(st, (A.UseMm, A.MmgetNotZero, A.MmRef)) and st.mm.text in k.mm_ix:
            return k.mm_ix[st.mm.text], {"mmput": 1, "mmdrop": 2}.get(getattr(st, "op", ""), 0)
        return None

    def _dynamic_setup(self, model, units, nt, nm, nc) -> None:
        self.cands = tuple(sorted(self.pinnable))
        self.dynamic = bool(self.cands)
        if not self.dynamic:
            return
        pol, k = model.policy, model.k
        base = type(pol).__mro__[-2]            # policies.base.Policy
        # a last reference may go where the policy's hooks are the kernel's generic ones: exit_mmap
        # does nothing, the loaded mm is the current task's active_mm (so a freed mm is loaded nowhere
        # while the references are counted), and lazy users hold counted references (no shootdown)
        hooks = ("exit_mmap", "switch_mm_irqs_off", "enter_lazy_tlb", "activate_mm", "switch_to", "loaded_mm",
                 "check", "cpu_up", "cpu_dead", "init_new_context")
        self.zero_ok = pol.lazy_tlb_refcount and not pol.hardware_fields and \
            all(getattr(type(pol), h) is getattr(base, h, None) for h in hooks)
        store = model.store
        self._pos = tuple(store.pos(S.MM, a) for a in ("m_users", "m_ext_users", "m_ext_count"))
        self._mm_at = store.HEAD + nt
        self._mm_rows = store.rows[1]
        none = -MANY
        # per block and pc, per candidate mm: what the rest of the block may drop at most (suf),
        # and the least slack its readers need (need: 1 - what the block itself drops from the reader on)
        self.suf, self.need = [], []
        for us in units:
            acc = [(0, 0, 0)] * len(self.cands)
            need = [(none, none, none)] * len(self.cands)
            fs, fn = [tuple(acc)] * (len(us) + 1), [tuple(need)] * (len(us) + 1)
            for i in range(len(us) - 1, -1, -1):
                d, r = us[i].dec, self._reads(us[i], k)
                acc = [tuple(min(a + b, MANY) for a, b in zip(a3, d.get(m, (0, 0, 0))))
                       for a3, m in zip(acc, self.cands)]
                if r is not None and r[0] in self.cands:
                    j = self.cands.index(r[0])
                    n = list(need[j])
                    n[r[1]] = max(n[r[1]], 1 - acc[j][r[1]])
                    need[j] = tuple(n)
                fs[i], fn[i] = tuple(acc), tuple(need)
            self.suf.append(fs)
            self.need.append(fn)
        self.B = nt + nm + nc          # where the soft bits of the mms begin
        self.nt = nt
        self.LOW = (1 << self.B) - 1
        self._eff = {}
        self._fut = {}

    def pinned(self, s: tuple, pcs: tuple) -> int:
        """The candidate mms (a bit per mm index) settled in every continuation of (s, pcs): no
        statement left that tests a counter of one against zero can find it there (the value now,
        less what the blocks may drop before that statement, stays above 0), and, unless the
        policy lets a last reference go freely (zero_ok), mm_users never reaches 0.  Once true,
        true in every later state: a drop uses up at least as much of the bound as it takes."""
        out = 0
        rows, at = self._mm_rows, self._mm_at
        pos = self._pos
        suf, need = self.suf, self.need
        floor = -MANY if self.zero_ok else 1
        for j, m in enumerate(self.cands):
            row = rows[s[at + m]]
            ok = True
            for c in range(3):
                slack = row[pos[c]]
                want = floor if c == 0 else -MANY
                for b, pc in enumerate(pcs):
                    slack -= suf[b][pc][j][c]
                    n = need[b][pc][j][c]
                    if n > want:
                        want = n
                if slack < want:
                    ok = False
                    break
            if ok:
                out |= 1 << m
        return out

    def eff(self, u, pinned: int) -> int:
        """The unit's footprint given the pinned mms: a pinned mm is never freed, so it needs no
        reach to the CPUs and tasks that may hold it; a counter-only access to it takes its soft
        bit (which conflicts only with another statement's strict bit of that mm)."""
        key = (u.block, u.index, pinned)
        e = self._eff.get(key)
        if e is None:
            e = u.loc
            if e != self.GLOBAL:
                for m in u.mms:
                    if pinned >> m & 1:
                        e |= 1 << (self.B + m) if u.soft else self.mb(m)
                    else:
                        e |= self.mb(m) | self.expand[m]
            self._eff[key] = e
        return e

    def fut_eff(self, b: int, pc: int, pinned: int) -> int:
        key = (b, pc, pinned)
        f = self._fut.get(key)
        if f is None:
            us = self.model.units[b]
            f = 0
            for i in range(pc, len(us)):
                f |= self.eff(us[i], pinned)
            self._fut[key] = f
        return f

    def conflict(self, a: int, b: int) -> bool:
        """Whether footprints a and b overlap: in a task, CPU or strict mm bit, or one's soft bit
        of an mm against the other's strict bit of it (two soft bits of one mm commute)."""
        B, nt = self.B, self.nt
        return bool(a & b & self.LOW or (a >> B) << nt & b or a & (b >> B) << nt)
