"""The papers' own trunks, registered into timm's registry as ``poselit_*`` models.

Once this module is imported (:mod:`poselit.models.backbones` imports it, so
:func:`~poselit.models.backbones.create_backbone` builds them by name), ``timm.create_model``,
``timm.list_models("poselit_*")`` and ``features_only=True`` work on them like on any timm model:

* ``poselit_belagiannis_trunk``: the feed-forward layers conv1..conv8 of Belagiannis & Zisserman;
* ``poselit_luvizon_stem``: the Inception-v4-style stem of Luvizon et al.;
* ``poselit_vgg16_fcn``: VGG-16's convolutional layers, the FCN detector trunk of Bulat &
  Tzimiropoulos; ImageNet weights come from timm's ``vgg16.tv_in1k``;
* ``poselit_tf_mobilenetv2_100``: timm's ``mobilenetv2_100`` with TensorFlow's 'SAME'
  padding (asymmetric at stride 2, as timm's ``tf_*`` models), the network of Keras
  MobileNetV2 and so of MoveNet's backbone, whose weights ``poselit backbone import``
  reads from a TF.js model; input ``x / 127.5 - 1`` as MoveNet's.

Each trunk is a :class:`~torch.nn.Sequential` whose children run in order and which lists its
taps in ``feature_info``: exactly what timm's ``FeatureListNet`` needs to cut a model into a
feature extractor (``build_model_with_cfg(..., feature_cfg=...)``).
"""

from __future__ import annotations

from functools import partial
from typing import Any, Callable, Sequence

from timm.models import build_model_with_cfg, generate_default_cfgs, register_model
from timm.models.efficientnet import _gen_mobilenet_v2
from torch import Tensor, nn

from poselit.models.layers import BatchNormNoScale, ConcatBranches, ConvNormAct, SeparableResidual

__all__ = [
    "BelagiannisTrunk",
    "LuvizonStem",
    "VGG16FCN",
    "poselit_belagiannis_trunk",
    "poselit_luvizon_stem",
    "poselit_tf_mobilenetv2_100",
    "poselit_vgg16_fcn",
]


