"""ONNX export (:mod:`poselit.onnx`) and ONNX Runtime inference (:mod:`poselit.onnx.runtime`).

For each method (its registry's tiny instance): the exported graph run by ONNX Runtime
gives ``predict_poses``'s keypoints within 0.01 px and scores within 1e-3, with and
without the flip test, at batch sizes other than the traced one; ``Predictor`` gives the
same poses through either; the metadata round-trips. Bad files, bad metadata, metadata that
contradicts its graph and cards that do not match are errors naming the file, before
anything runs; a failed export leaves no file.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from poselit.data.synthetic import random_pose, render_figure
from poselit.models import METHODS, Method, class_path
from poselit.models.base import PoseLitModule
from poselit.predict import Predictor
from poselit.zoo.cards import ModelCard, WeightsInfo, ZooError

pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

from poselit.onnx import OnnxMetadata, OnnxPoseModel, export_onnx  # noqa: E402  (after the skip: needs onnxruntime)
from test_atomic import run_limited  # noqa: E402
from test_benchmarks import _run as run_benchmark  # noqa: E402
from tiny_models import TinyHeatmapModel, as_if_trained  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")  # small tensors (tests/conftest.py)

TESTS = Path(__file__).resolve().parent
KEYPOINT_TOLERANCE, SCORE_TOLERANCE = 0.01, 1e-3
"""px, and score units: ONNX Runtime vs torch."""


def card_for(model: PoseLitModule, name: str, **changes) -> ModelCard:
    """A card of ``model``'s class whose ``input`` is its input spec; ``changes`` override
    ``input`` fields."""
    return ModelCard(name, class_path(type(model)), {}, WeightsInfo("0" * 64, 0),
                     input={**model.input_spec.to_dict(), **changes})


def trained_a_little(method: Method) -> PoseLitModule:
    """The method's tiny instance, as if trained a little (no argmax ties), with a crop
    margin and fill other than the defaults (so that exports are seen to carry them)."""
    torch.manual_seed(0)
    model = method.load()(**method.tiny, padding=1.4, fill=7)
    return as_if_trained(model, crops(model, 4, seed=1))


def crops(model: PoseLitModule, batch: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (batch, 3, *model.input_size), dtype=torch.uint8, generator=generator)


@pytest.fixture(scope="module", params=[m for m in METHODS.values() if m.class_path.startswith("poselit.")],
                ids=lambda m: m.name)
def exported(request, tmp_path_factory) -> tuple[PoseLitModule, OnnxPoseModel]:
    """A method's model, and its ONNX export (with a card) loaded by ONNX Runtime."""
    model = trained_a_little(request.param)
    path = tmp_path_factory.mktemp("onnx") / f"{request.param.name}.onnx"
    export_onnx(model, path, card=card_for(model, f"{request.param.name}-tiny"))
    return model, OnnxPoseModel.from_file(path, threads=1)


@pytest.fixture(scope="module")
def tiny_file(tmp_path_factory) -> tuple[TinyHeatmapModel, Path]:
    """A small heatmap model exported without a card, for the tests of bad input."""
    torch.manual_seed(0)
    model = TinyHeatmapModel(input_size=(32, 32)).eval()
    return model, export_onnx(model, tmp_path_factory.mktemp("tiny") / "tiny.onnx")


@pytest.mark.parametrize("flip_test", [False, True], ids=["plain", "flip"])
def test_onnx_runtime_reproduces_predict_poses(exported, flip_test):
    """Batch sizes 1 and 3 (the graph was traced at 2). Measured (8 crops): keypoints
    within 5e-5 px (Luvizon's soft-argmax; the argmax methods' are identical), scores
    within 4e-5 (float rounding)."""
    model, runtime = exported
    for batch in (1, 3):
        images = crops(model, batch, seed=batch)
        with torch.no_grad():
            expected = model.predict_poses(images, flip_test=flip_test)
        got = runtime.predict_poses(images, flip_test=flip_test)
        assert set(got) == {"keypoints", "scores"} | ({"heatmaps"} & set(expected))
        assert got["keypoints"].shape == (batch, model.num_joints, 2) and got["scores"].shape == (batch, model.num_joints)
        assert (got["keypoints"] - expected["keypoints"]).abs().max() <= KEYPOINT_TOLERANCE
        assert (got["scores"] - expected["scores"]).abs().max() <= SCORE_TOLERANCE
        if "heatmaps" in expected:
            torch.testing.assert_close(got["heatmaps"], expected["heatmaps"].float(), atol=1e-4, rtol=1e-4)


