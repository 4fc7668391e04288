"""The Sans-I/O codec alone: round trips, validation, auth transcript, account id, and a fuzz test."""

from __future__ import annotations

import contextlib

import cbor2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relay import protocol as p
from relay.errors import ProtocolError
from relay.limits import RateLimiter, TokenBucket
from tests.relay.fuzzkit import REQUEST_FIELDS

ACCOUNT = "a" * 32


@pytest.mark.parametrize(
    "request_obj",
    [
        p.Auth(id=1, v=1, pk=b"k" * 32, sig=b"s" * 64),
        p.Send(id=2, to=ACCOUNT, env=b"cipher", cid=b"c" * 16),
        p.Ack(id=3, mids=("1", "2")),
        p.PrekeysPut(id=4, bundle=b"b", otks=(b"o1", b"o2"), replace=True),
        p.PrekeysGet(id=5, account=ACCOUNT),
        p.PrekeysCount(id=6),
        p.BlobPut(id=7, data=b"chunk", blob="abc", final=True),
        p.BlobGet(id=8, blob="abc", chunk=3),
        p.SnapshotGet(id=9),
        p.SnapshotPublish(id=10, version=4, blob="abc", sha256=b"h" * 32),
    ],
)
def test_round_trip(request_obj: p.Request) -> None:
    assert p.decode_request(p.encode(request_obj.to_frame())) == request_obj


@pytest.mark.parametrize(
    "frame",
    [
        {"t": "send", "id": 1, "to": "short", "env": b"x", "cid": b"c" * 16},
        {"t": "send", "id": 1, "to": ACCOUNT, "env": b"", "cid": b"c" * 16},
        {"t": "send", "id": 1, "to": ACCOUNT, "env": "text", "cid": b"c" * 16},
        {"t": "send", "id": 1, "to": ACCOUNT, "env": b"x" * (p.MAX_ENVELOPE + 1), "cid": b"c" * 16},
        {"t": "send", "id": -1, "to": ACCOUNT, "env": b"x", "cid": b"c" * 16},
        {"t": "send", "id": True, "to": ACCOUNT, "env": b"x", "cid": b"c" * 16},
        {"t": "ack", "id": 1, "mids": []},
        {"t": "ack", "id": 1, "mids": ["1"] * (p.MAX_ACK_BATCH + 1)},
        {"t": "auth", "id": 1, "v": 1, "pk": b"k" * 31, "sig": b"s" * 64},
        {"t": "prekeys.put", "id": 1, "bundle": b"b", "otks": [b""]},
        {"t": "blob.get", "id": 1, "blob": "", "chunk": 0},
        {"id": 1},
        {"t": 5, "id": 1},
    ],
)
def test_invalid_requests_are_refused(frame: dict) -> None:
    with pytest.raises(ProtocolError):
        p.decode_request(cbor2.dumps(frame), max_size=p.MAX_FRAME * 2)


def test_unknown_type_keeps_the_id() -> None:
    with pytest.raises(p.UnknownType) as err:
        p.decode_request(p.encode({"t": "teleport", "id": 42}))
    assert err.value.request_id == 42


def test_transcript_binds_everything() -> None:
    base = p.auth_transcript(b"n" * 32, b"c" * 16, 1, "relay.test:443")
    assert base != p.auth_transcript(b"m" * 32, b"c" * 16, 1, "relay.test:443")
    assert base != p.auth_transcript(b"n" * 32, b"d" * 16, 1, "relay.test:443")
    assert base != p.auth_transcript(b"n" * 32, b"c" * 16, 2, "relay.test:443")
    assert base != p.auth_transcript(b"n" * 32, b"c" * 16, 1, "relay.test:444")


def test_account_id_matches_the_client_formula() -> None:
    from client.crypto import identity

    for seed in range(5):
        key = bytes([seed]) * 32
        assert p.account_id_from_public_key(key) == identity.account_id_from_public_key(key)
        assert p.is_account_id(p.account_id_from_public_key(key))


def test_token_bucket() -> None:
    bucket = TokenBucket(rate=10, burst=5, now=0.0)
    assert all(bucket.allow(0.0) for _ in range(5))
    assert not bucket.allow(0.0)
    assert bucket.allow(0.1)  # one token refilled
    limiter = RateLimiter(1, 1, max_keys=2)
    assert limiter.allow("x", 0) and not limiter.allow("x", 0)
    limiter.allow("y", 0)
    limiter.allow("z", 0)
    assert len(limiter) == 2  # memory bounded


@settings(max_examples=150, deadline=500, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2048))
def test_fuzz_random_bytes(data: bytes) -> None:
    """Arbitrary bytes: a request or ProtocolError, never another exception or a hang."""
    with contextlib.suppress(ProtocolError):
        p.decode_request(data)


