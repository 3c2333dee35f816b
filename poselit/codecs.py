"""Codecs: each method's whole contract between keypoints and its network's outputs.

As mmpose's codecs, one object per method holds every choice that its head, its target
generator and its decoding must agree on (stride, target shapes and sizes, sub-pixel
refinement, coordinate grid), so the loss and the predictions cannot disagree:

* :class:`HeatmapCodec`: Gaussian heatmaps, decoded by argmax with a sub-pixel refinement;
* :class:`DetectionRegressionCodec`: that plus binary part-detection disks (Bulat &
  Tzimiropoulos' cascade);
* :class:`LimbHeatmapCodec`: that plus oriented limb Gaussians (Belagiannis & Zisserman's
  body-part maps);
* :class:`SoftArgmaxCodec`: normalised soft-argmax coordinates (Luvizon et al.);
* :class:`CoordinateCodec`: a network that outputs keypoints itself (the default).

Every codec also says how the flip test merges the predictions of an image and of its
mirror image (:meth:`Codec.merge_flipped`, run by
:meth:`~poselit.models.base.PoseLitModule.predict_poses`, hence by the Lightning predict
step, :class:`~poselit.predict.Predictor` and the ONNX export alike): heatmap codecs average
the maps before decoding them, coordinate codecs average the keypoints; the mirroring itself
is :func:`poselit.geometry.flip_back_heatmaps` / :func:`~poselit.geometry.flip_back_keypoints`.

Targets are encoded on the device, batched, from the batch's keypoints (``docs/datasets.md``,
"The data pipeline in Python": the data pipeline delivers crops and joints). The stateless
functions behind the codecs (:func:`gaussian_heatmaps`, :func:`argmax_decode`,
:func:`soft_argmax`, ...) live in :mod:`poselit.codecs_functional` and are importable from
here too.

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

Visibility follows the package convention (0 not annotated, 1 occluded, 2 visible); an encoder
draws a joint when ``visibility >= min_visibility`` and leaves a zero map otherwise, whatever
the coordinates of skipped joints hold (NaN included).

Precision: everything is computed in float32 (float64 for float64 inputs), whatever the input
dtype, and returned in that dtype, so float16/bfloat16 tensors from mixed-precision code give
the same targets and coordinates as float32 ones.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar, Mapping

from torch import Tensor

from poselit import geometry
from poselit.codecs_functional import (
    REFINEMENTS,
    Refine,
    argmax_decode,
    check_positive,
    check_refine,
    disk_heatmaps,
    gaussian_heatmaps,
    input_to_normalized,
    limb_heatmaps,
    limb_index,
    normalized_to_input,
    soft_argmax,
    to_heatmap_coords,
    to_input_coords,
)

__all__ = [
    "REFINEMENTS",
    "Codec",
    "CoordinateCodec",
    "DetectionRegressionCodec",
    "HeatmapCodec",
    "LimbHeatmapCodec",
    "Refine",
    "SoftArgmaxCodec",
    # the functions behind the codecs (poselit.codecs_functional), importable from here too
    "argmax_decode",
    "disk_heatmaps",
    "gaussian_heatmaps",
    "input_to_normalized",
    "limb_heatmaps",
    "normalized_to_input",
    "soft_argmax",
    "to_heatmap_coords",
    "to_input_coords",
]

Outputs = Mapping[str, Tensor]
"""A network's outputs (the output contract of :mod:`poselit.models.base`)."""


class Codec(ABC):
    """What every method's codec answers, whatever its targets.

    ``outputs``: the names of the prediction that :meth:`~poselit.models.base.PoseLitModule.predict_poses`
    returns (and an ONNX export writes), in that order. :meth:`merge_flipped`: how the flip
    test makes one prediction of an image from the network's outputs on it and on its mirror
    image. Each codec adds the target encoders of its method's loss and the decoding of its
    network's outputs.
    """

    outputs: ClassVar[tuple[str, ...]] = ("keypoints", "scores")

    @abstractmethod
    def merge_flipped(
        self, outputs: Outputs, mirrored: Outputs, flip_index: Tensor, width: int
    ) -> tuple[Tensor, Tensor]:
        """``keypoints`` ``(B, K, 2)`` (input pixels) and ``scores`` ``(B, K)`` of a batch of
        images ``width`` pixels wide, from the network's ``outputs`` on them and its
        ``mirrored`` outputs on their left-right mirror images; ``flip_index`` swaps each
        joint with its mirror partner (:attr:`poselit.skeletons.Skeleton.flip_index`)."""


