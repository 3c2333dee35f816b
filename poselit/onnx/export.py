"""ONNX export: a pose model's whole ``predict_poses`` as one graph, its input description
in the file's metadata.

::

    import poselit
    from poselit.onnx import export_onnx

    model, card = poselit.zoo.load_with_card("luvizon-mobilenetv2-lsp")
    export_onnx(model, "luvizon-mobilenetv2-lsp.onnx", card=card)

or :func:`export_zoo_onnx` for a zoo name, ``hf://`` reference or export folder. On the
command line: ``poselit zoo export NAME --format onnx [--out DIR_OR_FILE]`` (default
``runs/export/NAME/model.onnx``), or from a Lightning checkpoint ``poselit zoo export CKPT
--name NAME --out DIR --format onnx`` (``DIR/model.onnx`` beside the safetensors weights).
Run it with ``poselit predict IMAGES --model FILE_OR_DIR``, with
:class:`poselit.onnx.OnnxPoseModel` (``Predictor(OnnxPoseModel.from_file(path))``) or
with any ONNX runtime. ``onnx`` and ``onnxruntime`` are the ``onnx`` extra: ``pip install -e
".[onnx]"`` in a clone.

**The graph** is :meth:`~poselit.models.base.PoseLitModule.predict_poses`, traced, so a
runtime reproduces it to float rounding without any code of ours:

* inputs: ``images``, float32 ``(B, 3, H, W)``, RGB, 0-255 (uint8 values as floats; the
  batch size ``B`` is free, ``H, W`` are ``input_size``); ``flip_test``, a boolean scalar;
* inside: normalisation (``mean``, ``std``), the network, the flip test when ``flip_test``
  is true, and the decoding of the model's codec (:mod:`poselit.codecs`: argmax with its
  sub-pixel step, DARK's blur included, or soft-argmax);
* outputs: those of the model's codec (``codec.outputs``): ``keypoints`` ``(B, K, 2)`` in
  input pixels (the top-left pixel's centre is (0, 0)), ``scores`` ``(B, K)``, and for
  heatmap codecs ``heatmaps`` ``(B, K, h, w)``, those of the unmirrored images (as
  ``predict_poses`` returns them).

The flip test is in the graph, not left to the caller: the codec merges the two
predictions (:meth:`~poselit.codecs.Codec.merge_flipped`; heatmap codecs average heatmaps
*before* decoding them, coordinate codecs average coordinates), so doing it outside would
mean decoding outside, a second implementation of every decoder to keep equal to
:mod:`poselit.codecs`. Both settings live in one file: ``predict_poses`` is traced once
without and once with the flip test, and an ONNX ``If`` on ``flip_test`` picks the branch
at run time (only that branch runs). Each branch holds its own copy of the weights, so the
file is about twice the size of the weights: ONNX Runtime does not optimise (fold, fuse,
re-layout) convolutions whose weights a branch reads from the outer graph, which made the
``luvizon-mobilenetv2-lsp`` network 2.1x slower when the weights were stored once.

The tracer is the TorchScript-based ``torch.onnx.export(..., dynamo=False)``: it exports all
three methods' operations (argmax and its neighbour gathers, soft-argmax, nearest
upsampling, transposed convolutions) at opset :data:`DEFAULT_OPSET` in seconds, where the
``torch.export`` one took ten times as long for the same graph and needs ``onnxscript``.

**Convolutions for the CPU.** ONNX Runtime runs a convolution in its fast blocked layout
(NCHWc) only when its input channels are a multiple of the CPU's block (8 with AVX2);
Bulat's regression subnetwork reads the image and the 14 detection heatmaps (17 channels),
and that one 7x7 convolution took 23% of the network's time outside the blocked layout.
The export pads such inputs with zero channels (and the weights with zeros): the same
numbers, computed blocked (:func:`pad_conv_inputs`).

**TensorFlow's 'SAME' padding, fixed.** A backbone with TF padding (e.g. MoveNet's,
``poselit_tf_mobilenetv2_100``) pads each stride-2 convolution's input by an amount timm
computes from the input's size at every call (``Conv2dSame``): traced, that is a chain of
shape operations and a ``Pad`` whose amounts are not constants, so ONNX Runtime can fold
neither; it made ``luvizon-mobilenetv2-movenet-lsp`` 1.2x (1 thread) to 1.8x (2 threads)
slower in ONNX Runtime than in LiteRT. The input size is fixed, so the export computes each
amount once (:func:`fix_same_padding`) and the runtime fuses the constant ``Pad`` into its
convolution (once :func:`drop_empty_trailing_inputs` has left out the tracer's empty third
input, which stops that fusion).

**Quantized files** (``calibration=``, ``poselit zoo export NAME --format onnx --int8``):
each branch's convolutions in int8 (:mod:`poselit.onnx.quantize`); the metadata's
``precision`` says so.

**The metadata**: :class:`~poselit.onnx.metadata.OnnxMetadata`.
"""

