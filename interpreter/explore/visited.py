"""The visited set of the breadth-first search, kept small: about 70 bytes a state where a dict
of bytes keys takes 170 (the bytes object, the dict's entry and the id's int object).

A state's key (search.pack's bytes) is appended to one bytearray; its id is its number in order
of arrival; a table of ids, open addressing with linear probing and at most half full, finds a
key from its hash, the hash of each id kept beside it so a probe compares bytes only where the
hashes agree and growing the table reads no key again.  With ``compact`` (--compact) the key is
the state's 64-bit fingerprint and only the fingerprints are kept."""
from __future__ import annotations

from array import array


class Visited:
    __slots__ = ("data", "at", "hashes", "slots", "mask", "compact")

    def __init__(self, compact: bool = False):
        self.compact = compact
        self.data = bytearray()
        self.at = array("q", [0])       # key i is data[at[i]:at[i + 1]]
        self.hashes = array("q")        # per id
        self.slots = array("i", [-1]) * 1024
        self.mask = 1023

    def __len__(self) -> int:
        return len(self.hashes)

    def add(self, key) -> int:
        """The id of key: its own if it was seen, else the next one (len(self) before the call)."""
        h = key if self.compact else hash(key)
        slots, mask = self.slots, self.mask
        x = h & mask
        j = slots[x]
        if j >= 0:
            hashes, at, data, compact = self.hashes, self.at, self.data, self.compact
            while j >= 0:
                if hashes[j] == h and (compact or data[at[j]:at[j + 1]] == key):
                    return j
                x = (x + 1) & mask
                j = slots[x]
        hashes = self.hashes
        j = len(hashes)
        slots[x] = j
        hashes.append(h)
        if not self.compact:
            self.data += key
            self.at.append(len(self.data))
        if 2 * j > mask:
            self._grow()
        return j

    def key(self, i: int) -> bytes:
        return bytes(self.data[self.at[i]:self.at[i + 1]])

    def _grow(self) -> None:
        """Four times the slots, filled again from the kept hashes."""
        n = 4 * (self.mask + 1)
        slots = array("i", [-1]) * n
        mask = n - 1
        for j, h in enumerate(self.hashes):
            x = h & mask
            while slots[x] >= 0:
                x = (x + 1) & mask
            slots[x] = j
        self.slots, self.mask = slots, mask
