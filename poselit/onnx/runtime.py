"""Pose models exported to ONNX (:func:`poselit.onnx.export_onnx`), run by ONNX Runtime.

An :class:`OnnxPoseModel` is a drop-in model for :class:`~poselit.predict.Predictor`:
same API, same results as the torch model it was exported from (within 0.01 px)::

    from poselit import Predictor
    from poselit.onnx import OnnxPoseModel

    model = OnnxPoseModel.from_file("luvizon-mobilenetv2-lsp.onnx", threads=1)
    predictor = Predictor(model)  # crops with the file's padding and fill
    pose = predictor("photo.jpg", box=[120, 40, 200, 420])[0]

It needs ``onnxruntime`` only (the ``onnx`` extra: ``pip install -e ".[onnx]"`` in a clone),
runs on the CPU provider, and reads the file's metadata (:class:`~poselit.onnx.metadata.OnnxMetadata`),
whose input description is its :attr:`~OnnxPoseModel.input_spec`: a file that is not ONNX, or
lacks a key, or whose key has the wrong type or an absurd value, or whose metadata
contradicts its graph (a ``size`` other than the graph's input, a skeleton of another number
of joints than its outputs), is a :class:`~poselit.zoo.ZooError` naming the file and the
key, before anything runs. ``from_file(..., card=card)`` (or :meth:`OnnxPoseModel.check_card`)
also checks the metadata against a model card. ``poselit predict --model`` runs the file that
:func:`onnx_file_of` finds in its value (an ``.onnx`` file, or a folder holding only
``model.onnx``) with this class.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from poselit.extras import require
from poselit.files import require_file
from poselit.input_spec import InputSpec, InputSpecFields
from poselit.zoo.cards import CONFIG_FILE, HF_SCHEME, ModelCard, ZooError
from poselit.onnx.metadata import FLIP_TEST, IMAGES, ONNX_FILE, OUTPUTS, OnnxMetadata

LOAD_ERRORS = ("Fail", "InvalidArgument", "InvalidGraph", "InvalidProtobuf", "NoModel", "NotImplemented")
"""ONNX Runtime's exceptions (``onnxruntime.capi.onnxruntime_pybind11_state``) for a file it
cannot load as a model: damaged, empty, not ONNX, or using operators it lacks."""


def onnx_file_of(source: str | Path) -> Path | None:
    """The ONNX file a model source names (``poselit predict --model``), or ``None`` when it
    names a torch model (a zoo name, ``hf://`` reference or export folder).

    A file (any file: one that is not a poselit ONNX model is refused when loaded, not
    mistaken for a zoo name) or a path ending in ``.onnx`` is that file; a folder holding
    ``model.onnx`` and no ``config.json`` (``poselit zoo export NAME --format onnx``) is its
    ``model.onnx``. A folder holding both is the torch export it describes: name its
    ``model.onnx`` to run that.

    >>> onnx_file_of("runs/export/bulat.onnx").name, onnx_file_of("bulat-mobilenetv2-lsp")
    ('bulat.onnx', None)
    """
    if str(source).startswith(HF_SCHEME):
        return None
    path = Path(source).expanduser()
    if path.is_dir():
        onnx_file = path / ONNX_FILE
        return onnx_file if onnx_file.is_file() and not (path / CONFIG_FILE).is_file() else None
    return path if path.is_file() or path.suffix.lower() == ".onnx" else None


class OnnxPoseModel(InputSpecFields):
    """An exported pose model in an ONNX Runtime session: a :class:`~poselit.input_spec.PoseModel`
    like a :class:`~poselit.models.base.PoseLitModule` (``input_spec``, ``eval``, ``to``,
    ``device``, ``flip_test``, ``predict_poses``; and ``input_size``, ``padding``, ``fill``,
    ``skeleton``, the spec's fields), nothing more.

    Build it with :meth:`from_file`.

    Args:
        session: The ``onnxruntime.InferenceSession`` of the file.
        metadata: The file's metadata.
        path: The file, named in errors.
    """

    runtime = "onnxruntime"
    """What runs it (:attr:`poselit.predict.Predictor.runtime`)."""
    runtime_label = "ONNX Runtime"
    """Its runtime's name in messages."""

    def __init__(self, session: Any, metadata: OnnxMetadata, path: Path) -> None:
        self.session = session
        self.metadata = metadata
        self.path = path
        self.flip_test = metadata.flip_test
        self.precision = metadata.precision
        self.output_names = [output.name for output in session.get_outputs()]

    @classmethod
    def from_file(
        cls, path: str | Path, *, threads: int | None = None, card: ModelCard | None = None
    ) -> OnnxPoseModel:
        """Load an ONNX file written by :func:`~poselit.onnx.export_onnx`.

        Args:
            path: The ``.onnx`` file, or a folder holding ``model.onnx``.
            threads: ONNX Runtime's intra-op threads; ``None``: its default (one per
                physical core).
            card: A model card the metadata must match (see :meth:`check_card`).

        Raises:
            FileNotFoundError: No such file.
            ZooError: Not an ONNX file, not one of poselit's, or metadata missing, ill-typed
                or not matching ``card``; the message names the file and the key or field.
        """
        ort = require("onnxruntime", "onnx", "Running ONNX models")
        from onnxruntime.capi import onnxruntime_pybind11_state as states

        path = Path(path)
        path = require_file(path / ONNX_FILE if path.is_dir() else path, "ONNX model")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or 0
        options.inter_op_num_threads = 1
        try:
            session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except tuple(getattr(states, name) for name in LOAD_ERRORS) as err:
            reason = str(err).rpartition(" failed:")[2].strip() or str(err)  # not the path a second time
            raise ZooError(f"{path}: not a readable ONNX model ({reason})") from None
        metadata = OnnxMetadata.from_props(session.get_modelmeta().custom_metadata_map, str(path))
        inputs = sorted(i.name for i in session.get_inputs())
        outputs = [o.name for o in session.get_outputs()]
        if inputs != sorted([IMAGES, FLIP_TEST]) or outputs[:2] != list(OUTPUTS[:2]):
            raise ZooError(
                f"{path}: the graph's inputs {inputs} and outputs {outputs} are not those of a poselit "
                f"pose model (inputs {IMAGES!r}, {FLIP_TEST!r}; outputs {', '.join(map(repr, OUTPUTS))})"
            )
        check_graph(session, metadata.spec, path)
        model = cls(session, metadata, path)
        if card is not None:
            model.check_card(card)
        return model

    def check_card(self, card: ModelCard) -> None:
        """A :class:`~poselit.zoo.ZooError` naming the file and the field when the input
        description of ``card``'s model (size, mean, std, padding, fill, skeleton) differs
        from the metadata's."""
        self.metadata.check_card(card, str(self.path))

    # --- what Predictor uses of a model ---------------------------------------------------

    @property
    def input_spec(self) -> InputSpec:
        """The model's input description, as the file's metadata records it (checked
        against the graph)."""
        return self.metadata.spec

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")

    def eval(self) -> OnnxPoseModel:
        """Nothing to switch: the graph is the inference graph."""
        return self

    def to(self, device: str | torch.device) -> OnnxPoseModel:
        """Itself on the CPU; another device is a ``ValueError`` (the runtime's CPU kernels run it)."""
        if torch.device(device).type != "cpu":
            raise ValueError(f"{self.path}: {type(self).__name__} runs on the CPU ({self.runtime_label}), not on {device}")
        return self

    def crops_array(self, images: torch.Tensor | np.ndarray) -> np.ndarray:
        """``images`` as a NumPy array, checked to be ``(B, 3, H, W)`` crops of ``input_size``."""
        array = images.detach().cpu().numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
        if array.ndim != 4 or array.shape[1:] != (3, *self.input_size):
            raise ValueError(
                f"{self.path}: expected images (B, 3, {self.input_size[0]}, {self.input_size[1]}), got shape {array.shape}"
            )
        return array

    def predict_poses(self, images: torch.Tensor | np.ndarray, flip_test: bool | None = None) -> dict[str, torch.Tensor]:
        """:meth:`~poselit.models.base.PoseLitModule.predict_poses` through ONNX Runtime.

        Args:
            images: ``(B, 3, H, W)`` uint8 or 0-255 float crops of ``input_size``.
            flip_test: Average with the mirrored images' prediction; ``None``: the model's
                default (:attr:`flip_test`).

        Returns:
            float32 ``keypoints`` ``(B, K, 2)`` in input pixels and ``scores`` ``(B, K)``
            (flip-averaged as the torch model does), and for heatmap methods the
            ``heatmaps`` of the unmirrored images.
        """
        array = self.crops_array(images)
        flip = self.flip_test if flip_test is None else flip_test
        feeds = {IMAGES: np.ascontiguousarray(array, dtype=np.float32), FLIP_TEST: np.array(bool(flip))}
        outputs = {name: torch.from_numpy(value) for name, value in zip(self.output_names, self.session.run(None, feeds))}
        joints = outputs[OUTPUTS[0]].shape[1]  # a graph of format 1 does not declare it: checked here
        if joints != self.input_spec.num_joints:
            raise ZooError(_joints_message(self.path, self.input_spec, joints))
        return outputs


def check_graph(session: Any, spec: InputSpec, path: Path) -> None:
    """A :class:`~poselit.zoo.ZooError` naming ``path`` and the metadata key when the graph
    the ONNX Runtime ``session`` holds contradicts ``spec``: its input ``images`` is not
    ``(batch, 3, *spec.size)``, or its outputs have another number of joints than the
    skeleton (where the graph declares them; files of metadata format 1 declare no joint
    axis, checked on their outputs instead)."""
    (images,) = (i for i in session.get_inputs() if i.name == IMAGES)
    shape = list(images.shape)
    declared = [None if isinstance(d, str) or d is None else int(d) for d in shape]
    if len(shape) != 4 or declared[1] != 3 or declared[2:] != list(spec.size):
        raise ZooError(
            f"{path}: metadata key 'size' is {list(spec.size)} but the graph's input {IMAGES!r} has shape "
            f"{shape} (expected [batch, 3, {spec.size[0]}, {spec.size[1]}])"
        )
    for output in session.get_outputs()[:2]:  # keypoints (B, K, 2), scores (B, K)
        joints = output.shape[1] if len(output.shape) > 1 else None
        if isinstance(joints, int) and joints != spec.num_joints:
            raise ZooError(_joints_message(path, spec, joints, output.name))


def _joints_message(path: Path, spec: InputSpec, joints: int, output: str = OUTPUTS[0]) -> str:
    return (
        f"{path}: metadata key 'skeleton' is {spec.skeleton.name!r} ({spec.num_joints} joints) but the graph's "
        f"output {output!r} has {joints} joints"
    )


__all__ = ["LOAD_ERRORS", "OnnxPoseModel", "check_graph", "onnx_file_of"]
