"""Poses of people in your own images: :class:`Predictor` (the library side of ``poselit predict``).

A :class:`Predictor` wraps a trained :class:`~poselit.models.base.PoseLitModule`. It
takes images as they come, crops each person exactly as the dataset crops training
samples (one affine warp, :func:`~poselit.geometry.crop_affine`), runs the model in
batches on its device (flip test as the model's default, optional autocast) and maps
the joints back to the original image's pixels (the centre of the top-left pixel is
(0, 0)):

>>> import numpy as np, poselit
>>> predictor = Predictor(poselit.zoo.load("luvizon-tiny-lsp-demo"))
>>> photo = np.zeros((480, 640, 3), np.uint8)        # or a path, a PIL image, a tensor
>>> pose = predictor(photo, box=[120, 40, 200, 420])[0]  # [x, y, w, h]; no box: the whole image
>>> pose.keypoints.shape, pose.scores.shape, pose.joint_names[-1]  # original-image pixels
((14, 2), (14,), 'head_top')

**Images** (one, or a list): a file path; a NumPy array ``(H, W)``, ``(H, W, 1)``,
``(H, W, 3)`` or ``(H, W, 4)`` in RGB(A) order, or BGR(A) with ``color_order="bgr"``
(OpenCV's); a ``PIL.Image``; a torch tensor ``(C, H, W)`` or ``(H, W)`` (``C`` = 1, 3 or 4).
Arrays and tensors are ``uint8``, or floating point with values in [0, 1]. Conversions:
grayscale is repeated into three channels; an alpha channel is dropped (not composited);
files and PIL images are turned upright by their EXIF orientation. An empty, unreadable or
otherwise unusable image raises an error naming it.

**Person boxes** (optional, per image: one box or a list of boxes, one prediction per box):
four numbers ``[x, y, w, h]`` (``box_format="xywh"``, COCO's) or ``[x1, y1, x2, y2]``
(``"xyxy"``) in the image's pixels, or ``{"center": [x, y], "scale": s}`` (MPII's
convention: a square of side ``200 * s`` px). A box is the tight box around the person:
the crop adds the model's margin (``padding``, as in training). Without a box the
whole image is the crop (its longer side fills the model input, no margin added). A box
with zero size, a non-finite number, entirely outside the image, smaller than
:data:`MIN_BOX_SIDE` or absurdly large (over 3x the image's longer side, see
:data:`poselit.geometry.IMAGE_MARGIN`) raises an :class:`InputError` naming the image and
the box; a box partly outside the image is fine (the outside is filled with ``fill``).
Files above the pixel limit (:func:`poselit.data.dataset.max_image_pixels`, 100
megapixels; ``POSELIT_MAX_IMAGE_PIXELS``) are refused from their header, before decoding;
truncated files are errors, not partly grey images.

**Second pass** (``refine=True``; people without a box only): in the whole-image crop a
small person in a large photograph spans few model-input pixels. The second pass crops
again around the first pass's pose, as training crops are built around the annotated
joints: the tight box around all the predicted joints (:func:`joints_box`; not only the
confident ones: a box that misses a joint cuts its limb off, one widened by a wrong joint
still holds the person) plus the margin ``padding``, and predicts again. The first pose
stays when its box cannot be cropped (centre outside the image, side longer than the
image's longer side, or so short that the crop would magnify more than :data:`MAX_ZOOM`
times). It costs one more forward pass per such person.

**Results**: one :class:`PosePrediction` per person, in input order.

**Files** (``poselit predict``): one JSON document per image, ``<out>/<image stem>.json``
(or one per line of ``<out>/predictions.jsonl`` with ``--jsonl``), and the annotated
image ``<out>/<image stem>.png`` (downscaled to
:data:`poselit.cli.predict.ANNOTATED_MAX_SIDE` px on its longer side). A document::

    {
      "image": "photos/a.jpg",          # the input path
      "width": 640, "height": 480,      # of the image, in pixels
      "model": "luvizon-tiny-lsp-demo",
      "skeleton": {"name": "lsp",
                   "joints": ["right_ankle", ...],      # K joint names
                   "limbs": [[0, 1], ...]},             # bones, 0-based joint indices
      "people": [
        {"box": {"center": [x, y], "scale": s},         # the person box used (MPII convention)
         "keypoints": [[x, y], ...],                    # K joints, original-image pixels
         "scores": [s, ...]}                            # K per-joint scores, higher = surer
      ]
    }

``--boxes FILE`` is a JSON object mapping an image (its file name, or its path as given
on the command line) to one box or a list of boxes in the forms above, e.g.
``{"a.jpg": [120, 40, 200, 420], "b.jpg": [[10, 10, 50, 90], {"center": [300, 200], "scale": 1.2}]}``;
images it does not name use the whole image.
"""

