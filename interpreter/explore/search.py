"""The breadth-first search over interleavings, and random interleavings."""
from __future__ import annotations

import functools
from itertools import islice
from operator import le
import marshal
import math
import random as _random
from array import array
import resource
import struct
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Optional

from .footprints import Footprints
from . import packed
from .memo import Memo
from .model import ENDED, FAILED, SAME, Failure, Model
from .symmetry import Symmetry
from .visited import Visited
from .witness import replay


@dataclass
class Stats:
    states: int = 0             # states expanded
    distinct: int = 0           # states stored
    transitions: int = 0        # statements fired
    finals: int = 0             # distinct final states
    deadlocks: int = 0
    interleavings: Optional[int] = None
    depth: int = 0
    seconds: float = 0.0
    jobs: int = 1               # worker processes (explore --jobs: explore/parallel.py)

    @property
    def rate(self) -> float:
        return self.states / self.seconds if self.seconds > 0 else 0.0


@dataclass
class Result:
    model: Model
    stats: Stats
    complete: bool                      # the whole (reduced) state space was searched
    failure: Optional[Failure] = None
    path: list = field(default_factory=list)      # [(block, unit index)] to the failure
    exists_path: Optional[list] = None            # shortest path to a final state where `final exists` holds
    exists_count: int = 0
    finals: list = field(default_factory=list)    # captured final states (with --all-finals)
    stop_reason: str = ""
    por: bool = True
    symmetry: int = 1                   # group size used (1: off or none found)
    pruned: bool = False                # partial-order reduction left some enabled statement out
    mode: str = "exhaustive"              # or "steps": over kernel steps (explore/stepped.py)
    fused: bool = False                   # steps: irqs-off steps of one CPU fused
    compact: Optional[dict] = None      # --compact: {"fingerprint_bits", "collision_probability"}
    seed: Optional[int] = None
    walks: int = 0

    @property
    def holds(self) -> Optional[bool]:
        """The verdict: True/False, or None when an incomplete search could not decide it."""
        if self.failure is not None:
            return False
        f = self.model.final
        if f is not None and f.quantifier == "exists" and self.exists_count == 0:
            return False if self.complete else None
        return True if self.complete else None

    @property
    def passed(self) -> Optional[bool]:
        """The verdict compared with the header's `expect pass|fail`."""
        h = self.holds
        if h is None:
            return None
        return h == (self.model.sc.outcome != "fail")


