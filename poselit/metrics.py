"""Evaluation metrics of the single-person 2D pose protocols: PCKh, PCK, AUC, PCP, visibility AP,
and COCO's OKS-based keypoint AP/AR for COCO-format data.

Every metric is a :class:`torchmetrics.Metric` whose states are per-joint (or per-limb)
**counts**, reduced by summing, so results are exact under DDP and memory does not grow
with the dataset (the visibility AP is the exception: a ranking needs every score).
Inputs are in original-image pixels; joints with visibility 0 (not annotated) are ignored.
Parts are found by joint **name** (:class:`~poselit.skeletons.Skeleton`), never by index.

The protocol choices, each taken from the public evaluation code the papers used, are
described with the rules that implement them: PCKh/PCK, AUC, PCP and the visibility AP in
:mod:`poselit.evaluation_protocols` (constants and pure functions), COCO's OKS AP/AR in
:mod:`poselit.oks` (pycocotools' steps in NumPy). This module holds the
:class:`torchmetrics.Metric` classes that count with them; every name of those two modules
is importable from here too.

A record whose normaliser is zero or non-finite (``PoseRecord.norm == 0.0``: unknown head
box, degenerate torso) is **not scored**; it is counted in the ``degenerate`` state and
reported, never divided by. The same holds for a PCP stick of zero length.
A non-finite predicted coordinate counts as a miss (the MPII code turns NaN into inf).
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import torch
from torch import Tensor
from torchmetrics import Metric, MetricCollection
from torchmetrics.utilities import dim_zero_cat

from poselit import evaluation_protocols, oks
from poselit.evaluation_protocols import *  # noqa: F403 (re-exported: see __all__)
from poselit.oks import *  # noqa: F403 (re-exported: see __all__)
from poselit.skeletons import DEFAULT_OKS_SIGMA, Skeleton, get_skeleton, oks_sigmas

__all__ = [
    "KeypointAP",
    "PCK",
    "PCP",
    "VisibilityAP",
    "pose_metrics",
    *evaluation_protocols.__all__,
    *oks.__all__,
]


# --- metrics ------------------------------------------------------------------------------


def _skipped(count: int, what: str) -> tuple[str, ...]:
    return (f"{count} {what} were not scored",) if count else ()


class _ResultMetric(Metric):
    """A metric whose :meth:`compute` is the flat view of a structured :class:`MetricResult`."""

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    def _result(self) -> MetricResult:
        raise NotImplementedError

    def compute(self) -> dict[str, Tensor]:
        """Flat ``{"<metric>/<column or item>": value}`` (see :meth:`MetricResult.log_values`)."""
        return self._result().log_values()

    def result(self) -> MetricResult:
        """The scores in the papers' layout, synchronised across processes under DDP."""
        with self.sync_context():
            return self._result()