from __future__ import annotations

import json
import math
import numbers
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Literal, Mapping, Sequence, Union

import cv2
import numpy as np
import torch
from PIL import Image, ImageOps
from tqdm import tqdm

from poselit.data.dataset import read_image
from poselit.geometry import (
    DEFAULT_PADDING,
    PIXEL_STD,
    apply_affine,
    box_from_keypoints,
    box_xywh_to_center_scale,
    check_fill,
    check_padding,
    crop_affine,
    invert_affine,
    outside_image,
    warp_image,
)
from poselit.models.base import PoseLitModule, to_image_coords
from poselit.progress import show_progress
from poselit.skeletons import Skeleton
from poselit.visualize import draw_skeleton

ImageInput = Union[str, os.PathLike, np.ndarray, Image.Image, torch.Tensor]
"""What :class:`Predictor` accepts as one image (see the module docs)."""

BoxInput = Union[Sequence[float], Mapping[str, Any], np.ndarray, torch.Tensor]
"""One person box: four numbers (``box_format``) or ``{"center": [x, y], "scale": s}``."""

BoxFormat = Literal["xywh", "xyxy"]
ColorOrder = Literal["rgb", "bgr"]

SAMPLES = Path(__file__).resolve().parent / "assets" / "samples"
"""The bundled sample images of ``poselit demo`` (origin and licence in ``SOURCES.md`` there)."""


MIN_BOX_SIDE = 1.0
"""Smallest longer side of a person box, in pixels: below it the crop magnifies nothing."""

MAX_ZOOM = 4.0
"""Largest magnification (model input side / crop side) of a crop around predicted joints
(second pass, video tracking): a smaller box holds too few pixels for a pose, and a crop of
it would lock onto that spot (typically all joints collapsed onto one point by a model
that sees no person)."""


class InputError(ValueError):
    """An image or a person box given to the predictor cannot be used; says which and why."""


# --- images and boxes ---------------------------------------------------------------------


def load_image(image: ImageInput, *, color_order: ColorOrder = "rgb", name: str = "image") -> np.ndarray:
    """Any supported image (see the module docs) as a contiguous ``(H, W, 3)`` uint8 RGB array.

    ``name`` identifies the image in errors (a path names itself).
    """
    if isinstance(image, (str, os.PathLike)):
        return read_image(Path(image))  # upright by EXIF; pixel limit; truncated files refused
    if isinstance(image, Image.Image):
        return _to_rgb(np.asarray(ImageOps.exif_transpose(image).convert("RGB")), "rgb", name)
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
    """``(H, W[, C])`` uint8 or [0, 1] float array -> ``(H, W, 3)`` uint8 RGB."""
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
    if np.issubdtype(array.dtype, np.floating):
        if not np.isfinite(array).all() or array.min() < 0 or array.max() > 1:
            raise InputError(
                f"{name}: floating-point images must hold values in [0, 1], got "
                f"[{array.min()}, {array.max()}] (pass 0-255 images as uint8)"
            )
        array = np.round(array * 255).astype(np.uint8)
    elif array.dtype != np.uint8:
        raise InputError(f"{name}: expected uint8 or floating-point values in [0, 1], got dtype {array.dtype}")
    channels = array.shape[2]
    if channels == 1:
        array = np.repeat(array, 3, axis=2)  # grayscale -> three equal channels
    array = array[..., :3]  # drop alpha
    if color_order == "bgr":
        array = array[..., ::-1]
    return np.ascontiguousarray(array)


def whole_image_box(size: tuple[int, int], padding: float = DEFAULT_PADDING) -> tuple[np.ndarray, float]:
    """``(center, scale)`` whose padded crop is exactly the image of ``size = (height, width)``.

    The image spans pixel edges ``-0.5 ... W - 0.5``; its longer side fills the crop.
    """
    height, width = size
    return np.array([(width - 1) / 2, (height - 1) / 2], np.float32), max(height, width) / (PIXEL_STD * padding)


