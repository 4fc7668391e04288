"""Attack machinery: image distortion metrics, evasion and collision against perceptual hashes.

Two families of method, named in every report:

* ``whitebox-linear`` (PDQ only): :mod:`research.pdq_linear` gives PDQ's coefficients as an exact linear
  function of the luma, so the smallest (L2) luma change that moves chosen coefficients across the median is
  solved in closed form. Evasion flips the bits closest to the median (balanced up/down so the median stays
  put) until the distance exceeds the threshold; collision pushes every disagreeing bit toward the target's
  side except the costliest few that the distance budget allows to stay wrong. A geometric search over the
  push size keeps the distortion small.
* ``blackbox-nes`` (any hasher, PDQ included): the attacker sees only hashes. The perturbation lives on a
  coarse grid (smooth, low-frequency, grey), is estimated with antithetic NES on the Hamming distance (the
  spirit of Jain et al. 2022 and Madden et al. 2024), and is bounded in L-infinity.

Success is judged only by the *oracle*: the project's real hasher applied to the image after it is saved as
PNG and decoded again (:func:`png_roundtrip`). Every oracle call counts as one query.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from research.pdq_linear import PdqLinear, bits_from_hash
from scanner.hashers.spec import PDQ

__all__ = [
    "AttackResult",
    "Oracle",
    "collide_whitebox",
    "distortion",
    "evade_blackbox",
    "evade_whitebox",
    "hamming_bytes",
    "png_roundtrip",
    "psnr",
    "ssim",
]

Oracle = Callable[[np.ndarray], tuple[bytes, int]]
"""uint8 HxWx3 image -> (hash bytes, quality), computed after a PNG save and reload."""


def png_roundtrip(rgb: np.ndarray) -> tuple[bytes, np.ndarray]:
    """Encode ``rgb`` as PNG and decode it again: (png bytes, decoded pixels)."""
    buf = io.BytesIO()
    img = Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8), "RGB")
    img.save(buf, format="PNG", compress_level=1)
    data = buf.getvalue()
    with Image.open(io.BytesIO(data)) as im:
        back = np.asarray(im.convert("RGB"))
    return data, back


def hamming_bytes(a: bytes, b: bytes) -> int:
    return int(np.unpackbits(np.bitwise_xor(np.frombuffer(a, np.uint8), np.frombuffer(b, np.uint8))).sum())


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB over all channels (inf when identical)."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(255.0**2 / mse)


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM of the luma (Wang et al. 2004: Gaussian window sigma 1.5, K1 = 0.01, K2 = 0.03)."""
    from scipy.ndimage import gaussian_filter

    w = np.array([0.299, 0.587, 0.114])
    x = a.astype(np.float64) @ w
    y = b.astype(np.float64) @ w
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2

    def g(z: np.ndarray) -> np.ndarray:
        return np.asarray(gaussian_filter(z, 1.5, truncate=3.5))

    mx, my = g(x), g(y)
    sxx, syy, sxy = g(x * x) - mx * mx, g(y * y) - my * my, g(x * y) - mx * my
    num = (2 * mx * my + c1) * (2 * sxy + c2)
    den = (mx * mx + my * my + c1) * (sxx + syy + c2)
    return float(np.mean(num / den))


