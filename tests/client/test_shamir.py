"""Shamir sharing over a prime field: the published textbook vector, pitfalls refused, properties."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from client.vouchers.shamir import (
    PRIME,
    Share,
    ShareError,
    combine,
    decode_with_errors,
    element_from_bytes,
    element_to_bytes,
    evaluate,
    split,
)

# Wikipedia, "Shamir's secret sharing", worked example: p = 1613, s = 1234, f(x) = 1234 + 166x + 94x^2.
WIKI_PRIME = 1613
WIKI_SHARES = [(1, 1494), (2, 329), (3, 965), (4, 176), (5, 1188), (6, 775)]


def test_published_vector_split() -> None:
    shares = split(1234, 3, range(1, 7), [166, 94], prime=WIKI_PRIME)
    assert [(s.x, s.y) for s in shares] == WIKI_SHARES


def test_published_vector_every_three_shares_combine() -> None:
    points = [Share(x, y) for x, y in WIKI_SHARES]
    for subset in itertools.combinations(points, 3):
        assert combine(list(subset), 3, prime=WIKI_PRIME) == 1234


def test_published_vector_two_shares_fit_every_secret() -> None:
    """t - 1 shares reveal nothing: with any candidate secret they define a valid 3-of-n sharing."""
    a, b = Share(*WIKI_SHARES[0]), Share(*WIKI_SHARES[1])
    for candidate in (0, 1, 1234, 1612):
        third = _value_with_secret([a, b], candidate, 7, prime=WIKI_PRIME)
        assert combine([a, b, Share(7, third)], 3, prime=WIKI_PRIME) == candidate


@pytest.mark.parametrize("bad", [
    [Share(0, 5), Share(1, 6)],
    [Share(1, 5), Share(1, 6)],
    [Share(1, PRIME), Share(2, 6)],
    [Share(-1, 5), Share(2, 6)],
])
def test_pitfalls_refused(bad: list[Share]) -> None:
    with pytest.raises(ShareError):
        combine(bad, 2)


def test_split_refuses_index_zero_duplicates_and_wrong_coefficient_count() -> None:
    with pytest.raises(ShareError):
        split(5, 2, [0, 1], [3])
    with pytest.raises(ShareError):
        split(5, 2, [1, 1], [3])
    with pytest.raises(ShareError):
        split(5, 3, [1, 2], [3])
    with pytest.raises(ShareError):
        combine([Share(1, 2)], 2)


def test_element_encoding_bounds() -> None:
    assert element_from_bytes(element_to_bytes(PRIME - 1)) == PRIME - 1
    with pytest.raises(ShareError):
        element_from_bytes(PRIME.to_bytes(32, "big"))
    with pytest.raises(ShareError):
        element_from_bytes(b"\x01" * 31)


elements = st.integers(min_value=0, max_value=PRIME - 1)
indices = st.integers(min_value=1, max_value=PRIME - 1)


@settings(max_examples=60, deadline=None)
@given(secret=elements, threshold=st.integers(1, 8), extra=st.integers(0, 4), data=st.data())
def test_any_t_shares_reconstruct(secret: int, threshold: int, extra: int, data: st.DataObject) -> None:
    coefficients = data.draw(st.lists(elements, min_size=threshold - 1, max_size=threshold - 1))
    xs = data.draw(st.lists(indices, min_size=threshold + extra, max_size=threshold + extra, unique=True))
    shares = split(secret, threshold, xs, coefficients)
    chosen = data.draw(st.permutations(shares))[:threshold]
    assert combine(chosen, threshold) == secret


@settings(max_examples=60, deadline=None)
@given(secret=elements, other=elements, threshold=st.integers(2, 8), data=st.data())
def test_t_minus_one_shares_fit_any_secret(secret: int, other: int, threshold: int,
                                           data: st.DataObject) -> None:
    """Perfect secrecy, constructively: t - 1 shares plus (0, other) define a valid polynomial."""
    coefficients = data.draw(st.lists(elements, min_size=threshold - 1, max_size=threshold - 1))
    xs = data.draw(st.lists(indices, min_size=threshold - 1, max_size=threshold - 1, unique=True))
    shares = split(secret, threshold, xs, coefficients)
    fake_x = data.draw(indices.filter(lambda x: x not in xs))
    target_y = _value_with_secret(shares, other, fake_x)
    assert combine([*shares, Share(fake_x, target_y)], threshold) == other


def _value_with_secret(points: list[Share], secret: int, at: int, *, prime: int = PRIME) -> int:
    """f(at) for the polynomial through ``points`` and (0, secret) (Lagrange with x=0 as a node)."""
    total = 0
    nodes = [(0, secret), *((p.x, p.y) for p in points)]
    for j, (xj, yj) in enumerate(nodes):
        num, den = 1, 1
        for m, (xm, _) in enumerate(nodes):
            if m != j:
                num = num * (at - xm) % prime
                den = den * (xj - xm) % prime
        total = (total + yj * num * pow(den, -1, prime)) % prime
    return total


@settings(max_examples=40, deadline=None)
@given(threshold=st.integers(1, 6), n_extra=st.integers(0, 8), data=st.data())
def test_berlekamp_welch_corrects_up_to_half_the_excess(threshold: int, n_extra: int,
                                                        data: st.DataObject) -> None:
    coefficients = data.draw(st.lists(elements, min_size=threshold, max_size=threshold))
    n = threshold + n_extra
    xs = data.draw(st.lists(indices, min_size=n, max_size=n, unique=True))
    points = [Share(x, evaluate(coefficients, x)) for x in xs]
    errors = data.draw(st.integers(0, n_extra // 2))
    for i in range(errors):
        points[i] = Share(points[i].x, (points[i].y + 1 + i) % PRIME)
    assert decode_with_errors(points, threshold) == coefficients