def person_box(
    box: BoxInput, size: tuple[int, int], *, box_format: BoxFormat = "xywh", name: str = "image"
) -> tuple[np.ndarray, float]:
    """``(center, scale)`` of one person box (see the module docs) in an image of ``size``.

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


def _box_list(boxes: Any, name: str = "image") -> list[Any]:
    """One image's boxes as a list: ``None`` -> ``[None]`` (whole image), one box -> ``[box]``;
    anything else (``true``, a number, a string) is an :class:`InputError` naming the image."""
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


# --- results ------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class PosePrediction:
    """The pose of one person.

    Args:
        keypoints: ``(K, 2)`` float32 joints in original-image pixels (top-left pixel
            centre = (0, 0)).
        scores: ``(K,)`` float32 per-joint scores of the model (higher = surer; the range
            depends on the method).
        skeleton: Joint names, flip pairs and bones.
        center: ``(2,)`` centre of the person box used, original-image pixels.
        scale: Person box side / 200 px (MPII convention; the crop adds the margin).
        image: The image's path, or its name.
        image_index: Position of the image in the predictor's input.
        image_size: ``(height, width)`` of the image.
        affine: ``(2, 3)`` model input pixels -> original-image pixels.
        crop: The ``(h, w, 3)`` RGB model input, with ``return_heatmaps`` only.
        heatmaps: The ``(K, h', w')`` heatmaps of the unflipped crop, with
            ``return_heatmaps`` and a heatmap method only (for
            :func:`~poselit.visualize.draw_heatmaps`).
    """

    keypoints: np.ndarray
    scores: np.ndarray
    skeleton: Skeleton
    center: np.ndarray
    scale: float
    image: str
    image_index: int
    image_size: tuple[int, int]
    affine: np.ndarray
    crop: np.ndarray | None = None
    heatmaps: np.ndarray | None = None

    @property
    def joint_names(self) -> tuple[str, ...]:
        return self.skeleton.joints

    def person_dict(self) -> dict[str, Any]:
        """The person's entry of a JSON document (``people`` in the module docs); coordinates
        rounded to 0.01 px, scores to 4 decimals."""
        return {
            "box": {"center": _rounded(self.center, 2), "scale": round(self.scale, 6)},
            "keypoints": _rounded(self.keypoints, 2),
            "scores": _rounded(self.scores, 4),
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the document of the module docs with this one person."""
        return image_document(self.image, self.image_size, self.skeleton, [self])


def _rounded(values: np.ndarray, decimals: int) -> list:
    return np.round(values.astype(np.float64), decimals).tolist()


def skeleton_dict(skeleton: Skeleton) -> dict[str, Any]:
    """``{"name", "joints", "limbs"}`` of a skeleton, for JSON."""
    return {"name": skeleton.name, "joints": list(skeleton.joints), "limbs": [list(limb) for limb in skeleton.limbs]}


def image_document(
    image: str,
    image_size: tuple[int, int],
    skeleton: Skeleton,
    people: Sequence[PosePrediction],
    model: str | None = None,
) -> dict[str, Any]:
    """The JSON document (module docs) of one image of ``image_size = (height, width)``."""
    return {
        "image": image,
        "width": int(image_size[1]),
        "height": int(image_size[0]),
        **({"model": model} if model is not None else {}),
        "skeleton": skeleton_dict(skeleton),
        "people": [p.person_dict() for p in people],
    }


def document_text(document: Mapping[str, Any]) -> str:
    """A document as JSON text with one line per field and per person: readable and
    diffable, without one line per number."""
    fields = [f"  {json.dumps(key)}: {json.dumps(value)}" for key, value in document.items() if key != "people"]
    people = ",\n".join(f"    {json.dumps(person)}" for person in document["people"])
    return "{\n" + ",\n".join([*fields, f'  "people": [\n{people}\n  ]']) + "\n}\n"


# --- the predictor ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Person:
    """One crop waiting for the model."""

    image: str
    image_index: int
    image_size: tuple[int, int]
    center: np.ndarray
    scale: float
    to_input: np.ndarray
    crop: np.ndarray
    rgb: np.ndarray | None = None  # the image, kept for a second pass