def distortion(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """PSNR (dB), SSIM, L2 (per-pixel RMS over channels, 0-255 scale) and L-infinity of b - a."""
    d = a.astype(np.float64) - b.astype(np.float64)
    return {
        "psnr": psnr(a, b),
        "ssim": ssim(a, b),
        "l2": float(np.sqrt(np.mean(d * d))),
        "linf": float(np.abs(d).max()) if d.size else 0.0,
    }


@dataclass
class AttackResult:
    """Outcome of one attack on one image (after PNG save and reload)."""

    success: bool
    method: str
    queries: int
    distance_before: int
    distance_after: int
    quality_after: int
    image: np.ndarray
    metrics: dict[str, float] = field(default_factory=dict)
    png: bytes = b""
    note: str = ""

    def summary(self) -> dict[str, object]:
        return {
            "success": self.success,
            "method": self.method,
            "queries": self.queries,
            "distance_before": self.distance_before,
            "distance_after": self.distance_after,
            "quality_after": self.quality_after,
            **self.metrics,
            "note": self.note,
        }


def _apply_luma(rgb: np.ndarray, dy: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(rgb.astype(np.float64) + dy[:, :, None]), 0, 255).astype(np.uint8)


def _balanced_flip_set(margin: np.ndarray, n: int) -> np.ndarray:
    """Indices of n bits nearest the median, half from each side (keeps the median in place)."""
    above = np.where(margin > 0)[0]
    below = np.where(margin <= 0)[0]
    a = above[np.argsort(margin[above])][: (n + 1) // 2]
    b = below[np.argsort(-margin[below])][: n // 2]
    return np.concatenate([a, b])


def _refine_clipped(
    model: PdqLinear, x0: np.ndarray, target: np.ndarray, *, tol: float, iters: int = 6
) -> np.ndarray:
    """Move x0 so its coefficients reach ``target``, re-solving for the part lost to clipping/rounding."""
    x = x0
    base = x0.astype(np.float64)
    dy_total = np.zeros(x0.shape[:2])
    for _ in range(iters):
        resid = target - model.coefficients(x)
        if np.abs(resid).max() < tol:
            break
        dy_total = dy_total + model.luma_delta(resid)
        x = np.clip(np.rint(base + dy_total[:, :, None]), 0, 255).astype(np.uint8)
    return x


Trial = tuple[np.ndarray, int, int]
"""One attempted image: (pixels, Hamming distance, quality)."""


@dataclass
class _Queries:
    """The oracle calls spent on one image, against its budget; ``still_detected`` calls count too."""

    used: int
    limit: int
    still_detected: Callable[[np.ndarray], bool] | None = None

    def left(self) -> bool:
        return self.used < self.limit

    def evaded(self, x: np.ndarray) -> bool:
        """True unless ``still_detected`` says ``x`` is still detected (one query when asked)."""
        if self.still_detected is None:
            return True
        self.used += 1
        return not self.still_detected(x)


def _bisect_push(
    attempt: Callable[[float], Trial],
    succeeded: Callable[[Trial], bool],
    best: Trial,
    lo_fail: float,
    hi_ok: float,
    queries: _Queries,
) -> Trial:
    """Bisect the push between the largest failure and the smallest success (4 steps at most, within the
    budget): the successful trial with the smallest push."""
    for _ in range(4):
        if not queries.left():
            break
        mid = (lo_fail + hi_ok) / 2 if lo_fail > 0 else hi_ok / 2
        r = attempt(mid)
        queries.used += 1
        if succeeded(r):
            best, hi_ok = r, mid
        else:
            lo_fail = mid
    return best


@dataclass
class _LinearView:
    """PDQ's coefficients of one image through the exact linear model, with their median and the median
    distance to it (the unit of a push)."""

    model: PdqLinear
    c: np.ndarray
    med: float
    margin: np.ndarray
    scale: float

    @classmethod
    def of(cls, rgb: np.ndarray) -> _LinearView:
        model = PdqLinear(rgb.shape[0], rgb.shape[1])
        c = model.coefficients(rgb)
        med = float(np.median(c))
        margin = c - med
        return cls(model, c, med, margin, float(np.median(np.abs(margin))) or 1.0)

    def moved(self, rgb: np.ndarray, target: np.ndarray, *, iters: int = 6) -> np.ndarray:
        """``rgb`` with the smallest luma change that moves its coefficients to ``target``."""
        x0 = _apply_luma(rgb, self.model.luma_delta(target - self.c))
        return _refine_clipped(self.model, x0, target, tol=0.1 * self.scale, iters=iters)


def evade_whitebox(
    rgb: np.ndarray,
    oracle: Oracle,
    *,
    threshold: int = PDQ.match_distance,
    max_queries: int = 40,
    min_quality: int = PDQ.min_quality,
    extra_bits: int = 8,
    still_detected: Callable[[np.ndarray], bool] | None = None,
) -> AttackResult:
    """Push PDQ's hash of ``rgb`` more than ``threshold`` bits away with the smallest luma change found.

    Flips ``threshold + 1 + extra_bits`` bits nearest the median by a push ``delta`` (a fraction of the median
    coefficient margin), doubling ``delta`` until the oracle reports success, then bisects down to the
    smallest successful push. ``still_detected(image)`` (e.g. "the snapshot still matches"; each call counts
    as a query) adds a condition: while it holds, 16 more bits are flipped. If quality falls below
    ``min_quality`` the result is not counted as a success (the image would be skipped, not matched: a
    different evasion route, reported separately).
    """
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    h0, _q0 = oracle(rgb)
    lin = _LinearView.of(rgb)
    queries = _Queries(1, max_queries, still_detected)

    def attempt(nbits: int, delta: float) -> Trial:
        idx = _balanced_flip_set(lin.margin, nbits)
        target = lin.c.copy()
        target[idx] = lin.med - np.sign(lin.margin[idx]) * delta * lin.scale
        x = lin.moved(rgb, target)
        hh, q = oracle(x)  # PNG is lossless: hashing the uint8 pixels equals hashing the reloaded file
        return x, hamming_bytes(h0, hh), q

    best, nbits, delta, lo_fail = _grow_push(
        attempt, queries, min(255, threshold + 1 + extra_bits), threshold=threshold, min_quality=min_quality
    )
    if best is None:
        x, d, q = attempt(nbits, delta)
        note = "query budget exhausted"
        return AttackResult(False, "whitebox-linear", queries.used, 0, d, q, x, distortion(rgb, x), note=note)
    best = _bisect_push(  # bisect the push down toward the smallest success
        lambda push: attempt(nbits, push),
        lambda r: r[1] > threshold and r[2] >= min_quality and queries.evaded(r[0]),
        best,
        lo_fail,
        delta,
        queries,
    )
    return _judge_evasion(
        best[0], rgb, h0, oracle, queries.evaded, method="whitebox-linear", queries=queries.used,
        threshold=threshold, min_quality=min_quality, failure_note="lost after PNG save and reload",
    )


def _grow_push(
    attempt: Callable[[int, float], Trial], queries: _Queries, nbits: int, *, threshold: int, min_quality: int
) -> tuple[Trial | None, int, float, float]:
    """Double the push on ``nbits`` bits until the hash moves past ``threshold`` with the quality kept (16
    more bits when the push reaches 64, or when the hash moved but ``still_detected`` holds), within the
    budget: (the first success or None, bits flipped, its push, the last failed push)."""
    delta = 0.02
    lo_fail = 0.0
    while queries.left():
        x, d, q = attempt(nbits, delta)
        queries.used += 1
        if d > threshold and q >= min_quality:
            if queries.evaded(x):
                return (x, d, q), nbits, delta, lo_fail
            nbits = min(255, nbits + 16)  # far enough for PDQ, not yet for the snapshot: flip more bits
            continue
        lo_fail = delta
        delta *= 2.0
        if delta > 64:
            nbits = min(255, nbits + 16)
            delta = 0.02
    return None, nbits, delta, lo_fail


def _judge_evasion(
    candidate: np.ndarray,
    rgb: np.ndarray,
    h0: bytes,
    oracle: Oracle,
    evaded: Callable[[np.ndarray], bool],
    *,
    method: str,
    queries: int,
    threshold: int,
    min_quality: int,
    failure_note: str,
) -> AttackResult:
    """Save ``candidate`` as PNG, reload it and judge the evasion on what was written (one more query)."""
    png, back = png_roundtrip(candidate)
    hh, q = oracle(back)
    d = hamming_bytes(h0, hh)
    ok = d > threshold and q >= min_quality and evaded(back)
    return AttackResult(
        ok, method, queries + 1, 0, d, q, back, distortion(rgb, back),
        png=png, note="" if ok else failure_note,
    )


def collide_whitebox(
    source: np.ndarray,
    target_hash: bytes,
    oracle: Oracle,
    *,
    threshold: int = PDQ.match_distance,
    slack: int = 8,
    max_queries: int = 40,
    min_quality: int = PDQ.min_quality,
) -> AttackResult:
    """Perturb ``source`` until its PDQ hash is within ``threshold`` bits of ``target_hash``.

    All disagreeing bits are pushed to the target's side of the median except the ``threshold - slack``
    costliest ones (those furthest on the wrong side), which the distance budget lets stay wrong. The push
    grows geometrically until the oracle confirms, then is bisected down.
    """
    src = np.ascontiguousarray(source, dtype=np.uint8)
    lin = _LinearView.of(src)
    sign = np.where(bits_from_hash(target_hash), 1.0, -1.0)
    h_src, _ = oracle(src)
    d_before = hamming_bytes(h_src, target_hash)
    queries = 1
    leave = _costliest_wrong(lin.margin, sign, max(0, threshold - slack))

    def attempt(delta: float) -> Trial:
        push = delta * lin.scale
        target = lin.c.copy()
        for k in range(256):
            if k in leave:
                continue
            if sign[k] * lin.margin[k] < push:
                target[k] = lin.med + sign[k] * push
        x = lin.moved(src, target, iters=10)
        hh, q = oracle(x)  # lossless PNG: same pixels as the reloaded file (re-checked on it at the end)
        return x, hamming_bytes(hh, target_hash), q

    delta, lo_fail = 0.05, 0.0
    best: Trial | None = None
    last: Trial | None = None
    budget = _Queries(queries, max_queries)
    while budget.left() and delta <= 64:
        last = attempt(delta)
        budget.used += 1
        if last[1] <= threshold and last[2] >= min_quality:
            best = last
            break
        lo_fail, delta = delta, delta * 2.0
    if best is not None:
        best = _bisect_push(
            attempt, lambda r: r[1] <= threshold and r[2] >= min_quality, best, lo_fail, delta, budget
        )
    chosen = best or last
    return _judge_collision(
        src if chosen is None else chosen[0], src, target_hash, oracle, found=best is not None,
        queries=budget.used, d_before=d_before, threshold=threshold, min_quality=min_quality,
    )


def _costliest_wrong(margin: np.ndarray, sign: np.ndarray, keep_wrong: int) -> set[int]:
    """The ``keep_wrong`` bits furthest on the wrong side of the median (the costliest to fix)."""
    wrong = np.where(np.sign(margin) != sign)[0]
    order = wrong[np.argsort(-np.abs(margin[wrong]))]
    return set(order[:keep_wrong].tolist())


def _judge_collision(
    x: np.ndarray,
    src: np.ndarray,
    target_hash: bytes,
    oracle: Oracle,
    *,
    found: bool,
    queries: int,
    d_before: int,
    threshold: int,
    min_quality: int,
) -> AttackResult:
    """Save ``x`` as PNG, reload it and judge the collision on what was written (one more query)."""
    png, back = png_roundtrip(x)
    hh, q = oracle(back)
    d = hamming_bytes(hh, target_hash)
    ok = found and d <= threshold and q >= min_quality
    note = "" if ok else ("lost after PNG reload" if found else "no collision within the query budget")
    return AttackResult(
        ok, "whitebox-linear", queries + 1, d_before, d, q, back, distortion(src, back), png=png, note=note
    )


def _upsample(grid: np.ndarray, h: int, w: int) -> np.ndarray:
    im = Image.fromarray(grid.astype(np.float32), mode="F")
    return np.asarray(im.resize((w, h), Image.Resampling.BICUBIC), dtype=np.float64)


def evade_blackbox(
    rgb: np.ndarray,
    oracle: Oracle,
    *,
    threshold: int,
    max_queries: int = 400,
    seed: int = 0,
    grid: int = 16,
    eps: float = 12.0,
    samples: int = 10,
    sigma: float = 0.5,
    lr: float = 0.25,
    min_quality: int = PDQ.min_quality,
    still_detected: Callable[[np.ndarray], bool] | None = None,
) -> AttackResult:
    """Hash-only evasion: antithetic NES over a ``grid`` x ``grid`` grey perturbation bounded by ``eps``.

    Maximises the Hamming distance to the original hash; stops at the first image whose distance exceeds
    ``threshold`` with quality >= ``min_quality``. Works for any hasher (the oracle hides which).
    """
    rng = np.random.default_rng(seed)
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    h, w = rgb.shape[:2]
    h0, _ = oracle(rgb)
    queries = _Queries(1, max_queries, still_detected)
    theta = np.zeros((grid, grid))

    def image_of(t: np.ndarray) -> np.ndarray:
        pert = _upsample(np.tanh(t) * eps, h, w)
        return _apply_luma(rgb, pert)

    def score(t: np.ndarray) -> tuple[int, int, np.ndarray]:
        x = image_of(t)
        hh, q = oracle(x)  # lossless PNG: the uint8 pixels are what a reload gives (re-checked at the end)
        return hamming_bytes(h0, hh), q, x

    best_d, best_x = 0, rgb
    done = False
    while queries.used + 2 * samples + 1 <= max_queries and not done:
        grad = np.zeros_like(theta)
        for _ in range(samples):
            u = rng.standard_normal(theta.shape)
            dp, qp, xp = score(theta + sigma * u)
            dm, qm, xm = score(theta - sigma * u)
            queries.used += 2
            for d, q, x in ((dp, qp, xp), (dm, qm, xm)):
                if d > best_d and q >= min_quality:
                    best_d, best_x = d, x
                    if d > threshold and queries.evaded(x):
                        done = True
            grad += (dp - dm) * u
        if done:
            break
        norm = max(1.0, float(np.abs(grad).max()) / (2 * samples))
        theta = theta + lr * grad / (2 * samples * sigma) / norm
        d, q, x = score(theta)
        queries.used += 1
        if d > best_d and q >= min_quality:
            best_d, best_x = d, x
            if d > threshold and queries.evaded(x):
                done = True
    return _judge_evasion(
        best_x, rgb, h0, oracle, queries.evaded, method="blackbox-nes", queries=queries.used,
        threshold=threshold, min_quality=min_quality,
        failure_note=f"best distance {best_d} within {max_queries} queries",
    )
