"""TFLite models run by LiteRT (:mod:`poselit.tflite`), converted by ``tools/onnx_to_tflite.py``.

Always: a tiny heatmap model converted once into ``tests/fixtures/tiny_heatmap.tflite``
(+ ``.json``) gives the torch model's keypoints within 0.01 px and scores within 1e-3,
without and with the flip test (``tiny_heatmap_expected.npz``: the crops and the torch
model's outputs, recorded when the file was made), through :class:`TflitePoseModel` and
through :class:`~poselit.predict.Predictor`; bad files and metadata are errors naming the
file. When the zoo models' converted files are present (:func:`~poselit.tflite.converted_folder`) and ``POSELIT_DATA`` is set: their keypoints equal ONNX
Runtime's on real LSP test images within :data:`REAL_TOLERANCE`.

Remake the fixture (after a change of the converter or of the ONNX graph)::

    python tests/test_tflite.py /tmp/tiny          # the tiny model's ONNX file + expected outputs
    PATH=/work/ext/tfvenv/bin:$PATH python tools/onnx_to_tflite.py /tmp/tiny/tiny_heatmap.onnx \\
        --out tests/fixtures/tiny_heatmap.tflite
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from poselit.predict import Predictor
from poselit.zoo.cards import ZooError

litert = pytest.importorskip("ai_edge_litert.interpreter")

from poselit.tflite import TflitePoseModel, converted_folder, sidecar_path  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")

FIXTURES = Path(__file__).resolve().parent / "fixtures"
TINY = FIXTURES / "tiny_heatmap.tflite"
EXPECTED = FIXTURES / "tiny_heatmap_expected.npz"
KEYPOINT_TOLERANCE, SCORE_TOLERANCE = 0.01, 1e-3
"""px, and score units: LiteRT vs torch on the fixture."""
REAL_TOLERANCE = 0.05
"""px: LiteRT vs ONNX Runtime on real images (measured: under 0.001)."""
ZOO_MODELS = ("luvizon-mobilenetv2-lsp", "bulat-mobilenetv2-lsp")


def tiny_model():
    """The fixture's torch model: a tiny heatmap model, as if trained a little, with a crop
    margin and fill other than the defaults."""
    from tiny_models import TinyHeatmapModel, as_if_trained

    torch.manual_seed(0)
    model = TinyHeatmapModel(input_size=(32, 32), padding=1.4, fill=7)
    crops = torch.randint(0, 256, (4, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    return as_if_trained(model, crops)


def make_fixture(folder: Path) -> None:
    """Write ``folder/tiny_heatmap.onnx`` (for the converter) and :data:`EXPECTED`: crops and
    the torch model's keypoints and scores on them, without and with the flip test, and heatmaps."""
    from poselit.data.synthetic import random_pose, render_figure
    from poselit.onnx import OUTPUTS, export_onnx

    model = tiny_model()
    rng = np.random.default_rng(2)
    figures = [render_figure(random_pose(rng, 32, 32), np.zeros(14, bool), rng, 32, 32) for _ in range(3)]
    crops = np.stack(figures)[..., ::-1].transpose(0, 3, 1, 2).copy()  # BGR -> RGB, (B, 3, H, W)
    expected = {"crops": crops}
    with torch.no_grad():
        for flip in (False, True):
            outputs = model.predict_poses(torch.from_numpy(crops), flip_test=flip)
            expected.update({f"{name}_{'flip' if flip else 'plain'}": outputs[name].numpy() for name in OUTPUTS[:2]})
    expected["heatmaps"] = outputs["heatmaps"].numpy()  # of the unmirrored crops, flip test or not
    folder.mkdir(parents=True, exist_ok=True)
    export_onnx(model, folder / "tiny_heatmap.onnx")
    np.savez_compressed(EXPECTED, **expected)


@pytest.fixture(scope="module")
def tiny() -> TflitePoseModel:
    return TflitePoseModel.from_file(TINY, threads=1)


