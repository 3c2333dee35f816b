"""The single-person evaluation protocols: their choices, as constants and pure functions.
(Formerly ``poselit.protocols``, which works for one release and warns; not about
:class:`typing.Protocol` classes such as :class:`~poselit.input_spec.PoseModel`.)

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

The rules are here as data and pure functions: the joints each table column averages
(:data:`PCK_PARTS`) and those the Total leaves out (:data:`TOTAL_EXCLUDED`), the threshold
grid and its normalised area (:func:`threshold_grid`, :func:`normalized_auc`), the sticks
by joint name (:data:`PCP_STICKS`), the non-interpolated AP (:func:`average_precision`),
and :class:`MetricResult`, one metric's scores in the papers' layout. The
:class:`torchmetrics.Metric` classes of :mod:`poselit.metrics` count with them; the tables
(:mod:`poselit.tables`) and plots read results and column names from here without
importing torchmetrics.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import torch
from torch import Tensor

from poselit.skeletons import NormKind, Skeleton

__all__ = [
    "DEFAULT_THRESHOLDS",
    "MetricResult",
    "PCK_NAMES",
    "PCK_PARTS",
    "PCP_COLUMNS",
    "PCP_STICKS",
    "Stick",
    "THRESHOLD_STEP",
    "TOTAL_EXCLUDED",
    "average_precision",
    "check_poses",
    "grid_index",
    "normalized_auc",
    "part_means",
    "pck_parts",
    "pcp_sticks",
    "percent",
    "threshold_grid",
    "total_joints",
]

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
