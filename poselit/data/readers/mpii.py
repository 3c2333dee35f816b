"""MPII Human Pose readers: the common JSON layout, the stacked-hourglass ``.h5`` files and
the official release ``mpii_human_pose_v1_u12_1.mat``.

The three layouts store the same annotations with different conventions; every one of
them becomes the same :class:`~poselit.data.records.PoseRecord`:

* coordinates: all MPII files use 1-based MATLAB pixels, shifted here by -1;
* person box: MPII's ``objpos`` sits high on the body, so every common loader moves it
  down by ``15 * scale`` px. That shift is applied here, once: a record's ``center`` is
  the body centre and its box side is ``200 * scale`` px, *without* the x1.25
  enlargement of those loaders (the dataset's ``padding`` enlarges every dataset's box);
* visibility: 0 not annotated, 1 annotated but occluded, 2 annotated and visible;
* norm: the PCKh head size ``0.6 * ||head box diagonal||``, 0.0 where it is unknown.

Per layout:

* JSON (``[{image, center, scale, joints[16][2], joints_vis[16]}, ...]``): ``center`` is
  the raw ``objpos``. ``joints_vis`` only says whether a joint is annotated (1) or not
  (0); the layout keeps no occlusion flag, so annotated joints are marked visible (2).
  There is no head box: norm is 0.0, and PCKh needs the ``.h5`` or the official ``.mat``.
* ``.h5`` (``center``, ``scale``, ``part``, ``visible``, ``normalize``, ``imgname``):
  ``center`` already includes the ``+15 * scale`` shift and ``scale`` the x1.25
  enlargement, which is divided out. Joints that were not annotated are stored as
  (0, 0); every other joint is annotated, including the few head tops and necks just
  outside the image (y <= 0), which MPII marks visible. ``visible`` is 1 for visible
  joints and 0 for occluded or missing ones (other values are refused, naming the
  person). ``normalize`` is the head size in pixels.
* official ``.mat`` (struct ``RELEASE``): persons of the training images
  (``img_train == 1``) with keypoints, ``objpos`` and ``scale``. The test persons carry
  no keypoints. A point's ``is_visible`` is 0/1, '0'/'1', empty or absent in the
  release; empty and absent are read as visible (2), MPII's default.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator, Mapping

import h5py
import numpy as np

from poselit.data.readers.common import collect, load_mat, require_array, require_field, require_flags
from poselit.data.records import AnnotationError, AnnotationSet, PoseRecord
from poselit.files import load_json, require_file
from poselit.skeletons import MPII

CENTER_SHIFT = 15.0
"""Pixels per unit of ``scale`` that MPII's ``objpos`` is moved down to the body centre."""

H5_SCALE_PADDING = 1.25
"""Enlargement already multiplied into the ``scale`` of the stacked-hourglass ``.h5`` files."""

HEAD_SIZE_FACTOR = 0.6
"""PCKh head size = this x the head-box diagonal (the MPII evaluation code)."""

_NUM_JOINTS = MPII.num_joints


def read_mpii(
    path: str | Path, split: str = "train", images: str | Path | None = None
) -> AnnotationSet:
    """Read MPII annotations from a ``.json``, ``.h5`` or official ``.mat`` file.

    Args:
        path: The annotation file; its suffix picks the layout.
        split: Only for the official ``.mat``, which holds every image: ``train`` (the
            test persons have no keypoints). A ``.json`` or ``.h5`` file is one split.
        images: Image folder. Default: the annotation file's folder for ``.json`` and
            ``.h5``, ``<folder>/images`` for the official ``.mat``.
    """
    path = require_file(path, "MPII annotation file")
    folder = Path(images) if images is not None else None
    suffix = path.suffix.lower()
    if suffix == ".json":
        return _read_json(path, folder or path.parent)
    if suffix in (".h5", ".hdf5"):
        return _read_h5(path, folder or path.parent)
    if suffix == ".mat":
        return _read_mat(path, split, folder or path.parent / "images")
    raise AnnotationError(
        f"{path}: unknown MPII annotation format {suffix!r} (expected .json, .h5 or the "
        "official .mat)"
    )


def _body_center(objpos: np.ndarray, scale: float) -> np.ndarray:
    """0-based body centre from a 1-based MPII ``objpos``: minus 1, then ``15 * scale`` down."""
    return np.asarray(objpos, np.float64) - 1.0 + (0.0, CENTER_SHIFT * scale)


# --- JSON -------------------------------------------------------------------------------


def _read_json(path: Path, images_dir: Path) -> AnnotationSet:
    """Records of an MPII JSON file (a list of people)."""
    people = load_json(path, "MPII annotation file", AnnotationError)
    if not isinstance(people, list):
        raise AnnotationError(
            f"{path}: expected a list of people {{image, center, scale, joints, joints_vis}}, "
            f"got {type(people).__name__}"
        )
    return collect(
        (_json_person(person, f"{path}#{i}", images_dir) for i, person in enumerate(people, 1)),
        MPII,
        path,
    )


