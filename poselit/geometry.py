"""Person boxes, crop affines, and the mappings of predictions back: from a crop to its
image, from a mirrored crop to the crop (the flip test).

Conventions (``docs/datasets.md``, "Conventions"):

* the centre of the top-left pixel is (0, 0), in every image, crop and heatmap;
* a person box is ``(center, scale)``: a square of side ``200 * scale`` px
  (:data:`PIXEL_STD`, the MPII convention);
* sizes are ``(height, width)`` like tensors; points are ``(x, y)``.

A crop is ONE 2x3 affine matrix ``original -> input`` that combines centring, scaling,
rotation about the box centre and a horizontal flip, so each sample is resampled once.
Functions accept NumPy arrays or torch tensors, batched over leading dimensions.
"""

from __future__ import annotations

import math
import numbers
from typing import TYPE_CHECKING, Any, Sequence, TypeVar

import cv2
import numpy as np

if TYPE_CHECKING:
    from torch import Tensor

Array = TypeVar("Array")  # np.ndarray or torch.Tensor

PIXEL_STD = 200.0
"""Person-box side in pixels per unit of ``scale`` (the MPII annotation convention)."""


IMAGE_MARGIN = 1.0
"""How far outside its image a person may reach, in units of the image's longer side.

Annotated joints and box centres farther out, and person boxes larger than the image with
this margin on every side (3x its longer side), are absurd (a 1e30 coordinate, a person
thousands of pixels off a 640 px photograph): readers and the predictor refuse them rather
than crop black squares. Real data stay well inside: LSP-extended's farthest annotated
joint is 0.6 longer sides out, the largest box of LSP, MPII and COCO 1.3 longer sides.
"""


DEFAULT_PADDING = 1.25
"""Margin around a person box when cropping, the default of every model
(:class:`~poselit.models.base.PoseLitModule`'s ``padding``, linked from the data module): the
crop side is ``200 * scale * padding`` px. Models and cards that record none crop with it."""

DEFAULT_FILL = 0
"""Value of crop pixels outside the image, the default of every model (``fill``); models
and cards that record none crop with it."""


def check_padding(padding: Any, what: str = "padding", error: type[Exception] = ValueError) -> float:
    """``padding`` as a float, or ``error`` saying ``what`` must be a number > 0.

    The crop side is ``200 * scale * padding`` px: zero, negative, non-finite or
    non-numeric paddings have no meaning.
    """
    number = isinstance(padding, numbers.Real) and not isinstance(padding, bool)
    if not (number and math.isfinite(padding) and padding > 0):
        raise error(f"{what} must be a number > 0 (the crop side is 200 * scale * padding), got {padding!r}")
    return float(padding)


def check_fill(fill: Any, what: str = "fill", error: type[Exception] = ValueError) -> int:
    """``fill`` as an int, or ``error`` saying ``what`` must be an integer in [0, 255] (a
    uint8 pixel value, the same for the three channels)."""
    integer = isinstance(fill, numbers.Integral) and not isinstance(fill, bool)
    if not (integer and 0 <= fill <= 255):
        raise error(f"{what} must be an integer in [0, 255] (a pixel value), got {fill!r}")
    return int(fill)


def outside_image(points: np.ndarray, names: Sequence[str], side: float, size: tuple[int, int]) -> str | None:
    """Why a person cannot be in an image of ``size = (height, width)``, or ``None``.

    ``points`` are ``(N, 2)`` positions named by ``names`` (its annotated joints, its box
    centre) and ``side`` its box side in pixels; limits: :data:`IMAGE_MARGIN`.
    """
    height, width = size
    longer = max(height, width)
    reach = IMAGE_MARGIN * longer
    low, high = -0.5 - reach, np.array([width, height]) - 0.5 + reach
    points = np.asarray(points, np.float64).reshape(-1, 2)
    far = np.flatnonzero(~((points >= low) & (points <= high)).all(axis=1))
    if far.size:
        x, y = points[far[0]]
        return f"{names[far[0]]} at ({x:.6g}, {y:.6g}) lies more than {reach:g} px outside the {width}x{height} image"
    if not side <= longer + 2 * reach:
        return f"person box of side {side:.6g} px is more than {1 + 2 * IMAGE_MARGIN:g}x the {width}x{height} image's longer side"
    return None


def box_from_keypoints(keypoints: np.ndarray, visibility: np.ndarray) -> tuple[np.ndarray, float]:
    """Tight person box around the annotated joints: ``(center, scale)``.

    ``scale`` is the longer side of the joints' bounding box over 200 px (no padding:
    the dataset's ``padding`` factor enlarges every box the same way).
    """
    annotated = np.asarray(visibility) > 0
    if not annotated.any():
        raise ValueError("cannot build a person box: no joint is annotated")
    pts = np.asarray(keypoints, dtype=np.float64)[annotated]
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    side = float(max((hi - lo).max(), 1.0))
    return ((lo + hi) / 2).astype(np.float32), side / PIXEL_STD


def box_xywh_to_center_scale(box: Sequence[float]) -> tuple[np.ndarray, float]:
    """COCO ``[x, y, w, h]`` box -> ``(center, scale)`` of the square around its longer side."""
    x, y, w, h = (float(v) for v in box)
    if not (w > 0 and h > 0):
        raise ValueError(f"box {list(box)} has zero or negative size")
    return np.array([x + w / 2, y + h / 2], np.float32), max(w, h) / PIXEL_STD


