"""The breadth-first search's states as bytes, and the memo's runs replayed on those bytes.

A captured state (model.Store) is a tuple of row ids, interned per owner: an mm's row ids run
into the hundreds in the dense family.  The search keeps each state as bytes instead (its visited
key, and what it expands), in one of two forms:

- ``Positions`` (where explore/memo.py may remember runs: the layout is fixed): per position of
  the tuple its own table of the row ids seen there, and the state's bytes are, position by
  position, the id's place in that table (one byte, two for an mm), then each block's program
  counter (one byte).  Positions apart, these places are small, so a key is short; the search
  reads the program counters off the key, and a remembered run is a list of (byte, value)
  writes, the program counter's among them, applied to the key's bytes: no tuple is built, no
  key packed, no kernel touched.  A place past its width raises Wider, and the search starts
  again with that position one byte wider (it happens once, if ever: the widths start where
  the rows are known to grow).  Each form is read one way, so keys are equal exactly when the
  states are.
- ``Plain`` (anywhere else: blocks that make tasks or mms, cost counters, a block of 255
  statements or more, the memo off): search.pack of the tuple and its program counters, and
  the memo's own tuple form (memo.Memo.step).

The memo's reasoning (which rows a run could read, which runs are remembered) is memo.py's; only
the form of the key and of the writes is here."""
from __future__ import annotations

import struct
from itertools import compress
from operator import getitem, ne

from ..kernel import RUNNING
from .memo import Memo
from .model import ENDED, FAILED, Store

WIDEST = 4          # bytes a position may take (4 billion rows)


class Wider(Exception):
    """Position p has more rows than its width holds."""

    def __init__(self, p: int):
        self.p = p


class Plain:
    """search.pack's keys, and the memo's tuple form."""

    replays = False     # the search's replay of u.packed (empty here) is not asked

    def __init__(self, model, memo: Memo):
        from .search import pack, unpack
        self.m, self.memo, self.pack, self.unpack = model, memo, pack, unpack
        self.lens = [len(us) for us in model.units]
        self.nb = len(model.start_pcs)
        for us in model.units:
            for u in us:
                u.packed = ()

    def encode(self, s: tuple, pcs) -> bytes:
        return self.pack(tuple(s) + tuple(pcs))

    def open(self, b: bytes) -> tuple:
        """(state, program counters) of a key."""
        t = self.unpack(b)
        n = len(t) - self.nb
        return t[:n], t[n:]

    def state(self, b: bytes) -> tuple:
        return self.open(b)[0]

    def pcs(self, b: bytes) -> tuple:
        return self.open(b)[1]

    def waiting(self, b: bytes, s: tuple, u) -> bool:
        return self.m.waiting(s, u)

    def fire(self, u, b: bytes, s: tuple, pcs, held: bool) -> tuple:
        """(outcome, Failure or None, successor's key or None, whether the kernel holds s, the
        block's next program counter)."""
        outcome, fail, s2, held = self.memo.step(u, s, held)
        if outcome == FAILED:
            return outcome, fail, None, held, None
        npcs = list(pcs)
        npc = npcs[u.block] = self.lens[u.block] if outcome == ENDED else u.index + 1
        return outcome, None, self.pack(s2 + tuple(npcs)), held, npc


