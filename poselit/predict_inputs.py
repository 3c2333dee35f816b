"""Images and person boxes as :class:`~poselit.predict.Predictor` takes them, checked and converted.

Every image form (a path, a NumPy array, a PIL image, a tensor) becomes one ``(H, W, 3)``
uint8 RGB array (:func:`load_image`), and every box form (``[x, y, w, h]``, ``[x1, y1, x2,
y2]``, ``{"center", "scale"}``) the ``(center, scale)`` of the MPII convention that the
crops use (:func:`person_box`, :func:`whole_image_box`); what cannot be used is an
:class:`InputError` naming the image and the box. The boxes of the second pass and of video
tracking, around a predicted pose, come from :func:`joints_box`. The accepted forms are
listed in :mod:`poselit.predict`, which re-exports every name of this module.
"""

from __future__ import annotations

import json
import math
import numbers
import os
from pathlib import Path
from typing import Any, Literal, Mapping, Sequence, Union

import numpy as np
import torch
from PIL import Image, ImageOps

from poselit.data.dataset import image_to_rgb, pixels_to_uint8, read_image
from poselit.geometry import (
    DEFAULT_PADDING,
    PIXEL_STD,
    box_from_keypoints,
    box_xywh_to_center_scale,
    outside_image,
)

__all__ = [
    "BoxFormat",
    "BoxInput",
    "ColorOrder",
    "ImageInput",
    "InputError",
    "MAX_ZOOM",
    "MIN_BOX_SIDE",
    "box_list",
    "joints_box",
    "load_image",
    "person_box",
    "smallest_joints_box",
    "whole_image_box",
]

ImageInput = Union[str, os.PathLike, np.ndarray, Image.Image, torch.Tensor]
"""What :class:`~poselit.predict.Predictor` accepts as one image (see :mod:`poselit.predict`)."""

BoxInput = Union[Sequence[float], Mapping[str, Any], np.ndarray, torch.Tensor]
"""One person box: four numbers (``box_format``) or ``{"center": [x, y], "scale": s}``."""

BoxFormat = Literal["xywh", "xyxy"]
ColorOrder = Literal["rgb", "bgr"]

MIN_BOX_SIDE = 1.0
"""Smallest longer side of a person box, in pixels: below it the crop magnifies nothing."""

MAX_ZOOM = 4.0
"""Largest magnification (model input side / crop side) of a crop around predicted joints
(second pass, video tracking): a smaller box holds too few pixels for a pose, and a crop of
it would lock onto that spot (typically all joints collapsed onto one point by a model
that sees no person)."""


class InputError(ValueError):
    """An image or a person box given to the predictor cannot be used; says which and why."""


def load_image(image: ImageInput, *, color_order: ColorOrder = "rgb", name: str = "image") -> np.ndarray:
    """Any supported image (see :mod:`poselit.predict`) as a contiguous ``(H, W, 3)`` uint8
    RGB array.

    ``name`` identifies the image in errors (a path names itself).
    """
    if isinstance(image, (str, os.PathLike)):
        return read_image(Path(image))  # upright by EXIF; pixel limit; truncated files refused
    if isinstance(image, Image.Image):
        try:
            rgb = image_to_rgb(ImageOps.exif_transpose(image))  # by depth: 16-bit, float (mode F)
        except ValueError as err:
            raise InputError(f"{name}: {err}") from err
        return _to_rgb(rgb, "rgb", name)  # an empty image is refused as an empty array is
    if isinstance(image, torch.Tensor):
        array = image.detach().cpu().numpy()
        if array.ndim == 3:
            if array.shape[0] not in (1, 3, 4):
                raise InputError(
                    f"{name}: tensors are (C, H, W) with C = 1, 3 or 4, got shape {tuple(image.shape)}"
                )
            array = array.transpose(1, 2, 0)
        return _to_rgb(array, color_order, name)
    if isinstance(image, np.ndarray):
        return _to_rgb(image, color_order, name)
    raise InputError(
        f"{name}: expected a file path, NumPy array, PIL image or torch tensor, got {type(image).__name__}"
    )


def _to_rgb(array: np.ndarray, color_order: ColorOrder, name: str) -> np.ndarray:
    """``(H, W[, C])`` array of any depth (:func:`~poselit.data.dataset.pixels_to_uint8`:
    8-bit, 16-bit, [0, 1] floats) -> ``(H, W, 3)`` uint8 RGB."""
    if color_order not in ("rgb", "bgr"):
        raise ValueError(f"color_order must be 'rgb' or 'bgr', got {color_order!r}")
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[2] not in (1, 3, 4):
        raise InputError(
            f"{name}: arrays are (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) (tensors (C, H, W)), "
            f"got shape {array.shape}"
        )
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise InputError(f"{name}: the image is empty (shape {array.shape})")
    try:
        array = pixels_to_uint8(array)
    except ValueError as err:
        raise InputError(f"{name}: {err}") from err
    channels = array.shape[2]
    if channels == 1:
        array = np.repeat(array, 3, axis=2)  # grayscale -> three equal channels
    array = array[..., :3]  # drop alpha
    if color_order == "bgr":
        array = array[..., ::-1]
    return np.ascontiguousarray(array)


def whole_image_box(
    size: tuple[int, int], padding: float = DEFAULT_PADDING, input_size: tuple[int, int] | None = None
) -> tuple[np.ndarray, float]:
    """``(center, scale)`` whose padded crop into a model input of ``input_size`` holds the
    whole image of ``size = (height, width)``, centred, as large as it fits.

    The image spans pixel edges ``-0.5 ... W - 0.5``. :func:`~poselit.geometry.crop_affine`
    fits the box side to the input's height and the input's width sees ``side * in_w / in_h``
    px, so the side is the image's height or its width scaled to the input's aspect,
    whichever is longer (``None``: a square input, the image's longer side).

    >>> round(whole_image_box((480, 640), padding=1.0, input_size=(64, 48))[1] * 200, 1)  # 640 * 64 / 48
    853.3
    """
    height, width = size
    in_height, in_width = input_size or (1, 1)
    side = max(height, width * in_height / in_width)
    return np.array([(width - 1) / 2, (height - 1) / 2], np.float32), side / (PIXEL_STD * padding)