def crop_affine(
    center: Sequence[float],
    scale: float,
    size: tuple[int, int],
    *,
    padding: float = 1.0,
    rotation: float = 0.0,
    flip: bool = False,
) -> np.ndarray:
    """Affine ``original -> input`` for a crop of ``size = (height, width)`` pixels.

    The box of side ``200 * scale * padding`` px around ``center`` fills the crop's height
    (the width follows the crop's aspect ratio); the crop is rotated by ``rotation``
    degrees counter-clockwise about the box centre, then mirrored left-right if ``flip``.
    """
    height, width = size
    side = PIXEL_STD * scale * padding
    if not side > 0:
        raise ValueError(f"crop box side must be > 0, got 200 * {scale} * {padding}")
    s = height / side
    theta = math.radians(rotation)
    cos, sin = math.cos(theta) * s, math.sin(theta) * s
    # Image y points down, so a counter-clockwise rotation on screen is [[c, s], [-s, c]].
    linear = np.array([[cos, sin], [-sin, cos]])
    if flip:
        linear[0] *= -1
    out_center = np.array([(width - 1) / 2, (height - 1) / 2])
    translation = out_center - linear @ np.asarray(center, dtype=np.float64)
    return np.concatenate([linear, translation[:, None]], axis=1).astype(np.float64)


def warp_image(image: np.ndarray, affine: np.ndarray, size: tuple[int, int], fill: int = 0) -> np.ndarray:
    """Resample an ``(H, W, C)`` image through the ``original -> output`` ``affine`` into a
    crop of ``size = (height, width)``: bilinear, pixels outside the image set to ``fill``.

    With an affine from :func:`crop_affine` this is the one resampling of a sample; the
    dataset and the predictor both crop through it.
    """
    height, width = size
    return cv2.warpAffine(
        image,
        np.asarray(affine, dtype=np.float64),
        (width, height),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=(fill,) * 3,
    )


def apply_affine(points: Array, affine: Array) -> Array:
    """Map ``(..., N, 2)`` points through ``(..., 2, 3)`` affines (NumPy or torch)."""
    return points @ affine[..., :2].swapaxes(-1, -2) + affine[..., None, :, 2]


def to_image_coords(keypoints: Array, affine: Array) -> Array:
    """``(B, K, 2)`` keypoints in model-input pixels -> original-image pixels, through each
    crop's ``(B, 2, 3)`` input -> original ``affine``: the one way back, for the training
    loop's predict step and metrics (torch tensors) and :class:`~poselit.predict.Predictor`
    with every runtime (NumPy: a few microseconds, where torch's per-operation dispatch
    took a third of a millisecond per image).

    Computed where ``affine`` is, in float32 (float64 for a float64 affine) whatever the
    model's precision: a bfloat16 keypoint would be off by up to a pixel in a large image.

    >>> import numpy as np
    >>> to_image_coords(np.array([[[10.0, 20.0]]]), np.array([[[2.0, 0.0, 5.0], [0.0, 2.0, 1.0]]]))
    array([[[25., 41.]]])
    """
    if isinstance(affine, np.ndarray):
        dtype = np.float64 if affine.dtype == np.float64 else np.float32
        return apply_affine(np.asarray(keypoints, dtype), affine.astype(dtype, copy=False))
    float64 = affine.is_floating_point() and affine.element_size() == 8
    affine = affine.double() if float64 else affine.float()
    return apply_affine(keypoints.to(affine), affine)


def flip_back_keypoints(keypoints: Tensor, flip_index: Tensor, width: int) -> Tensor:
    """``(B, K, 2)`` keypoints predicted on mirrored crops ``width`` pixels wide -> the
    unmirrored crops' frame, each joint moved to its mirror partner's place
    (``flip_index``, :attr:`poselit.skeletons.Skeleton.flip_index`): ``x -> width - 1 - x``
    (pixel centres). The flip test's mapping for keypoints
    (:class:`poselit.codecs.CoordinateCodec`), traced into ONNX exports with it.

    >>> import torch
    >>> flip_back_keypoints(torch.tensor([[[1.0, 5.0], [6.0, 2.0]]]), torch.tensor([1, 0]), width=8)
    tensor([[[1., 2.],
             [6., 5.]]])
    """
    restored = keypoints[:, flip_index].clone()
    restored[..., 0] = (width - 1) - restored[..., 0]
    return restored


def flip_back_heatmaps(heatmaps: Tensor, flip_index: Tensor) -> Tensor:
    """``(B, K, h, w)`` heatmaps predicted on mirrored crops, mirrored back with each joint's
    map moved to its mirror partner's channel: the flip test's mapping for heatmaps
    (:class:`poselit.codecs.HeatmapCodec`). Exact for maps whose stride divides the crop
    width (the pixel-centre convention of :mod:`poselit.codecs`)."""
    return heatmaps.flip(-1)[:, flip_index]


def invert_affine(affine: np.ndarray) -> np.ndarray:
    """Inverse of a ``(..., 2, 3)`` affine (``input -> original`` from ``original -> input``).

    >>> affine = np.array([[2.0, 0.0, 4.0], [0.0, 4.0, 8.0]])
    >>> invert_affine(affine) @ [6.0, 12.0, 1.0]  # the point that ``affine`` takes to (6, 12)
    array([1., 1.])
    """
    affine = np.asarray(affine, dtype=np.float64)
    linear_inv = np.linalg.inv(affine[..., :2])
    translation = -(linear_inv @ affine[..., 2:])
    return np.concatenate([linear_inv, translation], axis=-1)


def affine_scale(affine: Array) -> Array:
    """Length scale factor of an affine (square root of its absolute determinant).

    Converts a length such as a PCK normaliser between the two coordinate frames.
    """
    det = affine[..., 0, 0] * affine[..., 1, 1] - affine[..., 0, 1] * affine[..., 1, 0]
    return abs(det) ** 0.5
