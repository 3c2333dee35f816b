"""A torch pose model run by ONNX Runtime: exported once, kept in a cache folder.

:class:`~poselit.predict.Predictor` runs a CPU model through ONNX Runtime by default
(``runtime="auto"``), because for the same model and numbers it is about twice as fast as
eager torch on a CPU (``benchmarks/latency.py``). :func:`onnx_runner` exports the model the
first time (seconds: two traces, see :mod:`poselit.onnx.export`) to
``<cache>/onnx/<key>.onnx``, where the key is a hash of everything the graph depends on
(the class, the input description, the constructor's settings, the codec (its decoding),
every weight, the poselit version and opset), and loads
the cached file every later time. The cache folder is ``$POSELIT_CACHE``, else
``~/.cache/poselit``.

The file is a snapshot: weights changed afterwards (training on) are not in it; build a
new ``Predictor`` (a new key, a new file).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from poselit import __version__
from poselit.atomic import make_folder
from poselit.onnx.export import CHANNEL_BLOCK, DEFAULT_OPSET, GRAPH_REVISION, export_onnx
from poselit.onnx.metadata import OnnxMetadata
from poselit.onnx.runtime import OnnxPoseModel
from poselit.zoo.cards import ZooError

if TYPE_CHECKING:
    from poselit.models.base import PoseLitModule


def cache_folder() -> Path:
    """``$POSELIT_CACHE``, else ``~/.cache/poselit``: downloaded and derived files."""
    return Path(os.environ.get("POSELIT_CACHE") or Path.home() / ".cache" / "poselit").expanduser()


def model_key(model: PoseLitModule) -> str:
    """A hash (24 hex digits) of what an exported graph of ``model`` depends on: its class,
    input description, constructor settings (``hparams``) and codec (two models with the
    same weights may decode differently, e.g. ``refine``), weights and buffers, the poselit
    version, opset, channel block and graph revision.

    >>> import poselit
    >>> model = poselit.zoo.load("luvizon-tiny-lsp-demo")
    >>> key = model_key(model)
    >>> len(key), key == model_key(poselit.zoo.load("luvizon-tiny-lsp-demo"))
    (24, True)
    """
    digest = hashlib.sha256()
    describe = OnnxMetadata.of_model(model).to_props()
    settings = [dict(getattr(model, "hparams", {})), repr(getattr(model, "codec", None))]
    revision = [__version__, DEFAULT_OPSET, CHANNEL_BLOCK, GRAPH_REVISION]
    digest.update(json.dumps([describe, settings, *revision], sort_keys=True, default=str).encode())
    for name, tensor in model.state_dict().items():
        tensor = tensor.detach().cpu().contiguous().reshape(-1)
        digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)}".encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()[:24]


def onnx_runner(model: PoseLitModule, *, threads: int | None = None) -> OnnxPoseModel:
    """``model`` (a float32 CPU model) as an :class:`~poselit.onnx.runtime.OnnxPoseModel`
    with ``threads`` intra-op threads (``None``: torch's ``get_num_threads()``), from the
    cache when exported before, else exported there now (see the module docs)."""
    path = cache_folder() / "onnx" / f"{type(model).__name__.lower()}-{model_key(model)}.onnx"
    threads = threads or torch.get_num_threads()
    if path.is_file():
        try:
            return OnnxPoseModel.from_file(path, threads=threads)
        except ZooError:  # damaged in the cache (files are written whole, but disks fail): export again
            pass
    make_folder(path.parent)
    unchecked = export_onnx(model, path.with_name(f"{path.stem}.unchecked.onnx"))
    try:
        check_batch_free(OnnxPoseModel.from_file(unchecked, threads=threads), model)
    except ValueError:
        unchecked.unlink(missing_ok=True)
        raise
    unchecked.replace(path)  # only checked files in the cache
    return OnnxPoseModel.from_file(path, threads=threads)


def check_batch_free(runner: OnnxPoseModel, model: PoseLitModule) -> None:
    """A ``ValueError`` when the exported graph does not answer a batch of 3 (traced at 2)
    with 3 poses of the model's joints: a model whose Python code fixed the batch size
    while being traced (e.g. ``expand(len(images), ...)``) runs in torch, not from a file."""
    images = torch.rand(3, 3, *runner.input_size) * 255
    try:
        keypoints = runner.predict_poses(images, flip_test=False)["keypoints"]
    except Exception as err:  # noqa: BLE001 (ONNX Runtime raises its own types for a wrong shape)
        raise ValueError(f"{type(model).__name__} does not run at batch 3 once exported: {err}") from None
    if tuple(keypoints.shape) != (3, model.num_joints, 2):
        raise ValueError(
            f"{type(model).__name__} answers a batch of 3 with keypoints {tuple(keypoints.shape)} once exported"
        )


__all__ = ["cache_folder", "check_batch_free", "model_key", "onnx_runner"]
