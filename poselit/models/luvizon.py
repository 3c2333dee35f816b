"""Luvizon, Tabia & Picard, "Human Pose Regression by Combining Indirect Part Detection and
Contextual Information" (2017): a stem, K prediction blocks and a parameter-free soft-argmax
regression with context aggregation, trained end to end on joint coordinates.

See :class:`LuvizonSoftArgmax`. The pieces without parameters (soft-argmax regression with
context aggregation, losses) are in :mod:`poselit.models.luvizon_regression`, re-exported
here; the coordinate frame of its targets and predictions is its
:class:`~poselit.codecs.SoftArgmaxCodec`.
"""

from __future__ import annotations

import inspect
from functools import partial
from typing import Any

import torch
import torch.nn.functional as F
from pytorch_lightning.cli import OptimizerCallable
from torch import Tensor, nn

from poselit.codecs import SoftArgmaxCodec
from poselit.lazy import lazy_names
from poselit.models import luvizon_regression
from poselit.models.base import BackbonePoseModule, Batch
from poselit.models.layers import BatchNormNoScale, ConvNormAct, SeparableConv2d, SeparableResidual
from poselit.models.luvizon_regression import *  # noqa: F403 (re-exported: see __all__)

__all__ = [
    "BlockA",
    "LuvizonSoftArgmax",
    "PredictionBlock",
    *luvizon_regression.__all__,
]

DEFAULT_BACKBONE = "poselit_luvizon_stem"

# Keras' BatchNormalization(scale=False) defaults, as in the authors' code and the stem.
KerasBatchNorm = partial(BatchNormNoScale, eps=1e-3, momentum=0.01)


# --------------------------------------------------------------------------- network


def _upsample_to(x: Tensor, like: Tensor) -> Tensor:
    """Nearest 2x upsampling cropped to ``like``'s size: the inverse of a ceil-mode 2x2 pool."""
    up = F.interpolate(x, scale_factor=2.0, mode="nearest")
    return up[..., : like.shape[-2], : like.shape[-1]]


class BlockA(nn.Module):
    """Block-A (Sec. 3.1, Fig. 2/3b; ``build_reception_block`` of the authors' code): a
    separable residual unit at full width in parallel with a two-level hourglass at half width.

    ::

        a    = Res(C -> C)(x)
        low1 = Res(C/2)(ReLU-1x1-BN(C -> C/2)(maxpool(x)))
        b    = Res(C/2)(low1)
        c    = upsample(Res(C/2) x 3 (maxpool(low1)))
        out  = a + upsample(Res(C/2 -> C)(b + c))

    ``Res`` is :class:`~poselit.models.layers.SeparableResidual` with ``kernel_size``. Three
    resolutions (32x32, 16x16, 8x8 at 256 input), as the paper says.
    """

    def __init__(self, width: int, kernel_size: int) -> None:
        super().__init__()
        half = width // 2
        res = partial(SeparableResidual, kernel_size=kernel_size, norm_layer=KerasBatchNorm)
        self.pool = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.skip = res(width, width)
        self.reduce = ConvNormAct(width, half, 1, norm_layer=KerasBatchNorm, preact=True)
        self.low1 = res(half, half)
        self.low1_skip = res(half, half)
        self.low2 = nn.Sequential(res(half, half), res(half, half), res(half, half))
        self.expand = res(half, width)

    def forward(self, x: Tensor) -> Tensor:
        a = self.skip(x)
        low1 = self.low1(self.reduce(self.pool(x)))
        b = self.low1_skip(low1)
        c = self.low2(self.pool(low1))
        b = self.expand(b + _upsample_to(c, b))
        return a + _upsample_to(b, a)


class PredictionBlock(nn.Module):
    """One prediction block: :class:`BlockA` then Block-B (Sec. 3.1, Fig. 4).

    Block-B as in the authors' code (``SepConv``, ``RegMap``, ``fReMap``)::

        s    = ReLU - separable k x k conv (C -> C) - BN        (a: Block-A's output)
        maps = ReLU - 1x1 conv (C -> (1 + Nc) * Nj)              (raw maps, no BN)
        next = a + s + ReLU-1x1-BN(maps -> C)                   (not in the last block)
    """

    def __init__(self, width: int, num_maps: int, kernel_size: int, last: bool) -> None:
        super().__init__()
        self.block_a = BlockA(width, kernel_size)
        self.sepconv = ConvNormAct(
            width, width, kernel_size, conv_layer=SeparableConv2d, norm_layer=KerasBatchNorm, preact=True
        )
        self.regmap = ConvNormAct(width, num_maps, 1, norm_layer=None, preact=True)
        self.remap = None if last else ConvNormAct(num_maps, width, 1, norm_layer=KerasBatchNorm, preact=True)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor | None]:
        """Maps ``(B, M, H, W)`` and the next block's input (``None`` after the last block)."""
        a = self.block_a(x)
        s = self.sepconv(a)
        maps = self.regmap(s)
        following = None if self.remap is None else a + s + self.remap(maps)
        return maps, following


