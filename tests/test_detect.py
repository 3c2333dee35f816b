"""People in any photo (issue 27): person detectors (:mod:`poselit.detect`), ``Predictor(detector=...)``
and ``poselit predict --detect`` / ``--max-people``, and the whole-image warning.

The code path runs on stand-ins (a detector as a plain function, a tiny ONNX "MoveNet" built
here with torch.onnx); the shipped MoveNet MultiPose file is checked on real COCO photos."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch

from poselit.cli import main
from poselit.detect import (
    DETECTOR_FILE,
    DetectorNotFound,
    MoveNetDetector,
    WholeImageWarning,
    check_detections,
    default_detector,
    detect_people,
)
from poselit.predict import Predictor, person_box
from tiny_models import ConstantModel

pytestmark = pytest.mark.usefixtures("one_thread")  # small tensors (tests/conftest.py)

SIZE = (64, 48)
BOXES = [[10, 20, 40, 90], [200, 30, 60, 150], [120, 100, 30, 60]]
SCORES = [0.3, 0.9, 0.6]


class FakeDetector:
    """A detector that always finds :data:`BOXES` with :data:`SCORES` and counts its calls."""

    def __init__(self, boxes=BOXES, scores=SCORES):
        self.boxes, self.scores, self.calls = boxes, scores, 0

    def __call__(self, rgb):
        assert rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3
        self.calls += 1
        return torch.tensor(self.boxes, dtype=torch.float32), torch.tensor(self.scores)  # tensors are fine too


def constant_model(keypoints: float | list = 20.0) -> ConstantModel:
    fixed = torch.full((1, 14, 2), keypoints) if isinstance(keypoints, float) else torch.tensor(keypoints)[None]
    return ConstantModel(fixed.float(), input_size=SIZE, flip_test=False)


def centres(poses) -> list[list[float]]:
    return [np.round(pose.center, 3).tolist() for pose in poses]


def expected_centres(boxes, shape) -> list[list[float]]:
    return [np.round(person_box(box, shape)[0], 3).tolist() for box in boxes]


def test_one_pose_per_detected_person_surest_first_at_most_max_people():
    image = np.zeros((300, 400, 3), np.uint8)
    detector = FakeDetector()
    poses = Predictor(constant_model(), detector=detector, runtime="torch")(image)
    assert centres(poses) == expected_centres([BOXES[1], BOXES[2], BOXES[0]], image.shape[:2])
    assert [pose.detection_score for pose in poses] == pytest.approx([0.9, 0.6, 0.3])
    assert [person["detection_score"] for person in poses[0].to_dict()["people"]] == [0.9]
    assert [pose.scale for pose in poses] == pytest.approx([person_box(b, (300, 400))[1] for b in (BOXES[1], BOXES[2], BOXES[0])])
    two = Predictor(constant_model(), detector=detector, max_people=2, runtime="torch")(image)
    assert centres(two) == centres(poses)[:2]
    # A box given for an image is used as it is (no detection there); nobody found: no pose.
    detector.calls = 0
    boxed, *detected = Predictor(constant_model(), detector=detector, runtime="torch")(
        [image, image], boxes=[[[5, 5, 50, 60]], None]
    )
    assert detector.calls == 1 and boxed.image_index == 0 and centres([boxed]) == expected_centres([[5, 5, 50, 60]], (300, 400))
    assert [pose.image_index for pose in detected] == [1, 1, 1]
    assert boxed.detection_score is None and "detection_score" not in boxed.to_dict()["people"][0]  # a given box
    assert [pose.detection_score for pose in detected] == pytest.approx([0.9, 0.6, 0.3])
    assert Predictor(constant_model(), detector=FakeDetector([], []), runtime="torch")(image) == []


def test_detections_are_checked_and_unusable_boxes_dropped():
    with pytest.raises(ValueError, match=r"^a.jpg: a person detector must return \(boxes \(N, 4\)"):
        check_detections({"boxes": []}, "a.jpg")
    with pytest.raises(ValueError, match=r"^b.jpg: a person detector must return boxes \(N, 4\) and scores \(N,\), got shapes \(2, 3\)"):
        check_detections(([[0, 0, 1], [1, 1, 1]], [0.5, 0.5]), "b.jpg")
    with pytest.raises(ValueError, match=r"got shapes \(1, 4\) and \(2,\)"):
        check_detections(([[0, 0, 1, 1]], [0.5, 0.5]))
    boxes, scores = check_detections(([], []))
    assert boxes.shape == (0, 4) and scores.shape == (0,)
    boxes, scores = detect_people(lambda rgb: ([[0, 0, 0.5, 10], [0, 0, 10, np.nan], [1, 2, 3, 4]], [0.9, 0.8, 0.1]), None)
    assert boxes.tolist() == [[1.0, 2.0, 3.0, 4.0]] and scores.tolist() == pytest.approx([0.1])
    boxes, scores = detect_people(lambda rgb: ([], []), None, max_people=2)
    assert boxes.shape == (0, 4) and scores.shape == (0,)
    image = np.zeros((50, 50, 3), np.uint8)
    with pytest.raises(ValueError, match=r"^image\[0\]: a person detector must return"):
        Predictor(constant_model(), detector=lambda rgb: None, runtime="torch")(image)
    with pytest.raises(ValueError, match=r"^max_people must be >= 1, got 0"):
        Predictor(constant_model(), detector=FakeDetector(), max_people=0, runtime="torch")
    with pytest.raises(ValueError, match=r"^max_people limits the people a detector finds: give detector= too"):
        Predictor(constant_model(), max_people=2, runtime="torch")


def test_whole_image_poses_of_small_or_unsure_people_warn_once():
    image = np.zeros((300, 400, 3), np.uint8)
    small = Predictor(constant_model(20.0), runtime="torch")  # every joint at one point: a tiny person
    with pytest.warns(WholeImageWarning) as caught:
        small([image, image])
        small(image)
    [warning] = caught
    message = str(warning.message)
    assert message.startswith("image[0]: the person looks small (their joints span 0% of the image); give person boxes")
    assert "detector=poselit.detect.default_detector()" in message and "--detect" in message and "\n" not in message
    spread = [[4.0 + 40 * (i % 2), 4.0 + 4 * i] for i in range(14)]  # a person filling the crop, sure of each joint
    with warnings.catch_warnings():
        warnings.simplefilter("error", WholeImageWarning)
        Predictor(constant_model(spread), runtime="torch")(image)
        Predictor(constant_model(20.0), runtime="torch")(image, box=[10, 10, 100, 200])  # a box: no warning
        Predictor(constant_model(20.0), detector=FakeDetector(), runtime="torch")(image)  # a detector: none


class BrightBox(torch.nn.Module):
    """A stand-in for MoveNet MultiPose (same input and output): one person, the box around the
    bright pixels (``(ymin, xmin, ymax, xmax)`` edges in [0, 1] of the input), scoring 0.9."""

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        bright = (pixels.float().sum(-1)[0] > 300).float()  # (H, W)
        rows, cols = bright.amax(1), bright.amax(0)
        ys = torch.arange(rows.shape[0], dtype=torch.float32)
        xs = torch.arange(cols.shape[0], dtype=torch.float32)
        height, width = ys[-1] + 1, xs[-1] + 1
        box = torch.stack([
            torch.where(rows > 0, ys, height).amin() / height, torch.where(cols > 0, xs, width).amin() / width,
            (torch.where(rows > 0, ys, -1.0).amax() + 1) / height, (torch.where(cols > 0, xs, -1.0).amax() + 1) / width,
            torch.full_like(height, 0.9),
        ])
        person = torch.cat([torch.zeros(51), box])
        return torch.stack([person, *[torch.zeros(56)] * 5])[None]


@pytest.fixture(scope="module")
def tiny_movenet(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("detector") / "bright-box.onnx"
    torch.onnx.export(BrightBox(), (torch.zeros(1, 64, 96, 3, dtype=torch.int32),), str(path), dynamo=False,
                      opset_version=17, input_names=["input"], output_names=["people"],
                      dynamic_axes={"input": {1: "height", 2: "width"}})
    return path


def test_movenet_detector_maps_its_boxes_back_to_the_image(tiny_movenet):
    image = np.zeros((300, 500, 3), np.uint8)
    image[60:240, 100:200] = 255  # rows 60-239, columns 100-199: edges at 59.5 and 239.5, 99.5 and 199.5
    detector = MoveNetDetector(tiny_movenet, threads=1)
    pixels, scales = detector.letterbox(image)
    assert pixels.shape == (1, 160, 256, 3) and pixels.dtype == np.int32  # longer side 256, padded to 32s
    assert scales == pytest.approx((154 / 300, 256 / 500))
    boxes, scores = detector(image)
    np.testing.assert_allclose(boxes, [[99.5, 59.5, 100, 180]], atol=2.5)  # about one input pixel
    assert scores == pytest.approx([0.9])
    portrait = np.ascontiguousarray(image.transpose(1, 0, 2))
    np.testing.assert_allclose(MoveNetDetector(tiny_movenet, size=384)(portrait)[0], [[59.5, 99.5, 180, 100]], atol=1.5)
    assert MoveNetDetector(tiny_movenet, min_score=0.95)(image)[0].shape == (0, 4)
    with pytest.raises(ValueError, match=r"^size must be a positive multiple of 32, got 250"):
        MoveNetDetector(tiny_movenet, size=250)


def test_a_missing_detector_file_says_how_to_build_it(tmp_path):
    with pytest.raises(DetectorNotFound, match=r"person detector .*nothing.onnx not found; build it once.*"
                       r"tools/person_detector_onnx.py convert package/models --out .*nothing.onnx$"):
        MoveNetDetector(tmp_path / "nothing.onnx")


@pytest.fixture
def cli_stand_ins(monkeypatch, tiny_movenet):
    """The zoo's ``load_with_card`` returning a constant model, and the default detector the tiny ONNX one."""
    monkeypatch.setattr("poselit.zoo.load_with_card", lambda name, **kwargs: (constant_model(), SimpleNamespace(input={})))
    monkeypatch.setattr("poselit.zoo.load", lambda name, **kwargs: constant_model())
    monkeypatch.setattr("poselit.detect.default_detector", lambda **options: MoveNetDetector(tiny_movenet, **options))


