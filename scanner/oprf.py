"""OPRF-keyed LSH keys (RFC 9497, VOPRF mode, ristretto255-SHA512): the math and the wire format, no I/O.

In an OPRF-keyed snapshot every Bloom entry is derived from ``F(k, x)``, the RFC 9497 OPRF output of an LSH
key ``x`` under the authority's OPRF key ``k``; the device cannot compute ``F`` alone, so it cannot enumerate
the filter offline. To look up an image it blinds all its keys in one batch, the authority's service
evaluates them without learning them and proves (one batched DLEQ proof) that it used the key whose public
key the signed snapshot header commits to; the device verifies the proof, unblinds, and digests the outputs
exactly as an offline snapshot digests raw keys (``docs/snapshot-format.md`` section 10).

The protocol runs on the ``voprf`` package (Rust ``voprf``/``curve25519-dalek`` bindings): this module adds
the input encoding, bounds and checks every byte string from the network before it reaches the binding, and
turns the binding's failures into :class:`~scanner.errors.OprfError`. Tests check the binding against the
RFC's test vectors (key derivation and outputs, appendix A.1.2).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import struct
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from scanner.errors import OprfError, OprfProofInvalid

__all__ = [
    "ELEMENT_SIZE",
    "KEY_INFO",
    "MAX_BATCH",
    "PROOF_SIZE",
    "BlindedBatch",
    "OprfDigester",
    "OprfKey",
    "blind_batch",
    "lsh_input",
    "parse_public_key",
]

#: Serialized ristretto255 element and scalar sizes; a batch proof is two scalars (c, s).
ELEMENT_SIZE = 32
PROOF_SIZE = 64
#: Output of the OPRF (SHA-512).
OUTPUT_SIZE = 64
#: Largest batch one request may carry (8 dihedral variants x 512 tables).
MAX_BATCH = 4096
#: ``info`` of RFC 9497 DeriveKeyPair for the authority's OPRF key.
KEY_INFO = b"pocketscan oprf key v1"
_INPUT_PREFIX = b"pocketscan lsh"
_KEY_FILE_HEADER = "pocketscan-oprf-key-v1"


def _ristretto():  # type: ignore[no-untyped-def]
    try:
        from voprf import ristretto
    except ImportError as exc:  # pragma: no cover - a declared dependency
        raise OprfError("the voprf package is not installed: pip install voprf") from exc
    return ristretto


def lsh_input(table: int, key: bytes) -> bytes:
    """The OPRF input for the key of one table: ``"pocketscan lsh" || u32be(table) || key``."""
    return _INPUT_PREFIX + struct.pack(">I", table) + key


def parse_public_key(data: bytes) -> object:
    """A ristretto255 OPRF public key (32 bytes) as the binding's object.

    Raises:
        OprfError: not a valid encoding of a group element.
    """
    if len(data) != ELEMENT_SIZE:
        raise OprfError("an OPRF public key is 32 bytes")
    try:
        return _ristretto().PublicKey.deserialize(bytes(data))
    except ValueError as exc:
        raise OprfError(f"invalid OPRF public key: {exc}") from None


class OprfKey:
    """The authority's OPRF key: RFC 9497 DeriveKeyPair(seed, :data:`KEY_INFO`) of a 32-byte secret seed."""

    def __init__(self, seed: bytes) -> None:
        if len(seed) != 32:
            raise OprfError("an OPRF key seed is 32 bytes")
        self._evaluator = _ristretto().Evaluator.from_seed(bytes(seed), KEY_INFO)
        self._seed = bytes(seed)

    def __repr__(self) -> str:
        return f"OprfKey(public={self.public_key.hex()[:16]}...)"

    @classmethod
    def generate(cls) -> OprfKey:
        """A fresh random key."""
        return cls(os.urandom(32))

    @property
    def public_key(self) -> bytes:
        """The 32-byte public key (committed in OPRF snapshot headers)."""
        return bytes(self._evaluator.public_key.serialize())

    def evaluate_inputs(self, inputs: Sequence[bytes]) -> list[bytes]:
        """``F(k, x)`` for known inputs (RFC 9497 Evaluate; the authority's side, building snapshots)."""
        ev = self._evaluator.evaluate_known_input
        return [bytes(ev(x)) for x in inputs]

    def evaluate_blinded(self, blinded: Sequence[bytes]) -> bytes:
        """BlindEvaluate a batch with one DLEQ proof: ``proof (c || s) || evaluated elements`` (wire form).

        Raises:
            OprfError: an element is not a valid group element encoding, or the batch is empty or too large.
        """
        if not 1 <= len(blinded) <= MAX_BATCH:
            raise OprfError(f"a batch holds 1..{MAX_BATCH} elements")
        r = _ristretto()
        try:
            elements = [r.BlindedInput.deserialize(bytes(b)) for b in blinded]
        except ValueError:
            raise OprfError("a blinded element is not a valid ristretto255 encoding") from None
        return bytes(self._evaluator.evaluate_batch(elements).serialize())

    def save(self, path: str | os.PathLike[str], *, force: bool = False) -> None:
        """Write the seed (hex) to ``path`` with mode 0600; refuse to overwrite unless ``force``."""
        p = Path(path)
        if p.exists() and not force:
            raise OprfError(f"{p} exists; refusing to overwrite an OPRF key (use --force)")
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
        fd = os.open(p, flags, 0o600)
        try:
            os.fchmod(fd, 0o600)
            os.write(fd, f"{_KEY_FILE_HEADER}\n{self._seed.hex()}\n".encode())
        finally:
            os.close(fd)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> OprfKey:
        """Read a key file written by :meth:`save` (refuses files readable by others).

        Raises:
            OprfError: missing, unreadable, malformed or group/world-readable.
        """
        p = Path(path)
        try:
            mode = p.stat().st_mode
            text = p.read_text(encoding="ascii")
        except (OSError, UnicodeDecodeError) as exc:
            raise OprfError(f"cannot read OPRF key {p}: {exc}") from None
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise OprfError(f"OPRF key {p} is readable by others: chmod 600 it")
        lines = text.split()
        if len(lines) != 2 or lines[0] != _KEY_FILE_HEADER:
            raise OprfError(f"{p} is not a pocketscan OPRF key file")
        try:
            seed = bytes.fromhex(lines[1])
        except ValueError:
            raise OprfError(f"{p} is not a pocketscan OPRF key file") from None
        return cls(seed)


