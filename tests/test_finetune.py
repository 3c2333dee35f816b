"""Fine-tuning: a model of another skeleton from the weights of any method (zoo models
included), COCO's OKS AP in the test loop and on the card, and what ``poselit fit`` does
with a missing dataset and with ``--trainer.default_root_dir``."""

import json
import warnings
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from jsonargparse import Namespace
from safetensors.torch import save_file

from poselit.callbacks import FreezeBackbone
from poselit.cli import main
from poselit.cli.lightning import logs_under_root, without_wandb
from poselit.data.datamodule import PoseDataModule
from poselit.data.dataset import PoseDataset
from poselit.data.sources import read_annotations
from poselit.evaluate import evaluate_poses
from poselit.models import METHODS, LuvizonSoftArgmax
from poselit.zoo.export import evaluate_model, export_checkpoint

REPO = Path(__file__).resolve().parents[1]

TINY = {"num_blocks": 1, "width": 32, "input_size": (64, 64)}


class Record(pl.Callback):
    """Per-epoch mean training loss and the trunk's weights at the end of each epoch."""

    def __init__(self):
        self.losses, self.trunks = [], []

    def on_train_epoch_start(self, trainer, pl_module):
        self.losses.append([])

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.losses[-1].append(float(outputs["loss"]))

    def on_train_epoch_end(self, trainer, pl_module):
        self.trunks.append({k: v.clone() for k, v in pl_module.feature_extractor().state_dict().items()})


def test_finetune_from_16_to_17_joints_loads_the_shared_layers_and_learns(data_root, tmp_path):
    torch.manual_seed(0)
    source = LuvizonSoftArgmax(skeleton="mpii", **TINY)
    weights = tmp_path / "mpii.safetensors"
    save_file(source.state_dict(), weights)

    data = PoseDataModule(
        train=["coco@coco-mini"], val=["coco@coco-mini"], data_root=str(data_root),
        input_size=(64, 64), batch_size=8, num_workers=0,
    )
    assert data.skeleton.num_joints == 17 and data.skeleton.flip_pairs  # names and pairs from the category
    model = LuvizonSoftArgmax(skeleton=data.skeleton_spec, init_from=str(weights), **TINY)

    # Joint-specific tensors, found independently: those whose shape depends on the joint count.
    shapes_16 = {k: v.shape for k, v in source.state_dict().items()}
    joint_specific = {k for k, v in model.state_dict().items() if v.shape != shapes_16[k]}
    assert joint_specific  # the map layers of each block
    report = model.load_compatible_weights(weights)
    assert set(report["reshaped"]) == joint_specific and not report["missing"]
    assert set(report["loaded"]) == set(model.state_dict()) - joint_specific
    for name in report["loaded"]:
        assert torch.equal(model.state_dict()[name], source.state_dict()[name]), name
    loaded_trunk = {k: v.clone() for k, v in model.feature_extractor().state_dict().items()}

    record = Record()
    trainer = pl.Trainer(
        accelerator="cpu", max_epochs=4, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, limit_val_batches=0, callbacks=[FreezeBackbone(epochs=1), record],
    )
    trainer.fit(model, data)  # setup("fit") loads init_from: the same weights
    first, last = (sum(losses) / len(losses) for losses in (record.losses[0], record.losses[-1]))
    assert last < first, (first, last)
    frozen_epoch, later = record.trunks[0], record.trunks[-1]
    assert all(torch.equal(frozen_epoch[k], loaded_trunk[k]) for k in loaded_trunk)  # weights and BN statistics
    assert any(not torch.equal(later[k], loaded_trunk[k]) for k in loaded_trunk)


# --- any method, any skeleton -----------------------------------------------------------


REAL_METHODS = [method for method in METHODS.values() if method.class_path.startswith("poselit.")]


@pytest.mark.parametrize("method", REAL_METHODS, ids=[method.name for method in REAL_METHODS])
def test_every_method_fine_tunes_to_another_skeleton_keeping_the_trunk_and_naming_what_is_new(method, tmp_path):
    """A 14-joint (LSP) model of each method initialises a 17-joint (COCO) one: the trunk
    and every tensor whose shape fits are copied, those whose shape depends on the joint
    count stay fresh, and the warning names each of them."""
    torch.manual_seed(0)
    cls = method.load()
    source = cls(**{**method.tiny, "skeleton": "lsp"})
    weights = tmp_path / "lsp.safetensors"
    save_file({k: v.contiguous() for k, v in source.state_dict().items()}, weights)
    model = cls(**{**method.tiny, "skeleton": "coco", "init_from": str(weights)})
    fresh = {k: v.clone() for k, v in model.state_dict().items()}
    shapes = {k: v.shape for k, v in source.state_dict().items()}
    joint_specific = {k for k, v in fresh.items() if v.shape != shapes[k]}
    with pytest.warns(UserWarning, match=r"kept fresh") as caught:
        report = model.load_compatible_weights(weights)
    assert joint_specific and set(report["reshaped"]) == joint_specific and not report["missing"]
    assert all(f"'{name}'" in str(caught[0].message) for name in joint_specific)
    state = model.state_dict()
    assert all(torch.equal(state[k], source.state_dict()[k]) for k in report["loaded"])
    assert all(torch.equal(state[k], fresh[k]) for k in joint_specific)  # their fresh initialisation
    trunk = {k: v for k, v in model.feature_extractor().state_dict().items()}
    assert trunk and all(torch.equal(v, source.feature_extractor().state_dict()[k]) for k, v in trunk.items())


