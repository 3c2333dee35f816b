"""Checks the TFLite files of ``tools/movenet_tflite.py`` against TensorFlow.js itself: the
same MoveNet input, letterboxed from real images by ``benchmarks/movenet.py``, through the
TF.js graph model (``tools/tfjs_activations.mjs``, TensorFlow.js's CPU backend in Node.js)
and through the ``.tflite`` file (LiteRT, as the benchmarks run it); the 17 keypoints
``(y, x, score)`` of both are compared.

Needs Node.js with TensorFlow.js (see ``tools/tfjs_activations.mjs``) and the ``movenet``
extra::

    NODE_PATH=/tmp/tfjs/node_modules python tools/movenet_tfjs_check.py package/models \\
        ../shared/data/lsp/images/im1001.jpg ../shared/data/lsp/images/im1002.jpg

Prints one JSON line per model and image (the largest differences: ``y`` and ``x`` in
input pixels, ``score``) and one summary line per model with the largest over the images.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))  # benchmarks/movenet.py

from movenet import DEFAULT_DIR, MODELS, MoveNet, model_path  # noqa: E402
from poselit.predict import load_image  # noqa: E402

TFJS_RUNNER = Path(__file__).resolve().parent / "tfjs_activations.mjs"


def tfjs_keypoints(model_json: Path, square: np.ndarray, folder: Path) -> np.ndarray:
    """TensorFlow.js's ``(17, 3)`` output of the graph ``model_json`` on the uint8 input ``square``."""
    size = square.shape[0]
    square.tofile(folder / "input.raw")
    subprocess.run(["node", str(TFJS_RUNNER), str(model_json), str(folder / "input.raw"), str(size), str(size),
                    str(folder / "out.bin"), "Identity"], check=True, capture_output=True, timeout=600)
    return np.fromfile(folder / "out.bin", "<f4").reshape(17, 3)


def differences(tflite: np.ndarray, tfjs: np.ndarray, size: int) -> dict[str, float]:
    """Largest differences of ``y`` and ``x`` (input pixels) and of the scores."""
    diff = np.abs(tflite.astype(np.float64) - tfjs)
    return {"y_px": float(diff[:, 0].max() * size), "x_px": float(diff[:, 1].max() * size), "score": float(diff[:, 2].max())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models_dir", type=Path, help="the npm package's models/ folder (movenet-*.json and .bin)")
    parser.add_argument("images", type=Path, nargs="+")
    parser.add_argument("--movenet-dir", type=Path, default=DEFAULT_DIR, help="folder of the .tflite files")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp())
    for name in MODELS:
        model = MoveNet(model_path(name, args.movenet_dir), threads=1)
        worst = {"y_px": 0.0, "x_px": 0.0, "score": 0.0}
        for image in args.images:
            square, _ = model.letterbox(load_image(image))
            diff = differences(model.run(square), tfjs_keypoints(args.models_dir / f"{name}.json", square, folder), model.size)
            worst = {key: max(worst[key], diff[key]) for key in worst}
            print(json.dumps({"model": name, "image": image.name, **diff}), flush=True)
        print(json.dumps({"model": name, "images": len(args.images), "max": worst}), flush=True)


if __name__ == "__main__":
    main()
