"""The breadth-first search's states as ints, and the memo's runs replayed on those ints.

A captured state (model.Store) is a tuple of row ids, interned per owner: an mm's row ids run
into the hundreds in the dense family.  The search keeps each state in a shorter form instead
(its visited key, and what it expands), one of two:

- ``Positions`` (where explore/memo.py may remember runs: the layout is fixed): per position of
  the tuple its own table of the row ids seen there, and the state is one int: position by
  position, lowest first, the id's place in that table (one byte, two for an mm), then each
  block's program counter (one byte).  Places are small, so a key is short.  The search reads
  the program counters off the top bytes; a remembered run is kept by the bits of the positions
  it could read (a mask, and the key's bits under it) with the bits it flips: from a state that
  agrees under the mask the run is one XOR, no tuple built, no kernel touched.  A place past its
  width raises Wider, and the search starts again with that position wider (once, if ever: the
  widths start where the rows are known to grow).  Each form is read one way, so keys are equal
  exactly when the states are.
- ``Plain`` (anywhere else: blocks that make tasks or mms, cost counters, a block of 256
  statements or more, the memo off): search.pack's bytes of the tuple and its program
  counters, and the memo's own tuple form (memo.Memo.step).

The memo's reasoning (which rows a run could read, which runs are remembered) is memo.py's; only
the form of the key and of the flips is here."""
from __future__ import annotations

import struct
from itertools import compress
from operator import getitem, ne

from .memo import Memo
from .model import ENDED, FAILED, Store


class Wider(Exception):
    """Position p has more rows than its width holds (1, 2 or 4 bytes: 4 billion rows)."""

    def __init__(self, p: int):
        self.p = p


class Form:
    """What both forms share: the search asks each for encode, open (state and program counters,
    a tuple each), state, fingerprint, waiting and fire."""

    pshift = None       # Positions: where the program counters begin in the int (search.py reads them)
    replays = False     # whether the search replays u.packed itself

    def __init__(self, model, memo: Memo):
        self.m, self.memo = model, memo
        self.lens = [len(us) for us in model.units]
        self.nb = len(model.start_pcs)

    def next_pc(self, u, outcome) -> int:
        """The block's program counter after u: past its end where the run ended the block."""
        return self.lens[u.block] if outcome == ENDED else u.index + 1


class Plain(Form):
    """search.pack's keys, and the memo's tuple form."""

    def __init__(self, model, memo: Memo):
        from .search import pack, unpack
        super().__init__(model, memo)
        self.pack, self.unpack = pack, unpack
        for us in model.units:
            for u in us:
                u.packed = ()

    def encode(self, s: tuple, pcs) -> bytes:
        return self.pack(tuple(s) + tuple(pcs))

    fingerprint = staticmethod(hash)    # --compact's 64 bits: a bytes object's hash is SipHash

    def open(self, b: bytes) -> tuple:
        t = self.unpack(b)
        n = len(t) - self.nb
        return t[:n], t[n:]

    def state(self, b: bytes) -> tuple:
        return self.open(b)[0]

    def waiting(self, b: bytes, s: tuple, u) -> bool:
        return self.m.waiting(s, u)

    def fire(self, u, b: bytes, s: tuple, pcs, held: bool) -> tuple:
        """(outcome, Failure or None, successor's key or None, whether the kernel holds s, the
        block's next program counter)."""
        outcome, fail, s2, held = self.memo.step(u, s, held)
        if outcome == FAILED:
            return outcome, fail, None, held, None
        npcs = list(pcs)
        npc = npcs[u.block] = self.next_pc(u, outcome)
        return outcome, None, self.pack(s2 + tuple(npcs)), held, npc