def _init_convs(module: nn.Module, weight_init: Callable[[Tensor], Any]) -> None:
    """Initialise every convolution's weight with ``weight_init`` and its bias with zeros."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            weight_init(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def _feature_info(taps: Sequence[tuple[str, int, int]]) -> list[dict[str, Any]]:
    """timm ``feature_info`` from ``(module, channels, stride)`` taps."""
    return [dict(module=module, num_chs=chs, reduction=stride) for module, chs, stride in taps]


class BelagiannisTrunk(nn.Sequential):
    """Feed-forward trunk of Belagiannis & Zisserman, "Recurrent Human Pose Estimation"
    (FG 2017), Sec. II-A: layers conv1..conv8 of the original MatConvNet model.

    ===========  ======  ==========  ====================================
    layer        kernel  channels    output
    ===========  ======  ==========  ====================================
    conv1        3x3     in -> 64
    conv2        3x3     64 -> 64    stride 1 tap; then max-pool 2/2
    conv3        3x3     64 -> 64
    conv4        3x3     64 -> 128   stride 2 tap; then max-pool 2/2
    conv5        3x3     128 -> 128
    conv6        3x3     128 -> 128  stride 4: the skip feature
    conv7        9x9     128 -> 256
    conv8        9x9     256 -> 512  stride 4: input of conv9 / the heads
    ===========  ======  ==========  ====================================

    Every convolution has a bias and is followed by batch norm and ReLU; weights start from
    N(0, 0.01) as in the paper's from-scratch training. conv9/conv10 (1x1, no batch norm), the
    heads and the recurrent module belong to the model. A 248x248 input gives 62x62 maps.
    Taps: ``conv2`` (64 ch, stride 1), ``conv4`` (128, 2), ``conv6`` (128, 4), ``conv8`` (512, 4).
    """

    TAPS = (("conv2", 64, 1), ("conv4", 128, 2), ("conv6", 128, 4), ("conv8", 512, 4))

    def __init__(self, in_chans: int = 3) -> None:
        super().__init__()
        conv = partial(ConvNormAct, bias=True)
        self.conv1 = conv(in_chans, 64, 3)
        self.conv2 = conv(64, 64, 3)
        self.pool1 = nn.MaxPool2d(2, 2)
        self.conv3 = conv(64, 64, 3)
        self.conv4 = conv(64, 128, 3)
        self.pool2 = nn.MaxPool2d(2, 2)
        self.conv5 = conv(128, 128, 3)
        self.conv6 = conv(128, 128, 3)
        self.conv7 = conv(128, 256, 9)
        self.conv8 = conv(256, 512, 9)
        self.feature_info = _feature_info(self.TAPS)
        _init_convs(self, partial(nn.init.normal_, std=0.01))


class LuvizonStem(nn.Sequential):
    """Stem of Luvizon, Tabia & Picard, "Human Pose Regression by Combining Indirect Part
    Detection and Contextual Information" (2017), Sec. 3.1 and Fig. 3a, as ``stem()`` in the
    authors' Keras code: 256x256x3 -> 32x32x576.

    ==========  ====================================================================  ======
    block       layers                                                                output
    ==========  ====================================================================  ======
    conv1..3    conv 3x3/2 -> 32, conv 3x3 -> 32, conv 3x3 -> 64                      64, /2
    mixed1      [conv 3x3/2 -> 96 || max-pool 3/2]                                    160, /4
    mixed2      [1x1 -> 64, 3x3 -> 96 || 1x1 -> 64, 5x1 -> 64, 1x5 -> 64, 3x3 -> 96]  192, /4
    mixed3      [ReLU, conv 3x3/2 -> 192 || max-pool 2/2]                             384, /8
    sepconv     separable residual unit, 3x3 (:class:`SeparableResidual`)             576, /8
    ==========  ====================================================================  ======

    Convolutions have no bias and are followed by batch norm without scale
    (:class:`BatchNormNoScale`, Keras' ``eps=1e-3`` and moving-average momentum 0.99) and ReLU,
    except the last convolution of each mixed2 branch (batch norm only). Weights start from
    Glorot-uniform, Keras' default. Deviations, for any input size: padding is symmetric
    (Keras' "same" pads stride-2 layers on the bottom/right only, shifting features by half
    an input pixel) and the 2x2 max-pool rounds up so both mixed3 branches always agree.
    Taps: ``conv3`` (64 ch, stride 2), ``mixed2`` (192, 4), ``sepconv`` (576, 8).
    """

    TAPS = (("conv3", 64, 2), ("mixed2", 192, 4), ("sepconv", 576, 8))

    def __init__(self, in_chans: int = 3) -> None:
        super().__init__()
        norm = partial(BatchNormNoScale, eps=1e-3, momentum=0.01)
        conv = partial(ConvNormAct, norm_layer=norm)
        conv_bn = partial(ConvNormAct, norm_layer=norm, act_layer=None)
        self.conv1 = conv(in_chans, 32, 3, stride=2)
        self.conv2 = conv(32, 32, 3)
        self.conv3 = conv(32, 64, 3)
        self.mixed1 = ConcatBranches(conv(64, 96, 3, stride=2), nn.MaxPool2d(3, 2, padding=1))
        self.mixed2 = ConcatBranches(
            nn.Sequential(conv(160, 64, 1), conv_bn(64, 96, 3)),
            nn.Sequential(
                conv(160, 64, 1), conv(64, 64, (5, 1)), conv(64, 64, (1, 5)), conv_bn(64, 96, 3)
            ),
        )
        self.mixed3 = ConcatBranches(
            conv(192, 192, 3, stride=2, preact=True), nn.MaxPool2d(2, 2, ceil_mode=True)
        )
        self.sepconv = SeparableResidual(384, 576, 3, norm_layer=norm)
        self.feature_info = _feature_info(self.TAPS)
        _init_convs(self, nn.init.xavier_uniform_)


class VGG16FCN(nn.Sequential):
    """VGG-16's convolutional layers conv1_1..conv5_3 with their five max-pools, the part
    detector trunk of Bulat & Tzimiropoulos, "Human Pose Estimation via Convolutional Part
    Heatmap Regression" (ECCV 2016), section "VGG-FCN part heatmap regression".

    The paper keeps VGG-16's pooling and reaches stride 8 "by combining the earlier level CNN
    features" as in FCN-8s (Long et al.), not by removing pool4/pool5 or dilating. So this trunk
    exposes the FCN skip taps, the outputs of every pool, and the model builds the FCN-8s head
    on strides (8, 16, 32): fc6/fc7 as 1x1 convolutions on pool5, a scoring 1x1 convolution on
    each tap, 2x upsampling and addition, then 8x upsampling to input resolution.

    ``features`` has torchvision's / timm's layout (``features.0`` is conv1_1), so ImageNet
    VGG-16 checkpoints load as they are (their classifier is dropped). Taps: ``features.4``
    (pool1, 64 ch, stride 2), ``.9`` (pool2, 128, 4), ``.16`` (pool3, 256, 8), ``.23`` (pool4,
    512, 16), ``.30`` (pool5, 512, 32).
    """

    STAGES = ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))  # (channels, convolutions)
    TAPS = (
        ("features.4", 64, 2),
        ("features.9", 128, 4),
        ("features.16", 256, 8),
        ("features.23", 512, 16),
        ("features.30", 512, 32),
    )

    def __init__(self, in_chans: int = 3) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        in_chs = in_chans
        for width, depth in self.STAGES:
            for _ in range(depth):
                layers += [nn.Conv2d(in_chs, width, 3, padding=1), nn.ReLU(inplace=True)]
                in_chs = width
            layers.append(nn.MaxPool2d(2, 2))
        self.features = nn.Sequential(*layers)
        self.feature_info = _feature_info(self.TAPS)
        _init_convs(self, partial(nn.init.kaiming_normal_, mode="fan_out", nonlinearity="relu"))


def _vgg_features_only(state_dict: dict[str, Tensor], model: nn.Module) -> dict[str, Tensor]:
    """Keep the convolutional layers of a VGG-16 checkpoint; the FCN trunk has no classifier."""
    return {key: value for key, value in state_dict.items() if key.startswith("features.")}


def _create_trunk(
    cls: type[BelagiannisTrunk | LuvizonStem | VGG16FCN],
    variant: str,
    pretrained: bool,
    *,
    flatten_sequential: bool = False,
    pretrained_filter_fn: Callable | None = None,
    **kwargs: Any,
) -> nn.Module:
    """Build a trunk through timm, so pretrained loading and ``features_only`` work as for
    timm's own models (all taps by default); ``flatten_sequential`` lets ``feature_info`` name
    layers inside a top-level ``nn.Sequential`` (``features.4``)."""
    if kwargs.pop("num_classes", 0):
        raise ValueError(
            f"{variant} is a feature trunk without a classifier; num_classes must be 0"
        )
    return build_model_with_cfg(
        cls,
        variant,
        pretrained,
        feature_cfg=dict(
            flatten_sequential=flatten_sequential, out_indices=tuple(range(len(cls.TAPS)))
        ),
        pretrained_filter_fn=pretrained_filter_fn,
        kwargs_filter=("num_classes",),  # timm fills it in from the pretrained config
        **kwargs,
    )


def _cfg(**kwargs: Any) -> dict[str, Any]:
    """Pretrained config of a trunk, which has no classifier."""
    return dict(num_classes=0, classifier=None, **kwargs)


default_cfgs = generate_default_cfgs(
    {
        "poselit_belagiannis_trunk": _cfg(
            input_size=(3, 248, 248),
            # (I - 128) / 256 on 0..255 pixels, in timm's 0..1 units.
            mean=(128 / 255,) * 3,
            std=(256 / 255,) * 3,
            first_conv="conv1.conv",
            paper_name="Recurrent Human Pose Estimation",
        ),
        "poselit_luvizon_stem": _cfg(
            input_size=(3, 256, 256),
            # (x / 255 - 0.5) * 2.
            mean=(0.5,) * 3,
            std=(0.5,) * 3,
            first_conv="conv1.conv",
            paper_name="Human Pose Regression by Combining Indirect Part Detection and "
            "Contextual Information",
        ),
        "poselit_vgg16_fcn.tv_in1k": _cfg(
            hf_hub_id="timm/vgg16.tv_in1k",
            input_size=(3, 256, 256),
            first_conv="features.0",
            license="bsd-3-clause",
            paper_name="Human Pose Estimation via Convolutional Part Heatmap Regression",
        ),
        "poselit_tf_mobilenetv2_100": dict(
            input_size=(3, 192, 192),
            mean=(0.5,) * 3,  # x / 127.5 - 1, MoveNet's input
            std=(0.5,) * 3,
            first_conv="conv_stem",
            classifier="classifier",
            paper_name="MobileNetV2: Inverted Residuals and Linear Bottlenecks",
        ),
    }
)


@register_model
def poselit_belagiannis_trunk(pretrained: bool = False, **kwargs: Any) -> nn.Module:
    """Belagiannis & Zisserman feed-forward trunk conv1..conv8 (stride 4, 512 channels)."""
    return _create_trunk(BelagiannisTrunk, "poselit_belagiannis_trunk", pretrained, **kwargs)


@register_model
def poselit_luvizon_stem(pretrained: bool = False, **kwargs: Any) -> nn.Module:
    """Luvizon et al. stem (stride 8, 576 channels)."""
    return _create_trunk(LuvizonStem, "poselit_luvizon_stem", pretrained, **kwargs)


@register_model
def poselit_tf_mobilenetv2_100(pretrained: bool = False, **kwargs: Any) -> nn.Module:
    """MobileNetV2 1.0 with TensorFlow 'SAME' padding (Keras's, MoveNet's backbone)."""
    return _gen_mobilenet_v2("poselit_tf_mobilenetv2_100", 1.0, pretrained=pretrained, pad_type="same", **kwargs)


@register_model
def poselit_vgg16_fcn(pretrained: bool = False, **kwargs: Any) -> nn.Module:
    """VGG-16 conv1_1..conv5_3 with FCN-8s taps at strides 8/16/32 (Bulat & Tzimiropoulos)."""
    return _create_trunk(
        VGG16FCN,
        "poselit_vgg16_fcn",
        pretrained,
        flatten_sequential=True,
        pretrained_filter_fn=_vgg_features_only,
        **kwargs,
    )
