"""Fuzzing the relay's frame decoder (hypothesis) and a live relay (seeded mutations of real frames).

The suite runs a short pass. A longer one::

    POCKETSCAN_FUZZ_EXAMPLES=20000 python -m pytest tests/relay/test_relay_fuzz.py -p no:randomly

(``POCKETSCAN_FUZZ_EXAMPLES`` sets hypothesis' examples per property and the live test's frame count.)
"""

from __future__ import annotations

import asyncio
import os
import random
from pathlib import Path
from typing import Any

import cbor2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from relayfix import new_key, relay, run
from websockets.exceptions import ConnectionClosed

from relay import protocol as p
from relay.client import RelayConnection
from tests.relay.fuzzkit import REQUEST_FIELDS

EXAMPLES = int(os.environ.get("POCKETSCAN_FUZZ_EXAMPLES", "150"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])

_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.sampled_from([0, 1, -1, 2**53 - 1, 2**53, 2**63, 10**40])
    | st.floats(allow_nan=True)
    | st.text(max_size=80)
    | st.binary(max_size=300)
    | st.sampled_from(["z" * 65, "A" * 32, "a" * 32, "../x", "", " ", "-_-"])
)
_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=6,
)
_frames = st.fixed_dictionaries(
    {"t": st.sampled_from([*p.REQUEST_TYPES, "hello", "x" * 70, ""]) | _scalars},
    optional={name: _values for name in REQUEST_FIELDS if name != "t"},
)


def _check_request(data: bytes) -> None:
    """Decoding yields a request or one of the protocol's errors; nothing else escapes."""
    try:
        request = p.decode_request(data)
    except p.FieldError as exc:
        assert exc.code in (p.ErrorCode.BAD_REQUEST, p.ErrorCode.TOO_LARGE)
        assert exc.request_id is None or 0 <= exc.request_id < 2**53
    except p.ProtocolError:
        pass
    else:
        assert isinstance(request, p.Request) and 0 <= request.id < 2**53


@FUZZ
@given(st.binary(max_size=2048))
def test_decoder_survives_arbitrary_bytes(data: bytes) -> None:
    _check_request(data)


@FUZZ
@given(_frames)
def test_decoder_survives_structured_frames(frame: dict[str, Any]) -> None:
    data = cbor2.dumps(frame)
    _check_request(data)
    rid = frame.get("id")
    readable = isinstance(rid, int) and not isinstance(rid, bool) and 0 <= rid < 2**53
    if readable and frame.get("t") in p.REQUEST_TYPES:
        try:
            p.decode_request(data)
        except p.FieldError as exc:
            assert exc.request_id == rid  # the error reply can carry the request's id


@FUZZ
@given(st.data())
def test_decoder_survives_mutations_of_valid_frames(data: st.DataObject) -> None:
    base = data.draw(st.sampled_from(_VALID))
    raw = bytearray(cbor2.dumps(base))
    for _ in range(data.draw(st.integers(1, 6))):
        pos = data.draw(st.integers(0, len(raw) - 1))
        raw[pos] = data.draw(st.integers(0, 255))
    _check_request(bytes(raw))


_VALID: list[dict[str, Any]] = [
    {"t": "send", "id": 1, "to": "a" * 32, "env": b"e" * 40, "cid": b"c" * 16, "ack": ["1", "2"]},
    {"t": "ack", "id": 2, "mids": ["1", "17-0"]},
    {"t": "prekeys.put", "id": 3, "bundle": b"b" * 50, "otks": [b"k" * 40] * 3, "replace": False},
    {"t": "prekeys.get", "id": 4, "account": "b" * 32},
    {"t": "prekeys.count", "id": 5},
    {"t": "blob.put", "id": 6, "data": b"d" * 100, "blob": None, "final": True},
    {"t": "blob.get", "id": 7, "blob": "Q" * 32, "chunk": 3},
    {"t": "snapshot.get", "id": 8},
    {"t": "snapshot.publish", "id": 9, "version": 3, "blob": "Q" * 32, "sha256": b"s" * 32},
    {"t": "auth", "id": 0, "v": 1, "pk": b"p" * 32, "sig": b"s" * 64},
]


def test_live_relay_survives_fuzzed_frames(tmp_path: Path) -> None:
    """Seeded mutations of valid frames sent by an authenticated client: every frame gets an error
    reply or closes that connection only; the relay keeps serving everyone else."""
    from hostile import RawClient

    rng = random.Random(11)
    count = max(200, min(EXAMPLES, 5000))

    def mutant() -> bytes:
        raw = bytearray(cbor2.dumps(rng.choice(_VALID[:-1])))
        for _ in range(rng.randint(1, 4)):
            raw[rng.randrange(len(raw))] = rng.randrange(256)
        return bytes(raw)

    async def body() -> None:
        async with relay(tmp_path / "r.sqlite") as server:
            friend = await RelayConnection.connect(server.url, new_key())
            key = new_key()
            attacker = await RawClient.connect(server.url, key)
            closed = 0
            for _ in range(count):
                try:
                    await attacker.send_raw(mutant())
                    frame = await attacker.next_frame(timeout=10)
                    assert frame["t"] in ("ok", "error", "msg", "snapshot", "prekeys.low")
                except ConnectionClosed:
                    closed += 1
                    attacker = await RawClient.connect(server.url, key)
            assert await friend.count_prekeys() == 0  # still served
            await attacker.close()
            await friend.close()
            for _ in range(100):
                if server.core.connections == 0:
                    break
                await asyncio.sleep(0.02)
            assert server.core.connections == 0  # nothing leaked

    run(body(), timeout=300)
