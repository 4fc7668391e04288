"""The snapshot's blocked Bloom filter: a keyed probe for ``bloom-filter2`` and a vectorised numpy writer.

Bit ``j`` of the body is bit ``j % 8`` (least significant first) of byte ``j // 8``, the layout of
``bloom_filter2``'s mmap backend. A key's 16-byte digest ``D`` (see :mod:`scanner.snapshot.lsh`) selects
block ``u64le(D[0:8]) mod (m / 512)`` and, with ``x = u64le(D[8:16])``, ``a = x & 511``,
``b = ((x >> 9) & 511) | 1`` and ``c = (x >> 18) & 511``, the ``h`` bits
``block * 512 + ((a + i * b + c * i * (i - 1) / 2) mod 512)`` for ``i < h`` (triple hashing: plain double
hashing makes keys with the same step share runs of bits, which measurably raises the false-positive rate).
Keeping every probe of a key inside one 64-byte block costs one cache line per lookup and lets the writer
merge whole blocks at once.

On the device, :func:`open_filter` wraps the verified, memory-mapped body in a ``bloom_filter2.BloomFilter``
whose backend is a read-only subclass of the package's ``Mmap_backend`` (the stock backend opens the file
read-write and writes a byte past the bits, which would alter a signed file) and whose ``probe_bitnoer`` is
:class:`KeyedProbe`. The authority builds the same bits with :class:`BloomWriter`; a test proves both agree
bit for bit.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from bloom_filter2 import BloomFilter
from bloom_filter2.bloom_filter import Mmap_backend

from scanner.snapshot.lsh import KeyDigester

__all__ = [
    "BLOCK_BITS",
    "BloomWriter",
    "KeyedProbe",
    "ReadOnlyMmapBackend",
    "open_filter",
    "present_many",
    "probe_bits",
]

BLOCK_BITS = 512
_WORDS_PER_BLOCK = BLOCK_BITS // 64


def probe_bits(digest: bytes, bloom_bits: int, bloom_hashes: int) -> list[int]:
    """The bit numbers a 16-byte key digest sets (reference form of the writer's arithmetic)."""
    h1 = int.from_bytes(digest[0:8], "little")
    x = int.from_bytes(digest[8:16], "little")
    base = (h1 % (bloom_bits // BLOCK_BITS)) * BLOCK_BITS
    a = x & 511
    b = ((x >> 9) & 511) | 1
    c = (x >> 18) & 511
    return [base + ((a + i * b + c * (i * (i - 1) // 2)) & 511) for i in range(bloom_hashes)]


class KeyedProbe:
    """A ``probe_bitnoer`` for ``bloom_filter2``: keys are ``(table, key_bytes)``, digested with the salt."""

    def __init__(self, digester: KeyDigester) -> None:
        self._digester = digester

    def __call__(self, bloom_filter: BloomFilter, key: tuple[int, bytes]) -> Iterator[int]:
        """Yield the bit numbers of ``key`` (the package stops at the first clear bit)."""
        digest = self._digester.digest(key[0], key[1])
        m = bloom_filter.num_bits_m
        h1 = int.from_bytes(digest[0:8], "little")
        x = int.from_bytes(digest[8:16], "little")
        base = (h1 % (m // BLOCK_BITS)) * BLOCK_BITS
        a = x & 511
        b = ((x >> 9) & 511) | 1
        c = (x >> 18) & 511
        for i in range(bloom_filter.num_probes_k):
            yield base + ((a + i * b + c * (i * (i - 1) // 2)) & 511)


class ReadOnlyMmapBackend(Mmap_backend):
    """``bloom_filter2``'s mmap backend over an existing read-only mapping (the verified snapshot body)."""

    def __init__(self, body: memoryview, num_bits: int) -> None:
        # Deliberately not calling Mmap_backend.__init__: it opens and extends a file read-write.
        self.num_bits = num_bits
        self.num_chars = (num_bits + 7) // 8
        if len(body) != self.num_chars:
            raise ValueError("the body does not hold the announced number of bits")
        self.mmap = body

    def set(self, bitno: int) -> None:
        raise TypeError("a snapshot's Bloom filter is read-only")

    def clear(self, bitno: int) -> None:
        raise TypeError("a snapshot's Bloom filter is read-only")

    def close(self) -> None:
        """Release the view (the mapping itself belongs to whoever opened the file)."""
        self.mmap.release()


def open_filter(body: memoryview, bloom_bits: int, bloom_hashes: int, digester: KeyDigester) -> BloomFilter:
    """A read-only ``bloom_filter2.BloomFilter`` over a snapshot body, probed with the snapshot's salt."""
    bloom = BloomFilter(max_elements=1, error_rate=0.5, probe_bitnoer=KeyedProbe(digester))
    bloom.backend.close()
    bloom.num_bits_m = bloom_bits
    bloom.num_probes_k = bloom_hashes
    bloom.backend = ReadOnlyMmapBackend(body, bloom_bits)
    return bloom


def _probe_matrix(digests: bytes, bloom_bits: int, bloom_hashes: int) -> tuple[np.ndarray, np.ndarray]:
    """(block index, in-block bit offsets (n, h)) of concatenated 16-byte digests."""
    d = np.frombuffer(digests, dtype="<u8").reshape(-1, 2)
    block = d[:, 0] % np.uint64(bloom_bits // BLOCK_BITS)
    x = d[:, 1]
    a = x & np.uint64(511)
    b = ((x >> np.uint64(9)) & np.uint64(511)) | np.uint64(1)
    c = (x >> np.uint64(18)) & np.uint64(511)
    i = np.arange(bloom_hashes, dtype=np.uint64)
    tri = i * (i - np.uint64(1)) // np.uint64(2) if bloom_hashes > 1 else np.zeros(1, np.uint64)
    g = (a[:, None] + i[None, :] * b[:, None] + tri[None, :] * c[:, None]) & np.uint64(511)
    return block, g


def present_many(body: np.ndarray, digests: bytes, bloom_bits: int, bloom_hashes: int) -> np.ndarray:
    """Membership of many keys at once, by their digests: the same answer as ``key in BloomFilter``.

    ``body`` is the filter's bytes as a uint8 array (a zero-copy view of the mapped file). Used by the matcher
    to look up all tables of all dihedral variants in one vectorised pass; a test checks it against the
    package's ``__contains__``.
    """
    block, g = _probe_matrix(digests, bloom_bits, bloom_hashes)
    bitno = block[:, None] * np.uint64(BLOCK_BITS) + g
    byte = body[(bitno >> np.uint64(3)).astype(np.intp)]
    bit = (byte >> (bitno & np.uint64(7)).astype(np.uint8)) & np.uint8(1)
    result: np.ndarray = bit.all(axis=1)
    return result


class BloomWriter:
    """Sets the filter's bits for many digests at once (numpy); same bits as ``BloomFilter.add``."""

    def __init__(self, bloom_bits: int, bloom_hashes: int) -> None:
        if bloom_bits <= 0 or bloom_bits % BLOCK_BITS:
            raise ValueError("the Bloom size must be a positive multiple of 512 bits")
        self.bloom_bits = bloom_bits
        self.bloom_hashes = bloom_hashes
        self._blocks = bloom_bits // BLOCK_BITS
        self._words = np.zeros((self._blocks, _WORDS_PER_BLOCK), dtype="<u8")

    def add_digests(self, digests: bytes) -> None:
        """Insert keys given by their concatenated 16-byte digests (best in batches of 10^5..10^6)."""
        d = np.frombuffer(digests, dtype="<u8").reshape(-1, 2)
        n = d.shape[0]
        if n == 0:
            return
        block = d[:, 0] % np.uint64(self._blocks)
        x = d[:, 1]
        a = x & np.uint64(511)
        b = ((x >> np.uint64(9)) & np.uint64(511)) | np.uint64(1)
        c = (x >> np.uint64(18)) & np.uint64(511)
        order = np.argsort(block)
        block = block[order]
        a = a[order]
        b = b[order]
        c = c[order]
        # One 512-bit mask per key, built in a flat (n * 8) array of 64-bit words.
        masks = np.zeros(n * _WORDS_PER_BLOCK, dtype=np.uint64)
        row_base = np.arange(n, dtype=np.uint64) * np.uint64(_WORDS_PER_BLOCK)
        one = np.uint64(1)
        for i in range(self.bloom_hashes):
            g = (a + np.uint64(i) * b + np.uint64(i * (i - 1) // 2) * c) & np.uint64(511)
            masks[(row_base + (g >> np.uint64(6))).astype(np.intp)] |= one << (g & np.uint64(63))
        # Keys sharing a block are OR-ed together, then each touched block is updated once.
        starts = np.flatnonzero(np.concatenate(([True], block[1:] != block[:-1])))
        combined = np.bitwise_or.reduceat(masks.reshape(n, _WORDS_PER_BLOCK), starts, axis=0)
        self._words[block[starts].astype(np.intp)] |= combined

    def body(self) -> bytes:
        """The body bytes (bit ``j`` at byte ``j // 8``, least significant bit first)."""
        return self._words.astype("<u8", copy=False).tobytes()

    def fill_ratio(self) -> float:
        """Fraction of bits set."""
        return float(np.unpackbits(self._words.view(np.uint8)).mean())
