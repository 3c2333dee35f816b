"""The three methods, one LightningModule each, on the shared :class:`PoseLitModule` loop.

Classes are imported on first access (``from poselit.models import BulatCascade``), so
importing a shared module such as :mod:`poselit.models.layers` stays cheap and free of
import cycles with :mod:`poselit.backbones`.
"""

from __future__ import annotations

import importlib
from typing import Any

_METHODS = {
    "PoseLitModule": "poselit.models.base",
    "BulatCascade": "poselit.models.bulat",
    "BelagiannisRecurrent": "poselit.models.belagiannis",
    "LuvizonSoftArgmax": "poselit.models.luvizon",
}

__all__ = list(_METHODS)


def __getattr__(name: str) -> Any:
    if name in _METHODS:
        return getattr(importlib.import_module(_METHODS[name]), name)
    raise AttributeError(f"module 'poselit.models' has no attribute {name!r}")
