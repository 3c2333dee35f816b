"""PoseDataset: record -> one affine crop -> augmented, method-agnostic sample.

Each sample is produced with ONE resampling of the original image (crop, scale, rotation
and flip folded into one affine, :func:`poselit.geometry.crop_affine`), then the
albumentations photometric pipeline. Targets (heatmaps, ...) are NOT made here: each
method encodes its own targets batched on the device from ``keypoints``/``visibility``.

A sample is a dict:

=============  ===================  =====================================================
key            type / shape         meaning
=============  ===================  =====================================================
``image``      uint8 (3, H, W)      RGB crop; models normalise it on the device
``keypoints``  float32 (K, 2)       joints in input pixels (top-left pixel centre = 0, 0)
``visibility`` int64 (K,)           0 not annotated, 1 occluded, 2 visible
``norm``       float32 ()           PCK normaliser in input pixels (0 = unknown)
``affine``     float32 (2, 3)       input pixels -> original-image pixels
``index``      int64 ()             position of the record in the dataset
``area``       float32 ()           COCO-format evaluation samples only: the annotated
                                    ``area`` (original pixels squared), OKS's scale
``image_id``   int64 ()             with ``area``: the image's key in :attr:`PoseDataset.oks`
=============  ===================  =====================================================

``area`` and ``image_id`` come with the evaluation samples (``train=False``) of COCO-format
records that all have an ``area``, so that the test loop scores COCO's OKS AP as
``poselit eval`` does (:attr:`PoseDataset.oks` holds the people and ignore regions).
"""

from __future__ import annotations

import multiprocessing
import os
import warnings
from pathlib import Path
from typing import Literal, Sequence

import numpy as np
import torch
from PIL import Image, ImageOps
from torch.utils.data import Dataset

from poselit.data.readers.coco import oks_people
from poselit.data.records import AnnotationSet, PoseRecord
from poselit.data.transforms import AugmentConfig, AugmentParams, build_photometric, sample_augment
from poselit.geometry import (
    DEFAULT_FILL,
    DEFAULT_PADDING,
    PIXEL_STD,
    affine_scale,
    apply_affine,
    check_fill,
    check_padding,
    crop_affine,
    invert_affine,
    warp_image,
)
from poselit.skeletons import Skeleton

BadImagePolicy = Literal["raise", "skip"]

MAX_IMAGE_PIXELS = 100_000_000
"""Default largest image (width x height) :func:`read_image` decodes: 100 megapixels, about
300 MB decoded. Larger files are refused from their header, before decoding; set
``POSELIT_MAX_IMAGE_PIXELS`` (or pass ``max_pixels=``) to change it. Pillow's own ceiling,
twice ``PIL.Image.MAX_IMAGE_PIXELS`` (179 megapixels by default), still applies above that."""

MAX_IMAGE_PIXELS_ENV = "POSELIT_MAX_IMAGE_PIXELS"


class ImageReadError(OSError):
    """An image file is missing, truncated, too large or cannot be decoded."""


def max_image_pixels() -> int:
    """The pixel limit of :func:`read_image`: ``$POSELIT_MAX_IMAGE_PIXELS``, else
    :data:`MAX_IMAGE_PIXELS`."""
    text = os.environ.get(MAX_IMAGE_PIXELS_ENV, "").strip()
    if not text:
        return MAX_IMAGE_PIXELS
    if not text.isdigit() or int(text) == 0:
        raise ValueError(f"{MAX_IMAGE_PIXELS_ENV} must be a whole number of pixels > 0, got {text!r}")
    return int(text)


def read_image(path: Path, source: str = "", max_pixels: int | None = None) -> np.ndarray:
    """Decode an image file to an (H, W, 3) uint8 RGB array.

    The size is read from the file's header first: an image of more than ``max_pixels``
    (default :func:`max_image_pixels`) is refused before it is decoded. A truncated or
    corrupt file is an error, not a partly grey image (OpenCV decodes those with only a
    libjpeg warning). Decoding is Pillow's (the same libjpeg-turbo pixels as OpenCV's
    ``imread``): EXIF orientation applied, grayscale expanded to three channels, alpha
    dropped, samples deeper than 8 bits converted by their range (:func:`image_to_rgb`).
    Errors name the file and the record it belongs to.
    """
    where = f" (record {source})" if source else ""
    if not path.is_file():
        raise ImageReadError(f"image not found: {path}{where}")
    limit = max_image_pixels() if max_pixels is None else max_pixels
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # the limit is ours
            with Image.open(path) as image:
                width, height = image.size
                if width * height > limit:
                    raise ImageReadError(
                        f"image too large: {path}{where}: {width}x{height} pixels, above the limit of "
                        f"{limit} ({MAX_IMAGE_PIXELS_ENV} raises it); not decoded"
                    )
                image.load()  # raises on truncated and corrupt data
                ImageOps.exif_transpose(image, in_place=True)
                try:
                    rgb = image_to_rgb(image)
                except ValueError as err:
                    raise ImageReadError(f"image has unusable pixel values: {path}{where}: {err}") from err
    except ImageReadError:
        raise
    except Image.DecompressionBombError as err:  # above Pillow's own ceiling, seen in the header too
        raise ImageReadError(f"image too large: {path}{where}: {err}; not decoded") from err
    except (OSError, ValueError, SyntaxError) as err:
        raise ImageReadError(f"image cannot be decoded: {path}{where}: {err}") from err
    return rgb