def _json_person(person: Any, where: str, images_dir: Path) -> PoseRecord | str:
    """One JSON person as a record, or ``"no keypoints"`` when no joint is annotated."""
    joints = require_array(person, "joints", where, (None, 2))
    flags = require_array(person, "joints_vis", where, (None,))
    require_flags(flags[None], "joints_vis", lambda _: where, MPII)
    if not flags.any():
        return "no keypoints"
    scale = float(require_array(person, "scale", where, ()))
    return PoseRecord(
        image=images_dir / require_field(person, "image", where, kind=str),
        keypoints=joints - 1.0,
        visibility=np.where(flags > 0, 2, 0),
        center=_body_center(require_array(person, "center", where, (2,)), scale),
        scale=scale,
        norm=0.0,
        skeleton=MPII,
        source=where,
    )


# --- stacked-hourglass .h5 --------------------------------------------------------------


def _read_h5(path: Path, images_dir: Path) -> AnnotationSet:
    """Records of a stacked-hourglass ``.h5`` annotation file."""
    try:
        with h5py.File(path, "r") as file:
            fields = {key: file[key][()] for key in file if isinstance(file[key], h5py.Dataset)}
    except OSError as err:  # h5py's error for invalid and truncated files
        raise AnnotationError(f"{path}: not a readable HDF5 file ({err})") from err
    return collect(_h5_people(fields, path, images_dir), MPII, path)


def _h5_people(
    fields: Mapping[str, np.ndarray], path: Path, images_dir: Path
) -> Iterator[PoseRecord | str]:
    """One record (or skip reason) per person of the ``.h5`` arrays."""
    scale = require_array(fields, "scale", path, (None,))
    n = len(scale)
    center = require_array(fields, "center", path, (n, 2))
    part = require_array(fields, "part", path, (n, _NUM_JOINTS, 2), hint=" (16 MPII joints)")
    visible = require_array(fields, "visible", path, (n, _NUM_JOINTS), hint=" (16 MPII joints)")
    require_flags(visible, "visible", lambda i: f"{path}#{i + 1}", MPII)
    head_size = require_array(fields, "normalize", path, (n,))
    names = _h5_image_names(fields, path, n)
    annotated = (part != 0).any(axis=-1)  # missing joints are stored as (0, 0)
    visibility = np.where(annotated, np.where(visible > 0, 2, 1), 0)
    for i in range(n):
        if not annotated[i].any():
            yield "no keypoints"
            continue
        yield PoseRecord(
            image=images_dir / names[i],
            keypoints=part[i] - 1.0,
            visibility=visibility[i],
            center=center[i] - 1.0,
            scale=scale[i] / H5_SCALE_PADDING,
            norm=head_size[i],
            skeleton=MPII,
            source=f"{path}#{i + 1}",
        )


def _h5_image_names(fields: Mapping[str, np.ndarray], path: Path, n: int) -> list[str]:
    """The ``imgname`` field (``n`` byte strings) as ``str`` file names."""
    names = np.atleast_1d(require_field(fields, "imgname", path))
    if names.shape != (n,) or names.dtype.kind not in "SUO":
        raise AnnotationError(
            f"{path}: field 'imgname' must hold {n} file names, got {names.dtype} array of "
            f"shape {names.shape}"
        )
    return [name.decode() if isinstance(name, bytes) else str(name) for name in names]


# --- official release .mat --------------------------------------------------------------


def _read_mat(path: Path, split: str, images_dir: Path) -> AnnotationSet:
    """Records of the official ``mpii_human_pose_v1_u12_1.mat`` (training persons)."""
    if split == "test":
        raise ValueError(
            f"{path}: the MPII test persons carry no keypoints (only objpos and scale; the "
            "test annotations are held back by the benchmark): read split 'train'"
        )
    if split != "train":
        raise ValueError(
            f"{path}: the official MPII .mat has splits 'train' and 'test', got {split!r}; "
            "the usual validation split is the stacked-hourglass valid.h5"
        )
    mat = load_mat(path, "MPII annotation file", struct_as_record=False, squeeze_me=True)
    release = require_field(mat, "RELEASE", path)
    annolist = _mat_items(_mat_field(release, "annolist", str(path)))
    img_train = np.atleast_1d(_mat_field(release, "img_train", str(path)))
    if img_train.shape != (len(annolist),):
        raise AnnotationError(
            f"{path}: RELEASE.img_train has shape {img_train.shape}, expected one flag per "
            f"image of RELEASE.annolist ({len(annolist)})"
        )
    return collect(_mat_people(annolist, img_train, path, images_dir), MPII, path)


