"""Optional dependencies: imported where they are needed, with the pip command when missing."""

from __future__ import annotations

import importlib
from types import ModuleType


class MissingDependencyError(ImportError):
    """An optional dependency is not installed; the message says which extra brings it."""


def require(module: str, extra: str, purpose: str) -> ModuleType:
    """``import module``, or a :class:`MissingDependencyError` naming ``purpose`` and the
    extra to install (``pip install -e ".[extra]"`` from the clone: poselit is not on PyPI yet)."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise MissingDependencyError(
            f"{purpose} needs {module.partition('.')[0]}, which is not installed: pip install -e \".[{extra}]\" in the poselit clone ({err})"
        ) from err
