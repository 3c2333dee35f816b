"""Pose models as ONNX files: export (:mod:`poselit.onnx.export`), int8 quantization
(:mod:`poselit.onnx.quantize`), the file's metadata (:mod:`poselit.onnx.metadata`) and
running a file with ONNX Runtime (:mod:`poselit.onnx.runtime`).

::

    import poselit
    from poselit.onnx import OnnxPoseModel, export_onnx

    model, card = poselit.zoo.load_with_card("luvizon-mobilenetv2-lsp")
    export_onnx(model, "luvizon.onnx", card=card)
    predictor = poselit.Predictor(OnnxPoseModel.from_file("luvizon.onnx", threads=1))

``onnx`` and ``onnxruntime`` are the ``onnx`` extra (``pip install -e ".[onnx]"`` in a
clone); importing this package needs neither.
"""

from poselit.onnx.export import (
    CHANNEL_BLOCK,
    DEFAULT_OPSET,
    export_onnx,
    export_zoo_onnx,
    fix_same_padding,
    onnx_path,
    pad_conv_inputs,
)
from poselit.onnx.metadata import FLIP_TEST, FORMAT, IMAGES, ONNX_FILE, OUTPUTS, PRECISIONS, OnnxMetadata
from poselit.onnx.runtime import LOAD_ERRORS, OnnxPoseModel, onnx_file_of

__all__ = [
    "CHANNEL_BLOCK",
    "DEFAULT_OPSET",
    "FLIP_TEST",
    "FORMAT",
    "IMAGES",
    "LOAD_ERRORS",
    "ONNX_FILE",
    "OUTPUTS",
    "PRECISIONS",
    "OnnxMetadata",
    "OnnxPoseModel",
    "export_onnx",
    "export_zoo_onnx",
    "onnx_file_of",
    "onnx_path",
    "fix_same_padding",
    "pad_conv_inputs",
]