def _glorot_init(module: nn.Module) -> None:
    """Glorot-uniform convolution weights (Keras' default) and zero biases."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


class LuvizonSoftArgmax(BackbonePoseModule):
    """Soft-argmax pose regression of Luvizon, Tabia & Picard (2017), Sec. 3.

    Notation as in the paper: ``K`` prediction blocks (``num_blocks``), ``Nj`` joints (the
    skeleton's), ``Nc`` context maps per joint (``num_context``).

    An Inception-style stem (``poselit_luvizon_stem``: 256x256 -> 32x32x576), then ``K``
    prediction blocks. Each block refines the features (:class:`BlockA`: separable residual
    units and a small 2-level hourglass at half width) and projects them
    (:class:`PredictionBlock`'s Block-B) onto ``(1 + Nc) * Nj`` maps: one part map and
    ``Nc`` context maps per joint. A regression stage without parameters
    (:func:`regress_joints`) turns them into joint coordinates with a spatial soft-argmax
    (Eqs. 1-4, normalised grid ``linspace(0, 1, 32)`` as in the authors' code), a joint
    probability per joint (sigmoid of the part map's global maximum, Sec. 3.2.2) and the
    context aggregation of Eq. 6 with ``alpha``. The maps are projected back and added to the
    stream of the next block; every block is supervised.

    Outputs (the base's contract): ``stages``, one :class:`StageOutput` per block (normalised
    ``coords`` ``(B, Nj, 2)``, ``presence`` logits ``(B, Nj)``); ``keypoints`` ``(B, Nj, 2)``
    in input pixels and ``scores`` ``(B, Nj)`` (joint probabilities) of the last block;
    ``map_size``, the maps' ``(height, width)``. No ``heatmaps``: the flip test averages
    coordinates.

    Coordinates: :attr:`codec`, a :class:`~poselit.codecs.SoftArgmaxCodec` of ``stride``.
    A normalised value ``u`` is a soft-argmax on the map's ``linspace(0, 1, W)`` grid, i.e.
    map column ``u * (W - 1)``, which the codec's ``decode`` takes to input pixels with the
    package's stride convention (:func:`poselit.codecs.normalized_to_input`); its ``encode``
    takes the targets the other way, and its ``encode_heatmaps`` draws the optional
    regulariser's Gaussians. The flip test averages coordinates.

    Loss (Sec. 4.1), summed over the blocks with weight 1 each:

    * elastic net (Eq. 7, L1 + squared L2 on normalised coordinates) averaged over the valid
      joints of the batch: **annotated (visibility 1 or 2, occluded joints included) and
      inside the input crop** (:func:`presence_targets`);
    * ``presence_weight`` x binary cross-entropy (Eq. 8) of the part-map presence logits,
      averaged over the annotated joints; target 1 when the joint is inside the crop, 0 when
      it was annotated outside it (e.g. moved out by augmentation or truncated);
    * only if ``heatmap_regularization`` > 0 (not in the paper; default 0):
      that weight x :func:`heatmap_divergence` of the part maps from Gaussians of
      ``regularization_sigma`` map pixels at the valid joints.

    The 2017 repository has no training code; these rules are those of the authors' later
    ``deephar`` code for the same model: presence = inside the crop (``get_visible_joints``,
    occlusion flags unused), and joints outside the crop are dropped from the coordinate
    loss (``remove_outer_joints``; soft-argmax cannot reach them anyway).

    Input normalisation: a ``mean`` / ``std`` not given is what the backbone's
    ``pretrained_cfg`` names (:func:`~poselit.input_spec.resolve_input_spec`): the paper's
    ``(x / 255 - 0.5) * 2`` with the paper's stem, whose config states it, and e.g.
    ImageNet's for a timm model with ImageNet weights, so a recipe on such a backbone states
    neither.

    Parameters (K = 8, Nc = 2, kernel 5, width 576; independent of the input size):
    14,669,952 for Nj = 16 (MPII, the paper's setting) and 14,618,112 for Nj = 14 (LSP). The
    stem has 1,035,456; each block has 1,305,216 in Block-A, 346,752 in Block-B's separable
    convolution and ``576 (1 + Nc) Nj`` in the map projection, plus ``576 (1 + Nc) Nj + 576``
    in the back-projection of every block but the last. The paper gives no count (only that
    the model "fits in much smaller GPUs" than the stacked hourglass).

    Deliberate deviations, each with its reason:

    * Normalised coordinates follow the map grid (0 and 1 = centres of the first and last
      map pixels) rather than the paper's image corners (0 = top-left corner, 1 = bottom-right):
      the authors' soft-argmax grid is ``linspace(0, 1, W)``, so with corner-normalised
      targets a map peak would sit up to half a map pixel (4 input px) away from the input
      position it covers; here it sits exactly on it.
    * The coordinate loss is averaged over the valid joints of the batch (the paper divides by
      Nj per sample, the 2017 code sums); the presence loss covers annotated joints only, so
      joints with visibility 0 are ignored by every loss, the package convention (``deephar``
      gives unannotated joints presence 0, but COCO leaves joints inside the image
      unannotated). ``presence_weight`` defaults to 1 (the paper gives none; the authors'
      later ``deephar`` code uses 0.01).
    * Block-A's max-pools round up and its upsampling crops to the skip's size, so any input
      size works; identical to the original for map sides divisible by 4 (256 -> 32).
    * Padding is symmetric everywhere (Keras "same" pads stride-2 layers bottom/right only;
      see :class:`poselit.models.trunks.LuvizonStem`).
    * The paper's "lr x0.4 when the validation accuracy plateaus" is not a default: it is
      the recipe's ``lr_scheduler``, ``ReduceLROnPlateau(mode="max", factor=0.4)`` (the base
      monitors ``val/pck``; the paper gives no patience).

    Args:
        num_blocks: Prediction blocks ``K`` (paper: 8), each supervised. Because every
            block's output is a pose, a trained model can be cut after its first ``k``
            blocks: ``num_blocks=k`` with ``init_from`` the trained weights (the matching
            tensors load, the rest is left out) and a short fine-tune; this is how the zoo's
            ``luvizon-mobilenetv2-movenet-2blocks-lsp`` and ``-1block-lsp`` were made
            (docs/performance.md).
        kernel_size: Kernel of every separable convolution in the blocks (paper: 5).
        num_context: Context maps per joint ``Nc`` (paper: 2; 0 regresses the part maps only).
        alpha: Eq. 6's weight of the part-map position (paper: 0.8).
        width: Channels of the block stream (paper: 576; the hourglass runs at half of it).
        backbone: Stem: ``"poselit_luvizon_stem"`` (the paper's) or any timm model name. A
            1x1 conv + BN adapter maps the backbone's feature at ``stride`` (fused with the
            deeper ones by a neck, with ``neck_channels``) to ``width`` channels when they
            differ (the paper's stem at stride 8 needs none).
        stride: Input pixels per map pixel: which backbone feature feeds the blocks (8 gives
            32x32 maps at 256 input). ``input_size`` must be a multiple of it, at least
            ``2 * stride`` (paper: 256x256).
        presence_weight: Weight of the presence cross-entropy against the coordinate loss.
        heatmap_regularization: Weight of the part maps' divergence from Gaussians at the
            joints (DSNT's regulariser; 0, the paper's setting, turns it off). Soft-argmax
            regression alone learns slowly from ImageNet weights on LSP (the paper trains
            120 epochs on MPII first); this gives every map pixel a target.
        regularization_sigma: Standard deviation of those Gaussians, map pixels.
        optimizer: Optimiser factory; default ``RMSprop(lr=1e-3, alpha=0.9)``: the paper's
            RMSprop and learning rate with Keras' decay ``rho=0.9`` (torch's default is 0.99).
            In a recipe: ``class_path: torch.optim.RMSprop``, ``init_args: {lr: 0.001,
            alpha: 0.9}``; LightningCLI shows the default so (``--print_config``).
        **kwargs: The backbone's weights and neck (:class:`~poselit.models.base.BackbonePoseModule`)
            and the shared arguments (:class:`~poselit.models.base.PoseLitModule`: skeleton,
            input size, padding, fill, ``mean`` and ``std`` (see above), flip test,
            scheduler, ``init_from``).
    """

    def __init__(
        self,
        *,
        num_blocks: int = 8,
        kernel_size: int = 5,
        num_context: int = 2,
        alpha: float = 0.8,
        width: int = 576,
        backbone: str = DEFAULT_BACKBONE,
        stride: int = 8,
        presence_weight: float = 1.0,
        heatmap_regularization: float = 0.0,
        regularization_sigma: float = 1.0,
        optimizer: OptimizerCallable = lambda params: torch.optim.RMSprop(params, lr=1e-3, alpha=0.9),
        **kwargs: Any,
    ) -> None:
        if optimizer is _DEFAULT_OPTIMIZER_LAMBDA:
            # The same factory, picklable (ddp_spawn pickles the model); the lambda stays the
            # signature's default because LightningCLI reads it as class_path + init_args.
            optimizer = partial(torch.optim.RMSprop, lr=1e-3, alpha=0.9)
        super().__init__(optimizer=optimizer, **kwargs)
        _check_args(num_blocks, kernel_size, num_context, alpha, width, stride, self.input_size)
        self.num_blocks = num_blocks
        self.num_context = num_context
        self.alpha = float(alpha)
        self.presence_weight = float(presence_weight)
        self.heatmap_regularization = float(heatmap_regularization)
        if self.heatmap_regularization < 0 or not regularization_sigma > 0:
            raise ValueError(
                f"heatmap_regularization must be >= 0 and regularization_sigma > 0, "
                f"got {heatmap_regularization} and {regularization_sigma}"
            )
        self.codec = SoftArgmaxCodec(stride=stride, heatmap_std=float(regularization_sigma))

        self.backbone = self.build_backbone(backbone, out_strides=stride)
        channels = self.backbone.channels[0]
        self.adapter = (
            nn.Identity()
            if channels == width
            else ConvNormAct(channels, width, 1, norm_layer=KerasBatchNorm, act_layer=None)
        )
        num_maps = (1 + num_context) * self.num_joints
        self.blocks = nn.ModuleList(
            PredictionBlock(width, num_maps, kernel_size, last=i == num_blocks - 1) for i in range(num_blocks)
        )
        _glorot_init(self.adapter)
        _glorot_init(self.blocks)

    def forward(self, images: Tensor) -> dict[str, Any]:
        x = self.adapter(self.backbone(images)[0])
        map_size = (x.shape[-2], x.shape[-1])
        stages = []
        for block in self.blocks:
            maps, x = block(x)
            stages.append(StageOutput(*regress_joints(maps, self.num_joints, self.alpha), maps[:, : self.num_joints]))
        last = stages[-1]
        return {
            "stages": stages,
            "keypoints": self.codec.decode(last.coords, map_size),
            "scores": torch.sigmoid(last.presence),
            "map_size": map_size,
        }

    def loss(self, outputs: dict[str, Any], batch: Batch) -> dict[str, Tensor]:
        """Elastic net on valid joints + ``presence_weight`` x presence cross-entropy (+ the
        optional ``heatmap_regularization`` x :func:`heatmap_divergence`), per block."""
        keypoints, visibility = batch["keypoints"], batch["visibility"]
        input_size = tuple(batch["image"].shape[-2:])
        annotated = visibility > 0
        present = presence_targets(keypoints, visibility, input_size)
        target = self.codec.encode(keypoints, outputs["map_size"])
        coords = presence = keypoints.new_zeros((), dtype=torch.float32)
        for stage in outputs["stages"]:
            coords = coords + elastic_net(stage.coords, target, present)
            bce = F.binary_cross_entropy_with_logits(stage.presence, present.float(), reduction="none")
            presence = presence + torch.where(annotated, bce, 0.0).sum() / annotated.sum().clamp_min(1)
        losses = {"loss": coords + self.presence_weight * presence, "coords": coords, "presence": presence}
        if self.heatmap_regularization > 0:
            gaussians = self.codec.encode_heatmaps(keypoints, present, outputs["map_size"])
            losses["divergence"] = sum(heatmap_divergence(s.part_maps, gaussians, present) for s in outputs["stages"])
            losses["loss"] = losses["loss"] + self.heatmap_regularization * losses["divergence"]
        return losses


_DEFAULT_OPTIMIZER_LAMBDA = inspect.signature(LuvizonSoftArgmax.__init__).parameters["optimizer"].default


def _check_args(
    num_blocks: int,
    kernel_size: int,
    num_context: int,
    alpha: float,
    width: int,
    stride: int,
    input_size: tuple[int, int],
) -> None:
    if num_blocks < 1:
        raise ValueError(f"num_blocks must be >= 1, got {num_blocks}")
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be a positive odd number, got {kernel_size}")
    if num_context < 0:
        raise ValueError(f"num_context must be >= 0, got {num_context}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    if width < 2 or width % 2:
        raise ValueError(f"width must be an even number >= 2 (the hourglass runs at width / 2), got {width}")
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    if any(side % stride or side < 2 * stride for side in input_size):
        raise ValueError(
            f"input_size {input_size} must be multiples of stride {stride} and at least "
            f"{2 * stride} (maps of at least 2x2 for the normalised soft-argmax grid)"
        )


# Moved to the codecs, importable from here for one release (with a DeprecationWarning).
__getattr__, __dir__ = lazy_names(__name__, moved=luvizon_regression.MOVED)