class Explorer:
    #: distinct states before symmetry is looked for: finding the group and the images of each
    #: state cost more than a search this small takes (the churn grid after partial-order
    #: reduction: at most 129 states), and the states stored before it only make the search
    #: store some states of one orbit twice
    SYMMETRY_AFTER = 2048

    def __init__(self, model: Model, por: bool = True, symmetry: bool = True,
                 max_states: Optional[int] = None, max_seconds: Optional[float] = None,
                 all_finals: bool = False, progress: Optional[Callable] = None,
                 on_edge: Optional[Callable] = None, symmetry_after: Optional[int] = None,
                 max_memory: Optional[float] = None, compact: bool = False, memo: Optional[str] = None):
        # --max-seconds counts from here: finding the reductions is part of the search
        self.t0 = time.perf_counter()
        self.m = model
        self.por = por and not model.creates
        self.fp = Footprints(model) if self.por else None
        self.want_symmetry = symmetry
        self.symmetry_after = self.SYMMETRY_AFTER if symmetry_after is None else symmetry_after
        self.sym = None
        self.max_states = max_states
        self.max_seconds = max_seconds
        self.max_memory = max_memory        # MB of peak resident memory (--max-memory)
        # --compact: the visited set keeps a 64-bit fingerprint of each state, not the state, and
        # a state is dropped once expanded (SPIN's -DHC, TLC's fingerprints); two states with one
        # fingerprint are taken for one, so a verdict without a failure is only probable
        self.compact = compact
        if symmetry and self.symmetry_after <= 1:
            self._find_symmetry()
        self.all_finals = all_finals
        self.progress = progress
        # edge recording, for the state graph (`mmscn draw --format dot`); None costs nothing:
        # on_edge(src, dst, unit, state, pcs, failure) for every statement fired, with
        # dst None (and the Failure) when it failed the interleaving
        self.on_edge = on_edge
        self._ps_cache: dict = {}
        self.memo = Memo(model, memo)      # "on", "off", "verify" (None: MMSCN_MEMO, else on)

    def _find_symmetry(self) -> None:
        """Look for the symmetry group now (at the start, or once the search has grown)."""
        self.want_symmetry = False
        self.m.restore(self.m.start)       # the group is read off the start state
        ms = self.max_seconds
        self.sym = Symmetry(self.m, None if ms is None else self.t0 + ms)
        if self.sym.size() == 1:
            self.sym = None

    def persistent(self, pcs, enabled, live, s=None):
        """The enabled blocks of a smallest persistent set found (seeded by each enabled block).
        Where the state pins some mms (Footprints.pinned: their mm_users cannot reach 0 from
        here on), counter-only statements on them commute, and the footprints say so."""
        fp = self.fp
        pinned = fp.pinned(s, pcs) if fp.dynamic else 0
        key = (pcs, enabled, pinned)
        hit = self._ps_cache.get(key)
        if hit is not None:
            return hit
        units, fut = self.m.units, fp.fut
        best = None
        for seed in enabled:
            S = {seed}
            stack = [seed]
            while stack:
                p = stack.pop()
                u = units[p][pcs[p]]
                if not pinned:
                    bits = u.fp if p in enabled else u.enable_fp
                    for q in live:
                        if q not in S and fut[q][pcs[q]] & bits:
                            S.add(q)
                            stack.append(q)
                    continue
                bits = fp.eff(u, pinned) if p in enabled else u.enable_fp
                for q in live:
                    if q not in S and fp.conflict(fp.fut_eff(q, pcs[q], pinned), bits):
                        S.add(q)
                        stack.append(q)
            e = tuple(b for b in enabled if b in S)
            if best is None or len(e) < len(best):
                best = e
                if len(e) == 1:
                    break
        self._ps_cache[key] = best
        return best

    def run(self) -> Result:
        m = self.m
        if m.stepped:           # the kernel's steps, IPIs and interrupts (explore/stepped.py)
            from .stepped import search
            stats = Stats()
            return search(self, Result(m, stats, complete=False, por=self.por), fuse=self.por)
        widths = None
        want, sym = self.want_symmetry, self.sym
        while True:
            codec = packed.codec(m, self.memo, widths, restartable=self.on_edge is None)
            try:
                return self._search(codec)
            except packed.Wider as e:      # a position outgrew its bytes: again, that one wider
                widths = codec.widths
                widths[e.p] = 2 if widths[e.p] == 1 else 4
                self.memo = Memo(m, self.memo.mode)
                self.want_symmetry, self.sym = want, sym

    def _search(self, codec) -> Result:
        """The breadth-first search, its states kept in ``codec``'s form (explore/packed.py)."""
        m = self.m
        t0 = self.t0
        stats = Stats()
        res = Result(m, stats, complete=False, por=self.por)
        units = m.units
        nblocks = m.nblocks
        lens = [len(us) for us in units]
        canon = self.sym.canonical if self.sym else None
        compact = self.compact
        encode, state, fire, fingerprint = codec.encode, codec.state, codec.fire, codec.fingerprint
        start = encode(m.start, m.start_pcs)
        start_key = encode(*canon(m.start, m.start_pcs)) if canon else start
        start_key = fingerprint(start_key) if compact else start_key
        # the visited states, their keys (codec's bytes), each with its id (visited.py); per id, in
        # arrays, its parent, the block and statement that led to it and the progress (sum of the pcs)
        # the path count needs; the successors of each id, one flat array (succ_at[i]: where i's begin)
        index = Visited(compact)
        add = index.add
        add(start_key)
        parent = array("i", [-1])
        via_b, via_pc = array("i", [-1]), array("i", [-1])
        progress = array("i", [sum(m.start_pcs)])
        succ, succ_at = array("i"), array("i")
        count = not compact             # the successors are kept for the interleaving count
        level_end, level = 1, 0          # breadth first: the ids of one depth are consecutive
        final_ids = []
        kept = {}                        # id -> state of the final states --all-finals lists
        final = m.final
        exists = final is not None and final.quantifier == "exists"
        # the states still to expand, in the order of their ids, each its key in codec's form (the
        # visited key where it is not symmetry's canonical image or --compact's fingerprint)
        queue = deque([start])
        vkeys, vslots, vsize = index.keys, index.slots, index.size
        depth = 0
        i = -1
        restore, waiting, opened = m.restore, codec.waiting, codec.open
        replays = codec.replays
        pshift, nb = codec.pshift, nblocks
        persistent = self.persistent if self.por else None
        dynamic = persistent is not None and self.fp.dynamic       # persistent() reads the state
        on_edge = self.on_edge
        at = -1                         # the id of the state the kernel holds, if known
        failure = None
        fail_from = None
        exists_id = None
        next_check = 1024
        max_states, max_seconds, max_memory = self.max_states, self.max_seconds, self.max_memory
        keep = self.all_finals
        stop = ""
        if max_seconds is not None and time.perf_counter() - t0 > max_seconds:
            queue = deque()     # finding the reductions used the time up
            stop = f"stopped after {max_seconds:g} s (--max-seconds)"
        expanded = transitions = fired = 0     # kept in locals, not in stats, on the hot path
        blocks = range(nblocks)
        may_wait = [[u.waits_for is not None for u in us] for us in units]
        while queue:
            b0 = queue.popleft()
            i += 1
            if pshift is None:
                s, pcs = opened(b0)
            else:                       # the counters off the int; s built where something reads it
                s, pcs = None, (b0 >> pshift).to_bytes(nb, "little")
            if i >= level_end:
                level += 1
                level_end = len(index)
            if count:
                succ_at.append(len(succ))
            expanded += 1
            if expanded >= next_check:
                next_check += 1024
                if self.want_symmetry and len(index) >= self.symmetry_after:
                    self._find_symmetry()
                    canon = self.sym.canonical if self.sym else None
                    at = -1
                el = time.perf_counter() - t0
                if self.progress is not None:
                    self.progress(expanded, len(index), level, el)
                if max_seconds is not None and el > max_seconds:
                    stop = f"stopped after {max_seconds:g} s (--max-seconds)"
                    break
                if max_memory is not None and resource.getrusage(resource.RUSAGE_SELF).ru_maxrss > max_memory * 1024:
                    stop = f"stopped at {max_memory:g} MB of memory (--max-memory)"
                    break
            live = tuple([b for b in blocks if pcs[b] < lens[b]])
            if not live:
                final_ids.append(i)
                if s is None:
                    s = state(b0)
                if keep:
                    kept[i] = s
                if final is not None:
                    restore(s)
                    at = i
                    held, detail = m.judge_final()
                    if exists and held:
                        res.exists_count += 1
                        if exists_id is None:
                            exists_id = i
                    elif not held and final.quantifier == "forall":
                        if failure is None:
                            failure = Failure("final", f"final forall does not hold: {detail}", "",
                                              final.line, final.col)
                            fail_from = (i, None)
                        if not self.all_finals:
                            break
                continue
            enabled = tuple([b for b in live if not may_wait[b][pcs[b]] or not waiting(b0, s, units[b][pcs[b]])])
            if not enabled:
                stats.deadlocks += 1
                if failure is None:
                    failure = m.deadlock(pcs)
                    fail_from = (i, None)
                if not self.all_finals:
                    break
                continue
            if persistent is not None:
                if dynamic and s is None:
                    s = state(b0)
                fire_set = persistent(pcs, enabled, live, s)
                if len(fire_set) < len(enabled):
                    res.pruned = True
            else:
                fire_set = enabled
            d1 = level + 1
            prog = progress[i]
            for b in fire_set:
                pc = pcs[b]
                u = units[b][pc]
                transitions += 1
                r = None
                if replays:
                    for _, mask, table in u.packed:     # packed.Positions.recall, inlined
                        r = table.get(b0 & mask)
                        if r is not None:
                            break
                if r is not None:
                    flips, npc = r
                    b2 = b0 ^ flips
                else:
                    fired += 1
                    if s is None:
                        s = state(b0)
                    outcome, fail, b2, held, npc = fire(u, b0, s, pcs, at == i)
                    at = i if held else -1
                    if outcome == FAILED:
                        if on_edge is not None:
                            on_edge(i, None, u, None, None, fail)
                        if failure is None:
                            failure = fail
                            fail_from = (i, (b, pc))
                        if not self.all_finals:
                            break
                        continue
                if canon:
                    key = encode(*canon(*opened(b2)))
                    key = fingerprint(key) if compact else key
                elif compact:
                    key = fingerprint(b2)
                else:
                    key = b2
                # Visited.add, inlined (the hot path): the key's id, a new one if it is new
                x = hash(key) % vsize
                j = vslots[x]
                while j >= 0:
                    if vkeys[j] == key:
                        break
                    x = x + 1 if x + 1 < vsize else 0
                    j = vslots[x]
                else:
                    j = len(vkeys)
                    vslots[x] = j
                    vkeys.append(key)
                    if 2 * j > vsize:
                        index.grow()
                        vslots, vsize = index.slots, index.size
                    parent.append(i)
                    via_b.append(b)
                    via_pc.append(pc)
                    progress.append(prog + npc - pc)
                    queue.append(b2)
                    depth = d1
                if count:
                    succ.append(j)
                if on_edge is not None:
                    on_edge(i, j, u, *opened(b2), None)
            if failure is not None and not self.all_finals:
                break
            if max_states is not None and len(index) >= max_states:
                stop = f"stopped at {max_states:,} states (--max-states)"
                break
        if replays:
            self.memo.hits += transitions - fired       # the others replayed what was remembered
        stats.depth = depth
        stats.states, stats.transitions = expanded, transitions
        res.symmetry = self.sym.size() if self.sym else 1
        stats.distinct = len(index)
        stats.finals = len(final_ids)
        stats.seconds = time.perf_counter() - t0
        if compact:
            n = len(index)
            p = -math.expm1(-n * (n - 1) / 2.0 ** 65)
            res.compact = {"fingerprint_bits": 64, "collision_probability": p}
            if not stop and not queue and failure is None:
                # two states taken for one would hide the second's successors
                stop = (f"hash compaction (--compact) may have taken two of the {n:,} states for one: "
                        f"probability {p:.1e} that two share a 64-bit fingerprint")
        res.stop_reason = stop
        res.complete = not stop and not queue
        if failure is not None:
            res.failure = failure
            i, last = fail_from
            res.path = self._path(parent, _Via(via_b, via_pc), i) + ([last] if last is not None else [])
            if last is not None and self.por:
                res.path = self.causal(res.path, failure)
        if exists_id is not None:
            res.exists_path = self._path(parent, _Via(via_b, via_pc), exists_id)
        if self.all_finals:
            res.finals = [kept[i] for i in final_ids]
        if res.complete and failure is None and count:
            # the visited set is done with: the count's lists take its place, not more room
            index = add = vkeys = vslots = parent = via_b = via_pc = None
            succ_at.append(len(succ))
            stats.interleavings = count_paths(succ, succ_at, progress)
        return res

    def causal(self, path: list, failure: Failure) -> list:
        """Only the steps the failing one depends on, in their order.

        Partial-order reduction delays independent blocks, so the path it finds
        may carry steps of other CPUs that have nothing to do with the failure.
        Those that do not conflict (by footprint) with the failing step or with
        a kept step after them, and are not followed by a kept step of their
        own block, can be moved after the failure, so dropping them
        leaves a valid, shorter interleaving.  It is kept only if replaying it
        fails the same way (init_mm's counters are outside the footprints)."""
        units = self.m.units
        keep, bits, blocks = [], 0, set()
        for n in range(len(path) - 1, -1, -1):
            b = path[n][0]
            u = units[b][path[n][1]]
            # a block's steps stay a prefix of it: keep every step before a kept one
            if n == len(path) - 1 or u.fp & bits or b in blocks:
                keep.append(path[n])
                bits |= u.fp
                blocks.add(b)
        keep.reverse()
        if len(keep) == len(path):
            return path
        steps = replay(self.m, keep)
        f = steps[-1].failure if steps else None
        if f is not None and len(steps) == len(keep) and (f.kind, f.message) == (failure.kind, failure.message):
            return keep
        return path

    @staticmethod
    def _path(parent, via, i) -> list:
        out = []
        while parent[i] >= 0:
            out.append(via[i])
            i = parent[i]
        out.reverse()
        return out


