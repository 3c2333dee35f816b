"""COCO-format keypoint annotations: COCO ``person_keypoints_*.json`` and any custom
keypoint category in the same format.

One record per annotated person, with the skeleton built from the file's keypoint
category (:meth:`~poselit.skeletons.Skeleton.from_coco_category`), or the built-in
:data:`~poselit.skeletons.COCO` skeleton when the category names COCO's 17 person joints
in COCO's order (so COCO data and zoo models agree on the skeleton's name):

* keypoints: the flat ``[x, y, v] * K`` list; coordinates are used as is, i.e. treated as
  pixel-centre coordinates (COCO does not pin the convention down; the half-pixel
  difference is far below its annotation noise). ``v`` is 0 not labelled, 1 labelled
  but not visible, 2 visible: already our visibility convention.
* person box: the ``bbox`` ``[x, y, w, h]``, as the square around its longer side; when
  the box is missing or has zero size, the tight box of the labelled keypoints.
* norm: the longer side of that box (the skeleton's ``bbox`` normaliser).
* skipped, and counted: crowd regions (``"crowd"``), people without a labelled keypoint
  (``"no keypoints"``; the redundant ``num_keypoints`` count is not consulted) and
  annotations of other categories (``"other category"``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Mapping, NamedTuple, Sequence

import numpy as np

from poselit.data.readers.common import collect, require_array, require_field
from poselit.data.records import AnnotationError, AnnotationSet, CocoInstance, PoseRecord
from poselit.files import load_json
from poselit.geometry import PIXEL_STD, box_from_keypoints, box_xywh_to_center_scale
from poselit.oks import CocoPeople
from poselit.skeletons import Skeleton, skeleton_from_spec


def read_coco(
    path: str | Path, images: str | Path | None = None, category_id: int | None = None
) -> AnnotationSet:
    """Read the person annotations of a COCO-format keypoints JSON file.

    Args:
        path: The annotation file.
        images: Folder that the images' ``file_name`` is relative to. Default:
            ``<json folder>/images`` if it exists, else the JSON file's folder.
        category_id: The keypoint category to read; needed only when the file has
            several categories with keypoints.
    """
    data = load_json(path, "COCO annotation file", AnnotationError)
    path = Path(path)
    categories = require_field(data, "categories", path, kind=list)
    category = _keypoint_category(categories, category_id, path)
    skeleton = _skeleton(category, path)
    files = _image_files(require_field(data, "images", path, kind=list), path)
    root = _image_root(path, images)
    annotations = require_field(data, "annotations", path, kind=list)
    people = [
        _person(annotation, where, category, skeleton, files, root)
        for annotation, where in zip(annotations, _annotation_labels(annotations, path))
    ]
    result = collect((p.reason if isinstance(p, Ignored) else p for p in people), skeleton, path)
    result.ignored = [p.region for p in people if isinstance(p, Ignored) and p.region is not None]
    return result


class Ignored(NamedTuple):
    """An annotation that is not a record: why, and the ignore region it is for COCO's
    keypoint evaluation (None when it has no usable box and no labelled joint to place it)."""

    reason: str
    region: PoseRecord | None


def _keypoint_category(categories: list[Any], category_id: int | None, path: Path) -> Mapping:
    """The category to read: ``category_id``, or the file's only category with keypoints."""
    found = [c for c in categories if isinstance(c, Mapping) and c.get("keypoints")]
    listing = ", ".join(f"{c.get('id')} ({c.get('name', '?')})" for c in found) or "none"
    if category_id is not None:
        found = [c for c in found if c.get("id") == category_id]
        if not found:
            raise AnnotationError(
                f"{path}: no keypoint category with id {category_id} "
                f"(keypoint categories: {listing})"
            )
    if len(found) != 1:
        what = "no category has" if not found else f"{len(found)} categories have"
        raise AnnotationError(
            f"{path}: {what} 'keypoints' names (keypoint categories: {listing}); "
            + ("not a COCO keypoints file" if not found else "pass category_id to pick one")
        )
    require_field(found[0], "id", path)
    return found[0]


