"""The stateless functions behind :mod:`poselit.codecs`: coordinate mappings, target
encoders and decoders, batched on the device.

Every function takes and returns batched tensors (``B`` samples, ``K`` joints or ``L`` limbs)
and works on the input's device without Python loops over samples or joints, so targets are
rendered on the GPU next to the model. The conventions (pixel centres, strides, units,
visibility, precision) are those of :mod:`poselit.codecs`, whose codecs bundle these
functions into one method's choices; use a codec where a method uses one, these functions
to build a codec or to test one.
"""

from __future__ import annotations

import math
from typing import Literal, Sequence, TypeVar, get_args

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "REFINEMENTS",
    "Refine",
    "argmax_decode",
    "check_positive",
    "check_refine",
    "disk_heatmaps",
    "gaussian_heatmaps",
    "input_to_normalized",
    "limb_heatmaps",
    "limb_index",
    "normalized_to_input",
    "soft_argmax",
    "to_heatmap_coords",
    "to_input_coords",
]

Coords = TypeVar("Coords")  # tensors, NumPy arrays or floats: anything with arithmetic
Refine = Literal["quarter_offset", "taylor", "dark"]
REFINEMENTS: tuple[str | None, ...] = (*get_args(Refine), None)
"""Every ``refine`` value :func:`argmax_decode` accepts."""


def to_heatmap_coords(xy: Coords, stride: float) -> Coords:
    """Input pixel coordinates -> coordinates on a stride-``stride`` heatmap.

    ``map = (input - (stride - 1) / 2) / stride``: heatmap pixel centres are the centres of
    the ``stride x stride`` input blocks they summarise (see the module docstring). Works on
    tensors, NumPy arrays and floats alike.
    """
    check_positive(stride=stride)
    return (xy - (stride - 1) / 2) / stride


def to_input_coords(xy: Coords, stride: float) -> Coords:
    """Coordinates on a stride-``stride`` heatmap -> input pixel coordinates (inverse of
    :func:`to_heatmap_coords`)."""
    check_positive(stride=stride)
    return xy * stride + (stride - 1) / 2


def gaussian_heatmaps(
    keypoints: Tensor,
    visibility: Tensor,
    size: tuple[int, int],
    std: float,
    *,
    peak: float = 1.0,
    stride: float = 1,
    min_visibility: int = 1,
) -> Tensor:
    """Isotropic Gaussian per joint, ``peak * exp(-d^2 / (2 std^2))`` (no normalisation).

    Regression targets of Bulat & Tzimiropoulos (Sec. 3, "Regression subnetwork": std 5 px at
    full input resolution, all annotated parts) and Belagiannis & Zisserman (Sec. II-C: std 1.3
    on the stride-4 62x62 map, peak magnified to 12 so the foreground is not drowned by the
    background in the L2 loss).

    Args:
        keypoints: ``(B, K, 2)`` joint positions ``(x, y)`` in input pixels.
        visibility: ``(B, K)`` visibility flags.
        size: Heatmap ``(H, W)``.
        std: Standard deviation in heatmap pixels.
        peak: Value at the joint position.
        stride: Input pixels per heatmap pixel.
        min_visibility: Lowest visibility drawn; other joints get a zero map.

    Returns:
        ``(B, K, H, W)`` heatmaps on ``keypoints.device``.
    """
    check_positive(std=std)
    xy, drawn = _map_keypoints(keypoints, visibility, stride, min_visibility)
    dx, dy = _offsets(xy, size)
    # exp(-(dx^2 + dy^2)/2s^2) = exp(-dx^2/2s^2) * exp(-dy^2/2s^2): H + W exponentials, not H * W.
    gx = torch.exp(-0.5 * (dx / std) ** 2)
    gy = torch.exp(-0.5 * (dy / std) ** 2)
    return _zero_where_not(drawn, peak * gy[..., :, None] * gx[..., None, :])


def disk_heatmaps(
    keypoints: Tensor,
    visibility: Tensor,
    size: tuple[int, int],
    radius: float,
    *,
    stride: float = 1,
    min_visibility: int = 1,
) -> Tensor:
    """Binary disks: 1 at pixels within ``radius`` of the joint, 0 elsewhere.

    Detection targets of Bulat & Tzimiropoulos (Sec. 3, "Part detection subnetwork"), trained
    with per-pixel sigmoid cross-entropy: radius 10 px for a 200 px tall person and visible
    parts only, i.e. ``min_visibility=2``. Scale the radius with the crop.

    Args:
        keypoints: ``(B, K, 2)`` joint positions ``(x, y)`` in input pixels.
        visibility: ``(B, K)`` visibility flags.
        size: Heatmap ``(H, W)``.
        radius: Disk radius in heatmap pixels (the boundary is inside the disk).
        stride: Input pixels per heatmap pixel.
        min_visibility: Lowest visibility drawn; other joints get a zero map.

    Returns:
        ``(B, K, H, W)`` maps of 0.0 and 1.0 on ``keypoints.device``.
    """
    check_positive(radius=radius)
    xy, drawn = _map_keypoints(keypoints, visibility, stride, min_visibility)
    dx, dy = _offsets(xy, size)
    inside = dy[..., :, None] ** 2 + dx[..., None, :] ** 2 <= radius**2
    return _zero_where_not(drawn, inside.to(xy.dtype))