@pytest.mark.slow
def test_the_recipe_fine_tunes_the_best_zoo_model_and_its_card_reports_oks_ap(data_root, tmp_path, monkeypatch, capsys):
    """``recipes/finetune/coco_keypoints.yaml`` as a user runs it, shortened to two steps:
    it starts from bulat-mobilenetv2-lsp (the best zoo model, 14 LSP joints), names the layers
    it re-initialises for COCO's 17, saves its checkpoints under --trainer.default_root_dir,
    and the exported card records COCO's OKS AP and no PCP."""
    monkeypatch.setenv("WANDB_MODE", "disabled")
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "elsewhere"
    argv = ["fit", "-c", str(REPO / "recipes/finetune/coco_keypoints.yaml"), f"--data.data_root={data_root}",
            f"--trainer.default_root_dir={root}", "--trainer.max_epochs=1", "--trainer.limit_train_batches=2",
            "--data.batch_size=4", "--data.num_workers=0",
            "--trainer.limit_val_batches=1", "--trainer.enable_progress_bar=false"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(argv) == 0
    [reinitialised] = [str(w.message) for w in caught if "kept fresh" in str(w.message)]
    assert "bulat-mobilenetv2-lsp" in reinitialised and "'detector.score.weight'" in reinitialised
    [checkpoint] = root.rglob("best-*.ckpt")
    assert f"poselit: checkpoints in {checkpoint.parent}" in capsys.readouterr().out
    assert not list(tmp_path.glob("poselit-finetune"))  # nothing beside the root
    card = export_checkpoint(checkpoint, name="bulat-mobilenetv2-coco-mini", out=tmp_path / "export",
                             evaluate=[coco_subset(data_root, tmp_path)], update_zoo=False, check_records=2)
    [entry] = card.metrics
    assert list(entry["results"]) == ["PCK@0.2", "Visibility AP", "OKS AP"]  # PCK first, no PCP
    assert 0 <= entry["results"]["OKS AP"]["AP"] <= 100 and card.check["metric"] == "PCK@0.2"


# --- COCO's OKS AP in the test loop -------------------------------------------------------


SUBSET_IMAGES = (463557, 113488, 433998)
"""coco-mini images with 6 people and 15 ignore regions (a crowd, people without keypoints)."""


def coco_subset(data_root: Path, folder: Path) -> str:
    """A COCO file of :data:`SUBSET_IMAGES` in ``folder``, its images those of coco-mini (a
    link, no copy); returns its dataset spec."""
    coco = json.loads((data_root / "coco-mini" / "person_keypoints.json").read_text())
    coco["images"] = [image for image in coco["images"] if image["id"] in SUBSET_IMAGES]
    coco["annotations"] = [person for person in coco["annotations"] if person["image_id"] in SUBSET_IMAGES]
    (folder / "images").symlink_to((data_root / "coco-mini" / "images").resolve())
    (folder / "subset.json").write_text(json.dumps(coco))
    return f"coco:val@{folder / 'subset.json'}"


def test_the_test_loop_reports_oks_ap_as_poselit_eval_does_and_no_pcp(data_root, tmp_path):
    spec = coco_subset(data_root, tmp_path)
    annotations = read_annotations(spec)
    torch.manual_seed(0)
    model = LuvizonSoftArgmax(skeleton=annotations.skeleton.to_spec(), **TINY)
    data = PoseDataModule(train=[], val=[spec], input_size=TINY["input_size"], batch_size=4, num_workers=0)
    data.setup("test")
    [dataset] = data.datasets["test"]
    sample = dataset[0]
    people, ignored = dataset.oks
    assert (len(people.image), len(ignored.image)) == (len(annotations), len(annotations.ignored)) == (6, 15)
    assert len(set(people.image) | set(ignored.image)) == 3  # image keys shared by people and regions
    assert sample["area"] == pytest.approx(people.area[0]) and sample["image_id"] == people.image[0]
    assert "area" not in PoseDataset(annotations, TINY["input_size"], train=True)[0]  # evaluation samples only
    trainer = pl.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False)
    [report] = evaluate_model(model, [spec], accelerator="cpu", batch_size=4)
    predicted = trainer.predict(model, datamodule=data)
    keypoints = torch.cat([batch["keypoints"] for batch in predicted])
    scores = torch.cat([batch["scores"] for batch in predicted])
    expected = evaluate_poses(annotations, keypoints, scores)  # poselit eval on the same predictions
    assert [r.metric for r in report.results] == [r.metric for r in expected.results] == ["PCK@0.2", "Visibility AP", "OKS AP"]
    for ours, theirs in zip(report.results, expected.results):
        assert ours.counts == theirs.counts
        assert ours.columns == pytest.approx(theirs.columns, nan_ok=True, abs=1e-6), ours.metric


