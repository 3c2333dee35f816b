"""MoveNet, the benchmarks' reference (benchmarks/movenet.py, tools/movenet_tflite.py,
benchmarks/movenet_lsp.py), without MoveNet's files: the letterbox and the mapping back
through a fake interpreter, the one-line errors, the TF.js fused-op rewriting (run by
TensorFlow where it is installed), and the COCO -> LSP joints by name. With the converted
files in ``~/.cache/poselit/movenet`` and LiteRT installed, the accuracy script's smoke
run too."""

from __future__ import annotations

import base64
import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


def load(relative: str) -> ModuleType:
    """A module of the repository's scripts by path (benchmarks/ and tools/ are no packages);
    benchmarks/ on the path for the scripts' own sibling imports."""
    if str(REPO / "benchmarks") not in sys.path:
        sys.path.insert(0, str(REPO / "benchmarks"))
    spec = importlib.util.spec_from_file_location(Path(relative).stem, REPO / relative)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class FakeInterpreter:
    """A LiteRT interpreter's interface, returning fixed ``(17, 3)`` keypoints and keeping its input."""

    def __init__(self, output: np.ndarray, size: int = 192, dtype: Any = np.int32,
                 output_shape: tuple[int, ...] = (1, 1, 17, 3)) -> None:
        self.output, self.size, self.dtype, self.output_shape = output, size, dtype, output_shape
        self.input: np.ndarray | None = None

    def get_input_details(self) -> list[dict[str, Any]]:
        return [{"index": 0, "shape": np.array([1, self.size, self.size, 3]), "dtype": self.dtype}]

    def get_output_details(self) -> list[dict[str, Any]]:
        return [{"index": 7, "shape": np.array(self.output_shape), "dtype": np.float32}]

    def set_tensor(self, index: int, value: np.ndarray) -> None:
        assert index == 0
        self.input = value

    def invoke(self) -> None:
        pass

    def get_tensor(self, index: int) -> np.ndarray:
        assert index == 7
        return self.output.reshape(1, 1, 17, 3).astype(np.float32)


# --- benchmarks/movenet.py ---------------------------------------------------------------


def test_letterbox_centres_the_image_and_keypoints_map_back_to_its_pixels():
    movenet = load("benchmarks/movenet.py")
    output = np.zeros((17, 3), np.float32)
    # (y, x) in [0, 1] of the 192 px input: the centre, the image's left edge (x: the 100 x 50
    # image fills 96 px in the middle, bars of 48 px), its right edge, its top and bottom edges
    output[:5, :2] = [[0.5, 0.5], [0.5, 0.25], [0.5, 0.75], [0.0, 0.5], [1.0, 0.5]]
    output[:, 2] = np.linspace(0, 1, 17)
    fake = FakeInterpreter(output)
    model = movenet.MoveNet("fake.tflite", interpreter=fake)
    keypoints, scores = model(np.full((100, 50, 3), 255, np.uint8))

    expected = [[24.5, 49.5], [-0.5, 49.5], [49.5, 49.5], [24.5, -0.5], [24.5, 99.5]]  # pixel centres at integers
    np.testing.assert_allclose(keypoints[:5], expected, atol=1e-4)
    np.testing.assert_allclose(scores, output[:, 2])
    assert fake.input.shape == (1, 192, 192, 3) and fake.input.dtype == np.int32
    square = fake.input[0, :, :, 0]
    assert (square[:, :47] == 0).all() and (square[:, 145:] == 0).all() and (square[1:-1, 49:143] == 255).all()


def test_a_spot_letterboxed_and_read_back_as_movenet_normalises_lands_on_itself():
    """MoveNet's (y, x) in [0, 1] have 0 and 1 at the input's outer pixel edges: a keypoint
    read at a spot's centre in the letterboxed input maps back onto the spot in a
    landscape image."""
    movenet = load("benchmarks/movenet.py")
    image = np.zeros((60, 150, 3), np.uint8)
    image[40, 17] = 255
    square, affine = movenet.letterbox(image, 256)
    weights = square[..., 0].astype(np.float64)
    ys, xs = np.indices(weights.shape)
    spot_x, spot_y = (xs * weights).sum() / weights.sum(), (ys * weights).sum() / weights.sum()
    normalised = np.array([[(spot_y + 0.5) / 256, (spot_x + 0.5) / 256]])
    np.testing.assert_allclose(movenet.to_image(normalised, 256, affine), [[17, 40]], atol=0.05)