class OprfDigester:
    """Salted, table-separated BLAKE2b-128 digests of OPRF outputs (the Bloom keys of an OPRF snapshot).

    Same interface as :class:`scanner.snapshot.lsh.KeyDigester`; the authority builds with
    ``OprfDigester(salt, tables, key)``, the device digests outputs it unblinded with :meth:`digest_outputs`.
    """

    def __init__(self, salt: bytes, tables: int, key: OprfKey | None = None) -> None:
        self._bases = [
            hashlib.blake2b(key=salt, digest_size=16, person=b"pocketscan-t" + struct.pack(">I", t))
            for t in range(tables)
        ]
        self._key = key

    def digest_output(self, table: int, output: bytes) -> bytes:
        """The 16-byte Bloom digest of one OPRF output of ``table``."""
        h = self._bases[table].copy()
        h.update(output)
        return h.digest()

    def digest_many(self, table: int, keys: np.ndarray) -> bytes:
        """Digests of the OPRF outputs of an ``(n, width)`` key array (authority side: needs the key)."""
        if self._key is None:
            raise OprfError("digesting raw keys of an OPRF snapshot needs the authority's OPRF key")
        rows = np.ascontiguousarray(keys).view(f"V{keys.shape[1]}").ravel().tolist()
        outputs = self._key.evaluate_inputs([lsh_input(table, bytes(r)) for r in rows])
        return b"".join(self.digest_output(table, o) for o in outputs)


_STDERR_LOCK = threading.Lock()


@contextlib.contextmanager
def _native_stderr_silenced() -> Iterator[None]:
    """Silence file descriptor 2 while the binding runs: its batch finalisation reports a failed proof with a
    Rust panic, whose hook writes a backtrace to stderr before Python gets the exception."""
    with _STDERR_LOCK:
        try:
            saved = os.dup(2)
        except OSError:  # no stderr at all
            yield
            return
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, 2)
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            os.close(devnull)


