"""ONNX on the command line: ``poselit zoo export NAME --format onnx`` and ``poselit predict --model FILE_OR_DIR``.

The demo zoo model is exported by name (default ``--out``), then run on the bundled sample
images through its ``.onnx`` file and through its folder: the documents equal the torch
path's but for the ``model`` field, joints within :data:`KEYPOINT_TOLERANCE` px (original-image
pixels, the documents' rounding included) and scores within :data:`SCORE_TOLERANCE`. Files that are not poselit ONNX models,
options that do not apply, and zoo sources without ``--format onnx`` end in one line, exit 2.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import numpy as np
import pytest

from poselit.cli import main
from poselit.predict import SAMPLES

pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

pytestmark = pytest.mark.usefixtures("one_thread")  # small tensors (tests/conftest.py)

MODEL = "luvizon-tiny-lsp-demo"
KEYPOINT_TOLERANCE, SCORE_TOLERANCE = 0.02, 1e-3
"""px in the original images, and score units: ONNX Runtime vs torch through ``poselit predict``.
The documents round joints to 0.01 px, so two joints 0.0001 px apart may differ there by one
rounding step: 0.01 px of rounding plus the 0.01 px ``tests/test_onnx.py`` holds every method to."""


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    """The folder ``poselit zoo export MODEL --format onnx`` writes by default, run in a temporary folder."""
    work = tmp_path_factory.mktemp("onnx-cli")
    with contextlib.chdir(work):
        assert main(["zoo", "export", MODEL, "--format", "onnx"]) == 0
    folder = work / "runs" / "export" / MODEL
    assert sorted(p.name for p in folder.iterdir()) == ["model.onnx"]
    return folder


SAMPLE_COUNT = len(list(SAMPLES.glob("*.jpg")))  # the bundled photos that `poselit predict SAMPLES` reads


def one_line_error(capsys) -> str:
    """The command's stderr, checked to be one ``poselit: error:`` line."""
    err = capsys.readouterr().err
    assert err.startswith("poselit: error: ") and err.count("\n") == 1, err
    return err


def predict(model: str | Path, out: Path, *extra: str) -> dict[str, dict]:
    """``poselit predict`` on the sample images: ``{file name: document}`` of the JSON outputs."""
    assert main(["predict", str(SAMPLES), "--model", str(model), "--out", str(out), "--quiet", "--device", "cpu",
                 *extra]) == 0
    assert sorted(p.suffix for p in out.iterdir()) == [".json"] * SAMPLE_COUNT + [".png"] * SAMPLE_COUNT
    return {p.name: json.loads(p.read_text()) for p in sorted(out.glob("*.json"))}


def test_zoo_export_by_name_writes_the_cards_model(exported):
    from poselit.onnx import OnnxPoseModel

    runtime = OnnxPoseModel.from_file(exported, threads=1)  # a folder: its model.onnx
    assert runtime.metadata.card == MODEL and runtime.path == exported / "model.onnx"


@pytest.mark.parametrize("flip", [[], ["--no-flip"]], ids=["flip", "no-flip"])
def test_predict_with_the_onnx_file_or_folder_gives_the_torch_documents(exported, tmp_path, flip, capsys):
    torch_documents = predict(MODEL, tmp_path / "torch", "--runtime", "torch", *flip)
    assert f"{SAMPLE_COUNT} images (torch): wrote {2 * SAMPLE_COUNT} files" in capsys.readouterr().out
    for model in (exported / "model.onnx", exported):
        documents = predict(model, tmp_path / model.name, *flip)
        assert f"{SAMPLE_COUNT} images (onnxruntime): wrote {2 * SAMPLE_COUNT} files to {tmp_path / model.name}" in (
            capsys.readouterr().out
        )
        assert documents.keys() == torch_documents.keys()
        for name, document in documents.items():
            expected = torch_documents[name]
            assert document["model"] == str(model) and expected["model"] == MODEL
            same = ("image", "width", "height", "skeleton")
            assert {k: document[k] for k in same} == {k: expected[k] for k in same}
            assert len(document["people"]) == len(expected["people"]) == 1
            person, reference = document["people"][0], expected["people"][0]
            assert person["box"] == reference["box"]
            np.testing.assert_allclose(person["keypoints"], reference["keypoints"], atol=KEYPOINT_TOLERANCE, rtol=0)
            np.testing.assert_allclose(person["scores"], reference["scores"], atol=SCORE_TOLERANCE, rtol=0)