_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.binary(max_size=64) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5),
    max_leaves=6,
)


@settings(max_examples=80, deadline=500, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(sorted(p.REQUEST_TYPES)),
    st.dictionaries(
        st.sampled_from([name for name in REQUEST_FIELDS if name != "t"] + ["extra"]),
        _values,
        max_size=8,
    ),
)
def test_fuzz_structured_frames(kind: str, fields: dict) -> None:
    """Well-formed CBOR maps with a real type and random fields: validated or refused cleanly."""
    try:
        req = p.decode_request(cbor2.dumps({"t": kind, **fields}))
    except ProtocolError:
        return
    assert kind == req.TYPE
    assert p.decode_request(p.encode(req.to_frame())) == req


@settings(max_examples=100, deadline=500)
@given(st.binary(min_size=1, max_size=64), st.integers(min_value=0, max_value=200))
def test_fuzz_mutated_valid_frames(noise: bytes, pos: int) -> None:
    frame = bytearray(p.encode(p.Send(id=1, to=ACCOUNT, env=b"e" * 50, cid=b"c" * 16).to_frame()))
    frame[pos % len(frame) : pos % len(frame) + len(noise)] = noise
    with contextlib.suppress(ProtocolError):
        p.decode_request(bytes(frame))


def test_relay_imports_nothing_from_the_client() -> None:
    """The relay is a separate program: importing any relay module loads no `client` module."""
    import pkgutil
    import subprocess
    import sys

    import relay

    names = [m.name for m in pkgutil.walk_packages(relay.__path__, "relay.")]
    code = (
        "import importlib, sys\n"
        f"for n in {names!r}:\n    importlib.import_module(n)\n"
        "print(sorted(m for m in sys.modules if m == 'client' or m.startswith('client.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == "[]"


def test_relay_authority_normalises_the_url() -> None:
    assert p.relay_authority("ws://LocalHost:8765/") == "localhost:8765"
    assert p.relay_authority("wss://relay.example") == "relay.example:443"
    assert p.relay_authority("ws://relay.example/path") == "relay.example:80"
    assert p.relay_authority("ws://[::1]:9000") == "[::1]:9000"
    for bad in ("http://x:1", "ws://", "relay.example:80", "ws://x:99999"):
        with pytest.raises(ProtocolError):
            p.relay_authority(bad)


def test_relay_names_of_a_bound_relay() -> None:
    from relay.ws import relay_names

    assert relay_names("127.0.0.1", 8765) == ("127.0.0.1:8765", "localhost:8765", "[::1]:8765")
    assert relay_names("10.1.2.3", 80) == ("10.1.2.3:80",)
    assert relay_names("0.0.0.0", 8765) == ()  # wildcard: the port alone is checked
    assert relay_names("0.0.0.0", 8765, ("wss://relay.example",)) == ("relay.example:443",)


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ({"t": "blob.get", "id": 7, "blob": "z" * 65}, p.ErrorCode.BAD_REQUEST),
        (
            {"t": "send", "id": 7, "to": ACCOUNT, "env": b"x" * (p.MAX_ENVELOPE + 1), "cid": b"c" * 16},
            "too_large",
        ),
        ({"t": "blob.put", "id": 7, "data": b"x" * (p.BLOB_CHUNK + 1)}, p.ErrorCode.TOO_LARGE),
        ({"t": "prekeys.put", "id": 7, "otks": [b"k"] * (p.MAX_OTKS + 1)}, p.ErrorCode.TOO_LARGE),
        ({"t": "ack", "id": 7, "mids": 5}, p.ErrorCode.BAD_REQUEST),
    ],
)
def test_field_errors_carry_the_request_id_and_code(frame: dict, code: str) -> None:
    with pytest.raises(p.FieldError) as err:
        p.decode_request(cbor2.dumps(frame), max_size=p.MAX_FRAME * 2)
    assert (err.value.request_id, err.value.code) == (7, code)


def test_take_token_is_pure() -> None:
    from relay.limits import take_token

    ok, tokens, stamp = take_token(1.0, 100.0, rate=2.0, burst=3.0, now=100.0)
    assert ok and tokens == 0.0 and stamp == 100.0
    ok, tokens, stamp = take_token(tokens, stamp, rate=2.0, burst=3.0, now=100.2)
    assert not ok and tokens == pytest.approx(0.4)
    ok, tokens, _ = take_token(tokens, stamp, rate=2.0, burst=3.0, now=200.0)
    assert ok and tokens == 2.0  # refilled to the burst, minus one
    assert take_token(0.0, 0.0, rate=0, burst=0, now=0.0)[0]  # rate 0: unlimited
