"""The model owns its input description, one :class:`~poselit.input_spec.InputSpec`
(skeleton, size, mean, std, padding, fill): linked from the data module by ``poselit fit``,
resolved by one rule (explicit arguments, the backbone's ``pretrained_cfg``, the defaults),
recorded in checkpoints, stated once in cards and in the ONNX metadata, read back by
``Predictor`` from any model that has one; older checkpoints and cards keep loading with the
crop they were trained with (else the defaults), and a card whose two statements of it
disagree is refused, whichever the field."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import torch

from poselit import zoo
from poselit.geometry import DEFAULT_FILL, DEFAULT_PADDING, invert_affine
from poselit.input_spec import IMAGENET_MEAN, INIT_ARGS, InputSpec, PoseModel
from poselit.models import BulatCascade, LuvizonSoftArgmax
from poselit.models.base import PoseLitModule
from poselit.predict import Predictor
from poselit.zoo.export import checkpoint_model_args, export_checkpoint

pytestmark = pytest.mark.usefixtures("one_thread")  # small tensors (tests/conftest.py)

REPO = Path(__file__).resolve().parents[1]
DEMO = "luvizon-tiny-lsp-demo"


def outside_pixels(crop: np.ndarray) -> np.ndarray:
    """The crop's top rows: outside the image for a box whose margin reaches above it."""
    return crop[:4]


@pytest.mark.slow
def test_a_model_fit_with_fill_128_predicts_and_exports_with_fill_128(tmp_path, monkeypatch):
    """``--data.fill=128 --data.padding=1.4`` in ``poselit fit`` reach the model, its
    checkpoint, the exported card and ``Predictor``, without being given again."""
    from poselit.cli.lightning import run_lightning
    from poselit.data.synthetic import write_synthetic_lsp

    monkeypatch.setenv("WANDB_MODE", "disabled")
    data = write_synthetic_lsp(tmp_path / "synth", num_images=8, size=(96, 72), seed=1)
    run = tmp_path / "run"
    cli = run_lightning([
        "fit", "-c", str(REPO / "recipes/smoke/belagiannis.yaml"), "--data.fill=128", "--data.padding=1.4",
        f"--data.train=[lsp:train@{data}]", f"--data.val=[lsp:test@{data}]", "--trainer.max_epochs=1",
        f"--trainer.default_root_dir={run}", f"--trainer.logger.init_args.save_dir={run}",
        "--trainer.enable_progress_bar=false",
    ])
    assert (cli.model.padding, cli.model.fill) == (1.4, 128)
    (last,) = run.rglob("last.ckpt")
    card = export_checkpoint(last, "belagiannis-tiny-fill", tmp_path / "export", zoo_dir=tmp_path / "zoo", ship=True,
                             evaluate=[f"lsp:test@{data}"])
    assert (card.input["padding"], card.input["fill"]) == (1.4, 128)
    assert not set(INIT_ARGS.values()) & set(card.init_args)  # stated once, in input

    predictor = Predictor.from_zoo(card.name, zoo_dir=tmp_path / "zoo")
    assert (predictor.padding, predictor.fill) == (1.4, 128)
    image = np.full((72, 96, 3), 30, np.uint8)
    (person,) = predictor(image, box=[30, 0, 30, 60], return_heatmaps=True)  # the margin reaches above the image
    assert (outside_pixels(person.crop) == 128).all()
    assert (predictor.model.padding, predictor.model.fill) == (1.4, 128)


def test_predictor_crops_with_the_models_padding_and_fill_unless_given():
    torch.manual_seed(0)
    model = LuvizonSoftArgmax(num_blocks=1, width=32, input_size=(64, 64), padding=1.5, fill=128)
    image = np.full((72, 96, 3), 30, np.uint8)
    box = [30, 0, 30, 60]
    (person,) = Predictor(model)(image, box=box, return_heatmaps=True)
    assert (outside_pixels(person.crop) == 128).all()
    side = person.scale * 200 * 1.5  # the crop spans the box with the model's margin
    assert person.affine[0, 0] * 64 == pytest.approx(side, rel=1e-5)
    (person,) = Predictor(model, padding=1.25, fill=0)(image, box=box, return_heatmaps=True)
    assert (outside_pixels(person.crop) == 0).all() and person.affine[0, 0] * 64 == pytest.approx(person.scale * 250)


