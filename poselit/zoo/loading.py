"""Building ready models from cards: the one loading path of :func:`poselit.zoo.load`.

A card (or an export's ``config.json``) names a class and its constructor arguments; the
module is built with every weight-fetching argument switched off (its safetensors file
holds every tensor), its weights are loaded strictly after their sha256 matched
(:func:`poselit.zoo.hub.download`), and it is put in eval mode. Before anything is
allocated, the tensor shapes in the file's header are compared with those of the model
built on the meta device, so a card asking for an absurd width fails at once instead of
allocating a huge model first.

The zoo sits on top of the models: importing this module fills their hooks
(:mod:`poselit.models.pretrained`), so ``Method.from_pretrained(name)`` is
``load(name, expect=Method)`` and an ``init_from`` source may name a zoo model
(:func:`~poselit.zoo.hub.source_weights`).

A config only names classes of poselit or of modules the caller has already imported.
Classes are found through the method registry (:mod:`poselit.models`), by name, and their
arguments are checked against their whole class hierarchy
(:func:`~poselit.models.constructor_arguments`).

**The input description** (:class:`~poselit.input_spec.InputSpec`) is the card's ``input``
block. Cards of format 1 also state it in ``init_args`` (``input_size``, ``mean``, ...),
some fields in one place only: :func:`card_init_args` merges the two and refuses a card
where they disagree, whichever the field. Fields stated nowhere are the class's own (its
defaults, the backbone's ``pretrained_cfg``): :func:`card_input_spec` is the spec of the
model a card builds.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

import torch
from poselit import __version__
from poselit.files import load_safetensors, safetensors_shapes
from poselit.input_spec import INIT_ARGS, InputSpec, same_value, stated_fields
from poselit.models import BASE_CLASS_PATH, class_paths, constructor_arguments, import_class
from poselit.models.pretrained import register_loader, register_weights_source
from poselit.zoo import HF_SCHEME, ZOO_SCHEME
from poselit.zoo.cards import ModelCard, ZooError
from poselit.zoo.hub import download, source_weights

if TYPE_CHECKING:
    from poselit.models.base import PoseLitModule

OFFLINE_ARGS: dict[str, Any] = {"pretrained": False, "backbone_weights": None, "init_from": None}
"""Constructor arguments that fetch weights from elsewhere; a zoo model's tensors all come
from its safetensors file, so these are forced to "nothing to fetch" wherever a class has them."""


def resolve_class(class_path: str, where: str = "") -> type[PoseLitModule]:
    """The :class:`PoseLitModule` subclass named by ``class_path``.

    A bare class name means a poselit method (``LuvizonSoftArgmax``). Only poselit's own
    modules are imported by name; a class of another module must have been imported by the
    caller (a config downloaded from the Hub does not get to import arbitrary modules).
    """
    prefix = f"{where}: " if where else ""
    module_name, _, class_name = class_path.rpartition(".")
    if not module_name:
        known = class_paths()
        if class_name not in known:
            raise ZooError(f"{prefix}unknown method class {class_name!r} (known: {', '.join(known)})")
        module_name = known[class_name].rpartition(".")[0]
    if module_name == "poselit" or module_name.startswith("poselit."):
        try:
            module = importlib.import_module(module_name)
        except ImportError as err:
            raise ZooError(f"{prefix}class_path {class_path!r}: cannot import {module_name} ({err})") from None
    elif module_name in sys.modules:
        module = sys.modules[module_name]
    else:
        raise ZooError(
            f"{prefix}class_path {class_path!r} is outside poselit and {module_name} is not imported; "
            f"import {module_name} first (poselit imports only its own modules by name)"
        )
    cls = getattr(module, class_name, None)
    if not (isinstance(cls, type) and issubclass(cls, import_class(BASE_CLASS_PATH))):
        raise ZooError(f"{prefix}class_path {class_path!r} does not name a PoseLitModule subclass")
    return cls


def build_module(
    class_path: str,
    init_args: Mapping[str, Any],
    where: str = "",
    weight_shapes: Mapping[str, tuple[int, ...]] | None = None,
) -> PoseLitModule:
    """A freshly initialised ``class_path`` built with ``init_args``, weight-fetching
    arguments switched off (:data:`OFFLINE_ARGS`): nothing is downloaded. Arguments the
    class does not take are an error, not ignored. With ``weight_shapes`` (name -> shape of
    the weights to be loaded), the model is first built on the meta device and compared
    with them (:func:`check_weight_shapes`), so that nothing is allocated for weights that
    would not fit."""
    cls = resolve_class(class_path, where)
    names = constructor_arguments(cls)
    unknown = [] if names is None else [k for k in init_args if k not in names]
    if unknown:
        raise ZooError(
            f"{where}: {cls.__name__} takes no argument {', '.join(map(repr, unknown))} "
            f"(written by another poselit version? this is {__version__})"
        )
    args = offline_args(cls, init_args)
    try:
        if weight_shapes is not None:
            with torch.device("meta"):
                check_weight_shapes(cls(**args).state_dict(), weight_shapes, where)
        return cls(**args)
    except ZooError:
        raise
    except ValueError as err:  # an argument the class refuses: name the card
        raise ZooError(f"{where}: {err}") from None


def check_weight_shapes(
    state: Mapping[str, torch.Tensor], weight_shapes: Mapping[str, tuple[int, ...]], where: str
) -> None:
    """A :class:`ZooError` naming the first differences unless ``weight_shapes`` has exactly
    the names and shapes of the model's ``state`` (meta tensors will do: only shapes are read)."""
    problems = [f"missing {name}" for name in state if name not in weight_shapes]
    problems += [f"unexpected {name}" for name in weight_shapes if name not in state]
    problems += [
        f"{name}: weights {list(weight_shapes[name])}, model {list(tensor.shape)}"
        for name, tensor in state.items()
        if name in weight_shapes and tuple(tensor.shape) != tuple(weight_shapes[name])
    ]
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise ZooError(f"{where}: the weights do not fit the model its config describes: {'; '.join(problems[:3])}{more}")


