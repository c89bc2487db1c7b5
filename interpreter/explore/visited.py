"""The visited set of the breadth-first search: each state's key (search.pack's bytes) in a list,
its id its place there (its number in order of arrival), and a table of ids, open addressing
with linear probing and at most half full, that finds a key from its hash.  About 110 bytes a
state where a dict of the keys takes 170 (its entry, and the id's int object), at nearly a
dict's speed: a probe compares two bytes objects, and a bytes object keeps its hash, so the
table grows without hashing a key again.  With ``compact`` (--compact) a key is the state's
64-bit fingerprint, and the fingerprints are kept in an array."""
from __future__ import annotations

from array import array


class Visited:
    __slots__ = ("keys", "slots", "mask")

    def __init__(self, compact: bool = False):
        self.keys = array("q") if compact else []
        self.slots = array("i", [-1]) * 1024
        self.mask = 1023

    def __len__(self) -> int:
        return len(self.keys)

    def add(self, key) -> int:
        """The id of key: its own if it was seen, else the next one (len(self) before the call)."""
        slots, mask = self.slots, self.mask
        x = hash(key) & mask
        j = slots[x]
        if j >= 0:
            keys = self.keys
            while j >= 0:
                if keys[j] == key:
                    return j
                x = (x + 1) & mask
                j = slots[x]
        keys = self.keys
        j = len(keys)
        slots[x] = j
        keys.append(key)
        if 2 * j > mask:
            self._grow()
        return j

    def key(self, i: int):
        return self.keys[i]

    def _grow(self) -> None:
        """Four times the slots, filled again in order of the ids."""
        n = 4 * (self.mask + 1)
        slots = array("i", [-1]) * n
        mask = n - 1
        for j, k in enumerate(self.keys):
            x = hash(k) & mask
            while slots[x] >= 0:
                x = (x + 1) & mask
            slots[x] = j
        self.slots, self.mask = slots, mask
