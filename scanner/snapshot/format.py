"""The snapshot file format, version 1 (specified in ``docs/snapshot-format.md``).

Layout: a 256-byte header, the Bloom body (``ceil(m / 8)`` bytes), a 64-byte Ed25519 signature. All
integers are
big-endian. The signature covers ``SIGNING_CONTEXT || header``; the header commits to the body through its
SHA-256, so a verifier streams the body once. The SHA-256 of the whole file is the snapshot's public
fingerprint.
"""

from __future__ import annotations

import re
import struct
from dataclasses import asdict, dataclass

from scanner.errors import SnapshotInvalid

__all__ = [
    "FORMAT_VERSION",
    "HEADER_SIZE",
    "MAGIC",
    "SIGNATURE_SIZE",
    "SIGNING_CONTEXT",
    "Header",
]

MAGIC = b"PKSNAP\r\n"
FORMAT_VERSION = 1
HEADER_SIZE = 256
SIGNATURE_SIZE = 64
SIGNING_CONTEXT = b"pocketscan snapshot signature v1\x00"
#: Header flag: the Bloom keys are OPRF outputs under the key whose public key the header carries.
FLAG_OPRF = 1
#: Algorithm names: 1..8 bytes of lowercase ASCII letters, digits, ``-`` and ``_`` (``pdq``, ``onnx``,
#: ``phash``, ``dhash``, ``ahash`` are the hashers pocketscan ships).
ALGORITHM_NAME = re.compile(r"[a-z0-9_-]{1,8}")

# magic, format, header size, flags, version, created, expires, algorithm, hash bits, L, k, votes,
# probe radius, reserved byte, bloom hashes, reserved u32, bloom bits, entries, key id, seed, salt,
# body length, body sha256, OPRF public key (zero unless flag FLAG_OPRF), 32 reserved bytes.
_STRUCT = struct.Struct(">8sHHIQqq8sHHHHBBHIQQ8s32s32sQ32s32s32s")
assert _STRUCT.size == HEADER_SIZE

_ALLOWED_HASH_BITS = (64, 128, 256)
MAX_TABLES = 4096
MAX_BLOOM_HASHES = 32
BLOCK_BITS = 512
#: Largest Bloom body accepted (bits): 2**33 bits = 1 GiB.
MAX_BLOOM_BITS = 1 << 33


