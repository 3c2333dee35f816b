"""What a poselit ONNX file says about its model: :class:`OnnxMetadata`, the file's
``metadata_props`` (every value JSON text), and the names of the graph's inputs and outputs.

The model's input description (:class:`~poselit.input_spec.InputSpec`) is written under its
own keys, as a card's ``input`` block writes it: ``size`` ``[H, W]``, ``mean`` and ``std``
(0-255 units, RGB), ``padding`` (margin around a person box), ``fill`` (value outside the
image) and ``skeleton`` (its name), with the skeleton's ``joint_names``, ``limbs`` and
``flip_pairs`` (0-based joint indices) for runtimes without poselit. Then ``flip_test`` (the
model's default), ``class_path``, ``poselit_version``, ``poselit_format``, ``precision``
(``"float32"`` or ``"int8"``) and, exported with a card, ``card`` (its name): everything a
runtime needs to crop a person as in training and to draw the result. Every value is
checked when read, the input description by :func:`~poselit.input_spec.check_field`, so a
file asking for an absurd crop is refused before anything is allocated for it. Files of
format 1 (``input_size`` for ``size``) are read as well.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Mapping

from poselit import __version__
from poselit.input_spec import InputSpec, check_field
from poselit.models import class_path
from poselit.skeletons import SKELETONS, Skeleton
from poselit.zoo.cards import ModelCard, ZooError

if TYPE_CHECKING:
    from poselit.models.base import PoseLitModule

FORMAT = 2
"""Version of the metadata layout; files of a newer layout are refused with a clear error.
2: the input description under :class:`~poselit.input_spec.InputSpec`'s keys (1:
``input_size`` for ``size``)."""

ONNX_FILE = "model.onnx"
"""The ONNX file of an export folder (``poselit zoo export --format onnx``)."""

IMAGES, FLIP_TEST = "images", "flip_test"
"""The graph's inputs."""

OUTPUTS = ("keypoints", "scores", "heatmaps")
"""The graph's outputs, in order (``heatmaps`` for heatmap methods only)."""

PRECISIONS = ("float32", "int8")
"""What a file's convolutions compute in (``precision``)."""

SPEC_KEYS = ("size", "mean", "std", "padding", "fill")
"""The input description's keys written as its fields are (the skeleton has its own)."""


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


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
    "skeleton": (lambda v: isinstance(v, str), "a string (the skeleton's name)"),
    "joint_names": (_list_of(lambda v: isinstance(v, str)), "a list of joint names"),
    "limbs": (_PAIRS, "a list of [a, b] joint index pairs"),
    "flip_pairs": (_PAIRS, "a list of [left, right] joint index pairs"),
    "flip_test": (lambda v: isinstance(v, bool), "true or false"),
    "precision": (lambda v: v in PRECISIONS, f"one of {', '.join(PRECISIONS)}"),
}
"""Every metadata key but the input description's: how its (JSON) value is checked, and
what is expected, for errors."""

OPTIONAL_KEYS = ("card", "precision")


