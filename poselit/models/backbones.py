"""Backbones: any timm model as a multi-stride feature extractor, plus the papers' own trunks.

:func:`create_backbone` builds a timm model with ``features_only=True`` and returns a
:class:`Backbone` whose ``forward`` gives one feature map per requested stride, with
``channels`` and ``strides`` to size the heads that follow. Strides are chosen from the
model's ``feature_info``; when several features share a stride (ViTs, the Belagiannis trunk)
the deepest one is used, and ``out_indices`` picks features explicitly.

The trunks of the three papers (``poselit_belagiannis_trunk``, ``poselit_luvizon_stem``,
``poselit_vgg16_fcn``) are timm models registered by :mod:`poselit.models.trunks`, which
this module imports (and re-exports): any backbone name works once it is imported.

Weights: ``pretrained=True`` uses timm's usual sources (Hugging Face hub; needs a network).
``weights=path`` loads a local state dict instead, a ``.safetensors`` file (preferred) or a
``.pth`` / ``.pt`` / ``.bin`` file read with ``torch.load(weights_only=True)``, never unpickling
arbitrary objects; it goes through timm's own loader (``pretrained_cfg_overlay=dict(file=...)``),
so timm's input-channel adaptation and checkpoint filters still apply.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, Sequence

import timm
import torch
from torch import Tensor, nn

from poselit.backbone_weights import import_weights, load_weights_only
from poselit.files import safetensors_shapes
from poselit.models.layers import ConvNormAct
from poselit.models.trunks import (
    BelagiannisTrunk,
    LuvizonStem,
    VGG16FCN,
    poselit_belagiannis_trunk,
    poselit_luvizon_stem,
    poselit_tf_mobilenetv2_100,
    poselit_vgg16_fcn,
)

__all__ = [
    "Backbone",
    "NeckBackbone",
    "TopDownNeck",
    "BelagiannisTrunk",
    "LuvizonStem",
    "VGG16FCN",
    "create_backbone",
    "import_weights",
    "list_backbones",
    "poselit_belagiannis_trunk",
    "poselit_luvizon_stem",
    "poselit_tf_mobilenetv2_100",
    "poselit_vgg16_fcn",
]

WEIGHT_SUFFIXES = (".safetensors", ".pth", ".pt", ".bin")


class Backbone(nn.Module):
    """A feature extractor: ``forward(images)`` returns one feature map per stride.

    Attributes:
        name: The timm model name.
        body: The timm feature model (``features_only=True``).
        channels: Channels of each returned map.
        strides: Input pixels per feature-map pixel of each returned map, increasing.
        pretrained_cfg: timm's data config of the model (``mean``, ``std``, ``input_size``...).
    """

    def __init__(self, name: str, body: nn.Module) -> None:
        super().__init__()
        self.name = name
        self.body = body
        self.channels: tuple[int, ...] = tuple(body.feature_info.channels())
        self.strides: tuple[int, ...] = tuple(body.feature_info.reduction())
        self.pretrained_cfg: dict[str, Any] = dict(body.pretrained_cfg)

    def forward(self, images: Tensor) -> list[Tensor]:
        return list(self.body(images))


class TopDownNeck(nn.Module):
    """FPN's top-down pathway (Lin et al., CVPR 2017, Sec. 3) down to one stride.

    Every feature map from the requested stride to the deepest goes through a 1x1 lateral
    convolution to ``channels``; starting from the deepest, each map is upsampled
    (nearest) to the next finer one and added to it; a 3x3 convolution + BN + ReLU smooths
    the sum at the finest stride. The result carries the deep, ImageNet-trained semantics
    of the whole trunk at the fine stride that pose heads need, for a few 1x1/3x3 layers.
    """

    def __init__(self, in_channels: Sequence[int], channels: int) -> None:
        super().__init__()
        self.lateral = nn.ModuleList(nn.Conv2d(c, channels, 1) for c in in_channels)
        self.smooth = ConvNormAct(channels, channels, 3)

    def forward(self, features: Sequence[Tensor]) -> Tensor:
        x = self.lateral[-1](features[-1])
        for lateral, feature in zip(self.lateral[-2::-1], features[-2::-1]):
            x = lateral(feature) + nn.functional.interpolate(x, size=feature.shape[-2:], mode="nearest")
        return self.smooth(x)


class NeckBackbone(Backbone):
    """A :class:`Backbone` whose one output is its features fused by a :class:`TopDownNeck`
    at the finest of them: ``channels == (neck_channels,)``, ``strides == (stride,)``."""

    def __init__(self, name: str, body: nn.Module, neck_channels: int) -> None:
        super().__init__(name, body)
        self.neck = TopDownNeck(self.channels, neck_channels)
        self.channels, self.strides = (neck_channels,), self.strides[:1]

    def forward(self, images: Tensor) -> list[Tensor]:
        return [self.neck(self.body(images))]


def create_backbone(
    name: str,
    *,
    pretrained: bool = False,
    weights: str | Path | None = None,
    out_strides: int | Sequence[int] | None = None,
    out_indices: Sequence[int] | None = None,
    in_chans: int = 3,
    neck_channels: int | None = None,
    **kwargs: Any,
) -> Backbone:
    """Build timm model ``name`` as a feature extractor at the requested strides.

    Args:
        name: A timm model name (``list_backbones()``), optionally with a pretrained tag.
        pretrained: Load timm's pretrained weights (downloads them).
        weights: Load weights from this local file, or from a folder holding
            ``model.safetensors`` or exactly one weights file (the Hugging Face layout timm
            publishes). The file must hold a plain state dict of ``timm.create_model(name)``.
            Implies ``pretrained``.
        out_strides: Strides of the maps to return, strictly increasing; the deepest feature
            at each stride is used. Default: the model's deepest feature only.
        out_indices: Indices into the model's ``feature_info`` instead of ``out_strides``
            (timm's ``out_indices``; negative values count from the end).
        in_chans: Input channels.
        neck_channels: Fuse every deeper feature into the one stride requested (one
            ``out_strides`` value) with a :class:`TopDownNeck` of this many channels; the
            backbone then returns that one fused map. ``None``: the plain features.
        **kwargs: Passed to ``timm.create_model`` (e.g. ``output_stride``, ``drop_path_rate``).

    Raises:
        KeyError: ``name`` is not a timm model (the message lists close matches).
        ValueError: A stride the model does not have (the message lists those it has), both
            ``out_strides`` and ``out_indices``, or a weights file that lacks the model's tensors.
        FileNotFoundError: ``weights`` does not exist or a folder has no usable file.
    """
    _check_known(name)
    # Built on the meta device: the feature layout and tensor names, without memory or init time.
    with torch.device("meta"):
        probe = timm.create_model(name, in_chans=in_chans, **kwargs)
    if out_indices is None:
        out_indices = _indices_for_strides(name, probe.feature_info, out_strides)
    elif out_strides is not None:
        raise ValueError("give out_strides or out_indices, not both")
    if neck_channels is not None:
        if len(out_indices) != 1 or neck_channels < 1:
            raise ValueError(
                f"neck_channels ({neck_channels}) needs one output stride and >= 1 channel, "
                f"got feature indices {tuple(out_indices)}"
            )
        out_indices = _indices_from(probe.feature_info, out_indices[0])
    overlay = None
    if weights is not None:
        file = _weights_file(weights)
        _check_weights_match(name, file, probe)
        overlay = dict(file=str(file))
    body = timm.create_model(
        name,
        pretrained=pretrained or weights is not None,
        pretrained_cfg_overlay=overlay,
        features_only=True,
        out_indices=tuple(out_indices),
        in_chans=in_chans,
        **kwargs,
    )
    return Backbone(name, body) if neck_channels is None else NeckBackbone(name, body, neck_channels)


def list_backbones(pattern: str = "*", *, pretrained: bool = False) -> list[str]:
    """timm model names matching the wildcard ``pattern`` (``"poselit_*"``: the paper trunks);
    with ``pretrained=True``, only those with published weights (as ``name.tag``)."""
    return timm.list_models(pattern, pretrained=pretrained)


# --------------------------------------------------------------------------- helpers


def _check_known(name: str) -> None:
    if timm.is_model(name):
        return
    close = difflib.get_close_matches(name, timm.list_models(), n=5)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise KeyError(f"unknown backbone {name!r}{hint} (list_backbones() lists them all)")


def _indices_for_strides(
    name: str, feature_info: Sequence[dict[str, Any]], out_strides: int | Sequence[int] | None
) -> tuple[int, ...]:
    """``feature_info`` indices of the deepest feature at each requested stride."""
    if out_strides is None:
        return (len(feature_info) - 1,)
    deepest = {info["reduction"]: index for index, info in enumerate(feature_info)}
    wanted = (out_strides,) if isinstance(out_strides, int) else tuple(out_strides)
    if not wanted or any(a >= b for a, b in zip(wanted, wanted[1:])):
        raise ValueError(f"out_strides must be strictly increasing strides, got {wanted}")
    missing = [stride for stride in wanted if stride not in deepest]
    if missing:
        raise ValueError(
            f"backbone {name!r} has no feature map at stride {', '.join(map(str, missing))}; "
            f"available strides: {', '.join(map(str, sorted(deepest)))}"
        )
    return tuple(deepest[stride] for stride in wanted)


def _indices_from(feature_info: Sequence[dict[str, Any]], index: int) -> tuple[int, ...]:
    """``index`` (negative counts from the end) and the deepest feature of every coarser
    stride after it: the maps a top-down neck fuses."""
    index = index % len(feature_info)
    deepest = {info["reduction"]: i for i, info in enumerate(feature_info) if i >= index}
    start = feature_info[index]["reduction"]
    return (index, *(deepest[r] for r in sorted(deepest) if r > start))


def _weights_file(weights: str | Path) -> Path:
    """The weights file named by ``weights``: the file itself, or the one file in a folder."""
    path = Path(weights).expanduser()
    if path.is_file():
        return path
    if not path.is_dir():
        raise FileNotFoundError(f"weights file or folder {str(path)!r} does not exist")
    if (path / "model.safetensors").is_file():
        return path / "model.safetensors"
    files = sorted(p for p in path.iterdir() if p.suffix in WEIGHT_SUFFIXES and p.is_file())
    if len(files) != 1:
        found = ", ".join(p.name for p in files) or "none"
        raise FileNotFoundError(
            f"weights folder {str(path)!r} must hold model.safetensors or exactly one "
            f"{'/'.join(WEIGHT_SUFFIXES)} file; found {found}"
        )
    return files[0]


def _tensor_names(file: Path) -> set[str]:
    """Names in a state-dict file, read without loading tensor data (header / meta device)."""
    if file.suffix == ".safetensors":
        return set(safetensors_shapes(file, "weights file"))
    state = load_weights_only(file, map_location="meta")
    return set(state) if isinstance(state, dict) else set()


def _check_weights_match(name: str, file: Path, probe: nn.Module) -> None:
    """Fail loudly when ``file`` lacks tensors of the model.

    timm loads feature extractors non-strictly (their classifier is dropped), so a file with
    other names (a training checkpoint, another architecture) would otherwise leave the model
    silently random. Classifier tensors may be missing; extra tensors are left to timm.
    """
    classifiers = probe.pretrained_cfg.get("classifier") or ()
    prefixes = tuple(
        f"{c}." for c in ((classifiers,) if isinstance(classifiers, str) else classifiers)
    )
    required = {key for key in probe.state_dict() if not key.startswith(prefixes)}
    missing = sorted(required - _tensor_names(file))
    if missing:
        raise ValueError(
            f"{str(file)!r} does not hold the weights of {name!r}: {len(missing)} of its "
            f"{len(required)} tensors are missing (e.g. {', '.join(missing[:3])}); expected a "
            f"plain state dict of timm.create_model({name!r}) - re-save the model's state dict "
            "from a training checkpoint"
        )
