"""Deprecated: the backbones moved to :mod:`poselit.models.backbones` (with the models that
use them); this module re-exports it, with a :class:`DeprecationWarning`, for one release."""

import warnings

from poselit.models.backbones import *  # noqa: F403 (the old names, for one release)
from poselit.models.backbones import __all__  # noqa: F401

warnings.warn(
    "poselit.backbones moved to poselit.models.backbones; the old module will be removed in the next release",
    DeprecationWarning,
    stacklevel=2,
)
