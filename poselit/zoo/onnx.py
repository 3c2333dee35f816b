"""ONNX export: a pose model's whole ``predict_poses`` as one graph, its input description
in the file's metadata.

::

    import poselit
    from poselit.zoo.onnx import export_onnx

    model, card = poselit.zoo.load_with_card("luvizon-mobilenetv2-lsp")
    export_onnx(model, "luvizon-mobilenetv2-lsp.onnx", card=card)

or :func:`export_zoo_onnx` for a zoo name, ``hf://`` reference or export folder. On the
command line: ``poselit zoo export NAME --format onnx [--out DIR_OR_FILE]`` (default
``runs/export/NAME/model.onnx``), or from a Lightning checkpoint ``poselit zoo export CKPT
--name NAME --out DIR --format onnx`` (``DIR/model.onnx`` beside the safetensors weights).
Run it with ``poselit predict IMAGES --model FILE_OR_DIR``, with
:class:`poselit.onnx_model.OnnxPoseModel` (``Predictor(OnnxPoseModel.from_file(path))``) or
with any ONNX runtime. ``onnx`` and ``onnxruntime`` are the ``onnx`` extra: ``pip install -e
".[onnx]"`` in a clone.

**The graph** is :meth:`~poselit.models.base.PoseLitModule.predict_poses`, traced, so a
runtime reproduces it to float rounding without any code of ours:

* inputs: ``images``, float32 ``(B, 3, H, W)``, RGB, 0-255 (uint8 values as floats; the
  batch size ``B`` is free, ``H, W`` are ``input_size``); ``flip_test``, a boolean scalar;
* inside: normalisation (``mean``, ``std``), the network, the flip test when ``flip_test``
  is true, and the decoding (argmax with its sub-pixel step, or soft-argmax);
* outputs: ``keypoints`` ``(B, K, 2)`` in input pixels (the top-left pixel's centre is
  (0, 0)), ``scores`` ``(B, K)``, and for heatmap methods ``heatmaps`` ``(B, K, h, w)``,
  those of the unmirrored images (as ``predict_poses`` returns them).

The flip test is in the graph, not left to the caller: heatmap methods average heatmaps
*before* decoding them (coordinate methods average coordinates), so doing it outside
would mean decoding outside, a second implementation of every decoder to keep equal to
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

**The metadata** (``metadata_props``, every value JSON text, see :class:`OnnxMetadata`):
``input_size`` ``[H, W]``, ``mean`` and ``std`` (0-255 units, RGB), ``padding`` (margin
around a person box), ``fill`` (value outside the image), ``skeleton`` (its name),
``joint_names``, ``limbs`` and ``flip_pairs`` (0-based joint indices), ``flip_test`` (the
model's default), ``class_path``, ``poselit_version``, ``poselit_format`` and, exported with
a card, ``card`` (its name). Everything a runtime needs to crop a person as in training and
to draw the result.
"""

from __future__ import annotations

import io
import json
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

import torch
from torch import Tensor, nn

from poselit import __version__
from poselit.atomic import make_folder, write_atomic
from poselit.extras import require
from poselit.geometry import DEFAULT_FILL, DEFAULT_PADDING
from poselit.models import class_path
from poselit.skeletons import SKELETONS, Skeleton, skeleton_from_spec
from poselit.zoo.cards import ModelCard, ZooError
from poselit.zoo.loading import load_with_card

if TYPE_CHECKING:
    import onnx

    from poselit.models.base import PoseLitModule

DEFAULT_OPSET = 17
"""ONNX opset of exported graphs (ONNX Runtime 1.13 and later run it)."""

FORMAT = 1
"""Version of the metadata layout; files of a newer layout are refused with a clear error."""

ONNX_FILE = "model.onnx"
"""The ONNX file of an export folder (``poselit zoo export --format onnx``)."""

IMAGES, FLIP_TEST = "images", "flip_test"
"""The graph's inputs."""

OUTPUTS = ("keypoints", "scores", "heatmaps")
"""The graph's outputs, in order (``heatmaps`` for heatmap methods only)."""

