"""Which idempotency keys the database may hold, in memory, so a fresh key needs no database read.

Every kiosk request carries a fresh ``Idempotency-Key`` (docs/api.md), and a retry, the
only request whose key is stored, is rare. Looking each key up on the reader thread cost
a thread hop per request (about a tenth of the event loop's time at 2,000 tickets/s, issue
12). A Bloom filter over every key in the database answers "certainly not stored" for a
fresh key with a hash and a few bit tests; "maybe" (a stored key, or about one fresh key
in a hundred) still reads the database, so a replay is answered from the database exactly
as before. A key is added when its write is queued, before it is durable, so the filter
never misses a stored key; keys of a write that failed or was purged later stay in it
and only cost a database read.
"""

from __future__ import annotations

from collections.abc import Iterable

BITS_PER_KEY = 10  # with 7 probes: about 1 % "maybe" for keys that are not stored, at capacity
PROBES = 7
MIN_CAPACITY = 1 << 16  # 80 KiB of bits
_SALT = 0x9E3779B97F4A7C15


class KeyFilter:
    """A Bloom filter of idempotency keys, sized for ``capacity`` keys (it still works past it, less sharply)."""

    def __init__(self, capacity: int = MIN_CAPACITY, minimum: int = MIN_CAPACITY) -> None:
        self.capacity = max(minimum, capacity, 1)
        # A power of two: a probe's bit is a mask, not a division.
        self.nbits = 1 << (self.capacity * BITS_PER_KEY - 1).bit_length()
        self._mask = self.nbits - 1
        self._bits = bytearray(self.nbits // 8)
        self.count = 0

    @classmethod
    def of(cls, keys: Iterable[str], count: int, minimum: int = MIN_CAPACITY) -> KeyFilter:
        """A filter holding ``keys`` (``count`` of them) with room to double."""
        f = cls(2 * count, minimum)
        for key in keys:
            f.add(key)
        return f

    # Python's own string hash (SipHash, salted per process: the filter never leaves the process
    # that built it) and a second one of a tuple, for double hashing; far cheaper than hashlib.
    def add(self, key: str) -> None:
        h1, h2, mask, bits = hash(key), hash((key, _SALT)) | 1, self._mask, self._bits
        for i in range(PROBES):
            p = (h1 + i * h2) & mask
            bits[p >> 3] |= 1 << (p & 7)
        self.count += 1

    def may_contain(self, key: str) -> bool:
        """False: the key is certainly not in the filter; True: it may be."""
        h1, h2, mask, bits = hash(key), hash((key, _SALT)) | 1, self._mask, self._bits
        for i in range(PROBES):
            p = (h1 + i * h2) & mask
            if not bits[p >> 3] & (1 << (p & 7)):
                return False
        return True

    @property
    def full(self) -> bool:
        return self.count > self.capacity
