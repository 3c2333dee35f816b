"""Belagiannis & Zisserman, "Recurrent Human Pose Estimation" (FG 2017): a feed-forward
heatmap regressor followed by a recurrent module run a few times with shared weights.

See :class:`BelagiannisRecurrent`. The loss pieces are module functions so they can be tested
(and reused) on their own: :func:`balanced_weights` (the per-pixel foreground/background
weighting of the original code) and :func:`weighted_l2`.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Literal, Sequence

import timm
import torch
from torch import Tensor, nn

from poselit.codecs import LimbHeatmapCodec, Refine
from poselit.models.backbones import Backbone, create_backbone
from poselit.models.base import BackbonePoseModule, Batch

__all__ = [
    "BelagiannisRecurrent",
    "HeatmapHeads",
    "RecurrentModule",
    "balanced_weights",
    "nearest_stride",
    "weighted_l2",
]

DEFAULT_BACKBONE = "poselit_belagiannis_trunk"
OcclusionMode = Literal["include", "ignore", "exclude"]

SKIP_CHANNELS = 128  # conv6, the skip feature
DEEP_CHANNELS = 512  # conv8, the input of conv9
FEATURE_CHANNELS = 256  # conv9/conv10 and the recurrent module's output


def balanced_weights(foreground: Tensor) -> Tensor:
    """Per-pixel loss weights giving a map's foreground and background equal total weight.

    ``getWeightMask`` of the authors' ``cnn_regressor_get_batch.m``, per map: with ``N`` pixels,
    ``N_fg`` of them foreground and ``N_bg = N - N_fg``::

        w = N_bg / N  on foreground pixels,      w = N_fg / N  on background pixels,

    so both parts weigh ``N_fg * N_bg / N`` in total. A map with more foreground than
    background gets ``w = 1`` everywhere, and a map without foreground (a joint that is not
    annotated) gets ``w = 0`` everywhere, as in the original.

    Args:
        foreground: ``(..., H, W)`` boolean foreground masks.

    Returns:
        ``(..., H, W)`` float32 weights.
    """
    pixels = foreground.shape[-2] * foreground.shape[-1]
    n_fg = foreground.sum(dim=(-2, -1), keepdim=True).float()
    n_bg = pixels - n_fg
    weights = torch.where(foreground, n_bg / pixels, n_fg / pixels)
    return torch.where(n_fg > n_bg, torch.ones_like(weights), weights)


def weighted_l2(prediction: Tensor, target: Tensor, weight: Tensor) -> Tensor:
    """``sum(weight * (prediction - target)^2) / 2 / B``: the original's gradient, averaged over
    the batch.

    The MatConvNet loss layer (``vl_nnheatloss.m``) back-propagates ``weight * (x - y)``, the
    gradient of ``weight * (x - y)^2 / 2`` summed over pixels and maps, and ``cnn_train_dag``
    divides parameter gradients by the batch size. Computed in float32.
    """
    diff = prediction.float() - target.float()
    return 0.5 * (weight * diff.square()).sum() / prediction.shape[0]


class RecurrentModule(nn.Module):
    """The recurrent module (Sec. II-B; ``addRecFuse`` of the authors' code).

    ``concat(skip, previous) -> 7x7 64 -> 13x13 64 -> 13x13 128 -> 1x1 256``, each layer with a
    bias and followed by ReLU; the three large kernels have batch norm before the ReLU. The
    convolutions are shared by all iterations, the batch norms are one set per iteration.

    Args:
        num_iterations: How many times the module can run (one batch-norm set each).
        skip_chs: Channels of the skip feature.
        feature_chs: Channels of the recurrent feature (input and output).
    """

    def __init__(
        self, num_iterations: int, skip_chs: int = SKIP_CHANNELS, feature_chs: int = FEATURE_CHANNELS
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(skip_chs + feature_chs, 64, 7, padding=3)
        self.conv2 = nn.Conv2d(64, 64, 13, padding=6)
        self.conv3 = nn.Conv2d(64, 128, 13, padding=6)
        self.conv4 = nn.Conv2d(128, feature_chs, 1)
        self.norms = nn.ModuleList(
            nn.ModuleList([nn.BatchNorm2d(64), nn.BatchNorm2d(64), nn.BatchNorm2d(128)])
            for _ in range(num_iterations)
        )
        self.act = nn.ReLU(inplace=True)

    def forward(self, skip: Tensor, features: Tensor, iteration: int) -> Tensor:
        norm1, norm2, norm3 = self.norms[iteration]
        x = torch.cat([skip, features], dim=1)
        x = self.act(norm1(self.conv1(x)))
        x = self.act(norm2(self.conv2(x)))
        x = self.act(norm3(self.conv3(x)))
        return self.act(self.conv4(x))


class HeatmapHeads(nn.Module):
    """1x1 convolution + ReLU to keypoint heatmaps, and optionally to limb heatmaps."""

    def __init__(self, in_chs: int, num_joints: int, num_limbs: int | None) -> None:
        super().__init__()
        self.keypoints = nn.Conv2d(in_chs, num_joints, 1)
        self.limbs = nn.Conv2d(in_chs, num_limbs, 1) if num_limbs else None

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor | None]:
        keypoints = torch.relu(self.keypoints(x))
        limbs = torch.relu(self.limbs(x)) if self.limbs is not None else None
        return keypoints, limbs


class BelagiannisRecurrent(BackbonePoseModule):
    """Recurrent human pose model of Belagiannis & Zisserman (FG 2017, Sec. II; code:
    ``ox-vgg/keypoint_detection``, ``initialize3ObjeRecFusion.m``).

    **Architecture** (layer table in ``shared/reference/original_implementations.md``):

    * feed-forward module: the trunk conv1..conv8
      (:class:`poselit.models.trunks.BelagiannisTrunk`, stride 4) then conv9 1x1 512 -> 256
      and conv10 1x1 256 -> 256, each with ReLU and no batch norm;
    * recurrent module (:class:`RecurrentModule`), run ``num_iterations`` times: input
      ``concat(conv6 skip feature 128, previous 256-channel feature)``; convolutions shared by
      all iterations, batch norm per iteration;
    * heads after conv10 and after every iteration: 1x1 256 -> K keypoint heatmaps + ReLU and
      1x1 256 -> L limb ("body part", Sec. II-C) heatmaps + ReLU, L = ``len(skeleton.limbs)``.
      The feed-forward stage has its own heads; all iterations share one pair (as in the
      code: iteration 1's ``conv2_A``/``conv2_B`` are reused by later iterations);
    * a loss at every stage (feed-forward and each iteration), all with weight 1; the
      prediction is the last stage's keypoint heatmaps.

    A 248 x 248 input gives 62 x 62 maps. Convolution weights start from N(0, 0.01), biases
    from 0 (trunk included); batch norm from (1, 0).

    **Parameters** (default ``num_iterations=2``, ``body_parts=True``): 17,247,422 for MPII
    (K = 16, L = 15) and 17,245,880 for LSP (K = 14, L = 14), whatever the input size;
    trunk 13,719,168, conv9/10 197,120, recurrent convolutions 3,314,176 plus 512 batch-norm
    parameters per iteration, heads ``2 * 257 * (K + L)``. Every iteration after the first
    adds only its 512 batch-norm parameters; ``num_iterations=0`` has no recurrent module
    and one pair of heads.

    **Targets and loss** (drawn on the device by :attr:`codec`, a
    :class:`~poselit.codecs.LimbHeatmapCodec`, in :meth:`encode_targets`): keypoint Gaussians
    with std ``heatmap_std`` map pixels and peak ``heatmap_peak``; limb Gaussians centred on
    the limb midpoint with std ``limb_std_along`` / ``limb_std_across`` times the limb length
    (in map pixels) along / across it, same peak (the original's ``generateGHeatmap``
    magnifies both by ``magnif``). Maps of joints that are not annotated
    (visibility 0), and limbs with such a joint, are zero and get zero weight. Per stage::

        L_stage = sum_{b, maps, pixels} w * (x - y)^2 / 2 / B     (keypoint maps + limb maps)

    with ``w`` from :func:`balanced_weights`: per map, a pixel is foreground when its target
    exceeds ``fg_threshold * heatmap_peak`` (the original cuts the unit Gaussian's tails at
    1e-18 and takes every non-zero target pixel as foreground, about 9.1 std around the joint);
    foreground pixels weigh ``N_bg / N`` and background pixels ``N_fg / N`` (``w = 1`` if
    ``N_fg > N_bg``). The total loss is the sum over stages; keypoint and limb terms have
    weight 1 (Sec. II-D).

    **Occluded joints** (visibility 1; Sec. II-E):

    * ``"include"``: drawn like visible joints (the paper's best PCKh, the default);
    * ``"ignore"``: drawn, but the weight is zero on the joint's foreground region, so the
      prediction there gets no gradient; the rest of that map is still background;
    * ``"exclude"``: target zero (background), weights as if the joint were drawn, so a
      response at the occluded joint is penalised with the foreground weight.

    A limb counts as occluded when either of its joints is.

    **Outputs** of :meth:`forward`: ``stages`` (list of ``(keypoint maps, limb maps or None)``,
    feed-forward first), ``heatmaps`` (the last keypoint maps, ``(B, K, H/4, W/4)``),
    ``keypoints`` ``(B, K, 2)`` in input pixels and ``scores`` ``(B, K)``, decoded by
    :attr:`codec` (of the maps' stride, ``heatmap_std``, ``heatmap_peak`` and ``refine``;
    the flip test averages the maps before): argmax with ``refine``, and each map's maximum
    divided by ``heatmap_peak``,
    so about 1 for a confident joint and 0 for none. The maximum is the paper's visibility
    predictor (Sec. IV-B); the division changes no ranking.

    **Other backbones**: any timm model name. Its deepest feature at ``stride`` (default:
    stride 4, else the nearest stride, the finer one on a tie), optionally with every deeper
    feature fused in by a top-down neck (``neck_channels``), is both the skip and the deep
    feature, through
    1x1 convolution + ReLU adapters to 128 and 512 channels (N(0, 0.01) like the rest); the
    heatmaps then have that stride and :attr:`codec` has it.

    **Input normalisation**: a ``mean`` / ``std`` not given is what the backbone's
    ``pretrained_cfg`` names (:func:`~poselit.input_spec.resolve_input_spec`): the paper's
    ``(I - 128) / 256`` with the paper's trunk, whose config states it, and e.g. ImageNet's
    for a timm model with ImageNet weights, so a recipe on such a backbone states neither.

    **Deviations** from the released code, on purpose:

    * targets at sub-pixel positions, in the package's pixel-centre convention
      (:mod:`poselit.codecs`); the original rounds every joint to the nearest map pixel;
    * ``"ignore"`` zeroes the weight on the occluded joint's region only, as Sec. II-E
      describes; the code's weight mask happens to drop the whole map;
    * ``"exclude"`` penalises the occluded joint's region, as Sec. II-E describes; the code
      (``inOcclud=0``) zeroes the joint, which then gets no weight at all, like a missing one;
    * single-person targets only (the original also draws the other people of MPII images);
    * one optimiser parameter group (from the base's ``optimizer``): MatConvNet's per-tensor
      multipliers (bias and batch-norm gain learning rate x2, no weight decay on them) are
      not reproduced; batch norm uses PyTorch's eps 1e-5 (MatConvNet 1e-4), momentum 0.1 as
      MatConvNet's moment learning rate;
    * the count above follows the released layers; the paper's Table III says 15.4 M
      convolution parameters, which no reading of the released network reproduces (its
      convolution weights alone are 17.24 M). Padding (``k // 2``) and pooling (2/2, floor)
      are the original's, so no spatial deviation.

    **The original's settings of the shared arguments** (the recipes give them): ``optimizer``
    SGD with momentum 0.95, learning rate 1e-5 -> 1e-6, weight decay 5e-4, batch 20;
    ``padding`` 1.453 (a 1.5x box cropped to 256 px, seen at 248) and ``fill`` 128.

    Args:
        num_iterations: Recurrent iterations (0: feed-forward only). The paper's best model,
            "2 iter + body parts", uses 2.
        body_parts: Add the limb-heatmap heads and their loss (Sec. II-C).
        occlusion: How occluded joints enter the targets: ``"include"``, ``"ignore"`` or
            ``"exclude"`` (see above).
        heatmap_std: Keypoint Gaussian standard deviation, in map pixels.
        heatmap_peak: Value of the Gaussians at the joint (and limb midpoint).
        limb_std_along: Limb Gaussian std along the limb, as a fraction of its length.
        limb_std_across: Limb Gaussian std across the limb, as a fraction of its length.
        fg_threshold: A target pixel above ``fg_threshold * heatmap_peak`` is foreground in
            the loss weighting (1e-18: the original's tail cut).
        refine: Sub-pixel refinement of the argmax (:func:`~poselit.codecs.argmax_decode`).
        backbone: ``"poselit_belagiannis_trunk"`` (the paper's) or another timm model name,
            whose feature at ``stride`` (fused with the deeper ones by a neck, with
            ``neck_channels``) goes through the adapters (see above).
        stride: Another backbone's feature stride, hence the heatmaps' (``None``: the
            stride nearest to the paper's 4; the paper's trunk has stride 4 only).
        input_size: Input crop ``(height, width)``; the paper's is 248 x 248.
        **kwargs: The backbone's weights and neck (:class:`~poselit.models.base.BackbonePoseModule`)
            and the shared arguments (:class:`~poselit.models.base.PoseLitModule`: skeleton,
            padding, fill, ``mean`` and ``std`` (see above), flip test, optimiser, scheduler,
            ``init_from``).
    """

    def __init__(
        self,
        *,
        num_iterations: int = 2,
        body_parts: bool = True,
        occlusion: OcclusionMode = "include",
        heatmap_std: float = 1.3,
        heatmap_peak: float = 12.0,
        limb_std_along: float = 0.15,
        limb_std_across: float = 0.08,
        fg_threshold: float = 1e-18,
        refine: Refine | None = "quarter_offset",
        backbone: str = DEFAULT_BACKBONE,
        stride: int | None = None,
        input_size: tuple[int, int] = (248, 248),
        **kwargs: Any,
    ) -> None:
        super().__init__(input_size=input_size, **kwargs)
        _check_args(
            num_iterations=num_iterations,
            occlusion=occlusion,
            heatmap_std=heatmap_std,
            heatmap_peak=heatmap_peak,
            limb_std_along=limb_std_along,
            limb_std_across=limb_std_across,
            fg_threshold=fg_threshold,
        )
        if body_parts and not self.skeleton.limbs:
            raise ValueError(
                f"skeleton {self.skeleton.name!r} defines no limbs, so there are no body-part "
                "heatmaps; give the skeleton limbs or set body_parts=False"
            )
        self.num_iterations = int(num_iterations)
        self.body_parts = bool(body_parts)
        self.occlusion = occlusion
        self.fg_threshold = float(fg_threshold)

        self.backbone, stride, self.adapters = _build_backbone(self.build_backbone, backbone, stride, self.neck_channels)
        self.codec = LimbHeatmapCodec(
            stride=stride,
            std=float(heatmap_std),
            peak=float(heatmap_peak),
            refine=refine,
            limbs=self.skeleton.limbs if self.body_parts else (),
            limb_std_along=float(limb_std_along),
            limb_std_across=float(limb_std_across),
        )
        self.conv9 = nn.Conv2d(DEEP_CHANNELS, FEATURE_CHANNELS, 1)
        self.conv10 = nn.Conv2d(FEATURE_CHANNELS, FEATURE_CHANNELS, 1)
        num_limbs = self.num_limbs if self.body_parts else None
        self.heads = HeatmapHeads(FEATURE_CHANNELS, self.num_joints, num_limbs)
        if self.num_iterations:
            self.recurrent = RecurrentModule(self.num_iterations)
            self.recurrent_heads = HeatmapHeads(FEATURE_CHANNELS, self.num_joints, num_limbs)
        else:
            self.recurrent = self.recurrent_heads = None
        for module in (self.adapters, self.conv9, self.conv10, self.heads, self.recurrent, self.recurrent_heads):
            if module is not None:
                _init_normal(module)

    @property
    def num_limbs(self) -> int:
        return len(self.skeleton.limbs)

    # --- network ------------------------------------------------------------------------

    def features(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """The skip feature (128 ch) and the deep feature (512 ch), both at the maps' stride."""
        maps = self.backbone(images)
        if self.adapters is None:
            return maps[0], maps[1]
        return self.adapters["skip"](maps[0]), self.adapters["deep"](maps[0])

    def forward(self, images: Tensor) -> dict[str, Any]:
        """Normalised images ``(B, 3, H, W)`` -> the output contract (see the class docs)."""
        skip, deep = self.features(images)
        features = torch.relu(self.conv10(torch.relu(self.conv9(deep))))
        stages = [self.heads(features)]
        for iteration in range(self.num_iterations):
            features = self.recurrent(skip, features, iteration)
            stages.append(self.recurrent_heads(features))
        heatmaps = stages[-1][0]
        keypoints, scores = self.decode_heatmaps(heatmaps)
        return {"stages": stages, "heatmaps": heatmaps, "keypoints": keypoints, "scores": scores}

    # --- targets and loss ---------------------------------------------------------------

    def encode_targets(
        self, keypoints: Tensor, visibility: Tensor, size: tuple[int, int]
    ) -> dict[str, Tensor]:
        """Targets and loss weights on a map of ``size``, on the device of ``keypoints``.

        Returns ``keypoints`` / ``keypoint_weights`` ``(B, K, H, W)`` and, with body parts,
        ``limbs`` / ``limb_weights`` ``(B, L, H, W)`` (see the class docs for the rules).
        """
        size = (int(size[0]), int(size[1]))
        occluded = visibility == 1
        maps = self.codec.encode(keypoints, visibility, size)
        out = dict(zip(("keypoints", "keypoint_weights"), self._apply_occlusion(maps, occluded)))
        if self.body_parts:
            limbs = self.codec.encode_limbs(keypoints, visibility, size)
            first, second = self.codec.limb_ends(occluded)
            limb_occluded = first | second
            out.update(zip(("limbs", "limb_weights"), self._apply_occlusion(limbs, limb_occluded)))
        return out

    def _apply_occlusion(self, maps: Tensor, occluded: Tensor) -> tuple[Tensor, Tensor]:
        """Target and weights from maps drawn for every annotated entry (``occluded``: (B, C))."""
        foreground = maps > self.fg_threshold * self.codec.peak
        weights = balanced_weights(foreground)
        occluded = occluded[..., None, None]
        if self.occlusion == "exclude":
            maps = torch.where(occluded, torch.zeros_like(maps), maps)
        elif self.occlusion == "ignore":
            weights = torch.where(occluded & foreground, torch.zeros_like(weights), weights)
        return maps, weights

    def loss(self, outputs: dict[str, Any], batch: Batch) -> dict[str, Tensor]:
        """Weighted L2 at every stage, summed: ``loss``, its ``keypoints`` and ``limbs`` parts
        and each stage's total ``stage0`` (feed-forward), ``stage1``, ..."""
        stages = outputs["stages"]
        targets = self.encode_targets(batch["keypoints"], batch["visibility"], stages[0][0].shape[-2:])
        terms: dict[str, Tensor] = {}
        keypoint_total = limb_total = 0.0
        for index, (keypoint_maps, limb_maps) in enumerate(stages):
            stage = weighted_l2(keypoint_maps, targets["keypoints"], targets["keypoint_weights"])
            keypoint_total = keypoint_total + stage
            if limb_maps is not None:
                limb = weighted_l2(limb_maps, targets["limbs"], targets["limb_weights"])
                limb_total = limb_total + limb
                stage = stage + limb
            terms[f"stage{index}"] = stage
        total = keypoint_total + limb_total
        out = {"loss": total, "keypoints": keypoint_total}
        if self.body_parts:
            out["limbs"] = limb_total
        return {**out, **terms}


# --------------------------------------------------------------------------- helpers


def _check_args(num_iterations: int, occlusion: str, **positive: float) -> None:
    if isinstance(num_iterations, bool) or int(num_iterations) != num_iterations or num_iterations < 0:
        raise ValueError(f"num_iterations must be an integer >= 0, got {num_iterations!r}")
    if occlusion not in ("include", "ignore", "exclude"):
        raise ValueError(f"occlusion must be 'include', 'ignore' or 'exclude', got {occlusion!r}")
    for name, value in positive.items():
        if not value > 0:
            raise ValueError(f"{name} must be > 0, got {value!r}")


def _init_normal(module: nn.Module, std: float = 0.01) -> None:
    """N(0, std) convolution weights and zero biases, as the authors initialise every layer."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.normal_(m.weight, std=std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def nearest_stride(strides: Sequence[int], wanted: int = 4) -> int:
    """The stride in ``strides`` closest to ``wanted`` (in ratio), the finer one on a tie."""
    if not strides:
        raise ValueError("the backbone reports no feature maps")
    return min(sorted(set(strides)), key=lambda s: abs(math.log2(s / wanted)))


def _build_backbone(
    build: Callable[..., Backbone], name: str, stride: int | None, neck_channels: int | None
) -> tuple[Backbone, int, nn.ModuleDict | None]:
    """The feature extractor (made by ``build(name, **options)``:
    :meth:`~poselit.models.base.BackbonePoseModule.build_backbone`), its stride and, for a
    timm backbone, the 1x1 adapters."""
    if name == DEFAULT_BACKBONE:
        if stride not in (None, 4) or neck_channels is not None:
            raise ValueError(f"{name} has one stride (4) and no neck: stride and neck_channels are for other backbones")
        trunk = build(name, out_indices=(-2, -1))
        if trunk.channels != (SKIP_CHANNELS, DEEP_CHANNELS) or len(set(trunk.strides)) != 1:
            raise RuntimeError(f"unexpected {name} taps: {trunk.channels} at strides {trunk.strides}")
        return trunk, trunk.strides[0], None
    if stride is None:
        if not timm.is_model(name):
            create_backbone(name)  # raises the registry's KeyError, which lists close matches
        with torch.device("meta"):  # the feature layout, without memory or init time
            probe = timm.create_model(name)
        stride = nearest_stride([info["reduction"] for info in probe.feature_info])
    body = build(name, out_strides=stride)
    chs = body.channels[0]
    adapters = nn.ModuleDict(
        {
            "skip": nn.Sequential(nn.Conv2d(chs, SKIP_CHANNELS, 1), nn.ReLU(inplace=True)),
            "deep": nn.Sequential(nn.Conv2d(chs, DEEP_CHANNELS, 1), nn.ReLU(inplace=True)),
        }
    )
    return body, stride, adapters