def test_uint8_models_get_uint8_pixels():
    movenet = load("benchmarks/movenet.py")
    fake = FakeInterpreter(np.zeros((17, 3)), size=64, dtype=np.uint8)
    movenet.MoveNet("fake.tflite", interpreter=fake)(np.zeros((10, 20, 3), np.uint8))
    assert fake.input.dtype == np.uint8 and fake.input.shape == (1, 64, 64, 3)


def test_a_model_that_is_not_movenet_or_no_file_is_a_one_line_error_naming_the_file(tmp_path):
    movenet = load("benchmarks/movenet.py")
    with pytest.raises(ValueError, match=r"other\.tflite: not a MoveNet model: .*\(1, 1, 16, 3\)"):
        movenet.MoveNet("other.tflite", interpreter=FakeInterpreter(np.zeros((17, 3)), output_shape=(1, 1, 16, 3)))
    with pytest.raises(ValueError, match=r"float32.*expected one \(1, S, S, 3\) int32 or uint8 input"):
        movenet.MoveNet("float.tflite", interpreter=FakeInterpreter(np.zeros((17, 3)), dtype=np.float32))
    with pytest.raises(FileNotFoundError, match=r"movenet-thunder\.tflite: no such MoveNet model file; make it with tools/"):
        movenet.model_path("movenet-thunder", tmp_path)


def test_a_file_that_is_not_tflite_is_a_one_line_error_naming_it(tmp_path):
    pytest.importorskip("ai_edge_litert")
    movenet = load("benchmarks/movenet.py")
    bad = tmp_path / "movenet-lightning.tflite"
    bad.write_text("not a model")
    with pytest.raises(ValueError, match=rf"^{re.escape(str(bad))}: not a TFLite model \(.*\)$"):
        movenet.MoveNet(bad)


def test_coco_keypoints_fill_the_lsp_joints_of_the_same_name():
    movenet = load("benchmarks/movenet.py")
    from poselit.skeletons import COCO, LSP

    named = [COCO.joints[slot] if slot >= 0 else None for slot in movenet.COCO_TO_LSP]
    assert named == [name if name not in ("neck", "head_top") else None for name in LSP.joints]
    keypoints = np.arange(34, dtype=np.float32).reshape(17, 2)
    lsp_keypoints, lsp_scores = movenet.to_lsp(keypoints, np.arange(17, dtype=np.float32) / 10)
    assert lsp_keypoints[LSP.index("left_wrist")].tolist() == keypoints[COCO.index("left_wrist")].tolist()
    assert lsp_scores[LSP.index("right_ankle")] == pytest.approx(COCO.index("right_ankle") / 10)
    assert lsp_keypoints[LSP.index("neck")].tolist() == [0, 0] and lsp_scores[LSP.index("head_top")] == 0


# --- benchmarks/movenet_lsp.py -----------------------------------------------------------


def test_the_12_joint_score_marks_neck_and_head_top_not_annotated_keeping_the_torso(synthetic_lsp):
    import poselit.data

    movenet_lsp = load("benchmarks/movenet_lsp.py")
    annotations = poselit.data.read_annotations(f"lsp:test@{synthetic_lsp}")
    shared = movenet_lsp.shared_only(annotations)
    assert len(movenet_lsp.SHARED_JOINTS) == 12
    for before, after in zip(annotations.records, shared.records):
        for j, name in enumerate(annotations.skeleton.joints):
            assert after.visibility[j] == (0 if name in ("neck", "head_top") else before.visibility[j])
        shared_joints = after.visibility > 0
        assert after.norm == before.norm and (after.keypoints[shared_joints] == before.keypoints[shared_joints]).all()


def _script(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=900,
                          env={"PATH": "/usr/bin:/bin", "WANDB_MODE": "disabled"})


@pytest.mark.parametrize("script, file", [(["benchmarks/movenet_lsp.py", "--smoke"], "movenet-lightning"),
                                          (["benchmarks/latency.py", "movenet-lightning", "--smoke"], "movenet-lightning"),
                                          (["benchmarks/teacher_agreement.py", "--smoke"], "movenet-thunder")])