def _skeleton(category: Mapping, path: Path) -> Skeleton:
    """The category's skeleton (:func:`~poselit.skeletons.skeleton_from_spec`), errors naming the file."""
    try:
        return skeleton_from_spec(category)
    except ValueError as err:
        raise AnnotationError(f"{path}: {err}") from err


def _unique_id(item: Any, where: str, seen: dict[Any, str], what: str) -> Any:
    """``item["id"]`` (an integer or a string), refused when an earlier entry has it:
    pycocotools indexes by id, so a repeated id silently swaps one entry for the other."""
    value = require_field(item, "id", where)
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise AnnotationError(f"{where}: field 'id' must be an integer or a string, got {value!r}")
    if value in seen:
        raise AnnotationError(f"{where}: {what} id {value!r} is also the id of {seen[value]}; ids must be unique")
    seen[value] = where
    return value


def _image_files(images: list[Any], path: Path) -> dict[Any, str]:
    """Image id -> ``file_name`` from the ``images`` list (ids unique)."""
    files: dict[Any, str] = {}
    seen: dict[Any, str] = {}
    for n, image in enumerate(images, 1):
        where = f"{path}#image{n}"
        image_id = _unique_id(image, where, seen, "image")
        files[image_id] = require_field(image, "file_name", where, kind=str)
        seen[image_id] = f"{where} ({files[image_id]!r})"
    return files


DUPLICATE_FIELDS = ("image_id", "category_id", "iscrowd", "keypoints", "bbox")
"""Two annotations equal in all of these are one person entered twice."""


def _annotation_labels(annotations: list[Any], path: Path) -> list[str]:
    """Every annotation's label for messages, ``file#n (annotation id i)``, refusing
    duplicates: a repeated id, or one person entered twice under two ids (equal
    :data:`DUPLICATE_FIELDS`), which would otherwise be trained on and scored twice."""
    labels: list[str] = []
    seen: dict[Any, str] = {}
    entries: dict[str, str] = {}
    for n, annotation in enumerate(annotations, 1):
        id_ = _unique_id(annotation, f"{path}#{n}", seen, "annotation")
        labels.append(f"{path}#{n} (annotation id {id_})")
        content = json.dumps([annotation.get(k) for k in DUPLICATE_FIELDS])
        if content in entries:
            fields = ", ".join(DUPLICATE_FIELDS)
            raise AnnotationError(f"{labels[-1]}: a duplicate of {entries[content]} (same {fields}); remove one of them")
        entries[content] = labels[-1]
    return labels


def _image_root(path: Path, images: str | Path | None) -> Path:
    """The folder that image ``file_name`` entries are relative to (see :func:`read_coco`)."""
    if images is not None:
        return Path(images)
    folder = path.parent / "images"
    return folder if folder.is_dir() else path.parent


def _person(
    annotation: Any,
    where: str,
    category: Mapping,
    skeleton: Skeleton,
    files: Mapping[Any, str],
    root: Path,
) -> PoseRecord | Ignored | str:
    """One annotation as a record, or the reason it is skipped (with its ignore region)."""
    if require_field(annotation, "category_id", where) != category["id"]:
        return "other category"
    crowd = bool(annotation.get("iscrowd"))
    keypoints, flags = _keypoints(annotation, where, category, skeleton.num_joints, crowd)
    image_id = require_field(annotation, "image_id", where)
    if image_id not in files:
        raise AnnotationError(f"{where}: image_id {image_id!r} is not in the file's 'images'")
    box = None if annotation.get("bbox") is None else require_array(annotation, "bbox", where, (4,))
    coco = CocoInstance(image_id, None if box is None else tuple(box.tolist()), _area(annotation, where), crowd)
    usable = box is not None and box[2] > 0 and box[3] > 0
    center, scale = (
        box_xywh_to_center_scale(box) if usable else box_from_keypoints(keypoints, flags) if flags.any() else (None, 0.0)
    )
    reason = "crowd" if crowd else None if flags.any() else "no keypoints"
    record = None if center is None else PoseRecord(
        image=root / files[image_id],
        keypoints=keypoints,
        visibility=flags,
        center=center,
        scale=scale,
        norm=PIXEL_STD * scale,
        skeleton=skeleton,
        source=where,
        coco=coco,
    )
    return record if reason is None else Ignored(reason, record)  # type: ignore[return-value]