def test_poselit_predict_crops_with_the_models_padding_and_fill_unless_given(monkeypatch):
    from poselit.cli import build_parser
    from poselit.cli.predict import _predictor

    torch.manual_seed(0)
    model = LuvizonSoftArgmax(num_blocks=1, width=32, input_size=(64, 64), padding=1.5, fill=128)
    monkeypatch.setattr("poselit.zoo.load", lambda name, **kwargs: model)
    command = ["predict", "a.jpg", "--model", "m", "--out", "o", "--device", "cpu"]
    predictor = _predictor(build_parser().parse_args(command))
    assert (predictor.padding, predictor.fill) == (1.5, 128)
    predictor = _predictor(build_parser().parse_args([*command, "--padding", "1.25", "--fill", "0"]))
    assert (predictor.padding, predictor.fill) == (1.25, 0)


def test_bad_fill_is_refused_naming_it():
    for fill in (-1, 256, 1.5, "128", True):
        with pytest.raises(ValueError, match=r"fill must be an integer in \[0, 255\] \(a pixel value\)"):
            PoseLitModule(fill=fill)
    with pytest.raises(ValueError, match=r"fill must be an integer in \[0, 255\]"):
        Predictor(zoo.load(DEMO), fill=300)


def test_cards_without_fill_or_crop_arguments_load_with_their_input_else_the_defaults(tmp_path):
    """The shipped cards record ``input.padding`` but no ``fill``, and their ``init_args``
    neither: the model gets the card's padding and the default fill. A card of that age
    whose ``input`` says otherwise is followed."""
    model = zoo.load(DEMO)
    assert (model.padding, model.fill) == (DEFAULT_PADDING, DEFAULT_FILL)
    assert model.input_spec.to_dict() == {**zoo.info(DEMO).input, "fill": DEFAULT_FILL}

    card = zoo.info(DEMO)
    assert "padding" not in card.init_args and "fill" not in card.input
    folder = demo_copy(tmp_path)
    init_args = {k: v for k, v in card.init_args.items() if k != "input_size"}  # the size in input only
    zoo.write_card(replace(card, init_args=init_args, input={**card.input, "padding": 1.5, "fill": 128}),
                   folder / f"{DEMO}.yaml")
    edited = zoo.load(DEMO, zoo_dir=folder)
    assert (edited.padding, edited.fill, edited.input_size) == (1.5, 128, (128, 128))
    assert (Predictor(edited).padding, Predictor(edited).fill) == (1.5, 128)


def demo_copy(tmp_path: Path) -> Path:
    """A card folder holding the demo model's weights (its card is written by the test)."""
    card = zoo.info(DEMO)
    folder = tmp_path / "zoo"
    folder.mkdir()
    (folder / card.weights_path().name).write_bytes(card.weights_path().read_bytes())
    return folder


@pytest.mark.parametrize(
    "field, init_args, input_value, shown",
    [
        ("skeleton", {}, "mpii", "'mpii' but init_args.skeleton is 'lsp'"),
        ("size", {}, [64, 64], r"\[64, 64\] but init_args.input_size is \[128, 128\]"),
        ("mean", {}, [0.0, 0.0, 0.0], r"\[0.0, 0.0, 0.0\] but init_args.mean is \[127.5, 127.5, 127.5\]"),
        ("std", {}, [1.0, 1.0, 1.0], r"\[1.0, 1.0, 1.0\] but init_args.std is \[127.5, 127.5, 127.5\]"),
        ("padding", {"padding": 1.25}, 1.5, "1.5 but init_args.padding is 1.25"),
        ("fill", {"fill": 0}, 128, "128 but init_args.fill is 0"),
    ],
)
def test_a_card_whose_input_and_init_args_disagree_is_refused_whatever_the_field(
    tmp_path, field, init_args, input_value, shown
):
    """Issue 26, class 3: a card of format 1 states its input twice; it loads only when the
    two agree (an MPII ``input.skeleton`` on LSP ``init_args`` used to load and predict with
    LSP, an ``input.size`` of 64 on ``init_args.input_size`` 128 to crop at 128)."""
    card = zoo.info(DEMO)
    folder = demo_copy(tmp_path)
    path = folder / f"{DEMO}.yaml"
    zoo.write_card(replace(card, init_args={**card.init_args, **init_args}, input={**card.input, field: input_value}),
                   path)
    with pytest.raises(zoo.ZooError, match=rf"^{path}: input.{field} is {shown}; the model's input is decided once"):
        zoo.load(DEMO, zoo_dir=folder)
    zoo.write_card(replace(card, init_args={**card.init_args, **init_args}), path)  # agreeing: loads
    assert zoo.load(DEMO, zoo_dir=folder).input_spec == zoo.load(DEMO).input_spec


