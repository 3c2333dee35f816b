"""Does bfloat16 training reach the accuracy of float32? A short run of a recipe in each.

Both runs start from the same initial weights (the recipe's seed) and see the same
batches in the same order; only ``trainer.precision`` differs (``32`` vs ``bf16-mixed``,
channels-last in both, as the CPU recipes train). After ``--steps`` optimiser steps each
is validated on the recipe's validation data (for the CPU recipes: the people held out of
the training data, never LSP test). Prints one JSON object with the validation metrics,
the wall time of each run and the bf16 - fp32 difference.

    POSELIT_DATA=../shared/data python benchmarks/precision_check.py recipes/cpu/luvizon.yaml --steps 300

``--smoke`` runs 2 steps on generated data (the test suite uses it).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch

from poselit.callbacks import ChannelsLast
from train_step import build, cpu_name, smoke_overrides

PRECISIONS = ("32", "bf16-mixed")
HEADLINE = ("val/pck", "val/PCK@0.2/AUC", "val/PCP@0.5/Total", "val/loss")  # what the JSON reports


def short_run(recipe: str, size: int, precision: str, steps: int, overrides: list[str]) -> dict[str, Any]:
    """``steps`` training steps of ``recipe`` in ``precision``, then one validation."""
    model, datamodule = build(recipe, size, overrides)  # the recipe's seed: same initial weights each time
    model.scheduler_factory = None  # a plateau schedule would step on the one validation: keep lr fixed
    pl.seed_everything(0, workers=True)  # same batches, same augmentations
    with tempfile.TemporaryDirectory() as tmp:
        trainer = pl.Trainer(
            accelerator="cpu", devices=1, precision=precision, max_steps=steps, val_check_interval=steps,
            num_sanity_val_steps=0, logger=False, enable_checkpointing=False, enable_progress_bar=False,
            enable_model_summary=False, callbacks=[ChannelsLast()], default_root_dir=tmp,
        )
        start = time.perf_counter()
        trainer.fit(model, datamodule=datamodule)
        seconds = time.perf_counter() - start
    metrics = {name: round(float(trainer.callback_metrics[name]), 3) for name in HEADLINE
               if name in trainer.callback_metrics}
    return {"precision": precision, "seconds": round(seconds, 1), "validation": metrics}


def compare(args: argparse.Namespace) -> dict[str, Any]:
    overrides = list(args.override) + (smoke_overrides() if args.smoke else [])
    runs = [short_run(args.recipe, args.size, precision, args.steps, overrides) for precision in PRECISIONS]
    fp32, bf16 = (run["validation"] for run in runs)
    return {
        "benchmark": "precision_check",
        "recipe": args.recipe,
        "input_size": args.size,
        "steps": args.steps,
        "runs": runs,
        "bf16_minus_fp32": {name: round(bf16[name] - fp32[name], 3) for name in fp32 if name in bf16},
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "cpu": cpu_name(),
        "machine": platform.machine(),
        "torch": torch.__version__,
        "smoke": args.smoke,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("recipe", help="recipe YAML (e.g. recipes/cpu/luvizon.yaml)")
    parser.add_argument("--size", type=int, default=160, help="input size (square)")
    parser.add_argument("--steps", type=int, default=300, help="training steps of each run")
    parser.add_argument("--override", action="append", default=[], help="extra LightningCLI argument (repeatable)")
    parser.add_argument("--smoke", action="store_true", help="2 steps on generated data (for the tests)")
    args = parser.parse_args()
    if args.smoke:
        args.steps = 2
    print(json.dumps(compare(args)))


if __name__ == "__main__":
    main()