@dataclass(frozen=True)
class CoordinateCodec(Codec):
    """The codec of a network that outputs ``keypoints`` (input pixels) and ``scores``
    itself: the flip test averages both, the mirror image's keypoints mapped back
    (:func:`poselit.geometry.flip_back_keypoints`) and its joints swapped. The default of
    :class:`~poselit.models.base.PoseLitModule`.

    >>> import torch
    >>> flip_index = torch.tensor([1, 0])  # two joints, each the other's mirror partner
    >>> seen = {"keypoints": torch.tensor([[[2.0, 5.0], [7.0, 5.0]]]), "scores": torch.tensor([[0.4, 0.8]])}
    >>> mirror = {"keypoints": torch.tensor([[[2.0, 5.0], [7.0, 5.0]]]), "scores": torch.tensor([[0.6, 0.6]])}
    >>> CoordinateCodec().merge_flipped(seen, mirror, flip_index, width=10)
    (tensor([[[2., 5.], [7., 5.]]]), tensor([[0.5000, 0.7000]]))
    """

    def merge_flipped(
        self, outputs: Outputs, mirrored: Outputs, flip_index: Tensor, width: int
    ) -> tuple[Tensor, Tensor]:
        restored = geometry.flip_back_keypoints(mirrored["keypoints"], flip_index, width)
        keypoints = (outputs["keypoints"] + restored) / 2
        scores = (outputs["scores"] + mirrored["scores"][:, flip_index]) / 2
        return keypoints, scores


@dataclass(frozen=True)
class SoftArgmaxCodec(CoordinateCodec):
    """Keypoints <-> the normalised coordinates of a soft-argmax network (Luvizon et al.).

    The network's maps are read by :func:`soft_argmax` on its ``"normalized"`` grid
    (``linspace(0, 1, W)``: 0 and 1 are the centres of a map's first and last pixels), so its
    coordinates are trained and decoded in that frame: :meth:`encode` takes keypoints there,
    :meth:`decode` back to input pixels (:func:`normalized_to_input`). The map's size comes
    with each call (the network's outputs carry it), the ``stride`` with the codec.
    :meth:`encode_heatmaps` draws the target distributions of a heatmap regulariser. The flip
    test averages coordinates (:class:`CoordinateCodec`).

    Args:
        stride: Input pixels per map pixel.
        heatmap_std: Standard deviation of :meth:`encode_heatmaps`' Gaussians, in map pixels.

    >>> import torch
    >>> codec = SoftArgmaxCodec(stride=8)
    >>> target = codec.encode(torch.tensor([[[3.5, 251.5]]]), (32, 32))
    >>> target, codec.decode(target, (32, 32))
    (tensor([[[0., 1.]]]), tensor([[[  3.5000, 251.5000]]]))
    """

    stride: float = 1
    heatmap_std: float = 1.0

    def __post_init__(self) -> None:
        check_positive(stride=self.stride, heatmap_std=self.heatmap_std)

    def encode(self, keypoints: Tensor, map_size: tuple[int, int]) -> Tensor:
        """``(B, K, 2)`` keypoints in input pixels -> normalised coordinates on maps of
        ``map_size = (H, W)`` (float32)."""
        return input_to_normalized(keypoints.float(), map_size, self.stride)

    def decode(self, coords: Tensor, map_size: tuple[int, int]) -> Tensor:
        """Normalised coordinates ``(..., 2)`` on maps of ``map_size`` -> input pixels."""
        return normalized_to_input(coords, map_size, self.stride)

    def encode_heatmaps(self, keypoints: Tensor, valid: Tensor, map_size: tuple[int, int]) -> Tensor:
        """``(B, K, H, W)`` target distributions: a Gaussian of ``heatmap_std`` map pixels at
        each ``valid`` joint, normalised to sum 1 (all zero where not valid), float32."""
        maps = gaussian_heatmaps(keypoints.float(), valid.long(), map_size, self.heatmap_std, stride=self.stride)
        return maps / maps.sum(dim=(-2, -1), keepdim=True).clamp_min(1e-12)


