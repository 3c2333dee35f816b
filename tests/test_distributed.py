"""Evaluation under DDP (two CPU processes, gloo) equals the single-process evaluation."""

import pytest
import pytorch_lightning as pl
import torch

from poselit.data.datamodule import PoseDataModule
from tiny_models import TinyHeatmapModel


def _validate(synthetic_lsp, devices: int, strategy: str) -> dict[str, float]:
    # 7 records: an odd count, which a padding sampler would fill with a repeated sample
    dm = PoseDataModule(
        train=[f"lsp:train@{synthetic_lsp}"], val=[f"lsp:all@{synthetic_lsp}"],
        input_size=(32, 32), batch_size=2, num_workers=0,
    )
    dm.setup("validate")
    dm.datasets["val"][0].records = dm.datasets["val"][0].records[:7]
    torch.manual_seed(0)
    model = TinyHeatmapModel(input_size=(32, 32))
    trainer = pl.Trainer(
        accelerator="cpu", devices=devices, strategy=strategy, logger=False,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
    )
    (metrics,) = trainer.validate(model, datamodule=dm, verbose=False)
    return metrics


@pytest.mark.slow
def test_ddp_validation_matches_single_process(synthetic_lsp):
    single = _validate(synthetic_lsp, 1, "auto")
    ddp = _validate(synthetic_lsp, 2, "ddp_spawn")
    counted = {k: v for k, v in single.items() if "PCK" in k or "PCP" in k or k.endswith("/pck")}
    assert counted and all(ddp[k] == pytest.approx(v, abs=1e-9) for k, v in counted.items())
