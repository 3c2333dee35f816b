"""Pose models converted to TFLite, run by LiteRT with its XNNPACK delegate: MoveNet's runtime.

A :class:`TflitePoseModel` is a drop-in model for :class:`~poselit.predict.Predictor`, as
:class:`~poselit.onnx.OnnxPoseModel` is, and gives the ONNX file's keypoints (within
0.001 px on LSP test images, ``tests/test_tflite.py``)::

    from poselit import Predictor
    from poselit.tflite import TflitePoseModel

    model = TflitePoseModel.from_file("luvizon-mobilenetv2-lsp.tflite", threads=1)
    predictor = Predictor(model)  # crops with the file's padding and fill
    pose = predictor("photo.jpg", box=[120, 40, 200, 420])[0]

The file is converted once from the ONNX export (``poselit zoo export NAME --format onnx``)
by ``tools/onnx_to_tflite.py``, in a TensorFlow environment of its own: one TFLite file with
two signatures, ``plain`` and ``flip`` (the ONNX graph's two branches: the flip test and its
merge are inside, exactly as in ONNX Runtime), each taking one crop, ``images`` float32
``(1, H, W, 3)`` RGB 0-255, and returning ``keypoints``, ``scores`` and, for heatmap methods,
``heatmaps``, as the ONNX graph does. Beside it, ``NAME.json`` (:func:`sidecar_path`) holds
the ONNX file's metadata as it is (:class:`~poselit.onnx.metadata.OnnxMetadata`: input size,
mean, std, padding, fill, skeleton, flip test), checked on loading as the ONNX runtime checks
it, and against the graph's shapes: a file that is not TFLite, lacks its ``.json``, or whose
signatures or shapes disagree with it is a :class:`~poselit.zoo.ZooError` naming the file,
before anything runs.

It needs ``ai-edge-litert`` (the ``litert`` extra: ``pip install -e ".[litert]"`` in a
clone). A batch runs one crop per call: XNNPACK's kernels are made for batch 1.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from poselit.extras import require
from poselit.files import load_json, require_file
from poselit.onnx.metadata import IMAGES, OUTPUTS, OnnxMetadata
from poselit.onnx.runtime import OnnxPoseModel
from poselit.zoo.cards import ZooError

SIDECAR_FORMAT = 1
"""Layout of the ``.json`` beside a ``.tflite`` file: ``poselit_tflite_format`` (this
number), ``metadata`` (the ONNX file's ``metadata_props``, JSON text values), ``source`` and
``converter`` (what it was made from and with)."""

SIGNATURES = ("plain", "flip")
"""The file's signatures: ``predict_poses`` without and with the flip test."""


def converted_folder() -> Path:
    """``$POSELIT_TFLITE``, else ``~/.cache/poselit/tflite``: where the zoo models' converted
    files go (``NAME.tflite`` and ``NAME.json``), for the benchmarks and the real-image tests."""
    return Path(os.environ.get("POSELIT_TFLITE") or Path.home() / ".cache" / "poselit" / "tflite").expanduser()


def sidecar_path(path: str | Path) -> Path:
    """The ``.json`` holding a ``.tflite`` file's metadata: same folder, same stem.

    >>> sidecar_path("runs/export/luvizon.tflite").as_posix()
    'runs/export/luvizon.json'
    """
    return Path(path).with_suffix(".json")


def read_sidecar(path: Path) -> OnnxMetadata:
    """The metadata in ``path`` (a :func:`sidecar_path`), checked: a missing or unreadable
    file, a newer layout or a bad key is a :class:`~poselit.zoo.ZooError` naming it."""
    if not path.is_file():
        raise ZooError(f"{path}: no such metadata file beside the TFLite model (tools/onnx_to_tflite.py writes both)")
    sidecar = load_json(path, "TFLite metadata", ZooError)
    if not isinstance(sidecar, dict) or not isinstance(sidecar.get("metadata"), dict):
        raise ZooError(f"{path}: expected a JSON object with a 'metadata' object (tools/onnx_to_tflite.py writes it)")
    layout = sidecar.get("poselit_tflite_format")
    if not isinstance(layout, int) or isinstance(layout, bool) or not 1 <= layout <= SIDECAR_FORMAT:
        raise ZooError(f"{path}: 'poselit_tflite_format' is {layout!r}; this poselit reads 1 to {SIDECAR_FORMAT}")
    return OnnxMetadata.from_props(sidecar["metadata"], str(path))


class TflitePoseModel(OnnxPoseModel):
    """A pose model converted to TFLite (see the module docs), in a LiteRT interpreter: what
    :class:`~poselit.predict.Predictor` uses of a model, as :class:`~poselit.onnx.OnnxPoseModel`
    offers it (its input description, ``flip_test``, ``check_card``, ``predict_poses``).

    Build it with :meth:`from_file`.

    Args:
        interpreter: The ``ai_edge_litert.interpreter.Interpreter`` of the file.
        metadata: The file's metadata (from its ``.json``).
        path: The file, named in errors.

    Raises:
        ZooError: The interpreter's signatures or shapes are not those ``metadata`` describes
            (:func:`signature_problem`).
    """

    runtime = "litert"
    """What runs it (:attr:`poselit.predict.Predictor.runtime`)."""
    runtime_label = "LiteRT"

    def __init__(self, interpreter: Any, metadata: OnnxMetadata, path: Path) -> None:
        self.interpreter = interpreter
        self.metadata = metadata
        self.path = path
        self.flip_test = metadata.flip_test
        self.precision = metadata.precision
        problem = signature_problem(interpreter, self.input_size, len(self.skeleton.joints))
        if problem:
            raise ZooError(f"{path}: {problem}, not the model its metadata {sidecar_path(path).name} describes")
        self.runners = {key: interpreter.get_signature_runner(key) for key in SIGNATURES}
        self.output_names = [name for name in OUTPUTS if name in self.runners["plain"].get_output_details()]

    @classmethod
    def from_file(cls, path: str | Path, *, threads: int | None = None, card: Any = None) -> TflitePoseModel:
        """Load a ``.tflite`` file written by ``tools/onnx_to_tflite.py``, and its ``.json``.

        Args:
            path: The ``.tflite`` file.
            threads: The interpreter's threads; ``None``: LiteRT's default.
            card: A :class:`~poselit.zoo.ModelCard` the metadata must match (see :meth:`check_card`).

        Raises:
            FileNotFoundError: No such file.
            ZooError: Not a TFLite file, no readable ``.json`` beside it, metadata missing or
                ill-typed, signatures or shapes not those the metadata describes, or not
                matching ``card``; the message names the file.
        """
        litert = require("ai_edge_litert.interpreter", "litert", "Running TFLite models")
        path = require_file(path, "TFLite model")
        metadata = read_sidecar(sidecar_path(path))
        try:
            interpreter = litert.Interpreter(model_path=str(path), num_threads=threads)
        except ValueError as err:
            raise ZooError(f"{path}: not a readable TFLite model ({str(err).splitlines()[0]})") from None
        model = cls(interpreter, metadata, path)
        if card is not None:
            model.check_card(card)
        return model

    def predict_poses(self, images: torch.Tensor | np.ndarray, flip_test: bool | None = None) -> dict[str, torch.Tensor]:
        """:meth:`~poselit.models.base.PoseLitModule.predict_poses` through LiteRT, one crop per
        call (the ``flip`` signature when the flip test is on).

        Args:
            images: ``(B, 3, H, W)`` uint8 or 0-255 float crops of ``input_size``.
            flip_test: Average with the mirrored images' prediction; ``None``: the model's
                default (:attr:`flip_test`).

        Returns:
            float32 ``keypoints`` ``(B, K, 2)`` in input pixels and ``scores`` ``(B, K)``, and
            for heatmap methods the ``heatmaps`` of the unmirrored images, as the ONNX file gives them.
        """
        array = self.crops_array(images)
        runner = self.runners["flip" if (self.flip_test if flip_test is None else flip_test) else "plain"]
        crops = np.ascontiguousarray(array.transpose(0, 2, 3, 1), dtype=np.float32)
        results = [runner(**{IMAGES: crop[None]}) for crop in crops]
        return {name: torch.from_numpy(np.concatenate([r[name] for r in results])) for name in self.output_names}


def signature_problem(interpreter: Any, input_size: tuple[int, int], joints: int) -> str | None:
    """What in the interpreter's signatures disagrees with a model of ``input_size`` ``(H, W)``
    and ``joints`` joints (``None``: nothing): expected exactly :data:`SIGNATURES`, each with
    input ``images`` ``(1, H, W, 3)`` and outputs ``keypoints`` ``(1, K, 2)``, ``scores``
    ``(1, K)`` [and ``heatmaps`` ``(1, K, h, w)``]."""
    keys = sorted(interpreter.get_signature_list())
    if keys != sorted(SIGNATURES):
        return f"signatures {keys} (expected {list(SIGNATURES)})"
    height, width = input_size
    for key in SIGNATURES:
        runner = interpreter.get_signature_runner(key)
        inputs = {name: tuple(int(n) for n in d["shape"]) for name, d in runner.get_input_details().items()}
        outputs = {name: tuple(int(n) for n in d["shape"]) for name, d in runner.get_output_details().items()}
        if inputs != {IMAGES: (1, height, width, 3)}:
            return f"signature {key!r} takes {inputs} (expected {IMAGES} (1, {height}, {width}, 3))"
        expected = {"keypoints": (1, joints, 2), "scores": (1, joints)}
        heatmaps = outputs.get("heatmaps")
        if heatmaps is not None and len(heatmaps) == 4 and heatmaps[:2] == (1, joints):
            expected["heatmaps"] = heatmaps
        if outputs != expected:
            return f"signature {key!r} gives {outputs} (expected {expected}, {joints} joints)"
    return None


__all__ = [
    "SIDECAR_FORMAT",
    "SIGNATURES",
    "TflitePoseModel",
    "converted_folder",
    "read_sidecar",
    "sidecar_path",
    "signature_problem",
]