def test_benchmarks_without_the_movenet_files_stop_with_one_line_saying_how_to_make_them(script, file, tmp_path):
    done = _script(*script, "--movenet-dir", str(tmp_path))
    assert done.returncode != 0 and done.stdout == ""
    (line,) = done.stderr.strip().splitlines()
    assert f"{tmp_path}/{file}.tflite: no such MoveNet model file; make it with tools/movenet_tflite.py" in line


def _need_movenet_files() -> None:
    """Skip unless the converted files and LiteRT are here (a developer's machine)."""
    movenet = load("benchmarks/movenet.py")
    if not all((movenet.DEFAULT_DIR / name).is_file() for name in movenet.MODELS.values()):
        pytest.skip(f"no MoveNet files in {movenet.DEFAULT_DIR} (tools/movenet_tflite.py makes them)")
    pytest.importorskip("ai_edge_litert")


def test_movenet_lsp_smoke_scores_both_movenets_and_the_poselit_model():
    _need_movenet_files()
    done = _script("benchmarks/movenet_lsp.py", "--smoke")
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    rows = [(row["model"], row["joints"]) for row in result["rows"]]
    assert rows == [("movenet-lightning", 12), ("movenet-thunder", 12), ("bulat-mobilenetv2-lsp", 12),
                    ("bulat-mobilenetv2-lsp", 14)]  # whole_image.SMOKE_MODEL
    assert all(0 <= row["PCK@0.2"] <= 100 for row in result["rows"]) and result["people"] == 4


def test_latency_times_movenet_in_the_same_loop_with_ratios_to_it():
    _need_movenet_files()
    done = _script("benchmarks/latency.py", "movenet-lightning", "movenet-thunder", "luvizon-tiny-lsp-demo", "--smoke",
                   "--variants", "fp32", "--threads", "1", "--flip", "on", "--alone")
    assert done.returncode == 0, done.stderr[-3000:]
    rows = json.loads(done.stdout.strip().splitlines()[-1])["rows"]
    assert [(r["model"], r["variant"], r["flip_test"]) for r in rows] == [
        ("movenet-lightning", "tflite", False), ("movenet-thunder", "tflite", False), ("luvizon-tiny-lsp-demo", "fp32", True)]
    lightning, thunder, poselit_row = rows
    assert lightning["input_size"] == [192, 192] and thunder["input_size"] == [256, 256]
    assert lightning["images_per_s_batch32"] is None and poselit_row["images_per_s_batch32"] > 0
    for row in rows:
        ms = row["ms"]
        assert ms["end_to_end_p90"] >= ms["end_to_end"] > 0 and ms["end_to_end_alone"] > 0 and row["idle_cpu_ms"] >= 0
        assert ms["network"] > 0 and (row["flip_test"] or ms["flip"] == 0)
        assert row["ratio_to"]["movenet-lightning"] == pytest.approx(ms["end_to_end"] / lightning["ms"]["end_to_end"], rel=1e-2)
        assert row["ratio_to"]["movenet-thunder"] == pytest.approx(ms["end_to_end"] / thunder["ms"]["end_to_end"], rel=1e-2)


# --- tools/movenet_tflite.py -------------------------------------------------------------


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def tiny_tfjs_graph() -> dict[str, Any]:
    """A TF.js graph topology: input -> _FusedConv2D (BiasAdd, Relu6) -> FusedDepthwiseConv2dNative
    (BiasAdd) -> Identity, with the fused nodes' TF.js-only attributes."""
    def const(name: str, dtype: str = "DT_FLOAT") -> dict[str, Any]:
        return {"name": name, "op": "Const", "attr": {"value": {"tensor": {"dtype": dtype, "tensorShape": {}}},
                                                       "dtype": {"type": dtype}}}

    conv_attrs = {"T": {"type": "DT_FLOAT"}, "strides": {"list": {"i": ["1", "1", "1", "1"]}},
                  "padding": {"s": _b64("SAME")}, "data_format": {"s": _b64("NHWC")},
                  "dilations": {"list": {"i": ["1", "1", "1", "1"]}}, "explicit_paddings": {"list": {}}}
    return {"node": [
        {"name": "input", "op": "Placeholder", "attr": {"dtype": {"type": "DT_FLOAT"},
                                                         "shape": {"shape": {"dim": [{"size": "1"}, {"size": "5"},
                                                                                     {"size": "5"}, {"size": "2"}]}}}},
        const("conv/w"), const("conv/b"), const("dw/w"), const("dw/b"),
        {"name": "conv/Relu6", "op": "_FusedConv2D", "input": ["input", "conv/w", "conv/b"], "device": "/device:CPU:0",
         "attr": {**conv_attrs, "use_cudnn_on_gpu": {"b": True}, "epsilon": {"f": 0}, "num_args": {"i": "1"},
                  "fused_ops": {"list": {"s": [_b64("BiasAdd"), _b64("Relu6")]}}}},
        {"name": "dw/depthwise", "op": "FusedDepthwiseConv2dNative", "input": ["conv/Relu6", "dw/w", "dw/b"],
         "attr": {**conv_attrs, "num_args": {"i": "1"}, "fused_ops": {"list": {"s": [_b64("BiasAdd")]}}}},
        {"name": "Identity", "op": "Identity", "input": ["dw/depthwise"], "attr": {"T": {"type": "DT_FLOAT"}}},
    ]}