def test_predictor_gives_the_same_poses_through_onnx_runtime(exported):
    """Generated figures, with boxes and without (whole image), flip test on (the
    default) and off, heatmaps returned for heatmap methods."""
    model, runtime = exported
    rng = np.random.default_rng(0)
    images = [render_figure(random_pose(rng, 96, 80), np.zeros(14, bool), rng, 96, 80)[..., ::-1] for _ in range(3)]
    boxes = [[10, 5, 60, 85], [[0, 0, 80, 96], None], {"center": [40, 50], "scale": 0.4}]
    for options in ({}, {"flip_test": False}):
        torch_predictor = Predictor(model, batch_size=2, **options)
        onnx_predictor = Predictor(runtime, batch_size=2, **options)  # the file's padding and fill
        assert (onnx_predictor.padding, onnx_predictor.fill) == (torch_predictor.padding, torch_predictor.fill)
        assert (onnx_predictor.padding, onnx_predictor.fill) == (1.4, 7)
        expected = torch_predictor(images, boxes=boxes, return_heatmaps=True)
        got = onnx_predictor(images, boxes=boxes, return_heatmaps=True)
        assert len(got) == len(expected) == 4
        for a, b in zip(got, expected):
            assert np.abs(a.keypoints - b.keypoints).max() <= KEYPOINT_TOLERANCE
            assert np.abs(a.scores - b.scores).max() <= SCORE_TOLERANCE
            assert a.skeleton == b.skeleton and np.array_equal(a.crop, b.crop)
            assert (a.heatmaps is None) == (b.heatmaps is None)


def test_the_metadata_describes_the_model_and_the_card(exported):
    model, runtime = exported
    metadata = runtime.metadata
    assert runtime.input_spec == metadata.spec == model.input_spec  # every field, exactly
    assert torch.equal(torch.tensor(metadata.spec.mean), model.mean.flatten()) and runtime.skeleton == model.skeleton
    assert (runtime.padding, runtime.fill) == (1.4, 7) and metadata.card.endswith("-tiny")
    assert metadata.class_path == f"{type(model).__module__}.{type(model).__name__}" and metadata.flip_test
    props = {p.key: p.value for p in onnx.load(str(runtime.path), load_external_data=False).metadata_props}
    assert props["joint_names"].startswith('["right_ankle"') and props["padding"] == "1.4" and props["fill"] == "7"
    assert {"size", "mean", "std", "limbs", "flip_pairs", "skeleton", "poselit_version"} <= set(props)
    assert props["poselit_format"] == "2" and "input_size" not in props
    runtime.check_card(card_for(model, "same"))


def test_metadata_without_a_card_has_the_models_input_and_round_trips(tiny_file):
    model, _ = tiny_file
    metadata = OnnxMetadata.of_model(model)
    assert (metadata.spec.padding, metadata.spec.fill, metadata.card) == (1.25, 0, None)  # the model's: the defaults
    assert "card" not in metadata.to_props()
    assert OnnxMetadata.from_props(metadata.to_props(), "x.onnx") == metadata