def limb_heatmaps(
    keypoints: Tensor,
    visibility: Tensor,
    limbs: Tensor | Sequence[tuple[int, int]],
    size: tuple[int, int],
    *,
    std_along_frac: float = 0.15,
    std_across_frac: float = 0.08,
    peak: float = 1.0,
    stride: float = 1,
    min_visibility: int = 1,
) -> Tensor:
    """Oriented Gaussian per limb: the body-part heatmaps of Belagiannis & Zisserman.

    Each limb ``(a, b)`` gets a Gaussian centred on the midpoint of its two joints, with axes
    along and across the segment ``a -> b`` and standard deviations ``std_along_frac`` and
    ``std_across_frac`` times the limb length (0.15 and 0.08 in the original code; the paper's
    Sec. II-C auxiliary task). A limb is drawn only when both joints are drawn
    (``visibility >= min_visibility``) and its length is not zero.

    Args:
        keypoints: ``(B, K, 2)`` joint positions ``(x, y)`` in input pixels.
        visibility: ``(B, K)`` visibility flags.
        limbs: ``(L, 2)`` joint index pairs, e.g. :attr:`poselit.skeletons.Skeleton.limbs`.
        size: Heatmap ``(H, W)``.
        std_along_frac: Standard deviation along the limb, as a fraction of its length.
        std_across_frac: Standard deviation across the limb, as a fraction of its length.
        peak: Value at the limb midpoint.
        stride: Input pixels per heatmap pixel.
        min_visibility: Lowest visibility of both joints for the limb to be drawn.

    Returns:
        ``(B, L, H, W)`` heatmaps on ``keypoints.device``.
    """
    check_positive(std_along_frac=std_along_frac, std_across_frac=std_across_frac)
    xy, drawn = _map_keypoints(keypoints, visibility, stride, min_visibility)
    pairs = limb_index(limbs, keypoints.shape[1], xy.device)
    start, end = xy[:, pairs[:, 0]], xy[:, pairs[:, 1]]  # (B, L, 2)
    length = torch.linalg.vector_norm(end - start, dim=-1)  # (B, L)
    drawn = drawn[:, pairs[:, 0]] & drawn[:, pairs[:, 1]] & (length > 0)
    length = length.clamp_min(torch.finfo(xy.dtype).tiny)  # only drawn limbs are used below
    ux, uy = ((end - start) / length[..., None]).unbind(-1)  # unit vector a -> b, (B, L) each
    ux, uy, length = ux[..., None, None], uy[..., None, None], length[..., None, None]
    dx, dy = _offsets((start + end) / 2, size)
    dx, dy = dx[..., None, :], dy[..., :, None]  # (B, L, 1, W), (B, L, H, 1)
    along = (dx * ux + dy * uy) / (std_along_frac * length)
    across = (dy * ux - dx * uy) / (std_across_frac * length)
    return _zero_where_not(drawn, peak * torch.exp(-0.5 * (along**2 + across**2)))


