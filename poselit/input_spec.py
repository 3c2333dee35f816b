"""What a pose model expects of its input, as one object: :class:`InputSpec`.

A model is trained on person crops of one ``size`` ``(height, width)``, cut around a person
box with a margin (``padding``: the crop side is ``200 * scale * padding`` px), the pixels
outside the image set to ``fill``, normalised with ``mean`` and ``std`` (0-255 units, RGB),
for the joints of one ``skeleton``. Whatever crops for that model (the data module, the
:class:`~poselit.predict.Predictor`, an ONNX runtime) must do the same, so these six facts
travel together, in the spirit of timm's ``PretrainedCfg``:

* the model holds them (``PoseLitModule.input_spec``), built from its constructor
  arguments (``skeleton``, ``input_size``, ``padding``, ``fill``, ``mean``, ``std``:
  :data:`INIT_ARGS`);
* a model card's ``input`` block, an export's ``config.json`` and an ONNX file's metadata
  are :meth:`InputSpec.to_dict` (:meth:`InputSpec.from_dict` reads them back, checked);
* :class:`~poselit.predict.Predictor` reads it from any :class:`PoseModel` (a Lightning
  module or an ONNX Runtime model).

Every value is checked once, here (:func:`check_field`), with one error that names the
field. ``mean`` and ``std`` are kept as the float32 numbers the model normalises with
(written in their shortest form: ``57.12``, not ``57.120000000000005``), so two specs are
equal exactly when the crops and their normalisation are.

**One resolution rule** (:func:`resolve_input_spec`, as timm's ``resolve_data_config``):
each field is the explicit argument if one is given, else the model's spec, else (``mean``
and ``std``) what the backbone's ``pretrained_cfg`` says its weights expect, else the
default (:data:`DEFAULTS`).

>>> spec = InputSpec(size=(64, 48), fill=128)
>>> spec.to_dict()["size"], spec.std
([64, 48], (58.395, 57.12, 57.375))
>>> InputSpec.from_dict(spec.to_dict()) == spec
True
>>> resolve_input_spec({"padding": 1.5}, model_spec=spec).padding, resolve_input_spec(model_spec=spec).padding
(1.5, 1.25)
>>> resolve_input_spec(pretrained_cfg={"mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5)}).mean
(127.5, 127.5, 127.5)
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, Mapping, Protocol, runtime_checkable

import numpy as np

from poselit.geometry import DEFAULT_FILL, DEFAULT_PADDING, check_fill, check_padding
from poselit.skeletons import LSP, Skeleton, skeleton_from_spec

if TYPE_CHECKING:
    import torch

IMAGENET_MEAN = (0.485 * 255, 0.456 * 255, 0.406 * 255)
"""ImageNet's per-channel mean in 0-255 units: the default ``mean``."""

IMAGENET_STD = (0.229 * 255, 0.224 * 255, 0.225 * 255)
"""ImageNet's per-channel standard deviation in 0-255 units: the default ``std``."""

MAX_INPUT_SIDE = 4096
"""Longest crop side accepted, in pixels: pose models read a few hundred (a 4096 x 4096
crop is already 200 MB as float32); a spec asking for more is refused before anything is
allocated for it."""

INIT_ARGS: Mapping[str, str] = {
    "skeleton": "skeleton",
    "size": "input_size",
    "mean": "mean",
    "std": "std",
    "padding": "padding",
    "fill": "fill",
}
"""Each field of :class:`InputSpec` (in the order cards write them) and the constructor
argument that sets it (of the models and of the data module)."""

FIELDS = tuple(INIT_ARGS)


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def _float32(value: float) -> float:
    """``value`` as the float32 the model computes with, in its shortest decimal form."""
    return float(str(np.float32(value)))


def _three(value: Any, positive: bool) -> tuple[float, float, float] | None:
    numbers_ = list(value) if isinstance(value, (list, tuple, np.ndarray)) else None
    if numbers_ is None or len(numbers_) != 3 or not all(_is_number(v) and (v > 0 or not positive) for v in numbers_):
        return None
    return tuple(_float32(v) for v in numbers_)  # type: ignore[return-value]


