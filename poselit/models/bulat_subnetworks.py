"""The two subnetworks of Bulat & Tzimiropoulos (ECCV 2016), Sec. 3, and their initialisers.

Part-detection subnetworks map the image to one heatmap per joint at the input resolution:
:class:`ResidualDetector` (a ResNet trunk with a stride-1 last stage, Table 3) and
:class:`FCN8sDetector` (VGG-16 FCN-8s, Table 1). Regression subnetworks take those heatmaps
stacked with the image and regress one confidence map per joint: :class:`HourglassRegressor`
(one hourglass with deconvolution upsampling, Table 4) and :class:`VGGRegressor` (seven
large-kernel convolutions, Table 2). Deconvolutions start as upsampling
(:func:`init_upsampling_`), since the paper's zero initialisation would leave every
gradient at zero. The method that trains them in stages,
:class:`~poselit.models.bulat.BulatCascade`, documents the readings of the paper these
layouts follow.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from poselit.models.backbones import Backbone

__all__ = [
    "FCN8sDetector",
    "Hourglass",
    "HourglassRegressor",
    "PreActBottleneck",
    "ResidualDetector",
    "VGGRegressor",
    "bilinear_kernel",
    "init_upsampling_",
]


# --------------------------------------------------------------------------- initialisers


def bilinear_kernel(size: int) -> Tensor:
    """The ``size x size`` bilinear upsampling filter of FCN (Long et al.), as a tensor."""
    factor = (size + 1) // 2
    centre = factor - 1 if size % 2 == 1 else factor - 0.5
    taps = 1 - (torch.arange(size, dtype=torch.float32) - centre).abs() / factor
    return taps[:, None] * taps[None, :]


@torch.no_grad()
def init_upsampling_(deconv: nn.ConvTranspose2d) -> None:
    """Initialise a channel-preserving deconvolution as a per-channel upsampling.

    ``kernel = 2 * stride`` (padding ``stride / 2``): FCN's bilinear filter, i.e. exactly
    ``F.interpolate(..., mode="bilinear", align_corners=False)`` away from the border (the
    pixel-centre geometry of :mod:`poselit.codecs`). ``kernel = stride``: every output
    pixel sees one input pixel, so the filter that preserves the signal is all ones (nearest
    neighbour); FCN's bilinear formula would instead scale each block by a tent (by 1/4 for
    ``2x2/2``). Biases start at zero.
    """
    channels = deconv.in_channels
    if deconv.out_channels != channels or deconv.groups != 1:
        raise ValueError("init_upsampling_ needs a deconvolution with as many outputs as inputs")
    (k_h, k_w), (s_h, s_w) = deconv.kernel_size, deconv.stride
    if k_h != k_w or s_h != s_w:
        raise ValueError(f"init_upsampling_ needs square kernels and strides, got {deconv}")
    if k_h == s_h:
        kernel = torch.ones(k_h, k_h)
    elif k_h == 2 * s_h:
        kernel = bilinear_kernel(k_h)
    else:
        raise ValueError(f"init_upsampling_ supports kernel = stride or 2 * stride, got {deconv}")
    deconv.weight.zero_()
    index = torch.arange(channels, device=deconv.weight.device)
    deconv.weight[index, index] = kernel.to(deconv.weight)
    if deconv.bias is not None:
        deconv.bias.zero_()


# --------------------------------------------------------------------------- detectors


class ResidualDetector(nn.Module):
    """Residual part-detection subnetwork (Sec. 3, "Residual part heatmap regression", Table 3).

    B1-B5: a timm trunk (ResNet-152 in the paper) whose last stage runs at stride 1, so the
    features come at stride 16; B6: a 1x1 scoring convolution to ``K`` part maps; B7: a
    deconvolution with kernel = stride = the trunk's stride (16), straight back to the input
    resolution, as in the authors' released model (the paper's text says 4x4/4, which would
    stop at a quarter of the input; see :class:`BulatCascade`).
    """

    def __init__(self, backbone: Backbone, num_joints: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.stride = backbone.strides[-1]
        self.score = nn.Conv2d(backbone.channels[-1], num_joints, 1)
        self.upsample = nn.ConvTranspose2d(num_joints, num_joints, self.stride, stride=self.stride)
        # "All added layers were initialized with 0": the scoring layer is; the deconvolution
        # cannot be (with both at zero no gradient reaches either weight), so it starts as
        # nearest-neighbour upsampling.
        nn.init.zeros_(self.score.weight)
        nn.init.zeros_(self.score.bias)
        init_upsampling_(self.upsample)

    def forward(self, images: Tensor) -> Tensor:
        return self.upsample(self.score(self.backbone(images)[-1]))


class FCN8sDetector(nn.Module):
    """VGG-FCN part-detection subnetwork (Sec. 3, "VGG-FCN part heatmap regression", Table 1):
    the FCN-8s head of Long et al. on taps at strides 8, 16 and 32 (pool3, pool4, pool5 of
    ``poselit_vgg16_fcn``; any trunk with those strides works).

    fc6 and fc7 are 1x1 convolutions (``width`` channels, ReLU) on pool5; scoring 1x1
    convolutions on fc7, pool4 and pool3; two learned 2x deconvolutions (4x4/2, bilinear
    start, no bias) with the skip scores added after each; a fixed bilinear 8x upsampling to
    the input resolution (FCN's ``upscore8`` is a frozen bilinear deconvolution; this is the
    same interpolation, exact at the border too).
    """

    def __init__(self, backbone: Backbone, num_joints: int, width: int = 512) -> None:
        super().__init__()
        if tuple(backbone.strides) != (8, 16, 32):
            raise ValueError(f"the FCN-8s head needs taps at strides (8, 16, 32), got {backbone.strides}")
        pool3, pool4, pool5 = backbone.channels
        self.backbone = backbone
        self.fc6 = nn.Conv2d(pool5, width, 1)
        self.fc7 = nn.Conv2d(width, width, 1)
        self.score_fr = nn.Conv2d(width, num_joints, 1)
        self.score_pool4 = nn.Conv2d(pool4, num_joints, 1)
        self.score_pool3 = nn.Conv2d(pool3, num_joints, 1)
        self.upscore2 = nn.ConvTranspose2d(num_joints, num_joints, 4, stride=2, padding=1, bias=False)
        self.upscore_pool4 = nn.ConvTranspose2d(num_joints, num_joints, 4, stride=2, padding=1, bias=False)
        for conv in (self.fc6, self.fc7):
            nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(conv.bias)
        for score in (self.score_fr, self.score_pool4, self.score_pool3):  # FCN: zero-initialised
            nn.init.zeros_(score.weight)
            nn.init.zeros_(score.bias)
        init_upsampling_(self.upscore2)
        init_upsampling_(self.upscore_pool4)

    def forward(self, images: Tensor) -> Tensor:
        pool3, pool4, pool5 = self.backbone(images)
        fc7 = F.relu(self.fc7(F.relu(self.fc6(pool5))))
        score = self.upscore2(self.score_fr(fc7)) + self.score_pool4(pool4)
        score = self.upscore_pool4(score) + self.score_pool3(pool3)
        return F.interpolate(score, size=images.shape[-2:], mode="bilinear", align_corners=False)


# --------------------------------------------------------------------------- regressors


class PreActBottleneck(nn.Module):
    """Pre-activation bottleneck of the hourglass code (Newell et al.), as in the authors'
    Torch model: BN-ReLU-conv1x1 (out/2), BN-ReLU-conv3x3 (out/2), BN-ReLU-conv1x1 (out);
    convolutions with bias; the shortcut is the identity or a 1x1 convolution."""

    def __init__(self, in_chs: int, out_chs: int) -> None:
        super().__init__()
        mid = out_chs // 2
        self.body = nn.Sequential(
            nn.BatchNorm2d(in_chs),
            nn.ReLU(inplace=True),
            nn.Conv2d(in_chs, mid, 1),
            nn.BatchNorm2d(mid),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid, mid, 3, padding=1),
            nn.BatchNorm2d(mid),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid, out_chs, 1),
        )
        self.shortcut = nn.Identity() if in_chs == out_chs else nn.Conv2d(in_chs, out_chs, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.shortcut(x) + self.body(x)  # the body starts with BN: x is never changed in place


class Hourglass(nn.Module):
    """One hourglass level (Table 4, as in the authors' released MPII model): ``width``
    channels in, ``out_chs`` out, same resolution.

    ``up``: three bottlenecks (the last widening to ``out_chs``); ``low``: 2x2 max-pool,
    three bottlenecks, the next level (or, at the bottom, a widening bottleneck), one more
    bottleneck and a 2x2/2 deconvolution (the paper's change to the hourglass, "as opposed
    to nearest neighbour upsampling"); the two branches are added.
    """

    def __init__(self, depth: int, width: int = 256, out_chs: int = 512) -> None:
        super().__init__()
        inner: nn.Module = (
            Hourglass(depth - 1, width, out_chs) if depth > 1 else PreActBottleneck(width, out_chs)
        )
        self.up = nn.Sequential(
            PreActBottleneck(width, width), PreActBottleneck(width, width), PreActBottleneck(width, out_chs)
        )
        self.low = nn.Sequential(
            nn.MaxPool2d(2, 2),
            PreActBottleneck(width, width),
            PreActBottleneck(width, width),
            PreActBottleneck(width, width),
            inner,
            PreActBottleneck(out_chs, out_chs),
            nn.ConvTranspose2d(out_chs, out_chs, 2, stride=2),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.up(x) + self.low(x)


class HourglassRegressor(nn.Module):
    """Residual regression subnetwork (Table 4): a single hourglass with deconvolution
    upsampling, layer for layer the authors' released MPII model.

    D1: conv 7x7/2 (64) + BN + ReLU; bottleneck to 128, 2x2 max-pool, two bottlenecks (128)
    and one to 256 (stride 4); a depth-4 hourglass (256 -> 512 channels); 1x1 conv (512) +
    BN + ReLU, 1x1 conv (256) + BN + ReLU, a 1x1 scoring conv (``K``) and a 4x4/4
    deconvolution back to the input resolution. Inputs must be multiples of
    ``4 * 2**depth`` pixels (64 for depth 4).

    ``width`` (the paper's 256) scales every layer in proportion (stem ``width / 4`` and
    ``width / 2``, hourglass ``width`` -> ``2 * width``, head ``2 * width`` -> ``width``),
    and ``depth`` sets the hourglass' levels: smaller regressors for a CPU.
    """

    def __init__(self, in_chs: int, num_joints: int, depth: int = 4, width: int = 256) -> None:
        super().__init__()
        if depth < 1 or width < 8 or width % 4:
            raise ValueError(f"the hourglass needs depth >= 1 and a width divisible by 4 (>= 8), got {depth}, {width}")
        self.multiple = 4 * 2**depth
        quarter, half = width // 4, width // 2
        self.stem = nn.Sequential(
            nn.Conv2d(in_chs, quarter, 7, stride=2, padding=3),
            nn.BatchNorm2d(quarter),
            nn.ReLU(inplace=True),
            PreActBottleneck(quarter, half),
            nn.MaxPool2d(2, 2),
            PreActBottleneck(half, half),
            PreActBottleneck(half, half),
            PreActBottleneck(half, width),
        )
        self.hourglass = Hourglass(depth, width, 2 * width)
        self.head = nn.Sequential(
            nn.Conv2d(2 * width, 2 * width, 1),
            nn.BatchNorm2d(2 * width),
            nn.ReLU(inplace=True),
            nn.Conv2d(2 * width, width, 1),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
        )
        self.score = nn.Conv2d(width, num_joints, 1)
        self.upsample = nn.ConvTranspose2d(num_joints, num_joints, 4, stride=4)
        # The paper zero-initialises the subnetwork except its deconvolutions (bilinear). All
        # zeros would leave every hidden gradient at zero, so only the scoring layer starts
        # at zero (the output starts at 0, the L2 loss' natural start); convolutions keep
        # PyTorch's default init; deconvolutions start as upsampling (init_upsampling_).
        nn.init.zeros_(self.score.weight)
        nn.init.zeros_(self.score.bias)
        for module in self.modules():
            if isinstance(module, nn.ConvTranspose2d):
                init_upsampling_(module)

    def forward(self, x: Tensor) -> Tensor:
        return self.upsample(self.score(self.head(self.hourglass(self.stem(x)))))


class VGGRegressor(nn.Module):
    """VGG-based regression subnetwork (Table 2): seven convolutions, the first four with
    large kernels (7x7 -> 64, 13x13 -> 64, 13x13 -> 128, 15x15 -> 256) and three 1x1 (512,
    512, ``K``), ReLU after all but the last; then C8, a 4x4/4 deconvolution to the input
    resolution.

    It runs at stride 4, like the spatial-fusion layers of Pfister et al. that its kernels
    extend: the stacked input is average-pooled 4x4 first (parameter-free). All layers start
    from N(0, 0.01) with zero biases, as the paper says; C8 starts as nearest upsampling.
    Inputs must be multiples of 4 pixels.
    """

    LAYERS = ((64, 7), (64, 13), (128, 13), (256, 15), (512, 1), (512, 1))
    STRIDE = 4

    def __init__(self, in_chs: int, num_joints: int) -> None:
        super().__init__()
        self.multiple = self.STRIDE
        self.pool = nn.AvgPool2d(self.STRIDE, self.STRIDE)
        layers: list[nn.Module] = []
        for out_chs, kernel in self.LAYERS:
            layers += [nn.Conv2d(in_chs, out_chs, kernel, padding=kernel // 2), nn.ReLU(inplace=True)]
            in_chs = out_chs
        layers.append(nn.Conv2d(in_chs, num_joints, 1))
        self.convs = nn.Sequential(*layers)
        self.upsample = nn.ConvTranspose2d(num_joints, num_joints, self.STRIDE, stride=self.STRIDE)
        for conv in self.convs:
            if isinstance(conv, nn.Conv2d):
                nn.init.normal_(conv.weight, std=0.01)
                nn.init.zeros_(conv.bias)
        init_upsampling_(self.upsample)

    def forward(self, x: Tensor) -> Tensor:
        return self.upsample(self.convs(self.pool(x)))