def pack(t: tuple) -> bytes:
    """A visited state (its row ids, then its pcs) as bytes: each number one byte where all are
    below 255 (the common case); else wide(); a state holding more than numbers (the cost
    counters) is 255 255 and marshal's bytes.  Each form is read back one way (unpack), so two
    packed states are equal exactly when the states are.  A key of bytes is about a fifth of a
    tuple's size and hashes once."""
    try:
        b = bytes(t)
        return wide(t) if 255 in b else b
    except ValueError:
        return wide(t)
    except TypeError:
        return _MARSHALLED + marshal.dumps(t, 2)


def wide(t: tuple) -> bytes:
    """pack() of a state with a number past 254 (a table of rows grown past 255 rows): 255, the
    count n, then each number's low byte, then of the high bytes the run from the first nonzero
    one to the last, after the byte giving where it starts.  All of it is built in C, and a key is
    about as small as the one-byte form: only an mm's or CPU's row ids grow that far.  A number
    past 65535, or a state of 255 numbers or more, is marshal's."""
    n = len(t)
    try:
        a = _halves(n).pack(*t) if n < 255 else None
    except struct.error:
        a = None
    if a is None:
        return _MARSHALLED + marshal.dumps(t, 2)
    h = a[1::2].lstrip(b"\0")
    start = n - len(h)
    return bytes((255, n, start)) + a[0::2] + h.rstrip(b"\0")