GRAPH_DOC = (
    "A poselit pose model. Inputs: images, float32 (B, 3, H, W), RGB, 0-255; flip_test, a boolean. "
    "Outputs: keypoints (B, K, 2) in input pixels (top-left pixel centre at (0, 0)), scores (B, K), "
    "and for heatmap methods heatmaps (B, K, h, w). Input description (size, mean, std, padding, fill, "
    "joints): metadata_props, JSON values."
)
"""The ONNX model's ``doc_string``, for readers without poselit."""


# --- metadata -----------------------------------------------------------------------------


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _list_of(check: Callable[[Any], bool], length: int | None = None) -> Callable[[Any], bool]:
    return lambda value: (
        isinstance(value, list) and (length is None or len(value) == length) and all(check(v) for v in value)
    )


_PAIRS = _list_of(_list_of(_is_int, 2))

_SCHEMA: dict[str, tuple[Callable[[Any], bool], str]] = {
    "poselit_format": (_is_int, "an integer"),
    "poselit_version": (lambda v: isinstance(v, str), "a string"),
    "class_path": (lambda v: isinstance(v, str), "a string (module.Class)"),
    "card": (lambda v: isinstance(v, str), "a string (the card's name)"),
    "input_size": (lambda v: _list_of(_is_int, 2)(v) and min(v) > 0, "[height, width], two integers > 0"),
    "mean": (_list_of(_is_number, 3), "three numbers (0-255 units, RGB)"),
    "std": (lambda v: _list_of(_is_number, 3)(v) and min(v) > 0, "three numbers > 0 (0-255 units, RGB)"),
    "padding": (lambda v: _is_number(v) and v > 0, "a number > 0"),
    "fill": (lambda v: _is_int(v) and 0 <= v <= 255, "an integer in [0, 255]"),
    "skeleton": (lambda v: isinstance(v, str), "a string (the skeleton's name)"),
    "joint_names": (_list_of(lambda v: isinstance(v, str)), "a list of joint names"),
    "limbs": (_PAIRS, "a list of [a, b] joint index pairs"),
    "flip_pairs": (_PAIRS, "a list of [left, right] joint index pairs"),
    "flip_test": (lambda v: isinstance(v, bool), "true or false"),
}
"""Every metadata key: how its (JSON) value is checked, and what is expected, for errors."""

OPTIONAL_KEYS = ("card",)