def test_the_fixture_is_small_and_says_where_it_came_from():
    assert TINY.stat().st_size <= 200_000
    sidecar = json.loads(sidecar_path(TINY).read_text())
    assert sidecar["source"] == "tiny_heatmap.onnx" and sidecar["converter"].startswith("onnx2tf")


@pytest.mark.parametrize("flip_test", [False, True])
def test_litert_gives_the_torch_models_poses(tiny, flip_test):
    expected = np.load(EXPECTED)
    tag = "flip" if flip_test else "plain"
    outputs = tiny.predict_poses(torch.from_numpy(expected["crops"]), flip_test=flip_test)
    assert set(outputs) == {"keypoints", "scores", "heatmaps"}
    np.testing.assert_allclose(outputs["keypoints"].numpy(), expected[f"keypoints_{tag}"], atol=KEYPOINT_TOLERANCE)
    np.testing.assert_allclose(outputs["scores"].numpy(), expected[f"scores_{tag}"], atol=SCORE_TOLERANCE)
    np.testing.assert_allclose(outputs["heatmaps"].numpy(), expected["heatmaps"], atol=1e-4)
    # the flip test changes the result (else this test could not tell the signatures apart)
    other = expected[f"keypoints_{'plain' if flip_test else 'flip'}"]
    assert np.abs(other - expected[f"keypoints_{tag}"]).max() > KEYPOINT_TOLERANCE


def test_the_metadata_is_the_models_input_description(tiny):
    model = tiny_model()
    assert tiny.input_size == (32, 32) and (tiny.padding, tiny.fill) == (1.4, 7) and tiny.skeleton == model.skeleton
    assert tiny.flip_test == model.flip_test and tiny.device.type == "cpu"


@pytest.mark.parametrize("flip_test", [False, True])
def test_predictor_runs_it_in_litert_and_maps_poses_back(tiny, flip_test):
    """Each crop given as a whole image of the input's size: the crop is the image itself, so
    the poses in image pixels are the recorded ones."""
    expected = np.load(EXPECTED)
    images = list(expected["crops"].transpose(0, 2, 3, 1))
    predictor = Predictor(tiny, flip_test=flip_test, batch_size=2)
    poses = predictor(images)
    assert predictor.runtime == "litert" and (predictor.padding, predictor.fill) == (1.4, 7)
    tag = "flip" if flip_test else "plain"
    np.testing.assert_allclose(np.stack([p.keypoints for p in poses]), expected[f"keypoints_{tag}"], atol=KEYPOINT_TOLERANCE)
    with pytest.raises(ValueError, match="TFLite model: it runs in LiteRT, not torch"):
        Predictor(tiny, runtime="torch")


def test_it_runs_on_the_cpu_only_and_checks_the_crop_shape(tiny):
    assert tiny.to("cpu") is tiny
    with pytest.raises(ValueError, match="runs on the CPU"):
        tiny.to("cuda")
    with pytest.raises(ValueError, match=r"expected images \(B, 3, 32, 32\)"):
        tiny.predict_poses(torch.zeros(1, 3, 16, 16))


def _copy(tmp_path: Path, metadata_changes: dict | None = None, sidecar_changes: dict | None = None) -> Path:
    """The fixture copied to ``tmp_path``, its ``.json`` changed."""
    path = tmp_path / "model.tflite"
    shutil.copy(TINY, path)
    sidecar = json.loads(sidecar_path(TINY).read_text())
    sidecar["metadata"].update({k: json.dumps(v) for k, v in (metadata_changes or {}).items()})
    sidecar.update(sidecar_changes or {})
    sidecar_path(path).write_text(json.dumps(sidecar))
    return path