@pytest.mark.parametrize(
    "input_, message",
    [
        ({"size": [60000, 60000]}, r"field 'input.size' must be \[height, width\], two integers in \[1, 4096\]"),
        ({"std": [1, 1, 0]}, r"field 'input.std' must be three numbers > 0"),
        ({"skeleton": "mpi"}, r"field 'input.skeleton' must be a built-in skeleton name .*unknown skeleton 'mpi'"),
        ({"sizes": [64, 64]}, r"field 'input.sizes' is not a field of the input description"),
    ],
)
def test_a_card_with_a_bad_input_field_is_refused_naming_it(tmp_path, input_, message):
    card = zoo.info(DEMO)
    folder = demo_copy(tmp_path)
    zoo.write_card(replace(card, input={**card.input, **input_}), folder / f"{DEMO}.yaml")
    with pytest.raises(zoo.ZooError, match=rf"{folder / DEMO}.yaml: {message}"):
        zoo.info(DEMO, zoo_dir=folder)


def test_the_spec_resolves_explicit_arguments_then_the_backbones_pretrained_cfg_then_the_defaults():
    """timm's ``resolve_data_config``: a ``mean`` / ``std`` not given is what the backbone's
    ``pretrained_cfg`` says its weights expect (MoveNet's backbone: x / 127.5 - 1), and is
    recorded in the hyper-parameters, so that a checkpoint rebuilds the same model."""
    tiny = {"regressor_width": 32, "regressor_depth": 2, "input_size": (64, 64)}
    movenet = BulatCascade(backbone="poselit_tf_mobilenetv2_100", **tiny)
    assert movenet.input_spec.mean == movenet.input_spec.std == (127.5, 127.5, 127.5)
    assert movenet.hparams["mean"] == (127.5, 127.5, 127.5) and movenet.mean.flatten().tolist() == [127.5] * 3
    imagenet = BulatCascade(backbone="resnet18", **tiny)
    assert imagenet.input_spec.mean == InputSpec().mean == (123.675, 116.28, 103.53)
    given = BulatCascade(backbone="poselit_tf_mobilenetv2_100", mean=(1.0, 2.0, 3.0), **tiny)
    assert given.input_spec.mean == (1.0, 2.0, 3.0) and given.input_spec.std == (127.5, 127.5, 127.5)
    plain = PoseLitModule()  # no backbone: the defaults, the float32 ImageNet values
    assert plain.input_spec == InputSpec() and torch.equal(plain.mean.flatten(), torch.tensor(IMAGENET_MEAN))
    with pytest.raises(ValueError, match=r"^input_size must be \[height, width\], two integers in \[1, 4096\]"):
        PoseLitModule(input_size=(0, 64))


@pytest.mark.parametrize("method", ["bulat", "belagiannis", "luvizon"])
def test_every_method_on_a_timm_backbone_takes_its_normalisation_unless_given(method):
    """No method keeps a ``mean`` / ``std`` of its own: on a timm backbone built without
    them, the model normalises as the backbone's ``pretrained_cfg`` says (MoveNet's
    backbone: x / 127.5 - 1, not the defaults' ImageNet values); the papers' trunks state
    the papers' normalisation the same way, and an explicit value wins over both."""
    from poselit.models import METHODS, import_class

    cls, tiny = import_class(METHODS[method].class_path), METHODS[method].tiny
    movenet = cls(**{**tiny, "backbone": "poselit_tf_mobilenetv2_100"})
    assert movenet.input_spec.mean == movenet.input_spec.std == (127.5, 127.5, 127.5)
    assert movenet.hparams["mean"] == (127.5, 127.5, 127.5)  # recorded: a checkpoint rebuilds the same model
    given = cls(**{**tiny, "backbone": "poselit_tf_mobilenetv2_100", "mean": (1.0, 2.0, 3.0), "std": (4.0, 5.0, 6.0)})
    assert (given.input_spec.mean, given.input_spec.std) == ((1.0, 2.0, 3.0), (4.0, 5.0, 6.0))
    paper = {"bulat": IMAGENET_MEAN, "belagiannis": (128.0,) * 3, "luvizon": (127.5,) * 3}[method]
    assert cls(**tiny).input_spec.mean == InputSpec(mean=paper).mean  # the tiny's trunk: the paper's, or resnet18


def test_input_description_is_deprecated_for_input_spec():
    model = PoseLitModule(input_size=(64, 48), fill=128)
    with pytest.warns(DeprecationWarning, match=r"input_description\(\) is deprecated: use model.input_spec"):
        assert model.input_description() == model.input_spec.to_dict()
    with pytest.raises(TypeError, match="model must be a pose model with an input spec"):
        Predictor(torch.nn.Linear(1, 1))


