"""``poselit fit / validate / test`` through LightningCLI with the recipes."""

import csv
from pathlib import Path

import pytest

from poselit.cli import main
from poselit.data.synthetic import write_synthetic_lsp
from poselit.training import run_lightning, without_wandb

REPO = Path(__file__).resolve().parents[1]
RECIPES = sorted((REPO / "recipes").rglob("*.yaml"))


@pytest.fixture(scope="module")
def smoke_data(tmp_path_factory):
    return write_synthetic_lsp(tmp_path_factory.mktemp("smoke") / "synth", num_images=40, size=(96, 72), seed=1)


def _overrides(data: Path, out: Path, epochs: int) -> list[str]:
    return [
        f"--data.train=[lsp:train@{data}]", f"--data.val=[lsp:test@{data}]", "--data.input_size=[64,64]",
        f"--trainer.max_epochs={epochs}", f"--trainer.default_root_dir={out}",
        f"--trainer.logger.init_args.save_dir={out}", "--trainer.enable_progress_bar=false",
    ]


def _csv_metrics(out: Path) -> list[dict[str, str]]:
    (metrics,) = out.rglob("metrics.csv")
    with metrics.open() as file:
        return list(csv.DictReader(file))


@pytest.mark.slow
def test_smoke_recipe_trains_and_improves_validation_pck(smoke_data, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")  # -> CSV logger fallback
    recipe = str(REPO / "recipes/smoke/belagiannis.yaml")
    untrained = run_lightning(["validate", "-c", recipe, *_overrides(smoke_data, tmp_path / "untrained", 1)])
    before = untrained.trainer.callback_metrics["val/pck"].item()
    trained = run_lightning(["fit", "-c", recipe, *_overrides(smoke_data, tmp_path / "fit", 10)])
    after = trained.trainer.callback_metrics["val/pck"].item()
    assert after > before + 10, (before, after)
    rows = [r for r in _csv_metrics(tmp_path / "fit") if r.get("val/pck")]
    assert len(rows) == 10  # one validation per epoch, logged to CSV
    assert list((tmp_path / "fit").rglob("last.ckpt")) and list((tmp_path / "fit").rglob("best-*.ckpt"))
    assert list((tmp_path / "fit").rglob("val_epoch009.png"))


@pytest.mark.slow
def test_wandb_offline_run_holds_the_logged_metrics(smoke_data, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    recipe = str(REPO / "recipes/smoke/belagiannis.yaml")
    assert main(["fit", "-c", recipe, *_overrides(smoke_data, tmp_path, 1)]) == 0
    import wandb

    wandb.finish()  # the run is closed (and its file flushed) at exit, or here
    (run,) = tmp_path.rglob("offline-run-*")
    (log,) = run.glob("run-*.wandb")
    content = log.read_bytes()
    assert b"val/pck" in content and b"train/loss" in content


def test_without_wandb_swaps_only_wandb_loggers():
    from jsonargparse import Namespace

    wandb = Namespace(class_path="pytorch_lightning.loggers.WandbLogger", init_args=Namespace(save_dir="x"))
    other = Namespace(class_path="pytorch_lightning.loggers.TensorBoardLogger")
    swapped = without_wandb([wandb, other])
    assert swapped[0].class_path.endswith("CSVLogger") and swapped[0].init_args.save_dir == "x"
    assert swapped[1] is other and without_wandb(True) is True


@pytest.mark.parametrize("recipe", RECIPES, ids=[str(r.relative_to(REPO / "recipes")) for r in RECIPES])
def test_every_recipe_parses_and_instantiates(recipe, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    offline = ["--model.init_args.pretrained=false"] if "pretrained: true" in recipe.read_text() else []
    cli = run_lightning(["-c", str(recipe), f"--trainer.default_root_dir={tmp_path}", *offline], run=False)
    assert cli.model.skeleton == cli.datamodule.skeleton  # linked from the data
    assert tuple(cli.model.input_size) == tuple(cli.datamodule.hparams.input_size)