@dataclass(frozen=True)
class HeatmapCodec(Codec):
    """Keypoints <-> heatmaps of one heatmap method: its maps' geometry, targets and decoding.

    In the spirit of mmpose's codecs (one configuration shared by the head, the target
    generator and the decoding): a heatmap method holds one as ``codec``; its loss encodes
    targets with :meth:`encode` and :meth:`~poselit.models.base.PoseLitModule.decode_heatmaps`
    (the forward pass, and the flip test after averaging maps: :meth:`merge_flipped`) reads
    them back with :meth:`decode`, so targets and predictions cannot disagree on where a map
    pixel lies. Its predictions include the final ``heatmaps``.

    Args:
        stride: Input pixels per heatmap pixel (:func:`to_heatmap_coords`).
        std: Standard deviation of the Gaussian targets, in heatmap pixels.
        peak: Target value at the joint. Decoded scores are divided by it, so a confident
            joint scores about 1 whatever the peak (Belagiannis & Zisserman magnify it to 12).
        refine: Sub-pixel refinement of the argmax (:func:`argmax_decode`).
        clamp_negative: Decode ``max(maps, 0)``, as the evaluation code of Bulat &
            Tzimiropoulos does after flip averaging: a map with no positive response has
            no preferred position.

    >>> import torch
    >>> codec = HeatmapCodec(stride=4, std=1.3, peak=12.0, refine="taylor")
    >>> maps = codec.encode(torch.tensor([[[100.3, 60.8]]]), torch.tensor([[2]]), (64, 64))
    >>> keypoints, scores = codec.decode(maps)
    >>> keypoints, scores
    (tensor([[[100.3000,  60.8000]]]), tensor([[0.9649]]))
    """

    outputs: ClassVar[tuple[str, ...]] = ("keypoints", "scores", "heatmaps")

    stride: float = 1
    std: float = 1.0
    peak: float = 1.0
    refine: Refine | None = "quarter_offset"
    clamp_negative: bool = False

    def __post_init__(self) -> None:
        check_positive(stride=self.stride, std=self.std, peak=self.peak)
        check_refine(self.refine)

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

    def merge_flipped(
        self, outputs: Outputs, mirrored: Outputs, flip_index: Tensor, width: int
    ) -> tuple[Tensor, Tensor]:
        """:meth:`decode` of the average of the ``heatmaps`` and the mirror image's, mirrored
        back (:func:`poselit.geometry.flip_back_heatmaps`; exact when ``stride`` divides
        ``width``): averaging maps before decoding, as the evaluation code of Bulat &
        Tzimiropoulos does, keeps a sub-pixel refinement on one smooth peak."""
        heatmaps = (outputs["heatmaps"] + geometry.flip_back_heatmaps(mirrored["heatmaps"], flip_index)) / 2
        return self.decode(heatmaps)


