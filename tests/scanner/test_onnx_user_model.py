"""A user-supplied model, sidecar and NeuralHash-layout seed, built here with the ``onnx`` helper API."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from scanner.hashers.onnx import ModelError, OnnxHasher, clear_session_cache, load_seed, save_seed  # noqa: E402

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
SIZE = 40
DIM = 16
BITS = 64


def build_tiny_model(path: Path, *, fixed_batch: int | None = None) -> None:
    """Conv(3->8, 3x3, stride 2), Relu, GlobalAveragePool, Flatten, Gemm(8->16): a 16-float embedding."""
    rng = np.random.default_rng(7)
    w = rng.normal(size=(8, 3, 3, 3)).astype(np.float32)
    b = rng.normal(scale=0.1, size=8).astype(np.float32)
    fw = rng.normal(size=(DIM, 8)).astype(np.float32)
    fb = rng.normal(scale=0.1, size=DIM).astype(np.float32)
    nodes = [
        helper.make_node(
            "Conv", ["input", "w", "b"], ["c"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]
        ),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("GlobalAveragePool", ["r"], ["g"]),
        helper.make_node("Flatten", ["g"], ["f"], axis=1),
        helper.make_node("Gemm", ["f", "fw", "fb"], ["emb"], transB=1),
    ]
    batch: int | str = fixed_batch if fixed_batch is not None else "N"
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [batch, 3, SIZE, SIZE])],
        [helper.make_tensor_value_info("emb", TensorProto.FLOAT, [batch, DIM])],
        [numpy_helper.from_array(a, n) for a, n in ((w, "w"), (b, "b"), (fw, "fw"), (fb, "fb"))],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())


@pytest.fixture()
def user_model(tmp_path: Path) -> tuple[Path, Path]:
    model = tmp_path / "tiny.onnx"
    build_tiny_model(model)
    (tmp_path / "tiny.json").write_text(
        json.dumps(
            {
                "name": "tiny",
                "input_size": [SIZE, SIZE],
                "range": [-1, 1],
                "resample": "bilinear",
                "output_name": "emb",
                "batch_size": 4,
            }
        )
    )
    planes = np.random.default_rng(3).normal(size=(BITS, DIM)).astype(np.float32)
    seed = tmp_path / "tiny_seed.dat"
    save_seed(seed, planes, layout="neuralhash")
    return model, seed


def _reference_hex(model: Path, seed: Path, img: Image.Image) -> str:
    """The NeuralHash scripts' recipe (resize, [-1,1], run, seed.dot, '1' if >= 0, MSB first)."""
    sess = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    arr = np.asarray(img.convert("RGB").resize((SIZE, SIZE), Image.Resampling.BILINEAR), np.float32) / 255.0
    arr = (arr * 2.0 - 1.0).transpose(2, 0, 1)[None]
    out = sess.run(None, {"input": arr})[0]
    planes = np.frombuffer(seed.read_bytes()[128:], dtype=np.float32).reshape(-1, DIM)
    bits = "".join(
        "1" if v >= 0 else "0" for v in planes.astype(np.float64) @ out.flatten().astype(np.float64)
    )
    return f"{int(bits, 2):0{len(bits) // 4}x}"


def test_user_model_matches_the_neuralhash_recipe(user_model: tuple[Path, Path]) -> None:
    model, seed = user_model
    hasher = OnnxHasher(model=model, seed=seed)
    assert hasher.bits == BITS and hasher.dim == DIM
    for path in sorted(SAMPLES.glob("*.jpg"))[:4]:
        img = Image.open(path).convert("RGB")
        got = hasher.hash_rgb(np.asarray(img))
        assert got.algo == "onnx" and got.bits == BITS and len(got.hash) == BITS // 8
        assert got.hex == _reference_hex(model, seed, img)
        assert 0 <= got.quality <= 100


def test_seed_layouts_agree(user_model: tuple[Path, Path], tmp_path: Path) -> None:
    _, seed = user_model
    planes = load_seed(seed, DIM)
    npy = tmp_path / "seed.npy"
    save_seed(npy, planes)
    assert np.array_equal(load_seed(npy, DIM), planes)
    with pytest.raises(ModelError, match="NeuralHash-layout"):
        load_seed(seed, DIM + 1)


def test_cli_hash_with_model_and_seed(
    user_model: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    from client.cli.main import main

    model, seed = user_model
    paths = [str(p) for p in sorted(SAMPLES.glob("*.jpg"))[:3]]
    assert main(["hash", "--algo", "onnx", "--model", str(model), "--seed", str(seed), *paths]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [x["path"] for x in lines] == paths
    for rec, path in zip(lines, paths, strict=True):
        assert rec["algo"] == "onnx"
        assert rec["hash"] == _reference_hex(model, seed, Image.open(path))


def test_fixed_batch_model_and_dihedral(tmp_path: Path, user_model: tuple[Path, Path]) -> None:
    _, seed = user_model
    model = tmp_path / "fixed.onnx"
    build_tiny_model(model, fixed_batch=1)  # like the NeuralHash export: batch dimension fixed at 1
    (tmp_path / "fixed.onnx.json").write_text(json.dumps({"input_size": SIZE, "range": [-1, 1]}))
    hasher = OnnxHasher(model=model, seed=seed)
    assert hasher.batch_size == 1
    imgs = [np.asarray(Image.open(p).convert("RGB")) for p in sorted(SAMPLES.glob("*.jpg"))[:3]]
    many = hasher.hash_many(imgs, dihedral=True)
    for img, res in zip(imgs, many, strict=True):
        assert res.dihedral is not None and len(res.dihedral) == 8 and res.dihedral[0] == res.hash
        assert res.dihedral[1] == hasher.hash_rgb(np.rot90(img).copy()).hash


def test_bad_inputs_raise_model_error(tmp_path: Path, user_model: tuple[Path, Path]) -> None:
    model, seed = user_model
    with pytest.raises(ModelError, match="not found"):
        OnnxHasher(model=tmp_path / "missing.onnx", seed=seed)
    with pytest.raises(ModelError, match="bits must be"):
        OnnxHasher(model=model, seed=seed, bits=60)
    with pytest.raises(ModelError, match="fewer than bits"):
        OnnxHasher(model=model, seed=seed, bits=128)
    with pytest.raises(ModelError, match="not available"):
        OnnxHasher(model=model, seed=seed, providers=["NoSuchExecutionProvider"])
    with pytest.raises(ModelError, match="no seed file"):
        OnnxHasher(model=model)
    (tmp_path / "tiny.json").write_text(json.dumps({"input_size": [SIZE + 1, SIZE]}))
    with pytest.raises(ModelError, match="input_size"):
        OnnxHasher(model=model, seed=seed)
    (tmp_path / "tiny.json").write_text("{not json")
    with pytest.raises(ModelError, match="not valid JSON"):
        OnnxHasher(model=model, seed=seed)
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"this is not a model")
    (tmp_path / "garbage.json").write_text(json.dumps({"input_size": SIZE}))
    with pytest.raises(ModelError, match="cannot load"):
        OnnxHasher(model=garbage, seed=seed)
    clear_session_cache()
