"""Converts a poselit ONNX file to a float32 TFLite file that LiteRT runs with its XNNPACK
delegate (:class:`poselit.tflite.TflitePoseModel`), once per model; the ``.tflite`` files
of the zoo models are not committed.

The ONNX file is the one ``poselit zoo export NAME --format onnx`` writes
(:func:`poselit.onnx.export_onnx`): one ``If`` on the boolean input ``flip_test`` whose two
branches are ``predict_poses`` traced without and with the flip test. This script takes the
two branches out as two graphs of their own (batch size 1: XNNPACK's case; the runtime
loops over a batch), converts each with ``onnx2tf`` (NCHW -> NHWC, onnx-simplifier first)
and writes them as the two signatures of one TFLite file, ``plain`` and ``flip``, through
``tf.lite.TFLiteConverter`` (float32, TFLite built-in operators only: LiteRT's wheel has no
TensorFlow fallback). Each signature takes ``images``, float32 ``(1, H, W, 3)`` RGB 0-255
(NHWC: the crop as it is), and returns ``keypoints`` ``(1, K, 2)`` in input pixels,
``scores`` ``(1, K)`` and, for heatmap methods, ``heatmaps`` ``(1, K, h, w)``: the ONNX
graph's outputs. Beside it, ``NAME.json`` (same stem) holds the ONNX file's metadata as it
is (:class:`poselit.onnx.metadata.OnnxMetadata`: input size, mean, std, padding, fill,
skeleton, flip test), which the runtime checks against the graph's shapes.

Why onnx2tf: it converts the file the package already makes and checks (the same graph
ONNX Runtime runs: decoding and flip test inside), from a TensorFlow environment only.
``ai-edge-torch`` (now ``litert-torch``) converts from torch instead but pins its own torch
and TensorFlow nightly builds, which neither the project's environment nor TensorFlow's
can take.

TensorFlow and onnx2tf go in a virtual environment of their own, outside the repository
(``onnx2tf`` pins ``tensorflow==2.19``, ``onnx``, ``onnxruntime`` and ``protobuf``); the
script imports nothing of poselit::

    python3 -m venv /work/ext/tfvenv && /work/ext/tfvenv/bin/pip install onnx2tf
    poselit zoo export luvizon-mobilenetv2-lsp --format onnx --out runs/export/luvizon-mobilenetv2-lsp.onnx
    PATH=/work/ext/tfvenv/bin:$PATH python tools/onnx_to_tflite.py runs/export/luvizon-mobilenetv2-lsp.onnx

which writes ``runs/export/luvizon-mobilenetv2-lsp.tflite`` and ``.json`` (``--out`` another
``.tflite`` path) and prints one JSON line (sizes, signatures, shapes). The ``PATH`` makes
onnx2tf find its ``onnxsim`` command. It takes minutes per model (about 5 on an idle
2-core CPU for ``bulat-mobilenetv2-lsp``). ``tests/test_tflite.py`` checks the converted
files' keypoints against ONNX Runtime's on real LSP images.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

SIDECAR_FORMAT = 1
"""Layout of the ``.json`` beside the ``.tflite`` file (``poselit.tflite.SIDECAR_FORMAT``)."""

BRANCHES = {"else_branch": "plain", "then_branch": "flip"}
"""The ``If`` node's branch -> the TFLite signature it becomes."""

SAMPLE_FILE = "calibration_image_sample_data_20x128x128x3_float32.npy"
"""onnx2tf's sample images for its own output check: downloaded unless in the working
folder, so the conversion runs in a temporary folder that holds generated ones."""


def branch_models(model: Any) -> dict[str, Any]:
    """The two branches of a poselit ONNX file's ``If`` as standalone ONNX models of batch
    size 1: ``{"plain": model, "flip": model}``, names without the branch prefix.

    Raises:
        ValueError: Not a poselit graph (one ``If`` node on ``flip_test``, input ``images``).
    """
    import onnx
    from onnx import helper

    nodes, inputs = model.graph.node, {i.name: i for i in model.graph.input}
    if len(nodes) != 1 or nodes[0].op_type != "If" or set(inputs) != {"images", "flip_test"}:
        raise ValueError("not a poselit ONNX file: expected one If node on 'flip_test' and inputs 'images', 'flip_test'")
    height, width = (d.dim_value for d in inputs["images"].type.tensor_type.shape.dim[2:])
    images = helper.make_tensor_value_info("images", onnx.TensorProto.FLOAT, [1, 3, height, width])
    models = {}
    for attribute in nodes[0].attribute:
        graph, prefix = attribute.g, f"{BRANCHES[attribute.name]}/"
        strip = lambda name: name[len(prefix):] if name.startswith(prefix) else name  # noqa: E731
        for node in graph.node:
            node.input[:] = [strip(name) for name in node.input]
            node.output[:] = [strip(name) for name in node.output]
            node.name = strip(node.name)
        for tensor in graph.initializer:
            tensor.name = strip(tensor.name)
        outputs = [helper.make_value_info(strip(o.name), o.type) for o in graph.output]
        standalone = helper.make_graph(list(graph.node), BRANCHES[attribute.name], [images], outputs,
                                       initializer=list(graph.initializer))
        branch = helper.make_model(standalone, opset_imports=model.opset_import, ir_version=model.ir_version)
        models[BRANCHES[attribute.name]] = reversals_as_gathers(simplified(branch))
    return models