from __future__ import annotations

import copy
import io
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from poselit import __version__
from poselit.atomic import make_folder, write_atomic
from poselit.extras import require
from poselit.onnx.metadata import FLIP_TEST, IMAGES, ONNX_FILE, OUTPUTS, OnnxMetadata
from poselit.zoo.cards import ModelCard
from poselit.zoo.loading import load_with_card

if TYPE_CHECKING:
    import onnx

    from poselit.models.base import PoseLitModule

DEFAULT_OPSET = 17
"""ONNX opset of exported graphs (ONNX Runtime 1.13 and later run it)."""

GRAPH_REVISION = 3
"""Raised whenever the export writes another graph for the same model (2: constant 'SAME'
padding, no empty trailing inputs; 3: the flip test's mirrored images in the originals'
batch, one pass of the network), so that :func:`poselit.onnx.cache.model_key` no longer finds earlier exports."""

CHANNEL_BLOCK = 8
"""Input channels of a convolution are padded to a multiple of this (ONNX Runtime's NCHWc
block on AVX2 CPUs; see the module docs)."""

GRAPH_DOC = (
    "A poselit pose model. Inputs: images, float32 (B, 3, H, W), RGB, 0-255; flip_test, a boolean. "
    "Outputs: keypoints (B, K, 2) in input pixels (top-left pixel centre at (0, 0)), scores (B, K), "
    "and for heatmap methods heatmaps (B, K, h, w). Input description (size, mean, std, padding, fill, "
    "joints): metadata_props, JSON values."
)
"""The ONNX model's ``doc_string``, for readers without poselit."""


class _ChannelPaddedConv(nn.Module):
    """``conv`` on its input padded with zero channels up to ``channels`` (its weights
    padded with zeros): the same output, in a layout the runtime computes faster."""

    def __init__(self, conv: nn.Conv2d, channels: int) -> None:
        super().__init__()
        extra = channels - conv.in_channels
        self.conv = copy.deepcopy(conv)
        self.conv.weight = nn.Parameter(F.pad(conv.weight.detach(), (0, 0, 0, 0, 0, extra)), requires_grad=False)
        self.extra = extra

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(F.pad(x, (0, 0, 0, 0, 0, self.extra)))