_MARSHALLED = b"\xff\xff"


@functools.lru_cache(maxsize=None)
def _halves(n: int) -> struct.Struct:
    """n numbers of two bytes, the low one first."""
    return struct.Struct(f"<{n}H")


def unpack(b: bytes) -> tuple:
    """The tuple pack() packed."""
    if 255 not in b:
        return tuple(b)
    n = b[1]
    if n == 255:
        return marshal.loads(b[2:])
    start = b[2]
    h = b[3 + n:]
    a = bytearray(2 * n)
    a[0::2] = b[3:3 + n]
    a[1::2] = bytes(start) + h + bytes(n - start - len(h))
    return _halves(n).unpack(a)


class _Via:
    """via[i]: the (block, pc) that led to state i, from the two arrays that keep it."""
    __slots__ = ("b", "pc")

    def __init__(self, b, pc):
        self.b, self.pc = b, pc

    def __getitem__(self, i):
        return self.b[i], self.pc[i]


def count_paths(succ, succ_at, progress) -> int:
    """The interleavings: complete paths through the explored graph from state 0, a DP in order
    of progress (every step adds to the sum of the pcs, so a state's successors come first).
    The successors of state i are succ[succ_at[i]:succ_at[i + 1]] (arrays of ids); a state past
    the end of succ_at was not expanded and counts one.  Where the progress never falls from one
    id to the next (an edge always leads to a higher one, so to a later id), the order is the ids
    backwards; else a counting sort into one array.  The counts take the room the visited set
    let go (the search frees it first)."""
    n = len(progress)
    expanded = len(succ_at) - 1
    if all(map(le, progress, islice(progress, 1, None))):
        order = range(expanded - 1, -1, -1)     # breadth first, one pc a step: the ids are in order
    else:
        first = [0] * (max(progress) + 2)      # per progress, where its ids begin in order
        for p in progress:
            first[p] += 1
        at = 0
        for p in range(len(first) - 1, -1, -1):
            first[p], at = at, at + first[p]
        order = array("i", bytes(4 * n))
        for i, p in enumerate(progress):
            order[first[p]] = i
            first[p] += 1
    paths = [1] * n
    get = paths.__getitem__
    for i in order:
        if i < expanded:
            a, b = succ_at[i], succ_at[i + 1]
            if a != b:
                paths[i] = sum(map(get, succ[a:b]))
    return paths[0]