@dataclass(frozen=True)
class Header:
    """The fields of a snapshot header.

    Attributes:
        snapshot_version: monotonically increasing version; devices refuse anything lower than they accepted.
        created: creation time, Unix seconds.
        expires: expiry time, Unix seconds; devices refuse the snapshot from then on.
        algorithm: hash algorithm name (``pdq``).
        hash_bits: hash width in bits.
        tables: L, LSH tables.
        bits: k, sampled bit positions per table.
        min_votes: tables that must hit for a match.
        probe_radius: 0, or 1 when the query also probes its one-bit neighbours.
        bloom_bits: m, bits in the Bloom body (a multiple of 512).
        bloom_hashes: probes per key in its 512-bit block.
        entry_count: bank entries, rounded up to a multiple of 1024.
        key_id: 8-byte id of the signing authority key.
        seed: 32-byte seed of the sampled bit positions.
        salt: 32-byte BLAKE2b key of the LSH key digests.
        body_length: bytes in the Bloom body.
        body_sha256: SHA-256 of the Bloom body.
        format_version: format version (1).
        oprf_public_key: 32-byte ristretto255 OPRF public key when the keys are OPRF outputs (flag bit 0),
            else empty (offline keys).
    """

    snapshot_version: int
    created: int
    expires: int
    algorithm: str
    hash_bits: int
    tables: int
    bits: int
    min_votes: int
    probe_radius: int
    bloom_bits: int
    bloom_hashes: int
    entry_count: int
    key_id: bytes
    seed: bytes
    salt: bytes
    body_length: int
    body_sha256: bytes
    format_version: int = FORMAT_VERSION
    oprf_public_key: bytes = b""

    @property
    def flags(self) -> int:
        """The header's flags word."""
        return FLAG_OPRF if self.oprf_public_key else 0

    def pack(self) -> bytes:
        """The 256 header bytes."""
        self.validate()
        return _STRUCT.pack(
            MAGIC,
            self.format_version,
            HEADER_SIZE,
            self.flags,
            self.snapshot_version,
            self.created,
            self.expires,
            self.algorithm.encode("ascii").ljust(8, b"\0"),
            self.hash_bits,
            self.tables,
            self.bits,
            self.min_votes,
            self.probe_radius,
            0,
            self.bloom_hashes,
            0,
            self.bloom_bits,
            self.entry_count,
            self.key_id,
            self.seed,
            self.salt,
            self.body_length,
            self.body_sha256,
            self.oprf_public_key or bytes(32),
            bytes(32),
        )

    @classmethod
    def unpack(cls, data: bytes) -> Header:
        """Parse and validate 256 header bytes.

        Raises:
            SnapshotInvalid: wrong magic, unsupported version, or out-of-range fields.
        """
        if len(data) < HEADER_SIZE:
            raise SnapshotInvalid("truncated snapshot: the header is incomplete")
        (
            magic,
            fmt,
            hsize,
            flags,
            version,
            created,
            expires,
            algo,
            hash_bits,
            tables,
            bits,
            votes,
            radius,
            reserved1,
            bloom_hashes,
            reserved2,
            bloom_bits,
            entries,
            key_id,
            seed,
            salt,
            body_length,
            body_sha,
            oprf_key,
            reserved3,
        ) = _STRUCT.unpack(bytes(data[:HEADER_SIZE]))
        if magic != MAGIC:
            raise SnapshotInvalid("not a pocketscan snapshot (bad magic bytes)")
        if fmt != FORMAT_VERSION or hsize != HEADER_SIZE:
            raise SnapshotInvalid(f"unsupported snapshot format version {fmt}")
        if flags & ~FLAG_OPRF:
            raise SnapshotInvalid(f"unsupported snapshot flags {flags:#x}")
        if reserved1 or reserved2 or any(reserved3) or (not flags & FLAG_OPRF and any(oprf_key)):
            raise SnapshotInvalid("corrupt snapshot header (reserved fields are not zero)")
        if flags & FLAG_OPRF and not any(oprf_key):
            raise SnapshotInvalid("corrupt snapshot header (OPRF flag without an OPRF public key)")
        name = algo.rstrip(b"\0")
        if not name or not name.isascii() or b"\0" in name or not name.decode().isprintable():
            raise SnapshotInvalid("corrupt snapshot header (bad algorithm name)")
        header = cls(
            version,
            created,
            expires,
            name.decode(),
            hash_bits,
            tables,
            bits,
            votes,
            radius,
            bloom_bits,
            bloom_hashes,
            entries,
            key_id,
            seed,
            salt,
            body_length,
            body_sha,
            fmt,
            bytes(oprf_key) if flags & FLAG_OPRF else b"",
        )
        header.validate()
        return header

    def validate(self) -> None:
        """Check field ranges.

        Raises:
            SnapshotInvalid: a field is out of range.
        """
        problems = []
        if self.hash_bits not in _ALLOWED_HASH_BITS:
            problems.append(f"hash width {self.hash_bits}")
        if not 1 <= self.bits <= min(64, self.hash_bits):
            problems.append(f"{self.bits} bits per table")
        if not 1 <= self.tables <= MAX_TABLES:
            problems.append(f"{self.tables} tables")
        if not 1 <= self.min_votes <= self.tables:
            problems.append(f"minimum votes {self.min_votes}")
        if self.probe_radius not in (0, 1):
            problems.append(f"probe radius {self.probe_radius}")
        if not 1 <= self.bloom_hashes <= MAX_BLOOM_HASHES:
            problems.append(f"{self.bloom_hashes} Bloom probes")
        if not 0 < self.bloom_bits <= MAX_BLOOM_BITS or self.bloom_bits % BLOCK_BITS:
            problems.append(f"Bloom size {self.bloom_bits} bits")
        if self.body_length != self.bloom_bits // 8:
            problems.append("body length")
        if (
            len(self.key_id) != 8
            or len(self.seed) != 32
            or len(self.salt) != 32
            or len(self.body_sha256) != 32
        ):
            problems.append("key id, seed, salt or digest length")
        if self.expires <= self.created:
            problems.append("expiry before creation")
        if self.snapshot_version < 0 or self.entry_count < 0:
            problems.append("negative version or entry count")
        if len(self.algorithm.encode("ascii", "replace")) > 8:
            problems.append("algorithm name longer than 8 bytes")
        elif not ALGORITHM_NAME.fullmatch(self.algorithm):
            problems.append(f"algorithm {self.algorithm!r}")
        if self.oprf_public_key and len(self.oprf_public_key) != 32:
            problems.append("OPRF public key length")
        if self.oprf_public_key and self.probe_radius:
            problems.append("probe radius with OPRF keys (must be 0)")
        if problems:
            raise SnapshotInvalid("corrupt snapshot header (invalid " + ", ".join(problems) + ")")

    @property
    def file_size(self) -> int:
        """Exact size of a well-formed file with this header."""
        return HEADER_SIZE + self.body_length + SIGNATURE_SIZE

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict (bytes as hex)."""
        data = asdict(self)
        for name in ("key_id", "seed", "salt", "body_sha256", "oprf_public_key"):
            data[name] = getattr(self, name).hex()
        data["keys"] = "oprf" if self.oprf_public_key else "offline"
        return data