def test_lsp_samples_carry_no_coco_fields(synthetic_lsp):
    dataset = PoseDataset(read_annotations(f"lsp:test@{synthetic_lsp}"), (64, 64))
    assert dataset.oks is None and "area" not in dataset[0] and "image_id" not in dataset[0]


# --- the fit command: missing data, where the run writes ----------------------------------


def test_a_missing_dataset_stops_fit_in_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "disabled")
    recipe = REPO / "recipes/finetune/coco_keypoints.yaml"
    assert main(["fit", "-c", str(recipe), f"--data.data_root={tmp_path / 'nowhere'}"]) == 2
    err = capsys.readouterr().err
    assert err == f"poselit: error: dataset coco:train@coco-mini: {tmp_path / 'nowhere' / 'coco-mini'} does not exist\n"


def test_loggers_without_a_folder_log_under_the_default_root_dir(synthetic_lsp, tmp_path, monkeypatch, capsys):
    """A recipe whose logger names no ``save_dir`` (the fine-tuning recipe's) logs, and saves
    its checkpoints, under ``--trainer.default_root_dir``; with W&B disabled its CSV logger
    takes the place of the W&B one, and a list that has a CSV logger keeps only that one."""
    monkeypatch.setenv("WANDB_MODE", "disabled")
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "root"
    smoke = (REPO / "recipes/smoke/belagiannis.yaml").read_text()
    recipe = tmp_path / "recipe.yaml"  # the smoke recipe, its W&B logger without a save_dir
    recipe.write_text(smoke.replace("save_dir: runs/smoke/belagiannis, ", ""))
    assert "save_dir" not in recipe.read_text()
    argv = ["fit", "-c", str(recipe), f"--data.train=[lsp:train@{synthetic_lsp}]",
            f"--data.val=[lsp:test@{synthetic_lsp}]", "--data.input_size=[64,64]", "--data.batch_size=4",
            f"--trainer.default_root_dir={root}", "--trainer.max_steps=1",
            "--trainer.limit_val_batches=0", "--trainer.num_sanity_val_steps=0", "--trainer.enable_progress_bar=false"]
    assert main(argv) == 0
    [checkpoint] = root.rglob("*.ckpt")
    assert checkpoint.parent == root / "csv" / "version_0" / "checkpoints" and (root / "csv" / "version_0" / "metrics.csv").is_file()
    assert f"poselit: checkpoints in {checkpoint.parent}" in capsys.readouterr().out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["recipe.yaml", "root"]  # nothing else in the working folder

    csv = Namespace(class_path="pytorch_lightning.loggers.CSVLogger", init_args=Namespace(save_dir=None, name="csv"))
    wandb = Namespace(class_path="pytorch_lightning.loggers.WandbLogger", init_args=Namespace(save_dir=".", project="p"))
    given = Namespace(class_path="pytorch_lightning.loggers.CSVLogger", init_args=Namespace(save_dir="mine"))
    logs_under_root([csv, wandb, given], "runs/x")
    assert [item.init_args.save_dir for item in (csv, wandb, given)] == ["runs/x", "runs/x", "mine"]
    assert without_wandb([csv, wandb]) == [csv]


def test_init_from_is_what_validate_measures_and_a_test_after_fit_keeps_the_trained_weights(synthetic_lsp, tmp_path):
    """``init_from`` loads at the first ``setup`` of any stage: ``poselit validate`` with it
    measures those weights (not a fresh network), and a ``test`` after ``fit`` measures the
    trained ones (the file is not read again)."""
    torch.manual_seed(0)
    source = LuvizonSoftArgmax(skeleton="lsp", **TINY)
    weights = tmp_path / "source.safetensors"
    save_file(source.state_dict(), weights)
    lsp = [f"lsp:train@{synthetic_lsp}"]
    data = PoseDataModule(train=lsp, val=lsp, test=lsp, input_size=(64, 64), batch_size=2, num_workers=0)
    quiet = {"accelerator": "cpu", "logger": False, "enable_checkpointing": False, "enable_progress_bar": False,
             "enable_model_summary": False}

    measured = LuvizonSoftArgmax(skeleton="lsp", init_from=str(weights), **TINY)
    pl.Trainer(**quiet).validate(measured, data)
    assert all(torch.equal(measured.state_dict()[k], v) for k, v in source.state_dict().items())

    trained = LuvizonSoftArgmax(skeleton="lsp", init_from=str(weights), **TINY)
    trainer = pl.Trainer(max_steps=2, limit_val_batches=0, **quiet)
    trainer.fit(trained, data)
    after_fit = {k: v.clone() for k, v in trained.state_dict().items()}
    assert any(not torch.equal(after_fit[k], v) for k, v in source.state_dict().items())
    trainer.test(trained, data)
    assert all(torch.equal(trained.state_dict()[k], v) for k, v in after_fit.items())
