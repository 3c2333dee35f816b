"""What runs a torch model inside :class:`~poselit.predict.Predictor`: ONNX Runtime by
default on the CPU (exported once to the cache, :mod:`poselit.onnx.cache`), eager torch on
request, with a GPU or autocast, or when the model cannot be exported faithfully."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

import poselit.zoo
from poselit.onnx import OnnxPoseModel
from poselit.onnx.cache import cache_folder, model_key, onnx_runner
from poselit.predict import Predictor, choose_runtime
from tiny_models import ConstantModel, TinyHeatmapModel

pytestmark = pytest.mark.usefixtures("one_thread")

PHOTO = np.random.default_rng(0).integers(0, 255, (120, 90, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def demo():
    return poselit.zoo.load("luvizon-tiny-lsp-demo")


def test_the_default_on_a_cpu_is_onnx_runtime_with_the_same_poses_as_torch(demo):
    fast, eager = Predictor(demo), Predictor(demo, runtime="torch")
    assert fast.runtime == "onnxruntime" and isinstance(fast.model, OnnxPoseModel)
    assert eager.runtime == "torch" and eager.model is demo
    for box in (None, [10, 5, 60, 100]):
        [a], [b] = fast(PHOTO, box=box), eager(PHOTO, box=box)
        np.testing.assert_allclose(a.keypoints, b.keypoints, atol=0.01)
        np.testing.assert_allclose(a.scores, b.scores, atol=1e-4)


def test_the_export_is_cached_by_content_and_a_damaged_file_is_exported_again(demo):
    onnx_runner(demo)
    [path] = (cache_folder() / "onnx").glob(f"*{model_key(demo)}.onnx")
    written = path.stat().st_mtime_ns
    assert Predictor(demo).model.path == path and path.stat().st_mtime_ns == written  # loaded, not exported
    other = poselit.zoo.load("luvizon-tiny-lsp-demo")
    with torch.no_grad():
        next(other.parameters()).add_(1.0)
    assert model_key(other) != model_key(demo)  # other weights, another file
    tiny = TinyHeatmapModel()
    decoded_otherwise = TinyHeatmapModel()
    decoded_otherwise.load_state_dict(tiny.state_dict())
    decoded_otherwise.codec = dataclasses.replace(tiny.codec, refine="dark")
    assert model_key(decoded_otherwise) != model_key(tiny)  # same weights, other decoding, another file
    path.write_bytes(b"not onnx")
    assert Predictor(demo).runtime == "onnxruntime" and path.stat().st_size > 1000


def test_the_runtime_is_chosen_by_argument_environment_autocast_and_model(demo, monkeypatch):
    assert Predictor(demo, autocast=True).runtime == "torch"
    monkeypatch.setenv("POSELIT_RUNTIME", "torch")
    assert Predictor(demo).runtime == "torch"
    assert Predictor(demo, runtime="onnx").runtime == "onnxruntime"  # the argument wins
    monkeypatch.setenv("POSELIT_RUNTIME", "tensorrt")
    with pytest.raises(ValueError, match="runtime must be one of auto, torch, onnx, got 'tensorrt'"):
        Predictor(demo)
    onnx_model = Predictor(demo, runtime="onnx").model
    with pytest.raises(ValueError, match="ONNX model: it runs in ONNX Runtime, not torch"):
        Predictor(onnx_model, runtime="torch")
    with pytest.raises(ValueError, match="float32 on the CPU"):
        choose_runtime(demo, "onnx", autocast=True)


def test_a_model_whose_trace_fixes_the_batch_runs_in_torch_with_a_warning_or_fails_when_forced():
    model = ConstantModel(torch.full((1, 14, 2), 20.0), input_size=(64, 64), flip_test=False)  # expand(len(images))
    with pytest.warns(UserWarning, match="ConstantModel runs in torch, not ONNX Runtime: .* batch of 3"):
        predictor = Predictor(model)
    assert predictor.runtime == "torch" and predictor.model is model
    assert not list((cache_folder() / "onnx").glob("constantmodel-*"))  # nothing unchecked left in the cache
    with pytest.raises(ValueError, match="batch of 3"):
        Predictor(model, runtime="onnx")