def test_files_that_are_not_poselit_onnx_models_are_refused_naming_them(tmp_path):
    text = tmp_path / "notes.onnx"
    text.write_text("not a model")
    with pytest.raises(ZooError, match=rf"{text}: not a readable ONNX model"):
        OnnxPoseModel.from_file(text)
    with pytest.raises(FileNotFoundError, match="ONNX model not found: .*missing.onnx"):
        OnnxPoseModel.from_file(tmp_path / "missing.onnx")
    other = tmp_path / "identity.onnx"
    node = onnx.helper.make_node("Identity", ["x"], ["y"])
    info = [onnx.helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, [1]) for n in "xy"]
    onnx.save(onnx.helper.make_model(onnx.helper.make_graph([node], "g", info[:1], info[1:])), str(other))
    with pytest.raises(ZooError, match=rf"{other}: metadata key 'poselit_format' is missing: not an ONNX file exported by poselit"):
        OnnxPoseModel.from_file(other)


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("limbs", None, "metadata key 'limbs' is missing"),
        ("size", '"big"', "metadata key 'size' must be \\[height, width\\], two integers in \\[1, 4096\\], got 'big'"),
        ("size", None, "metadata key 'size' is missing"),
        ("fill", "[0", "metadata key 'fill' is not JSON text"),
        ("fill", "300", r"metadata key 'fill' must be an integer in \[0, 255\]"),
        ("std", "[1, 0, 1]", r"metadata key 'std' must be three numbers > 0"),
        ("flip_pairs", "[[0, 99]]", "metadata keys 'joint_names', 'limbs', 'flip_pairs' do not fit together"),
        ("poselit_format", "3", "metadata format 3 was written by a newer poselit"),
    ],
)
def test_missing_or_ill_typed_metadata_is_an_error_naming_the_file_and_key(tiny_file, tmp_path, key, value, message):
    path = edited_file(tiny_file[1], tmp_path / "edited.onnx", {key: value})
    with pytest.raises(ZooError, match=rf"{path}: {message}"):
        OnnxPoseModel.from_file(path)


def edited_file(source: Path, target: Path, changes: dict, *, joints_declared: bool = True) -> Path:
    """``source`` written to ``target`` with its metadata ``changes`` (``None``: the key
    removed); without ``joints_declared`` the outputs' joint axis is left unnamed, as files
    of metadata format 1 have it."""
    proto = onnx.load(str(source))
    props = {p.key: p.value for p in proto.metadata_props}
    del proto.metadata_props[:]
    onnx.helper.set_model_props(proto, {k: v for k, v in {**props, **changes}.items() if v is not None})
    if not joints_declared:
        for output in proto.graph.output[:2]:
            output.type.tensor_type.shape.dim[1].dim_param = "joints"
    onnx.save(proto, str(target))
    return target


def skeleton_props(name: str) -> dict[str, str]:
    """The metadata keys of built-in skeleton ``name``, as a file of that skeleton has them."""
    from poselit.skeletons import SKELETONS

    skeleton = SKELETONS[name]
    values = {"skeleton": name, "joint_names": list(skeleton.joints), "limbs": [list(x) for x in skeleton.limbs],
              "flip_pairs": [list(x) for x in skeleton.flip_pairs]}
    return {key: json.dumps(value) for key, value in values.items()}


@pytest.mark.parametrize(
    "changes, message",
    [
        (skeleton_props("mpii"), r"metadata key 'skeleton' is 'mpii' \(16 joints\) but the graph's output 'keypoints' "
                                 r"has 14 joints"),
        ({"skeleton": '"mpii"'}, r"metadata key 'skeleton' is 'mpii', but 'joint_names', 'limbs' and 'flip_pairs' are "
                                 r"not those of the built-in 'mpii' skeleton \(16 joints"),
        ({"size": "[64, 64]"}, r"metadata key 'size' is \[64, 64\] but the graph's input 'images' has shape "
                               r"\['batch', 3, 32, 32\]"),
        ({"size": "[60000, 60000]"}, r"metadata key 'size' must be \[height, width\], two integers in \[1, 4096\], "
                                     r"got \[60000, 60000\]"),
    ],
    ids=["mpii-on-14-joints", "mpii-name-only", "64-on-32", "absurd-size"],
)
def test_metadata_that_contradicts_the_graph_is_refused_before_running(tiny_file, tmp_path, changes, message):
    """Issue 26, class 3: the file's input description is checked against the graph (input
    shape, number of joints) and for sane values when loaded, before anything runs."""
    path = edited_file(tiny_file[1], tmp_path / "contradicting.onnx", changes)
    with pytest.raises(ZooError, match=rf"^{path}: {message}"):
        OnnxPoseModel.from_file(path)


