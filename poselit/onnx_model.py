"""Deprecated: moved to :mod:`poselit.onnx.runtime` (``from poselit.onnx import
OnnxPoseModel``); this path works for one more release and warns."""

import warnings

from poselit.onnx.runtime import LOAD_ERRORS, OnnxPoseModel, onnx_file_of

warnings.warn("poselit.onnx_model moved to poselit.onnx; import from there", DeprecationWarning, stacklevel=2)

__all__ = ["LOAD_ERRORS", "OnnxPoseModel", "onnx_file_of"]