class Positions(Form):
    """Per position its own table of row ids; a state is one int: its places, then its program
    counters, a byte each (two for an mm), the first lowest."""

    def __init__(self, model, memo: Memo, widths: list):
        super().__init__(model, memo)
        self.n = n = len(model.start)
        self.widths = widths
        self.shift, self.masks = [], []       # per position: where its place begins (bits), its bits
        at = 0
        for w in widths:
            self.shift.append(8 * at)
            self.masks.append((1 << 8 * w) - 1)
            at += w
        self.pshift = 8 * at                    # where the program counters begin
        self.size = at + self.nb
        self.fmt = struct.Struct("<" + "".join({1: "B", 2: "H", 4: "I"}[w] for w in widths))
        self.places = [{} for _ in range(n)]    # per position: row id -> place
        self.ids = [[] for _ in range(n)]       # per position: place -> row id
        self.rows = model.store.rows[0]
        self.verify = memo.verify
        self.replays = not memo.verify  # verify: every run goes through fire(), which compares
        for us in model.units:
            for u in us:
                u.packed = [] if u.memo is not None and memo.on else ()

    @staticmethod
    def fits(model, memo: Memo) -> bool:
        """The memo is on (so the layout is fixed) and a program counter fits its byte."""
        return memo.on and all(len(us) < 256 for us in model.units)

    @staticmethod
    def first_widths(model, memo: Memo) -> list:
        """An mm's rows two bytes (its counters make hundreds), any other position's one."""
        return [2 if memo.m0 <= p < memo.c0 else 1 for p in range(len(model.start))]

    def place(self, p: int, x: int) -> int:
        d = self.places[p]
        j = d.get(x)
        if j is None:
            ids = self.ids[p]
            j = d[x] = len(ids)
            ids.append(x)
            if j > self.masks[p]:
                raise Wider(p)
        return j

    def encode(self, s: tuple, pcs) -> int:
        place = self.place
        return int.from_bytes(self.fmt.pack(*[place(p, x) for p, x in enumerate(s)]) + bytes(pcs), "little")

    def fingerprint(self, x: int) -> int:
        """--compact's 64 bits: SipHash of the bytes (an int's own hash is the int modulo
        2**61 - 1, equal for keys whose bits differ by a shift of 61)."""
        return hash(x.to_bytes(self.size, "little"))

    def open(self, x: int) -> tuple:
        """(state, program counters); the search reads the counters off the int itself (pshift)."""
        return self.state(x), tuple((x >> self.pshift).to_bytes(self.nb, "little"))

    def state(self, x: int) -> tuple:
        return tuple(map(getitem, self.ids, self.fmt.unpack_from(x.to_bytes(self.size, "little"))))

    def waiting(self, x: int, s, u) -> bool:
        """model.waiting, read off the key: the task's row at its place."""
        t = u.waits_for
        if t < 0:
            return self.m.k_waits(self.state(x) if s is None else s, u)
        p = Store.HEAD + t
        return self.m.row_waits(self.rows[self.ids[p][(x >> self.shift[p]) & self.masks[p]]], u)

    def recall(self, u, x: int):
        """The remembered (flips, next pc) of u from x, or None (search.py inlines this)."""
        for _, mask, table in u.packed:
            r = table.get(x & mask)
            if r is not None:
                return r
        return None

    def derive(self, x: int, s: tuple, s2: tuple, block: int, npc: int) -> int:
        """The key of s2 from x (the key of s): the positions that differ, and the block's counter."""
        if s2 is not s:
            shift, masks, place = self.shift, self.masks, self.place
            for p in compress(range(self.n), map(ne, s, s2)):
                x ^= (((x >> shift[p]) & masks[p]) ^ place(p, s2[p])) << shift[p]
        at = self.pshift + 8 * block
        return x ^ (((x >> at) & 255) ^ npc) << at

    def fire(self, u, x: int, s: tuple, pcs, held: bool) -> tuple:
        """As Plain.fire, run on the kernel; a run the memo may keep is remembered in this form
        (verify: a remembered one is compared)."""
        memo = self.memo
        outcome, fail, s2, held, ch = memo.run(u, s, held)
        if outcome == FAILED:
            return outcome, fail, None, held, None
        npc = self.next_pc(u, outcome)
        x2 = self.derive(x, s, s2, u.block, npc)
        if ch is not None:
            r = self.recall(u, x) if self.verify else None
            if r is not None:
                memo.hits += 1
                memo.check(u, s, (x ^ r[0], r[1]), (x2, npc))
            else:
                self.learn(u, s, x, ch, s2, x2, npc)
        return outcome, None, x2, held, npc

    def learn(self, u, s: tuple, x: int, changed: tuple, s2: tuple, x2: int, npc: int) -> None:
        """Remember the run from x to x2 by the bits of the positions it could read: from any
        state that agrees on those (and so holds u's program counter), the run flips the same
        bits."""
        memo = self.memo
        ps = memo.reads(u, s, changed, s2)
        if ps is None:
            return
        mask, table = memo.table(u.packed, ps, self.mask_of)
        if table is None:
            return
        flips = x ^ x2
        if flips & ~(mask | 255 << self.pshift + 8 * u.block):
            return      # a write where the run read nothing (memo.reads missed a row): not kept
        r = (flips, npc)
        table[x & mask] = memo.results.setdefault(r, r)
        memo.entries += 1

    def mask_of(self, ps: tuple) -> int:
        """The key's bits that hold positions ps."""
        m = 0
        for p in ps:
            m |= self.masks[p] << self.shift[p]
        return m


def codec(model, memo: Memo, widths=None, restartable: bool = True):
    """The form the search keeps its states in (the module's docstring); a search that cannot
    start again (its edges already reported) keeps Plain's."""
    if restartable and Positions.fits(model, memo):
        return Positions(model, memo, widths or Positions.first_widths(model, memo))
    return Plain(model, memo)

