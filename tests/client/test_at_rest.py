"""At rest: sealed media, authenticated settings, the migration of older profiles, the content schema."""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import cbor2
import pytest

from client.config import SettingsTampered
from client.content import ContentInvalid, decode_content_map, expected_blob_size
from client.core import SETTINGS_MAC, Core
from client.crypto.attachments import AttachmentPointer, _seal
from client.demo.world import AuthorityIdentity, make_profile
from client.locations import Profile
from client.media_store import MediaError, MediaStore
from client.session import Content
from client.store import MessageRecord

REPO = Path(__file__).resolve().parents[2]
COFFEE = REPO / "samples" / "coffee.jpg"
PEER = "b" * 32


def _profile(tmp: Path) -> Core:
    return make_profile(tmp, "me", relay="ws://127.0.0.1:9", authority=AuthorityIdentity.generate())


def test_sealed_media_round_trip_and_tamper(tmp_path: Path) -> None:
    media = MediaStore(tmp_path / "media", bytes(range(32)))
    ref = media.put(COFFEE.read_bytes())
    sealed = media.path(ref).read_bytes()
    assert COFFEE.read_bytes()[1000:1064] not in sealed
    assert media.get(ref) == COFFEE.read_bytes()
    other = media.put(b"other image")
    media.path(other).write_bytes(sealed)  # a file moved onto another name does not open
    with pytest.raises(MediaError):
        media.get(other)
    with pytest.raises(MediaError):
        media.path("../snapshot")


def test_old_profile_media_and_settings_are_migrated(tmp_path: Path) -> None:
    core = _profile(tmp_path)
    media_dir = core.profile.media_dir
    legacy = media_dir / "0123abcd.jpg"
    legacy.write_bytes(COFFEE.read_bytes())
    outside = tmp_path / "not-mine.jpg"
    outside.write_bytes(b"someone else's file")
    ptr = AttachmentPointer("a" * 32, bytes(64), bytes(32), 10, "image/jpeg", 600, 400)
    core.store.contacts.add(PEER, now=0.0)
    core.store.messages.add(MessageRecord("old", PEER, "in", "image", 1.0, "received", attachment=ptr,
                                         local_path=str(legacy)))
    core.store.messages.add(MessageRecord("evil", PEER, "in", "image", 2.0, "received", attachment=ptr,
                                         local_path=str(outside)))
    core.store.settings.set("media_sealed", False)
    core.store.settings.set(SETTINGS_MAC, False)
    raw = json.loads(core.profile.settings_file.read_text())
    raw.pop("mac")
    core.profile.settings_file.write_text(json.dumps(raw))  # as an older pocketscan wrote it
    core.close()

    core = Core.open(Profile(tmp_path / "me"))
    try:
        assert not legacy.exists() and outside.read_bytes() == b"someone else's file"
        assert core.image_bytes("old") == COFFEE.read_bytes()
        assert core.image_bytes("evil") is None  # never read from outside the media folder
        assert all(p.name.endswith(".sealed") for p in media_dir.iterdir())
        assert "mac" in json.loads(core.profile.settings_file.read_text())
    finally:
        core.close()
    raw = json.loads((tmp_path / "me" / "settings.json").read_text())
    raw["policy"] = "off"
    (tmp_path / "me" / "settings.json").write_text(json.dumps(raw))
    with pytest.raises(SettingsTampered):
        Core.open(Profile(tmp_path / "me"))


def test_set_policy_keeps_the_settings_authenticated(tmp_path: Path) -> None:
    import asyncio

    core = _profile(tmp_path)
    asyncio.run(core.set_policy("report"))
    core.close()
    core = Core.open(Profile(tmp_path / "me"))
    assert core.settings.policy == "report"
    core.close()


def _raw(**over: object) -> bytes:
    d: dict[str, object] = {"v": 1, "k": "text", "id": "abc", "t": 1.0, "text": "hi"}
    d.update(over)
    return bytes(cbor2.dumps(d))


@pytest.mark.parametrize("over", [
    {"id": "../x"}, {"id": "a b"}, {"id": "x" * 65}, {"id": ""}, {"text": "x" * (64 * 1024 + 1)},
    {"text": b"bytes"}, {"t": float("nan")}, {"t": 10**5000}, {"k": "video"}, {"extra": 1},
    {"id": datetime.datetime(2030, 1, 1, tzinfo=datetime.UTC)}, {"rcpt": ["ok"] * 257},
])
def test_content_schema_refuses(over: dict[str, object]) -> None:
    with pytest.raises(ContentInvalid):
        decode_content_map(_raw(**over))


@pytest.mark.parametrize("att", [
    {"blob_id": "z" * 65}, {"blob_id": "../../etc"}, {"width": 10**5000}, {"width": 0}, {"height": 65_536},
    {"content_type": "text/html"}, {"size": 0}, {"size": 20 * 1024 * 1024 + 1}, {"key": b"short"},
])
def test_pointer_schema_refuses(att: dict[str, object]) -> None:
    pointer = _seal(b"x" * 100, "image/png", 10, 10, "blob1", lambda n: bytes(n)).pointer.to_dict()
    pointer.update(att)
    with pytest.raises(ContentInvalid):
        decode_content_map(bytes(cbor2.dumps({"v": 1, "k": "image", "id": "abc", "t": 1.0, "att": pointer})))


def test_genuine_content_passes_and_blob_size_is_exact() -> None:
    sealed = _seal(b"y" * 12_345, "image/jpeg", 640, 480, "Blob_ID-1", lambda n: bytes(n))
    content = Content("image", "abc123", 1.0, attachment=sealed.pointer)
    assert Content.from_bytes(content.to_bytes()).attachment == sealed.pointer
    assert expected_blob_size(12_345) == len(sealed.blob)
    for size in (1, 15, 16, 541, 542, 10_000, 1_000_000):
        assert expected_blob_size(size) == len(_seal(bytes(size), "image/png", None, None, "b", bytes).blob)
