"""Deprecated: moved to :mod:`poselit.onnx` (export, metadata); this path works for one
more release and warns."""

import warnings

from poselit.onnx.export import DEFAULT_OPSET, GRAPH_DOC, export_onnx, export_zoo_onnx, onnx_path
from poselit.onnx.metadata import FLIP_TEST, FORMAT, IMAGES, ONNX_FILE, OUTPUTS, OnnxMetadata

warnings.warn("poselit.zoo.onnx moved to poselit.onnx; import from there", DeprecationWarning, stacklevel=2)

__all__ = [
    "DEFAULT_OPSET", "FLIP_TEST", "FORMAT", "GRAPH_DOC", "IMAGES", "ONNX_FILE", "OUTPUTS", "OnnxMetadata",
    "export_onnx", "export_zoo_onnx", "onnx_path",
]