def test_cli_detect_and_max_people(tmp_path, cli_stand_ins, capsys):
    image = np.zeros((300, 500, 3), np.uint8)
    image[60:240, 100:200] = 255
    cv2.imwrite(str(tmp_path / "photo.png"), image)
    (tmp_path / "dark.png").write_bytes(cv2.imencode(".png", np.zeros((40, 40, 3), np.uint8))[1].tobytes())
    run = ["predict", str(tmp_path / "photo.png"), str(tmp_path / "dark.png"), "--model", "m", "--device", "cpu",
           "--runtime", "torch", "--quiet", "--detect"]
    assert main([*run, "--out", str(tmp_path / "out"), "--max-people", "1"]) == 0
    [person] = json.loads((tmp_path / "out" / "photo.json").read_text())["people"]
    np.testing.assert_allclose(person["box"]["center"], person_box([99.5, 59.5, 100, 180], (300, 500))[0], atol=2.5)
    assert person["detection_score"] == pytest.approx(0.9)  # the tiny ONNX detector's
    assert json.loads((tmp_path / "out" / "dark.json").read_text())["people"] == []
    assert main([*run[:-1], "--out", str(tmp_path / "o2"), "--max-people", "2"]) == 2
    assert capsys.readouterr().err.strip() == "poselit: error: --max-people N limits the people --detect finds: add --detect"