def _mat_people(
    annolist: list[Any], img_train: np.ndarray, path: Path, images_dir: Path
) -> Iterator[PoseRecord | str]:
    """One record (or skip reason) per person of every image of ``RELEASE.annolist``."""
    for i, (entry, train) in enumerate(zip(annolist, img_train), 1):
        people = _mat_items(_mat_get(entry, "annorect"))
        if not train:
            yield from ["test image"] * len(people)
            continue
        where = f"{path}#image{i}"
        image = images_dir / str(_mat_field(_mat_field(entry, "image", where), "name", where))
        for r, rect in enumerate(people, 1):
            yield _mat_person(rect, f"{where}/person{r}", image)


def _mat_person(rect: Any, where: str, image: Path) -> PoseRecord | str:
    """One ``annorect`` entry as a record, or the reason it has none."""
    points = _mat_items(_mat_get(_mat_get(rect, "annopoints"), "point"))
    if not points:
        return "no keypoints"
    objpos = _mat_get(rect, "objpos")
    if objpos is None or _mat_get(rect, "scale") is None:
        return "no objpos/scale"
    keypoints = np.zeros((_NUM_JOINTS, 2))
    visibility = np.zeros(_NUM_JOINTS, np.uint8)
    for point in points:
        joint = _mat_joint_id(point, where)
        if visibility[joint]:
            raise AnnotationError(f"{where}: joint id {joint} is annotated twice")
        keypoints[joint] = _mat_number(point, "x", where), _mat_number(point, "y", where)
        visibility[joint] = _mat_visibility(point, where)
    scale = _mat_number(rect, "scale", where)
    objpos_xy = (_mat_number(objpos, "x", where), _mat_number(objpos, "y", where))
    return PoseRecord(
        image=image,
        keypoints=keypoints - 1.0,
        visibility=visibility,
        center=_body_center(np.array(objpos_xy), scale),
        scale=scale,
        norm=_mat_head_size(rect, where),
        skeleton=MPII,
        source=where,
    )


def _mat_joint_id(point: Any, where: str) -> int:
    """A point's 0-based MPII joint id, checked to be one of the 16 joints."""
    value = _mat_number(point, "id", where)
    if not (value.is_integer() and 0 <= value < _NUM_JOINTS):
        raise AnnotationError(
            f"{where}: joint id {value:g} is not an MPII joint id in [0, {_NUM_JOINTS})"
        )
    return int(value)


def _mat_visibility(point: Any, where: str) -> int:
    """Our flag from ``is_visible``: 1 -> 2 (visible), 0 -> 1 (occluded), empty/absent -> 2."""
    value = _mat_get(point, "is_visible")
    if value is None:
        return 2
    try:
        flag = float(value)  # 0/1 numbers and '0'/'1' strings
    except (TypeError, ValueError):
        flag = None
    if flag not in (0.0, 1.0):
        raise AnnotationError(f"{where}: is_visible must be 0 or 1, got {value!r}")
    return 2 if flag == 1.0 else 1


def _mat_head_size(rect: Any, where: str) -> float:
    """``0.6 * ||(x2, y2) - (x1, y1)||`` of the head box; 0.0 (unknown) without one."""
    if any(_mat_get(rect, name) is None for name in ("x1", "y1", "x2", "y2")):
        return 0.0
    x1, y1, x2, y2 = (_mat_number(rect, name, where) for name in ("x1", "y1", "x2", "y2"))
    return HEAD_SIZE_FACTOR * float(np.hypot(x2 - x1, y2 - y1))


def _mat_items(value: Any) -> list[Any]:
    """The elements of a loaded MATLAB array: ``squeeze_me`` returns a lone element bare."""
    if value is None:
        return []
    if isinstance(value, np.ndarray):
        return list(value.ravel())
    return [value]


def _mat_get(struct: Any, name: str) -> Any:
    """Field ``name`` of a loaded MATLAB struct; None when the struct or the field is absent
    or empty (MATLAB's ``[]`` and ``''``)."""
    value = getattr(struct, name, None)
    if isinstance(value, np.ndarray) and value.size == 0 or isinstance(value, str) and not value:
        return None
    return value


def _mat_field(struct: Any, name: str, where: str) -> Any:
    """Field ``name`` of a loaded MATLAB struct, or an error naming the record."""
    value = _mat_get(struct, name)
    if value is None:
        fields = list(getattr(struct, "_fieldnames", []))
        raise AnnotationError(f"{where}: no field {name!r} (fields: {fields})")
    return value


def _mat_number(struct: Any, name: str, where: str) -> float:
    """Field ``name`` of a loaded MATLAB struct as a float, or an error naming the record."""
    value = _mat_field(struct, name, where)
    try:
        return float(value)
    except (TypeError, ValueError) as err:
        raise AnnotationError(f"{where}: field {name!r} is not a number: {value!r}") from err