def test_files_of_metadata_format_1_load_and_their_joints_are_checked_on_the_outputs(tiny_file, tmp_path):
    """Format 1 said ``input_size`` and declared no joint axis: such a file loads and predicts
    as before; one whose skeleton has another joint count than its outputs is refused at its
    first prediction, naming the file."""
    model, source = tiny_file
    props = {p.key: p.value for p in onnx.load(str(source)).metadata_props}
    old = {"poselit_format": "1", "input_size": props["size"], "size": None}
    path = edited_file(source, tmp_path / "old.onnx", old, joints_declared=False)
    runtime = OnnxPoseModel.from_file(path, threads=1)
    assert runtime.input_spec == model.input_spec
    images = crops(model, 2, seed=0)
    with torch.no_grad():
        expected = model.predict_poses(images)["keypoints"]
    assert (runtime.predict_poses(images)["keypoints"] - expected).abs().max() <= KEYPOINT_TOLERANCE
    wrong = edited_file(source, tmp_path / "old-mpii.onnx", {**old, **skeleton_props("mpii")}, joints_declared=False)
    runtime = OnnxPoseModel.from_file(wrong, threads=1)
    with pytest.raises(ZooError, match=rf"^{wrong}: metadata key 'skeleton' is 'mpii' \(16 joints\) but the graph's "
                                       r"output 'keypoints' has 14 joints"):
        Predictor(runtime)(np.zeros((40, 30, 3), np.uint8))


@pytest.mark.parametrize(
    "field, value",
    [("size", [64, 64]), ("mean", [0.0, 0.0, 0.0]), ("std", [1.0, 1.0, 1.0]), ("padding", 1.5), ("fill", 3),
     ("skeleton", "mpii")],
)
def test_metadata_not_matching_the_card_is_an_error_naming_the_file_and_field(tiny_file, field, value):
    model, path = tiny_file  # padding 1.25, fill 0: the defaults
    card = card_for(model, "tiny", **{field: value})
    with pytest.raises(ZooError, match=rf"{path}: input\.{field} is .* but card 'tiny' \(not saved\) says"):
        OnnxPoseModel.from_file(path, card=card)
    OnnxPoseModel.from_file(path, card=card_for(model, "tiny"))  # the matching card
    without = {k: v for k, v in model.input_spec.to_dict().items() if k not in ("padding", "fill")}
    OnnxPoseModel.from_file(path, card=dataclasses.replace(card, input=without))  # an older card: the defaults


def test_an_export_whose_card_does_not_match_or_whose_write_fails_leaves_no_file(tiny_file, tmp_path):
    model, _ = tiny_file
    target = tmp_path / "m.onnx"
    with pytest.raises(ZooError, match=rf"{target}: exporting TinyHeatmapModel: input\.size is \[32, 32\]"):
        export_onnx(model, target, card=card_for(model, "tiny", size=[64, 64]))
    assert not target.exists()
    target.write_bytes(b"earlier export")
    result = run_limited(
        4096,
        f"""
        import sys
        sys.path.insert(0, {str(TESTS)!r})
        from tiny_models import TinyHeatmapModel
        from poselit.onnx import export_onnx
        try:
            export_onnx(TinyHeatmapModel(input_size=(32, 32)), {str(target)!r})
        except OSError as err:
            print(err)
        """,
        tmp_path,
    )
    assert result.stdout.startswith(f"{target}: could not write the file (File too large)"), result.stderr
    assert target.read_bytes() == b"earlier export" and sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]