def check_field(name: str, value: Any, what: str | None = None, error: type[Exception] = ValueError) -> Any:
    """``value`` of field ``name`` checked and normalised (a :class:`~poselit.skeletons.Skeleton`,
    a ``(height, width)`` tuple of ints, a float, an int, tuples of float32 values), or
    ``error`` saying what ``what`` (default: ``name``) must be.

    >>> check_field("size", [64, 48])
    (64, 48)
    >>> check_field("size", [0, 48], "input_size")
    Traceback (most recent call last):
    ...
    ValueError: input_size must be [height, width], two integers in [1, 4096], got [0, 48]
    """
    what = what or name
    if name == "skeleton":
        try:
            return skeleton_from_spec(value)
        except (KeyError, ValueError, TypeError, AttributeError) as err:
            reason = err.args[0] if isinstance(err, (KeyError, ValueError)) and err.args else f"got {value!r}"
            raise error(f"{what} must be a built-in skeleton name or a COCO-format category: {reason}") from None
    if name == "size":
        size = list(value) if isinstance(value, (list, tuple)) else None
        if size is None or len(size) != 2 or not all(_is_int(v) and 1 <= v <= MAX_INPUT_SIDE for v in size):
            raise error(f"{what} must be [height, width], two integers in [1, {MAX_INPUT_SIDE}], got {value!r}")
        return int(size[0]), int(size[1])
    if name in ("mean", "std"):
        checked = _three(value, positive=name == "std")
        if checked is None:
            expected = "three numbers > 0" if name == "std" else "three finite numbers"
            raise error(f"{what} must be {expected} (0-255 units, RGB), got {value!r}")
        return checked
    if name == "padding":
        return check_padding(value, what, error)
    if name == "fill":
        return check_fill(value, what, error)
    raise error(f"{what}: unknown field of the input description (known: {', '.join(FIELDS)})")