def argmax_decode(
    heatmaps: Tensor, refine: Refine | None = "quarter_offset", *, blur_std: float | None = None
) -> tuple[Tensor, Tensor]:
    """Joint positions at each heatmap's maximum, with optional sub-pixel refinement.

    Refinements, applied per axis where the neighbours they need exist:

    * ``"quarter_offset"``: move 0.25 px towards the higher of the two neighbours, the standard
      test-time step of the Torch7 / hourglass evaluation code (at most 0.25 px off on a clean
      peak).
    * ``"taylor"``: one Newton step on the log-heatmap from the maximum,
      ``-Hessian^-1 @ gradient`` with finite differences over the 3x3 neighbourhood (the Taylor
      step of DARK, Zhang et al. 2020, without its Gaussian blur: blur noisy network outputs
      first). Exact for Gaussian maps, whose log is quadratic. Skipped at the border and where
      the neighbourhood is not a strict local maximum; clamped to +-0.5 px.
    * ``"dark"``: DARK in full (Zhang et al. 2020, Sec. 3.2): blur each map with a Gaussian of
      ``blur_std`` map pixels (the targets' std), rescale it to its own maximum, then the
      ``"taylor"`` step on the blurred map at the original maximum. The blur makes a noisy
      network output Gaussian-shaped again, so the step also helps where ``"taylor"`` alone
      sees a jagged peak; the largest gain is at coarse strides (Belagiannis' stride 8).
    * ``None``: integer positions.

    Args:
        heatmaps: ``(B, K, H, W)`` heatmaps (any real dtype).
        refine: Sub-pixel refinement, see above.
        blur_std: The Gaussian blur of ``"dark"``, in map pixels (required by it, ignored
            by the others).

    Returns:
        ``keypoints`` ``(B, K, 2)`` in heatmap coordinates (see :func:`to_input_coords`) and
        ``scores`` ``(B, K)``, the maximum value of each map.
    """
    _check_maps(heatmaps)
    check_refine(refine)
    maps = heatmaps.to(_compute_dtype(heatmaps.dtype))
    width = maps.shape[-1]
    scores, index = maps.flatten(2).max(dim=-1)
    x, y = index % width, index // width
    keypoints = torch.stack([x, y], dim=-1).to(maps.dtype)
    if refine == "quarter_offset":
        keypoints = keypoints + _quarter_offset(maps, x, y)
    elif refine == "taylor":
        keypoints = keypoints + _taylor_offset(_neighbourhood(maps, x, y), x, y, maps.shape[-2:])
    elif refine == "dark":
        if blur_std is None or not blur_std > 0:
            raise ValueError(f"refine='dark' needs blur_std > 0 (the targets' std in map pixels), got {blur_std!r}")
        keypoints = keypoints + _taylor_offset(_dark_neighbourhood(maps, x, y, blur_std), x, y, maps.shape[-2:])
    return keypoints, scores


def soft_argmax(logits: Tensor, grid: Literal["pixel", "normalized"] = "pixel") -> Tensor:
    """Differentiable joint positions: the expected coordinate under a spatial softmax.

    Luvizon et al. Sec. 3.2.1: each map is normalised by a softmax over all its pixels (Eq. 1)
    and the position is the expectation of a coordinate grid (Eq. 2). The softmax subtracts
    each map's maximum first, so large logits do not overflow.

    Args:
        logits: ``(B, K, H, W)`` unnormalised maps (any real dtype).
        grid: ``"pixel"``: heatmap pixel coordinates ``0 .. W-1`` / ``0 .. H-1`` (convert with
            :func:`to_input_coords`). ``"normalized"``: ``linspace(0, 1, W)`` /
            ``linspace(0, 1, H)``, as in the authors' code (the paper's Eq. 3 writes ``i / W``);
            ``normalized = pixel / (W - 1)``.

    Returns:
        ``(B, K, 2)`` coordinates ``(x, y)``.
    """
    _check_maps(logits)
    height, width = logits.shape[-2:]
    dtype = _compute_dtype(logits.dtype)
    probs = torch.softmax(logits.to(dtype).flatten(2), dim=-1).reshape(logits.shape)
    if grid == "pixel":
        xs = torch.arange(width, device=logits.device, dtype=dtype)
        ys = torch.arange(height, device=logits.device, dtype=dtype)
    elif grid == "normalized":
        xs = torch.linspace(0, 1, width, device=logits.device, dtype=dtype)
        ys = torch.linspace(0, 1, height, device=logits.device, dtype=dtype)
    else:
        raise ValueError(f"grid must be 'pixel' or 'normalized', got {grid!r}")
    # Expectation over the marginals: E[x] = sum_j P(column j) * x_j.
    return torch.stack([probs.sum(dim=-2) @ xs, probs.sum(dim=-1) @ ys], dim=-1)


def normalized_to_input(coords: Tensor, map_size: tuple[int, int], stride: float) -> Tensor:
    """:func:`soft_argmax` coordinates on the ``"normalized"`` grid -> input pixels.

    The normalised grid puts 0 at the centre of the map's first column and 1 at the centre
    of its last, so ``map = u * (W - 1)`` and then :func:`to_input_coords`::

        input = stride * u * (W - 1) + (stride - 1) / 2          (y: H instead of W)

    On a 32x32 map of a 256x256 input (stride 8) ``u = 0`` is input pixel 3.5 and ``u = 1``
    is 251.5: the centres of the first and last 8x8 blocks.

    Args:
        coords: ``(..., 2)`` normalised ``(x, y)``.
        map_size: Map ``(height, width)``, each at least 2.
        stride: Input pixels per map pixel.

    >>> normalized_to_input(torch.tensor([[0.0, 1.0]]), (32, 32), stride=8)
    tensor([[  3.5000, 251.5000]])
    """
    return to_input_coords(coords * _map_span(map_size, coords), stride)