def simplified(model: Any) -> Any:
    """``model`` through onnx-simplifier (constants folded, every shape static at batch size
    1), for :func:`reversals_as_gathers`, which needs the reversed axis's length. Its
    ``onnxsim`` command, as onnx2tf runs it: in the process that has loaded TensorFlow, the
    library crashes."""
    import onnx

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "branch.onnx")
        onnx.save(model, str(path))
        subprocess.run(["onnxsim", str(path), str(path)], check=True, capture_output=True)
        return onnx.shape_inference.infer_shapes(onnx.load(str(path)))


def reversals_as_gathers(model: Any) -> Any:
    """``model`` with every ``Slice`` that reverses a whole axis (constant ``steps`` -1 from the
    last element to before the first: how ``torch.flip`` exports, for the flip test's mirrored
    images and heatmaps) rewritten as a ``Gather`` of that axis's indices in reverse order.

    onnx2tf 1.29 turns such a slice into the identity, and TensorFlow then merged the
    network on the mirrored image with the one on the image (the flip test silently lost);
    it converts a ``Gather`` through its NCHW -> NHWC change correctly."""
    from onnx import helper, numpy_helper

    constants = {n.output[0]: numpy_helper.to_array(n.attribute[0].t) for n in model.graph.node if n.op_type == "Constant"}
    constants.update({t.name: numpy_helper.to_array(t) for t in model.graph.initializer})
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim] for v in (*model.graph.value_info, *model.graph.input)}
    nodes = []
    for node in model.graph.node:
        given = [constants.get(name) for name in node.input[1:5]]
        if node.op_type == "Slice" and len(given) == 4 and all(v is not None and v.size == 1 for v in given):
            starts, ends, axes, steps = (int(v.reshape(-1)[0]) for v in given)
            shape = shapes.get(node.input[0], [])
            axis = axes % len(shape) if shape else None
            if steps == -1 and starts == -1 and axis is not None and shape[axis] > 0 and ends <= -shape[axis] - 1:
                indices = f"{node.output[0]}/reversed_indices"
                model.graph.initializer.append(numpy_helper.from_array(np.arange(shape[axis] - 1, -1, -1, dtype=np.int64), indices))
                node = helper.make_node("Gather", [node.input[0], indices], list(node.output), name=node.name, axis=axis)
        nodes.append(node)
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    return model


def to_keras(branch: Any, workdir: Path) -> tuple[Any, list[tuple[str, tuple[int, ...]]]]:
    """One branch as onnx2tf's Keras model (NHWC), converted in ``workdir``, and the ONNX
    outputs' names and shapes (static once onnx-simplifier has run on the file)."""
    import onnx
    import onnx2tf

    np.save(workdir / SAMPLE_FILE, np.random.default_rng(0).random((20, 128, 128, 3), dtype=np.float32))
    onnx_file = workdir / "branch.onnx"
    onnx.save(branch, str(onnx_file))
    here = Path.cwd()
    os.chdir(workdir)
    try:  # onnx2tf simplifies the file in place first (the onnxsim command), then converts it
        keras_model = onnx2tf.convert(input_onnx_file_path=str(onnx_file), output_folder_path=str(workdir / "saved"),
                                      disable_model_save=True, non_verbose=True)
    finally:
        os.chdir(here)
    simplified = onnx.shape_inference.infer_shapes(onnx.load(str(onnx_file)))
    outputs = [(o.name, tuple(d.dim_value for d in o.type.tensor_type.shape.dim)) for o in simplified.graph.output]
    return keras_model, outputs


def signature(keras_model: Any, onnx_outputs: list[tuple[str, tuple[int, ...]]], size: tuple[int, int]) -> Any:
    """A ``tf.function`` of ``images`` ``(1, H, W, 3)`` returning the ONNX outputs by name, each
    in the ONNX layout (onnx2tf's NHWC heatmaps transposed back to ``(1, K, h, w)``)."""
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec([1, *size, 3], tf.float32, name="images")])
    def run(images: Any) -> dict[str, Any]:
        values = keras_model(images)
        values = values if isinstance(values, (list, tuple)) else [values]
        named = {}
        for (name, shape), value in zip(onnx_outputs, values):
            if tuple(value.shape) != shape and len(shape) == 4 and tuple(value.shape) == (shape[0], *shape[2:], shape[1]):
                value = tf.transpose(value, [0, 3, 1, 2])
            if tuple(value.shape) != shape:
                raise ValueError(f"output {name!r}: onnx2tf gives shape {tuple(value.shape)}, the ONNX graph {shape}")
            named[name] = value
        return named

    return run