@dataclass(frozen=True)
class InputSpec:
    """What a pose model expects of its input (see the module docs). Every field is checked
    and normalised when the spec is made (:func:`check_field`).

    Args:
        skeleton: Its joints: a :class:`~poselit.skeletons.Skeleton`, a built-in name or a
            COCO-format category.
        size: Crop ``(height, width)`` in pixels.
        mean: Per-channel mean subtracted from 0-255 RGB pixels.
        std: Per-channel divisor, 0-255 units.
        padding: Margin around a person box: the crop side is ``200 * scale * padding`` px.
        fill: Value of crop pixels outside the image, 0-255.
    """

    skeleton: Skeleton = LSP
    size: tuple[int, int] = (256, 256)
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    padding: float = DEFAULT_PADDING
    fill: int = DEFAULT_FILL

    def __post_init__(self) -> None:
        for name in FIELDS:
            object.__setattr__(self, name, check_field(name, getattr(self, name)))

    @property
    def num_joints(self) -> int:
        return self.skeleton.num_joints

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON: the card's ``input`` block, the ONNX metadata (the skeleton by name,
        or as a COCO-format category when it is not a built-in one)."""
        return {
            "skeleton": self.skeleton.to_spec(),
            "size": list(self.size),
            "mean": list(self.mean),
            "std": list(self.std),
            "padding": self.padding,
            "fill": self.fill,
        }

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], where: str = "", error: type[Exception] = ValueError, *, prefix: str = ""
    ) -> InputSpec:
        """The spec of ``data`` (:meth:`to_dict`'s form), fields it lacks from :data:`DEFAULTS`;
        see :func:`stated_fields` for the errors."""
        return cls(**{**DEFAULTS, **stated_fields(data, where, error, prefix=prefix)})

    def to_init_args(self) -> dict[str, Any]:
        """The constructor arguments that build a model with this spec (plain JSON)."""
        return {INIT_ARGS[name]: value for name, value in self.to_dict().items()}

    def differences(self, other: InputSpec | Mapping[str, Any]) -> list[str]:
        """The fields where ``other`` (a spec, or some of the fields, e.g. as an older card
        states them, means rounded to 6 decimals) says otherwise than this spec."""
        given = other.__dict__ if isinstance(other, InputSpec) else other
        return [name for name in FIELDS if name in given and not same_value(name, getattr(self, name), given[name])]

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name)!r}" for name in FIELDS[1:])
        return f"InputSpec(skeleton={self.skeleton.name!r}, {shown})"


DEFAULTS: Mapping[str, Any] = {f.name: f.default for f in fields(InputSpec)}
"""Each field's default: the LSP skeleton, 256 x 256 crops, ImageNet's mean and std,
:data:`~poselit.geometry.DEFAULT_PADDING` and :data:`~poselit.geometry.DEFAULT_FILL`."""


def stated_fields(
    data: Mapping[str, Any], where: str = "", error: type[Exception] = ValueError, *, prefix: str = ""
) -> dict[str, Any]:
    """The fields ``data`` states (``None`` values: not stated), each checked and normalised;
    a key that is not a field, or a bad value, is ``error`` naming ``where`` and the field as
    ``prefix + name`` (e.g. ``card.yaml: field 'input.size' must be ...``).

    >>> stated_fields({"size": [64, 48], "fill": None})
    {'size': (64, 48)}
    >>> stated_fields({"sizes": [64, 48]}, "card.yaml", prefix="input.")
    Traceback (most recent call last):
    ...
    ValueError: card.yaml: field 'input.sizes' is not a field of the input description (skeleton, size, mean, std, padding, fill)
    """
    head = f"{where}: " if where else ""
    for key in data:
        if key not in INIT_ARGS:
            raise error(f"{head}field '{prefix}{key}' is not a field of the input description ({', '.join(FIELDS)})")
    return {
        name: check_field(name, data[name], f"{head}field '{prefix}{name}'", error)
        for name in FIELDS
        if data.get(name) is not None
    }


def same_value(name: str, value: Any, given: Any) -> bool:
    """``given`` (checked here) describes the normalised ``value`` of field ``name``: the same
    skeleton layout, size, padding and fill; means and stds equal to 1e-6 (older cards
    rounded them to 6 decimals)."""
    try:
        given = check_field(name, given)
    except ValueError:
        return False
    if name == "skeleton":
        return (value.name, value.joints, value.limbs, value.flip_pairs) == (
            given.name, given.joints, given.limbs, given.flip_pairs)
    if name in ("mean", "std", "padding"):
        pairs = zip(value, given) if name != "padding" else [(value, given)]
        return all(math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-6) for a, b in pairs)
    return value == given


def resolve_input_spec(
    args: Mapping[str, Any] | None = None,
    *,
    model_spec: InputSpec | None = None,
    pretrained_cfg: Mapping[str, Any] | None = None,
    names: Mapping[str, str] = INIT_ARGS,
    error: type[Exception] = ValueError,
) -> InputSpec:
    """The one resolution rule: each field is ``args[field]`` when given (not ``None``), else
    ``model_spec``'s, else (``mean`` / ``std``) the backbone's ``pretrained_cfg`` (timm's
    data config, 0-1 units), else :data:`DEFAULTS`. A bad argument is ``error`` naming it as
    ``names`` does (default: the constructor argument, ``input_size`` for ``size``).
    """
    given = {name: value for name, value in (args or {}).items() if value is not None}
    unknown = [name for name in given if name not in INIT_ARGS]
    if unknown:
        raise error(f"not fields of the input description: {', '.join(unknown)} (known: {', '.join(FIELDS)})")
    values = {name: check_field(name, value, names.get(name, name), error) for name, value in given.items()}
    for name in FIELDS:
        if name in values:
            continue
        if model_spec is not None:
            values[name] = getattr(model_spec, name)
        elif name in ("mean", "std") and pretrained_cfg and pretrained_cfg.get(name) is not None:
            values[name] = tuple(float(v) * 255 for v in pretrained_cfg[name])
    return InputSpec(**values)


class InputSpecFields:
    """The :class:`InputSpec` fields a model is asked for most, as its own properties
    (``skeleton``, ``input_size``, ``padding``, ``fill``), read from its ``input_spec``: one
    definition for every kind of model (the Lightning module, the ONNX and TFLite models)."""

    input_spec: InputSpec

    @property
    def skeleton(self) -> Skeleton:
        """The joints (``input_spec.skeleton``)."""
        return self.input_spec.skeleton

    @property
    def input_size(self) -> tuple[int, int]:
        """Crop ``(height, width)`` (``input_spec.size``)."""
        return self.input_spec.size

    @property
    def padding(self) -> float:
        """Margin around a person box when cropping, as in training (``input_spec.padding``)."""
        return self.input_spec.padding

    @property
    def fill(self) -> int:
        """Value of crop pixels outside the image (``input_spec.fill``)."""
        return self.input_spec.fill


@runtime_checkable
class PoseModel(Protocol):
    """What :class:`~poselit.predict.Predictor` uses of a model: its :class:`InputSpec`, its
    flip-test default, its device, and ``predict_poses`` on 0-255 crops of the spec's size.
    :class:`~poselit.models.base.PoseLitModule` and :class:`~poselit.onnx.OnnxPoseModel`
    have it."""

    flip_test: bool

    @property
    def input_spec(self) -> InputSpec: ...

    @property
    def device(self) -> torch.device: ...

    def eval(self) -> Any: ...

    def to(self, device: Any) -> Any: ...

    def predict_poses(self, images: Any, flip_test: bool | None = None) -> Mapping[str, Any]: ...


__all__ = [
    "DEFAULTS",
    "FIELDS",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "INIT_ARGS",
    "InputSpec",
    "InputSpecFields",
    "MAX_INPUT_SIDE",
    "PoseModel",
    "check_field",
    "resolve_input_spec",
    "same_value",
    "stated_fields",
]