def test_predict_writes_to_runs_predict_by_default_and_says_so(exported, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    image = tmp_path / "photo.jpg"
    image.write_bytes((SAMPLES / "camera.jpg").read_bytes())
    assert main(["predict", str(image), "--model", str(exported), "--quiet"]) == 0
    assert "1 images (onnxruntime): wrote 2 files to runs/predict" in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "runs" / "predict").iterdir()) == ["photo.json", "photo.png"]


def test_files_that_are_not_poselit_onnx_models_end_in_one_line(exported, tmp_path, capsys):
    image = str(SAMPLES / "camera.jpg")
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"not a model")
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    plain = tmp_path / "identity.onnx"
    node = onnx.helper.make_node("Identity", ["x"], ["y"])
    info = [onnx.helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, [1]) for n in "xy"]
    onnx.save(onnx.helper.make_model(onnx.helper.make_graph([node], "g", info[:1], info[1:])), str(plain))
    cases = [
        (garbage, f"{garbage}: not a readable ONNX model"),
        (empty, f"{empty}: not a readable ONNX model"),
        (plain, f"{plain}: metadata key 'poselit_format' is missing: not an ONNX file exported by poselit"),
        (tmp_path / "missing.onnx", f"ONNX model not found: {tmp_path / 'missing.onnx'}"),
        (tmp_path / "last.ckpt", "a checkpoint; export it first"),
    ]
    (tmp_path / "last.ckpt").write_bytes(b"PK")
    for model, message in cases:
        assert main(["predict", image, "--model", str(model), "--out", str(tmp_path / "out"), "--quiet"]) == 2
        assert message in one_line_error(capsys)
    assert not (tmp_path / "out").exists()
    for extra, message in ((["--autocast"], "--autocast: "), (["--device", "cuda"], "runs on the CPU")):
        assert main(["predict", image, "--model", str(exported), "--out", str(tmp_path / "out"), *extra]) == 2
        assert message in one_line_error(capsys)


def test_zoo_export_of_a_zoo_model_refuses_what_does_not_apply(tmp_path, capsys):
    out = str(tmp_path / "x")
    cases = [
        ([MODEL, "--out", out], f"{MODEL} is a zoo model, exported already"),
        ([MODEL, "--format", "onnx", "--fp16", "--evaluate", "lsp:test"], "--fp16, --evaluate: for checkpoints only"),
        (["luvizon-tiny-lsp-dem", "--format", "onnx"], "no checkpoint file luvizon-tiny-lsp-dem, and unknown zoo model"),
        (["missing.ckpt", "--out", out], "exporting the checkpoint missing.ckpt needs --name NAME"),
        (["missing.ckpt", "--name", "a-b-c", "--out", out], "checkpoint not found: missing.ckpt"),
    ]
    for argv, message in cases:
        assert main(["zoo", "export", *argv]) == 2
        assert message in one_line_error(capsys)
    assert not (tmp_path / "x").exists()


def test_int8_export_is_calibrated_on_training_crops_and_says_so_in_its_metadata(synthetic_lsp, tmp_path, capsys):
    from poselit.onnx import OnnxPoseModel

    out = tmp_path / "int8.onnx"
    assert main(["zoo", "export", MODEL, "--format", "onnx", "--int8", "--calibrate", f"lsp:train@{synthetic_lsp}",
                 "--crops", "4", "--out", str(out)]) == 0
    model = OnnxPoseModel.from_file(out, threads=1)
    assert model.precision == "int8" and model.metadata.card == MODEL
    operators = {node.op_type for node in onnx.load(out).graph.node[0].attribute[0].g.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= operators
    documents = predict(out, tmp_path / "predicted")
    assert all(len(document["people"]) == 1 for document in documents.values())


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--int8"], "--int8 and --calibrate are for ONNX files: add --format onnx"),
        (["--format", "onnx", "--calibrate", "lsp:train"], "--calibrate is for --int8"),
    ],
)
def test_int8_options_out_of_place_end_in_one_line(extra, message, capsys):
    assert main(["zoo", "export", MODEL, *extra]) != 0
    assert message in one_line_error(capsys)