def _keypoints(
    annotation: Mapping, where: str, category: Mapping, k: int, crowd: bool
) -> tuple[np.ndarray, np.ndarray]:
    """``(K, 2)`` coordinates and ``(K,)`` flags of the flat ``[x, y, v] * K`` list; a crowd
    region without ``keypoints`` has none labelled."""
    if crowd and "keypoints" not in annotation:
        return np.zeros((k, 2)), np.zeros(k, np.uint8)
    values = require_array(annotation, "keypoints", where, (None,))
    if values.size != 3 * k:
        raise AnnotationError(
            f"{where}: {values.size} keypoint values, expected 3 x {k} for the {k} joints "
            f"of category {category.get('name', category['id'])!r}"
        )
    keypoints, flags = values.reshape(k, 3)[:, :2], values.reshape(k, 3)[:, 2]
    if not np.isin(flags, (0, 1, 2)).all():
        raise AnnotationError(f"{where}: keypoint flags v must be 0, 1 or 2, got {flags.tolist()}")
    return keypoints, flags.astype(np.uint8)


def _area(annotation: Mapping, where: str) -> float | None:
    """The annotation's ``area`` (pixels squared, >= 0), None when the file gives none."""
    area = annotation.get("area")
    if area is None:
        return None
    if isinstance(area, bool) or not isinstance(area, (int, float)) or not 0 <= area < float("inf"):
        raise AnnotationError(f"{where}: field 'area' must be a number >= 0, got {area!r}")
    return float(area)


def oks_people(
    records: Sequence[PoseRecord], ignored: Sequence[PoseRecord] = ()
) -> tuple[CocoPeople, CocoPeople] | None:
    """``(records, ignore regions)`` as COCO's keypoint evaluation (OKS AP) sees them, with
    integer image keys shared by both and ranked as the COCO image ids sort; ``None`` unless
    every record and region has its :attr:`~poselit.data.records.PoseRecord.coco` fields
    with an ``area`` (data of another format, or a COCO-format file without areas)."""
    people = [*records, *ignored]
    if not records or any(p.coco is None or p.coco.area is None for p in people):
        return None
    ids = sorted({p.coco.image_id for p in people}, key=lambda i: (isinstance(i, str), i))  # type: ignore[union-attr]
    rank = {image_id: n for n, image_id in enumerate(ids)}
    joints = records[0].skeleton.num_joints  # also the shape of an empty list of regions
    return _people(records, rank, joints), _people(ignored, rank, joints)


def _people(records: Sequence[PoseRecord], rank: Mapping[Any, int], k: int) -> CocoPeople:
    coco = [r.coco for r in records]
    return CocoPeople(
        image=np.array([rank[c.image_id] for c in coco], np.int64),  # type: ignore[union-attr]
        keypoints=np.stack([r.keypoints for r in records]).astype(np.float64) if records else np.zeros((0, k, 2)),
        visibility=np.stack([r.visibility for r in records]) if records else np.zeros((0, k)),
        area=np.array([c.area for c in coco], np.float64),  # type: ignore[union-attr]
        box=np.array([c.box or (math.nan,) * 4 for c in coco], np.float64).reshape(-1, 4),  # type: ignore[union-attr]
        crowd=np.array([c.crowd for c in coco], bool),  # type: ignore[union-attr]
    )
