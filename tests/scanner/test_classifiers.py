"""Sensitive-content classifiers: a generated stand-in ONNX model drives the pipeline; hostile sidecars."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnx")

from scanner.classifiers import ClassifierError, ClassifierUnavailable, get_classifier
from scanner.classifiers.postprocess import decode_yolov8, letterbox, nms
from scanner.classifiers.registry import clear_classifier_cache
from scanner.classifiers.spec import parse_classifier_sidecar
from scanner.classifying import classify_bytes, classify_file
from scanner.errors import ImageError
from tests.scanner.standin_classifier import (
    build_standin_classifier,
    build_standin_detector,
    detector_sidecar,
    solid_png,
)

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def detector(tmp_path: Path) -> Path:
    clear_classifier_cache()
    return build_standin_detector(tmp_path / "model")


def test_detector_labels_red_sensitive_and_blue_ok(detector: Path, tmp_path: Path) -> None:
    clf = get_classifier(str(detector))
    red = classify_file(solid_png(tmp_path / "red.png", (255, 0, 0)), clf)
    assert red.label == "sensitive" and red.model == "standin-detector"
    # 64x48 letterboxed to 32x32: a quarter of the input is black padding, so mean R = 0.75
    assert red.score == pytest.approx(1 / (1 + np.exp(-(12 * 0.75 - 2))), abs=1e-5)
    # anchors 0 and 1 overlap (IoU ~0.68 > 0.45): NMS keeps only the stronger one, in image pixels (x2)
    assert [d.label for d in red.detections] == ["EXPOSED"]
    assert red.detections[0].box == pytest.approx((6.0, 6.0, 26.0, 26.0))
    blue = classify_file(solid_png(tmp_path / "blue.png", (0, 0, 255)), clf)
    assert (blue.label, blue.score) == ("ok", 0.0)
    assert [d.label for d in blue.detections] == ["COVERED"]  # seen, but not a sensitive label
    grey = classify_file(solid_png(tmp_path / "grey.png", (128, 128, 128)), clf)
    assert grey.label == "ok" and grey.detections == ()  # sigmoid(-2) = 0.12 < min_box_score 0.2


def test_result_is_deterministic_and_bytes_equal_file(detector: Path, tmp_path: Path) -> None:
    clf = get_classifier(str(detector))
    path = solid_png(tmp_path / "mix.png", (200, 40, 90))
    first = classify_file(path, clf)
    assert all(classify_file(path, clf) == first for _ in range(3))
    assert classify_bytes(path.read_bytes(), clf) == first
    assert first.as_dict() == {"label": first.label, "score": round(first.score, 6),
                               "model": "standin-detector"}


def test_threshold_and_labels_are_configuration(detector: Path, tmp_path: Path) -> None:
    path = solid_png(tmp_path / "pinkish.png", (150, 0, 120), (32, 32))  # EXPOSED: sigmoid(12*0.118-2)=0.36
    assert classify_file(path, get_classifier(str(detector))).label == "ok"
    low = classify_file(path, get_classifier(str(detector), threshold=0.3))
    assert low.label == "sensitive" and low.threshold == 0.3
    face = classify_file(solid_png(tmp_path / "g.png", (0, 255, 0)),
                         get_classifier(str(detector), sensitive_labels=frozenset({"FACE"})))
    assert face.label == "sensitive" and face.score == pytest.approx(0.731, abs=1e-3)
    with pytest.raises(ClassifierError, match="subset"):
        get_classifier(str(detector), sensitive_labels=frozenset({"NOPE"}))


def test_whole_image_classifier_softmax(tmp_path: Path) -> None:
    clf = get_classifier(str(build_standin_classifier(tmp_path)))
    red = classify_file(solid_png(tmp_path / "r.png", (255, 0, 0)), clf)
    blue = classify_file(solid_png(tmp_path / "b.png", (0, 0, 255)), clf)
    assert (red.label, blue.label) == ("sensitive", "ok")
    assert red.score == pytest.approx(1 / (1 + np.exp(-10)), abs=1e-6)


def test_bad_images_raise_image_errors(detector: Path, tmp_path: Path) -> None:
    clf = get_classifier(str(detector))
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"not an image")
    with pytest.raises(ImageError, match=r"junk\.jpg"):
        classify_file(junk, clf)
    with pytest.raises(ImageError):
        classify_bytes(b"", clf)


def test_model_that_does_not_fit_its_sidecar_is_refused(tmp_path: Path) -> None:
    model = build_standin_detector(tmp_path, labels=["A", "B"], sensitive_labels=["A"])
    with pytest.raises(ClassifierError, match=r"4 \+ 2 labels"):
        get_classifier(str(model))
    model = build_standin_detector(tmp_path / "s", input_size=[64, 64])
    with pytest.raises(ClassifierError, match="input_size 64x64"):
        get_classifier(str(model))
    with pytest.raises(ClassifierError, match="no JSON sidecar"):
        (tmp_path / "lonely.onnx").write_bytes(model.read_bytes())
        get_classifier(str(tmp_path / "lonely.onnx"))
    with pytest.raises(ClassifierError, match="not found"):
        get_classifier(str(tmp_path / "missing.onnx"))
    with pytest.raises(ClassifierError, match="unknown classifier"):
        get_classifier("no-such-model")
    garbage = tmp_path / "g" / "garbage.onnx"
    garbage.parent.mkdir()
    garbage.write_bytes(b"\x00" * 100)
    garbage.with_suffix(".json").write_text(json.dumps(detector_sidecar()))
    with pytest.raises(ClassifierError, match="cannot load"):
        get_classifier(str(garbage))


GOOD = json.dumps(detector_sidecar())


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("{", "not valid JSON"),
        ("[]", "JSON object"),
        (GOOD[:-1] + ', "threshold": 0.4}', "duplicate key"),
        (GOOD.replace('"threshold": 0.5', '"threshold": NaN'), "not valid JSON"),
        (GOOD.replace('"threshold": 0.5', '"threshold": Infinity'), "not valid JSON"),
        (GOOD[:-1] + ', "treshold": 0.4}', "unknown key"),
        (json.dumps({k: v for k, v in detector_sidecar().items() if k != "threshold"}),
         "'threshold' is required"),
        (json.dumps(detector_sidecar(threshold=0)), "'threshold' must be in (0, 1]"),
        (json.dumps(detector_sidecar(threshold=1.5)), "'threshold' must be in"),
        (json.dumps(detector_sidecar(threshold="0.5")), "'threshold' must be a number"),
        (json.dumps(detector_sidecar(threshold=True)), "'threshold' must be a number"),
        (json.dumps(detector_sidecar(sensitive_labels=["NOPE"])), "not in 'labels'"),
        (json.dumps(detector_sidecar(sensitive_labels=[])), "'sensitive_labels' must be a list of 1"),
        (json.dumps(detector_sidecar(labels=["A\x1b[31m", "B", "C"])), "printable"),
        (json.dumps(detector_sidecar(labels=["A", "A", "B"])), "duplicate labels"),
        (json.dumps(detector_sidecar(labels=[f"L{i}" for i in range(1001)])), "1 to 1000"),
        (json.dumps(detector_sidecar(input_size=[100000, 32])), "8..2048"),
        (json.dumps(detector_sidecar(input_size=[True, 32])), "8..2048"),
        (json.dumps(detector_sidecar(kind="segmenter")), "'kind' must be one of"),
        (json.dumps(detector_sidecar(name="../../etc/passwd")), "'name'"),
        (json.dumps(detector_sidecar(mean=[0.5, 0.5, 0.5], std=[0.5, 0, 0.5])), "range"),
        (json.dumps({**detector_sidecar(), "range": None, "mean": 0.5, "std": 0}
                    ).replace('"range": null, ', ""),
         "'std' must not contain zero"),
        (json.dumps(detector_sidecar(pad_value=256)), "pad_value"),
        (json.dumps(detector_sidecar(max_detections=0)), "max_detections"),
        (json.dumps(detector_sidecar(nms_iou=0)), "'nms_iou' must be in (0, 1]"),
        (json.dumps(detector_sidecar(input_name=["x"])), "'input_name' must be a string"),
        pytest.param("[" * 100_000, "larger than", id="oversized"),
        pytest.param("[" * 5000 + "]" * 5000, "not valid JSON", id="deeply-nested"),
    ],
)
def test_hostile_sidecars_are_refused_with_one_clear_error(text: str, fragment: str) -> None:
    with pytest.raises(ClassifierError) as err:
        parse_classifier_sidecar(text, where="evil.json")
    assert str(err.value).startswith("evil.json: ")
    assert fragment in str(err.value)


def test_sidecar_defaults_and_mean_std() -> None:
    spec = parse_classifier_sidecar(json.dumps(detector_sidecar(mean=[0.5, 0.5, 0.5], std=0.25)
                                               ).replace('"range": [0, 1], ', ""))
    assert spec.channel_scale == pytest.approx((1 / (255 * 0.25),) * 3)
    assert spec.offset == pytest.approx((-2.0,) * 3)
    assert (spec.layout, spec.channels, spec.resize, spec.max_detections) == ("NCHW", "RGB", "letterbox", 100)


def test_nms_keeps_best_and_drops_overlaps() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, 10, 10]], np.float32)
    scores = np.array([0.9, 0.95, 0.5, 0.9], np.float32)
    assert nms(boxes, scores, 0.45, 100).tolist() == [1, 2]
    assert nms(boxes, scores, 0.45, 1).tolist() == [1]
    assert nms(boxes, scores, 0.99, 100).tolist() == [1, 0, 2]  # 3 is box 0 again (IoU 1)
    assert nms(boxes, scores, 1.0, 100).tolist() == [1, 0, 3, 2]  # equal scores keep index order
    assert nms(np.zeros((0, 4)), np.zeros(0), 0.5, 10).tolist() == []


def test_decode_yolov8_scales_clips_and_rejects_wrong_shapes() -> None:
    out = np.zeros((1, 4 + 2, 3), np.float32)
    out[0, :4, 0] = [10, 10, 40, 4]  # box reaching past the left edge
    out[0, 4 + 1, 0] = 0.8
    out[0, :4, 1] = [5, 5, 2, 2]
    out[0, 4, 1] = 0.1  # below min_box_score
    out[0, :4, 2] = [np.nan, 5, 2, 2]
    out[0, 4, 2] = 0.9  # non-finite box: dropped
    boxes, scores, classes = decode_yolov8(out, 2, min_box_score=0.2, iou=0.45, limit=10,
                                           x_factor=2.0, y_factor=3.0, image_size=(60, 50))
    assert classes.tolist() == [1] and scores.tolist() == pytest.approx([0.8])
    assert boxes[0].tolist() == pytest.approx([0.0, 24.0, 50.0, 36.0])
    with pytest.raises(ValueError, match="4 \\+ 3"):
        decode_yolov8(out, 3, min_box_score=0.2, iou=0.45, limit=10, x_factor=1, y_factor=1,
                      image_size=(9, 9))


@pytest.mark.parametrize("shape", [(5, 4000), (4000, 5), (300, 200), (32, 32)])
def test_letterbox_is_bounded_and_maps_back(shape: tuple[int, int]) -> None:
    rgb = np.full((*shape, 3), 200, np.uint8)
    out, fx, fy = letterbox(rgb, (32, 32), pad_value=7)
    assert out.shape == (32, 32, 3) and out.dtype == np.uint8
    h, w = shape
    assert round(w / fx) <= 32 and round(h / fy) <= 32
    if h != w:
        assert (out == 7).any() and out[0, 0, 0] == 200  # padding at the bottom/right only


def test_missing_nudenet_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    from importlib import metadata

    from scanner.classifiers import nudenet

    def absent(name: str) -> None:
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "distribution", absent)
    clear_classifier_cache()
    with pytest.raises(ClassifierUnavailable, match=r"pip install 'pocketscan\[sensitive\]'"):
        nudenet.nudenet_classifier()
    clear_classifier_cache()


def test_shipped_nudenet_configuration_is_valid() -> None:
    from scanner.classifiers.nudenet import nudenet_spec

    spec = nudenet_spec()
    assert spec.name == "nudenet-320n" and spec.kind == "detector" and len(spec.labels) == 18
    assert spec.sensitive_labels == {"FEMALE_BREAST_EXPOSED", "FEMALE_GENITALIA_EXPOSED",
                                     "MALE_GENITALIA_EXPOSED", "BUTTOCKS_EXPOSED", "ANUS_EXPOSED"}
    assert spec.threshold == 0.5 and spec.channels == "BGR" and spec.input_size == (320, 320)


def test_our_code_never_imports_opencv(detector: Path, tmp_path: Path) -> None:
    image = solid_png(tmp_path / "r.png", (255, 0, 0))
    code = (
        "import sys\n"
        "from scanner.commands.classify import run_classify\n"
        "import scanner.classifiers.nudenet, client.sensitive\n"
        f"rc = run_classify([{str(image)!r}], model={str(detector)!r})\n"
        "try:\n"
        "    run_classify([], model='nudenet')\n"
        "except SystemExit:\n"
        "    pass\n"
        "assert 'cv2' not in sys.modules, 'cv2 was imported'\n"
        "sys.exit(rc)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.splitlines()[0])["label"] == "sensitive"


def test_non_finite_model_output_is_an_error_not_a_score(tmp_path: Path) -> None:
    """A hostile or broken user model whose output is NaN gives one ClassifierError, never a rating."""
    from onnx import TensorProto, helper, numpy_helper, save

    w = -np.ones((3, 2), np.float32)  # negative logits, then Log: NaN
    graph = helper.make_graph(
        [helper.make_node("GlobalAveragePool", ["input"], ["g"]),
         helper.make_node("Flatten", ["g"], ["f"], axis=1),
         helper.make_node("MatMul", ["f", "w"], ["m"]),
         helper.make_node("Log", ["m"], ["logits"])],
        "nan_classifier",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 32, 32])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 2])],
        [numpy_helper.from_array(w, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    path = tmp_path / "nan.onnx"
    save(model, str(path))
    path.with_suffix(".json").write_text(json.dumps({
        "name": "nan", "kind": "classifier", "input_size": 32, "labels": ["a", "b"],
        "sensitive_labels": ["a"], "threshold": 0.5}))
    with pytest.raises(ClassifierError, match="NaN or infinite"):
        classify_file(solid_png(tmp_path / "x.png", (200, 100, 50)), get_classifier(str(path)))