def input_to_normalized(keypoints: Tensor, map_size: tuple[int, int], stride: float) -> Tensor:
    """Input pixels -> normalised map coordinates (inverse of :func:`normalized_to_input`)."""
    return to_heatmap_coords(keypoints, stride) / _map_span(map_size, keypoints)


# --------------------------------------------------------------------------- validation


def check_positive(**values: float) -> None:
    """``ValueError`` naming the first of ``values`` that is not > 0."""
    for name, value in values.items():
        if not value > 0:
            raise ValueError(f"{name} must be > 0, got {value}")


def check_refine(refine: object) -> None:
    """``ValueError`` unless ``refine`` is one of :data:`REFINEMENTS`."""
    if refine not in REFINEMENTS:
        raise ValueError(f"refine must be one of {', '.join(map(repr, REFINEMENTS))}, got {refine!r}")


def limb_index(limbs: Tensor | Sequence[tuple[int, int]], num_joints: int, device: torch.device) -> Tensor:
    """``(L, 2)`` long tensor of joint index pairs on ``device``; ``ValueError`` for a pair
    outside ``[0, num_joints)``."""
    pairs = torch.as_tensor(limbs, dtype=torch.long, device=device).reshape(-1, 2)
    if pairs.numel() and not ((pairs >= 0) & (pairs < num_joints)).all():
        raise ValueError(
            f"limbs must be joint index pairs in [0, {num_joints}), got {pairs.tolist()}"
        )
    return pairs


# --------------------------------------------------------------------------- helpers


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """float64 stays float64; every other dtype (half, bfloat16, integers) computes in float32."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def _check_maps(maps: Tensor) -> None:
    if maps.ndim != 4 or maps.shape[-1] == 0 or maps.shape[-2] == 0:
        raise ValueError(f"heatmaps must be (B, K, H, W) with H, W >= 1, got {tuple(maps.shape)}")


def _map_keypoints(
    keypoints: Tensor, visibility: Tensor, stride: float, min_visibility: int
) -> tuple[Tensor, Tensor]:
    """Validate encoder inputs; return heatmap coordinates and the ``(B, K)`` drawn mask."""
    if keypoints.ndim != 3 or keypoints.shape[-1] != 2:
        raise ValueError(f"keypoints must be (B, K, 2), got {tuple(keypoints.shape)}")
    if tuple(visibility.shape) != tuple(keypoints.shape[:2]):
        raise ValueError(
            f"visibility must be (B, K) = {tuple(keypoints.shape[:2])}, "
            f"got {tuple(visibility.shape)}"
        )
    xy = to_heatmap_coords(keypoints.to(_compute_dtype(keypoints.dtype)), stride)
    return xy, visibility.to(keypoints.device) >= min_visibility


def _offsets(centres: Tensor, size: tuple[int, int]) -> tuple[Tensor, Tensor]:
    """Pixel-centre coordinates minus ``centres`` ``(..., 2)``: ``(..., W)`` along x and
    ``(..., H)`` along y."""
    height, width = size
    if height < 1 or width < 1:
        raise ValueError(f"heatmap size must be (H, W) with H, W >= 1, got {tuple(size)}")
    xs = torch.arange(width, device=centres.device, dtype=centres.dtype)
    ys = torch.arange(height, device=centres.device, dtype=centres.dtype)
    return xs - centres[..., 0:1], ys - centres[..., 1:2]


def _zero_where_not(drawn: Tensor, maps: Tensor) -> Tensor:
    """Zero the maps of entries not drawn; ``where`` (not a product) so NaN inputs stay out."""
    return torch.where(drawn[..., None, None], maps, 0.0)


def _map_span(map_size: tuple[int, int], like: Tensor) -> Tensor:
    """``(W - 1, H - 1)`` as a tensor like ``like``: the normalised grid's extent in map pixels."""
    height, width = map_size
    if height < 2 or width < 2:
        raise ValueError(f"the soft-argmax maps must be at least 2x2, got {height}x{width}")
    return torch.tensor([width - 1, height - 1], dtype=like.dtype, device=like.device)


def _at(maps: Tensor, x: Tensor, y: Tensor) -> Tensor:
    """``maps[b, k, y, x]`` for ``(B, K)`` integer positions, clamped into the map."""
    height, width = maps.shape[-2:]
    index = y.clamp(0, height - 1) * width + x.clamp(0, width - 1)
    return maps.flatten(2).gather(-1, index[..., None])[..., 0]