def image_to_rgb(image: Image.Image) -> np.ndarray:
    """``(H, W, 3)`` uint8 RGB of a loaded Pillow image, converted by its real depth.

    8-bit modes (``L``, ``P``, ``RGBA``, ``CMYK``, ...) go through Pillow's own conversion.
    Deeper grayscale, which Pillow would clip to 0-255 (16-bit to white, [0, 1] floats to
    black), is scaled by :func:`pixels_to_uint8`: 16-bit samples (mode ``I;16``) keep
    their 8 high bits, float samples (mode ``F``, e.g. a float32 TIFF) in [0, 1] are
    multiplied by 255; 32-bit and signed integers (mode ``I``), other floats, NaN and
    infinity are refused. (Pillow itself reduces 16-bit RGB files to their 8 high bits,
    as OpenCV's ``imread`` does.) This is the one decoder of files (:func:`read_image`)
    and of the Pillow images given to :class:`~poselit.predict.Predictor`.

    Raises:
        ValueError: the samples have no usable range; says their type and range.
    """
    if image.mode in ("F", "I") or image.mode.startswith("I;16"):
        gray = pixels_to_uint8(np.asarray(image))
        return np.ascontiguousarray(np.repeat(gray[..., None], 3, axis=2))
    return np.array(image if image.mode == "RGB" else image.convert("RGB"))  # writable, like imread's


def pixels_to_uint8(pixels: np.ndarray) -> np.ndarray:
    """Pixel values of any supported depth as uint8, scaled by the depth's range, not cast.

    * ``uint8``: unchanged;
    * wider unsigned integers (16-bit PNG and TIFF): their 8 high bits, ``value >> 8`` for
      16 bits (0 -> 0, 65535 -> 255), the reduction of OpenCV's ``imread`` and of Pillow's
      16-bit RGB, so one file decodes alike whatever its channels;
    * floating point: values in [0, 1] times 255, rounded.

    Raises:
        ValueError: floats with NaN, infinity or values outside [0, 1] (e.g. 0-255 floats,
            whose scale cannot be told from [0, 1] ones), or signed integers and booleans,
            which have no pixel range; says the dtype and, for floats, the range.
    """
    dtype = pixels.dtype
    if dtype == np.uint8:
        return pixels
    if dtype.kind == "u":
        return (pixels >> (8 * dtype.itemsize - 8)).astype(np.uint8)
    if dtype.kind == "f":
        if pixels.size and not np.isfinite(pixels).all():
            raise ValueError(f"pixel values of dtype {dtype} include NaN or infinity")
        low, high = (float(pixels.min()), float(pixels.max())) if pixels.size else (0.0, 0.0)
        if low < 0 or high > 1:
            raise ValueError(
                f"pixel values of dtype {dtype} span [{low:g}, {high:g}], expected values in [0, 1] "
                "(scale them, or store 0-255 images as 8-bit)"
            )
        return np.rint(pixels.astype(np.float32, copy=False) * 255).astype(np.uint8)
    raise ValueError(
        f"pixel values of dtype {dtype} have no known range: expected unsigned integers (8 or 16 "
        "bit) or floating point in [0, 1]"
    )


