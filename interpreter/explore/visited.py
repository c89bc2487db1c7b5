"""The visited set of the breadth-first search: each state's key (explore/packed.py's int, or
search.pack's bytes) in a list, its id its place there (its number in order of arrival), and a
table of ids, open addressing with linear probing and at most half full, that finds a key from
its hash.  About 110 bytes a state where a dict of the keys takes 170 (its entry, and the id's
int object), at a dict's speed where the search inlines the probe (search.py).  The table's size
is a prime and a slot is the hash modulo it: an int key's hash is the key modulo 2**61 - 1, whose
low bits depend on a few of the key's bytes only.  With ``compact`` (--compact) a key is the
state's 64-bit fingerprint, and the fingerprints are kept in an array."""
from __future__ import annotations

from array import array


def prime_above(n: int) -> int:
    n |= 1
    while any(n % d == 0 for d in range(3, int(n ** 0.5) + 1, 2)):
        n += 2
    return n


class Visited:
    __slots__ = ("keys", "slots", "size")

    def __init__(self, compact: bool = False):
        self.keys = array("q") if compact else []
        self.size = prime_above(1024)
        self.slots = array("i", [-1]) * self.size

    def __len__(self) -> int:
        return len(self.keys)

    def add(self, key) -> int:
        """The id of key: its own if it was seen, else the next one (len(self) before the call).
        search.py inlines this probe: change both together."""
        slots, size, keys = self.slots, self.size, self.keys
        x = hash(key) % size
        j = slots[x]
        while j >= 0:
            if keys[j] == key:
                return j
            x = x + 1 if x + 1 < size else 0
            j = slots[x]
        j = len(keys)
        slots[x] = j
        keys.append(key)
        if 2 * j > size:
            self.grow()
        return j

    def key(self, i: int):
        return self.keys[i]

    def grow(self) -> None:
        """About four times the slots, filled again in order of the ids."""
        size = prime_above(4 * self.size)
        slots = array("i", [-1]) * size
        for j, k in enumerate(self.keys):
            x = hash(k) % size
            while slots[x] >= 0:
                x = x + 1 if x + 1 < size else 0
            slots[x] = j
        self.slots, self.size = slots, size
