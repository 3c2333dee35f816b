"""Training callbacks: pictures of predicted skeletons at every validation epoch, the
speed switches of the recipes (channels-last memory format, ``torch.compile``), and the
training clock (wall and CPU hours, kept across resumes).

Switch them on in a recipe's ``trainer.callbacks`` or on the command line, e.g.
``--trainer.callbacks+=poselit.callbacks.ChannelsLast``; mixed precision is Lightning's
``--trainer.precision bf16-mixed`` (or ``16-mixed``).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.loggers import WandbLogger

from poselit.visualize import image_grid, save_image, side_by_side


class PoseImageLogger(pl.Callback):
    """Draws the first validation crops with ground truth and predicted skeletons.

    Each validation epoch, the first ``num_images`` samples of the first validation set
    are drawn side by side (ground truth left, prediction right) into one grid, saved as
    ``<log_dir>/images/val_epoch<NNN>.png`` and, when a :class:`WandbLogger` is attached,
    logged to Weights & Biases under ``val/predictions``.

    Args:
        num_images: How many samples to draw.
    """

    def __init__(self, num_images: int = 8) -> None:
        super().__init__()
        self.num_images = num_images
        self._tiles: list[np.ndarray] = []

    def on_validation_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._tiles = []

    def on_validation_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if dataloader_idx != 0 or len(self._tiles) >= self.num_images or not outputs:
            return
        for i in range(min(len(batch["image"]), self.num_images - len(self._tiles))):
            self._tiles.append(
                side_by_side(
                    batch["image"][i].permute(1, 2, 0).cpu().numpy(),
                    outputs["keypoints"][i].float().cpu().numpy(),
                    batch["keypoints"][i].cpu().numpy(),
                    pl_module.skeleton,
                    visibility=batch["visibility"][i].cpu().numpy(),
                )
            )

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not self._tiles or trainer.sanity_checking or not trainer.is_global_zero:
            return
        grid = image_grid(self._tiles, columns=2)
        folder = Path(trainer.log_dir or trainer.default_root_dir) / "images"
        save_image(grid, folder / f"val_epoch{trainer.current_epoch:03d}.png")
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                logger.log_image("val/predictions", [grid], step=trainer.global_step, caption=["ground truth | prediction"])


class ChannelsLast(pl.Callback):
    """Keep the model's weights (hence its activations) in channels-last memory format.

    Convolutions on tensor cores run faster in NHWC, above all with mixed precision; the
    numbers are the same. Checkpoints are unaffected (``state_dict`` tensors keep their
    values, whatever their strides).
    """

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        pl_module.to(memory_format=torch.channels_last)


class CompileModel(pl.Callback):
    """Compile the model's ``forward`` with :func:`torch.compile` (training and evaluation).

    The first steps are slower while compiling. Parameter names and checkpoints do not
    change (the module itself is not wrapped).

    Args:
        mode: ``torch.compile`` mode, e.g. ``"max-autotune"`` (default: PyTorch's).
        backend: ``torch.compile`` backend.
        dynamic: Compile for dynamic shapes (default: PyTorch's choice).
    """

    def __init__(self, mode: str | None = None, backend: str = "inductor", dynamic: bool | None = None) -> None:
        super().__init__()
        self.mode, self.backend, self.dynamic = mode, backend, dynamic

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if "forward" not in vars(pl_module):  # once, even when several stages run
            pl_module.forward = torch.compile(  # type: ignore[method-assign]
                pl_module.forward, mode=self.mode, backend=self.backend, dynamic=self.dynamic
            )


class FreezeBackbone(pl.Callback):
    """Train only the method's own layers for the first ``epochs`` epochs, then everything.

    For fine-tuning a pretrained model on new keypoints: the freshly initialised
    joint-specific layers settle before their gradients reach the trunk
    (:meth:`~poselit.models.base.PoseLitModule.feature_extractor`). While frozen, the
    trunk's parameters get no gradient and its batch-norm statistics stay as loaded.

    Args:
        epochs: Epochs with the trunk frozen.
    """

    def __init__(self, epochs: int = 1) -> None:
        super().__init__()
        self.epochs = epochs
        self._trainable: list[torch.nn.Parameter] | None = None  # what the method itself trains

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        trunk = pl_module.feature_extractor()
        if self._trainable is None:
            self._trainable = [p for p in trunk.parameters() if p.requires_grad]
        frozen = trainer.current_epoch < self.epochs
        for parameter in self._trainable:
            parameter.requires_grad_(not frozen)
        if frozen:
            trunk.eval()


class TrainingClock(pl.Callback):
    """Logs how much time training has taken so far: ``time/wall_hours`` and
    ``time/cpu_hours`` (CPU time of the training process and its data-loader workers), with
    every logged training step and validation.

    The totals are kept in checkpoints, so a run resumed with ``--ckpt_path`` goes on
    counting from where it stopped: plots of accuracy against CPU-hours
    (``benchmarks/plot_training.py``) stay true across restarts. Validation time counts too.
    """

    def __init__(self) -> None:
        super().__init__()
        self.offset_wall = self.offset_cpu = 0.0  # hours spent before this process started
        self._start_wall = self._start_cpu = 0.0

    @staticmethod
    def _cpu_seconds() -> float:
        """CPU seconds (user + system) of this process and its live children (loader workers)."""
        import psutil

        process = psutil.Process()
        processes = [process, *process.children(recursive=True)]
        total = 0.0
        for proc in processes:
            try:
                times = proc.cpu_times()
            except psutil.Error:  # a worker that has just exited
                continue
            total += times.user + times.system
        return total

    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._start_wall, self._start_cpu = time.monotonic(), self._cpu_seconds()

    def hours(self) -> dict[str, float]:
        """Wall-clock and CPU hours of training so far, this process included."""
        return {
            "time/wall_hours": self.offset_wall + (time.monotonic() - self._start_wall) / 3600,
            "time/cpu_hours": self.offset_cpu + (self._cpu_seconds() - self._start_cpu) / 3600,
        }

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any) -> None:
        if trainer.global_step % max(trainer.log_every_n_steps, 1) == 0:
            pl_module.log_dict(self.hours(), on_step=True, on_epoch=False)

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.state.fn == "fit" and not trainer.sanity_checking:
            pl_module.log_dict(self.hours())

    def state_dict(self) -> dict[str, float]:
        hours = self.hours()
        return {"wall_hours": hours["time/wall_hours"], "cpu_hours": hours["time/cpu_hours"]}

    def load_state_dict(self, state_dict: dict[str, float]) -> None:
        self.offset_wall, self.offset_cpu = state_dict["wall_hours"], state_dict["cpu_hours"]
        self._start_wall, self._start_cpu = time.monotonic(), self._cpu_seconds()