class PoseDataset(Dataset):
    """Crops of annotated people, augmented for training or plain for evaluation.

    Args:
        records: The people, e.g. an :class:`~poselit.data.AnnotationSet`. All must share
            one skeleton.
        input_size: Crop size ``(height, width)`` in pixels.
        train: Draw random augmentation (else the plain centred crop).
        augment: Augmentation ranges (training only); defaults follow the papers.
        padding: Box enlargement: the crop side is ``200 * scale * padding`` px.
        fill: Value of pixels that fall outside the original image (Belagiannis: 128).
        on_bad_image: ``"raise"`` stops at a missing, truncated, too large or otherwise
            unreadable image (:func:`read_image`); ``"skip"`` warns, counts it in
            :attr:`num_skipped` and returns the next readable sample.

    Attributes:
        oks: COCO-format records (all with an ``area``) as COCO's keypoint evaluation sees
            them, with the ignore regions of an :class:`~poselit.data.AnnotationSet`:
            ``(people, ignore regions)`` (:func:`~poselit.data.readers.coco.oks_people`);
            ``None`` for other data.
    """

    def __init__(
        self,
        records: AnnotationSet | Sequence[PoseRecord],
        input_size: tuple[int, int] = (256, 256),
        *,
        train: bool = False,
        augment: AugmentConfig | None = None,
        padding: float = DEFAULT_PADDING,
        fill: int = DEFAULT_FILL,
        on_bad_image: BadImagePolicy = "raise",
    ) -> None:
        self.records = list(records)
        if not self.records:
            raise ValueError("PoseDataset needs at least one record")
        skeletons = {r.skeleton.name for r in self.records}
        if len(skeletons) > 1:
            raise ValueError(
                f"records mix skeletons {sorted(skeletons)}: convert them to one layout first"
            )
        if on_bad_image not in ("raise", "skip"):
            raise ValueError(f"on_bad_image must be 'raise' or 'skip', got {on_bad_image!r}")
        self.skeleton: Skeleton = self.records[0].skeleton
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.train = train
        self.augment = augment or AugmentConfig()
        self.photometric = build_photometric(self.augment) if train else None
        self.padding = check_padding(padding)
        self.fill = check_fill(fill)
        self.on_bad_image = on_bad_image
        self.oks = oks_people(self.records, getattr(records, "ignored", ()))
        # A spawn-context counter is inherited by forked DataLoader workers and can also be
        # sent to spawned ones (macOS/Windows workers, DDP spawn); a fork-context one cannot.
        self._skipped = multiprocessing.get_context("spawn").Value("i", 0)

    def __len__(self) -> int:
        return len(self.records)

    @property
    def num_skipped(self) -> int:
        """Unreadable images skipped so far (all DataLoader workers together)."""
        return self._skipped.value

    def crop_affine(self, record: PoseRecord, params: AugmentParams) -> np.ndarray:
        """The ``original -> input`` affine of a record under augmentation ``params``."""
        side = PIXEL_STD * record.scale * self.padding
        center = record.center + np.asarray(params.shift) * side
        return crop_affine(
            center,
            record.scale * params.scale,
            self.input_size,
            padding=self.padding,
            rotation=params.rotation,
            flip=params.flip,
        )

    def sample(self, index: int, params: AugmentParams, rng_seed: int = 0) -> dict[str, torch.Tensor]:
        """The sample of record ``index`` under given augmentation ``params``."""
        record = self.records[index]
        image = read_image(record.image, record.source)
        to_input = self.crop_affine(record, params)
        crop = warp_image(image, to_input, self.input_size, self.fill)
        if self.photometric is not None:
            self.photometric.set_random_seed(rng_seed)
            crop = self.photometric(image=crop)["image"]
        keypoints = apply_affine(record.keypoints.astype(np.float64), to_input)
        visibility = record.visibility
        if params.flip:
            flip = list(self.skeleton.flip_index)
            keypoints, visibility = keypoints[flip], visibility[flip]
        keypoints = np.where(visibility[:, None] > 0, keypoints, 0.0)
        return {
            "image": torch.from_numpy(np.ascontiguousarray(crop)).permute(2, 0, 1),
            "keypoints": torch.from_numpy(keypoints.astype(np.float32)),
            "visibility": torch.from_numpy(visibility.astype(np.int64)),
            "norm": torch.tensor(record.norm * affine_scale(to_input), dtype=torch.float32),
            "affine": torch.from_numpy(invert_affine(to_input).astype(np.float32)),
            "index": torch.tensor(index, dtype=torch.int64),
            **(self.oks_fields(index) if self.oks is not None and not self.train else {}),
        }

    def oks_fields(self, index: int) -> dict[str, torch.Tensor]:
        """The ``area`` and ``image_id`` of record ``index`` (COCO-format data, :attr:`oks`)."""
        people = self.oks[0]  # type: ignore[index]
        return {
            "area": torch.tensor(people.area[index], dtype=torch.float32),
            "image_id": torch.tensor(people.image[index], dtype=torch.int64),
        }

    def __getitem__(self, index: int | tuple[int, int]) -> dict[str, torch.Tensor]:
        """Sample ``index``; an ``(index, seed)`` pair (from
        :class:`~poselit.data.sampling.SeededShuffleSampler`) fixes its augmentation.

        A plain index draws the seed from torch's generator, which Lightning / DataLoader
        seed per worker.
        """
        if isinstance(index, tuple):
            index, seed = index
        else:
            seed = int(torch.randint(0, 2**31 - 1, ()).item())
        rng = np.random.default_rng(seed)
        for attempt in range(len(self)):
            i = (index + attempt) % len(self)
            params = sample_augment(rng, self.augment) if self.train else AugmentParams()
            try:
                return self.sample(i, params, seed)
            except ImageReadError as err:
                if self.on_bad_image == "raise":
                    raise
                with self._skipped.get_lock():
                    self._skipped.value += 1
                warnings.warn(f"skipping unreadable image: {err}", stacklevel=2)
        raise ImageReadError(f"no readable image among the {len(self)} records")
