"""Module attributes imported on first use (PEP 562's module ``__getattr__``).

One mechanism for every lazy name of the package: ``poselit.zoo`` and ``poselit.Predictor``
(so ``import poselit`` stays light), the method classes of :mod:`poselit.models` (named by
its registry, imported when asked for), the functions of :mod:`poselit.zoo` (so ``import
poselit.zoo`` stays cheap), and a name kept at its old place for one release after a move
(each use warns).

A target is ``"package.module"`` (the module itself) or ``"package.module:name"``.

>>> import poselit
>>> resolve("poselit.skeletons:LSP").num_joints, attribute_target("poselit.skeletons.LSP")
(14, 'poselit.skeletons:LSP')
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import sys
import warnings
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

Targets = Mapping[str, str]
"""``{attribute: target}``."""


def resolve(target: str) -> Any:
    """The object ``target`` names, its module imported."""
    module, _, name = target.partition(":")
    imported = importlib.import_module(module)
    return getattr(imported, name) if name else imported


def attribute_target(dotted: str) -> str:
    """``"package.module.Name"`` (a class path, as recipes and cards write it) as a target."""
    module, _, name = dotted.rpartition(".")
    return f"{module}:{name}"


def lazy_names(
    module: str,
    targets: Targets | Callable[[], Targets] | None = None,
    *,
    moved: Targets | None = None,
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``module``.

    Each name of ``targets`` (a mapping, or a function returning one, for names that change
    while the program runs) is imported on first use. Each name of ``moved`` is its new
    place, returned with a :class:`DeprecationWarning` that names it: an old import path
    keeps working for one release. At the end of a module::

        __getattr__, __dir__ = lazy_names(__name__, {"Predictor": "poselit.predict:Predictor"})
    """
    current = targets if callable(targets) else lambda: targets or {}
    moved = moved or {}

    def __getattr__(name: str) -> Any:
        if name in moved:
            new = moved[name].replace(":", ".")
            warnings.warn(
                f"{module}.{name} moved to {new}; the old name will be removed in the next release",
                DeprecationWarning,
                stacklevel=2,
            )
            return resolve(moved[name])
        found = current()
        if name in found:
            return resolve(found[name])
        raise AttributeError(f"module {module!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted({*vars(sys.modules[module]), *current()})

    return __getattr__, __dir__


def declared_names(module: str) -> tuple[str, ...]:
    """The ``__all__`` of ``module`` (a list of string literals), read from its source without
    importing it: a package offers its modules' public names lazily without listing them a
    second time."""
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise ImportError(f"no module named {module!r}")
    tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"), spec.origin)
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets):
            return tuple(ast.literal_eval(node.value))
    raise ValueError(f"{spec.origin}: no __all__ list of names")


def submodule_targets(package: str, submodules: Sequence[str]) -> dict[str, str]:
    """``{name: target}`` of every name that the ``submodules`` of ``package`` declare public
    (:func:`declared_names`); a name declared by two of them is an error."""
    targets: dict[str, str] = {}
    for submodule in submodules:
        for name in declared_names(f"{package}.{submodule}"):
            if name in targets:
                raise ValueError(f"{package}: {name!r} is public in {targets[name]} and {package}.{submodule}")
            targets[name] = f"{package}.{submodule}:{name}"
    return targets


__all__ = ["Targets", "attribute_target", "declared_names", "lazy_names", "resolve", "submodule_targets"]