@pytest.mark.parametrize(
    "metadata, sidecar, message",
    [
        ({"size": [64, 64]}, None, r"signature 'plain' takes .*\(expected images \(1, 64, 64, 3\)\)"),
        ({"joint_names": [f"j{i}" for i in range(13)], "limbs": [], "flip_pairs": [], "skeleton": "custom"}, None,
         r"signature 'plain' gives .*13 joints"),
        ({"fill": 300}, None, "metadata key 'fill'"),
        (None, {"poselit_tflite_format": 99}, "'poselit_tflite_format' is 99"),
        (None, {"metadata": "none"}, "expected a JSON object with a 'metadata' object"),
    ],
)
def test_metadata_that_contradicts_the_graph_or_is_bad_is_refused_naming_the_file(tmp_path, metadata, sidecar, message):
    path = _copy(tmp_path, metadata, sidecar)
    with pytest.raises(ZooError, match=message) as error:
        TflitePoseModel.from_file(path)
    assert str(tmp_path) in str(error.value) and "\n" not in str(error.value)


def test_files_that_are_not_poselit_tflite_models_are_refused_naming_them(tmp_path):
    path = _copy(tmp_path)
    sidecar_path(path).unlink()
    with pytest.raises(ZooError, match=r"model.json: no such metadata file beside the TFLite model"):
        TflitePoseModel.from_file(path)
    path = _copy(tmp_path)
    path.write_bytes(b"not a flatbuffer at all" * 10)
    with pytest.raises(ZooError, match=r"model.tflite: not a readable TFLite model"):
        TflitePoseModel.from_file(path)
    sidecar_path(path).write_text("{oops")
    with pytest.raises(ZooError, match=r"model.json: not a readable JSON file"):
        TflitePoseModel.from_file(path)
    with pytest.raises(FileNotFoundError, match="TFLite model not found"):
        TflitePoseModel.from_file(tmp_path / "missing.tflite")


def test_latency_benchmark_names_the_missing_tflite_file_and_how_to_make_it(tmp_path):
    done = subprocess.run(
        [sys.executable, "benchmarks/latency.py", "luvizon-tiny-lsp-demo", "--smoke", "--variants", "tflite",
         "--threads", "1", "--tflite-dir", str(tmp_path)],
        capture_output=True, text=True, cwd=FIXTURES.parents[1], timeout=300,
    )
    assert done.returncode != 0 and done.stdout == ""
    assert done.stderr.strip() == (f"latency.py: {tmp_path / 'luvizon-tiny-lsp-demo.tflite'}: no such TFLite file; "
                                   "make it with tools/onnx_to_tflite.py (see its docstring)")


@pytest.mark.slow
@pytest.mark.parametrize("name", ZOO_MODELS)
def test_converted_zoo_models_give_onnx_runtimes_keypoints_on_lsp_test_images(name, data_root):
    """The converted file against the ONNX file it was converted from (beside it, as
    ``tools/onnx_to_tflite.py``'s docstring makes them), on the first 20 LSP test images
    (whole image), without and with the flip test; both files describe the zoo card's model."""
    path = converted_folder() / f"{name}.tflite"
    source = path.with_name(json.loads(sidecar_path(path).read_text())["source"]) if path.is_file() else path
    if not source.is_file() or source.suffix != ".onnx":
        pytest.skip(f"{path}: not converted here, or its ONNX file is gone (tools/onnx_to_tflite.py)")
    import poselit
    from poselit.onnx import OnnxPoseModel

    card = poselit.zoo.info(name)
    converted = TflitePoseModel.from_file(path, threads=1, card=card)
    reference = OnnxPoseModel.from_file(source, threads=1, card=card)
    images = [str(record.image) for record in poselit.data.read_annotations("lsp:test").records[:20]]
    for flip in (False, True):
        # batch size 1 for both: ONNX Runtime's batched convolutions round differently, and argmax
        # decoding turns 1e-6 of difference on near-equal heatmap pixels into 0.25-1 px
        got, want = (Predictor(m, flip_test=flip, batch_size=1)(images) for m in (converted, reference))
        difference = np.abs(np.stack([p.keypoints for p in got]) - np.stack([p.keypoints for p in want]))
        assert difference.max() <= REAL_TOLERANCE, f"{name}, flip test {flip}: {difference.max():.4f} px"
        np.testing.assert_allclose(np.stack([p.scores for p in got]), np.stack([p.scores for p in want]), atol=1e-3)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    make_fixture(Path(sys.argv[1]))
