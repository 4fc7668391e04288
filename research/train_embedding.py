"""Train pocketscan's learned perceptual embedding (``pocketscan-embed``) and export it to ONNX.

Self-supervised contrastive training (SimCLR's NT-Xent loss): two edited views of one image must
embed close, views of different images far apart. The images come from a deterministic procedural
generator (gradients, fractal noise, shapes, stripes, text, random crops of ``samples/*.jpg``)
plus, optionally, random crops of any folder the user gives with ``--images``. The evaluation
corpus (``../shared/corpus``) is never used for training.

The network is fully convolutional with global average pooling, so a crop of a few percent
(which only shifts and rescales the content) moves the embedding little. After training the
mean embedding of held-out generated images is folded into the last layer's bias (centring), so
that random hyperplanes through the origin split the embeddings evenly; batch norms are folded
into the convolutions, and the graph is written with the ``onnx`` helper API (Conv, Relu,
GlobalAveragePool, Gemm), which keeps the export independent of torch's exporter.

PyTorch is only needed here (``pip install -e ".[train]"``); the hasher runs the ONNX file with
onnxruntime. Usage::

    python -m research.train_embedding --out scanner/models --minutes 22 --seed 20261123
"""

from __future__ import annotations

import argparse
import io
import json
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

__all__ = ["MODEL_NAME", "ImageGenerator", "augment", "build_model", "export_onnx", "main", "write_sidecar"]

MODEL_NAME = "pocketscan-embed-v1"
INPUT_SIZE = 64
EMBED_DIM = 128
SEED_BITS = 256
BASE_SIZE = 128

_WORDS = (  # noqa: SIM905
    "hello meeting lunch photo share weekend report draft invoice sale news today team family holiday "
    "ticket price update friday love party call later code map"
).split()


def _rand_colour(rng: np.random.Generator) -> tuple[int, int, int]:
    c = rng.integers(0, 256, size=3)
    return int(c[0]), int(c[1]), int(c[2])