def test_fused_tfjs_ops_become_plain_ops_with_their_own_attributes():
    tool = load("tools/movenet_tflite.py")
    nodes = tool.rewrite_fused_ops(tiny_tfjs_graph()["node"])
    plain = {node["name"]: node for node in nodes}
    assert [(n["name"], n["op"]) for n in nodes[5:]] == [
        ("conv/Relu6/unfused_conv", "Conv2D"), ("conv/Relu6/unfused_bias", "BiasAdd"), ("conv/Relu6", "Relu6"),
        ("dw/depthwise/unfused_conv", "DepthwiseConv2dNative"), ("dw/depthwise", "BiasAdd"), ("Identity", "Identity"),
    ]
    assert plain["conv/Relu6/unfused_conv"]["input"] == ["input", "conv/w"]
    assert plain["conv/Relu6/unfused_bias"]["input"] == ["conv/Relu6/unfused_conv", "conv/b"]
    assert plain["conv/Relu6"]["input"] == ["conv/Relu6/unfused_bias"]
    assert plain["dw/depthwise/unfused_conv"]["input"] == ["conv/Relu6", "dw/w"]
    assert plain["Identity"]["input"] == ["dw/depthwise"]  # consumers find the fused node's name
    assert set(plain["conv/Relu6/unfused_conv"]["attr"]) == {"T", "strides", "padding", "data_format", "dilations",
                                                             "explicit_paddings", "use_cudnn_on_gpu"}
    assert "use_cudnn_on_gpu" not in plain["dw/depthwise/unfused_conv"]["attr"]
    assert plain["dw/depthwise"]["attr"] == {"T": {"type": "DT_FLOAT"}, "data_format": {"s": _b64("NHWC")}}


def test_unsupported_fusions_and_constants_without_weights_are_errors_naming_the_node():
    tool = load("tools/movenet_tflite.py")
    nodes = tiny_tfjs_graph()["node"]
    nodes[5]["attr"]["fused_ops"]["list"]["s"] = [_b64("BiasAdd"), _b64("Prelu")]
    with pytest.raises(ValueError, match=r"node 'conv/Relu6': fused ops \['BiasAdd', 'Prelu'\] not supported"):
        tool.rewrite_fused_ops(nodes)
    with pytest.raises(ValueError, match=r"Const node 'conv/w' has no weight of that name"):
        tool.fill_constants(nodes, {})


def test_constants_get_their_weights_values():
    tool = load("tools/movenet_tflite.py")
    weights = {"conv/w": np.arange(6, dtype=np.float32).reshape(1, 2, 3), "conv/b": np.array([7], np.int32),
               "dw/w": np.zeros(1, np.float32), "dw/b": np.zeros(1, np.float32)}
    nodes = tool.fill_constants(tiny_tfjs_graph()["node"], weights)
    tensor = nodes[1]["attr"]["value"]["tensor"]
    assert tensor["tensorShape"] == {"dim": [{"size": "1"}, {"size": "2"}, {"size": "3"}]}
    assert np.frombuffer(base64.b64decode(tensor["tensorContent"]), "<f4").tolist() == list(range(6))
    assert nodes[2]["attr"]["value"]["tensor"]["dtype"] == "DT_INT32" and nodes[2]["attr"]["dtype"] == {"type": "DT_INT32"}