# ====================================================================== random interleavings
def random_walks(model: Model, n: int, seed: int, max_seconds: Optional[float] = None,
                 progress: Optional[Callable] = None) -> Result:
    """``n`` random interleavings (of statements, or of kernel steps: explore/stepped.py's walk);
    the shortest failing one is kept."""
    if model.stepped:
        from .stepped import walk
    else:
        walk = _walk
    rng = _random.Random(seed)
    t0 = time.perf_counter()
    stats = Stats()
    res = Result(model, stats, complete=False, por=False, mode="random", seed=seed)
    final = model.final
    finals = set()
    shortest = None
    for w in range(n):
        if max_seconds is not None and time.perf_counter() - t0 > max_seconds:
            res.stop_reason = f"stopped after {max_seconds:g} s (--max-seconds)"
            break
        if progress is not None and w % 64 == 0:
            progress(stats.states, len(finals), stats.depth, time.perf_counter() - t0)
        model.restore(model.start)
        path, end, fail = walk(model, rng, stats)
        if end is not None:         # every block ended: a final state
            finals.add(end)
            if final is not None:
                held, detail = model.judge_final()
                if final.quantifier == "exists" and held:
                    res.exists_count += 1
                    if res.exists_path is None or len(path) < len(res.exists_path):
                        res.exists_path = list(path)
                elif not held and final.quantifier == "forall":
                    fail = (Failure("final", f"final forall does not hold: {detail}", "",
                                    final.line, final.col), list(path))
        stats.depth = max(stats.depth, len(path))
        res.walks += 1
        if fail is not None and (shortest is None or len(fail[1]) < len(shortest[1])):
            shortest = fail
    if shortest is not None:
        res.failure, res.path = shortest
    stats.finals = len(finals)
    stats.distinct = len(finals)
    stats.seconds = time.perf_counter() - t0
    return res


def _walk(model: Model, rng, stats: Stats) -> tuple:
    """One random interleaving of statements: (path, the final state or None, (failure, path) or
    None)."""
    units = model.units
    lens = [len(us) for us in units]
    s, pcs, path = model.start, list(model.start_pcs), []
    while True:
        live = [b for b in range(len(units)) if pcs[b] < lens[b]]
        if not live:
            return path, s, None
        enabled = [b for b in live if not model.waiting(s, units[b][pcs[b]])]
        if not enabled:
            stats.deadlocks += 1
            return path, None, (model.deadlock(tuple(pcs)), list(path))
        b = rng.choice(enabled)
        u = units[b][pcs[b]]
        outcome, f = model.fire(u)
        stats.transitions += 1
        stats.states += 1
        path.append((b, pcs[b]))
        if outcome == FAILED:
            return path, None, (f, path)
        pcs[b] = lens[b] if outcome == ENDED else pcs[b] + 1
        if outcome != SAME:
            s = model.capture()


def prologue_result(model: Model) -> Optional[Result]:
    """The verdict when the prologue already failed (nothing to explore), else None."""
    if model.prologue_failure is None:
        return None
    return Result(model, Stats(), complete=True, failure=model.prologue_failure, mode="prologue")
