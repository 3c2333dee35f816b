"""The model owns its input description (size, padding, fill, mean, std, skeleton): linked
from the data module by ``poselit fit``, recorded in checkpoints and cards, read back by
``Predictor`` and the exports; older checkpoints and cards keep loading with the crop they
were trained with (else the defaults)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from poselit import zoo
from poselit.geometry import DEFAULT_FILL, DEFAULT_PADDING
from poselit.models import LuvizonSoftArgmax
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
    assert (card.init_args["padding"], card.init_args["fill"]) == (1.4, 128)

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
    assert model.input_description() == {**zoo.info(DEMO).input, "fill": DEFAULT_FILL}

    card = zoo.info(DEMO)
    assert "padding" not in card.init_args and "fill" not in card.input
    folder = tmp_path / "zoo"
    folder.mkdir()
    (folder / card.weights_path().name).write_bytes(card.weights_path().read_bytes())
    zoo.write_card(replace(card, input={**card.input, "padding": 1.5, "fill": 128}), folder / f"{DEMO}.yaml")
    edited = zoo.load(DEMO, zoo_dir=folder)
    assert (edited.padding, edited.fill) == (1.5, 128)
    assert (Predictor(edited).padding, Predictor(edited).fill) == (1.5, 128)


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