def _conv_same(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """NHWC 3x3 'SAME' convolution, stride 1, of one image: ``w`` (3, 3, C_in, C_out)."""
    padded = np.pad(x[0], ((1, 1), (1, 1), (0, 0)))
    h, wd = x.shape[1:3]
    return np.stack([[np.einsum("ijc,ijco->o", padded[y:y + 3, i:i + 3], w) for i in range(wd)] for y in range(h)])[None]


def test_the_rewritten_graph_converts_to_tflite_and_computes_what_the_fused_ops_mean(tmp_path):
    """Needs TensorFlow (tools/movenet_tflite.py runs in a virtual environment of its own)."""
    tf = pytest.importorskip("tensorflow")
    tool = load("tools/movenet_tflite.py")
    rng = np.random.default_rng(0)
    weights = {"conv/w": rng.normal(size=(3, 3, 2, 4)), "conv/b": rng.normal(size=4),
               "dw/w": rng.normal(size=(3, 3, 4, 1)), "dw/b": rng.normal(size=4)}
    weights = {name: value.astype(np.float32) for name, value in weights.items()}
    (tmp_path / "tiny.bin").write_bytes(b"".join(weights[n].tobytes() for n in weights))
    manifest = [{"paths": ["tiny.bin"], "weights": [{"name": n, "shape": list(v.shape), "dtype": "float32"}
                                                    for n, v in weights.items()]}]
    signature = {"inputs": {"input:0": {"name": "input:0"}}, "outputs": {"Identity:0": {"name": "Identity:0"}}}
    (tmp_path / "tiny.json").write_text(json.dumps({"format": "graph-model", "modelTopology": tiny_tfjs_graph(),
                                                    "weightsManifest": manifest, "signature": signature}))
    interpreter = tf.lite.Interpreter(model_content=tool.to_tflite(tmp_path / "tiny.json"))
    interpreter.allocate_tensors()
    x = rng.normal(size=(1, 5, 5, 2)).astype(np.float32) * 3
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
    interpreter.invoke()
    got = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])

    hidden = np.clip(_conv_same(x, weights["conv/w"]) + weights["conv/b"], 0, 6)
    depthwise = np.eye(4)[None, None] * weights["dw/w"]  # (3, 3, 4, 1) -> (3, 3, 4, 4) diagonal
    expected = _conv_same(hidden, depthwise) + weights["dw/b"]
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


# --- benchmarks/teacher_agreement.py -----------------------------------------------------


def test_movenet_in_a_box_maps_its_keypoints_back_through_the_box_crop():
    """``in_box`` crops the square of side 200 * scale * padding around the centre: the
    input's centre is the box centre, its left edge the box's left edge."""
    movenet = load("benchmarks/movenet.py")
    output = np.zeros((17, 3), np.float32)
    output[:2, :2] = [[0.5, 0.5], [0.5, 0.0]]
    model = movenet.MoveNet("fake.tflite", interpreter=FakeInterpreter(output, size=100))
    keypoints, _ = model.in_box(np.zeros((300, 400, 3), np.uint8), np.array([150.0, 120.0]), 0.5, 1.25)
    side = 200 * 0.5 * 1.25  # input pixel centres at integers: x = -0.5 is the box's left edge
    np.testing.assert_allclose(keypoints[:2], [[150, 120], [150 - side / 2, 120]], atol=1e-3)


def test_agreement_scores_labels_as_given_and_counts_the_confident_joints(synthetic_lsp):
    import poselit.data
    from poselit.skeletons import LSP

    teacher = load("benchmarks/teacher_agreement.py")
    annotations = poselit.data.read_annotations(f"lsp:train@{synthetic_lsp}")
    labels = np.stack([r.keypoints for r in annotations.records])
    scores = np.ones(labels.shape[:2], np.float32)
    scores[:, LSP.index("left_knee")] = 0.1  # one of the 12 shared joints never confident
    row = teacher.agreement("synth", annotations, labels, scores, 0.6)
    assert row["dataset"] == "synth" and row["people"] == 4 and row["PCK@0.2"] == 100.0
    annotated = sum(int((r.visibility > 0).sum()) for r in teacher.shared_only(annotations).records)
    knees = sum(int(r.visibility[LSP.index("left_knee")] > 0) for r in annotations.records)
    assert row["confident_share"] == pytest.approx(100 * (annotated - knees) / annotated, abs=0.01)
    assert row["confident_PCK@0.2"] == 100.0
    far = labels + 1000  # every joint far off: no agreement, however confident
    assert teacher.agreement("synth", annotations, far, scores, 0.6)["PCK@0.2"] == 0.0


