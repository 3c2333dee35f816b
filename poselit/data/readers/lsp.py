"""Leeds Sports Pose (LSP) and LSP-extended readers.

* LSP ``joints.mat``: ``joints`` of shape (3, 14, 2000) holding x, y (1-based MATLAB
  pixels) and a flag that is 1 for **occluded** joints; every joint is annotated. The
  standard split is images 1-1000 train, 1001-2000 test.
* LSP-extended ``joints.mat``: ``joints`` of shape (14, 3, 10000) holding x, y and a flag
  that is 1 for **visible** joints; flag 0 marks joints that were not labelled (their
  coordinates are meaningless), which become "not annotated" here.

A flag other than 0 or 1 is refused, naming the image and joint: it would otherwise be
read silently as one of the two meanings.

Neither has person boxes: the box is the tight box of the annotated joints
(:func:`~poselit.geometry.box_from_keypoints`); the dataset's padding enlarges it. The
PCK normaliser is the torso, ||left shoulder - right hip||, as in the LSP evaluation code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np

from poselit.data.readers.common import collect, load_mat, require_array, require_flags
from poselit.data.records import AnnotationError, AnnotationSet, PoseRecord
from poselit.geometry import box_from_keypoints
from poselit.skeletons import LSP

LSP_SPLITS = ("train", "test", "all")


def split_slice(split: str, num_images: int) -> slice:
    """Images of an LSP split: the first half trains, the second half tests.

    For the real 2000-image file this is the standard split, images 1-1000 train and
    1001-2000 test; generated LSP-layout sets (even sizes) split the same way.
    """
    half = num_images // 2
    return {"train": slice(0, half), "test": slice(half, num_images), "all": slice(0, num_images)}[split]


def _records(
    joints: np.ndarray, visibility: np.ndarray, image_names: list[Path], mat_path: Path, first: int
) -> AnnotationSet:
    """Records from (N, 14, 2) 0-based joints and (N, 14) visibility flags."""
    return collect(
        (
            _record(kps, vis, image, f"{mat_path}#{first + i + 1}")
            for i, (kps, vis, image) in enumerate(zip(joints, visibility, image_names))
        ),
        LSP,
        mat_path,
    )


def _record(keypoints: np.ndarray, visibility: np.ndarray, image: Path, source: str) -> PoseRecord | str:
    """One person, boxed by its annotated joints; ``"no keypoints"`` when none is."""
    if not visibility.any():
        return "no keypoints"
    center, scale = box_from_keypoints(keypoints, visibility)
    return PoseRecord(
        image=image,
        keypoints=keypoints,
        visibility=visibility,
        center=center,
        scale=scale,
        norm=LSP.torso_size(keypoints, visibility),
        skeleton=LSP,
        source=source,
    )


def _flags(joints: np.ndarray, path: Path, first: int) -> np.ndarray:
    """The (N, 14) flag row of (N, 14, 3) joints, checked to be 0 or 1 (naming the image)."""
    return require_flags(joints[..., 2], "joints flag", lambda i: f"{path}#{first + i + 1}", LSP)


def read_lsp(root: str | Path, split: Literal["train", "test", "all"] = "train") -> AnnotationSet:
    """Read LSP from ``root/joints.mat`` and ``root/images/im0001.jpg``...

    Args:
        root: The LSP folder.
        split: ``train`` (images 1-1000), ``test`` (1001-2000) or ``all``; see
            :func:`split_slice`.
    """
    if split not in LSP_SPLITS:
        raise ValueError(f"LSP split must be one of {list(LSP_SPLITS)}, got {split!r}")
    root = Path(root)
    path = root / "joints.mat"
    joints = require_array(
        load_mat(path, "LSP annotation file"), "joints", path, (3, 14, None),
        hint=" (LSP joints.mat; LSP-extended files are (14, 3, 10000): use the 'lspet' reader)",
    )
    if joints.shape[2] % 2:
        raise AnnotationError(f"{path}: LSP needs an even number of images to split, got {joints.shape[2]}")
    rows = split_slice(split, joints.shape[2])
    joints = joints.transpose(2, 1, 0)[rows]  # (N, 14, 3)
    first = rows.start
    visibility = np.where(_flags(joints, path, first) == 1, 1, 2).astype(np.uint8)
    images = [root / "images" / f"im{first + i + 1:04d}.jpg" for i in range(len(joints))]
    return _records(joints[..., :2] - 1.0, visibility, images, path, first)


def read_lspet(root: str | Path) -> AnnotationSet:
    """Read LSP-extended from ``root/joints.mat`` and ``root/images/im00001.jpg``...

    Joints with flag 0 were not labelled and are marked not annotated (visibility 0);
    images with no labelled joint at all are skipped and counted.
    """
    root = Path(root)
    path = root / "joints.mat"
    joints = require_array(
        load_mat(path, "LSP-extended annotation file"), "joints", path, (14, 3, None),
        hint=" (LSP-extended joints.mat; LSP files are (3, 14, 2000): use the 'lsp' reader)",
    )
    joints = joints.transpose(2, 0, 1)  # (N, 14, 3)
    visibility = np.where(_flags(joints, path, 0) == 1, 2, 0).astype(np.uint8)
    images = [root / "images" / f"im{i + 1:05d}.jpg" for i in range(len(joints))]
    return _records(joints[..., :2] - 1.0, visibility, images, path, 0)