def pad_conv_inputs(model: nn.Module, block: int = CHANNEL_BLOCK) -> nn.Module:
    """A copy of ``model`` in which every ungrouped 2D convolution whose input channels are
    more than 4 and not a multiple of ``block`` reads its input padded with zero channels
    (the output is unchanged; see the module docs). Convolutions of at most 4 input
    channels (an image) have their own fast path in ONNX Runtime.

    >>> net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.Conv2d(8, 4, 1), nn.Conv2d(4, 17, 1), nn.Conv2d(17, 2, 7))
    >>> padded = pad_conv_inputs(net)
    >>> [type(m).__name__ for m in padded]
    ['Conv2d', 'Conv2d', 'Conv2d', '_ChannelPaddedConv']
    >>> x = torch.randn(1, 3, 16, 16)
    >>> bool(torch.allclose(net(x), padded(x), atol=1e-5))
    True
    """
    model = copy.deepcopy(model)
    for parent in list(model.modules()):
        for name, child in parent.named_children():
            if (
                type(child) is nn.Conv2d
                and child.groups == 1
                and child.in_channels > 4
                and child.in_channels % block
            ):
                setattr(parent, name, _ChannelPaddedConv(child, -(-child.in_channels // block) * block))
    return model


def same_padding(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TensorFlow's 'SAME' padding of one axis: (before, after), the odd pixel after, so that
    the output has ``ceil(size / stride)`` positions.

    >>> same_padding(160, 3, 2), same_padding(80, 3, 1), same_padding(161, 3, 2)
    ((0, 1), (1, 1), (1, 1))
    """
    from timm.layers import get_same_padding  # the amount timm's Conv2dSame pads by at run time

    total = get_same_padding(size, kernel, stride, dilation)
    return total // 2, total - total // 2


class _ConstantlyPaddedConv(nn.Module):
    """``conv`` (padding 0) on its input padded by constant amounts ``(left, right, top,
    bottom)``: a timm ``Conv2dSame`` for one input size."""

    def __init__(self, conv: nn.Conv2d, pads: tuple[int, int, int, int]) -> None:
        super().__init__()
        self.conv = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, 0, conv.dilation,
                              conv.groups, conv.bias is not None)
        self.conv.load_state_dict(conv.state_dict())
        self.pads = pads

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(F.pad(x, self.pads))


def fix_same_padding(model: nn.Module, images: Tensor) -> nn.Module:
    """A copy of ``model`` in which each of timm's ``Conv2dSame`` (TensorFlow's 'SAME'
    padding, computed from the input's size at every call) pads by the constant amounts it
    computes for ``images``' size, found by running ``model(images)`` once: the same output
    for inputs of that size, and a graph whose padding a runtime can fuse (see the module
    docs). ``model`` itself when it has none.

    >>> from timm.layers import Conv2dSame
    >>> net = nn.Sequential(Conv2dSame(3, 8, 3, stride=2), nn.ReLU(), Conv2dSame(8, 4, 3, stride=1))
    >>> x = torch.randn(1, 3, 20, 20)
    >>> fixed = fix_same_padding(net, x)
    >>> [m.pads for m in fixed if hasattr(m, "pads")]
    [(0, 1, 0, 1), (1, 1, 1, 1)]
    >>> bool(torch.allclose(net(x), fixed(x), atol=1e-6))
    True
    """
    from timm.layers import Conv2dSame

    sizes: dict[str, tuple[int, int]] = {}

    def record(name: str) -> Callable[[nn.Module, tuple[Tensor, ...]], None]:
        def hook(module: nn.Module, args: tuple[Tensor, ...]) -> None:
            sizes[name] = tuple(args[0].shape[-2:])
        return hook

    hooks = [module.register_forward_pre_hook(record(name)) for name, module in model.named_modules()
             if type(module) is Conv2dSame]
    if not hooks:
        return model
    try:
        with torch.no_grad():
            model(images)
    finally:
        for hook in hooks:
            hook.remove()
    model = copy.deepcopy(model)
    for name, (height, width) in sizes.items():
        parent_name, _, child = name.rpartition(".")
        parent, conv = model.get_submodule(parent_name), model.get_submodule(name)
        (kh, kw), (sh, sw), (dh, dw) = conv.kernel_size, conv.stride, conv.dilation
        pads = (*same_padding(width, kw, sw, dw), *same_padding(height, kh, sh, dh))
        setattr(parent, child, _ConstantlyPaddedConv(conv, pads))
    return model


class _PoseGraph(nn.Module):
    """``predict_poses`` with a fixed flip-test setting, as a traceable module."""

    def __init__(self, model: PoseLitModule, flip_test: bool, outputs: Sequence[str]) -> None:
        super().__init__()
        self.model, self.flip_test, self.outputs = model, flip_test, tuple(outputs)

    def forward(self, images: Tensor) -> tuple[Tensor, ...]:
        result = self.model.predict_poses(images, flip_test=self.flip_test)
        return tuple(result[name].float() for name in self.outputs)


def export_onnx(
    model: PoseLitModule,
    path: str | Path,
    *,
    card: ModelCard | None = None,
    opset: int = DEFAULT_OPSET,
    calibration: Iterable[Tensor] | None = None,
) -> Path:
    """Write ``model`` as an ONNX file (see the module docs); returns the path.

    Args:
        model: A float32 pose model (left in the mode it was in; traced on its device).
        path: The ``.onnx`` file, written whole or not at all (:func:`~poselit.atomic.write_atomic`).
        card: Its model card: its name goes into the metadata; a card whose ``input`` does
            not describe the model (crop padding and fill included) is a
            :class:`~poselit.zoo.ZooError` naming the field, and nothing is written.
        opset: ONNX opset version.
        calibration: Batches of crops, ``(B, 3, H, W)`` 0-255 (e.g.
            :func:`poselit.backbone_weights.training_crops`), on which the convolutions are quantized to
            int8 (:func:`poselit.onnx.quantize.quantize_graph`); ``None``: float32.
    """
    onnx = require("onnx", "onnx", "ONNX export")
    path = Path(path)
    metadata = OnnxMetadata.of_model(model, card, precision="float32" if calibration is None else "int8")
    if card is not None:
        metadata.check_card(card, f"{path}: exporting {type(model).__name__}")
    training = model.training
    model.eval()
    try:
        example = torch.zeros(2, 3, *model.input_size, device=model.device)
        outputs = [name for name in OUTPUTS if name in model.codec.outputs]  # what its codec decodes into
        fast = pad_conv_inputs(fix_same_padding(model, example))
        plain, flipped = (_trace(_PoseGraph(fast, flip, outputs), example, opset) for flip in (False, True))
    finally:
        model.train(training)
    if calibration is not None:
        from poselit.onnx.quantize import quantize_graph

        batches = [batch.float().cpu().numpy() for batch in calibration]
        plain, flipped = (quantize_graph(traced, batches) for traced in (plain, flipped))
    proto = _switch_on_flip_test(plain, flipped, model.input_size, model.num_joints)
    onnx.helper.set_model_props(proto, metadata.to_props())
    onnx.checker.check_model(proto)
    return write_atomic(path, proto.SerializeToString())


def onnx_path(out: str | Path) -> Path:
    """Where an export to ``out`` goes: ``out`` itself when it ends in ``.onnx``, else the
    folder's :data:`ONNX_FILE`.

    >>> onnx_path("bulat.onnx").name, onnx_path("runs/export/bulat").as_posix()
    ('bulat.onnx', 'runs/export/bulat/model.onnx')
    """
    out = Path(out)
    return out if out.suffix.lower() == ".onnx" else out / ONNX_FILE


def export_zoo_onnx(
    name: str,
    out: str | Path | None = None,
    *,
    cache_dir: str | Path | None = None,
    zoo_dir: str | Path | None = None,
    opset: int = DEFAULT_OPSET,
    int8: bool = False,
    calibrate: Sequence[str] | None = None,
    crops: int = 256,
    data_root: str | Path | None = None,
) -> tuple[ModelCard, Path]:
    """Write a zoo model as an ONNX file; returns its card and the file.

    Args:
        name: Zoo name, ``hf://ORG/NAME[@REVISION]`` or export folder, as
            :func:`poselit.zoo.load` takes them (weights checked against their sha256).
        out: A ``.onnx`` file, or a folder that gets :data:`ONNX_FILE` (:func:`onnx_path`);
            ``None``: ``runs/export/<card name>/model.onnx``.
        cache_dir: Hugging Face cache folder (default: ``$HF_HUB_CACHE``, ``$HF_HOME/hub``).
        zoo_dir: Card folder instead of ``$POSELIT_ZOO`` / the built-in zoo.
        opset: ONNX opset version.
        int8: Quantize the convolutions to int8 (:mod:`poselit.onnx.quantize`), calibrated on
            ``crops`` people drawn from ``calibrate`` (dataset specs of training splits, read
            from ``data_root``; default: the card's training data), cropped as in training.
    """
    model, card = load_with_card(name, cache_dir=cache_dir, zoo_dir=zoo_dir)
    calibration = None
    if int8:
        from poselit.backbone_weights import training_crops

        datasets = calibrate or card.training.get("data")
        if not datasets:
            raise ValueError(f"card {card.name!r} records no training data: name the calibration splits (calibrate=)")
        calibration = training_crops(datasets, model.input_size, crops, data_root=data_root)
    path = onnx_path(Path("runs", "export", card.name) if out is None else out)
    make_folder(path.parent)
    return card, export_onnx(model, path, card=card, opset=opset, calibration=calibration)


def _trace(graph: _PoseGraph, example: Tensor, opset: int) -> onnx.ModelProto:
    """``graph`` traced to ONNX, batch size free."""
    import onnx

    buffer = io.BytesIO()
    names = [IMAGES, *graph.outputs]
    with torch.no_grad(), warnings.catch_warnings():
        # the traced Python checks are on the crop size and the joint count, fixed in the graph;
        # the TorchScript-based exporter is deprecated (chosen all the same: see the module docs)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.filterwarnings("ignore", "Constant folding", UserWarning)  # strided slices (flips): left as they are
        torch.onnx.export(
            graph,
            (example,),
            buffer,
            dynamo=False,
            opset_version=opset,
            input_names=[IMAGES],
            output_names=list(graph.outputs),
            dynamic_axes={name: {0: "batch"} for name in names},
        )
    proto = onnx.load_from_string(buffer.getvalue())
    drop_empty_trailing_inputs(proto.graph)
    return proto


def drop_empty_trailing_inputs(graph: onnx.GraphProto) -> int:
    """Leave out the empty names that the tracer writes for optional inputs at the end of a
    node's inputs (``Pad(x, pads, "")``), in ``graph`` and its subgraphs; returns how many.

    The same graph for ONNX, but ONNX Runtime fuses a ``Pad`` into the ``Conv`` after it
    only when every input the ``Pad`` names is a constant, and an empty name is not: with
    them left out, the constant 'SAME' padding of :func:`fix_same_padding` costs nothing.

    >>> import onnx
    >>> graph = onnx.helper.make_graph([onnx.helper.make_node("Pad", ["x", "pads", ""], ["y"])], "g", [], [])
    >>> drop_empty_trailing_inputs(graph), list(graph.node[0].input)
    (1, ['x', 'pads'])
    """
    import onnx

    dropped = 0
    for node in graph.node:
        while node.input and not node.input[-1]:
            node.input.pop()
            dropped += 1
        for attribute in node.attribute:
            if attribute.type == onnx.AttributeProto.GRAPH:
                dropped += drop_empty_trailing_inputs(attribute.g)
    return dropped


def _switch_on_flip_test(
    plain: onnx.ModelProto, flipped: onnx.ModelProto, input_size: Sequence[int], num_joints: int
) -> onnx.ModelProto:
    """One model of the two traces: an ``If`` on the boolean input ``flip_test`` runs one
    of them, each with its own copy of the weights (see the module docs). The input
    ``images`` is declared here (a trace whose outputs ignore it has none), and the outputs'
    joint axis as ``num_joints`` (the trace leaves it unnamed), so that a runtime checks the
    metadata's skeleton against the graph before running it."""
    import onnx
    import onnx.compose

    branches = {}
    for tag, traced in (("plain", plain), ("flip", flipped)):
        graph = onnx.compose.add_prefix_graph(traced.graph, f"{tag}/", rename_inputs=False)  # `images`: the outer input
        del graph.input[:]
        branches[tag] = graph
    outputs = list(plain.graph.output)
    for output in outputs:
        if output.name in OUTPUTS[:2]:  # keypoints (B, K, 2), scores (B, K)
            output.type.tensor_type.shape.dim[1].dim_value = num_joints
    switch = onnx.helper.make_node(
        "If", [FLIP_TEST], [o.name for o in outputs], then_branch=branches["flip"], else_branch=branches["plain"]
    )
    graph = onnx.helper.make_graph(
        [switch],
        "poselit",
        [
            onnx.helper.make_tensor_value_info(IMAGES, onnx.TensorProto.FLOAT, ["batch", 3, *input_size]),
            onnx.helper.make_tensor_value_info(FLIP_TEST, onnx.TensorProto.BOOL, []),
        ],
        outputs,
    )
    return onnx.helper.make_model(
        graph,
        opset_imports=plain.opset_import,
        ir_version=plain.ir_version,
        producer_name="poselit",
        producer_version=__version__,
        doc_string=GRAPH_DOC,
    )


__all__ = ["CHANNEL_BLOCK", "DEFAULT_OPSET", "export_onnx", "export_zoo_onnx", "onnx_path", "pad_conv_inputs"]
