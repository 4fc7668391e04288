"""A learned perceptual hash: an ONNX embedding network, then hyperplane LSH (NeuralHash-style).

Pipeline for one image:

1. Resize the whole RGB image to the model's input size (Pillow, resampling filter from the sidecar),
   scale pixels to the sidecar's range (``range: [lo, hi]``, or ``mean``/``std`` after dividing by 255),
   lay out as NCHW (or NHWC) float32.
2. Run the model with onnxruntime (one cached session per model file and provider list per process; CPU
   provider by default, ``providers="auto"`` takes every provider the installed onnxruntime offers) and
   take the named output (or the first one) as a flat embedding of ``D`` floats.
3. Project on the seed matrix of hyperplanes (``bits x D``, float64 arithmetic) and keep the signs: bit
   ``i`` is 1 when the ``i``-th projection is ``>= 0``. Bit 0 is the most significant bit of the hex,
   which is the convention of the public NeuralHash tooling (``anishathalye/neural-hash-collider``), so
   an exported NeuralHash model with its 96x128 seed gives the same hex as those scripts.

Batches are split into fixed-size chunks (``batch_size`` in the sidecar, padded with zeros), so an image
gets bit-identical embeddings whatever the number of images hashed with it.

**Quality.** The model does not rate its input, so :class:`OnnxHasher` reports PDQ's flatness measure,
computed on a 64x64 luma thumbnail (Pillow box filter): the sum of absolute neighbour differences scaled
by 100/255, divided by 90, capped at 100. Flat and near-flat images, which every perceptual hash maps to
near-identical codes, therefore score low and are gated like PDQ (:data:`ONNX_MIN_QUALITY` = 50).

**Sidecar.** A JSON file beside the model (``model.json`` or ``model.onnx.json``)::

    {"name": "neuralhash", "input_size": [360, 360], "range": [-1, 1], "resample": "bicubic",
     "batch_size": 1, "output_name": null, "match_distance": null}

(``bicubic`` is Pillow's default ``resize`` filter, which the NeuralHash scripts use.)
Keys: ``input_size`` (required, ``[height, width]``), ``range`` or ``mean``/``std`` (default ``range``
``[0, 1]``), ``layout`` (``NCHW``), ``resample`` (``bilinear``, ``bicubic``, ``lanczos``, ``box``,
``nearest``), ``reducing_gap`` (Pillow's; default none, i.e. an exact antialiased resize),
``input_name``/``output_name`` (default: the first), ``batch_size`` (chunk size; a model with a fixed
batch dimension forces it), ``seed`` (a seed file relative to the sidecar, used when no seed is given),
``bits`` (default: every row of the seed), ``match_distance`` (the Hamming threshold the model was
calibrated for, if any).

**Seed files.** ``.npy`` (a 2-D float array, ``bits x D``) or the NeuralHash layout: a 128-byte header
then ``rows x D`` little-endian float32 (``neuralhash_128x96_seed1.dat`` is 96 x 128).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from scanner.errors import ScannerError
from scanner.hashers.base import HashResult, check_rgb
from scanner.hashers.spec import ONNX, AlgorithmSpec

__all__ = [
    "DEFAULT_MODEL",
    "MAX_BITS",
    "MIN_BITS",
    "ONNX_MATCH_DISTANCE",
    "ONNX_MIN_QUALITY",
    "ModelError",
    "ModelSpec",
    "OnnxHasher",
    "clear_session_cache",
    "default_model_path",
    "dihedral_variants",
    "flatness_quality",
    "load_seed",
    "load_sidecar",
    "save_seed",
]

MIN_BITS = 64
MAX_BITS = 256
NEURALHASH_HEADER = 128
"""Bytes skipped at the start of a NeuralHash-layout seed file."""
MAX_MODEL_BYTES = 256 * 1024 * 1024
MAX_SEED_BYTES = 16 * 1024 * 1024
MAX_SIDECAR_BYTES = 64 * 1024
ONNX_MIN_QUALITY = ONNX.min_quality
"""Same gate as PDQ: below this flatness score the hash is unreliable."""
ONNX_MATCH_DISTANCE = ONNX.match_distance
"""Match threshold of the shipped model at its default width (calibrated on a benign corpus; see MODEL.md)."""
DEFAULT_MODEL = "pocketscan-embed-v1"
_MODELS_DIR = Path(__file__).resolve().parent.parent / "models"

_RESAMPLE = {
    "nearest": Image.Resampling.NEAREST,
    "box": Image.Resampling.BOX,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
}


class ModelError(ScannerError):
    """A model, sidecar or seed file that cannot be used (missing, malformed, mismatched shapes)."""


def default_model_path() -> Path:
    """The shipped ``pocketscan-embed`` ONNX file."""
    return _MODELS_DIR / f"{DEFAULT_MODEL}.onnx"


@dataclass(frozen=True)
class ModelSpec:
    """How to feed a model: parsed from its JSON sidecar."""

    name: str
    input_size: tuple[int, int]
    """(height, width) of the model input."""
    offset: tuple[float, float, float]
    channel_scale: tuple[float, float, float]
    """Pixel ``p`` (0..255) of channel ``c`` is fed as ``p * channel_scale[c] + offset[c]``."""
    layout: str = "NCHW"
    resample: str = "bilinear"
    reducing_gap: float | None = None
    """Pillow's ``reducing_gap``: shrink by an integer factor first (much faster on large images)."""
    input_name: str | None = None
    output_name: str | None = None
    batch_size: int = 16
    seed: str | None = None
    bits: int | None = None
    match_distance: int | None = None
    sidecar_path: Path | None = None