class PCK(_ResultMetric):
    """PCK / PCKh at a threshold, per joint, per part and in Total, with the AUC.

    A joint is correct when ``||pred - target|| / norm <= threshold``. The normaliser comes
    with every record: the head size for MPII (the metric is then called PCKh), the torso
    for LSP, the box for COCO-format data. One pass over the threshold grid gives the
    headline score and the AUC. See :mod:`poselit.evaluation_protocols` for the protocol choices.

    Args:
        skeleton: Joint layout (names give the table's parts and the Total's joints).
        threshold: Headline threshold; default 0.5 for PCKh, 0.2 for PCK.
        auc_max: Upper end of the AUC range; default the protocol's (0.5 PCKh, 0.2 PCK).
        step: Spacing of the threshold grid.
    """

    def __init__(
        self,
        skeleton: Skeleton | str,
        threshold: float | None = None,
        auc_max: float | None = None,
        step: float = THRESHOLD_STEP,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.skeleton = get_skeleton(skeleton)
        default = DEFAULT_THRESHOLDS[self.skeleton.norm]
        threshold = default if threshold is None else float(threshold)
        auc_max = default if auc_max is None else float(auc_max)
        grid = threshold_grid(max(threshold, auc_max), step)
        self.threshold_index = grid_index(grid, threshold)
        self.auc_index = grid_index(grid, auc_max)
        self.threshold, self.auc_max = float(grid[self.threshold_index]), float(grid[self.auc_index])
        self.name = f"{PCK_NAMES[self.skeleton.norm]}@{self.threshold:g}"
        # A plain attribute, not a buffer: module dtype casts (.half(), bf16) must not round it.
        self.thresholds = grid
        k = self.skeleton.num_joints
        self.add_state("hits", torch.zeros(len(grid), k, dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("annotated", torch.zeros(k, dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("degenerate", torch.zeros((), dtype=torch.long), dist_reduce_fx="sum")

    def update(self, preds: Tensor, target: Tensor, visibility: Tensor, norm: Tensor) -> None:
        """Count correct joints of a batch.

        Args:
            preds: ``(B, K, 2)`` predicted joints, original-image pixels.
            target: ``(B, K, 2)`` ground truth, original-image pixels.
            visibility: ``(B, K)`` flags; 0 (not annotated) is ignored.
            norm: ``(B,)`` normalisers in pixels; records with 0 are counted as degenerate.
        """
        check_poses(self.skeleton, preds, target, visibility)
        norm = norm.to(torch.float64).reshape(-1)
        if norm.shape != (len(target),):
            raise ValueError(f"expected norm of shape ({len(target)},), got {tuple(norm.shape)}")
        annotated = visibility > 0
        usable = torch.isfinite(norm) & (norm > 0)
        self.degenerate += (annotated.any(1) & ~usable).sum()
        scored = annotated & usable[:, None]
        dist = torch.linalg.vector_norm(preds.to(torch.float64) - target.to(torch.float64), dim=-1)
        dist = dist / torch.where(usable, norm, 1.0)[:, None]
        grid = self.thresholds.to(dist.device)
        within = (dist[None] <= grid[:, None, None]) & scored  # NaN compares False
        self.hits += within.sum(1)
        self.annotated += scored.sum(0)

    def _result(self) -> MetricResult:
        sk = self.skeleton
        per_joint = percent(self.hits[self.threshold_index], self.annotated)
        total = list(total_joints(sk))
        curve = percent(self.hits[:, total].sum(1), self.annotated[total].sum()).cpu()
        auc = normalized_auc(self.thresholds[: self.auc_index + 1], curve[: self.auc_index + 1])
        return MetricResult(
            metric=self.name,
            columns={
                **part_means(per_joint, pck_parts(sk)),
                "Total": float(curve[self.threshold_index]),
                "AUC": auc,
            },
            items=dict(zip(sk.joints, per_joint.tolist())),
            counts=dict(zip(sk.joints, self.annotated.tolist())),
            degenerate=int(self.degenerate),
            curve={"threshold": self.thresholds.tolist(), "Total": curve.tolist()},
            protocol=self._protocol(),
            warnings=_skipped(int(self.degenerate), "records with a zero or unknown normaliser"),
        )

    def _protocol(self) -> str:
        sk = self.skeleton
        if sk.norm == "torso" and sk.torso is not None:
            norm = f"torso ||{sk.joints[sk.torso[0]]} - {sk.joints[sk.torso[1]]}||"
        else:
            norm = {"head": "head size", "torso": "torso", "bbox": "person box size"}[sk.norm]
        left_out = [n for n in sk.joints if n in TOTAL_EXCLUDED]
        total = f"{len(sk.joints) - len(left_out)} joints" + (
            f" (not {', '.join(left_out)})" if left_out else ""
        )
        return (
            f"correct when distance <= {self.threshold:g} x {norm}; not-annotated joints ignored; "
            f"parts average left and right; Total pools {total}; AUC: trapezoid over thresholds "
            f"0:{float(self.thresholds[1]):g}:{self.auc_max:g}, normalised"
        )


class PCP(_ResultMetric):
    """Strict PCP: a stick is correct when both predicted endpoints lie within
    ``threshold x`` its ground-truth length of the ground-truth endpoints.

    Sticks come from :data:`PCP_STICKS` by joint name; a stick is scored when all its
    joints are annotated and its length is non-zero (zero-length sticks are counted in
    ``degenerate``).

    Args:
        skeleton: Joint layout; it must have the joints of at least one stick.
        threshold: Fraction of the stick length (0.5 in every PCP table).
    """

    def __init__(self, skeleton: Skeleton | str, threshold: float = 0.5, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.skeleton = get_skeleton(skeleton)
        self.sticks = pcp_sticks(self.skeleton)
        if not self.sticks:
            raise ValueError(f"skeleton {self.skeleton.name!r} has the joints of no PCP stick")
        self.threshold = float(threshold)
        self.name = f"PCP@{self.threshold:g}"
        # (2S, K) endpoint weights: row 2s / 2s+1 averages the joints of stick s's endpoints.
        weights = torch.zeros(2 * len(self.sticks), self.skeleton.num_joints, dtype=torch.float64)
        for row, joints in enumerate(end for stick in self.sticks for end in stick.ends):
            weights[row, list(joints)] = 1.0 / len(joints)
        self.weights = weights  # a plain attribute, like PCK.thresholds
        s = len(self.sticks)
        self.add_state("hits", torch.zeros(s, dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("scored", torch.zeros(s, dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("degenerate", torch.zeros((), dtype=torch.long), dist_reduce_fx="sum")

    def update(self, preds: Tensor, target: Tensor, visibility: Tensor) -> None:
        """Count correct sticks of a batch (shapes as in :meth:`PCK.update`)."""
        check_poses(self.skeleton, preds, target, visibility)
        weights = self.weights.to(target.device)
        ends_pred = torch.einsum("ek,bkc->bec", weights, preds.to(torch.float64))
        ends_true = torch.einsum("ek,bkc->bec", weights, target.to(torch.float64))
        members = (weights > 0).to(torch.float64)
        complete = ((visibility > 0).to(torch.float64) @ members.T) == members.sum(1)  # (B, 2S)
        usable = complete[:, 0::2] & complete[:, 1::2]
        length = torch.linalg.vector_norm(ends_true[:, 0::2] - ends_true[:, 1::2], dim=-1)  # (B, S)
        self.degenerate += (usable & ~(length > 0)).sum()
        scored = usable & (length > 0)
        error = torch.linalg.vector_norm(ends_pred - ends_true, dim=-1)  # (B, 2S)
        limit = self.threshold * length
        correct = (error[:, 0::2] <= limit) & (error[:, 1::2] <= limit) & scored
        self.hits += correct.sum(0)
        self.scored += scored.sum(0)

    def _result(self) -> MetricResult:
        per_stick = percent(self.hits, self.scored)
        columns = {
            column: tuple(i for i, s in enumerate(self.sticks) if s.column == column)
            for column in PCP_COLUMNS
            if any(s.column == column for s in self.sticks)
        }
        names = [s.name for s in self.sticks]
        return MetricResult(
            metric=self.name,
            columns={
                **part_means(per_stick, columns),
                "Total": float(percent(self.hits.sum(), self.scored.sum())),
            },
            items=dict(zip(names, per_stick.tolist())),
            counts=dict(zip(names, self.scored.tolist())),
            degenerate=int(self.degenerate),
            protocol=(
                f"strict PCP: both endpoints within {self.threshold:g} x the true stick length "
                f"(<=); columns average left and right; Total pools {len(names)} sticks"
            ),
            warnings=_skipped(int(self.degenerate), "sticks of zero length"),
        )


class VisibilityAP(_ResultMetric):
    """Average precision of joint scores at telling visible from occluded joints.

    The protocol of Belagiannis & Zisserman (Sec. IV-B): the score of every annotated
    joint (e.g. its heatmap maximum) is ranked over all records and joints; visible joints
    (flag 2) are positives, occluded ones (flag 1) negatives; see
    :func:`average_precision`. Positions are not looked at. NaN scores rank last.

    States are the scores themselves (gathered across processes with ``cat``): a ranking
    cannot be summed, but it is one float per annotated joint.
    """

    name = "Visibility AP"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.add_state("scores", default=[], dist_reduce_fx="cat")
        self.add_state("visible", default=[], dist_reduce_fx="cat")

    def update(self, scores: Tensor, visibility: Tensor) -> None:
        """Add a batch: ``scores`` and ``visibility`` both ``(B, K)``."""
        if scores.shape != visibility.shape or scores.ndim != 2:
            raise ValueError(
                f"expected scores and visibility of the same shape (B, K), got "
                f"{tuple(scores.shape)} and {tuple(visibility.shape)}"
            )
        annotated = visibility > 0
        self.scores.append(torch.nan_to_num(scores[annotated].to(torch.float64), nan=-math.inf))
        self.visible.append(visibility[annotated] == 2)

    def _result(self) -> MetricResult:
        scores, visible = (
            (dim_zero_cat(s) if len(s) else torch.zeros(0)) for s in (self.scores, self.visible)
        )
        positives = int(visible.sum())
        negatives = len(visible) - positives
        ap = 100 * average_precision(scores, visible) if positives and negatives else math.nan
        return MetricResult(
            metric=self.name,
            columns={"AP": ap},
            items={},
            counts={"visible": positives, "occluded": negatives},
            protocol=(
                "joint scores ranked over all annotated joints; positives visible, negatives "
                "occluded; non-interpolated AP" + ("" if negatives else " (no occluded joints: not defined)")
            ),
        )


class KeypointAP(_ResultMetric):
    """COCO's OKS-based keypoint AP and AR (see :mod:`poselit.oks`).

    Every updated record is one person and one prediction on its image; the dataset's
    ignore regions (crowds, people without labelled keypoints) are given once. States are
    the records themselves (gathered with ``cat``): the matching needs every person of an
    image together.

    Args:
        skeleton: Joint layout.
        sigmas: Per-joint OKS constants; default :func:`~poselit.skeletons.oks_sigmas`
            (COCO's for ``coco``, a category's ``sigmas``, else a default named in the
            result's warnings).
        ignored: The dataset's ignore regions, with image keys shared with the updates.
    """

    name = "OKS AP"

    def __init__(
        self,
        skeleton: Skeleton | str,
        sigmas: Sequence[float] | None = None,
        ignored: CocoPeople | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.skeleton = get_skeleton(skeleton)
        k = self.skeleton.num_joints
        default, defaulted = oks_sigmas(self.skeleton)
        self.defaulted = defaulted if sigmas is None else ()
        self.sigmas = np.asarray(default if sigmas is None else sigmas, np.float64)
        if self.sigmas.shape != (k,) or not (np.isfinite(self.sigmas) & (self.sigmas > 0)).all():
            raise ValueError(f"OKS sigmas: expected {k} positive numbers for skeleton {self.skeleton.name!r}, got {self.sigmas.tolist()}")
        empty = np.zeros((0,))
        self.ignored = ignored or CocoPeople(
            empty.astype(np.int64), np.zeros((0, k, 2)), np.zeros((0, k)), empty, np.zeros((0, 4)), empty.astype(bool)
        )
        for state in ("preds", "scores", "target", "visibility", "area", "image"):
            self.add_state(state, default=[], dist_reduce_fx="cat")

    def update(
        self, preds: Tensor, target: Tensor, visibility: Tensor, area: Tensor, image: Tensor, scores: Tensor | None = None
    ) -> None:
        """Add a batch of records: shapes as in :meth:`PCK.update`, ``area`` and ``image``
        (integer keys) ``(B,)``, joint ``scores`` ``(B, K)`` (optional)."""
        check_poses(self.skeleton, preds, target, visibility)
        if area.shape != (len(target),) or image.shape != (len(target),):
            raise ValueError(f"expected area and image of shape ({len(target)},), got {tuple(area.shape)} and {tuple(image.shape)}")
        score = scores.to(torch.float64).mean(1) if scores is not None else torch.ones(len(target), dtype=torch.float64)
        for state, value in (("preds", preds), ("scores", score), ("target", target), ("visibility", visibility),
                             ("area", area), ("image", image)):
            getattr(self, state).append(value.to(torch.float64))

    def _result(self) -> MetricResult:
        k = self.skeleton.num_joints
        shapes = {"preds": (0, k, 2), "scores": (0,), "target": (0, k, 2), "visibility": (0, k), "area": (0,), "image": (0,)}
        got = {s: (dim_zero_cat(getattr(self, s)) if len(getattr(self, s)) else torch.zeros(shape)).cpu().numpy()
               for s, shape in shapes.items()}
        records = CocoPeople(
            got["image"].astype(np.int64), got["target"], got["visibility"], got["area"],
            np.full((len(got["area"]), 4), math.nan), np.zeros(len(got["area"]), bool),
        )
        stats = coco_keypoint_ap(got["preds"], got["scores"], records.image, CocoPeople.concat([records, self.ignored]), self.sigmas)
        return MetricResult(
            metric=self.name,
            columns={key: 100 * value for key, value in stats.items()},
            items={},
            counts={"people": len(records.image), "ignore regions": len(self.ignored.image)},
            protocol=(
                "COCO keypoint evaluation (pycocotools COCOeval, iouType 'keypoints'): OKS with the "
                "annotated area, greedy matching per image, AP/AR averaged over OKS 0.50:0.05:0.95, "
                "m/l = areas 32^2-96^2 / > 96^2"
            ),
            warnings=(
                f"joints scored with the default OKS sigma {DEFAULT_OKS_SIGMA} (give the category's "
                f"'sigmas' or --sigmas): {', '.join(self.defaulted)}",
            ) if self.defaulted else (),
        )


def pose_metrics(
    skeleton: Skeleton | str,
    threshold: float | None = None,
    *,
    scores: bool = False,
    coco: CocoPeople | None = None,
    sigmas: Sequence[float] | None = None,
) -> MetricCollection:
    """The metrics of a dataset's protocol: ``pck`` (PCK/PCKh + AUC), ``pcp`` when the
    skeleton has limbs (LSP and MPII's protocol: not for COCO-format data), ``visibility_ap``
    when the model outputs joint ``scores``, and ``oks`` (:class:`KeypointAP`, with OKS
    ``sigmas``) for COCO-format data, given its ignore regions ``coco`` (possibly none).

    Update with keyword arguments, each metric takes what it needs::

        metrics.update(preds=p, target=t, visibility=v, norm=n, scores=s, area=a, image=i)
    """
    skeleton = get_skeleton(skeleton)
    metrics: dict[str, Metric] = {"pck": PCK(skeleton, threshold)}
    if pcp_sticks(skeleton) and coco is None:
        metrics["pcp"] = PCP(skeleton)
    if scores:
        metrics["visibility_ap"] = VisibilityAP()
    if coco is not None:
        metrics["oks"] = KeypointAP(skeleton, sigmas, coco)
    return MetricCollection(metrics, compute_groups=False)
