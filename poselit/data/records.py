"""The reader output: one :class:`PoseRecord` per annotated person.

Every convention conversion happens in the readers, once, so a record always means the
same thing whatever file it came from:

* ``keypoints`` are in original-image pixels with the centre of the top-left pixel at
  (0, 0) (MATLAB's 1-based coordinates are shifted by one in the reader);
* ``visibility`` is 0 = not annotated (ignored by losses and metrics), 1 = annotated but
  occluded, 2 = annotated and visible (COCO's convention);
* ``center`` / ``scale`` describe the person box: a square of side ``200 * scale`` px
  around ``center`` (the MPII convention); the dataset pads it when cropping;
* ``norm`` is the PCK normaliser in original pixels (head size, torso length or box
  size, see :data:`poselit.skeletons.NormKind`); 0.0 means it is unknown or degenerate,
  and the metrics report such records instead of dividing by zero.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from poselit.skeletons import Skeleton


class AnnotationError(ValueError):
    """An annotation file or record does not have the expected layout or values."""


@dataclass(frozen=True)
class CocoInstance:
    """What COCO's keypoint evaluation (OKS AP, pycocotools' ``COCOeval``) needs of an
    annotation besides its pose: the image it belongs to (people are matched per image),
    its ``bbox`` ``(x, y, w, h)`` and segment ``area`` (the OKS scale ``s**2``; None when
    the file gives none) and whether it is a crowd region.
    """

    image_id: int | str
    box: tuple[float, float, float, float]
    area: float | None
    crowd: bool = False


@dataclass(frozen=True, eq=False)
class PoseRecord:
    """One annotated person.

    Args:
        image: Path of the image file.
        keypoints: ``(K, 2)`` float32 joint positions in original-image pixels.
        visibility: ``(K,)`` uint8 flags (0 not annotated, 1 occluded, 2 visible).
        center: ``(2,)`` float32 person-box centre in original-image pixels.
        scale: Person-box side divided by 200 px.
        norm: PCK normaliser in original-image pixels (0.0 = unknown).
        skeleton: Joint layout of ``keypoints``.
        source: Where the record came from, for error messages (``file#item``).
        coco: The annotation's COCO evaluation fields (COCO-format readers only).
    """

    image: Path
    keypoints: np.ndarray
    visibility: np.ndarray
    center: np.ndarray
    scale: float
    norm: float
    skeleton: Skeleton
    source: str
    coco: CocoInstance | None = None

    def __post_init__(self) -> None:
        k = self.skeleton.num_joints
        keypoints = np.asarray(self.keypoints, dtype=np.float32)
        visibility = np.asarray(self.visibility, dtype=np.uint8)
        center = np.asarray(self.center, dtype=np.float32)
        if keypoints.shape != (k, 2) or visibility.shape != (k,):
            raise AnnotationError(
                f"{self.source}: expected {k} joints for skeleton {self.skeleton.name!r} "
                f"(keypoints ({k}, 2), visibility ({k},)), got keypoints "
                f"{keypoints.shape} and visibility {visibility.shape}"
            )
        if not np.isin(visibility, (0, 1, 2)).all():
            raise AnnotationError(
                f"{self.source}: visibility flags must be 0, 1 or 2, got {visibility.tolist()}"
            )
        bad = np.flatnonzero((visibility > 0) & ~np.isfinite(keypoints).all(axis=1))
        if bad.size:
            names = [self.skeleton.joints[i] for i in bad]
            raise AnnotationError(
                f"{self.source}: annotated joints with non-finite coordinates: {names}"
            )
        if center.shape != (2,) or not np.isfinite(center).all():
            raise AnnotationError(f"{self.source}: person centre must be 2 finite numbers, got {center}")
        if not (np.isfinite(self.scale) and self.scale > 0):
            raise AnnotationError(f"{self.source}: person scale must be > 0, got {self.scale}")
        if not np.isfinite(self.norm) or self.norm < 0:
            raise AnnotationError(f"{self.source}: PCK normaliser must be >= 0, got {self.norm}")
        keypoints = np.where(visibility[:, None] > 0, keypoints, 0).astype(np.float32)
        for name, value in (("keypoints", keypoints), ("visibility", visibility), ("center", center)):
            value.setflags(write=False)
            object.__setattr__(self, name, value)
        object.__setattr__(self, "image", Path(self.image))
        object.__setattr__(self, "scale", float(self.scale))
        object.__setattr__(self, "norm", float(self.norm))


@dataclass
class AnnotationSet:
    """What a reader returns: the records, their skeleton, and what was skipped and why.

    ``skipped`` counts items of the file that produced no record, by reason (e.g.
    ``"crowd"``, ``"no keypoints"``), so that nothing is dropped silently. ``ignored``
    holds those of them that COCO's keypoint evaluation uses as ignore regions (crowds,
    people without labelled keypoints: a prediction matched to one is neither a hit nor
    a miss); they are never trained on or scored.
    """

    records: list[PoseRecord]
    skeleton: Skeleton
    source: str
    skipped: Counter = field(default_factory=Counter)
    ignored: list[PoseRecord] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int) -> PoseRecord:
        return self.records[i]

    def joint_counts(self) -> dict[str, dict[str, int]]:
        """Per joint: how many records annotate it, and how many of those are occluded."""
        if not self.records:
            vis = np.zeros((0, self.skeleton.num_joints), np.uint8)
        else:
            vis = np.stack([r.visibility for r in self.records])
        return {
            name: {"annotated": int((vis[:, j] > 0).sum()), "occluded": int((vis[:, j] == 1).sum())}
            for j, name in enumerate(self.skeleton.joints)
        }

    def summary(self) -> dict:
        """JSON-ready counts: records, images, annotated/occluded joints, skipped items."""
        counts = self.joint_counts()
        return {
            "source": self.source,
            "skeleton": self.skeleton.name,
            "records": len(self.records),
            "images": len({r.image for r in self.records}),
            "annotated_joints": sum(c["annotated"] for c in counts.values()),
            "occluded_joints": sum(c["occluded"] for c in counts.values()),
            "per_joint": counts,
            "skipped": dict(self.skipped),
        }