def test_onnx_models_run_on_the_cpu_only(tiny_file):
    runtime = OnnxPoseModel.from_file(tiny_file[1], threads=1)
    assert runtime.to("cpu") is runtime.eval() is runtime and runtime.device == torch.device("cpu")
    with pytest.raises(ValueError, match="runs on the CPU"):
        runtime.to("cuda")
    with pytest.raises(ValueError, match=r"expected images \(B, 3, 32, 32\), got shape \(1, 3, 16, 16\)"):
        runtime.predict_poses(torch.zeros(1, 3, 16, 16))


def test_latency_benchmark_runs_the_onnx_variant():
    result = run_benchmark("benchmarks/latency.py", "luvizon-tiny-lsp-demo", "--smoke", "--variants", "onnx",
                           "--threads", "1", "--flip", "both")
    rows = result["rows"]
    assert [(r["variant"], r["flip_test"]) for r in rows] == [("onnx", False), ("onnx", True)]
    assert all(r["ms"]["network"] > 0 and r["images_per_s_batch32"] > 0 for r in rows)
    assert rows[0]["method"] == "LuvizonSoftArgmax" and rows[0]["parameters"] > 0


def test_zoo_export_format_onnx_writes_model_onnx_beside_the_weights(tmp_path):
    import pytorch_lightning as pl

    from poselit.cli import main
    from poselit.models import LuvizonSoftArgmax

    torch.manual_seed(0)
    model = LuvizonSoftArgmax(num_blocks=1, width=32, input_size=(64, 64)).eval()
    trainer = pl.Trainer(max_steps=0, logger=False, enable_progress_bar=False, enable_model_summary=False,
                         default_root_dir=tmp_path)
    trainer.strategy.connect(model)
    trainer.save_checkpoint(tmp_path / "model.ckpt")
    out = tmp_path / "export"
    assert main(["zoo", "export", str(tmp_path / "model.ckpt"), "--name", "luvizon-tiny-onnx", "--out", str(out),
                 "--no-card", "--format", "onnx"]) == 0
    runtime = OnnxPoseModel.from_file(out / "model.onnx", threads=1)
    assert runtime.metadata.card == "luvizon-tiny-onnx" and runtime.input_size == (64, 64)
    images = crops(model, 2, seed=0)
    with torch.no_grad():
        expected = model.predict_poses(images)
    assert (runtime.predict_poses(images)["keypoints"] - expected["keypoints"]).abs().max() <= KEYPOINT_TOLERANCE


def test_tensorflow_same_padding_is_exported_as_constants(tmp_path):
    """A backbone with TensorFlow's 'SAME' padding (MoveNet's, timm's ``Conv2dSame``) is
    exported with padding computed once for the input size: no shape arithmetic for it left
    in the graph (``Ceil``), no ``Pad`` naming an empty input (which keeps ONNX Runtime from
    fusing it into its convolution), and the same poses as the model's own."""
    import onnx

    method = METHODS["luvizon"]
    torch.manual_seed(0)
    model = method.load()(**{**method.tiny, "backbone": "poselit_tf_mobilenetv2_100", "pretrained": False})
    model = as_if_trained(model, crops(model, 4, seed=1))
    path = export_onnx(model, tmp_path / "same.onnx")

    def nodes(graph: onnx.GraphProto) -> list[onnx.NodeProto]:
        branches = [a.g for node in graph.node for a in node.attribute if a.type == onnx.AttributeProto.GRAPH]
        return [*graph.node, *(node for branch in branches for node in nodes(branch))]

    graph_nodes = nodes(onnx.load(path).graph)
    assert {"Pad", "Conv"} <= {node.op_type for node in graph_nodes} and "Ceil" not in {n.op_type for n in graph_nodes}
    assert all(node.input[-1] for node in graph_nodes if node.input)
    images = crops(model, 2, seed=2)
    with torch.no_grad():
        expected = model.predict_poses(images, flip_test=True)
    got = OnnxPoseModel.from_file(path, threads=1).predict_poses(images, flip_test=True)
    assert (got["keypoints"] - expected["keypoints"]).abs().max() <= KEYPOINT_TOLERANCE
