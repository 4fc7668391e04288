"""Shamir t-of-n secret sharing over a prime field (pure; integers in, integers out).

A secret ``s`` is the constant term of a polynomial ``f`` of degree ``t - 1`` over GF(p); a share is
a point ``(x, f(x))`` with ``x`` in ``1 .. p - 1``. Any ``t`` shares with distinct ``x`` give ``f(0)``
back by Lagrange interpolation; ``t - 1`` shares say nothing about ``s`` (every secret fits them
equally well).

The field is GF(2^255 - 19) by default (a well-known prime just below 2^255, so a 32-byte share
holds any element). Functions take ``prime=`` so tests can check the textbook example over
GF(1613) (Wikipedia, "Shamir's secret sharing", worked example).

The classic pitfalls are refused here, with :class:`ShareError`: ``x = 0`` (that share *is* the
secret), two shares with the same ``x`` (interpolation divides by zero, or, with different ``y``,
silently yields garbage), values outside the field, too few shares, and a threshold below 1.
Authenticating the result is the caller's job (a forged ``y`` gives a wrong secret, not an error):
``client.vouchers.voucher`` checks a key commitment after every reconstruction.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = [
    "PRIME",
    "SHARE_BYTES",
    "Share",
    "ShareError",
    "combine",
    "decode_with_errors",
    "element_from_bytes",
    "element_to_bytes",
    "evaluate",
    "interpolate_at",
    "split",
]

PRIME = 2**255 - 19
"""The default field: GF(2^255 - 19)."""
SHARE_BYTES = 32
"""Bytes of one field element in the wire encoding (big-endian)."""


class ShareError(ValueError):
    """Shares or parameters that cannot be used (index 0, duplicate index, out of the field, too few)."""


@dataclass(frozen=True)
class Share:
    """One point ``(x, y)`` of the sharing polynomial."""

    x: int
    y: int


def _check_element(value: int, prime: int, what: str) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < prime:
        raise ShareError(f"{what} is not an element of the field")


def evaluate(coefficients: Sequence[int], x: int, *, prime: int = PRIME) -> int:
    """``f(x)`` for ``f = c[0] + c[1] x + ... `` (Horner's rule)."""
    acc = 0
    for c in reversed(coefficients):
        acc = (acc * x + c) % prime
    return acc


def split(secret: int, threshold: int, xs: Iterable[int], coefficients: Sequence[int], *,
          prime: int = PRIME) -> list[Share]:
    """Shares of ``secret`` at the points ``xs``.

    ``coefficients`` are ``c[1] .. c[t-1]`` (exactly ``threshold - 1`` of them, uniformly random in
    the field, or derived by a PRF as the voucher key schedule does): the caller owns randomness so
    that this module stays pure.
    """
    if threshold < 1:
        raise ShareError("the threshold must be at least 1")
    if len(coefficients) != threshold - 1:
        raise ShareError(f"a {threshold}-of-n sharing needs {threshold - 1} random coefficients")
    _check_element(secret, prime, "the secret")
    for i, c in enumerate(coefficients):
        _check_element(c, prime, f"coefficient {i + 1}")
    poly = [secret, *coefficients]
    shares: list[Share] = []
    seen: set[int] = set()
    for x in xs:
        _check_element(x, prime, "a share index")
        if x == 0:
            raise ShareError("share index 0 would reveal the secret")
        if x in seen:
            raise ShareError("duplicate share index")
        seen.add(x)
        shares.append(Share(x, evaluate(poly, x, prime=prime)))
    return shares


def _validated(shares: Sequence[Share], prime: int) -> list[Share]:
    out: list[Share] = []
    seen: set[int] = set()
    for s in shares:
        _check_element(s.x, prime, "a share index")
        _check_element(s.y, prime, "a share value")
        if s.x == 0:
            raise ShareError("share index 0 is not a valid share")
        if s.x in seen:
            raise ShareError("duplicate share index")
        seen.add(s.x)
        out.append(s)
    return out


def interpolate_at(shares: Sequence[Share], x: int, *, prime: int = PRIME) -> int:
    """The value at ``x`` of the unique polynomial of degree ``len(shares) - 1`` through ``shares``."""
    points = _validated(shares, prime)
    if not points:
        raise ShareError("no shares to interpolate")
    total = 0
    for j, pj in enumerate(points):
        num = 1
        den = 1
        for m, pm in enumerate(points):
            if m != j:
                num = num * (x - pm.x) % prime
                den = den * (pj.x - pm.x) % prime
        total = (total + pj.y * num * pow(den, -1, prime)) % prime
    return total


def combine(shares: Sequence[Share], threshold: int, *, prime: int = PRIME) -> int:
    """The secret ``f(0)`` from exactly ``threshold`` shares (more or fewer is an error).

    Passing exactly ``threshold`` shares keeps the meaning clear: with more, a single wrong share
    would shift the result of a higher-degree interpolation instead of being left out.
    """
    if threshold < 1:
        raise ShareError("the threshold must be at least 1")
    if len(shares) != threshold:
        raise ShareError(f"{threshold} shares are needed, {len(shares)} given")
    return interpolate_at(shares, 0, prime=prime)


def element_to_bytes(value: int, *, prime: int = PRIME) -> bytes:
    """Big-endian fixed-width encoding of a field element."""
    _check_element(value, prime, "the value")
    return value.to_bytes(SHARE_BYTES, "big")


def element_from_bytes(data: bytes, *, prime: int = PRIME) -> int:
    """Decode a field element, refusing wrong lengths and values at or above the prime."""
    if len(data) != SHARE_BYTES:
        raise ShareError(f"a field element is {SHARE_BYTES} bytes, not {len(data)}")
    value = int.from_bytes(data, "big")
    _check_element(value, prime, "the encoded value")
    return value


def _solve(rows: list[list[int]], prime: int) -> list[int] | None:
    """One solution of the augmented linear system ``rows`` over GF(prime) (free variables 0), or None."""
    m = [r[:] for r in rows]
    n_vars = len(m[0]) - 1
    pivots: list[int] = []
    r = 0
    for c in range(n_vars):
        pivot = next((i for i in range(r, len(m)) if m[i][c] % prime), None)
        if pivot is None:
            continue
        m[r], m[pivot] = m[pivot], m[r]
        inv = pow(m[r][c], -1, prime)
        m[r] = [v * inv % prime for v in m[r]]
        for i in range(len(m)):
            if i != r and m[i][c]:
                f = m[i][c]
                m[i] = [(a - f * b) % prime for a, b in zip(m[i], m[r], strict=True)]
        pivots.append(c)
        r += 1
        if r == len(m):
            break
    if any(all(v == 0 for v in row[:-1]) and row[-1] for row in m[r:]):
        return None
    solution = [0] * n_vars
    for i, c in enumerate(pivots):
        solution[c] = m[i][-1]
    return solution


def decode_with_errors(shares: Sequence[Share], threshold: int, *, prime: int = PRIME) -> list[int] | None:
    """Berlekamp-Welch: the polynomial of degree < ``threshold`` through all but at most
    ``(n - threshold) // 2`` of the ``n`` shares, as coefficients ``[c0, c1, ...]``; None if none exists.

    This finds the sharing polynomial when some shares are wrong (synthetic or forged) without
    trying every subset, provided the good shares are at least ``(n + threshold) / 2``. The result
    is only a candidate: the caller authenticates ``c0`` (the voucher book checks the key commitment).
    """
    points = _validated(shares, prime)
    n = len(points)
    if threshold < 1 or n < threshold:
        return None
    e = (n - threshold) // 2
    n_q = e + threshold
    rows = []
    for pt in points:
        row = [pow(pt.x, j, prime) for j in range(n_q)]
        row += [(-pt.y * pow(pt.x, j, prime)) % prime for j in range(e)]
        row.append(pt.y * pow(pt.x, e, prime) % prime)
        rows.append(row)
    sol = _solve(rows, prime)
    if sol is None:
        return None
    q = sol[:n_q]
    err = [*sol[n_q:], 1]  # monic error locator
    # polynomial long division q / err (err is monic)
    rem = q[:]
    quot = [0] * max(1, len(q) - e)
    for i in range(len(q) - 1, e - 1, -1):
        coef = rem[i]
        if coef:
            quot[i - e] = coef
            for j in range(e + 1):
                rem[i - e + j] = (rem[i - e + j] - coef * err[j]) % prime
    if any(rem[:e]) or any(quot[threshold:]):
        return None
    coefficients = quot[:threshold] + [0] * (threshold - len(quot[:threshold]))
    agree = sum(1 for pt in points if evaluate(coefficients, pt.x, prime=prime) == pt.y)
    if agree < n - e:
        return None
    return coefficients