def test_checkpoints_saved_before_the_model_owned_its_crop_take_the_data_modules():
    hparams = {"num_blocks": 1, "width": 32, "input_size": [64, 64]}
    old = {"hyper_parameters": hparams, "datamodule_hyper_parameters": {"padding": 1.5, "fill": 128}}
    _, init_args = checkpoint_model_args(old, "poselit.models.luvizon.LuvizonSoftArgmax", "old.ckpt")
    assert (init_args["padding"], init_args["fill"]) == (1.5, 128)
    new = {**old, "hyper_parameters": {**hparams, "padding": 1.25, "fill": 0}}  # the model's own win
    _, init_args = checkpoint_model_args(new, "poselit.models.luvizon.LuvizonSoftArgmax", "new.ckpt")
    assert (init_args["padding"], init_args["fill"]) == (1.25, 0)
    _, init_args = checkpoint_model_args({"hyper_parameters": hparams}, "poselit.models.luvizon.LuvizonSoftArgmax", "x")
    assert "padding" not in init_args and "fill" not in init_args  # nothing recorded: the defaults


@pytest.mark.filterwarnings("ignore:.*the person looks small")  # an untrained model's pose
def test_a_non_square_model_keeps_one_spec_through_card_and_onnx_and_predicts_whole_images(tmp_path):
    """Issue 25's check: a model with a non-square input and a padding, fill, mean and std
    of its own, exported as a card and as ONNX, loaded back from both: the same spec
    everywhere, and a whole non-square image of the model's aspect predicted through either
    with every joint inside the image; a landscape photo is seen whole too, the model's fill
    above and below it."""
    pytest.importorskip("onnxruntime")
    from poselit.onnx import OnnxPoseModel, export_onnx

    torch.manual_seed(0)
    model = LuvizonSoftArgmax(num_blocks=1, width=32, input_size=(64, 48), padding=1.4, fill=77,
                              mean=(100.0, 110.0, 120.0), std=(50.0, 60.0, 70.0)).eval()
    spec = model.input_spec
    assert spec == InputSpec("lsp", (64, 48), (100.0, 110.0, 120.0), (50.0, 60.0, 70.0), 1.4, 77)
    trainer = pl.Trainer(max_steps=0, logger=False, enable_progress_bar=False, enable_model_summary=False,
                         default_root_dir=tmp_path)
    trainer.strategy.connect(model)
    trainer.save_checkpoint(tmp_path / "model.ckpt")

    card = export_checkpoint(tmp_path / "model.ckpt", "luvizon-nonsquare", tmp_path / "export", zoo_dir=tmp_path / "zoo")
    assert card.input == spec.to_dict() and not set(INIT_ARGS.values()) & set(card.init_args)  # stated once
    config = json.loads((tmp_path / "export" / "config.json").read_text())
    assert config["format_version"] == 2 and config["input"] == spec.to_dict()
    loaded, loaded_card = zoo.load_with_card(card.name, zoo_dir=tmp_path / "zoo")
    assert loaded.input_spec == spec and loaded_card.input == card.input
    onnx_file = export_onnx(loaded, tmp_path / "model.onnx", card=loaded_card)
    runtime = OnnxPoseModel.from_file(onnx_file, threads=1, card=loaded_card)
    assert runtime.input_spec == spec

    rng = np.random.default_rng(0)
    portrait = rng.integers(0, 256, (160, 120, 3), np.uint8)  # the model's aspect: the crop is the image
    landscape = rng.integers(0, 256, (120, 200, 3), np.uint8)
    results = []
    for pose_model in (loaded, runtime):
        assert isinstance(pose_model, PoseModel)
        predictor = Predictor(pose_model, runtime="torch" if pose_model is loaded else None)
        assert predictor.input_spec == spec and (predictor.padding, predictor.fill) == (1.4, 77)
        people = predictor([portrait, landscape], return_heatmaps=True)
        for person, (height, width) in zip(people, ((160, 120), (120, 200))):
            assert person.crop.shape == (64, 48, 3)
            edges = np.array([[-0.5, -0.5, 1], [width - 0.5, height - 0.5, 1]]) @ invert_affine(person.affine).T
            assert edges[:, 0] == pytest.approx([-0.5, 47.5])  # the image's whole width, in the crop's
            assert (edges[:, 1] >= -0.5 - 1e-6).all() and (edges[:, 1] <= 63.5 + 1e-6).all()  # and whole height
        portrait_pose = people[0].keypoints
        assert (portrait_pose >= -0.5).all() and (portrait_pose <= [119.5, 159.5]).all(), portrait_pose
        assert (people[1].crop[0] == 77).all()  # above the landscape photo: the model's fill
        results.append(people)
    for a, b in zip(*results):
        assert np.abs(a.keypoints - b.keypoints).max() <= 0.01