class BlindedBatch:
    """The device's half of one batch: blinded elements to send, and the state to finalize the answer."""

    def __init__(self, inputs: Sequence[bytes]) -> None:
        if not 1 <= len(inputs) <= MAX_BATCH:
            raise OprfError(f"a batch holds 1..{MAX_BATCH} inputs")
        r = _ristretto()
        pairs = [r.Client.blind(x) for x in inputs]
        self._clients = [c for c, _ in pairs]
        self.elements = [bytes(b.serialize()) for _, b in pairs]

    def request(self) -> bytes:
        """The blinded elements, concatenated (32 bytes each)."""
        return b"".join(self.elements)

    def finalize(self, response: bytes, public_key: bytes) -> list[bytes]:
        """Verify the batch proof against ``public_key`` and unblind: the OPRF outputs, in input order.

        Raises:
            OprfProofInvalid: the proof does not verify (another key evaluated the batch).
            OprfError: the response is malformed (wrong size, invalid elements).
        """
        n = len(self._clients)
        if len(response) != PROOF_SIZE + n * ELEMENT_SIZE:
            raise OprfError(
                f"malformed OPRF answer: {len(response)} bytes for {n} elements "
                f"(expected {PROOF_SIZE + n * ELEMENT_SIZE})"
            )
        r = _ristretto()
        pk = parse_public_key(public_key)
        try:
            output = r.VerifiableBatchOutput.deserialize(bytes(response))
        except ValueError:
            raise OprfError("malformed OPRF answer: invalid proof or element encoding") from None
        with _native_stderr_silenced():
            try:
                outputs = r.Client.finalize_batch(self._clients, output, pk)
            except Exception as exc:  # ValueError from the binding
                raise OprfProofInvalid(f"OPRF evaluation refused: {exc}") from None
            except BaseException as exc:  # the binding's panic on a failed proof (pyo3 PanicException)
                if type(exc).__name__ != "PanicException":  # a timeout, Ctrl-C or exit is not a bad proof
                    raise
                raise OprfProofInvalid(
                    "OPRF evaluation refused: its proof does not verify against the snapshot's OPRF key"
                ) from None
        return [bytes(o) for o in outputs]


def blind_batch(inputs: Sequence[bytes]) -> BlindedBatch:
    """Blind ``inputs`` (fresh random blinds) for one evaluation request."""
    return BlindedBatch(inputs)


# --- Wire format of the OPRF service (docs/snapshot-format.md section 11) -------------------------------

#: Ed25519 signatures authenticating a caller sign ``AUTH_CONTEXT || nonce`` (the 32-byte server challenge).
AUTH_CONTEXT = b"pocketscan oprf auth v1\x00"
PROTOCOL_VERSION = 1
_REQ = struct.Struct(">4sIH")  # magic, request id, element count
REQUEST_MAGIC = b"POE1"
RESPONSE_MAGIC = b"POR1"
_RESP = struct.Struct(">4sI")  # magic, request id
#: Largest binary frame either side accepts.
MAX_FRAME = _REQ.size + MAX_BATCH * ELEMENT_SIZE + PROOF_SIZE


def encode_request(request_id: int, elements: bytes, count: int) -> bytes:
    """``"POE1" || u32be(id) || u16be(n) || n blinded elements``."""
    if len(elements) != count * ELEMENT_SIZE or not 1 <= count <= MAX_BATCH:
        raise OprfError("malformed OPRF request")
    return _REQ.pack(REQUEST_MAGIC, request_id, count) + elements


def decode_request(frame: bytes) -> tuple[int, list[bytes]]:
    """(request id, blinded elements) of a request frame.

    Raises:
        OprfError: wrong magic, count out of range, or a length that disagrees with the count.
    """
    if len(frame) < _REQ.size:
        raise OprfError("truncated OPRF request")
    magic, request_id, count = _REQ.unpack_from(frame)
    if magic != REQUEST_MAGIC:
        raise OprfError("not an OPRF request frame")
    if not 1 <= count <= MAX_BATCH:
        raise OprfError(f"an OPRF request holds 1..{MAX_BATCH} elements")
    body = frame[_REQ.size :]
    if len(body) != count * ELEMENT_SIZE:
        raise OprfError("OPRF request length does not match its element count")
    return request_id, [bytes(body[i : i + ELEMENT_SIZE]) for i in range(0, len(body), ELEMENT_SIZE)]


def encode_response(request_id: int, evaluation: bytes) -> bytes:
    """``"POR1" || u32be(id) || proof c || proof s || n evaluated elements``."""
    return _RESP.pack(RESPONSE_MAGIC, request_id) + evaluation


def decode_response(frame: bytes) -> tuple[int, bytes]:
    """(request id, ``proof || evaluated elements``) of a response frame."""
    if len(frame) < _RESP.size + PROOF_SIZE or len(frame) > MAX_FRAME:
        raise OprfError("malformed OPRF response frame")
    magic, request_id = _RESP.unpack_from(frame)
    if magic != RESPONSE_MAGIC:
        raise OprfError("not an OPRF response frame")
    return request_id, bytes(frame[_RESP.size :])