class ImageGenerator:
    """Deterministic procedural images with rich structure, plus crops of real photos."""

    def __init__(self, rng: np.random.Generator, photos: Sequence[Image.Image] = (), size: int = BASE_SIZE):
        self.rng = rng
        self.size = size
        self.photos = [p.convert("RGB") for p in photos]

    # -- backgrounds -------------------------------------------------------------------------
    def _gradient(self) -> np.ndarray:
        s, rng = self.size, self.rng
        yy, xx = np.mgrid[0:s, 0:s].astype(np.float32) / s
        if rng.random() < 0.5:
            a = rng.uniform(0, 2 * math.pi)
            t = xx * math.cos(a) + yy * math.sin(a)
        else:
            cx, cy = rng.uniform(-0.2, 1.2, size=2)
            t = np.sqrt((xx - cx) ** 2 + (yy - cy) ** 2)
        t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
        c0 = np.array(_rand_colour(rng), np.float32)
        c1 = np.array(_rand_colour(rng), np.float32)
        if rng.random() < 0.5:
            c2 = np.array(_rand_colour(rng), np.float32)
            t2 = np.clip(t * 2, 0, 1)[..., None]
            t3 = np.clip(t * 2 - 1, 0, 1)[..., None]
            return c0 * (1 - t2) + c1 * t2 * (1 - t3) + c2 * t3
        return c0 * (1 - t[..., None]) + c1 * t[..., None]

    def _noise(self) -> np.ndarray:
        s, rng = self.size, self.rng
        out = np.zeros((s, s, 3), np.float32)
        amp = 1.0
        start = int(rng.integers(2, 6))
        for octave in range(start, start + int(rng.integers(2, 5))):
            n = 2**octave if octave < 7 else s
            small = rng.normal(size=(n, n, 3)).astype(np.float32)
            if rng.random() < 0.5:
                small = small[..., :1].repeat(3, axis=2) * rng.uniform(0.5, 1.5, size=3).astype(np.float32)
            img = Image.fromarray(np.uint8(np.clip(small * 40 + 128, 0, 255)))
            up = np.asarray(img.resize((s, s), Image.Resampling.BICUBIC), np.float32) - 128
            out += up * amp
            amp *= rng.uniform(0.35, 0.7)
        out = out / (out.std() + 1e-6) * rng.uniform(25, 70) + np.array(_rand_colour(rng), np.float32)
        return out

    def _photo(self) -> np.ndarray:
        rng, s = self.rng, self.size
        photo = self.photos[int(rng.integers(len(self.photos)))]
        w, h = photo.size
        frac = rng.uniform(0.15, 1.0)
        cw, ch = max(8, int(w * frac)), max(8, int(h * frac * rng.uniform(0.7, 1.3)))
        ch = min(ch, h)
        x0, y0 = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
        crop = photo.crop((x0, y0, x0 + cw, y0 + ch))
        arr = np.asarray(crop.resize((s, s), Image.Resampling.BILINEAR), np.float32)
        if rng.random() < 0.5:  # recolour so photo crops do not all share one palette
            mix = np.eye(3, dtype=np.float32) + rng.normal(scale=0.35, size=(3, 3)).astype(np.float32)
            arr = arr @ mix.T + rng.normal(scale=20, size=3).astype(np.float32)
        if rng.random() < 0.3:
            arr = arr[:, ::-1] if rng.random() < 0.5 else arr[::-1]
        return arr

    def _stripes(self) -> np.ndarray:
        s, rng = self.size, self.rng
        yy, xx = np.mgrid[0:s, 0:s].astype(np.float32) / s
        a = rng.uniform(0, math.pi)
        f = rng.uniform(2, 14)
        t = np.sin((xx * math.cos(a) + yy * math.sin(a)) * f * 2 * math.pi + rng.uniform(0, 6.3))
        if rng.random() < 0.5:
            t = np.sign(t)
        c0 = np.array(_rand_colour(rng), np.float32)
        c1 = np.array(_rand_colour(rng), np.float32)
        w = (t[..., None] + 1) / 2
        return c0 * w + c1 * (1 - w)

    # -- overlays ----------------------------------------------------------------------------
    def _shapes(self, img: Image.Image) -> None:
        rng, s = self.rng, self.size
        draw = ImageDraw.Draw(img, "RGBA")
        for _ in range(int(rng.integers(1, 12))):
            kind = int(rng.integers(0, 5))
            x0, y0 = rng.uniform(-0.2, 1.0, size=2) * s
            w, h = rng.uniform(0.05, 0.7, size=2) * s
            box = [float(x0), float(y0), float(x0 + w), float(y0 + h)]
            fill = (*_rand_colour(rng), int(rng.integers(90, 256)))
            if kind == 0:
                draw.ellipse(box, fill=fill)
            elif kind == 1:
                draw.rectangle(box, fill=fill)
            elif kind == 2:
                pts = [
                    (float(p[0]), float(p[1]))
                    for p in rng.uniform(-0.1, 1.1, size=(int(rng.integers(3, 7)), 2)) * s
                ]
                draw.polygon(pts, fill=fill)
            elif kind == 3:
                pts = [
                    (float(p[0]), float(p[1]))
                    for p in rng.uniform(0, 1, size=(int(rng.integers(2, 6)), 2)) * s
                ]
                draw.line(pts, fill=fill, width=int(rng.integers(1, 10)))
            else:
                draw.arc(
                    box,
                    float(rng.uniform(0, 360)),
                    float(rng.uniform(0, 360)),
                    fill=fill,
                    width=int(rng.integers(1, 8)),
                )

    def _text(self, img: Image.Image) -> None:
        rng, s = self.rng, self.size
        draw = ImageDraw.Draw(img)
        for _ in range(int(rng.integers(1, 6))):
            words = " ".join(
                _WORDS[int(i)] for i in rng.integers(0, len(_WORDS), size=int(rng.integers(1, 4)))
            )
            font = ImageFont.load_default(size=float(rng.uniform(8, 30)))
            xy = (float(rng.uniform(0, 0.8) * s), float(rng.uniform(0, 0.9) * s))
            draw.text(xy, words, fill=_rand_colour(rng), font=font)

    def image(self) -> Image.Image:
        """One new image of ``size`` x ``size`` pixels."""
        rng = self.rng
        r = rng.random()
        if self.photos and r < 0.3:
            arr = self._photo()
        elif r < 0.55:
            arr = self._gradient()
        elif r < 0.85:
            arr = self._noise()
        else:
            arr = self._stripes()
        if rng.random() < 0.3:  # blend two backgrounds for extra texture
            other = self._noise() if rng.random() < 0.5 else self._gradient()
            a = rng.uniform(0.2, 0.6)
            arr = arr * (1 - a) + other * a
        img = Image.fromarray(np.uint8(np.clip(arr, 0, 255)))
        if rng.random() < 0.75:
            self._shapes(img)
        if rng.random() < 0.25:
            self._text(img)
        if rng.random() < 0.3:
            img = img.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.5, 3))))
        return img


