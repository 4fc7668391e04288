"""Vectorised Hamming distances against a plain Python reference."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scanner.hamming import distance_matrix, distances_to_many, hamming, pack_hashes, popcount


def _slow(a: bytes, b: bytes) -> int:
    return sum(bin(x ^ y).count("1") for x, y in zip(a, b, strict=True))


def test_hamming_basic():
    assert hamming(bytes(32), bytes(32)) == 0
    assert hamming(bytes(32), b"\xff" * 32) == 256
    assert hamming(b"\x01" + bytes(7), bytes(8)) == 1
    with pytest.raises(ValueError):
        hamming(bytes(8), bytes(32))


def test_popcount_every_byte():
    values = np.arange(256, dtype=np.uint8)
    assert popcount(values).tolist() == [bin(v).count("1") for v in range(256)]


@settings(max_examples=30, deadline=None)
@given(
    bank=st.lists(st.binary(min_size=32, max_size=32), min_size=1, max_size=20),
    query=st.binary(min_size=32, max_size=32),
)
def test_one_to_many_matches_python(bank, query):
    got = distances_to_many(query, pack_hashes(bank))
    assert got.tolist() == [_slow(query, h) for h in bank]


def test_matrix_matches_python_and_blocks():
    rng = np.random.default_rng(5)
    a = rng.integers(0, 256, (37, 32), dtype=np.uint8)
    b = rng.integers(0, 256, (23, 32), dtype=np.uint8)
    expected = [[_slow(x.tobytes(), y.tobytes()) for y in b] for x in a]
    assert distance_matrix(a, b).tolist() == expected
    assert distance_matrix(a, b, block=1).tolist() == expected  # tiny blocks: same answer
    assert distance_matrix(a, b).shape == (37, 23)


def test_shapes_and_errors():
    assert pack_hashes([]).shape == (0, 0)
    assert distances_to_many(bytes(8), np.zeros((0, 8), dtype=np.uint8)).shape == (0,)
    with pytest.raises(ValueError):
        pack_hashes([bytes(8), bytes(32)])
    with pytest.raises(ValueError):
        distances_to_many(bytes(8), np.zeros((3, 32), dtype=np.uint8))
    with pytest.raises(ValueError):
        distance_matrix(np.zeros((2, 8), dtype=np.uint8), np.zeros((2, 32), dtype=np.uint8))
