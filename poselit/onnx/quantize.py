"""INT8 quantization of an exported pose graph with ONNX Runtime's tools.

:func:`quantize_graph` turns one traced branch of :func:`poselit.onnx.export_onnx` (before
the two branches are joined by the flip-test switch) into a QDQ graph whose convolutions
run in int8: weights per output channel (symmetric int8), activations per tensor
(asymmetric uint8) with ranges measured on calibration crops (static quantization: nothing
is measured at run time). The convolutions nearest the outputs (:func:`final_convolutions`)
and everything after the network (heatmap decoding, soft-argmax, mapping to input pixels)
stay float32, so the decoders are the float ones.

Calibration crops should look like what the model sees: people cropped as in training
(:func:`poselit.backbone_weights.training_crops` on held-out *training* people, never test
images). A few hundred are enough for min/max ranges.

Why per channel and QDQ: the channels of MobileNetV2's depthwise convolutions have
weight ranges far apart, and one scale per tensor would leave the small ones few levels;
the QDQ format lets ONNX Runtime fuse each quantize/dequantize pair into its int8 kernels
(or run the float kernel where it has no int8 one).

``poselit zoo export NAME --format onnx --int8 --calibrate lsp:train`` on the command line.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Sequence

import numpy as np

from poselit.extras import require
from poselit.onnx.metadata import IMAGES

if TYPE_CHECKING:
    import onnx

QUANTIZED_OPS = ("Conv",)
"""Operators computed in int8; the rest (decoding, upsampling) stays float32."""


def _reader(batches: Sequence[np.ndarray]):
    """An ONNX Runtime calibration data reader over ``batches`` (one feed per batch)."""
    from onnxruntime.quantization import CalibrationDataReader

    class Batches(CalibrationDataReader):
        def __init__(self) -> None:
            self.feeds: Iterator[np.ndarray] = iter(batches)

        def get_next(self) -> dict[str, np.ndarray] | None:
            batch = next(self.feeds, None)
            return None if batch is None else {IMAGES: np.ascontiguousarray(batch, np.float32)}

    return Batches()


def final_convolutions(graph: onnx.GraphProto) -> list[str]:
    """Names of the convolutions nearest the graph's outputs: on every path back from an
    output, the first ``Conv`` met. They write the heatmaps (or the features that
    coordinates are regressed from), whose sub-pixel decoding 256 levels would coarsen,
    so they stay float32."""
    producer = {output: node for node in graph.node for output in node.output}
    found, seen = [], set()
    pending = [output.name for output in graph.output]
    while pending:
        node = producer.get(pending.pop())
        if node is None or node.name in seen:
            continue
        seen.add(node.name)
        if node.op_type in QUANTIZED_OPS:
            found.append(node.name)
        else:
            pending.extend(node.input)
    return found


def quantize_graph(graph: onnx.ModelProto, batches: Sequence[np.ndarray]) -> onnx.ModelProto:
    """``graph`` (one input, :data:`~poselit.onnx.metadata.IMAGES`) with its convolutions
    quantized to int8, calibrated on ``batches`` (``(B, 3, H, W)`` float32 crops, 0-255).

    Raises:
        ValueError: No calibration batch.
    """
    onnx = require("onnx", "onnx", "ONNX quantization")
    require("onnxruntime", "onnx", "ONNX quantization")
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quant_pre_process, quantize_static

    if not batches:
        raise ValueError("quantization needs at least one batch of calibration crops")
    with tempfile.TemporaryDirectory(prefix="poselit-int8-") as folder:
        plain, prepared, quantized = (Path(folder) / name for name in ("plain.onnx", "prepared.onnx", "int8.onnx"))
        onnx.save(graph, plain)
        quant_pre_process(str(plain), str(prepared), skip_symbolic_shape=True)  # shapes + folding, as advised
        quantize_static(
            str(prepared),
            str(quantized),
            _reader(batches),
            quant_format=QuantFormat.QDQ,
            op_types_to_quantize=list(QUANTIZED_OPS),
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
            nodes_to_exclude=final_convolutions(onnx.load(prepared).graph),
        )
        return onnx.load(quantized)


__all__ = ["QUANTIZED_OPS", "final_convolutions", "quantize_graph"]
