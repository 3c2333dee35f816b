"""Deprecated: renamed :mod:`poselit.zoo.listing` (the zoo's listing of its cards, not to be
confused with :mod:`poselit.tables`); this module re-exports it, with a
:class:`DeprecationWarning`, for one release."""

import warnings

from poselit.zoo.listing import *  # noqa: F403 (the old names, for one release)
from poselit.zoo.listing import __all__  # noqa: F401

warnings.warn(
    "poselit.zoo.table was renamed poselit.zoo.listing; the old module will be removed in the next release",
    DeprecationWarning,
    stacklevel=2,
)
