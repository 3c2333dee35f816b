"""``poselit fit / validate / test`` through LightningCLI with the recipes."""

import csv
import sys
import warnings
from pathlib import Path

import pytest
import torch

from poselit.cli import main
from poselit.data.synthetic import write_synthetic_lsp
from poselit.cli.lightning import run_lightning, wandb_api_key_configured, without_wandb
from poselit.cli.reproduce import reproduce
from poselit.reproduce import is_sidecar, read_paper_row, sidecar_path

REPO = Path(__file__).resolve().parents[1]
RECIPES = sorted(r for r in (REPO / "recipes").rglob("*.yaml") if not is_sidecar(r) and r.parent.name != "overlays")
SIDECARS = sorted(r for r in (REPO / "recipes").rglob("*.yaml") if is_sidecar(r))


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
def test_wandb_offline_run_holds_the_logged_metrics(smoke_data, tmp_path):
    """``poselit fit`` as a user runs it, in its own process: the run's file is complete only
    once wandb-core has exited, which wandb's exit hook waits for. (In-process,
    ``wandb.finish()`` returned before the last records, ``val/pck`` among them, were
    flushed under load, and ``wandb.teardown()`` leaves wandb unusable for later tests.)"""
    import os
    import subprocess
    import sys

    recipe = str(REPO / "recipes/smoke/belagiannis.yaml")
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "poselit.cli", "fit", "-c", recipe, *_overrides(smoke_data, tmp_path, 1)],
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    (run,) = tmp_path.rglob("offline-run-*")
    (log,) = run.glob("run-*.wandb")
    content = log.read_bytes()
    assert b"val/pck" in content and b"train/loss" in content


