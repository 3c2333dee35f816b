"""Helpers shared by the readers: opening annotation files and reading their fields with
errors that name the file, the record and the field."""

from __future__ import annotations

import warnings
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import numpy as np
import scipy.io
from PIL import Image

from poselit.data.records import AnnotationError, AnnotationSet, PoseRecord
from poselit.files import require_file
from poselit.geometry import PIXEL_STD, outside_image
from poselit.skeletons import Skeleton


def load_mat(path: str | Path, what: str, **kwargs) -> dict:
    """Load a MATLAB ``.mat`` file, turning format errors into :class:`AnnotationError`."""
    path = require_file(path, what)
    try:
        return scipy.io.loadmat(path, **kwargs)
    except Exception as err:  # scipy raises several types for truncated/invalid files
        raise AnnotationError(f"{path}: not a readable MATLAB .mat file ({err})") from err


def require_field(
    data: Any, key: str, where: str | Path, kind: type | None = None, hint: str = ""
) -> Any:
    """``data[key]`` (optionally checked to be a ``kind``), or an error naming ``where``.

    ``where`` is the file, or the file and record (``file#3``), named in the error.
    """
    if not isinstance(data, Mapping):
        raise AnnotationError(
            f"{where}: expected an object with field {key!r}, got {type(data).__name__}{hint}"
        )
    if key not in data:
        fields = sorted(str(k) for k in data if not str(k).startswith("__"))
        raise AnnotationError(f"{where}: no field {key!r} (fields: {fields}){hint}")
    value = data[key]
    if kind is not None and not isinstance(value, kind):
        raise AnnotationError(
            f"{where}: field {key!r} must be a {kind.__name__}, got {type(value).__name__}{hint}"
        )
    return value


def require_array(
    data: Any, key: str, where: str | Path, shape: tuple[int | None, ...], hint: str = ""
) -> np.ndarray:
    """``data[key]`` as a float array of ``shape`` (``None`` = any length) or a clear error."""
    value = require_field(data, key, where, hint=hint)
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as err:  # ragged lists, strings, objects
        raise AnnotationError(
            f"{where}: field {key!r} is not an array of numbers ({err}){hint}"
        ) from err
    ok = array.ndim == len(shape) and all(e is None or e == a for e, a in zip(shape, array.shape))
    if not ok:
        want = "(" + ", ".join("N" if e is None else str(e) for e in shape) + ")"
        raise AnnotationError(
            f"{where}: field {key!r} has shape {array.shape}, expected {want}{hint}"
        )
    return array


def require_flags(
    flags: np.ndarray, key: str, item: Callable[[int], str], skeleton: Skeleton, allowed: tuple[int, ...] = (0, 1)
) -> np.ndarray:
    """``(N, K)`` per-joint flags checked to be ``allowed`` values; the error names the
    first bad item (``item(i)``, e.g. ``file#3``) and joint, and how many are bad.

    Flags are meanings (visible, occluded, labelled): any other value would be read as one
    of them silently.
    """
    flags = np.asarray(flags)
    bad = np.argwhere(~np.isin(flags, allowed))
    if bad.size:
        i, j = bad[0]
        more = f" ({len(bad)} bad flags in all)" if len(bad) > 1 else ""
        raise AnnotationError(
            f"{item(int(i))}: field {key!r} of joint {skeleton.joints[j]} is {flags[i, j]:g}, expected "
            f"{' or '.join(map(str, allowed))}{more}"
        )
    return flags


def image_size(path: Path) -> tuple[int, int] | None:
    """``(height, width)`` of an image file from its header (nothing is decoded), or
    ``None`` when it is missing or unreadable: the dataset reports such images when it
    loads them."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                return image.height, image.width
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return None


def check_in_image(record: PoseRecord, size: tuple[int, int]) -> PoseRecord:
    """``record``, or an error naming it when its joints or box are absurdly far outside
    its image of ``size = (height, width)`` (:func:`poselit.geometry.outside_image`)."""
    annotated = np.flatnonzero(record.visibility > 0)
    points = np.vstack([record.keypoints[annotated], record.center[None]])
    names = [record.skeleton.joints[j] for j in annotated] + ["box centre"]
    reason = outside_image(points, names, PIXEL_STD * record.scale, size)
    if reason:
        raise AnnotationError(f"{record.source}: {reason} ({record.image}); fix or drop this annotation")
    return record


MIN_PERSON_SIDE = 2.0
"""Smallest person box side, in pixels, of a record: a smaller box holds no pose to learn
or score. Boxes made from the joints (LSP, COCO people without a ``bbox``) are the joints'
extent, floored at 1 px (:func:`~poselit.geometry.box_from_keypoints`), so a person whose
annotated joints all lie on one point (or who has one annotated joint) falls below it."""

DEGENERATE_BOX = f"person box under {MIN_PERSON_SIDE:g} px"
"""The :attr:`~poselit.data.records.AnnotationSet.skipped` reason of records dropped for
a box under :data:`MIN_PERSON_SIDE`."""


def collect(
    items: Iterable[PoseRecord | str], skeleton: Skeleton, source: str | Path
) -> AnnotationSet:
    """Gather a reader's per-item results: a record, or the reason the item was skipped.

    Readers yield one result per item of the file, so every skipped item is counted. Every
    reader's records pass here, and each is checked against its image's size, read from
    the file header (:func:`check_in_image`; records of missing images are not checked).
    A record whose person box is under :data:`MIN_PERSON_SIDE` is dropped with a warning
    naming it and counted as :data:`DEGENERATE_BOX`, so that training and evaluation
    alike never see it.
    """
    records: list[PoseRecord] = []
    skipped: Counter = Counter()
    sizes: dict[Path, tuple[int, int] | None] = {}
    for item in items:
        if isinstance(item, str):
            skipped[item] += 1
            continue
        if item.image not in sizes:
            sizes[item.image] = image_size(item.image)
        size = sizes[item.image]
        record = item if size is None else check_in_image(item, size)
        if PIXEL_STD * record.scale < MIN_PERSON_SIDE:
            warnings.warn(_degenerate_box_warning(record), stacklevel=2)
            skipped[DEGENERATE_BOX] += 1
            continue
        records.append(record)
    return AnnotationSet(records, skeleton, str(source), skipped)


def _degenerate_box_warning(record: PoseRecord) -> str:
    """Why ``record`` is dropped: its box side and the extent of its annotated joints."""
    joints = record.keypoints[record.visibility > 0]
    extent = float(np.ptp(joints, axis=0).max()) if len(joints) else 0.0
    return (
        f"{record.source}: dropped: its person box is {PIXEL_STD * record.scale:.3g} px, under "
        f"{MIN_PERSON_SIDE:g} px ({len(joints)} annotated joints spanning {extent:.3g} px) ({record.image})"
    )