@dataclass(frozen=True, kw_only=True)
class DetectionRegressionCodec(HeatmapCodec):
    """The two targets of a part-detection -> regression cascade (Bulat & Tzimiropoulos,
    Sec. 3): binary disks of radius ``detection_radius`` around the **visible** joints for
    the detection maps (:meth:`encode_detection`, trained with per-pixel sigmoid
    cross-entropy), and the :class:`HeatmapCodec`'s Gaussians of all annotated joints for the
    regression maps (:meth:`encode`), whose decoding gives the keypoints.

    Args:
        detection_radius: Disk radius in heatmap pixels (the boundary is inside the disk).
        **fields: Those of :class:`HeatmapCodec`.

    >>> import torch
    >>> codec = DetectionRegressionCodec(std=5.0, detection_radius=10.0, clamp_negative=True)
    >>> keypoints, visibility = torch.tensor([[[20.0, 30.0], [40.0, 10.0]]]), torch.tensor([[2, 1]])
    >>> codec.encode_detection(keypoints, visibility, (64, 64)).sum(dim=(-2, -1))  # occluded: no disk
    tensor([[317.,   0.]])
    """

    detection_radius: float

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive(detection_radius=self.detection_radius)

    def encode_detection(self, keypoints: Tensor, visibility: Tensor, size: tuple[int, int]) -> Tensor:
        """``(B, K, H, W)`` maps of 0.0 and 1.0: a disk around each visible joint
        (visibility 2), all background for occluded and unannotated ones."""
        return disk_heatmaps(keypoints, visibility, size, self.detection_radius, stride=self.stride, min_visibility=2)


@dataclass(frozen=True, kw_only=True)
class LimbHeatmapCodec(HeatmapCodec):
    """Keypoint Gaussians and limb ("body part") Gaussians on the same maps (Belagiannis &
    Zisserman, Sec. II-C): the :class:`HeatmapCodec`'s keypoint targets (:meth:`encode`),
    which alone are decoded, and for each limb ``(a, b)`` of ``limbs`` an oriented Gaussian
    at its midpoint (:meth:`encode_limbs`, :func:`limb_heatmaps`), with standard deviations
    ``limb_std_along`` and ``limb_std_across`` times the limb's length and the same
    ``peak`` and ``stride``.

    Args:
        limbs: Joint index pairs, e.g. :attr:`poselit.skeletons.Skeleton.limbs`.
        limb_std_along: Standard deviation along the limb, as a fraction of its length.
        limb_std_across: Standard deviation across the limb, as a fraction of its length.
        **fields: Those of :class:`HeatmapCodec`.

    >>> import torch
    >>> codec = LimbHeatmapCodec(stride=4, std=1.3, peak=12.0, limbs=[(0, 1)])
    >>> keypoints, visibility = torch.tensor([[[10.0, 10.0], [50.0, 10.0]]]), torch.tensor([[2, 1]])
    >>> limbs = codec.encode_limbs(keypoints, visibility, (16, 16))
    >>> limbs.shape, round(float(limbs.max()), 2), codec.limb_ends(visibility)
    (torch.Size([1, 1, 16, 16]), 11.81, (tensor([[2]]), tensor([[1]])))
    """

    limbs: tuple[tuple[int, int], ...] = ()
    limb_std_along: float = 0.15
    limb_std_across: float = 0.08

    def __post_init__(self) -> None:
        super().__post_init__()
        check_positive(limb_std_along=self.limb_std_along, limb_std_across=self.limb_std_across)
        object.__setattr__(self, "limbs", tuple((int(a), int(b)) for a, b in self.limbs))

    def encode_limbs(
        self, keypoints: Tensor, visibility: Tensor, size: tuple[int, int], *, min_visibility: int = 1
    ) -> Tensor:
        """``(B, L, H, W)`` limb targets of ``(B, K, 2)`` keypoints in input pixels: a limb
        is drawn when both its joints have ``visibility >= min_visibility``."""
        return limb_heatmaps(
            keypoints,
            visibility,
            self.limbs,
            size,
            std_along_frac=self.limb_std_along,
            std_across_frac=self.limb_std_across,
            peak=self.peak,
            stride=self.stride,
            min_visibility=min_visibility,
        )

    def limb_ends(self, values: Tensor) -> tuple[Tensor, Tensor]:
        """Per-joint ``(B, K, ...)`` values -> those of each limb's first and second joint,
        ``(B, L, ...)`` each (e.g. visibility flags, to tell occluded limbs)."""
        pairs = limb_index(self.limbs, values.shape[1], values.device)
        return values[:, pairs[:, 0]], values[:, pairs[:, 1]]
