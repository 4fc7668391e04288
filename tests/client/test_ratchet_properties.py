"""Property tests (hypothesis) over whole sessions: any interleaving, loss and reordering within
MAX_SKIP decrypts exactly once; replays, tampering and truncation are refused and leave the session usable.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from client.crypto.identity import IdentityKeyPair
from client.crypto.x3dh import PreKeyState
from client.errors import CryptoError, DuplicateMessage
from client.session import SessionRecord, decrypt_message, initiate_session

SETTINGS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@dataclass
class Party:
    identity: IdentityKeyPair
    prekeys: PreKeyState
    record: SessionRecord | None = None
    received: list[bytes] = field(default_factory=list)


def make_parties(seed: int) -> tuple[Party, Party]:
    r = random.Random(seed)
    a_id, b_id = IdentityKeyPair.generate(r.randbytes), IdentityKeyPair.generate(r.randbytes)
    alice = Party(a_id, PreKeyState.create(a_id, 0.0, one_time_count=1, rng=r.randbytes))
    bob = Party(b_id, PreKeyState.create(b_id, 0.0, one_time_count=2, rng=r.randbytes))
    alice.record = initiate_session(a_id, bob.prekeys.bundle(b_id.public, 1), account_id=b_id.account_id,
                                    rng=r.randbytes)
    return alice, bob


def deliver(sender: Party, receiver: Party, payload: bytes) -> bytes:
    d = decrypt_message(receiver.identity, receiver.prekeys, receiver.record, payload,
                        sender_account_id=sender.identity.account_id)
    receiver.record = d.record
    receiver.received.append(d.plaintext)
    return d.plaintext


def snapshot(p: Party) -> tuple[bytes | None, bytes]:
    return (None if p.record is None else p.record.to_bytes(), p.prekeys.to_bytes())


# An operation: ("send", who) | ("deliver", index into in-flight) | ("drop", index) | ("replay", index)
ops_strategy = st.lists(
    st.one_of(
        st.tuples(st.just("send"), st.sampled_from(["alice", "bob"])),
        st.tuples(st.just("deliver"), st.integers(0, 50)),
        st.tuples(st.just("drop"), st.integers(0, 50)),
        st.tuples(st.just("replay"), st.integers(0, 50)),
        st.tuples(st.just("tamper"), st.integers(0, 50)),
    ),
    max_size=40,
)


@SETTINGS
@given(ops=ops_strategy, seed=st.integers(0, 2**16), flip=st.integers(0, 10_000), mask=st.integers(1, 255))
def test_any_interleaving_decrypts_exactly_once(ops: list[tuple[str, object]], seed: int, flip: int,
                                                mask: int) -> None:
    alice, bob = make_parties(seed)
    parties = {"alice": alice, "bob": bob}
    other = {"alice": "bob", "bob": "alice"}
    in_flight: list[tuple[str, bytes, bytes]] = []  # (sender, plaintext, payload)
    delivered: list[tuple[str, bytes, bytes]] = []
    sent: dict[str, list[bytes]] = {"alice": [], "bob": []}
    dropped: set[bytes] = set()
    counter = 0

    def do_deliver(item: tuple[str, bytes, bytes]) -> None:
        who, plaintext, payload = item
        assert deliver(parties[who], parties[other[who]], payload) == plaintext
        delivered.append(item)

    for op, arg in ops:
        if op == "send":
            who = str(arg)
            p = parties[who]
            if p.record is None:  # Bob cannot speak before Alice's first message arrives
                continue
            counter += 1
            plaintext = f"{who}-{counter}".encode()
            in_flight.append((who, plaintext, p.record.encrypt(plaintext)))
            sent[who].append(plaintext)
        elif op in ("deliver", "drop", "tamper") and in_flight:
            assert isinstance(arg, int)
            item = in_flight[arg % len(in_flight)]
            if op == "tamper":
                who, _, payload = item
                receiver = parties[other[who]]
                pos = flip % len(payload)
                bad = payload[:pos] + bytes([payload[pos] ^ mask]) + payload[pos + 1:]
                for corrupt in (bad, payload[:pos]):  # flipped byte, truncated
                    before = snapshot(receiver)
                    try:
                        deliver(parties[who], receiver, corrupt)
                    except CryptoError:
                        pass
                    else:
                        raise AssertionError("a tampered or truncated message was accepted")
                    assert snapshot(receiver) == before
                continue
            in_flight.remove(item)
            if op == "deliver":
                do_deliver(item)
            else:
                dropped.add(item[1])
        elif op == "replay" and delivered:
            assert isinstance(arg, int)
            who, _, payload = delivered[arg % len(delivered)]
            receiver = parties[other[who]]
            before = snapshot(receiver)
            try:
                deliver(parties[who], receiver, payload)
            except DuplicateMessage:
                pass
            else:
                raise AssertionError("a replayed message was accepted twice")
            assert snapshot(receiver) == before

    # Everything not dropped eventually arrives, in a shuffled order.
    random.Random(seed).shuffle(in_flight)
    for item in in_flight:
        do_deliver(item)
    for who in ("alice", "bob"):
        got = sorted(parties[other[who]].received)
        expected = sorted(m for m in sent[who] if m not in dropped)
        got_from_who = sorted(m for m in got if m.startswith(who.encode()))
        assert got_from_who == expected  # each exactly once, none invented
    # And the session still works both ways afterwards.
    if bob.record is not None:
        assert deliver(alice, bob, alice.record.encrypt(b"final-a")) == b"final-a"  # type: ignore[union-attr]
        assert deliver(bob, alice, bob.record.encrypt(b"final-b")) == b"final-b"


@settings(max_examples=80, deadline=None)
@given(gaps=st.lists(st.integers(0, 45), min_size=1, max_size=8), seed=st.integers(0, 2**16),
       late=st.lists(st.integers(0, 400), max_size=6))
def test_skips_beyond_max_skip_are_refused_and_caps_hold(gaps: list[int], seed: int, late: list[int]) -> None:
    """With small caps (MAX_SKIP=30, 10 stored): jumps over the cap are refused without changing
    state; every message within it decrypts once; late messages decrypt iff their key is still stored.
    """
    import pytest

    from client.crypto import ratchet as rmod
    from client.crypto.curve import generate_keypair
    from client.crypto.ratchet import RatchetState
    from client.errors import DecryptionFailed, TooFarAhead

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(rmod, "MAX_SKIP", 30)
        mp.setattr(rmod, "MAX_STORED_SKIPPED", 10)
        r = random.Random(seed)
        spk = generate_keypair(r.randbytes)
        alice = RatchetState.init_initiator(b"k" * 32, b"ad", spk.public, rng=r.randbytes)
        bob = RatchetState.init_responder(b"k" * 32, b"ad", spk)
        sent: list[tuple[object, bytes, bytes]] = []
        opened: set[int] = set()
        for gap in gaps:
            start = len(sent)
            for i in range(gap + 1):
                h, c = alice.encrypt(b"%d" % (start + i))
                sent.append((h, c, b"%d" % (start + i)))
            h, c, p = sent[-1]
            before = bob.to_bytes()
            would_skip = len(sent) - 1 - (max(opened) + 1 if opened else 0)
            if would_skip > 30:
                with pytest.raises(TooFarAhead):
                    bob.decrypt(h, c)  # type: ignore[arg-type]
                assert bob.to_bytes() == before
                # Deliver an earlier one inside the window so the session moves on.
                idx = (max(opened) + 1 if opened else 0) + 30
                h, c, p = sent[idx]
                assert bob.decrypt(h, c) == p  # type: ignore[arg-type]
                opened.add(idx)
            else:
                assert bob.decrypt(h, c) == p  # type: ignore[arg-type]
                opened.add(len(sent) - 1)
            assert len(bob.skipped) <= 10
        for k in late:
            idx = k % len(sent)
            h, c, p = sent[idx]
            stored = (h.dh, h.n) in bob.skipped  # type: ignore[attr-defined]
            nr = max(opened) + 1
            if stored or nr <= idx <= nr + 30:  # a kept skipped key, or ahead within MAX_SKIP
                assert bob.decrypt(h, c) == p  # type: ignore[arg-type]
                opened.add(idx)
            else:
                before = bob.to_bytes()
                with pytest.raises(DecryptionFailed):
                    bob.decrypt(h, c)  # type: ignore[arg-type]
                assert bob.to_bytes() == before
        # Still usable both ways.
        h, c = alice.encrypt(b"after")
        if (h.n - (max(opened) + 1)) <= 30:
            assert bob.decrypt(h, c) == b"after"
            assert alice.decrypt(*bob.encrypt(b"back")) == b"back"