def _folder_images(folder: Path, limit: int = 2000) -> list[Image.Image]:
    out: list[Image.Image] = []
    from scanner.discovery import image_paths

    for path in image_paths(folder):
        with Image.open(path) as im:
            im.draft("RGB", (512, 512))
            img = im.convert("RGB")
        img.thumbnail((512, 512))
        out.append(img)
        if len(out) >= limit:
            break
    return out


def augment(
    img: Image.Image, rng: np.random.Generator, *, size: int = INPUT_SIZE, strength: float = 1.0
) -> np.ndarray:
    """An edited view of ``img`` at ``size`` px (HxWx3 uint8): crop, pad, rotate, colour, blur, JPEG, text."""
    w, h = img.size
    if rng.random() < 0.85 * strength:
        if rng.random() < 0.5:  # centred crop of 0-15% per side
            f = rng.uniform(0.0, 0.15)
            fx = fy = f
            box = (w * fx, h * fy, w * (1 - fx), h * (1 - fy))
        else:  # off-centre crop, 0-15% per side independently
            left, top, right, bottom = rng.uniform(0, 0.15, size=4)
            box = (w * left, h * top, w * (1 - right), h * (1 - bottom))
        img = img.crop(tuple(round(v) for v in box))  # type: ignore[arg-type]
    if rng.random() < 0.15 * strength:  # pad: bands top/bottom, left/right or all round
        px, py = rng.uniform(0.02, 0.25, size=2) * [rng.random() < 0.6, rng.random() < 0.6]
        colour = (0, 0, 0) if rng.random() < 0.6 else _rand_colour(rng)
        canvas = Image.new("RGB", (int(img.width * (1 + 2 * px)), int(img.height * (1 + 2 * py))), colour)
        canvas.paste(img, (int(img.width * px), int(img.height * py)))
        img = canvas
    if rng.random() < 0.2 * strength:
        img = img.rotate(
            float(rng.uniform(-6, 6)),
            resample=Image.Resampling.BILINEAR,
            fillcolor=(0, 0, 0) if rng.random() < 0.5 else None,
        )
    # intermediate rescale (resize 0.25-1.0 then back to model size)
    if rng.random() < 0.3 * strength:
        f = rng.uniform(0.3, 1.0)
        img = img.resize((max(8, int(img.width * f)), max(8, int(img.height * f))), Image.Resampling.BILINEAR)
    img = img.resize((size, size), Image.Resampling.BILINEAR)
    arr: np.ndarray = np.asarray(img, np.float32)
    if rng.random() < 0.6 * strength:  # brightness / contrast / gamma / saturation / small hue mix
        arr = arr * rng.uniform(0.75, 1.25) + rng.uniform(-25, 25)
        if rng.random() < 0.5:
            arr = 255.0 * (np.clip(arr, 0, 255) / 255.0) ** np.exp(rng.uniform(-0.9, 0.9))
        grey = arr.mean(axis=2, keepdims=True)
        arr = grey + (arr - grey) * rng.uniform(0.5, 1.4)
        if rng.random() < 0.3:
            mix = np.eye(3, dtype=np.float32) + rng.normal(scale=0.08, size=(3, 3)).astype(np.float32)
            arr = arr @ mix.T
    if rng.random() < 0.1 * strength:  # vignette: darken towards the corners
        yy = np.linspace(-1, 1, size)[:, None]
        xx = np.linspace(-1, 1, size)[None, :]
        s = rng.uniform(0.7, 1.6)
        arr = arr * np.exp(-(xx**2 + yy**2) / (2 * s * s))[..., None]
    if rng.random() < 0.05 * strength:
        arr = arr.mean(axis=2, keepdims=True).repeat(3, axis=2)
    if rng.random() < 0.2 * strength:
        arr = arr + rng.normal(scale=rng.uniform(2, 14), size=arr.shape)
    img = Image.fromarray(np.uint8(np.clip(arr, 0, 255)))
    if rng.random() < 0.25 * strength:
        img = img.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.3, 1.6))))
    if rng.random() < 0.2 * strength:  # watermark / caption overlay
        draw = ImageDraw.Draw(img)
        font = ImageFont.load_default(size=float(rng.uniform(9, 22)))
        word = _WORDS[int(rng.integers(len(_WORDS)))].upper()
        draw.text(
            (float(rng.uniform(0, 0.6) * size), float(rng.uniform(0, 0.85) * size)),
            word,
            fill=_rand_colour(rng),
            font=font,
        )
    if rng.random() < 0.4 * strength:
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=int(rng.integers(25, 96)))
        buf.seek(0)
        img = Image.open(buf).convert("RGB")
    return np.asarray(img, np.uint8)


