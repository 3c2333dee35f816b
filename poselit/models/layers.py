"""Small building blocks shared by the poselit trunks and models.

Kept generic on purpose: each block is parameterised by its layer factories (``conv_layer``,
``norm_layer``, ``act_layer``, in timm's style) rather than by which paper uses it, so a model
file states its paper's choices in one place when it builds them.
"""

from __future__ import annotations

from typing import Callable

import torch
from timm.layers import create_act_layer
from torch import Tensor, nn

__all__ = [
    "BatchNormNoScale",
    "ConcatBranches",
    "ConvNormAct",
    "SeparableConv2d",
    "SeparableResidual",
    "same_padding",
]

LayerFactory = Callable[..., nn.Module]
KernelSize = int | tuple[int, int]


def same_padding(kernel_size: KernelSize) -> int | tuple[int, int]:
    """Symmetric padding ``k // 2`` per axis: ``ceil(input / stride)`` outputs for odd kernels."""
    if isinstance(kernel_size, int):
        return kernel_size // 2
    return kernel_size[0] // 2, kernel_size[1] // 2


class BatchNormNoScale(nn.Module):
    """Batch normalisation with a learned shift (beta) and no learned scale (gamma = 1).

    Keras' ``BatchNormalization(scale=False)``, used throughout Luvizon et al.'s code. Built as
    an affine-free :class:`~torch.nn.BatchNorm2d` plus a bias parameter, rather than a frozen
    ``weight``, so that nothing can make the scale trainable again (``requires_grad_(True)``)
    and so that ``SyncBatchNorm.convert_sync_batchnorm`` and timm's batch-norm freezing
    convert the inner normalisation without dropping the shift.
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(num_features, eps=eps, momentum=momentum, affine=False)
        self.bias = nn.Parameter(torch.zeros(num_features))

    def forward(self, x: Tensor) -> Tensor:
        return self.bn(x) + self.bias.to(x.dtype)[:, None, None]


class SeparableConv2d(nn.Sequential):
    """Depthwise ``k x k`` convolution then pointwise ``1 x 1`` (Keras ``SeparableConv2D``,
    depth multiplier 1), with no normalisation or activation in between.

    Takes the same arguments as :class:`~torch.nn.Conv2d` (so it can be a ``conv_layer``);
    ``bias`` applies to the pointwise convolution, as in Keras.
    """

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        kernel_size: KernelSize,
        stride: int = 1,
        padding: int | tuple[int, int] = 0,
        bias: bool = True,
    ) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(
            in_chs, in_chs, kernel_size, stride=stride, padding=padding, groups=in_chs, bias=False
        )
        self.pointwise = nn.Conv2d(in_chs, out_chs, 1, bias=bias)


class ConvNormAct(nn.Sequential):
    """Convolution -> normalisation -> activation, or activation first with ``preact=True``.

    Padding is :func:`same_padding`. ``norm_layer=None`` or ``act_layer=None`` leaves that
    step out. A post-activation runs in place; a pre-activation does not, because its input is
    usually shared with another branch or a shortcut.

    Args:
        in_chs: Input channels.
        out_chs: Output channels.
        kernel_size: Square size or ``(height, width)``.
        stride: Convolution stride.
        bias: Whether the convolution has a bias.
        conv_layer: Convolution factory with :class:`~torch.nn.Conv2d`'s arguments.
        norm_layer: Normalisation factory called with the channel count.
        act_layer: Activation factory (resolved by timm's ``create_act_layer``).
        preact: Put the activation before the convolution.
    """

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        kernel_size: KernelSize,
        stride: int = 1,
        *,
        bias: bool = False,
        conv_layer: LayerFactory = nn.Conv2d,
        norm_layer: LayerFactory | None = nn.BatchNorm2d,
        act_layer: LayerFactory | None = nn.ReLU,
        preact: bool = False,
    ) -> None:
        super().__init__()
        act = create_act_layer(act_layer, inplace=not preact) if act_layer is not None else None
        if preact and act is not None:
            self.act = act
        self.conv = conv_layer(
            in_chs,
            out_chs,
            kernel_size,
            stride=stride,
            padding=same_padding(kernel_size),
            bias=bias,
        )
        if norm_layer is not None:
            self.norm = norm_layer(out_chs)
        if not preact and act is not None:
            self.act = act


class SeparableResidual(nn.Module):
    """Residual separable-convolution unit ("Res-SepConv") of Luvizon et al. (Sec. 3.1, Fig. 3b).

    As ``sepconv_residual`` in the authors' code: the shortcut is the identity when the channel
    counts match and a ReLU -> 1x1 conv -> norm projection otherwise; the main path is
    ReLU -> separable ``k x k`` conv -> norm, preceded by a ReLU -> 1x1 conv -> norm reduction
    when the unit narrows the channels. The two paths are added with no activation after.

    Args:
        in_chs: Input channels.
        out_chs: Output channels.
        kernel_size: Separable convolution kernel.
        norm_layer: Normalisation factory (the original uses :class:`BatchNormNoScale`).
        act_layer: Activation factory.
    """

    def __init__(
        self,
        in_chs: int,
        out_chs: int,
        kernel_size: KernelSize = 3,
        *,
        norm_layer: LayerFactory = nn.BatchNorm2d,
        act_layer: LayerFactory = nn.ReLU,
    ) -> None:
        super().__init__()
        layers = dict(norm_layer=norm_layer, act_layer=act_layer, preact=True)
        self.shortcut = (
            nn.Identity() if in_chs == out_chs else ConvNormAct(in_chs, out_chs, 1, **layers)
        )
        self.reduce = (
            ConvNormAct(in_chs, out_chs, 1, **layers) if out_chs < in_chs else nn.Identity()
        )
        self.conv = ConvNormAct(
            min(in_chs, out_chs), out_chs, kernel_size, conv_layer=SeparableConv2d, **layers
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.shortcut(x) + self.conv(self.reduce(x))


class ConcatBranches(nn.Module):
    """Run parallel branches on one input and concatenate their outputs along channels
    (an Inception "mixed" block)."""

    def __init__(self, *branches: nn.Module) -> None:
        super().__init__()
        self.branches = nn.ModuleList(branches)

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([branch(x) for branch in self.branches], dim=1)
