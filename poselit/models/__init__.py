"""The pose methods, and the one registry that lists them.

A method is one module with one :class:`~poselit.models.base.PoseLitModule` subclass (its
constructor declares its own arguments and inherits the shared ones through ``**kwargs``:
:func:`constructor_arguments`) and one :class:`Method` entry here. The registry is what
the rest reads: LightningCLI imports every registered method so recipes can name it by
class name, the zoo resolves a card's bare class name through it, and the contract tests
(``tests/test_methods.py``) build every registered method, a method registered by the
tests included.

Classes are imported on first access (``from poselit.models import BulatCascade``), so
importing a shared module such as :mod:`poselit.models.layers` stays cheap, and the
registry names classes without importing them: nothing below the methods has to import
them to know them.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Mapping

from poselit.lazy import attribute_target, lazy_names, resolve

BASE_CLASS_PATH = "poselit.models.base.PoseLitModule"
"""The class every method subclasses, by name like the methods."""


@dataclass(frozen=True)
class Method:
    """One registered method.

    Args:
        name: Its first author in lower case (``"bulat"``): zoo names and recipe folders
            start with it.
        class_path: ``module.Class`` of its :class:`~poselit.models.base.PoseLitModule`
            subclass, imported on first use.
        paper: Key of its published results in :data:`poselit.tables.PAPERS` (``None``:
            none are published).
        tiny: Constructor arguments of a small instance that still runs every part of the
            method: the contract tests build it, so it must be fast on a CPU.
    """

    name: str
    class_path: str
    paper: str | None = None
    tiny: Mapping[str, Any] = field(default_factory=dict)

    @property
    def class_name(self) -> str:
        return self.class_path.rpartition(".")[2]

    def load(self) -> type:
        """The method's class (its module is imported on first use)."""
        return import_class(self.class_path)


METHODS: dict[str, Method] = {}
"""The registered methods by :attr:`Method.name`, in registration order."""


def register_method(method: Method) -> Method:
    """Add ``method`` to :data:`METHODS`; its name and class name must be new."""
    taken = {m.class_name: m.name for m in METHODS.values()}
    if method.name in METHODS or method.class_name in taken:
        raise ValueError(
            f"method {method.name!r} ({method.class_name}) is registered already "
            f"(methods: {', '.join(METHODS)})"
        )
    METHODS[method.name] = method
    return method


for _method in (
    Method(
        "bulat",
        "poselit.models.bulat.BulatCascade",
        "bulat2016",
        {"backbone": "resnet18", "regressor_width": 32, "regressor_depth": 2, "input_size": (64, 64)},
    ),
    Method(
        "belagiannis",
        "poselit.models.belagiannis.BelagiannisRecurrent",
        "belagiannis2017",
        {"num_iterations": 1, "input_size": (64, 64)},
    ),
    Method(
        "luvizon",
        "poselit.models.luvizon.LuvizonSoftArgmax",
        "luvizon2017",
        {"num_blocks": 2, "width": 32, "input_size": (64, 64)},
    ),
):
    register_method(_method)
del _method


def class_paths() -> dict[str, str]:
    """``{class name: class_path}`` of the base class and every registered method: the bare
    class names recipes and cards may use."""
    base = BASE_CLASS_PATH.rpartition(".")[2]
    return {base: BASE_CLASS_PATH, **{m.class_name: m.class_path for m in METHODS.values()}}


def import_class(class_path: str) -> type:
    """The class named ``module.Class`` (its module imported)."""
    return resolve(attribute_target(class_path))


def import_methods() -> list[type]:
    """Every registered method's class (LightningCLI finds subclasses among imported ones)."""
    return [method.load() for method in METHODS.values()]


def class_path(cls: type) -> str:
    """``module.QualName`` of a class, as recipes, cards and checkpoints name it."""
    return f"{cls.__module__}.{cls.__qualname__}"


def constructor_arguments(cls: type) -> set[str] | None:
    """The keyword arguments ``cls(...)`` takes, up its class hierarchy.

    A method's constructor takes its own arguments and forwards ``**kwargs`` to its parent's
    (LightningCLI's parser resolves that forwarding too): the arguments are the named
    parameters of each constructor from ``cls`` up to the first that has no ``**kwargs``.
    ``None`` when no such constructor ends the chain (anything may be accepted).
    """
    names: set[str] = set()
    for klass in cls.__mro__:
        if "__init__" not in vars(klass):
            continue
        parameters = inspect.signature(klass.__init__).parameters.values()
        names.update(p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))
        if not any(p.kind is p.VAR_KEYWORD for p in parameters):
            return names - {"self"}
    return None


# The base class and the registered methods' classes by class name, imported on first use.
__getattr__, __dir__ = lazy_names(__name__, lambda: {name: attribute_target(path) for name, path in class_paths().items()})

__all__ = [
    "BASE_CLASS_PATH",
    "METHODS",
    "Method",
    "class_path",
    "class_paths",
    "constructor_arguments",
    "import_class",
    "import_methods",
    "register_method",
    *class_paths(),
]
