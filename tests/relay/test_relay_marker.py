"""The relay learns no contents: a known marker, encrypted by the client crypto core, appears nowhere in
the relay's database files, Redis keys and values, logs, metadata log or the raw bytes on the wire."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from pathlib import Path
from typing import Any

import cbor2
import pytest
from relayfix import relay, run

from client.crypto.attachments import decrypt_attachment, encrypt_image
from client.crypto.identity import IdentityKeyPair
from client.crypto.x3dh import PreKeyBundle, PreKeyState
from client.session import Content, decrypt_message, initiate_session
from relay.client import RelayConnection
from scanner.verdict import issue_verdict

MARKER = b"MARKER-c0ffee-4e1d-PLAINTEXT"
SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "coffee.jpg"


def _forms(marker: bytes) -> list[bytes]:
    return [marker, marker.hex().encode(), marker.lower(), marker.decode().encode("utf-16-le")]


class WireTap:
    """A loopback TCP proxy that records every byte between clients and the relay (the raw frames)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.captured = bytearray()
        self.server: asyncio.Server | None = None

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return f"ws://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_r, up_w = await asyncio.open_connection("127.0.0.1", self.target_port)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    self.captured += data
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, asyncio.CancelledError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_w), pipe(up_r, writer))

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()


async def _conversation(url: str) -> None:
    now = time.time()
    alice, bob = IdentityKeyPair.generate(), IdentityKeyPair.generate()
    import nacl.signing

    ca = await RelayConnection.connect(url, nacl.signing.SigningKey(alice.seed))
    cb = await RelayConnection.connect(url, nacl.signing.SigningKey(bob.seed))
    prekeys = PreKeyState.create(bob, now, one_time_count=3)
    await cb.put_prekeys(
        cbor2.dumps(prekeys.bundle(bob.public).to_dict()),
        [cbor2.dumps({"id": k.key_id, "key": k.keypair.public}) for k in prekeys.one_time.values()],
    )
    bundle_bytes, otk = await ca.get_prekeys(bob.account_id)
    fields = cbor2.loads(bundle_bytes)
    if otk is not None:
        one = cbor2.loads(otk)
        fields["one_time_prekey_id"], fields["one_time_prekey"] = one["id"], one["key"]
    record = initiate_session(alice, PreKeyBundle.from_dict(fields), account_id=bob.account_id)

    text = Content("text", "m1", now, text=f"hello {MARKER.decode()}")
    image = SAMPLE.read_bytes() + MARKER
    enc = encrypt_image(image, issue_verdict(image, "no_match"), content_type="image/jpeg")
    blob_id = await ca.put_blob(enc.blob)
    pointer = dataclasses.replace(enc.pointer, blob_id=blob_id)
    photo = Content("image", "m2", now, attachment=pointer)
    for content in (text, photo):
        await ca.send(bob.account_id, record.encrypt(content.to_bytes()))

    got = [await cb.next_message(5) for _ in range(2)]
    bob_record = None
    contents = []
    for msg in got:
        assert msg is not None
        out = decrypt_message(bob, prekeys, bob_record, msg.env, sender_account_id=alice.account_id)
        bob_record = out.record
        contents.append(Content.from_bytes(out.plaintext))
    await cb.ack([m.mid for m in got if m])
    # The conversation really carried the marker, end to end.
    assert MARKER.decode() in (contents[0].text or "")
    att = contents[1].attachment
    assert att is not None
    assert MARKER in decrypt_attachment(await cb.get_blob(att.blob_id), att)
    # A second, undelivered message stays stored at rest.
    await ca.send(bob.account_id, record.encrypt(Content("text", "m3", now, text=MARKER.decode()).to_bytes()))
    await ca.close()
    await cb.close()


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
def test_marker_never_reaches_the_relay(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    redis_url = request.getfixturevalue("redis_server") if backend == "redis" else None
    prefix = request.getfixturevalue("redis_prefix") if backend == "redis" else "pocketscan:"
    log_file = tmp_path / "relay.log"
    handler = logging.FileHandler(log_file)
    logger = logging.getLogger("pocketscan.relay")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    wire = bytearray()
    redis_dump = b""

    async def body() -> None:
        nonlocal redis_dump
        async with relay(
            tmp_path / "relay.sqlite",
            redis=redis_url,
            prefix=prefix,
            metadata_log=str(tmp_path / "meta.jsonl"),
        ) as server:
            tap = WireTap(server.port)
            url = await tap.start()
            server.add_public_url(url)  # clients sign the URL they connect to: the tap's
            await _conversation(url)
            await tap.stop()
            wire.extend(tap.captured)
            if redis_url:
                import redis.asyncio as aioredis

                r: Any = aioredis.from_url(redis_url)
                parts: list[Any] = []
                async for key in r.scan_iter(match=prefix + "*"):
                    parts.append(key)
                    kind = (await r.type(key)).decode()
                    if kind == "string":
                        parts.append(await r.get(key) or b"")
                    elif kind == "list":
                        parts.extend(await r.lrange(key, 0, -1))
                    elif kind == "hash":
                        for k, v in (await r.hgetall(key)).items():
                            parts += [k, v]
                    elif kind == "set":
                        parts.extend(await r.smembers(key))
                    elif kind == "stream":
                        for mid, fields in await r.xrange(key):
                            parts.append(mid)
                            for k, v in fields.items():
                                parts += [k, v]
                    parts.append(await r.dump(key) or b"")
                await r.aclose()
                redis_dump = b"\n".join(parts)
                assert redis_dump, "expected the conversation to leave keys in Redis"

    try:
        run(body())
    finally:
        logger.removeHandler(handler)
        handler.close()

    assert len(wire) > 10_000, "the tap saw the traffic"
    stored = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())
    assert len(stored) > 0
    for form in _forms(MARKER):
        assert form not in wire, "marker visible on the wire"
        assert form not in stored, "marker in the relay's database, log or metadata log"
        assert form not in redis_dump, "marker in Redis"
