"""Kill-and-resume: a run interrupted mid-epoch and resumed from its last checkpoint ends
with exactly the weights of an uninterrupted run."""

import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback, ModelCheckpoint

from poselit.data.datamodule import PoseDataModule
from poselit.data.synthetic import write_synthetic_lsp
from tiny_models import TinyHeatmapModel


class Killed(Exception):
    """Stands in for the process being killed."""


class KillAtStep(Callback):
    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == self.step:
            raise Killed(f"killed before step {self.step}")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return write_synthetic_lsp(tmp_path_factory.mktemp("resume") / "synth", num_images=20, size=(48, 40), seed=2)


def _fit(data, root, kill_at=None, ckpt_path=None):
    pl.seed_everything(0)
    model = TinyHeatmapModel(
        skeleton="lsp", input_size=(32, 32), flip_test=False,
        optimizer=lambda p: torch.optim.Adam(p, lr=1e-2),
        lr_scheduler=lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=1, gamma=0.5),
    )
    datamodule = PoseDataModule(
        train=[f"lsp:train@{data}"], val=[f"lsp:test@{data}"], input_size=(32, 32),
        batch_size=2, num_workers=0, rotation=30.0,
    )
    checkpoints = ModelCheckpoint(dirpath=root / "ckpt", every_n_train_steps=3, save_top_k=-1, filename="{step}")
    trainer = pl.Trainer(
        accelerator="cpu", max_epochs=3, deterministic=True, logger=False, enable_progress_bar=False,
        enable_model_summary=False, limit_val_batches=1, default_root_dir=root,
        callbacks=[checkpoints] + ([KillAtStep(kill_at)] if kill_at is not None else []),
    )
    trainer.fit(model, datamodule, ckpt_path=ckpt_path)
    return model, trainer


def test_killed_mid_epoch_and_resumed_equals_uninterrupted(data, tmp_path):
    reference, trainer = _fit(data, tmp_path / "reference")
    assert trainer.global_step == 15  # 3 epochs of 5 batches

    with pytest.raises(Killed):
        _fit(data, tmp_path / "run", kill_at=7)  # epoch 1, third batch
    last = tmp_path / "run" / "ckpt" / "step=6.ckpt"  # the newest checkpoint: mid-epoch 1
    state = torch.load(last, weights_only=True)
    assert state["epoch"] == 1 and state["loops"]["fit_loop"]["state_dict"]["combined_loader"] == [{"epoch": 1, "batches": 1}]

    resumed, trainer = _fit(data, tmp_path / "run", ckpt_path=str(last))
    assert trainer.global_step == 15
    for (name, a), (_, b) in zip(reference.state_dict().items(), resumed.state_dict().items(), strict=True):
        assert torch.equal(a, b), name
    assert trainer.optimizers[0].param_groups[0]["lr"] == pytest.approx(1e-2 * 0.5**3)


def test_training_clock_logs_hours_and_goes_on_counting_after_a_resume(data, tmp_path):
    from pytorch_lightning.loggers import CSVLogger

    from poselit.callbacks import TrainingClock

    def fit(root, max_epochs, ckpt_path=None):
        pl.seed_everything(0)
        clock = TrainingClock()
        model = TinyHeatmapModel(skeleton="lsp", input_size=(32, 32), flip_test=False)
        datamodule = PoseDataModule(train=[f"lsp:train@{data}"], val=[f"lsp:test@{data}"], input_size=(32, 32),
                                    batch_size=2, num_workers=0)
        trainer = pl.Trainer(
            accelerator="cpu", max_epochs=max_epochs, logger=CSVLogger(root), log_every_n_steps=1,
            enable_progress_bar=False, enable_model_summary=False, limit_val_batches=1, default_root_dir=root,
            callbacks=[clock, ModelCheckpoint(dirpath=root / "ckpt", save_last=True)],
        )
        trainer.fit(model, datamodule, ckpt_path=ckpt_path)
        return clock, trainer

    first, trainer = fit(tmp_path / "a", 1)
    hours = first.hours()
    assert 0 < hours["time/cpu_hours"] and 0 < hours["time/wall_hours"] < 0.5
    logged = trainer.callback_metrics
    assert 0 < logged["time/cpu_hours"] <= hours["time/cpu_hours"]  # logged at validation
    saved = torch.load(tmp_path / "a" / "ckpt" / "last.ckpt", weights_only=True)
    (state,) = [v for k, v in saved["callbacks"].items() if k.startswith("TrainingClock")]
    assert state["cpu_hours"] >= logged["time/cpu_hours"].item()

    resumed, _ = fit(tmp_path / "b", 2, ckpt_path=tmp_path / "a" / "ckpt" / "last.ckpt")
    assert resumed.offset_cpu == state["cpu_hours"] and resumed.offset_wall == state["wall_hours"]
    assert resumed.hours()["time/cpu_hours"] > state["cpu_hours"]  # it went on counting
    import csv

    (metrics,) = (tmp_path / "b").rglob("metrics.csv")
    cpu = [float(r["time/cpu_hours"]) for r in csv.DictReader(metrics.open()) if r.get("time/cpu_hours")]
    assert cpu and min(cpu) > state["cpu_hours"] and cpu == sorted(cpu)  # the CSV continues the first run's count
