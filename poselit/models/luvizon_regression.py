"""The parameter-free half of Luvizon, Tabia & Picard (2017): soft-argmax regression with
context aggregation (Sec. 3.2) and the losses (Sec. 4.1).

Module functions, so each can be tested on its own; :mod:`poselit.models.luvizon` builds
the network around them (and re-exports them): :func:`regress_joints` (soft-argmax, joint
probability and Eq. 6), :func:`aggregate_context` (Eq. 6 alone), :func:`presence_targets`,
:func:`elastic_net` (Eq. 7) and the optional :func:`heatmap_divergence` (not in the paper).
The coordinate frame (normalised map coordinates <-> input pixels) is the method's codec,
:class:`poselit.codecs.SoftArgmaxCodec`.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from poselit.codecs_functional import soft_argmax
from poselit.lazy import lazy_names

__all__ = [
    "StageOutput",
    "aggregate_context",
    "elastic_net",
    "heatmap_divergence",
    "presence_targets",
    "regress_joints",
]


class StageOutput(NamedTuple):
    """What one prediction block outputs for the loss."""

    coords: Tensor
    """``(B, Nj, 2)`` aggregated joint positions ``(x, y)`` in normalised map coordinates
    (:meth:`poselit.codecs.SoftArgmaxCodec.decode`)."""
    presence: Tensor
    """``(B, Nj)`` presence logits: the global maximum of each joint's part map."""
    part_maps: Tensor | None = None
    """``(B, Nj, H, W)`` part-map logits, for the optional :func:`heatmap_divergence`."""


# --------------------------------------------------------------------------- regression


def aggregate_context(
    part_coords: Tensor, context_coords: Tensor, context_logits: Tensor, alpha: float
) -> Tensor:
    """Eq. 6: ``y = alpha * y_part + (1 - alpha) * sum_c(p_c * y_c) / sum_c(p_c)``.

    ``p_c = sigmoid(context_logits)``. The weights ``p_c / sum_c(p_c)`` are computed as a
    softmax of ``log(p_c)`` over the context maps (the same value), so they stay finite even
    when every ``p_c`` underflows.

    Args:
        part_coords: ``(B, Nj, 2)`` positions from the part maps.
        context_coords: ``(B, Nj, Nc, 2)`` positions from the context maps (``Nc >= 1``).
        context_logits: ``(B, Nj, Nc)`` context presence logits (global map maxima).
        alpha: Weight of the part-map position.
    """
    weights = torch.softmax(F.logsigmoid(context_logits.float()), dim=-1)
    context = (weights[..., None] * context_coords).sum(dim=-2)
    return alpha * part_coords + (1 - alpha) * context


def regress_joints(maps: Tensor, num_joints: int, alpha: float) -> tuple[Tensor, Tensor]:
    """The parameter-free regression stage of one block (Sec. 3.2, Fig. 4).

    Soft-argmax (Eqs. 1-4, normalised grid) on every map, the presence logit of every map
    (its global maximum; the joint probability is its sigmoid, Sec. 3.2.2) and the context
    aggregation of Eq. 6.

    Args:
        maps: ``(B, (1 + Nc) * Nj, H, W)``: the ``Nj`` part maps first, then the ``Nc``
            context maps of joint 0, of joint 1, ... (the authors' channel order).
        num_joints: ``Nj``.
        alpha: Eq. 6's weight of the part maps (unused when ``Nc = 0``).

    Returns:
        ``(B, Nj, 2)`` normalised positions and ``(B, Nj)`` presence logits of the part maps.
    """
    batch, channels = maps.shape[:2]
    if channels % num_joints:
        raise ValueError(f"{channels} maps is not a multiple of {num_joints} joints")
    num_context = channels // num_joints - 1
    coords = soft_argmax(maps, grid="normalized")  # (B, M, 2), float32
    logits = maps.flatten(2).amax(dim=-1).float()  # (B, M)
    part_coords, part_logits = coords[:, :num_joints], logits[:, :num_joints]
    if num_context == 0:
        return part_coords, part_logits
    context_coords = coords[:, num_joints:].reshape(batch, num_joints, num_context, 2)
    context_logits = logits[:, num_joints:].reshape(batch, num_joints, num_context)
    return aggregate_context(part_coords, context_coords, context_logits, alpha), part_logits


# --------------------------------------------------------------------------- loss


def presence_targets(keypoints: Tensor, visibility: Tensor, input_size: tuple[int, int]) -> Tensor:
    """``(B, Nj)`` booleans: the joint is annotated and lies inside the input crop.

    Inside means ``-0.5 < x < W - 0.5`` and ``-0.5 < y < H - 0.5`` (the crop's area under the
    pixel-centre convention), the authors' ``get_visible_joints`` (``0 < u < 1`` on
    crop-normalised coordinates). Occluded joints (visibility 1) count as present: the paper's
    probability is that of the joint "being present in the image", not of being seen.
    """
    height, width = input_size
    x, y = keypoints[..., 0], keypoints[..., 1]
    inside = (x > -0.5) & (x < width - 0.5) & (y > -0.5) & (y < height - 0.5)
    return (visibility > 0) & inside


def elastic_net(prediction: Tensor, target: Tensor, valid: Tensor) -> Tensor:
    """Eq. 7 on valid joints: ``sum(|d|_1 + |d|_2^2) / max(1, number of valid joints)``.

    ``d`` is the ``(x, y)`` error of a joint; the sum runs over the valid joints of the whole
    batch. Invalid joints contribute nothing, whatever their coordinates hold (NaN included).

    Args:
        prediction: ``(B, Nj, 2)``.
        target: ``(B, Nj, 2)``.
        valid: ``(B, Nj)`` booleans.
    """
    diff = torch.where(valid[..., None], prediction.float() - target.float(), 0.0)
    per_joint = diff.abs().sum(dim=-1) + diff.square().sum(dim=-1)
    return per_joint.sum() / valid.sum().clamp_min(1)


def heatmap_divergence(part_maps: Tensor, targets: Tensor, valid: Tensor) -> Tensor:
    """Jensen-Shannon divergence between each valid joint's spatial softmax (Eq. 1) and its
    target distribution, averaged over the valid joints: the regulariser of DSNT (Nibali et
    al. 2018, Sec. 4.2), which gives the maps a shape to aim for. Not in Luvizon et al.
    (see ``heatmap_regularization``).

    Args:
        part_maps: ``(B, Nj, H, W)`` logits.
        targets: ``(B, Nj, H, W)`` non-negative maps, each summing to 1 where ``valid``.
        valid: ``(B, Nj)`` booleans.
    """
    log_p = torch.log_softmax(part_maps.float().flatten(2), dim=-1)
    p, q = log_p.exp(), targets.float().flatten(2)
    log_m = ((p + q) / 2).clamp_min(torch.finfo(torch.float32).tiny).log()
    divergence = ((p * (log_p - log_m)).sum(-1) + (torch.xlogy(q, q) - q * log_m).sum(-1)) / 2
    return torch.where(valid, divergence, 0.0).sum() / valid.sum().clamp_min(1)


# Moved to the codecs, importable from here for one release (with a DeprecationWarning).
MOVED = {
    "normalized_to_input": "poselit.codecs:normalized_to_input",
    "input_to_normalized": "poselit.codecs:input_to_normalized",
}
__getattr__, __dir__ = lazy_names(__name__, moved=MOVED)