class Positions:
    """Per position its own table of row ids; a state is its places, then its program counters."""

    def __init__(self, model, memo: Memo, widths: list):
        self.m, self.memo = model, memo
        st = model.store
        self.n = n = len(model.start)
        self.nb = len(model.start_pcs)
        self.lens = [len(us) for us in model.units]
        self.widths = widths
        self.offs = offs = []
        at = 0
        for w in widths:
            offs.append(at)
            at += w
        self.poff = at                  # where the program counters begin
        self.fmt = struct.Struct(">" + "".join({1: "B", 2: "H", 4: "I"}[w] for w in widths))
        self.places = [{} for _ in range(n)]    # per position: row id -> place
        self.ids = [[] for _ in range(n)]       # per position: place -> row id
        self.rows = st.rows[0]
        self._t_state, self._t_cpu = model._t_state, model._t_cpu
        self.verify = memo.verify
        self.replays = not memo.verify  # verify: every run goes through fire(), which compares
        for us in model.units:
            for u in us:
                u.packed = [] if u.memo is not None and memo.on else ()

    @staticmethod
    def fits(model, memo: Memo) -> bool:
        return memo.on and all(len(us) < 256 for us in model.units)

    @staticmethod
    def first_widths(model) -> list:
        """An mm's rows two bytes (its counters make hundreds), any other position's one."""
        m0, c0 = memo_bounds(model)
        return [2 if m0 <= p < c0 else 1 for p in range(len(model.start))]

    def place(self, p: int, x: int) -> int:
        d = self.places[p]
        j = d.get(x)
        if j is None:
            ids = self.ids[p]
            j = d[x] = len(ids)
            ids.append(x)
            if j >> (8 * self.widths[p]):
                raise Wider(p)
        return j

    def encode(self, s: tuple, pcs) -> bytes:
        place = self.place
        return self.fmt.pack(*[place(p, x) for p, x in enumerate(s)]) + bytes(pcs)

    def open(self, b: bytes) -> tuple:
        return None, b[self.poff:]      # the tuple is built only where something reads it

    def state(self, b: bytes) -> tuple:
        return tuple(map(getitem, self.ids, self.fmt.unpack_from(b)))

    def pcs(self, b: bytes) -> bytes:
        return b[self.poff:]

    def waiting(self, b: bytes, s, u) -> bool:
        """model.waiting, read off the key: the task's row at its place."""
        t = u.waits_for
        if t < 0:
            return self.m.k_waits(self.state(b) if s is None else s, u)
        p = Store.HEAD + t
        o, w = self.offs[p], self.widths[p]
        row = self.rows[self.ids[p][b[o] if w == 1 else int.from_bytes(b[o:o + w], "big")]]
        return row[self._t_state] == RUNNING and row[self._t_cpu] != u.cpu

    def derive(self, b: bytes, s: tuple, s2: tuple, block: int, npc: int) -> bytes:
        """The key of s2, from b (the key of s) where s2 differs, and the block's counter."""
        a = bytearray(b)
        if s2 is not s:
            offs, widths, place = self.offs, self.widths, self.place
            for p in compress(range(self.n), map(ne, s, s2)):
                j, o, w = place(p, s2[p]), offs[p], widths[p]
                if w == 1:
                    a[o] = j
                else:
                    a[o:o + w] = j.to_bytes(w, "big")
        a[self.poff + block] = npc
        return bytes(a)

    def fire(self, u, b: bytes, s: tuple, pcs, held: bool) -> tuple:
        """As Plain.fire, run on the kernel; a run the memo may keep is remembered in this form
        (verify: a remembered one is compared)."""
        memo = self.memo
        outcome, fail, s2, held, ch = memo.run(u, s, held)
        if outcome == FAILED:
            return outcome, fail, None, held, None
        npc = self.lens[u.block] if outcome == ENDED else u.index + 1
        b2 = self.derive(b, s, s2, u.block, npc)
        if ch is not None:
            if self.verify:
                for _, get, table in u.packed:
                    w = table.get(get(b))
                    if w is not None:
                        memo.hits += 1
                        memo.check(u, s, apply(b, w), b2)
                        return outcome, None, b2, held, npc
            self.learn(u, s, b, ch, s2, b2)
        return outcome, None, b2, held, npc

    def learn(self, u, s: tuple, b: bytes, changed: tuple, s2: tuple, b2: bytes) -> None:
        """Remember the run from b to b2 by the bytes of the positions it could read."""
        memo = self.memo
        ps = memo.reads(u, s, changed, s2)
        if ps is None:
            return
        get, table = memo.table(u.packed, ps, self.bytes_of)
        if table is None:
            return
        # the bytes that differ (every one in a position the run read, and the counter), each
        # distinct list once
        w = tuple([(o, y) for o, (x, y) in enumerate(zip(b, b2)) if x != y])
        table[get(b)] = memo.results.setdefault(w, w)
        memo.entries += 1

    def bytes_of(self, ps: tuple) -> list:
        """The key's bytes that hold positions ps."""
        return [o for p in ps for o in range(self.offs[p], self.offs[p] + self.widths[p])]


def apply(b: bytes, writes: tuple) -> bytes:
    a = bytearray(b)
    for o, v in writes:
        a[o] = v
    return bytes(a)


def memo_bounds(model) -> tuple:
    """Where the mms' and the CPUs' row ids begin in a captured state."""
    k = model.k
    m0 = Store.HEAD + len(k.t_name)
    return m0, m0 + len(k.m_name)


def codec(model, memo: Memo, widths=None, restartable: bool = True):
    """The form the search keeps its states in (the module's docstring); a search that cannot
    start again (its edges already reported) keeps Plain's."""
    if restartable and Positions.fits(model, memo):
        return Positions(model, memo, widths or Positions.first_widths(model))
    return Plain(model, memo)