def frozen(run: Any) -> Any:
    """The ``tf.function`` ``run`` with its variables made constants, outputs still by name:
    onnx2tf makes some variables outside its layers, which a SavedModel cannot track."""
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    concrete = run.get_concrete_function()
    constant = convert_variables_to_constants_v2(concrete)
    names = sorted(concrete.structured_outputs)  # the frozen function's flat outputs: the dict's, by key

    @tf.function(input_signature=concrete.structured_input_signature[0])
    def named(images: Any) -> dict[str, Any]:
        return dict(zip(names, constant(images)))

    return named


def to_tflite(onnx_file: Path) -> tuple[bytes, dict[str, str]]:
    """The two-signature float32 TFLite flatbuffer of a poselit ONNX file, and the file's
    metadata (``metadata_props``)."""
    import onnx
    import tensorflow as tf

    model = onnx.load(str(onnx_file))
    props = {p.key: p.value for p in model.metadata_props}
    with tempfile.TemporaryDirectory() as tmp:
        module = tf.Module()
        for name, branch in branch_models(model).items():
            size = tuple(d.dim_value for d in branch.graph.input[0].type.tensor_type.shape.dim[2:])
            workdir = Path(tmp, name)
            workdir.mkdir()
            keras_model, shapes = to_keras(branch, workdir)
            setattr(module, name, frozen(signature(keras_model, shapes, size)))
        saved = Path(tmp, "both")
        tf.saved_model.save(module, str(saved), signatures={name: getattr(module, name) for name in BRANCHES.values()})
        converter = tf.lite.TFLiteConverter.from_saved_model(str(saved), signature_keys=list(BRANCHES.values()))
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
        flatbuffer = converter.convert()  # no optimizations: float32 throughout
        check(flatbuffer, {name: Path(tmp, name, "branch.onnx") for name in BRANCHES.values()})
    return flatbuffer, props


def check(flatbuffer: bytes, branches: dict[str, Path], tolerance: float = 1e-3) -> dict[str, float]:
    """The largest difference of each signature's scores from ONNX Runtime's on its branch,
    on two random images; over ``tolerance`` is a ``ValueError`` (a conversion that changed the
    graph: scores are robust to argmax near-ties, and the flip test averages them). The
    keypoints on real images are ``tests/test_tflite.py``'s check."""
    import onnxruntime as ort
    import tensorflow as tf

    interpreter = tf.lite.Interpreter(model_content=flatbuffer)
    worst = {}
    for name, onnx_file in branches.items():
        session = ort.InferenceSession(str(onnx_file), providers=["CPUExecutionProvider"])
        shape = session.get_inputs()[0].shape
        runner = interpreter.get_signature_runner(name)
        for seed in range(2):
            images = np.random.default_rng(seed).integers(0, 256, shape).astype(np.float32)
            want = dict(zip([o.name for o in session.get_outputs()], session.run(None, {"images": images})))
            got = runner(images=images.transpose(0, 2, 3, 1).copy())
            worst[name] = max(worst.get(name, 0.0), float(np.abs(got["scores"] - want["scores"]).max()))
        if worst[name] > tolerance:
            raise ValueError(f"signature {name!r}: scores differ from ONNX Runtime's by {worst[name]:.3g} (> {tolerance})")
    return worst


def sidecar(onnx_file: Path, props: dict[str, str]) -> dict[str, Any]:
    """The ``.json`` beside the ``.tflite`` file: the ONNX metadata as it is, and where it came from."""
    import onnx2tf
    import tensorflow as tf

    return {"poselit_tflite_format": SIDECAR_FORMAT, "source": onnx_file.name,
            "converter": f"onnx2tf {onnx2tf.__version__}, tensorflow {tf.__version__}", "metadata": props}


def describe(tflite: Path) -> dict[str, Any]:
    """The written file's size and each signature's inputs and outputs (shapes), read back."""
    import tensorflow as tf

    interpreter = tf.lite.Interpreter(model_path=str(tflite))
    signatures = {}
    for key in interpreter.get_signature_list():
        runner = interpreter.get_signature_runner(key)
        details = {**runner.get_input_details(), **runner.get_output_details()}
        signatures[key] = {name: [int(n) for n in d["shape"]] for name, d in details.items()}
    return {"file": str(tflite), "bytes": tflite.stat().st_size, "signatures": signatures}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("onnx", type=Path, help="a poselit ONNX file (poselit zoo export NAME --format onnx)")
    parser.add_argument("--out", type=Path, help="the .tflite file (default: the ONNX file's, .tflite); NAME.json beside it")
    args = parser.parse_args()
    if not args.onnx.is_file():
        parser.error(f"{args.onnx}: no such file (poselit zoo export NAME --format onnx writes one)")
    out = args.out or args.onnx.with_suffix(".tflite")
    try:
        flatbuffer, props = to_tflite(args.onnx.resolve())
    except ValueError as err:
        parser.error(f"{args.onnx}: {err}")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(flatbuffer)
    out.with_suffix(".json").write_text(json.dumps(sidecar(args.onnx, props), indent=1) + "\n")
    print(json.dumps({"from": str(args.onnx), **describe(out)}), flush=True)


if __name__ == "__main__":
    main()