@pytest.fixture
def no_wandb_key(tmp_path, monkeypatch):
    """A machine where W&B has no API key and WANDB_MODE is not set (its files in tmp_path)."""
    for name in ("WANDB_API_KEY", "WANDB_IDENTITY_TOKEN_FILE", "WANDB_MODE", "WANDB_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "wandb-config"))


def test_wandb_key_is_found_in_the_environment_or_netrc(no_wandb_key, tmp_path, monkeypatch):
    assert not wandb_api_key_configured()
    netrc = tmp_path / "no-netrc"
    netrc.write_text("machine api.wandb.ai login user password 0123456789abcdef\n")
    netrc.chmod(0o600)
    assert wandb_api_key_configured()
    monkeypatch.setenv("WANDB_BASE_URL", "https://wandb.example.org")  # a key for another server
    assert not wandb_api_key_configured()
    monkeypatch.setenv("WANDB_API_KEY", "0123456789abcdef")
    assert wandb_api_key_configured()


@pytest.mark.slow
def test_without_a_wandb_key_training_logs_offline_and_says_so_in_one_line_and_exports_with_its_recipe(no_wandb_key, smoke_data, tmp_path, capsys):
    assert main(["fit", *_smoke(smoke_data, tmp_path)]) == 0
    import wandb

    wandb.teardown()  # the offline run's files are complete once the service has exited
    err = capsys.readouterr().err
    ours = [line for line in err.splitlines() if line.startswith("poselit:")]
    assert len(ours) == 1 and "no W&B API key" in ours[0] and "logging offline" in ours[0], err
    assert "Traceback" not in err and "UsageError" not in err
    (run,) = tmp_path.rglob("offline-run-*")
    assert list(run.glob("run-*.wandb"))
    # the export of a WandbLogger run finds the run's configuration (config.yaml is in save_dir)
    (ckpt,) = tmp_path.rglob("last.ckpt")
    assert main(["zoo", "export", str(ckpt), "--name", "smoke", "--out", str(tmp_path / "export"), "--no-card"]) == 0
    assert "pytorch_lightning.loggers.WandbLogger" in (tmp_path / "export" / "recipe.yaml").read_text()


def test_wandb_online_without_a_key_stops_with_a_fix(no_wandb_key, smoke_data, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "online")
    assert main(["fit", *_smoke(smoke_data, tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "WANDB_MODE=online but no W&B API key" in err and "wandb login" in err and "Traceback" not in err
    assert not list(tmp_path.rglob("*.ckpt"))


def test_lightning_gets_the_arguments_once_and_does_not_warn(smoke_data, tmp_path, monkeypatch):
    """``poselit fit -c R`` used to pass ``args=`` while ``sys.argv`` held the same command,
    and Lightning warned on every run that both were given."""
    monkeypatch.setenv("WANDB_MODE", "disabled")
    argv = ["poselit", "fit", "-c", "recipe.yaml"]  # as the console script sees it
    monkeypatch.setattr(sys, "argv", argv)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cli = run_lightning(_smoke(smoke_data, tmp_path), run=False)
    messages = [str(w.message) for w in caught]
    assert not [m for m in messages if "args" in m and "command line" in m], messages
    assert cli.datamodule is not None and sys.argv is argv  # restored


def test_without_wandb_swaps_only_wandb_loggers():
    from jsonargparse import Namespace

    wandb = Namespace(class_path="pytorch_lightning.loggers.WandbLogger", init_args=Namespace(save_dir="x"))
    other = Namespace(class_path="pytorch_lightning.loggers.TensorBoardLogger")
    swapped = without_wandb([wandb, other])
    assert swapped[0].class_path.endswith("CSVLogger") and swapped[0].init_args.save_dir == "x"
    assert swapped[1] is other and without_wandb(True) is True


@pytest.mark.parametrize("recipe", RECIPES, ids=[str(r.relative_to(REPO / "recipes")) for r in RECIPES])
def test_every_recipe_parses_and_instantiates(recipe, tmp_path, monkeypatch, request):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    if "coco@" in recipe.read_text():  # the skeleton of COCO-format data is read from its file
        monkeypatch.setenv("POSELIT_DATA", str(request.getfixturevalue("data_root")))
    offline = ["--model.init_args.pretrained=false"] if "pretrained: true" in recipe.read_text() else []
    if "backbone_weights:" in recipe.read_text():  # a local ImageNet file that CI does not have
        offline.append("--model.init_args.backbone_weights=null")
    cli = run_lightning(["-c", str(recipe), f"--trainer.default_root_dir={tmp_path}", *offline], run=False)
    assert cli.model.skeleton == cli.datamodule.skeleton  # linked from the data
    assert tuple(cli.model.input_size) == tuple(cli.datamodule.hparams.input_size)


def test_finetune_recipe_validates_on_people_it_does_not_train_on(data_root, tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    monkeypatch.setenv("POSELIT_DATA", str(data_root))
    cli = run_lightning(["-c", str(REPO / "recipes/finetune/coco_keypoints.yaml"),
                         f"--trainer.default_root_dir={tmp_path}"], run=False)
    (train,) = cli.datamodule.annotations("train")
    (val,) = cli.datamodule.annotations("val")  # the hold-out only: no other validation set
    train_people, val_people = {r.source for r in train.records}, {r.source for r in val.records}
    assert len(val_people) == 16 and not train_people & val_people and len(train_people) + 16 == 86


CPU_RECIPES = sorted((REPO / "recipes/cpu").glob("*.yaml"))


@pytest.mark.parametrize("recipe", CPU_RECIPES, ids=[r.stem for r in CPU_RECIPES])
def test_cpu_recipes_train_two_steps_and_validate_on_held_out_people(recipe, smoke_data, tmp_path, monkeypatch):
    """The CPU recipes (one per method, on the shared backbone) run as written, but for
    generated data, a small input, no ImageNet file and a hold-out that fits the data."""
    monkeypatch.setenv("WANDB_MODE", "disabled")
    text = recipe.read_text()
    assert "val: []" in text and "holdout: 500" in text and "lsp:test" not in text.split("val:")[1].split("\n")[0]
    cli = run_lightning([
        "fit", "-c", str(recipe), f"--data.train=[lsp:train@{smoke_data}]", "--data.test=[]", "--data.holdout=4",
        "--data.input_size=[64,64]", "--data.batch_size=4", "--data.num_workers=0", "--model.init_args.backbone_weights=null",
        "--trainer.max_epochs=1", "--trainer.limit_train_batches=2", "--trainer.limit_val_batches=1",
        f"--trainer.default_root_dir={tmp_path}",
        "--trainer.logger=false", "--trainer.callbacks=[]", "--trainer.enable_progress_bar=false",
    ])
    assert cli.trainer.global_step == 2 and cli.trainer.precision == "bf16-mixed"
    assert cli.model.feature_extractor().name == "mobilenetv2_100" and cli.model.input_size == (64, 64)  # the shared trunk
    assert "val/pck" in cli.trainer.callback_metrics  # validation ran on the held-out people
    assert len(cli.datamodule.datasets["val"]) == 1 and len(cli.datamodule.datasets["val"][0]) == 4


OVERLAYS = sorted((REPO / "recipes/cpu/overlays").glob("*.yaml"))


@pytest.mark.parametrize("recipe", CPU_RECIPES, ids=[r.stem for r in CPU_RECIPES])
@pytest.mark.parametrize("overlay", OVERLAYS, ids=[r.stem for r in OVERLAYS])
def test_cpu_overlays_layer_on_every_cpu_recipe(overlay, recipe, tmp_path, monkeypatch):
    """recipes/cpu/overlays/ change a CPU recipe's start and schedule, not its method."""
    monkeypatch.setenv("WANDB_MODE", "disabled")
    cli = run_lightning(["-c", str(recipe), "-c", str(overlay), "--model.init_args.backbone_weights=null",
                         f"--trainer.default_root_dir={tmp_path}"], run=False)
    alone = run_lightning(["-c", str(recipe), "--model.init_args.backbone_weights=null",
                           f"--trainer.default_root_dir={tmp_path}"], run=False)
    assert type(cli.model) is type(alone.model) and cli.trainer.precision == "32-true"
    scheduler = cli.model.configure_optimizers()["lr_scheduler"]["scheduler"]
    assert isinstance(scheduler, torch.optim.lr_scheduler.CosineAnnealingLR)
    assert scheduler.T_max == cli.trainer.max_epochs  # decays to eta_min by the last epoch
    if overlay.stem == "movenet":
        assert cli.model.feature_extractor().name == "poselit_tf_mobilenetv2_100"
        assert cli.model.mean.flatten().tolist() == [127.5] * 3 == cli.model.std.flatten().tolist()
    else:
        assert cli.model.feature_extractor().name == "mobilenetv2_100"


def test_recipe_folders_cover_every_method():
    folders = {r.parent.name for r in RECIPES}
    assert {"bulat", "belagiannis", "luvizon", "lsp", "smoke"} <= folders
    assert {r.stem.rsplit("_", 1)[-1] for r in (REPO / "recipes/bulat").glob("mpii_*.yaml")} >= {"detector", "regressor", "joint"}


@pytest.mark.parametrize("sidecar", SIDECARS, ids=[str(r.relative_to(REPO / "recipes")) for r in SIDECARS])
def test_every_published_row_is_valid_and_names_a_recipe(sidecar):
    recipe = sidecar.with_name(sidecar.name.replace(".paper.yaml", ".yaml"))
    assert recipe.is_file() and sidecar_path(recipe) == sidecar
    row = read_paper_row(recipe)
    assert row.table in recipe.read_text() or row.table.split()[-1] in recipe.read_text()
    for reference in row.references:
        assert reference.values["Total"] > 50  # a published total, not a placeholder


def test_published_row_errors_name_the_file_and_field(tmp_path):
    recipe = tmp_path / "r.yaml"
    with pytest.raises(FileNotFoundError, match="r.paper.yaml does not exist"):
        read_paper_row(recipe)
    head = "paper: bulat2016\ncitation: x\ntable: T\nrow: R\nresults:\n"
    sidecar_path(recipe).write_text(head + "- {dataset: lsp:test, metric: PCK@0.2, values: {Total: 90.7}}\n")
    with pytest.raises(ValueError, match=r"r.paper.yaml: results\[0\] has no 'published' field"):
        read_paper_row(recipe)  # the numbers are cited from poselit.tables.PUBLISHED, not copied
    sidecar_path(recipe).write_text(head + "- {published: bulat2016/table7-resnet}\n")
    with pytest.raises(ValueError, match=r"results\[0\].published: no published row 'bulat2016/table7-resnet'.*"
                                         r"close: bulat2016/table7-residual"):
        read_paper_row(recipe)
    sidecar_path(recipe).write_text(head + "- {published: luvizon2017/table3}\n")
    with pytest.raises(ValueError, match="names a row of luvizon2017, not of bulat2016"):
        read_paper_row(recipe)
    sidecar_path(recipe).write_text("paper: nobody2020\n")
    with pytest.raises(ValueError, match="paper 'nobody2020' is not one of"):
        read_paper_row(recipe)


def _recipe_checkpoint(path, recipe, *overrides):
    """A real checkpoint of a recipe's (untrained) model, as written by LightningCLI."""
    cli = run_lightning(["validate", "-c", str(recipe), "--trainer.logger=false", "--trainer.limit_val_batches=1",
                         "--trainer.enable_progress_bar=false", *overrides])
    cli.trainer.save_checkpoint(path)
    return path


def test_reproduce_prints_our_row_beside_the_papers(smoke_data, tmp_path, capsys):
    recipe = REPO / "recipes/lsp/belagiannis_recurrent2.yaml"
    overrides = [f"--data.test=[lsp:test@{smoke_data}]", "--data.input_size=[64,64]", "--data.num_workers=0",
                 "--trainer.enable_progress_bar=false", f"--trainer.default_root_dir={tmp_path}"]
    ckpt = _recipe_checkpoint(tmp_path / "model.ckpt", recipe, f"--data.val=[lsp:test@{smoke_data}]", *overrides)
    assert main(["reproduce", str(recipe), "--ckpt", str(ckpt), "--json", str(tmp_path / "t.json"), "--", *overrides]) == 0
    printed = capsys.readouterr().out
    assert "Belagiannis & Zisserman 2017, Table IV: Ours (MPII & LSP, 2 it.)" in printed and "85.2" in printed
    notes = read_paper_row(recipe).notes
    assert notes and all(f"- {note}" in printed for note in notes)  # how the recipe deviates
    (pck,) = [t for t in reproduce(recipe, ckpt, overrides) if "PCK@0.2" in t.title]
    ours, paper = pck.rows
    assert ours.label == "BelagiannisRecurrent" and paper.values["Total"] == 85.2
    assert 0 <= ours.values["Total"] <= 100


def _smoke(smoke_data, tmp_path, *extra):
    recipe = str(REPO / "recipes/smoke/belagiannis.yaml")
    return ["-c", recipe, *_overrides(smoke_data, tmp_path, 1), *extra]


def test_unknown_class_stops_with_its_name(smoke_data, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    with pytest.raises(SystemExit) as exit_:
        main(["fit", *_smoke(smoke_data, tmp_path, "--model.class_path=poselit.models.belagiannis.Belagianis")])
    assert exit_.value.code == 2 and "Belagianis" in capsys.readouterr().err


def test_missing_dataset_stops_before_training(smoke_data, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    code = main(["fit", *_smoke(smoke_data, tmp_path, f"--data.train=[lsp:train@{tmp_path / 'nowhere'}]")])
    err = capsys.readouterr().err
    assert code == 2 and "dataset lsp:train@" in err and "nowhere does not exist" in err
    assert not list(tmp_path.rglob("*.ckpt"))


def test_missing_data_root_names_the_options_fit_has(smoke_data, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    monkeypatch.delenv("POSELIT_DATA", raising=False)
    assert main(["fit", *_smoke(smoke_data, tmp_path, "--data.train=[lsp:train]")]) == 2
    err = capsys.readouterr().err
    assert "--data.data_root DIR (poselit fit" in err and "POSELIT_DATA=DIR" in err and "(--root" not in err


def test_checkpoint_of_another_method_or_joint_count_stops_with_a_fix(smoke_data, tmp_path, capsys, monkeypatch):
    import torch

    monkeypatch.setenv("WANDB_MODE", "disabled")
    other = tmp_path / "bulat.ckpt"
    torch.save({"poselit": {"class_path": "poselit.models.bulat.BulatCascade"}, "state_dict": {}}, other)
    assert main(["test", *_smoke(smoke_data, tmp_path, f"--ckpt_path={other}")]) == 2
    err = capsys.readouterr().err
    assert "is a BulatCascade checkpoint but the recipe builds BelagiannisRecurrent" in err

    mpii = tmp_path / "mpii.ckpt"
    method = "poselit.models.belagiannis.BelagiannisRecurrent"  # hyper-parameters as LightningCLI saves them
    torch.save({"poselit": {"class_path": method},
                "hyper_parameters": {"_class_path": method, "skeleton": "mpii", "num_iterations": 1}}, mpii)
    assert main(["fit", *_smoke(smoke_data, tmp_path, f"--ckpt_path={mpii}")]) == 2
    err = capsys.readouterr().err
    assert "trained for 16 joints (mpii) but the data have 14 (lsp)" in err and "init_from" in err


def test_a_truncated_checkpoint_ends_fit_and_test_in_one_line(smoke_data, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    truncated = tmp_path / "last.ckpt"
    truncated.write_bytes(b"PK\x03\x04 half of a checkpoint")
    for command in ("fit", "test"):
        assert main([command, *_smoke(smoke_data, tmp_path, f"--ckpt_path={truncated}")]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith(f"poselit: error: {truncated}: not a checkpoint"), err