def offline_args(cls: type, init_args: Mapping[str, Any]) -> dict[str, Any]:
    """``init_args`` with :data:`OFFLINE_ARGS` forced where ``cls`` takes them."""
    names = constructor_arguments(cls)
    forced = {k: v for k, v in OFFLINE_ARGS.items() if k in (init_args if names is None else names)}
    return {**init_args, **forced}


INPUT_ARGS = ("padding", "fill")
"""Constructor arguments of the model's input description that checkpoints of earlier
versions keep beside their ``hyper_parameters`` (in the data module's) rather than in them."""


def with_input_args(cls: type, init_args: Mapping[str, Any], recorded: Mapping[str, Any]) -> dict[str, Any]:
    """``init_args`` with the :data:`INPUT_ARGS` they lack taken from ``recorded`` (a
    checkpoint's data-module hyper-parameters), where ``cls`` takes them: a model saved
    before it owned its crop ``padding`` and ``fill`` crops as it was trained."""
    names = constructor_arguments(cls)
    missing = {
        key: recorded[key]
        for key in INPUT_ARGS
        if key not in init_args and recorded.get(key) is not None and (names is None or key in names)
    }
    return {**init_args, **missing}


def card_init_args(card: ModelCard, cls: type[PoseLitModule] | None = None) -> dict[str, Any]:
    """The constructor arguments of the model ``card`` describes: its ``init_args`` with the
    fields of its ``input`` (:class:`~poselit.input_spec.InputSpec`) as arguments, where
    ``cls`` (default: the card's class) takes them. A field stated in both places with
    different values is a :class:`ZooError` naming both: the model's input is decided once.
    Where both agree, ``init_args``' value is kept (cards of format 1 rounded ``input``'s
    means to 6 decimals)."""
    where = str(card.source or card.name)
    cls = cls or resolve_class(card.class_path, where)
    names = constructor_arguments(cls)
    args = dict(card.init_args)
    for name, value in stated_fields(card.input, where, ZooError, prefix="input.").items():
        arg = INIT_ARGS[name]
        if names is not None and arg not in names:
            continue
        if args.get(arg) is None:
            args[arg] = card.input[name]
        elif not same_value(name, value, args[arg]):
            raise ZooError(
                f"{where}: input.{name} is {card.input[name]!r} but init_args.{arg} is {args[arg]!r}; "
                "the model's input is decided once: make them equal (or export the card again)"
            )
    return args