def _chunks(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


class Predictor:
    """Single-person poses in any image, in the image's own pixels (see the module docs).

    Args:
        model: A trained pose model; it is put in eval mode (and moved to ``device``).
        batch_size: People per forward pass.
        flip_test: Average with the mirrored image's prediction; ``None``: the model's
            setting (on for every method by default).
        autocast: Mixed precision: ``True`` (bfloat16 on CPU, float16 on GPUs) or a dtype.
        device: Where to run; ``None``: where the model is.
        padding: Margin around a given person box; a number > 0, else ``ValueError``.
            ``None``: the model's (its input description: as in training).
        fill: Value of crop pixels outside the image, an integer in [0, 255]; ``None``: the
            model's (as in training).
        refine: A second pass for people without a box, cropped around the first pass's
            joints (see the module docs).
    """

    def __init__(
        self,
        model: PoseLitModule,
        *,
        batch_size: int = 16,
        flip_test: bool | None = None,
        autocast: bool | torch.dtype = False,
        device: str | torch.device | None = None,
        padding: float | None = None,
        fill: int | None = None,
        refine: bool = False,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.model = (model if device is None else model.to(device)).eval()
        self.device = self.model.device
        self.batch_size = batch_size
        self.flip_test = flip_test
        if autocast is True:
            autocast = torch.bfloat16 if self.device.type == "cpu" else torch.float16
        self.autocast_dtype: torch.dtype | None = autocast or None
        self.padding = check_padding(self.model.padding if padding is None else padding)
        self.fill = check_fill(self.model.fill if fill is None else fill)
        self.refine = refine

    @classmethod
    def from_zoo(
        cls,
        name: str,
        *,
        revision: str | None = None,
        device: str | torch.device | None = None,
        cache_dir: str | Path | None = None,
        zoo_dir: str | Path | None = None,
        **options: Any,
    ) -> Predictor:
        """A predictor for a zoo model (:func:`poselit.zoo.load`: a name,
        ``hf://ORG/NAME[@REVISION]`` or an export folder) that crops as the model was trained:
        the model's ``padding`` and ``fill`` are those its card records.

        ``options`` are the other arguments of :class:`Predictor` (``batch_size``,
        ``flip_test``, ``autocast``, ``padding``, ``fill``).
        """
        from poselit.zoo import load

        model = load(name, revision=revision, device=device, cache_dir=cache_dir, zoo_dir=zoo_dir)
        return cls(model, **options)

    @property
    def skeleton(self) -> Skeleton:
        return self.model.skeleton

    def predict(
        self,
        images: ImageInput | Sequence[ImageInput],
        box: BoxInput | Sequence[BoxInput] | None = None,
        *,
        boxes: Sequence[BoxInput | Sequence[BoxInput] | None] | None = None,
        box_format: BoxFormat = "xywh",
        color_order: ColorOrder = "rgb",
        names: Sequence[str] | None = None,
        return_heatmaps: bool = False,
        progress: bool | None = None,
    ) -> list[PosePrediction]:
        """Poses of the people in one image or a list of images.

        Args:
            images: One image or a list (list or tuple) of images, see the module docs.
            box: For a single image: its person box, or a list of boxes (one prediction
                each); ``None``: the whole image.
            boxes: For a list of images: one entry per image (a box, a list of boxes, or
                ``None`` for the whole image).
            box_format: ``"xywh"`` or ``"xyxy"`` for boxes given as four numbers.
            color_order: Channel order of arrays and tensors: ``"rgb"`` or ``"bgr"``.
            names: Names of the images in results and errors (default: the path, else
                ``image[i]``).
            return_heatmaps: Keep each person's crop (and heatmaps, for heatmap methods).
            progress: A progress bar over the images on stderr: ``True`` / ``False``;
                ``None``: for 100 images and more, when stderr is a terminal.

        Returns:
            One :class:`PosePrediction` per person, in input order (images, then boxes).
        """
        if isinstance(images, (list, tuple)):
            if box is not None:
                raise ValueError("for a list of images, give boxes=[...] (one entry per image), not box=")
            boxes = [None] * len(images) if boxes is None else list(boxes)
            if len(boxes) != len(images):
                raise ValueError(f"got {len(images)} images but {len(boxes)} box entries")
        else:
            if boxes is not None:
                raise ValueError("for a single image, give box= (one box or a list of boxes), not boxes=")
            images, boxes = [images], [box]
        if names is not None and len(names) != len(images):
            raise ValueError(f"got {len(images)} images but {len(names)} names")
        bar = tqdm(total=len(images), desc="predicting", unit="image", disable=not show_progress(progress, len(images)))
        with bar:
            people = self._people(images, boxes, names, box_format, color_order, bar.update)
            return [p for chunk in _chunks(people, self.batch_size) for p in self._passes(chunk, return_heatmaps)]

    __call__ = predict

    def _people(
        self,
        images: Sequence[ImageInput],
        boxes: Sequence[Any],
        names: Sequence[str] | None,
        box_format: BoxFormat,
        color_order: ColorOrder,
        done: Callable[[int], Any],
    ) -> Iterator[_Person]:
        """Crops of every person, image by image (images are decoded one at a time);
        ``done(1)`` after each image."""
        for i, (image, image_boxes) in enumerate(zip(images, boxes)):
            name = names[i] if names else str(image) if isinstance(image, (str, os.PathLike)) else f"image[{i}]"
            rgb = load_image(image, color_order=color_order, name=name)
            for box in _box_list(image_boxes, name):
                if box is None:
                    center, scale = whole_image_box(rgb.shape[:2], self.padding)
                else:
                    center, scale = person_box(box, rgb.shape[:2], box_format=box_format, name=name)
                yield self._crop(rgb, name, i, center, scale, keep_image=box is None and self.refine)
            done(1)

    def _crop(
        self, rgb: np.ndarray, name: str, index: int, center: np.ndarray, scale: float, *, keep_image: bool
    ) -> _Person:
        """The model input of the box ``(center, scale)`` of the ``index``-th image, ``rgb``
        (kept with it for a second pass if ``keep_image``)."""
        size = self.model.input_size
        to_input = crop_affine(center, scale, size, padding=self.padding)
        crop = warp_image(rgb, to_input, size, self.fill)
        return _Person(name, index, rgb.shape[:2], center, scale, to_input, crop, rgb if keep_image else None)

    def _passes(self, people: list[_Person], return_heatmaps: bool) -> list[PosePrediction]:
        """The poses of a batch of crops; those that kept their image (``refine``) predicted
        again on the crop around their first pose (see the module docs)."""
        poses = self._run(people, return_heatmaps)
        again = {i: self._second_crop(p, pose) for i, (p, pose) in enumerate(zip(people, poses)) if p.rgb is not None}
        again = {i: crop for i, crop in again.items() if crop is not None}
        if again:
            for i, pose in zip(again, self._run(list(again.values()), return_heatmaps)):
                poses[i] = pose
        return poses

    def _second_crop(self, person: _Person, pose: PosePrediction) -> _Person | None:
        """The crop around all the joints of ``person``'s first ``pose``; ``None`` when their
        box cannot be cropped (:func:`joints_box`)."""
        every = np.ones(len(pose.keypoints), bool)
        min_side = smallest_joints_box(self.model.input_size, self.padding)
        box = joints_box(pose.keypoints, every, person.image_size, min_side=min_side)
        if box is None:
            return None
        center = np.asarray(box["center"], np.float32)
        return self._crop(person.rgb, person.image, person.image_index, center, box["scale"], keep_image=False)

    def _run(self, people: list[_Person], return_heatmaps: bool) -> list[PosePrediction]:
        """One forward pass over a batch of crops; joints mapped back to each image."""
        crops = torch.from_numpy(np.stack([p.crop for p in people])).permute(0, 3, 1, 2).to(self.device)
        autocast = torch.autocast(
            self.device.type, dtype=self.autocast_dtype, enabled=self.autocast_dtype is not None
        )
        with torch.inference_mode(), autocast:
            outputs = self.model.predict_poses(crops, flip_test=self.flip_test)
        to_original = invert_affine(np.stack([p.to_input for p in people]))
        keypoints = to_image_coords(outputs["keypoints"], torch.from_numpy(to_original)).numpy()  # float64, CPU
        scores = outputs["scores"].float().cpu().numpy()
        heatmaps = outputs.get("heatmaps") if return_heatmaps else None
        heatmaps = None if heatmaps is None else heatmaps.float().cpu().numpy()
        return [
            PosePrediction(
                keypoints=keypoints[i].astype(np.float32),
                scores=scores[i],
                skeleton=self.skeleton,
                center=np.asarray(p.center, np.float32),
                scale=float(p.scale),
                image=p.image,
                image_index=p.image_index,
                image_size=(int(p.image_size[0]), int(p.image_size[1])),
                affine=to_original[i].astype(np.float32),
                crop=p.crop if return_heatmaps else None,
                heatmaps=None if heatmaps is None else heatmaps[i],
            )
            for i, p in enumerate(people)
        ]


def draw_predictions(
    image: np.ndarray, people: Sequence[PosePrediction], max_side: int | None = None
) -> np.ndarray:
    """``image`` (RGB) with every person's skeleton, joint opacity by score; first
    downscaled (area averaging) so that its longer side is at most ``max_side``."""
    factor = 1.0 if max_side is None else min(1.0, max_side / max(image.shape[:2]))
    if factor < 1:
        height, width = (max(1, round(side * factor)) for side in image.shape[:2])
        image = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
    for person in people:
        visible = np.full(person.skeleton.num_joints, 2)
        keypoints = (person.keypoints + 0.5) * factor - 0.5  # pixel centres stay pixel centres
        image = draw_skeleton(image, keypoints, visible, person.skeleton, scores=person.scores)
    return image


__all__ = [
    "InputError",
    "MAX_ZOOM",
    "PosePrediction",
    "Predictor",
    "document_text",
    "draw_predictions",
    "image_document",
    "joints_box",
    "load_image",
    "person_box",
    "skeleton_dict",
    "smallest_joints_box",
    "whole_image_box",
]
