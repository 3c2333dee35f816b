"""Keypoints <-> heatmaps: target encoders and coordinate decoders, batched on the device.

Every function takes and returns batched tensors (``B`` samples, ``K`` joints or ``L`` limbs)
and works on the input's device without Python loops over samples or joints, so targets are
rendered on the GPU next to the model (``docs/datasets.md``, "The data pipeline in Python":
the data pipeline delivers crops and joints, each method encodes its own targets on the device).

Coordinate convention
---------------------
Pixel centres sit at integer coordinates, with the centre of the top-left pixel at (0, 0), in
the input image and in every heatmap. A heatmap of stride ``s`` tiles the input with ``s x s``
blocks: heatmap column ``j`` covers input columns ``s*j .. s*j + s - 1``, so its centre is the
input coordinate ``s*j + (s - 1) / 2``::

    map = (input - (s - 1) / 2) / s          input = s * map + (s - 1) / 2

(:func:`to_heatmap_coords`, :func:`to_input_coords`). This is the geometry of pooling by ``s``,
of ``F.interpolate(..., align_corners=False)`` and ``cv2.resize``, and of
:func:`poselit.geometry.crop_affine`: cropping a box straight to heatmap size puts every point
exactly where this mapping does, and the image border ``-0.5`` maps to the heatmap border
``-0.5``. The popular shortcut ``map = input / s`` would shift every target by
``(s - 1) / (2 s)`` map pixels (1.5 input pixels at ``s = 4``).

Encoders take keypoints in **input pixels** plus the map's ``stride`` and draw on a map of
``size = (H, W)``; lengths (``std``, ``radius``) are in **map pixels**, the unit the papers give
them in. Decoders return **map coordinates**; :func:`to_input_coords` takes them back to input
pixels. Encoders and decoders share the convention, so ``argmax_decode(gaussian_heatmaps(x))``
returns ``x`` up to the refinement's precision (exactly, for ``refine="taylor"``).
A :class:`HeatmapCodec` bundles one method's choices (stride, target, decoding) so that its
loss and its predictions use the same ones.

Visibility follows the package convention (0 not annotated, 1 occluded, 2 visible); an encoder
draws a joint when ``visibility >= min_visibility`` and leaves a zero map otherwise, whatever
the coordinates of skipped joints hold (NaN included).

Precision: everything is computed in float32 (float64 for float64 inputs), whatever the input
dtype, and returned in that dtype, so float16/bfloat16 tensors from mixed-precision code give
the same targets and coordinates as float32 ones.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, Sequence, TypeVar, get_args

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "REFINEMENTS",
    "HeatmapCodec",
    "argmax_decode",
    "disk_heatmaps",
    "gaussian_heatmaps",
    "limb_heatmaps",
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
    _check_positive(stride=stride)
    return (xy - (stride - 1) / 2) / stride


def to_input_coords(xy: Coords, stride: float) -> Coords:
    """Coordinates on a stride-``stride`` heatmap -> input pixel coordinates (inverse of
    :func:`to_heatmap_coords`)."""
    _check_positive(stride=stride)
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
    _check_positive(std=std)
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
    _check_positive(radius=radius)
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
    _check_positive(std_along_frac=std_along_frac, std_across_frac=std_across_frac)
    xy, drawn = _map_keypoints(keypoints, visibility, stride, min_visibility)
    pairs = _limb_pairs(limbs, keypoints.shape[1], xy.device)
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
    _check_refine(refine)
    maps = heatmaps.to(_compute_dtype(heatmaps.dtype))
    width = maps.shape[-1]
    scores, index = maps.flatten(2).max(dim=-1)
    x, y = index % width, index // width
    keypoints = torch.stack([x, y], dim=-1).to(maps.dtype)
    if refine == "quarter_offset":
        keypoints = keypoints + _quarter_offset(maps, x, y)
    elif refine == "taylor":
        keypoints = keypoints + _taylor_offset(maps, x, y)
    elif refine == "dark":
        if blur_std is None or not blur_std > 0:
            raise ValueError(f"refine='dark' needs blur_std > 0 (the targets' std in map pixels), got {blur_std!r}")
        keypoints = keypoints + _taylor_offset(_dark_blur(maps, blur_std), x, y)
    return keypoints, scores


@dataclass(frozen=True)
class HeatmapCodec:
    """Keypoints <-> heatmaps of one heatmap method: its maps' geometry, targets and decoding.

    In the spirit of mmpose's codecs (one configuration shared by the head, the target
    generator and the decoding): a heatmap method holds one as ``codec``; its loss encodes
    targets with :meth:`encode` and :meth:`~poselit.models.base.PoseLitModule.decode_heatmaps`
    (the forward pass, and the shared flip test after averaging maps) reads them back with
    :meth:`decode`, so targets and predictions cannot disagree on where a map pixel lies.

    Args:
        stride: Input pixels per heatmap pixel (:func:`to_heatmap_coords`).
        std: Standard deviation of the Gaussian targets, in heatmap pixels.
        peak: Target value at the joint. Decoded scores are divided by it, so a confident
            joint scores about 1 whatever the peak (Belagiannis & Zisserman magnify it to 12).
        refine: Sub-pixel refinement of the argmax (:func:`argmax_decode`).
        clamp_negative: Decode ``max(maps, 0)``, as the evaluation code of Bulat &
            Tzimiropoulos does after flip averaging: a map with no positive response has
            no preferred position.

    >>> codec = HeatmapCodec(stride=4, std=1.3, peak=12.0, refine="taylor")
    >>> maps = codec.encode(torch.tensor([[[100.3, 60.8]]]), torch.tensor([[2]]), (64, 64))
    >>> keypoints, scores = codec.decode(maps)
    >>> keypoints, scores
    (tensor([[[100.3000,  60.8000]]]), tensor([[0.9649]]))
    """

    stride: float = 1
    std: float = 1.0
    peak: float = 1.0
    refine: Refine | None = "quarter_offset"
    clamp_negative: bool = False

    def __post_init__(self) -> None:
        _check_positive(stride=self.stride, std=self.std, peak=self.peak)
        _check_refine(self.refine)

    def encode(
        self, keypoints: Tensor, visibility: Tensor, size: tuple[int, int], *, min_visibility: int = 1
    ) -> Tensor:
        """``(B, K, H, W)`` Gaussian targets of ``(B, K, 2)`` keypoints in input pixels
        (:func:`gaussian_heatmaps` with this codec's ``std``, ``peak`` and ``stride``)."""
        return gaussian_heatmaps(
            keypoints, visibility, size, self.std, peak=self.peak, stride=self.stride, min_visibility=min_visibility
        )

    def decode(self, heatmaps: Tensor) -> tuple[Tensor, Tensor]:
        """``(B, K, H, W)`` heatmaps -> ``keypoints`` ``(B, K, 2)`` in input pixels and
        ``scores`` ``(B, K)`` (each map's maximum over ``peak``). Not differentiable: the
        maps are detached."""
        maps = heatmaps.detach()
        if self.clamp_negative:
            maps = maps.clamp_min(0)
        keypoints, scores = argmax_decode(maps, refine=self.refine, blur_std=self.std)
        return to_input_coords(keypoints, self.stride), scores / self.peak


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


# --------------------------------------------------------------------------- helpers


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """float64 stays float64; every other dtype (half, bfloat16, integers) computes in float32."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def _check_positive(**values: float) -> None:
    for name, value in values.items():
        if not value > 0:
            raise ValueError(f"{name} must be > 0, got {value}")


def _check_refine(refine: object) -> None:
    if refine not in REFINEMENTS:
        raise ValueError(f"refine must be one of {', '.join(map(repr, REFINEMENTS))}, got {refine!r}")


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


def _limb_pairs(
    limbs: Tensor | Sequence[tuple[int, int]], num_joints: int, device: torch.device
) -> Tensor:
    pairs = torch.as_tensor(limbs, dtype=torch.long, device=device).reshape(-1, 2)
    if pairs.numel() and not ((pairs >= 0) & (pairs < num_joints)).all():
        raise ValueError(
            f"limbs must be joint index pairs in [0, {num_joints}), got {pairs.tolist()}"
        )
    return pairs


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


def _dark_blur(maps: Tensor, std: float) -> Tensor:
    """DARK's distribution modulation: each map blurred by a normalised Gaussian of ``std``
    pixels (radius ``ceil(3 std)``, zero padding) and rescaled to its own maximum, floored at a
    tiny positive value so that its log is finite."""
    radius = max(1, math.ceil(3 * std))
    taps = torch.arange(-radius, radius + 1, device=maps.device, dtype=maps.dtype)
    kernel = torch.exp(-0.5 * (taps / std) ** 2)
    kernel = kernel / kernel.sum()
    batch, joints, height, width = maps.shape
    flat = maps.clamp_min(0).reshape(batch * joints, 1, height, width)
    blurred = F.conv2d(F.conv2d(flat, kernel.view(1, 1, 1, -1), padding=(0, radius)),
                       kernel.view(1, 1, -1, 1), padding=(radius, 0)).reshape(maps.shape)
    tiny = torch.finfo(maps.dtype).tiny
    peak = maps.flatten(2).amax(-1).clamp_min(tiny)[..., None, None]
    return blurred * (peak / blurred.flatten(2).amax(-1).clamp_min(tiny)[..., None, None])


def _taylor_offset(maps: Tensor, x: Tensor, y: Tensor) -> Tensor:
    """Newton step ``-H^-1 g`` on ``log(maps)`` at the integer maximum (x, y)."""
    height, width = maps.shape[-2:]
    tiny = torch.finfo(maps.dtype).tiny

    def log_at(dx: int, dy: int) -> Tensor:
        return _at(maps, x + dx, y + dy).clamp_min(tiny).log()

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