def _quarter_offset(maps: Tensor, x: Tensor, y: Tensor) -> Tensor:
    """+-0.25 towards the higher neighbour on each axis (0 at the border or on a tie)."""
    height, width = maps.shape[-2:]
    step_x = torch.sign(_at(maps, x + 1, y) - _at(maps, x - 1, y)) * ((x > 0) & (x < width - 1))
    step_y = torch.sign(_at(maps, x, y + 1) - _at(maps, x, y - 1)) * ((y > 0) & (y < height - 1))
    return 0.25 * torch.stack([step_x, step_y], dim=-1)


def _neighbourhood(maps: Tensor, x: Tensor, y: Tensor) -> Tensor:
    """``(B, K, 3, 3)``: each map's values at ``(x + dx, y + dy)``, ``dx, dy`` in -1, 0, 1
    (rows ``dy``, columns ``dx``; clamped into the map)."""
    rows = [torch.stack([_at(maps, x + dx, y + dy) for dx in (-1, 0, 1)], dim=-1) for dy in (-1, 0, 1)]
    return torch.stack(rows, dim=-2)


def _dark_neighbourhood(maps: Tensor, x: Tensor, y: Tensor, std: float) -> Tensor:
    """DARK's distribution modulation where the Taylor step reads it: ``(B, K, 3, 3)`` values
    around ``(x, y)`` of each map (negatives clipped) blurred by a normalised Gaussian of ``std``
    pixels (radius ``ceil(3 std)``, zero outside the map).

    Only the 3x3 neighbourhood of the maximum enters the step, so only a ``(2r + 3)``-square
    window around it is blurred (two small matrix products), not the whole map: the same values
    as blurring every map, at a fraction of the work (in an exported graph too). DARK also
    rescales the blurred map to the original maximum; the step reads differences of logarithms,
    which a common factor leaves unchanged, so that is left out.
    """
    radius = max(1, math.ceil(3 * std))
    reach = radius + 1
    side = 2 * reach + 1
    batch, joints, _, width = maps.shape
    padded = F.pad(maps.clamp_min(0), (reach, reach, reach, reach))
    offsets = torch.arange(side, device=maps.device)
    rows = (y[..., None] + offsets) * (width + 2 * reach)  # padded coordinates: (x, y) -> (x + reach, y + reach)
    index = (rows[..., :, None] + (x[..., None] + offsets)[..., None, :]).flatten(2)
    window = padded.flatten(2).gather(-1, index).reshape(batch, joints, side, side)
    taps = torch.arange(-radius, radius + 1, device=maps.device, dtype=maps.dtype)
    kernel = torch.exp(-0.5 * (taps / std) ** 2)
    kernel = kernel / kernel.sum()
    # row dy + 1 of weights: the kernel centred on window offset dy (index reach + dy)
    weights = torch.stack([F.pad(kernel, (1 + d, 1 - d)) for d in (-1, 0, 1)])
    return weights @ window @ weights.T


def _taylor_offset(values: Tensor, x: Tensor, y: Tensor, size: tuple[int, int]) -> Tensor:
    """Newton step ``-H^-1 g`` on ``log`` of the ``(B, K, 3, 3)`` ``values`` around the
    integer maximum ``(x, y)`` of maps of ``size`` ``(H, W)``."""
    height, width = size
    logs = values.clamp_min(torch.finfo(values.dtype).tiny).log()

    def log_at(dx: int, dy: int) -> Tensor:
        return logs[..., dy + 1, dx + 1]

    centre = log_at(0, 0)
    gx = (log_at(1, 0) - log_at(-1, 0)) / 2
    gy = (log_at(0, 1) - log_at(0, -1)) / 2
    hxx = log_at(1, 0) - 2 * centre + log_at(-1, 0)
    hyy = log_at(0, 1) - 2 * centre + log_at(0, -1)
    hxy = (log_at(1, 1) - log_at(1, -1) - log_at(-1, 1) + log_at(-1, -1)) / 4
    det = hxx * hyy - hxy**2
    interior = (x > 0) & (x < width - 1) & (y > 0) & (y < height - 1)
    is_max = interior & (det > 0) & (hxx < 0)  # negative definite Hessian
    safe_det = torch.where(is_max, det, 1.0)
    offset = -torch.stack([hyy * gx - hxy * gy, hxx * gy - hxy * gx], dim=-1) / safe_det[..., None]
    return torch.where(is_max[..., None], offset, 0.0).clamp(-0.5, 0.5)
