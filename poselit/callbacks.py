"""Training callbacks: pictures of predicted skeletons at every validation epoch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytorch_lightning as pl
from pytorch_lightning.loggers import WandbLogger

from poselit.visualize import draw_skeleton, image_grid


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
        if dataloader_idx != 0 or len(self._tiles) >= 2 * self.num_images or not outputs:
            return
        skeleton = pl_module.skeleton
        for i in range(min(len(batch["image"]), self.num_images - len(self._tiles) // 2)):
            image = batch["image"][i].permute(1, 2, 0).cpu().numpy()
            visibility = batch["visibility"][i].cpu().numpy()
            truth = draw_skeleton(image, batch["keypoints"][i].cpu().numpy(), visibility, skeleton)
            predicted = np.full_like(visibility, 2)  # every joint is predicted
            guess = draw_skeleton(image, outputs["keypoints"][i].float().cpu().numpy(), predicted, skeleton)
            self._tiles += [truth, guess]

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not self._tiles or trainer.sanity_checking or not trainer.is_global_zero:
            return
        grid = image_grid(self._tiles, columns=4)
        folder = Path(trainer.log_dir or trainer.default_root_dir) / "images"
        folder.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(folder / f"val_epoch{trainer.current_epoch:03d}.png"), cv2.cvtColor(grid, cv2.COLOR_RGB2BGR))
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                logger.log_image("val/predictions", [grid], step=trainer.global_step, caption=["ground truth | prediction"])
