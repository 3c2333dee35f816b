"""Evaluation metrics of the single-person 2D pose protocols: PCKh, PCK, AUC, PCP, visibility AP.

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

A record whose normaliser is zero or non-finite (``PoseRecord.norm == 0.0``: unknown head
box, degenerate torso) is **not scored**; it is counted in the ``degenerate`` state and
reported, never divided by. The same holds for a PCP stick of zero length.
A non-finite predicted coordinate counts as a miss (the MPII code turns NaN into inf).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import torch
from torch import Tensor
from torchmetrics import Metric, MetricCollection
from torchmetrics.utilities import dim_zero_cat

from poselit.skeletons import NormKind, Skeleton, get_skeleton

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


def pose_metrics(
    skeleton: Skeleton | str, threshold: float | None = None, *, scores: bool = False
) -> MetricCollection:
    """The metrics of a dataset's protocol: ``pck`` (PCK/PCKh + AUC), ``pcp`` when the
    skeleton has limbs, and ``visibility_ap`` when the model outputs joint ``scores``.

    Update with keyword arguments, each metric takes what it needs::

        metrics.update(preds=p, target=t, visibility=v, norm=n, scores=s)
    """
    skeleton = get_skeleton(skeleton)
    metrics: dict[str, Metric] = {"pck": PCK(skeleton, threshold)}
    if pcp_sticks(skeleton):
        metrics["pcp"] = PCP(skeleton)
    if scores:
        metrics["visibility_ap"] = VisibilityAP()
    return MetricCollection(metrics, compute_groups=False)


__all__ = [
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