def test_a_zoo_model_as_the_yardstick_scores_its_own_predictions_in_the_box(synthetic_lsp):
    """``--model NAME`` of a zoo model: its keypoints in the record's box, as ``Predictor``
    gives them with that box."""
    import poselit.data
    from poselit.predict import Predictor, load_image

    teacher = load("benchmarks/teacher_agreement.py")
    record = poselit.data.read_annotations(f"lsp:train@{synthetic_lsp}").records[0]
    keypoints, scores = teacher.zoo_yardstick("luvizon-tiny-lsp-demo")(record)
    box = {"center": record.center.tolist(), "scale": record.scale}
    (expected,) = Predictor.from_zoo("luvizon-tiny-lsp-demo", device="cpu")([load_image(record.image)], boxes=[box], progress=False)
    np.testing.assert_allclose(keypoints, expected.keypoints, atol=1e-3)
    assert keypoints.shape == (14, 2) and scores.shape == (14,)


def test_label_offsets_measure_where_annotators_put_a_joint_in_the_torso_frame(synthetic_lsp):
    """Labels of the left hip moved a tenth of the torso towards the shoulders: +0.1 up, 0 out;
    every other joint where MoveNet puts it: 0 and 0."""
    import dataclasses

    import poselit.data
    from poselit.skeletons import LSP

    teacher = load("benchmarks/teacher_agreement.py")
    annotations = poselit.data.read_annotations(f"lsp:train@{synthetic_lsp}")
    movenet = np.stack([r.keypoints for r in annotations.records]).astype(np.float64)
    ls, rs, lh, rh = (LSP.index(n) for n in ("left_shoulder", "right_shoulder", "left_hip", "right_hip"))
    torso = (movenet[:, [ls, rs]].mean(1) - movenet[:, [lh, rh]].mean(1))
    moved = [dataclasses.replace(r, keypoints=np.where(np.arange(14)[:, None] == lh, r.keypoints + 0.1 * t, r.keypoints))
             for r, t in zip(annotations.records, torso)]
    scores = np.ones(movenet.shape[:2], np.float32)
    offsets = teacher.label_offsets(dataclasses.replace(annotations, records=moved), movenet, scores, 0.6)
    assert set(offsets) == set(teacher.SHARED_JOINTS) and offsets["left_hip"]["people"] == 4
    assert offsets["left_hip"]["up"] == pytest.approx(0.1, abs=1e-3) and offsets["left_hip"]["out"] == pytest.approx(0, abs=1e-3)
    assert all(o["up"] == 0 and o["out"] == 0 for name, o in offsets.items() if name != "left_hip")
    scores[:, rh] = 0.1  # no torso frame without a confident right hip
    assert all(o["people"] == 0 and o["up"] is None for o in teacher.label_offsets(annotations, movenet, scores, 0.6).values())


def test_the_held_out_row_scores_the_people_the_recipes_hold_out(synthetic_lsp):
    import poselit.data
    from poselit.data.datamodule import split_holdout

    teacher = load("benchmarks/teacher_agreement.py")
    named = {"a": poselit.data.read_annotations(f"lsp:train@{synthetic_lsp}"),
             "b": poselit.data.read_annotations(f"lsp:test@{synthetic_lsp}")}
    labels = {id(r): r.keypoints for a in named.values() for r in a.records}
    _, held_out = split_holdout(list(named.values()), 3, 7)

    held = {id(r) for r in held_out.records}

    def labels_of_held_out(record):  # agrees with the labels of the held-out people only
        return labels[id(record)] + (0 if id(record) in held else 1000), np.ones(14, np.float32)

    rows = teacher.measure(named, labels_of_held_out, 0.6, 3, 7)
    assert [r["dataset"] for r in rows] == ["a", "b", "held-out: 3 of a + b (seed 7)"]
    assert rows[2]["PCK@0.2"] == 100.0 and rows[2]["people"] == 3 and sum(rows[2]["from"].values()) == 3
    for row, name in zip(rows, named):  # 4 people each, 3 held out in all: every set has others, far off
        assert 0 <= row["PCK@0.2"] < 100 and (row["PCK@0.2"] > 0) == (rows[2]["from"][name] > 0)
