"""Labelling conventions: where a dataset's annotators put a joint, in the person's torso frame.

Datasets label the same joint at different places: LSP-extended's hips sit about 0.07 torso
lengths higher and 0.05 further out than LSP's (``benchmarks/teacher_agreement.py``, both
measured against MoveNet; docs/training.md). A model trained on both may learn a mix of
the two, and is scored on one (``bulat-mobilenetv2-lsp`` did not: it follows each dataset's
hips to 0.02). :func:`shift_joints` moves one dataset's labels to the other's convention;
:func:`torso_frame` is the frame both the measurement and the shift use.
"""

from __future__ import annotations

import dataclasses
from typing import Mapping, Sequence

import numpy as np

from poselit.data.records import AnnotationSet
from poselit.skeletons import Skeleton

#: The joints that span the torso frame: shoulders, then hips.
TORSO_JOINTS = ("left_shoulder", "right_shoulder", "left_hip", "right_hip")


def torso_frame(keypoints: np.ndarray, skeleton: Skeleton) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The torso frame of each of ``(N, K, 2)`` poses: ``up`` (unit, from the hip midpoint
    towards the shoulder midpoint), ``left`` (unit, perpendicular to ``up``, towards the
    person's left hip, whichever way the person faces) and ``length`` (hip midpoint to
    shoulder midpoint, 0 where they coincide).

    >>> from poselit.skeletons import LSP
    >>> pose = np.zeros((1, 14, 2))
    >>> pose[0, [LSP.index("left_shoulder"), LSP.index("left_hip")]] = [[12, 0], [12, 10]]
    >>> pose[0, [LSP.index("right_shoulder"), LSP.index("right_hip")]] = [[8, 0], [8, 10]]
    >>> up, left, length = torso_frame(pose, LSP)
    >>> up.tolist(), left.tolist(), length.tolist()
    ([[0.0, -1.0]], [[1.0, 0.0]], [10.0])
    """
    ls, rs, lh, rh = (skeleton.index(name) for name in TORSO_JOINTS)
    keypoints = np.asarray(keypoints, dtype=np.float64)
    towards_shoulders = keypoints[:, [ls, rs]].mean(1) - keypoints[:, [lh, rh]].mean(1)
    length = np.linalg.norm(towards_shoulders, axis=1)
    up = towards_shoulders / np.where(length > 0, length, 1)[:, None]
    left = np.stack([-up[:, 1], up[:, 0]], 1)
    hips = keypoints[:, lh] - keypoints[:, rh]
    left *= np.where((hips * left).sum(1, keepdims=True) < 0, -1.0, 1.0)
    return up, left, length


def outward(joint: str) -> float:
    """+1 for a left joint, -1 for a right one: ``out`` along ``left`` points away from the
    body's midline on the joint's own side."""
    if not joint.startswith(("left", "right")):
        raise ValueError(f"joint {joint!r} has no side: an 'out' offset needs a left or right joint")
    return 1.0 if joint.startswith("left") else -1.0


def shift_joints(annotations: AnnotationSet, offsets: Mapping[str, Sequence[float]]) -> AnnotationSet:
    """``annotations`` with each joint of ``offsets`` moved by ``(up, out)`` torso lengths in
    its person's torso frame (:func:`torso_frame` of the labels themselves; ``out`` away from
    the body's midline), e.g. ``{"left_hip": (-0.077, -0.062)}`` to bring LSP-extended's hips
    to LSP's convention. Joints not labelled, and people whose four torso joints are not all
    labelled, are left as they are.

    Raises:
        ValueError: a joint the skeleton does not have (naming the ones it has), or an offset
            that is not two finite numbers.
    """
    skeleton = annotations.skeleton
    unknown = sorted(set(offsets) - set(skeleton.joints))
    if unknown:
        raise ValueError(f"{annotations.source}: no joint {unknown[0]!r} in skeleton {skeleton.name!r} ({', '.join(skeleton.joints)})")
    moves = {}
    for joint, offset in offsets.items():
        values = np.asarray(offset, dtype=np.float64)
        if values.shape != (2,) or not np.isfinite(values).all():
            raise ValueError(f"{annotations.source}: the offset of {joint!r} must be two numbers (up, out), got {offset!r}")
        moves[skeleton.index(joint)] = (values, outward(joint) if values[1] else 0.0)  # 'up' alone: any joint
    if not annotations.records or not moves:
        return annotations
    keypoints = np.stack([r.keypoints for r in annotations.records])
    labelled = np.stack([r.visibility for r in annotations.records]) > 0
    up, left, length = torso_frame(keypoints, skeleton)
    framed = labelled[:, [skeleton.index(name) for name in TORSO_JOINTS]].all(1) & (length > 0)
    moved = keypoints.astype(np.float64)
    for j, ((along, out), side) in moves.items():
        chosen = framed & labelled[:, j]
        moved[chosen, j] += length[chosen, None] * (along * up[chosen] + side * out * left[chosen])
    records = [
        dataclasses.replace(record, keypoints=moved[i].astype(np.float32)) if framed[i] else record
        for i, record in enumerate(annotations.records)
    ]
    return dataclasses.replace(annotations, records=records)


__all__ = ["TORSO_JOINTS", "outward", "shift_joints", "torso_frame"]
