"""COCO's keypoint evaluation (OKS AP / AR) in NumPy, step by step as pycocotools does it.

**OKS AP / AR** (COCO keypoint evaluation, pycocotools ``cocoeval.py`` with
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

The steps are the functions below, each named after its pycocotools counterpart, re-done
so that ``poselit eval`` scores COCO-format data without pycocotools and with its numbers
(``tests/test_metrics.py`` compares them on real data). :class:`~poselit.metrics.KeypointAP`
gathers the records of a run and calls :func:`coco_keypoint_ap`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

__all__ = [
    "CocoPeople",
    "OKS_AREA_RANGES",
    "OKS_MAX_DETECTIONS",
    "OKS_THRESHOLDS",
    "RECALL_THRESHOLDS",
    "coco_keypoint_ap",
    "match_predictions",
    "object_keypoint_similarity",
    "precision_recall",
]

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
    # Score ties rank as in COCOeval: images in ascending key order (its sorted imgIds), each
    # image's predictions in their given order (stable sorts here and in precision_recall).
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