def card_input_spec(card: ModelCard) -> InputSpec:
    """The :class:`~poselit.input_spec.InputSpec` of the model ``card`` builds: what its
    ``input`` and ``init_args`` state (:func:`card_init_args`), the rest the class's own
    (the model is built on the meta device: nothing is allocated or downloaded)."""
    where = str(card.source or card.name)
    with torch.device("meta"):
        return build_module(card.class_path, card_init_args(card), where).input_spec


def load_weights(model: PoseLitModule, tensors: Mapping[str, torch.Tensor], where: str) -> PoseLitModule:
    """Load ``tensors`` strictly (every name and shape must match; dtypes are cast)."""
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as err:
        raise ZooError(f"{where}: the weights do not fit {type(model).__name__}: {err}") from None
    return model


def load_with_card(
    name: str,
    *,
    revision: str | None = None,
    device: str | torch.device | None = None,
    cache_dir: str | Path | None = None,
    zoo_dir: str | Path | None = None,
    expect: type[PoseLitModule] | None = None,
) -> tuple[PoseLitModule, ModelCard]:
    """:func:`load`, also returning the card (or ``config.json``) the model was built from,
    for what else it says (metrics, training, ...; the input is ``model.input_spec``)."""
    card, path = download(name, revision=revision, cache_dir=cache_dir, zoo_dir=zoo_dir)
    if expect is not None:
        check_card_class(card, expect)
    shapes = safetensors_shapes(path, "zoo weights", ZooError)
    where = str(card.source or card.name)
    model = build_module(card.class_path, card_init_args(card), where, shapes)
    load_weights(model, load_safetensors(path, "zoo weights", ZooError), str(path))
    return model.to(device or "cpu").eval(), card


def load(
    name: str,
    *,
    revision: str | None = None,
    device: str | torch.device | None = None,
    cache_dir: str | Path | None = None,
    zoo_dir: str | Path | None = None,
    expect: type[PoseLitModule] | None = None,
) -> PoseLitModule:
    """A ready model: built from its card (or ``config.json``), weights checked and loaded
    strictly, in eval mode on ``device`` (default: CPU).

    This is the one loading path: ``Method.from_pretrained(name)`` is
    ``load(name, expect=Method)``.

    Args:
        name: Zoo name (``poselit.zoo.list()``), ``hf://ORG/NAME[@REVISION]``, or the path
            of a folder written by ``poselit zoo export``.
        revision: Hub revision (branch, tag or commit) instead of the pinned one.
        device: Where the model goes.
        cache_dir: Hugging Face cache folder (default: ``$HF_HUB_CACHE`` / ``$HF_HOME/hub``).
        zoo_dir: Card folder instead of ``$POSELIT_ZOO`` / the built-in zoo.
        expect: Refuse (:class:`ZooError`, before building anything) a card whose class is
            not this class or a subclass of it.
    """
    return load_with_card(
        name, revision=revision, device=device, cache_dir=cache_dir, zoo_dir=zoo_dir, expect=expect
    )[0]


def check_card_class(card: ModelCard, expected: type[PoseLitModule]) -> None:
    """A :class:`ZooError` unless the card builds ``expected`` (or a subclass of it)."""
    actual = resolve_class(card.class_path, str(card.source or card.name))
    if not issubclass(actual, expected):
        raise ZooError(
            f"{card.source or card.name}: {card.name!r} is a {actual.__name__} ({card.class_path}), not a "
            f"{expected.__name__}; load it with {actual.__name__}.from_pretrained(...) or poselit.zoo.load(...)"
        )


register_loader(load)
register_weights_source(ZOO_SCHEME, source_weights)
register_weights_source(HF_SCHEME, source_weights)

__all__ = [
    "INPUT_ARGS",
    "OFFLINE_ARGS",
    "build_module",
    "card_init_args",
    "card_input_spec",
    "check_card_class",
    "check_weight_shapes",
    "load",
    "load_weights",
    "load_with_card",
    "offline_args",
    "resolve_class",
    "with_input_args",
]