def test_the_shipped_detector_is_small_and_stores_float16_weights():
    import onnx

    assert DETECTOR_FILE.stat().st_size <= 10 * 2**20
    model = onnx.load(str(DETECTOR_FILE))
    halves = sum(int(np.prod(t.dims)) for t in model.graph.initializer if t.data_type == onnx.TensorProto.FLOAT16)
    assert halves > 4_500_000  # MoveNet MultiPose Lightning's 4.7 M weights
    assert "google/movenet/multipose/lightning/1" in {p.key: p.value for p in model.metadata_props}["source"]
    for name in ("LICENSE", "NOTICE.md"):
        assert (DETECTOR_FILE.parent / name).is_file()


def benchmark():
    """``benchmarks/detector.py`` as a module (its IoU matching: one implementation)."""
    import importlib.util
    import sys

    folder = Path(__file__).resolve().parents[1] / "benchmarks"
    sys.path.insert(0, str(folder))  # its own imports (train_step)
    spec = importlib.util.spec_from_file_location("detector_benchmark", folder / "detector.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_the_default_detector_finds_the_people_of_coco_photos(data_root):
    """On the four COCO val photos, every large person (COCO's class: area >= 96² px) is found
    (IoU >= 0.5), and the predictor gives one pose per detected person, the surest first."""
    from poselit.zoo import load

    coco = json.loads((data_root / "coco" / "test_coco.json").read_text())
    detector, match = default_detector(threads=1), benchmark().match
    for entry in coco["images"]:
        rgb = cv2.imread(str(data_root / "coco" / entry["file_name"]))[:, :, ::-1]
        boxes, scores = detector(rgb)
        assert (np.diff(scores) <= 0).all() and (scores >= detector.min_score).all()
        truth = [a["bbox"] for a in coco["annotations"] if a["image_id"] == entry["id"] and a["area"] >= 96**2]
        assert all(match(boxes, truth)), (entry["file_name"], truth, boxes.tolist())
    several = str(data_root / "coco" / "000000040083.jpg")
    poses = Predictor(load("luvizon-tiny-lsp-demo"), detector=detector)(several)
    found = detector(cv2.imread(several)[:, :, ::-1])[0]
    assert len(poses) == len(found) >= 2
    assert centres(poses) == expected_centres(found.tolist(), poses[0].image_size)


@pytest.mark.slow
def test_the_detector_benchmark_runs_and_reports_recall_and_latency():
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "benchmarks/detector.py", "--smoke"], cwd=repo, capture_output=True,
                          text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    lsp = result["sets"]["lsp"]
    assert lsp["images"] == lsp["people"] == 4 and 0 <= lsp["found"] <= 4 and lsp["recall"] == lsp["found"] / 4
    latency = result["latency"]
    assert latency["images"] == 2 and latency["detector_ms"]["cpu"] > 0 and latency["predict_ms"]["detect"]["wall"] > 0
    assert result["threads"] == 1 and result["smoke"]