# ------------------------------------------------------------------------------------------------
# model (torch is imported lazily so the generator above can be reused without it)

CHANNELS = (24, 48, 96, 160)


def build_model(embed_dim: int = EMBED_DIM) -> Any:
    """Fully convolutional net: 4 stages of (stride-2 conv, conv), global average pool, linear."""
    import torch
    from torch import nn

    layers: list[nn.Module] = []
    cin = 3
    for cout in CHANNELS:
        layers += [
            nn.Conv2d(cin, cout, 3, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(),
            nn.Conv2d(cout, cout, 3, stride=1, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(),
        ]
        cin = cout

    class Embed(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.features = nn.Sequential(*layers)
            self.fc = nn.Linear(cin, embed_dim)
            self.head = nn.Sequential(nn.ReLU(), nn.Linear(embed_dim, embed_dim))  # SimCLR projector

        def embed(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(self.features(x).mean(dim=(2, 3)))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            e = self.embed(x)
            return e, self.head(e)

    return Embed()


def nt_xent(z: Any, temperature: float) -> Any:
    """NT-Xent over 2B rows where rows i and i+B are positives."""
    import torch
    import torch.nn.functional as F

    z = F.normalize(z, dim=1)
    n = z.shape[0] // 2
    sim = z @ z.t() / temperature
    sim.fill_diagonal_(float("-inf"))
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)])
    return F.cross_entropy(sim, target)


def _to_tensor(views: list[np.ndarray]) -> Any:
    import torch

    arr = np.stack(views).astype(np.float32) / 127.5 - 1.0
    return torch.from_numpy(arr.transpose(0, 3, 1, 2).copy())


def _batch(gen: ImageGenerator, user: list[Image.Image], rng: np.random.Generator, n: int) -> Any:
    a: list[np.ndarray] = []
    b: list[np.ndarray] = []
    for _ in range(n):
        if user and rng.random() < 0.5:
            img = ImageGenerator(rng, [user[int(rng.integers(len(user)))]]).image()
        else:
            img = gen.image()
        # one view mimics the bank image (often unedited), the other a query edited in transit
        a.append(augment(img, rng, strength=0.0 if rng.random() < 0.5 else 0.5))
        b.append(augment(img, rng))
    return _to_tensor(a + b)


# ------------------------------------------------------------------------------------------------
# export


def _fold_bn(conv: Any, bn: Any) -> tuple[np.ndarray, np.ndarray]:
    w = conv.weight.detach().double().numpy()
    scale = (bn.weight.detach().double() / (bn.running_var.detach().double() + bn.eps).sqrt()).numpy()
    bias = bn.bias.detach().double().numpy() - bn.running_mean.detach().double().numpy() * scale
    return (w * scale[:, None, None, None]).astype(np.float32), bias.astype(np.float32)


def export_onnx(model: Any, path: Path, *, centre: np.ndarray, input_size: int = INPUT_SIZE) -> None:
    """Write the embedding network (BN folded, centring folded into the last bias) as an ONNX graph."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    mods = list(model.features)
    nodes, inits = [], []
    x = "image"
    for k, i in enumerate(range(0, len(mods), 3)):
        conv, bn = mods[i], mods[i + 1]
        w, b = _fold_bn(conv, bn)
        inits += [numpy_helper.from_array(w, f"conv{k}.w"), numpy_helper.from_array(b, f"conv{k}.b")]
        s = conv.stride[0]
        nodes.append(
            helper.make_node(
                "Conv",
                [x, f"conv{k}.w", f"conv{k}.b"],
                [f"c{k}"],
                kernel_shape=[3, 3],
                strides=[s, s],
                pads=[1, 1, 1, 1],
            )
        )
        nodes.append(helper.make_node("Relu", [f"c{k}"], [f"r{k}"]))
        x = f"r{k}"
    nodes.append(helper.make_node("GlobalAveragePool", [x], ["gap"]))
    nodes.append(helper.make_node("Flatten", ["gap"], ["flat"], axis=1))
    fw = model.fc.weight.detach().numpy().astype(np.float32)
    fb = (model.fc.bias.detach().double().numpy() - centre).astype(np.float32)
    inits += [numpy_helper.from_array(fw, "fc.w"), numpy_helper.from_array(fb, "fc.b")]
    nodes.append(helper.make_node("Gemm", ["flat", "fc.w", "fc.b"], ["embedding"], transB=1))
    graph = helper.make_graph(
        nodes,
        MODEL_NAME,
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, input_size, input_size])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", fw.shape[0]])],
        inits,
    )
    onnx_model = helper.make_model(
        graph, producer_name="pocketscan", opset_imports=[helper.make_opsetid("", 17)]
    )
    onnx_model.ir_version = 8
    onnx_model.doc_string = (
        f"{MODEL_NAME}: pocketscan's self-supervised perceptual embedding (research/train_embedding.py)"
    )
    onnx.checker.check_model(onnx_model)
    path.write_bytes(onnx_model.SerializeToString())


def write_sidecar(path: Path, *, bits: int, match_distance: int | None, input_size: int = INPUT_SIZE) -> None:
    """The JSON sidecar :class:`scanner.hashers.onnx.OnnxHasher` reads beside the model."""
    sidecar = {
        "name": MODEL_NAME,
        "input_size": [input_size, input_size],
        "range": [-1.0, 1.0],
        "layout": "NCHW",
        "resample": "bilinear",
        "reducing_gap": 3.0,
        "input_name": "image",
        "output_name": "embedding",
        "batch_size": 16,
        "seed": f"{MODEL_NAME}-seed.npy",
        "bits": bits,
        "match_distance": match_distance,
    }
    path.write_text(json.dumps(sidecar, indent=2) + "\n")


# ------------------------------------------------------------------------------------------------


def _eval_bits(emb_a: np.ndarray, emb_b: np.ndarray, planes: np.ndarray) -> dict[str, float]:
    ba = (emb_a @ planes.T) >= 0
    bb = (emb_b @ planes.T) >= 0
    same = (ba != bb).sum(axis=1)
    diff = (ba[:, None, :] != ba[None, :, :]).sum(axis=2)[np.triu_indices(len(ba), 1)]
    return {
        "same_median": float(np.median(same)),
        "same_p95": float(np.percentile(same, 95)),
        "diff_p01": float(np.percentile(diff, 1)),
        "diff_min": float(diff.min()),
        "diff_median": float(np.median(diff)),
    }


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path("scanner/models"), help="output folder")
    parser.add_argument(
        "--images",
        type=Path,
        action="append",
        default=[],
        help="extra folder of training images (repeatable); never pass the evaluation corpus",
    )
    parser.add_argument("--minutes", type=float, default=22.0, help="wall-clock training budget")
    parser.add_argument("--steps", type=int, default=None,
                        help="optimiser steps (the learning-rate schedule follows them: reproducible); "
                        "without it, as many as fit in --minutes")
    parser.add_argument("--batch", type=int, default=128, help="images per step (2 views each)")
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--temperature", type=float, default=0.1)
    parser.add_argument("--threads", type=int, default=2, help="torch threads (the machine is shared)")
    parser.add_argument("--seed", type=int, default=20261123)
    parser.add_argument("--bits", type=int, default=256, help="default hash width written to the sidecar")
    parser.add_argument(
        "--match-distance",
        type=int,
        default=None,
        help="calibrated threshold to record in the sidecar (see research/eval_learned.py)",
    )
    parser.add_argument(
        "--from-checkpoint",
        type=Path,
        default=None,
        help="skip training: load these torch weights and only evaluate and export",
    )
    parser.add_argument("--checkpoint", type=Path, default=None, help="also save the torch weights here")
    return parser


def _train(model: Any, gen: ImageGenerator, user: list[Image.Image], rng: np.random.Generator,
           args: argparse.Namespace) -> tuple[int, list[float], float]:
    """Contrastive training within ``--steps`` and ``--minutes``: (steps taken, losses, seconds)."""
    import torch

    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    budget = args.minutes * 60
    t0 = time.monotonic()
    step = 0
    losses: list[float] = []
    model.train()
    while step < args.steps and time.monotonic() - t0 < budget:
        # cosine over --steps when given (reproducible), else over the wall-clock budget
        frac = step / args.steps if args.steps_given else (time.monotonic() - t0) / budget
        for g in opt.param_groups:  # warm-up then cosine decay
            g["lr"] = args.lr * min(1.0, (step + 1) / 50) * 0.5 * (1 + math.cos(math.pi * min(frac, 1.0)))
        x = _batch(gen, user, rng, args.batch)
        _, z = model(x)
        loss = nt_xent(z, args.temperature)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
        step += 1
        if step % 20 == 0:
            print(
                f"step {step} loss {np.mean(losses[-20:]):.3f} lr {opt.param_groups[0]['lr']:.2e} "
                f"t {time.monotonic() - t0:.0f}s",
                flush=True,
            )
    return step, losses, time.monotonic() - t0


def _evaluate(model: Any, photos: list[Image.Image],
              seed: int) -> tuple[Any, np.ndarray, np.ndarray, np.ndarray, dict[str, float]]:
    """Held-out generated images: (clean batch, its embeddings, centring vector, seed planes, bit metrics)."""
    import torch

    model.eval()
    eval_rng = np.random.default_rng(seed + 1)
    eval_gen = ImageGenerator(eval_rng, photos)
    with torch.no_grad():
        imgs = [eval_gen.image() for _ in range(600)]
        clean = _to_tensor([augment(im, eval_rng, strength=0.0) for im in imgs])
        edited = _to_tensor([augment(im, eval_rng) for im in imgs])
        ea = model.embed(clean).double().numpy()
        eb = model.embed(edited).double().numpy()
    centre = ea.mean(axis=0)
    planes = np.random.default_rng(seed).standard_normal((SEED_BITS, EMBED_DIM)).astype(np.float32)
    metrics = {f"heldout_{k}": v for k, v in _eval_bits(ea - centre, eb - centre, planes).items()}
    return clean, ea, centre, planes, metrics


def _export(model: Any, args: argparse.Namespace, clean: Any, ea: np.ndarray, centre: np.ndarray,
            planes: np.ndarray) -> float:
    """Write the ONNX model, its seed planes and sidecar; the export's max abs difference from torch."""
    args.out.mkdir(parents=True, exist_ok=True)
    model_path = args.out / f"{MODEL_NAME}.onnx"
    export_onnx(model, model_path, centre=centre)
    np.save(args.out / f"{MODEL_NAME}-seed.npy", planes, allow_pickle=False)
    write_sidecar(args.out / f"{MODEL_NAME}.json", bits=args.bits, match_distance=args.match_distance)
    # parity check of the export against torch
    import onnxruntime as ort

    sess = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    got = sess.run(None, {"image": clean[:16].numpy()})[0]
    return float(np.abs(got - (ea[:16] - centre)).max())


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    args.steps_given = args.steps is not None
    if args.steps is None:
        args.steps = 1_000_000

    import torch

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    from client.samples import sample_paths

    photos = [Image.open(p).convert("RGB") for p in sample_paths()]
    user: list[Image.Image] = []
    for folder in args.images:
        user += _folder_images(folder)
    gen = ImageGenerator(rng, photos)
    model = build_model()
    if args.from_checkpoint:
        model.load_state_dict(torch.load(args.from_checkpoint, weights_only=True))
        args.steps = 0
    step, losses, train_seconds = _train(model, gen, user, rng, args)
    clean, ea, centre, planes, metrics = _evaluate(model, photos, args.seed)
    parity = _export(model, args, clean, ea, centre, planes)
    info = {
        "steps": step,
        "train_seconds": round(train_seconds),
        "final_loss": round(float(np.mean(losses[-50:])), 4),
        "batch": args.batch,
        "lr": args.lr,
        "temperature": args.temperature,
        "seed": args.seed,
        "threads": args.threads,
        "user_images": len(user),
        "onnx_parity_max_abs": parity,
        **metrics,
    }
    (args.out / "training.json").write_text(json.dumps(info, indent=2) + "\n")
    print(json.dumps(info, indent=2))
    if args.checkpoint:
        torch.save(model.state_dict(), args.checkpoint)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
