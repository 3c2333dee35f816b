"""Deprecated: renamed :mod:`poselit.evaluation_protocols` (the evaluation protocols, not
:class:`typing.Protocol` classes); this module re-exports it, with a
:class:`DeprecationWarning`, for one release."""

import warnings

from poselit.evaluation_protocols import *  # noqa: F403 (the old names, for one release)
from poselit.evaluation_protocols import __all__  # noqa: F401

warnings.warn(
    "poselit.protocols was renamed poselit.evaluation_protocols; the old module will be removed in the next release",
    DeprecationWarning,
    stacklevel=2,
)
