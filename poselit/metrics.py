"""Evaluation metrics of the single-person 2D pose protocols: PCKh, PCK, AUC, PCP, visibility AP,
and COCO's OKS-based keypoint AP/AR for COCO-format data.

Every metric is a :class:`torchmetrics.Metric` whose states are per-joint (or per-limb)
**counts**, reduced by summing, so results are exact under DDP and memory does not grow
with the dataset (the visibility AP is the exception: a ranking needs every score).
Inputs are in original-image pixels; joints with visibility 0 (not annotated) are ignored.
Parts are found by joint **name** (:class:`~poselit.skeletons.Skeleton`), never by index.

Protocol choices, each taken from the public evaluation code the papers used:

* **PCKh@t** (MPII, ``evaluatePCKh.m`` / ``computePCK.m`` of the official MPII toolkit):
  a joint is correct when ``||pred - gt|| / head_size <= t`` (``<=``, as ``computePCK.m``
  writes it; the papers' prose says "smaller than", the code decides). The head size is
  the record's ``norm`` (``0.6 x`` head-box diagonal, or the ``.h5`` ``normalize`` field).
  Parts average the left and right joints' percentages (``genTablePCK.m``); Head is the
  mean of ``upper_neck`` and ``head_top``. **Total pools all joints except pelvis and
  thorax** (``annolist2matrix.m`` keeps those 14), so it is not the mean of the columns.
* **PCK@t** (LSP, ``evaluatePCK.m`` / ``getDistPCK.m`` of the public LSP toolkit used for
  the comparisons in Bulat et al.): the same rule with the torso ``||left_shoulder -
  right_hip||`` as normaliser; Head = mean of ``neck`` and ``head_top``; Total pools all
  14 joints. Bulat et al.'s own script also drops ground-truth joints at ``x <= 1`` or
  ``y <= 1`` (1-based); the public toolkit keeps them, and so do we (4 joints of the LSP
  test split, 54 of MPII valid).
* **AUC**: the area under the Total PCK curve over the thresholds ``0, 0.01, ..., t_max``
  divided by ``t_max`` (trapezoid rule, which is what ``area_under_curve.m``'s ``quadgk``
  of the linear interpolation integrates), in percent. ``t_max`` is 0.5 for PCKh and
  0.2 for PCK (the ``range`` of the two toolkits), whatever headline threshold is asked.
* **PCP@0.5** (strict, ``evaluatePCP.m`` / ``computePCP.m``): a limb ("stick") is correct
  when **both** predicted endpoints are within ``0.5 x`` the ground-truth stick length
  (``<=``). The 10 LSP sticks (``keypoints2sticks.m``): lower and upper legs and arms,
  head (neck to head top) and torso (mid-hips to mid-shoulders). Columns average left and
  right; Total pools all sticks. The same sticks are used, by name, for MPII
  (``upper_neck`` to ``head_top``) and any skeleton that has their joints.
* **Visibility AP** (Belagiannis & Zisserman, Sec. IV-B): every annotated joint's score is
  ranked over the whole set; visible joints are the positives, occluded ones the
  negatives; AP is the area under the precision-recall curve without interpolation.
* **OKS AP / AR** (COCO keypoint evaluation, pycocotools ``cocoeval.py`` with
  ``iouType="keypoints"``, https://cocodataset.org/#keypoints-eval): the object keypoint
  similarity ``OKS = sum_i exp(-d_i^2 / (2 s^2 k_i^2)) [v_i > 0] / sum_i [v_i > 0]`` with
  ``s^2`` the person's annotated ``area`` and ``k_i = 2 sigma_i`` (``computeOks``); each
  image's predictions, best score first and at most 20, are matched greedily to its people
  at every OKS threshold ``0.50:0.05:0.95`` (``evaluateImg``); crowds, people without
  labelled keypoints and (per area range) people outside the range are ignore regions: a
  prediction matched to one is neither a hit nor a false positive. AP is the 101-point
  interpolated precision averaged over thresholds, AR the recall (``accumulate``,
  ``summarize``), for all people and the medium (32^2..96^2) and large (> 96^2) areas.
  A prediction's score is the mean of its joint scores (all equal without scores: ties
  keep image, then record order, as pycocotools' stable sort does).

A record whose normaliser is zero or non-finite (``PoseRecord.norm == 0.0``: unknown head
box, degenerate torso) is **not scored**; it is counted in the ``degenerate`` state and
reported, never divided by. The same holds for a PCP stick of zero length.
A non-finite predicted coordinate counts as a miss (the MPII code turns NaN into inf).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torch import Tensor
from torchmetrics import Metric, MetricCollection
from torchmetrics.utilities import dim_zero_cat

from poselit.skeletons import DEFAULT_OKS_SIGMA, NormKind, Skeleton, get_skeleton, oks_sigmas

THRESHOLD_STEP = 0.01
"""Spacing of the threshold grid of the PCK curve (both toolkits: ``0:0.01:t_max``)."""

DEFAULT_THRESHOLDS: dict[NormKind, float] = {"head": 0.5, "torso": 0.2, "bbox": 0.2}
"""Headline threshold and AUC range per normaliser: PCKh@0.5 (MPII), PCK@0.2 (LSP).
``bbox`` (COCO-format data) has no reference protocol; 0.2 follows LSP."""

PCK_NAMES: dict[NormKind, str] = {"head": "PCKh", "torso": "PCK", "bbox": "PCK"}

PCK_PARTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Head", ("upper_neck", "neck", "head_top")),
    ("Shoulder", ("left_shoulder", "right_shoulder")),
    ("Elbow", ("left_elbow", "right_elbow")),
    ("Wrist", ("left_wrist", "right_wrist")),
    ("Hip", ("left_hip", "right_hip")),
    ("Knee", ("left_knee", "right_knee")),
    ("Ankle", ("left_ankle", "right_ankle")),
)
"""Table columns of the PCK/PCKh tables and the joints each one averages (by name)."""

TOTAL_EXCLUDED: tuple[str, ...] = ("pelvis", "thorax")
"""Joints left out of the PCK Total, as the official MPII evaluation does."""

PCP_STICKS: tuple[tuple[str, str, str, str], ...] = (
    ("right_lower_leg", "Lower leg", "right_knee", "right_ankle"),
    ("right_upper_leg", "Upper leg", "right_hip", "right_knee"),
    ("left_upper_leg", "Upper leg", "left_hip", "left_knee"),
    ("left_lower_leg", "Lower leg", "left_knee", "left_ankle"),
    ("right_forearm", "Forearm", "right_elbow", "right_wrist"),
    ("right_upper_arm", "Upper arm", "right_shoulder", "right_elbow"),
    ("left_upper_arm", "Upper arm", "left_shoulder", "left_elbow"),
    ("left_forearm", "Forearm", "left_elbow", "left_wrist"),
    ("head", "Head", "neck|upper_neck", "head_top"),
    ("torso", "Torso", "left_hip+right_hip", "left_shoulder+right_shoulder"),
)
"""The strict-PCP sticks of the LSP toolkit: ``(name, column, endpoint, endpoint)``.
An endpoint is a joint name, ``a|b`` (the first of these the skeleton has) or ``a+b``
(the midpoint of both)."""

PCP_COLUMNS: tuple[str, ...] = ("Torso", "Upper leg", "Lower leg", "Upper arm", "Forearm", "Head")
"""Column order of the PCP tables (Luvizon et al. Tables 2 and 4)."""


# --- results ------------------------------------------------------------------------------


@dataclass(frozen=True)
class MetricResult:
    """One metric's scores in the papers' layout, for tables, logs and JSON.

    Args:
        metric: Name with threshold, e.g. ``"PCKh@0.5"``, ``"PCP@0.5"``, ``"Visibility AP"``.
        columns: Table columns in the papers' order (parts, ``Total``, ``AUC``), percent.
        items: Score of every joint (PCK, AP) or stick (PCP), percent.
        counts: How many instances each item was scored on.
        degenerate: Records (PCK) or sticks (PCP) not scored for a zero normaliser.
        curve: ``{"threshold": [...], "Total": [...]}``: the Total PCK curve.
        protocol: One sentence saying what was computed.
        warnings: What could not be scored and why (e.g. zero normalisers).
    """

    metric: str
    columns: dict[str, float]
    items: dict[str, float]
    counts: dict[str, int]
    degenerate: int = 0
    curve: dict[str, list[float]] | None = None
    protocol: str = ""
    warnings: tuple[str, ...] = ()

    def log_values(self) -> dict[str, Tensor]:
        """Flat ``{"<metric>/<column or item>": value}`` for ``LightningModule.log_dict``."""
        values = {**self.columns, **self.items}
        return {f"{self.metric}/{key}": torch.tensor(value) for key, value in values.items()}

    def notes(self) -> list[str]:
        """The protocol line, then the warnings."""
        return ([f"{self.metric}: {self.protocol}"] if self.protocol else []) + [
            f"{self.metric}: {w}" for w in self.warnings
        ]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary (NaN becomes ``None``)."""
        return {
            "metric": self.metric,
            "columns": {k: _to_json(v) for k, v in self.columns.items()},
            "items": {k: _to_json(v) for k, v in self.items.items()},
            "counts": dict(self.counts),
            "degenerate": self.degenerate,
            "curve": None
            if self.curve is None
            else {k: [_to_json(v) for v in vs] for k, vs in self.curve.items()},
            "protocol": self.protocol,
            "warnings": list(self.warnings),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> MetricResult:
        """Inverse of :meth:`to_dict`."""
        curve = data.get("curve")
        return cls(
            metric=str(data["metric"]),
            columns={k: _from_json(v) for k, v in data["columns"].items()},
            items={k: _from_json(v) for k, v in data.get("items", {}).items()},
            counts={k: int(v) for k, v in data.get("counts", {}).items()},
            degenerate=int(data.get("degenerate", 0)),
            curve=None if curve is None else {k: [_from_json(v) for v in vs] for k, vs in curve.items()},
            protocol=str(data.get("protocol", "")),
            warnings=tuple(data.get("warnings", ())),
        )


def _to_json(value: float) -> float | None:
    return None if math.isnan(value) else value


def _from_json(value: float | None) -> float:
    return math.nan if value is None else float(value)


# --- protocol helpers (pure functions) ----------------------------------------------------


def pck_parts(skeleton: Skeleton) -> dict[str, tuple[int, ...]]:
    """The PCK table columns this skeleton has, with the joint indices each one averages."""
    parts = {}
    for part, names in PCK_PARTS:
        joints = tuple(skeleton.joints.index(n) for n in names if n in skeleton.joints)
        if joints:
            parts[part] = joints
    return parts


def total_joints(skeleton: Skeleton) -> tuple[int, ...]:
    """Indices of the joints pooled into the PCK Total: all but :data:`TOTAL_EXCLUDED`."""
    return tuple(i for i, name in enumerate(skeleton.joints) if name not in TOTAL_EXCLUDED)


def threshold_grid(stop: float, step: float = THRESHOLD_STEP) -> Tensor:
    """Thresholds ``0, step, ..., stop`` (float64); ``stop`` must be a multiple of ``step``."""
    n = round(stop / step)
    if n < 1 or not math.isclose(n * step, stop, abs_tol=1e-9):
        raise ValueError(f"threshold {stop} must be a positive multiple of the grid step {step}")
    return torch.arange(n + 1, dtype=torch.float64) / n * stop


def grid_index(grid: Tensor, value: float) -> int:
    """Index of ``value`` in a grid from :func:`threshold_grid` (an error if it is not on it)."""
    stop, n = float(grid[-1]), len(grid) - 1
    index = round(value / stop * n)
    if not (0 <= index <= n and math.isclose(float(grid[index]), value, abs_tol=1e-9)):
        step = stop / n
        raise ValueError(f"threshold {value} is not on the grid 0, {step:g}, ..., {stop:g}")
    return index


def normalized_auc(thresholds: Tensor, values: Tensor) -> float:
    """Area under ``values(thresholds)`` divided by the threshold range (trapezoid rule).

    This is the official ``area_under_curve(scale01(range), pck)``: ``quadgk`` of a linear
    interpolation over thresholds rescaled to [0, 1] is exactly the trapezoid sum.
    """
    span = float(thresholds[-1] - thresholds[0])
    return float(torch.trapezoid(values, thresholds) / span)


def average_precision(scores: Tensor, labels: Tensor) -> float:
    """Non-interpolated average precision, ``sum_n (R_n - R_{n-1}) P_n``, over score thresholds.

    Tied scores form one threshold (as in scikit-learn's ``average_precision_score``).
    NaN when there is no positive.
    """
    labels = labels.to(torch.float64)
    if labels.sum() == 0:
        return math.nan
    order = torch.argsort(scores, descending=True, stable=True)
    scores, labels = scores[order], labels[order]
    true_pos = torch.cumsum(labels, 0)
    last_of_tie = torch.ones_like(scores, dtype=torch.bool)
    last_of_tie[:-1] = scores[1:] != scores[:-1]
    true_pos = true_pos[last_of_tie]
    ranked = torch.nonzero(last_of_tie).squeeze(1).to(torch.float64) + 1
    precision = true_pos / ranked
    recall = true_pos / true_pos[-1]
    gained = torch.diff(recall, prepend=recall.new_zeros(1))
    return float((gained * precision).sum())


def percent(hits: Tensor, counts: Tensor) -> Tensor:
    """``100 * hits / counts``, NaN where nothing was counted."""
    counts = counts.to(torch.float64)
    return torch.where(counts > 0, 100 * hits.to(torch.float64) / counts.clamp(min=1), math.nan)


def part_means(per_item: Tensor, parts: Mapping[str, Sequence[int]]) -> dict[str, float]:
    """Each column = the mean of its items' percentages (left and right averaged as in
    ``genTablePCK.m``); items never scored are left out, NaN if none was scored."""
    return {part: float(torch.nanmean(per_item[list(idx)])) for part, idx in parts.items()}


@dataclass(frozen=True)
class Stick:
    """A PCP limb: each endpoint is the mean of one or more joints."""

    name: str
    column: str
    ends: tuple[tuple[int, ...], tuple[int, ...]]


def _endpoint(skeleton: Skeleton, spec: str) -> tuple[int, ...] | None:
    """Joint indices of a :data:`PCP_STICKS` endpoint, or None when the skeleton lacks them."""
    if "|" in spec:
        found = [n for n in spec.split("|") if n in skeleton.joints]
        return (skeleton.joints.index(found[0]),) if found else None
    names = spec.split("+")
    if not all(n in skeleton.joints for n in names):
        return None
    return tuple(skeleton.joints.index(n) for n in names)


def pcp_sticks(skeleton: Skeleton) -> tuple[Stick, ...]:
    """The :data:`PCP_STICKS` whose joints the skeleton has."""
    sticks = []
    for name, column, a, b in PCP_STICKS:
        ends = (_endpoint(skeleton, a), _endpoint(skeleton, b))
        if ends[0] is not None and ends[1] is not None:
            sticks.append(Stick(name, column, ends))  # type: ignore[arg-type]
    return tuple(sticks)


def check_poses(skeleton: Skeleton, preds: Tensor, target: Tensor, visibility: Tensor) -> None:
    """Raise a clear error unless preds/target are ``(B, K, 2)`` and visibility ``(B, K)``."""
    k = skeleton.num_joints
    b = target.shape[0] if target.ndim else -1
    if preds.shape != (b, k, 2) or target.shape != (b, k, 2) or visibility.shape != (b, k):
        raise ValueError(
            f"expected preds and target of shape (B, {k}, 2) and visibility (B, {k}) for "
            f"skeleton {skeleton.name!r}; got preds {tuple(preds.shape)}, target "
            f"{tuple(target.shape)}, visibility {tuple(visibility.shape)}"
        )


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
    headline score and the AUC. See the module docs for the protocol choices.

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


# --- COCO keypoint evaluation (OKS AP / AR) ----------------------------------------------

OKS_THRESHOLDS = np.linspace(0.5, 0.95, 10)
"""OKS thresholds of COCO's keypoint AP (``Params.iouThrs``)."""

RECALL_THRESHOLDS = np.linspace(0.0, 1.0, 101)
"""Recall points of the interpolated precision (``Params.recThrs``)."""

OKS_AREA_RANGES: dict[str, tuple[float, float]] = {
    "": (0.0, 1e10), "m": (32.0**2, 96.0**2), "l": (96.0**2, 1e10),
}
"""Area ranges of the keypoint evaluation (all, medium, large), inclusive at both ends."""

OKS_MAX_DETECTIONS = 20
"""Predictions kept per image, best score first (``Params.maxDets`` for keypoints)."""


@dataclass(frozen=True)
class CocoPeople:
    """Ground-truth people as COCO's keypoint evaluation sees them, as arrays.

    Args:
        image: ``(N,)`` integer image keys (people are matched within an image; keys sort
            as the images' COCO ids do).
        keypoints: ``(N, K, 2)`` joints, original-image pixels.
        visibility: ``(N, K)`` flags (0 not labelled).
        area: ``(N,)`` annotated areas (the OKS scale ``s^2``).
        box: ``(N, 4)`` ``bbox`` ``[x, y, w, h]``, NaN where unknown; used only for people
            without labelled joints (``computeOks`` then measures how far the prediction is
            outside the box doubled on each side).
        crowd: ``(N,)`` crowd regions (one may absorb several predictions).
    """

    image: np.ndarray
    keypoints: np.ndarray
    visibility: np.ndarray
    area: np.ndarray
    box: np.ndarray
    crowd: np.ndarray

    @property
    def ignore(self) -> np.ndarray:
        """Ignore regions whatever the area range: crowds and people without a labelled joint."""
        return self.crowd | ~(self.visibility > 0).any(1)

    def take(self, index: np.ndarray) -> CocoPeople:
        """The people at ``index``, in that order."""
        return CocoPeople(*(getattr(self, f)[index] for f in self.__dataclass_fields__))

    @classmethod
    def concat(cls, people: Sequence[CocoPeople]) -> CocoPeople:
        return cls(*(np.concatenate([getattr(p, f) for p in people]) for f in cls.__dataclass_fields__))


def object_keypoint_similarity(preds: np.ndarray, people: CocoPeople, sigmas: np.ndarray) -> np.ndarray:
    """``(D, G)`` OKS of ``(D, K, 2)`` predictions with ``G`` people (``computeOks``).

    Over the labelled joints of a person, the mean of ``exp(-d^2 / (2 area (2 sigma)^2))``;
    for a person without labelled joints, over all joints with ``d`` the distance outside its
    box enlarged by its width and height on every side (0 when that box is unknown).
    """
    variances = (2 * np.asarray(sigmas, np.float64)) ** 2
    labelled = people.visibility > 0
    any_labelled = labelled.any(1)
    x, y, w, h = people.box.T
    low, high = np.stack([x - w, y - h], -1), np.stack([x + 2 * w, y + 2 * h], -1)  # (G, 2)
    inside = preds[:, None]  # (D, 1, K, 2)
    outside = np.maximum(0, low[None, :, None] - inside) + np.maximum(0, inside - high[None, :, None])
    offset = np.where(any_labelled[None, :, None, None], inside - people.keypoints[None], outside)
    e = (offset**2).sum(-1) / variances / (people.area + np.spacing(1))[None, :, None] / 2
    weights = np.where(any_labelled[:, None], labelled, True)  # (G, K)
    return np.nan_to_num((np.exp(-e) * weights).sum(-1) / weights.sum(-1), nan=0.0)


def match_predictions(
    oks: np.ndarray, ignore: np.ndarray, crowd: np.ndarray, threshold: float
) -> tuple[np.ndarray, np.ndarray]:
    """Greedy matching of one image at one OKS threshold (``evaluateImg``).

    ``oks`` is ``(D, G)`` with predictions best score first and people not ignored first.
    Each prediction takes the unmatched (or crowd) person of highest OKS >= ``threshold``,
    preferring people that are not ignored. Returns ``(matched, ignored)``, both ``(D,)``:
    whether the prediction found a person, and whether that person is an ignore region.
    """
    taken = np.zeros(oks.shape[1], bool)
    matched = np.zeros(oks.shape[0], bool)
    ignored = np.zeros(oks.shape[0], bool)
    for d in range(oks.shape[0]):
        best, m = min(threshold, 1 - 1e-10), -1
        for g in range(oks.shape[1]):
            if taken[g] and not crowd[g]:
                continue
            if m > -1 and not ignore[m] and ignore[g]:
                break
            if oks[d, g] < best:
                continue
            best, m = oks[d, g], g
        if m > -1:
            matched[d], ignored[d], taken[m] = True, ignore[m], True
    return matched, ignored


def precision_recall(
    scores: np.ndarray, matched: np.ndarray, ignored: np.ndarray, people: int
) -> tuple[np.ndarray, np.ndarray]:
    """``(T, R)`` interpolated precision at :data:`RECALL_THRESHOLDS` and ``(T,)`` recall of
    predictions pooled over images (``accumulate``): ranked by score (stable), ignored ones
    left out; precision is made non-increasing, then read at each recall point (0 beyond
    the highest recall)."""
    order = np.argsort(-scores, kind="mergesort")
    hits, counted = matched[:, order], ~ignored[:, order]
    tp = np.cumsum(hits & counted, axis=1).astype(float)
    fp = np.cumsum(~hits & counted, axis=1).astype(float)
    precision = np.zeros((len(tp), len(RECALL_THRESHOLDS)))
    recall = np.zeros(len(tp))
    for t in range(len(tp)):
        if not tp.shape[1]:
            continue
        rc = tp[t] / people
        pr = np.maximum.accumulate((tp[t] / (fp[t] + tp[t] + np.spacing(1)))[::-1])[::-1]
        index = np.searchsorted(rc, RECALL_THRESHOLDS, side="left")
        precision[t] = np.where(index < len(pr), pr[np.minimum(index, len(pr) - 1)], 0.0)
        recall[t] = rc[-1]
    return precision, recall


def coco_keypoint_ap(
    preds: np.ndarray, scores: np.ndarray, image: np.ndarray, people: CocoPeople, sigmas: np.ndarray
) -> dict[str, float]:
    """COCO's ten keypoint numbers (``COCOeval.stats``, as fractions, NaN for a range
    without people): AP, AP50, AP75, APm, APl, AR, AR50, AR75, ARm, ARl.

    Args:
        preds: ``(D, K, 2)`` predicted joints; ``scores``: ``(D,)``; ``image``: ``(D,)`` keys.
        people: Every person of the images, records and ignore regions alike.
        sigmas: ``(K,)`` per-joint OKS constants.
    """
    extent = preds.max(1) - preds.min(1)
    pred_area = extent[:, 0] * extent[:, 1]  # loadRes: the area of the keypoints' box
    pooled: dict[str, list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = {r: [] for r in OKS_AREA_RANGES}
    counts = dict.fromkeys(OKS_AREA_RANGES, 0)
    for key in np.unique(np.concatenate([image, people.image])):
        d = np.flatnonzero(image == key)
        d = d[np.argsort(-scores[d], kind="mergesort")][:OKS_MAX_DETECTIONS]
        truth = people.take(np.flatnonzero(people.image == key))
        oks = object_keypoint_similarity(preds[d], truth, sigmas)
        for name, (low, high) in OKS_AREA_RANGES.items():
            ignore = truth.ignore | (truth.area < low) | (truth.area > high)
            order = np.argsort(ignore, kind="mergesort")
            results = [match_predictions(oks[:, order], ignore[order], truth.crowd[order], t) for t in OKS_THRESHOLDS]
            matched, ignored = (np.stack(r) for r in zip(*results))
            ignored = ignored | (~matched & ((pred_area[d] < low) | (pred_area[d] > high)))
            pooled[name].append((scores[d], matched, ignored))
            counts[name] += int((~ignore).sum())
    stats = {}
    for name, parts in pooled.items():
        if not counts[name]:
            precision, recall = np.full((len(OKS_THRESHOLDS), 1), math.nan), np.full(len(OKS_THRESHOLDS), math.nan)
        else:
            precision, recall = precision_recall(*(np.concatenate(x, axis=-1) for x in zip(*parts)), counts[name])
        stats[f"AP{name}"], stats[f"AR{name}"] = float(precision.mean()), float(recall.mean())
        if not name:
            for t, label in ((0, "50"), (5, "75")):
                stats[f"AP{label}"], stats[f"AR{label}"] = float(precision[t].mean()), float(recall[t])
    return {key: stats[key] for key in ("AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl")}


class KeypointAP(_ResultMetric):
    """COCO's OKS-based keypoint AP and AR (see the module docs and :func:`coco_keypoint_ap`).

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
    skeleton has limbs, ``visibility_ap`` when the model outputs joint ``scores``, and
    ``oks`` (:class:`KeypointAP`, with OKS ``sigmas``) for COCO-format data, given its
    ignore regions ``coco`` (possibly none).

    Update with keyword arguments, each metric takes what it needs::

        metrics.update(preds=p, target=t, visibility=v, norm=n, scores=s, area=a, image=i)
    """
    skeleton = get_skeleton(skeleton)
    metrics: dict[str, Metric] = {"pck": PCK(skeleton, threshold)}
    if pcp_sticks(skeleton):
        metrics["pcp"] = PCP(skeleton)
    if scores:
        metrics["visibility_ap"] = VisibilityAP()
    if coco is not None:
        metrics["oks"] = KeypointAP(skeleton, sigmas, coco)
    return MetricCollection(metrics, compute_groups=False)


__all__ = [
    "CocoPeople",
    "KeypointAP",
    "OKS_AREA_RANGES",
    "OKS_THRESHOLDS",
    "coco_keypoint_ap",
    "match_predictions",
    "object_keypoint_similarity",
    "precision_recall",
    "DEFAULT_THRESHOLDS",
    "PCK",
    "PCK_PARTS",
    "PCP",
    "PCP_STICKS",
    "TOTAL_EXCLUDED",
    "MetricResult",
    "Stick",
    "VisibilityAP",
    "average_precision",
    "normalized_auc",
    "pck_parts",
    "pcp_sticks",
    "pose_metrics",
    "threshold_grid",
    "total_joints",
]