def _sidecar_for(model: Path) -> Path:
    for cand in (model.with_suffix(".json"), model.with_name(model.name + ".json")):
        if cand.is_file():
            return cand
    raise ModelError(
        f"{model}: no JSON sidecar found (expected {model.with_suffix('.json').name} or "
        f"{model.name}.json beside the model, giving at least input_size)"
    )


def _floats(value: Any, n: int, key: str, where: Path) -> tuple[float, ...]:
    if isinstance(value, int | float):
        value = [value] * n
    if not isinstance(value, list) or len(value) != n or not all(isinstance(v, int | float) for v in value):
        raise ModelError(f"{where}: '{key}' must be a number or a list of {n} numbers")
    return tuple(float(v) for v in value)


def load_sidecar(path: str | os.PathLike[str]) -> ModelSpec:
    """Parse and validate a model sidecar JSON file.

    Raises:
        ModelError: the file is missing, too large, not JSON or has invalid values.
    """
    p = Path(path)
    try:
        if p.stat().st_size > MAX_SIDECAR_BYTES:
            raise ModelError(f"{p}: sidecar larger than {MAX_SIDECAR_BYTES} bytes")
        raw = json.loads(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ModelError(f"{p}: cannot read sidecar ({exc.strerror or exc})") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelError(f"{p}: sidecar is not valid JSON ({exc})") from None
    if not isinstance(raw, dict):
        raise ModelError(f"{p}: sidecar must be a JSON object")
    size = raw.get("input_size")
    if isinstance(size, int):
        size = [size, size]
    if (
        not isinstance(size, list)
        or len(size) != 2
        or not all(isinstance(v, int) for v in size)
        or not all(8 <= v <= 2048 for v in size)
    ):
        raise ModelError(f"{p}: 'input_size' must be [height, width] with sides of 8..2048 pixels")
    if "mean" in raw or "std" in raw:
        mean = _floats(raw.get("mean", 0.0), 3, "mean", p)
        std = _floats(raw.get("std", 1.0), 3, "std", p)
        if any(s == 0 for s in std):
            raise ModelError(f"{p}: 'std' must not contain zero")
        channel_scale = tuple(1.0 / (255.0 * s) for s in std)
        offset = tuple(-m / s for m, s in zip(mean, std, strict=True))
    else:
        lo, hi = _floats(raw.get("range", [0.0, 1.0]), 2, "range", p)
        channel_scale = ((hi - lo) / 255.0,) * 3
        offset = (lo,) * 3
    layout = str(raw.get("layout", "NCHW")).upper()
    if layout not in ("NCHW", "NHWC"):
        raise ModelError(f"{p}: 'layout' must be NCHW or NHWC")
    resample = str(raw.get("resample", "bilinear")).lower()
    if resample not in _RESAMPLE:
        raise ModelError(f"{p}: 'resample' must be one of {', '.join(_RESAMPLE)}")
    gap = raw.get("reducing_gap")
    if gap is not None and (not isinstance(gap, int | float) or gap < 1.0):
        raise ModelError(f"{p}: 'reducing_gap' must be a number >= 1 (or null)")
    batch = raw.get("batch_size", 16)
    if not isinstance(batch, int) or not 1 <= batch <= 256:
        raise ModelError(f"{p}: 'batch_size' must be an integer from 1 to 256")
    bits = raw.get("bits")
    match = raw.get("match_distance")
    for key, val in (("bits", bits), ("match_distance", match)):
        if val is not None and (not isinstance(val, int) or val < 0):
            raise ModelError(f"{p}: '{key}' must be a non-negative integer")
    for key in ("input_name", "output_name", "seed", "name"):
        if raw.get(key) is not None and not isinstance(raw[key], str):
            raise ModelError(f"{p}: '{key}' must be a string")
    return ModelSpec(
        name=str(raw.get("name") or p.stem),
        input_size=(int(size[0]), int(size[1])),
        offset=(float(offset[0]), float(offset[1]), float(offset[2])),
        channel_scale=(float(channel_scale[0]), float(channel_scale[1]), float(channel_scale[2])),
        layout=layout,
        resample=resample,
        reducing_gap=None if gap is None else float(gap),
        input_name=raw.get("input_name"),
        output_name=raw.get("output_name"),
        batch_size=batch,
        seed=raw.get("seed"),
        bits=bits,
        match_distance=match,
        sidecar_path=p,
    )


def load_seed(path: str | os.PathLike[str], dim: int) -> np.ndarray:
    """Read a hyperplane matrix (``rows x dim``) from a ``.npy`` file or a NeuralHash-layout file.

    Raises:
        ModelError: unreadable file, or a size that does not fit ``dim`` columns.
    """
    p = Path(path)
    try:
        size = p.stat().st_size
        if size > MAX_SEED_BYTES:
            raise ModelError(f"{p}: seed file larger than {MAX_SEED_BYTES} bytes")
        data = p.read_bytes()
    except OSError as exc:
        raise ModelError(f"{p}: cannot read seed file ({exc.strerror or exc})") from None
    if data[:6] == b"\x93NUMPY":
        import io

        try:
            mat = np.load(io.BytesIO(data), allow_pickle=False)
        except ValueError as exc:
            raise ModelError(f"{p}: not a valid .npy seed ({exc})") from None
        if mat.ndim != 2 or mat.shape[1] != dim or not np.issubdtype(mat.dtype, np.floating):
            raise ModelError(
                f"{p}: seed must be a 2-D float array with {dim} columns, got {mat.shape} {mat.dtype}"
            )
    else:
        body = len(data) - NEURALHASH_HEADER
        if body <= 0 or body % (4 * dim):
            raise ModelError(
                f"{p}: not a NeuralHash-layout seed for a {dim}-float embedding "
                f"(expected 128 header bytes + rows x {dim} float32, got {len(data)} bytes)"
            )
        mat = np.frombuffer(data, dtype="<f4", offset=NEURALHASH_HEADER).reshape(-1, dim)
    mat = np.asarray(mat, dtype=np.float64)
    if not np.isfinite(mat).all():
        raise ModelError(f"{p}: seed contains NaN or infinite values")
    return mat


def save_seed(path: str | os.PathLike[str], matrix: np.ndarray, *, layout: str = "npy") -> None:
    """Write hyperplanes as ``.npy`` (``layout="npy"``) or in the NeuralHash layout (``"neuralhash"``)."""
    mat = np.ascontiguousarray(matrix, dtype="<f4")
    if mat.ndim != 2:
        raise ValueError("seed matrix must be 2-D (bits x embedding dim)")
    if layout == "npy":
        with open(path, "wb") as fh:
            np.save(fh, mat, allow_pickle=False)
    elif layout == "neuralhash":
        header = f"pocketscan seed rows={mat.shape[0]} dim={mat.shape[1]}".encode().ljust(
            NEURALHASH_HEADER, b"\0"
        )
        Path(path).write_bytes(header + mat.tobytes())
    else:
        raise ValueError(f"unknown seed layout {layout!r} (npy or neuralhash)")


# ---------------------------------------------------------------------------------------------------
# sessions

_SESSIONS: dict[tuple[str, int, int, tuple[str, ...], int], Any] = {}
_SESSIONS_LOCK = threading.Lock()


def clear_session_cache() -> None:
    """Forget every cached onnxruntime session (tests; reloading a model file changed on disk)."""
    with _SESSIONS_LOCK:
        _SESSIONS.clear()
    with _HASHERS_LOCK:
        _HASHERS.clear()


def _resolve_providers(providers: str | Sequence[str] | None) -> tuple[str, ...]:
    import onnxruntime as ort

    available = tuple(ort.get_available_providers())
    if providers is None or providers == "cpu":
        return ("CPUExecutionProvider",)
    if providers == "auto":
        return available
    wanted = (providers,) if isinstance(providers, str) else tuple(providers)
    missing = [p for p in wanted if p not in available]
    if missing:
        raise ModelError(
            f"onnxruntime provider(s) not available: {', '.join(missing)} (available: {', '.join(available)})"
        )
    return wanted


def _session(model: Path, providers: tuple[str, ...], threads: int) -> Any:
    import onnxruntime as ort

    try:
        st = model.stat()
    except OSError as exc:
        raise ModelError(f"{model}: cannot read model ({exc.strerror or exc})") from None
    if st.st_size > MAX_MODEL_BYTES:
        raise ModelError(f"{model}: model file larger than {MAX_MODEL_BYTES // (1024 * 1024)} MB")
    key = (str(model.resolve()), st.st_mtime_ns, st.st_size, providers, threads)
    with _SESSIONS_LOCK:
        sess = _SESSIONS.get(key)
        if sess is None:
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
            opts.log_severity_level = 3
            try:
                sess = ort.InferenceSession(str(model), sess_options=opts, providers=list(providers))
            except Exception as exc:  # onnxruntime raises its own exception types for bad files
                raise ModelError(
                    f"{model}: onnxruntime cannot load this model ({str(exc).strip()[:300]})"
                ) from None
            _SESSIONS[key] = sess
    return sess


# ---------------------------------------------------------------------------------------------------
# image helpers

_DIHEDRAL_OPS = (
    lambda a: a,
    lambda a: np.rot90(a, 1),
    lambda a: np.rot90(a, 2),
    lambda a: np.rot90(a, -1),
    lambda a: a[::-1],
    lambda a: a[:, ::-1],
    lambda a: a.transpose(1, 0, 2),
    lambda a: np.rot90(a, 2).transpose(1, 0, 2),
)


def dihedral_variants(rgb: np.ndarray) -> list[np.ndarray]:
    """The 8 dihedral images in :data:`scanner.hashers.base.DIHEDRAL_NAMES` order (same meaning as PDQ's)."""
    return [np.ascontiguousarray(op(rgb)) for op in _DIHEDRAL_OPS]


def flatness_quality(rgb: np.ndarray) -> int:
    """PDQ's quality formula on a 64x64 luma thumbnail: 0 for flat images, 100 for busy ones."""
    img = Image.fromarray(rgb).convert("L") if rgb.ndim == 3 else Image.fromarray(rgb)
    small = np.asarray(img.resize((64, 64), Image.Resampling.BOX), dtype=np.float32)
    dv = np.abs(((small[1:, :] - small[:-1, :]) * 100.0 / 255.0).astype(np.int32)).sum()
    dh = np.abs(((small[:, 1:] - small[:, :-1]) * 100.0 / 255.0).astype(np.int32)).sum()
    return int(min(100, (int(dv) + int(dh)) // 90))


# ---------------------------------------------------------------------------------------------------


class OnnxHasher:
    """Hash images with an ONNX embedding model and a seed matrix of hyperplanes.

    Args:
        model: the ``.onnx`` file (default: the shipped ``pocketscan-embed`` model).
        seed: hyperplane file (default: the sidecar's ``seed``).
        sidecar: the JSON sidecar (default: ``model.json`` or ``model.onnx.json`` beside the model).
        bits: hash width, 64..256, a multiple of 8, at most the seed's rows (default: sidecar, else all rows).
        providers: ``None``/``"cpu"`` (CPU provider), ``"auto"`` (every available provider) or a list.
        threads: onnxruntime intra-op threads (0 = onnxruntime's default).

    Raises:
        ModelError: unusable model, sidecar or seed.
    """

    name = "onnx"

    def __init__(
        self,
        *,
        model: str | os.PathLike[str] | None = None,
        seed: str | os.PathLike[str] | None = None,
        sidecar: str | os.PathLike[str] | None = None,
        bits: int | None = None,
        providers: str | Sequence[str] | None = None,
        threads: int = 0,
    ) -> None:
        self.model_path = Path(model) if model is not None else default_model_path()
        if not self.model_path.is_file():
            raise ModelError(f"{self.model_path}: model file not found")
        self.spec = load_sidecar(sidecar if sidecar is not None else _sidecar_for(self.model_path))
        self.providers = _resolve_providers(providers)
        self.threads = int(threads)
        sess = _session(self.model_path, self.providers, self.threads)
        inputs, outputs = sess.get_inputs(), sess.get_outputs()
        names_in = [i.name for i in inputs]
        names_out = [o.name for o in outputs]
        self.input_name = self.spec.input_name or names_in[0]
        self.output_name = self.spec.output_name or names_out[0]
        if self.input_name not in names_in:
            raise ModelError(f"{self.model_path}: no input named {self.input_name!r} (inputs: {names_in})")
        if self.output_name not in names_out:
            raise ModelError(
                f"{self.model_path}: no output named {self.output_name!r} (outputs: {names_out})"
            )
        shape = next(i.shape for i in inputs if i.name == self.input_name)
        self.batch_size = self._check_input_shape(shape)
        self.dim = self._embedding_dim(sess)
        if seed is None:
            if not self.spec.seed or self.spec.sidecar_path is None:
                raise ModelError(f"{self.model_path}: no seed file given and the sidecar names none")
            seed = self.spec.sidecar_path.parent / self.spec.seed
        self.seed_path = Path(seed)
        planes = load_seed(self.seed_path, self.dim)
        want = bits if bits is not None else (self.spec.bits or planes.shape[0])
        if not MIN_BITS <= want <= MAX_BITS or want % 8:
            raise ModelError(f"bits must be a multiple of 8 from {MIN_BITS} to {MAX_BITS}, got {want}")
        if want > planes.shape[0]:
            raise ModelError(
                f"{self.seed_path}: seed has {planes.shape[0]} hyperplanes, fewer than bits={want}"
            )
        self.bits = int(want)
        self.planes = np.ascontiguousarray(planes[: self.bits])
        default_width = self.spec.bits or planes.shape[0]
        self.match_distance: int | None = self.spec.match_distance if self.bits == default_width else None
        """Calibrated Hamming threshold from the sidecar (only for the width it was calibrated at)."""
        self.algorithm: AlgorithmSpec = ONNX.with_bits(self.bits, match_distance=self.match_distance)
        """This model's spec: its width, and its calibrated distance (else PDQ's scaled to the width)."""

    # -- setup helpers ---------------------------------------------------------------------------
    def _check_input_shape(self, shape: Sequence[Any]) -> int:
        if len(shape) != 4:
            raise ModelError(
                f"{self.model_path}: input {self.input_name!r} has rank {len(shape)}, expected 4"
            )
        h, w = self.spec.input_size
        spatial = (shape[2], shape[3]) if self.spec.layout == "NCHW" else (shape[1], shape[2])
        chans = shape[1] if self.spec.layout == "NCHW" else shape[3]
        for got, want in zip(spatial, (h, w), strict=True):
            if isinstance(got, int) and got != want:
                raise ModelError(
                    f"{self.model_path}: input is {tuple(shape)} but the sidecar says input_size "
                    f"{h}x{w} ({self.spec.layout})"
                )
        if isinstance(chans, int) and chans != 3:
            raise ModelError(f"{self.model_path}: input has {chans} channels, expected 3 (RGB)")
        return int(shape[0]) if isinstance(shape[0], int) and shape[0] > 0 else self.spec.batch_size

    def _embedding_dim(self, sess: Any) -> int:
        shape = next(o.shape for o in sess.get_outputs() if o.name == self.output_name)
        dims = [d for d in shape[1:] if isinstance(d, int)]
        if len(dims) == len(shape) - 1 and dims:
            return int(np.prod(dims))
        # symbolic output shape: run one blank batch to learn it
        return int(self._run(np.zeros((1, *self.spec.input_size, 3), np.uint8)).shape[1])

    # -- core --------------------------------------------------------------------------------
    def preprocess(self, rgb: np.ndarray) -> np.ndarray:
        """One image (``HxWx3`` uint8) to the model's input layout, float32, without the batch axis."""
        rgb = check_rgb(rgb)
        h, w = self.spec.input_size
        img = Image.fromarray(rgb)
        if img.size != (w, h):
            img = img.resize((w, h), _RESAMPLE[self.spec.resample], reducing_gap=self.spec.reducing_gap)
        return np.asarray(img, dtype=np.uint8)

    def _run(self, images: np.ndarray) -> np.ndarray:
        """Embeddings (N x D, float64) of resized uint8 images (N x H x W x 3), in fixed-size chunks."""
        sess = _session(self.model_path, self.providers, self.threads)
        scale = np.asarray(self.spec.channel_scale, np.float32)
        offset = np.asarray(self.spec.offset, np.float32)
        chunk = self.batch_size
        outs: list[np.ndarray] = []
        for start in range(0, len(images), chunk):
            part = images[start : start + chunk]
            n = len(part)
            x = np.zeros((chunk, *part.shape[1:]), np.float32)
            x[:n] = part.astype(np.float32) * scale + offset
            if self.spec.layout == "NCHW":
                x = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
            try:
                y = sess.run([self.output_name], {self.input_name: x})[0]
            except Exception as exc:
                raise ModelError(f"{self.model_path}: inference failed ({str(exc).strip()[:300]})") from None
            y = np.asarray(y, dtype=np.float64).reshape(chunk, -1)[:n]
            outs.append(y)
        return np.concatenate(outs) if outs else np.zeros((0, 0))

    def embed_many(self, rgbs: Iterable[np.ndarray]) -> np.ndarray:
        """Raw embeddings (N x D float64) of decoded images."""
        prepared = [self.preprocess(r) for r in rgbs]
        if not prepared:
            return np.zeros((0, self.dim))
        emb = self._run(np.stack(prepared))
        if not np.isfinite(emb).all():
            raise ModelError(f"{self.model_path}: the model produced NaN or infinite values")
        return emb

    def _pack(self, emb: np.ndarray) -> list[bytes]:
        proj = emb @ self.planes.T
        packed = np.packbits(proj >= 0, axis=1)
        return [row.tobytes() for row in packed]

    def hash_many(self, rgbs: Sequence[np.ndarray], *, dihedral: bool = False) -> list[HashResult]:
        """Hash a list of decoded images in batches (the session is shared and created once)."""
        rgbs = [check_rgb(r) for r in rgbs]
        qualities = [flatness_quality(r) for r in rgbs]
        if not dihedral:
            codes = self._pack(self.embed_many(rgbs))
            return [HashResult(self.name, self.bits, c, q) for c, q in zip(codes, qualities, strict=True)]
        variants = [v for r in rgbs for v in dihedral_variants(r)]
        codes = self._pack(self.embed_many(variants))
        out = []
        for i, q in enumerate(qualities):
            group = tuple(codes[8 * i : 8 * i + 8])
            out.append(HashResult(self.name, self.bits, group[0], q, dihedral=group))
        return out

    def hash_rgb(self, rgb: np.ndarray, *, dihedral: bool = False) -> HashResult:
        """Hash one decoded image (``HxWx3`` uint8)."""
        return self.hash_many([rgb], dihedral=dihedral)[0]

    def hash_files(
        self,
        paths: Sequence[str | os.PathLike[str]],
        *,
        mode: str = "fast",
        dihedral: bool = False,
        batch: int = 64,
    ) -> list[HashResult]:
        """Decode and hash files, ``batch`` images in memory at a time.

        Raises:
            ImageError: a file cannot be decoded (the message names it).
        """
        from scanner.image import load_rgb

        out: list[HashResult] = []
        for start in range(0, len(paths), max(1, batch)):
            imgs = [load_rgb(p, mode=mode) for p in paths[start : start + batch]]  # type: ignore[arg-type]
            out.extend(self.hash_many(imgs, dihedral=dihedral))
        return out

    def __repr__(self) -> str:
        return (
            f"OnnxHasher(model={self.model_path.name!r}, bits={self.bits}, providers={list(self.providers)})"
        )


_HASHERS: dict[tuple[tuple[str, str], ...], OnnxHasher] = {}
_HASHERS_LOCK = threading.Lock()


def _registry_factory(**options: Any) -> OnnxHasher:
    """``get_hasher("onnx", **options)``: one hasher per distinct options (model and seed loaded once)."""
    key = tuple(sorted((k, repr(v)) for k, v in options.items()))
    with _HASHERS_LOCK:
        hasher = _HASHERS.get(key)
    if hasher is None:
        hasher = OnnxHasher(**options)
        with _HASHERS_LOCK:
            _HASHERS[key] = hasher
    return hasher


def _register() -> None:
    from scanner.hashers.registry import register_hasher

    register_hasher("onnx", _registry_factory, replace=True)


_register()