@dataclass(frozen=True)
class OnnxMetadata:
    """What a poselit ONNX file says about its model and input (its ``metadata_props``).

    Args:
        input_size: ``(height, width)`` of the graph's images.
        mean: Per-channel mean subtracted inside the graph, 0-255 units, RGB.
        std: Per-channel divisor, 0-255 units.
        padding: Margin around a given person box when cropping (``Predictor``'s ``padding``).
        fill: Value of crop pixels outside the image.
        skeleton: Joint names, bones and flip pairs (a built-in skeleton when they are its own).
        flip_test: The model's default for the flip test.
        class_path: ``module.Class`` of the exported method.
        poselit_version: The poselit that wrote the file.
        card: Name of the card it was exported with, if any.
    """

    input_size: tuple[int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    padding: float
    fill: int
    skeleton: Skeleton
    flip_test: bool
    class_path: str
    poselit_version: str = __version__
    card: str | None = None

    @classmethod
    def of_model(cls, model: PoseLitModule, card: ModelCard | None = None) -> OnnxMetadata:
        """The metadata of ``model``: its input description
        (:meth:`~poselit.models.base.PoseLitModule.input_description`), and the card's name."""
        given = model.input_description()
        return cls(
            input_size=tuple(given["size"]),
            mean=tuple(given["mean"]),
            std=tuple(given["std"]),
            padding=float(given["padding"]),
            fill=given["fill"],
            skeleton=model.skeleton,
            flip_test=bool(model.flip_test),
            class_path=class_path(type(model)),
            card=None if card is None else card.name,
        )

    def to_props(self) -> dict[str, str]:
        """``{key: JSON text}`` for ``metadata_props``."""
        values = {
            "poselit_format": FORMAT,
            "poselit_version": self.poselit_version,
            "class_path": self.class_path,
            "card": self.card,
            "input_size": list(self.input_size),
            "mean": list(self.mean),
            "std": list(self.std),
            "padding": self.padding,
            "fill": self.fill,
            "skeleton": self.skeleton.name,
            "joint_names": list(self.skeleton.joints),
            "limbs": [list(limb) for limb in self.skeleton.limbs],
            "flip_pairs": [list(pair) for pair in self.skeleton.flip_pairs],
            "flip_test": self.flip_test,
        }
        return {key: json.dumps(value) for key, value in values.items() if value is not None}

    @classmethod
    def from_props(cls, props: Mapping[str, str], where: str) -> OnnxMetadata:
        """Parse and check ``metadata_props``; a missing, unreadable or ill-typed key is a
        :class:`~poselit.zoo.ZooError` naming ``where`` (the file) and the key."""
        if "poselit_format" not in props:
            raise ZooError(f"{where}: metadata key 'poselit_format' is missing: not an ONNX file exported by poselit")
        values = {key: _value(props, key, where) for key in _SCHEMA if key in props or key not in OPTIONAL_KEYS}
        if values["poselit_format"] > FORMAT:
            raise ZooError(
                f"{where}: metadata format {values['poselit_format']} was written by a newer poselit "
                f"({values['poselit_version']}); this poselit {__version__} reads format {FORMAT}. "
                f"Upgrade it: pip install -U poselit"
            )
        return cls(
            input_size=tuple(values["input_size"]),
            mean=tuple(float(v) for v in values["mean"]),
            std=tuple(float(v) for v in values["std"]),
            padding=float(values["padding"]),
            fill=values["fill"],
            skeleton=_skeleton(values, where),
            flip_test=values["flip_test"],
            class_path=values["class_path"],
            poselit_version=values["poselit_version"],
            card=values.get("card"),
        )

    def check_card(self, card: ModelCard, where: str) -> None:
        """A :class:`~poselit.zoo.ZooError` naming ``where`` and the field when the card's
        ``input`` (size, mean, std, padding, fill, skeleton) says otherwise; fields the card
        leaves out are not compared, except ``padding`` and ``fill`` (their defaults,
        :data:`~poselit.geometry.DEFAULT_PADDING` and :data:`~poselit.geometry.DEFAULT_FILL`)."""
        given = card.input
        fields = (
            ("input.size", given.get("size"), list(self.input_size), _equal),
            ("input.mean", given.get("mean"), list(self.mean), _close),
            ("input.std", given.get("std"), list(self.std), _close),
            ("input.padding", given.get("padding") or DEFAULT_PADDING, self.padding, _close),
            ("input.fill", given.get("fill", DEFAULT_FILL), self.fill, _equal),
            ("input.skeleton", given.get("skeleton"), self.skeleton, _same_skeleton),
        )
        for name, expected, actual, same in fields:
            if expected is not None and not same(expected, actual):
                shown = actual.name if isinstance(actual, Skeleton) else actual
                raise ZooError(
                    f"{where}: {name} is {shown!r} but card {card.name!r} ({card.source or 'not saved'}) "
                    f"says {expected!r}"
                )


def _value(props: Mapping[str, str], key: str, where: str) -> Any:
    """The checked JSON value of ``key``."""
    check, expected = _SCHEMA[key]
    if key not in props:
        raise ZooError(f"{where}: metadata key {key!r} is missing (expected {expected})")
    try:
        value = json.loads(props[key])
    except ValueError:
        raise ZooError(f"{where}: metadata key {key!r} is not JSON text: {props[key]!r}") from None
    if not check(value):
        raise ZooError(f"{where}: metadata key {key!r} must be {expected}, got {value!r}")
    return value


def _skeleton(values: Mapping[str, Any], where: str) -> Skeleton:
    """The skeleton of the metadata: the built-in one of that name when it has these joints,
    bones and flip pairs, else a custom one."""
    try:
        skeleton = Skeleton(
            values["skeleton"],
            tuple(values["joint_names"]),
            tuple(map(tuple, values["limbs"])),
            flip_pairs=tuple(map(tuple, values["flip_pairs"])),
        )
    except ValueError as err:
        raise ZooError(f"{where}: metadata keys 'joint_names', 'limbs', 'flip_pairs' do not fit together: {err}") from None
    builtin = SKELETONS.get(skeleton.name)
    return builtin if builtin is not None and _same_layout(builtin, skeleton) else skeleton


def _same_layout(a: Skeleton, b: Skeleton) -> bool:
    return (a.joints, a.limbs, a.flip_pairs) == (b.joints, b.limbs, b.flip_pairs)


def _same_skeleton(spec: Any, skeleton: Skeleton) -> bool:
    """A card's ``input.skeleton`` (a name, or a COCO-format category) describes ``skeleton``."""
    if isinstance(spec, str):
        return spec == skeleton.name
    try:
        return _same_layout(skeleton_from_spec(spec), skeleton)
    except (ValueError, KeyError):
        return False


def _equal(expected: Any, actual: Any) -> bool:
    return list(expected) == list(actual) if isinstance(expected, (list, tuple)) else expected == actual


def _close(expected: Any, actual: Any) -> bool:
    """Equal numbers, or lists of them, up to the card's rounding (6 decimals of float32)."""
    expected, actual = (
        (list(expected), list(actual)) if isinstance(expected, (list, tuple)) else ([expected], [actual])
    )
    return len(expected) == len(actual) and all(
        _is_number(e) and math.isclose(e, a, rel_tol=1e-6, abs_tol=1e-6) for e, a in zip(expected, actual)
    )


# --- export -------------------------------------------------------------------------------


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
) -> Path:
    """Write ``model`` as an ONNX file (see the module docs); returns the path.

    Args:
        model: A float32 pose model (left in the mode it was in; traced on its device).
        path: The ``.onnx`` file, written whole or not at all (:func:`~poselit.atomic.write_atomic`).
        card: Its model card: its name goes into the metadata; a card whose ``input`` does
            not describe the model (crop padding and fill included) is a
            :class:`~poselit.zoo.ZooError` naming the field, and nothing is written.
        opset: ONNX opset version.
    """
    onnx = require("onnx", "onnx", "ONNX export")
    path = Path(path)
    metadata = OnnxMetadata.of_model(model, card)
    if card is not None:
        metadata.check_card(card, f"{path}: exporting {type(model).__name__}")
    training = model.training
    model.eval()
    try:
        example = torch.zeros(2, 3, *model.input_size, device=model.device)
        with torch.no_grad():
            produced = model.predict_poses(example, flip_test=False)
        outputs = [name for name in OUTPUTS if name in produced]
        plain, flipped = (_trace(_PoseGraph(model, flip, outputs), example, opset) for flip in (False, True))
    finally:
        model.train(training)
    proto = _switch_on_flip_test(plain, flipped)
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
    """
    model, card = load_with_card(name, cache_dir=cache_dir, zoo_dir=zoo_dir)
    path = onnx_path(Path("runs", "export", card.name) if out is None else out)
    make_folder(path.parent)
    return card, export_onnx(model, path, card=card, opset=opset)


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
    return onnx.load_from_string(buffer.getvalue())


def _switch_on_flip_test(plain: onnx.ModelProto, flipped: onnx.ModelProto) -> onnx.ModelProto:
    """One model of the two traces: an ``If`` on the boolean input ``flip_test`` runs one
    of them, each with its own copy of the weights (see the module docs)."""
    import onnx
    import onnx.compose

    branches = {}
    for tag, traced in (("plain", plain), ("flip", flipped)):
        graph = onnx.compose.add_prefix_graph(traced.graph, f"{tag}/", rename_inputs=False)  # `images`: the outer input
        del graph.input[:]
        branches[tag] = graph
    outputs = list(plain.graph.output)
    switch = onnx.helper.make_node(
        "If", [FLIP_TEST], [o.name for o in outputs], then_branch=branches["flip"], else_branch=branches["plain"]
    )
    graph = onnx.helper.make_graph(
        [switch],
        "poselit",
        [plain.graph.input[0], onnx.helper.make_tensor_value_info(FLIP_TEST, onnx.TensorProto.BOOL, [])],
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


__all__ = [
    "DEFAULT_OPSET",
    "FLIP_TEST",
    "IMAGES",
    "ONNX_FILE",
    "OUTPUTS",
    "OnnxMetadata",
    "export_onnx",
    "export_zoo_onnx",
    "onnx_path",
]
