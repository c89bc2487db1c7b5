"""Symmetry reduction: automorphisms of the blocks and the start state, canonical images."""
from __future__ import annotations

import time
from typing import Optional

from mmscn.dsl import ast as A
from mmscn.dsl.names import cpu_number

from .. import state as S
from ..kernel import INIT_MM
from ..conditions import cond_text
from .footprints import _ref_kind, _refs
from .model import Model


class Symmetry:
    """Automorphisms of the blocks and the start state, and the canonical image of a state.

    An automorphism is a permutation of the blocks (each onto one of the same
    shape) with the renaming of CPUs, tasks and mms their statements force;
    names no block forces stay put.  Blocks that can trade places with each
    other and nothing else (only their CPUs and idle tasks move) are
    *interchangeable*: every order of them is an automorphism, so instead of
    enumerating those k! orders a state is put into canonical form by sorting
    them (by what each one's CPU holds).  The search then enumerates only the
    rest of the group: one representative per coset, an interchangeable class
    mapped in order onto another, a singleton block onto a singleton.  It
    tries at most MAX_CANDIDATES pairings of a block with a target, keeps at
    most MAX_ELEMENTS representatives (fewer in a big state), and stops at the
    deadline.  Stopping early loses reduction, never a verdict: every image
    used is still an automorphism's."""

    MAX_ELEMENTS = 512
    MAX_CANDIDATES = 20_000
    MAX_SLOTS = 200_000     # elements kept times the state's size: each costs that much per state, and memory

    def __init__(self, model: Model, deadline: Optional[float] = None):
        self.model = model
        self.deadline = deadline
        self.tried = 0              # pairings of a block with a target tried (bounded by MAX_CANDIDATES)
        self.cut = False            # a bound stopped the search: the group found may be a part of the whole
        self._clock_at = 0
        self.perms = []             # (task perm, mm perm, cpu perm, block perm), identity excluded
        self.images = []
        self.classes = []           # interchangeable blocks, each a sorted tuple of >= 2 block indexes
        if model.creates or model.nblocks < 2:
            return
        k = model.k
        self.max_elements = min(self.MAX_ELEMENTS, self.MAX_SLOTS // (len(k.t_name) + len(k.m_name) + k.ncpus))
        self.final_texts = None if model.final is None else sorted(cond_text(c) for c in model.final.conds)
        # what any automorphism keeps: a block's shape and what its CPU looks like to the start state and `final`
        self.colour = {b: (_shape(us), self._cpu_colour(model.bcpu[b])) for b, us in enumerate(model.units)}
        groups = {}
        for b in range(model.nblocks):
            groups.setdefault(self.colour[b], []).append(b)
        if all(len(v) == 1 for v in groups.values()):
            return
        self.groups = groups
        # the kinds of a CPU's and a task's row, and where an mm's row holds CPU masks (for _key)
        store = model.store
        self._cpu_kinds, self._task_kinds = (tuple(f.kind for f in store.layout[S.OWNERS.index(o)])
                                             for o in (S.CPU, S.TASK))
        self._mm_masks = tuple(i for i, f in enumerate(store.layout[1]) if f.kind == S.CPUMASK)
        self._sorting_images = {}
        self._find_classes()
        self.class_of = {b: c for c in self.classes for b in c}
        self._search()
        self.images = [(list(p[3]), self._image_fn(p)) for p in self.perms]
        # per class: (its blocks, their CPUs, their idle tasks), for sorting
        self.sorting = [(c, [model.bcpu[b] for b in c], [k._idle(model.bcpu[b]) for b in c]) for c in self.classes]

    def size(self) -> int:
        n = len(self.perms) + 1
        for c in self.classes:
            for i in range(2, len(c) + 1):
                n *= i
        return n

    # ---- finding the group ------------------------------------------------------
    def _cpu_colour(self, c: int) -> tuple:
        """What a CPU is in the start state and in `final`, with every name left out."""
        k = self.model.k
        curr = k.c_curr[c]
        local = (k.c_online[c], k.c_lazy[c], curr == k._idle(c), k.c_loaded[c] == INIT_MM, k.c_loaded[c] is None,
                 k.c_prev_mm[c] is None, k.t_active[curr] == INIT_MM, k.t_active[curr] is None)
        if self.model.final is None:
            return local
        me = f"cpu{c}"
        said = []
        for cond in self.model.final.conds:
            refs: list = []
            _refs(cond, refs)
            if ("cpu", me) in refs:
                f = {(kind, text): (kind, kind) for kind, text in refs}
                f[("cpu", me)] = ("cpu", "$")
                said.append(cond_text(_renamed(cond, f)))
        return local + tuple(sorted(said))

    def _bounded(self) -> bool:
        """Whether the search may go on (the clock is read every 64 pairings)."""
        if self.tried >= self.MAX_CANDIDATES or len(self.perms) >= self.max_elements:
            self.cut = True
        elif self.deadline is not None and self.tried >= self._clock_at:
            self._clock_at = self.tried + 64
            self.cut = time.perf_counter() > self.deadline
        return not self.cut

    def _pair(self, b: int, tgt: int, f: dict, r: dict) -> bool:
        """Bind block b onto block tgt (their CPUs, idle tasks, current tasks, statements) in f/r."""
        model, k = self.model, self.model.k
        self.tried += 1
        start = len(f)
        cb, ct = model.bcpu[b], model.bcpu[tgt]
        if not (_bind(("cpu", f"cpu{cb}"), ("cpu", f"cpu{ct}"), f, r)
                and _bind(("task", f"idle{cb}"), ("task", f"idle{ct}"), f, r)
                # a CPU's current task goes with it
                and _bind(("task", k.t_name[k.c_curr[cb]]), ("task", k.t_name[k.c_curr[ct]]), f, r)):
            return False
        for ua, ub in zip(model.units[b], model.units[tgt]):
            if not _unify(ua.stmt, ub.stmt, f, r) or not _unify(ua.expect, ub.expect, f, r):
                return False
        return self._state_bind(f, r, start)

    def _find_classes(self) -> None:
        """Partition each colour into interchangeable classes: a block joins a class when
        swapping it with the class's first block (nothing else moving) is an automorphism."""
        model = self.model
        names = []              # what each block names (bound to itself when the block stays)
        for b in range(model.nblocks):
            f = {}
            self._pair(b, b, f, {})
            names.append(set(f))
        start = [self._key(model.start, model.start_pcs, b, model.bcpu[b], model.k._idle(model.bcpu[b]))
                 for b in range(model.nblocks)]
        for group in self.groups.values():
            classes = []
            for b in group:
                for c in classes:
                    # equal start columns: a cheap necessary condition before the full check
                    if start[c[0]] == start[b] and self._bounded() and self._swappable(c[0], b, names):
                        c.append(b)
                        break
                else:
                    classes.append([b])
            self.classes += [tuple(c) for c in classes if len(c) > 1]

    def _swappable(self, a: int, b: int, names: list) -> bool:
        """Whether swapping blocks a and b, with only their CPUs and idle tasks, is an automorphism."""
        model = self.model
        ca, cb = model.bcpu[a], model.bcpu[b]
        own = {("cpu", f"cpu{ca}"), ("cpu", f"cpu{cb}"), ("task", f"idle{ca}"), ("task", f"idle{cb}")}
        f, r = {}, {}
        if not (self._pair(a, b, f, r) and self._pair(b, a, f, r)):
            return False
        if any(x != y for x, y in f.items() if x not in own):
            return False        # other names move too: not a plain swap
        if any(own & names[x] for x in range(model.nblocks) if x != a and x != b):
            return False        # another block names one of the two CPUs or idle tasks
        sigma = list(range(model.nblocks))
        sigma[a], sigma[b] = b, a
        return self._complete(sigma, f, r) is not None

    def _targets(self, b: int, sigma: list) -> list:
        cls = self.class_of.get(b)
        if cls is None:         # a singleton goes onto a singleton
            return [t for t in self.groups[self.colour[b]] if t not in self.class_of]
        i = cls.index(b)
        if i == 0:              # a class onto a class as large, in order
            return [c[0] for c in self.classes if len(c) == len(cls) and self.colour[c[0]] == self.colour[b]]
        return [self.class_of[sigma[cls[0]]][i]]

    def _search(self) -> None:
        """Depth first over the blocks in order, each onto a target (a loop, not recursion:
        there may be a thousand blocks)."""
        n = self.model.nblocks
        sigma, used = [None] * n, set()
        stack = [(iter(self._targets(0, sigma)), {}, {})]     # per block: targets left, bindings before it
        while stack:
            b = len(stack) - 1
            targets, fwd, rev = stack[-1]
            if sigma[b] is not None:            # back from the blocks after b: undo b's choice
                used.discard(sigma[b])
                sigma[b] = None
            for tgt in targets:
                if not self._bounded():
                    return
                if tgt in used:
                    continue
                f, r = dict(fwd), dict(rev)
                if not self._pair(b, tgt, f, r):
                    continue
                if b + 1 < n:
                    sigma[b] = tgt
                    used.add(tgt)
                    stack.append((iter(self._targets(b + 1, sigma)), f, r))
                    break
                sigma[b] = tgt
                p = self._complete(sigma, f, r)
                sigma[b] = None
                if p is not None and not all(tuple(range(len(x))) == x for x in p):
                    self.perms.append(p)
            else:
                stack.pop()

    def _state_bind(self, f, r, start: int = 0) -> bool:
        """A task's mm and active_mm go with it (for the bindings from index start on:
        the earlier ones were followed when they were made; an mm binds nothing more)."""
        k = self.model.k
        for (kind, a), (_, b) in list(f.items())[start:]:
            if kind != "task" or a not in k.task_ix or b not in k.task_ix:
                continue
            ta, tb_ = k.task_ix[a], k.task_ix[b]
            for fld in (k.t_mm, k.t_active):
                ma, mb_ = fld[ta], fld[tb_]
                if (ma is None) != (mb_ is None):
                    return False
                if ma is not None and not _bind(("mm", k.m_name[ma]), ("mm", k.m_name[mb_]), f, r):
                    return False
        return True

    def _complete(self, sigma, f, r):
        k = self.model.k
        if self.final_texts is not None and \
                sorted(cond_text(_renamed(c, f)) for c in self.model.final.conds) != self.final_texts:
            return None     # `final` must say the same of the renamed state (its conjuncts may trade places)
        nt, nm, nc = len(k.t_name), len(k.m_name), k.ncpus
        tp, mp, cp = list(range(nt)), list(range(nm)), list(range(nc))
        for (kind, a), (_, b) in f.items():
            try:
                if kind == "task":
                    tp[k.task_ix[a]] = k.task_ix[b]
                elif kind == "mm":
                    mp[k.mm_ix[a]] = k.mm_ix[b]
                elif kind == "cpu":
                    cp[cpu_number(a)] = cpu_number(b)
            except (KeyError, ValueError, IndexError):
                return None
        if sorted(tp) != list(range(nt)) or sorted(mp) != list(range(nm)) or sorted(cp) != list(range(nc)):
            return None
        if mp[INIT_MM] != INIT_MM:
            return None
        p = (tuple(tp), tuple(mp), tuple(cp), tuple(sigma))
        s = self.model.start
        # not kept: a rejected candidate leaves nothing behind
        if self._image_fn(p)(s, self.model.start_pcs)[0] != s:
            return None
        return p

    def _image_fn(self, p):
        """A function computing the image of (state, pcs) under p: each owner's rows move
        to their images' places, each renamed by the kinds of its fields (state.py)."""
        tp, mp, cp, bp = p
        store = self.model.store
        inv = (_inverse(tp), _inverse(mp), _inverse(cp))
        ref = {S.TASK_REF: tp, S.MM_REF: mp, S.CPU_REF: cp}
        masks = {}

        def mask(v):
            out = masks.get(v)
            if out is None:
                out = 0
                for c in range(len(cp)):
                    if v >> c & 1:
                        out |= 1 << cp[c]
                masks[v] = out
            return out

        memos = []
        for o, fields in enumerate(store.layout):
            plan = [(i, ref[f.kind]) for i, f in enumerate(fields) if f.kind in ref]
            masked = [i for i, f in enumerate(fields) if f.kind == S.CPUMASK]
            table, rows = store.ids[o], store.rows[o]

            class Memo(dict):
                def __missing__(self, rid, plan=plan, masked=masked, table=table, rows=rows):
                    row = list(rows[rid])
                    for i, perm in plan:
                        if row[i] is not None:
                            row[i] = perm[row[i]]
                    for i in masked:
                        row[i] = mask(row[i])
                    row = tuple(row)
                    new = table.get(row)
                    if new is None:
                        new = table[row] = len(rows)
                        rows.append(row)
                    self[rid] = new
                    return new
            memos.append(Memo().__getitem__)
        bmap = list(bp)

        spans = []
        at = store.HEAD
        for n in (len(tp), len(mp), len(cp)):
            spans.append((at, at + n))
            at += n

        def image(s, pcs):
            out = list(s[:store.HEAD])
            for o, (a, b) in enumerate(spans):
                renamed = list(map(memos[o], s[a:b]))
                out.extend(map(renamed.__getitem__, inv[o]))
            out.extend(s[at:])
            npcs = [0] * len(pcs)
            for b, pc in enumerate(pcs):
                npcs[bmap[b]] = pc
            return tuple(out), tuple(npcs)
        return image

    # ---- canonical forms ----------------------------------------------------------
    def _sorted(self, s, pcs):
        """(s, pcs) with the blocks of each interchangeable class in the order of what
        their CPUs hold: equal for every order of them, as each class's CPUs are
        told apart only by their own rows (the key says everything that
        names the CPU or its idle task)."""
        nt, nc = s[0], self.model.k.ncpus
        moves = []
        for blocks, cpus, idles in self.sorting:
            keys = [self._key(s, pcs, b, c, t) for b, c, t in zip(blocks, cpus, idles)]
            order = sorted(range(len(blocks)), key=keys.__getitem__)
            if order != list(range(len(blocks))):
                moves.append((blocks, cpus, idles, order))
        if not moves:
            return s, pcs
        tp, cp, bp = list(range(nt)), list(range(nc)), list(range(len(pcs)))
        for blocks, cpus, idles, order in moves:
            for i, j in enumerate(order):      # the j-th of the class goes to place i
                bp[blocks[j]], cp[cpus[j]], tp[idles[j]] = blocks[i], cpus[i], idles[i]
        p = (tuple(tp), tuple(range(s[1])), tuple(cp), tuple(bp))
        image = self._sorting_images.get(p)
        if image is None:
            if len(self._sorting_images) > 4096:
                self._sorting_images.clear()
            image = self._sorting_images[p] = self._image_fn(p)
        return image(s, pcs)

    def _key(self, s, pcs, b, c, t) -> tuple:
        """Block b's program counter and what its CPU c and idle task t hold in state s:
        their rows, with c and t written as -2 (they are named nowhere else, as the other
        tasks and mms stay put) and none as -1, and c's bit of every mm's CPU masks."""
        store = self.model.store
        cpu, task, mms = store.row(s, 2, c), store.row(s, 0, t), store.rows[1]
        a = store.start(s, 1)
        return (pcs[b], tuple(map(_local, cpu, self._cpu_kinds, (c,) * len(cpu), (t,) * len(cpu))),
                tuple(map(_local, task, self._task_kinds, (c,) * len(task), (t,) * len(task))),
                tuple(mms[m][i] >> c & 1 for m in s[a:a + s[1]] for i in self._mm_masks))

    def canonical(self, s, pcs):
        """The least image of (s, pcs) under the group, by hash (ties by repr).
        Without interchangeable blocks: over every element found, first by the
        hash of the permuted program counters (cheap), then by the hash of the
        whole image.  With them: over each coset representative's image, put
        in sorted form.  Both depend only on the orbit, so every state of an
        orbit gets the same representative."""
        if self.classes:
            return _least(self._sorted(*(image(s, pcs) if image else (s, pcs)))
                          for image in [None] + [im for _, im in self.images])
        best_h = hash(pcs)
        cands = [None]
        for bmap, image in self.images:
            npcs = [0] * len(pcs)
            for b, pc in enumerate(pcs):
                npcs[bmap[b]] = pc
            h = hash(tuple(npcs))
            if h < best_h:
                best_h, cands = h, [image]
            elif h == best_h:
                cands.append(image)
        return _least((s, pcs) if image is None else image(s, pcs) for image in cands)


def _least(images):
    best = bh = None
    for img in images:
        h = hash(img)
        if best is None or h < bh or (h == bh and img != best and repr(img) < repr(best)):
            best, bh = img, h
    return best


def _local(v, kind, c, t):
    """A value of a CPU's or idle task's row as _key compares it."""
    if v is None:
        return -1
    if kind == S.TASK_REF:
        return -2 if v == t else v
    if kind == S.CPU_REF:
        return -2 if v == c else v
    return v


def _inverse(perm):
    inv = [0] * len(perm)
    for i, j in enumerate(perm):
        inv[j] = i
    return inv


def _shape(us) -> tuple:
    return tuple((type(u.stmt).__name__, getattr(u.stmt, "op", None), u.expect is not None) for u in us)


def _renamed(x, f):
    """A copy of a condition with its names renamed by f ((kind, name) -> (kind, name))."""
    import dataclasses
    if isinstance(x, A.Ref):
        kind = _ref_kind(x.text)
        return A.Ref(f.get((kind, x.text), (kind, x.text))[1], x.line, x.col)
    if isinstance(x, A.Value):
        if x.kind in ("mm", "task", "cpu"):
            return dataclasses.replace(x, text=f.get((x.kind, x.text), (x.kind, x.text))[1])
        if x.kind == "cpuset":
            return dataclasses.replace(x, text=tuple(_renamed(r, f) for r in x.text))
        return x
    if isinstance(x, list):
        return [_renamed(y, f) for y in x]
    if dataclasses.is_dataclass(x):
        return dataclasses.replace(x, **{fl.name: _renamed(getattr(x, fl.name), f) for fl in dataclasses.fields(x)
                                         if fl.name not in ("line", "col")})
    return x


def _bind(a, b, f, r) -> bool:
    if a in f:
        return f[a] == b
    if b in r:
        return r[b] == a
    f[a] = b
    r[b] = a
    return True


def _unify(x, y, f, r) -> bool:
    """Structural equality of two statements up to a consistent renaming of names."""
    if x is None or y is None:
        return x is None and y is None
    if type(x) is not type(y):
        return False
    if isinstance(x, A.Ref):
        kx, ky = _ref_kind(x.text), _ref_kind(y.text)
        return kx == ky and _bind((kx, x.text), (ky, y.text), f, r)
    if isinstance(x, A.Value):
        if x.kind != y.kind:
            return False
        if x.kind in ("mm", "task", "cpu"):
            return _bind((x.kind, x.text), (y.kind, y.text), f, r)
        if x.kind == "cpuset":
            return len(x.text) == len(y.text) and all(_unify(a, b, f, r) for a, b in zip(x.text, y.text))
        return x.text == y.text
    if isinstance(x, (list, tuple)):
        return len(x) == len(y) and all(_unify(a, b, f, r) for a, b in zip(x, y))
    if isinstance(x, (str, int, float, bool)):
        return x == y
    if hasattr(x, "__slots__"):
        for name in x.__slots__:
            if name in ("line", "col"):
                continue
            if not _unify(getattr(x, name), getattr(y, name), f, r):
                return False
        return True
    return x == y