@dataclass(frozen=True)
class OnnxMetadata:
    """What a poselit ONNX file says about its model and input (its ``metadata_props``).

    Args:
        spec: The model's input description: what the graph's ``images`` are cropped and
            normalised as (the graph normalises them itself, with ``spec.mean`` and
            ``spec.std``), and its joints.
        flip_test: The model's default for the flip test.
        class_path: ``module.Class`` of the exported method.
        poselit_version: The poselit that wrote the file.
        card: Name of the card it was exported with, if any.
        precision: ``"float32"``, or ``"int8"`` for a quantized file
            (:func:`poselit.onnx.quantize.quantize_graph`); files without the key are float32.
    """

    spec: InputSpec
    flip_test: bool
    class_path: str
    poselit_version: str = __version__
    card: str | None = None
    precision: str = "float32"

    @classmethod
    def of_model(
        cls, model: PoseLitModule, card: ModelCard | None = None, *, precision: str = "float32"
    ) -> OnnxMetadata:
        """The metadata of ``model``: its input spec, the card's name and the file's ``precision``."""
        return cls(
            spec=model.input_spec,
            flip_test=bool(model.flip_test),
            class_path=class_path(type(model)),
            card=None if card is None else card.name,
            precision=precision,
        )

    def to_props(self) -> dict[str, str]:
        """``{key: JSON text}`` for ``metadata_props``."""
        spec = self.spec.to_dict()
        skeleton = self.spec.skeleton
        values = {
            "poselit_format": FORMAT,
            "poselit_version": self.poselit_version,
            "class_path": self.class_path,
            "card": self.card,
            **{key: spec[key] for key in SPEC_KEYS},
            "skeleton": skeleton.name,
            "joint_names": list(skeleton.joints),
            "limbs": [list(limb) for limb in skeleton.limbs],
            "flip_pairs": [list(pair) for pair in skeleton.flip_pairs],
            "flip_test": self.flip_test,
            "precision": self.precision,
        }
        return {key: json.dumps(value) for key, value in values.items() if value is not None}

    @classmethod
    def from_props(cls, props: Mapping[str, str], where: str) -> OnnxMetadata:
        """Parse and check ``metadata_props``; a missing, unreadable, ill-typed or out-of-range
        key is a :class:`~poselit.zoo.ZooError` naming ``where`` (the file) and the key."""
        if "poselit_format" not in props:
            raise ZooError(f"{where}: metadata key 'poselit_format' is missing: not an ONNX file exported by poselit")
        values = {key: _value(props, key, where) for key in _SCHEMA if key in props or key not in OPTIONAL_KEYS}
        if values["poselit_format"] > FORMAT:
            raise ZooError(
                f"{where}: metadata format {values['poselit_format']} was written by a newer poselit "
                f"({values['poselit_version']}); this poselit {__version__} reads format {FORMAT}. "
                f"Upgrade it: pip install -U poselit"
            )
        keys = {name: "input_size" if name == "size" and values["poselit_format"] < 2 else name for name in SPEC_KEYS}
        spec = InputSpec(
            skeleton=_skeleton(values, where),
            **{name: check_field(name, _json(props, key, where), f"{where}: metadata key {key!r}", ZooError)
               for name, key in keys.items()},
        )
        return cls(
            spec=spec,
            flip_test=values["flip_test"],
            class_path=values["class_path"],
            poselit_version=values["poselit_version"],
            card=values.get("card"),
            precision=values.get("precision", "float32"),
        )

    def check_card(self, card: ModelCard, where: str) -> None:
        """A :class:`~poselit.zoo.ZooError` naming ``where`` and the field when the input
        description of the model ``card`` builds (:func:`~poselit.zoo.loading.card_input_spec`:
        what the card states, the rest the class's own) differs from :attr:`spec`."""
        from poselit.zoo.loading import card_input_spec

        expected = card_input_spec(card)
        for name in self.spec.differences(expected):
            actual = self.spec.skeleton.name if name == "skeleton" else self.spec.to_dict()[name]
            raise ZooError(
                f"{where}: input.{name} is {actual!r} but card {card.name!r} ({card.source or 'not saved'}) "
                f"says {card.input.get(name, expected.to_dict()[name])!r}"
            )


def _json(props: Mapping[str, str], key: str, where: str, expected: str = "") -> Any:
    """The JSON value of ``key``, not yet checked."""
    if key not in props:
        raise ZooError(f"{where}: metadata key {key!r} is missing" + (f" (expected {expected})" if expected else ""))
    try:
        return json.loads(props[key])
    except ValueError:
        raise ZooError(f"{where}: metadata key {key!r} is not JSON text: {props[key]!r}") from None


def _value(props: Mapping[str, str], key: str, where: str) -> Any:
    """The checked JSON value of ``key`` (:data:`_SCHEMA`)."""
    check, expected = _SCHEMA[key]
    value = _json(props, key, where, expected)
    if not check(value):
        raise ZooError(f"{where}: metadata key {key!r} must be {expected}, got {value!r}")
    return value


def _skeleton(values: Mapping[str, Any], where: str) -> Skeleton:
    """The skeleton of the metadata: the built-in one of that name, whose joints, bones and
    flip pairs the file must list, else a custom one."""
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
    if builtin is None:
        return skeleton
    if (builtin.joints, builtin.limbs, builtin.flip_pairs) != (skeleton.joints, skeleton.limbs, skeleton.flip_pairs):
        raise ZooError(
            f"{where}: metadata key 'skeleton' is {skeleton.name!r}, but 'joint_names', 'limbs' and 'flip_pairs' "
            f"are not those of the built-in {skeleton.name!r} skeleton ({builtin.num_joints} joints: "
            f"{', '.join(builtin.joints[:3])}, ...); got {skeleton.num_joints} joints: {', '.join(skeleton.joints[:3])}, ..."
        )
    return builtin


__all__ = ["FLIP_TEST", "FORMAT", "IMAGES", "ONNX_FILE", "OUTPUTS", "OnnxMetadata", "PRECISIONS", "SPEC_KEYS"]