def person_box(
    box: BoxInput, size: tuple[int, int], *, box_format: BoxFormat = "xywh", name: str = "image"
) -> tuple[np.ndarray, float]:
    """``(center, scale)`` of one person box (see :mod:`poselit.predict`) in an image of ``size``.

    Raises :class:`InputError` naming the image and the box if it is malformed, has zero
    size, or lies entirely outside the image.
    """
    where = f"{name}: box {_describe(box)}"
    x0, y0, w, h = _box_xywh(box, box_format, where)
    if not (w > 0 and h > 0):
        raise InputError(f"{where}: the box has zero or negative size ({box_format})")
    if max(w, h) < MIN_BOX_SIDE:
        raise InputError(f"{where}: the box is smaller than {MIN_BOX_SIDE:g} px ({box_format})")
    height, width = size
    if x0 + w <= -0.5 or y0 + h <= -0.5 or x0 >= width - 0.5 or y0 >= height - 0.5:
        raise InputError(f"{where}: the box lies entirely outside the {width}x{height} image")
    center, scale = box_xywh_to_center_scale([x0, y0, w, h])
    reason = outside_image(center, ["box centre"], PIXEL_STD * scale, size)
    if reason:
        raise InputError(f"{where}: {reason}")
    return center, scale


def smallest_joints_box(input_size: tuple[int, int], padding: float) -> float:
    """Smallest side, px, of a box around predicted joints whose crop (the box plus the
    margin ``padding``) magnifies at most :data:`MAX_ZOOM` times into ``input_size``.

    >>> smallest_joints_box((256, 256), padding=1.25)  # a 51 px box: a 64 px crop, 4x
    51.2
    """
    return input_size[0] / (MAX_ZOOM * padding)


def joints_box(
    keypoints: np.ndarray, joints: np.ndarray, size: tuple[int, int], *, min_side: float
) -> dict[str, Any] | None:
    """The person box ``{"center", "scale"}`` tight around the selected ``joints`` (``(K,)``
    booleans) of a predicted pose in an image of ``size = (height, width)``, or ``None``
    when it cannot be cropped: no joint selected, centre outside the image, side longer
    than the image's longer side or shorter than ``min_side`` px.

    >>> joints_box(np.array([[10.0, 20.0], [30.0, 60.0]]), np.array([True, True]), (100, 100), min_side=10)
    {'center': [20.0, 40.0], 'scale': 0.2}
    """
    joints = np.asarray(joints, bool)
    if not joints.any():
        return None
    center, scale = box_from_keypoints(keypoints, joints)
    height, width = size
    inside = -0.5 <= center[0] <= width - 0.5 and -0.5 <= center[1] <= height - 0.5
    if not inside or not min_side <= PIXEL_STD * scale <= max(height, width):
        return None
    return {"center": center.tolist(), "scale": scale}


def _box_xywh(box: BoxInput, box_format: BoxFormat, where: str) -> list[float]:
    """Any box form as finite ``[x, y, w, h]``."""
    if isinstance(box, Mapping):
        if set(box) != {"center", "scale"}:
            raise InputError(f"{where}: a box mapping has exactly the keys 'center' and 'scale'")
        try:
            center, scale = np.asarray(box["center"], np.float64), float(box["scale"])
        except (TypeError, ValueError):
            center, scale = np.zeros(0), math.nan
        if center.shape != (2,) or not np.isfinite(center).all() or not (math.isfinite(scale) and scale > 0):
            raise InputError(f"{where}: expected a finite centre [x, y] and a scale > 0")
        side = PIXEL_STD * scale
        return [center[0] - side / 2, center[1] - side / 2, side, side]
    if box_format not in ("xywh", "xyxy"):
        raise ValueError(f"box_format must be 'xywh' or 'xyxy', got {box_format!r}")
    try:
        values = np.asarray(box, np.float64).reshape(-1)
    except (TypeError, ValueError):
        values = np.zeros(0)
    if values.shape != (4,) or not np.isfinite(values).all():
        raise InputError(f"{where}: expected four finite numbers [{', '.join(box_format)}]")
    x0, y0, a, b = values.tolist()
    return [x0, y0, a - x0, b - y0] if box_format == "xyxy" else [x0, y0, a, b]


def _describe(box: Any) -> str:
    return json.dumps(box.tolist() if hasattr(box, "tolist") else box, default=str)


def box_list(boxes: Any, name: str = "image") -> list[Any]:
    """One image's boxes as a list: ``None`` -> ``[None]`` (whole image), one box -> ``[box]``,
    a list of boxes -> that list (``[]``: nobody to predict in this image of a batch); anything
    else (``true``, a number, a string) is an :class:`InputError` naming the image."""
    if boxes is None:
        return [None]
    if hasattr(boxes, "tolist"):
        boxes = boxes.tolist()
    if isinstance(boxes, (str, bytes)) or not isinstance(boxes, (Sequence, Mapping)):
        raise InputError(
            f"{name}: expected a box ([x, y, w, h] or {{\"center\": [x, y], \"scale\": s}}), a list of "
            f"boxes or null, got {_describe(boxes)}"
        )
    if isinstance(boxes, Mapping) or (len(boxes) > 0 and isinstance(boxes[0], numbers.Real)):
        return [boxes]
    return list(boxes)
