"""What a poselit ONNX file says about its model: :class:`OnnxMetadata`, the file's
``metadata_props`` (every value JSON text), and the names of the graph's inputs and outputs.

Keys: ``input_size`` ``[H, W]``, ``mean`` and ``std`` (0-255 units, RGB), ``padding`` (margin
around a person box), ``fill`` (value outside the image), ``skeleton`` (its name),
``joint_names``, ``limbs`` and ``flip_pairs`` (0-based joint indices), ``flip_test`` (the
model's default), ``class_path``, ``poselit_version``, ``poselit_format``, ``precision``
(``"float32"`` or ``"int8"``) and, exported with a card, ``card`` (its name): everything a
runtime needs to crop a person as in training and to draw the result.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Mapping

from poselit import __version__
from poselit.geometry import DEFAULT_FILL, DEFAULT_PADDING
from poselit.models import class_path
from poselit.skeletons import SKELETONS, Skeleton, skeleton_from_spec
from poselit.zoo.cards import ModelCard, ZooError

if TYPE_CHECKING:
    from poselit.models.base import PoseLitModule

FORMAT = 1
"""Version of the metadata layout; files of a newer layout are refused with a clear error."""

ONNX_FILE = "model.onnx"
"""The ONNX file of an export folder (``poselit zoo export --format onnx``)."""

IMAGES, FLIP_TEST = "images", "flip_test"
"""The graph's inputs."""

OUTPUTS = ("keypoints", "scores", "heatmaps")
"""The graph's outputs, in order (``heatmaps`` for heatmap methods only)."""

PRECISIONS = ("float32", "int8")
"""What a file's convolutions compute in (``precision``)."""


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
    "precision": (lambda v: v in PRECISIONS, f"one of {', '.join(PRECISIONS)}"),
}
"""Every metadata key: how its (JSON) value is checked, and what is expected, for errors."""

OPTIONAL_KEYS = ("card", "precision")


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
        precision: ``"float32"``, or ``"int8"`` for a quantized file
            (:func:`poselit.onnx.quantize.quantize_graph`); files without the key are float32.
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
    precision: str = "float32"

    @classmethod
    def of_model(
        cls, model: PoseLitModule, card: ModelCard | None = None, *, precision: str = "float32"
    ) -> OnnxMetadata:
        """The metadata of ``model``: its input description
        (:meth:`~poselit.models.base.PoseLitModule.input_description`), the card's name and
        the file's ``precision``."""
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
            precision=precision,
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
            "precision": self.precision,
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
            precision=values.get("precision", "float32"),
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


__all__ = ["FLIP_TEST", "FORMAT", "IMAGES", "ONNX_FILE", "OUTPUTS", "OnnxMetadata", "PRECISIONS"]
