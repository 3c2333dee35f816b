"""Does bfloat16 training reach the accuracy of float32? A short run of a recipe in each.

For each seed, both runs start from the same initial weights and see the same batches in
the same order; only ``trainer.precision`` differs (``32`` vs ``bf16-mixed``, channels-last
in both, as the CPU recipes train). After ``--steps`` optimiser steps each is validated on
the recipe's validation data (for the CPU recipes: the people held out of the training
data, never LSP test), in its own precision and again in float32, which separates the
effect of bfloat16 on training from its effect on inference. Several ``--seeds`` show how
much two float32 runs differ by chance alone. Prints one JSON object with the validation
metrics, the wall time of each run and the mean bf16 - fp32 difference.

    POSELIT_DATA=../shared/data python benchmarks/precision_check.py recipes/cpu/luvizon.yaml --steps 300

``--smoke`` runs 2 steps on generated data (the test suite uses it).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from typing import Any

import pytorch_lightning as pl
import torch

from poselit.callbacks import ChannelsLast
from train_step import build, machine_info, observe_first_conv, smoke_overrides

PRECISIONS = ("32", "bf16-mixed")
HEADLINE = ("val/pck", "val/PCK@0.2/AUC", "val/PCP@0.5/Total", "val/loss")  # what the JSON reports


def short_run(recipe: str, size: int, precision: str, seed: int, steps: int, overrides: list[str]) -> dict[str, Any]:
    """``steps`` training steps of ``recipe`` in ``precision`` from ``seed``, then validation."""
    model, datamodule = build(recipe, size, [f"--seed_everything={seed}", *overrides])  # the seed's initial weights
    model.scheduler_factory = None  # a plateau schedule would step on the one validation: keep lr fixed
    pl.seed_everything(seed, workers=True)  # same batches, same augmentations
    with tempfile.TemporaryDirectory() as tmp:
        options = dict(accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                       enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp)
        trainer = pl.Trainer(precision=precision, max_steps=steps, val_check_interval=steps, num_sanity_val_steps=0,
                             callbacks=[ChannelsLast()], **options)
        start = time.perf_counter()
        with observe_first_conv(model) as seen:
            trainer.fit(model, datamodule=datamodule)
        seconds = time.perf_counter() - start
        validation = headline(trainer.callback_metrics)
        in_fp32 = headline(pl.Trainer(precision="32", **options).validate(model, datamodule=datamodule, verbose=False)[0])
    return {"precision": precision, "seed": seed, "seconds": round(seconds, 1), "validation": validation,
            "validation_fp32": in_fp32, "observed": {"trainer_precision": str(trainer.precision), **seen}}


def headline(metrics: dict[str, Any]) -> dict[str, float]:
    return {name: round(float(metrics[name]), 3) for name in HEADLINE if name in metrics}


def mean_pck(runs: list[dict[str, Any]], precision: str, key: str) -> float:
    values = [run[key]["val/pck"] for run in runs if run["precision"] == precision]
    return round(sum(values) / len(values), 3)


def compare(args: argparse.Namespace) -> dict[str, Any]:
    overrides = list(args.override) + (smoke_overrides() if args.smoke else [])
    runs = [short_run(args.recipe, args.size, precision, seed, args.steps, overrides)
            for seed in args.seeds for precision in PRECISIONS]
    fp32 = [run["validation"]["val/pck"] for run in runs if run["precision"] == "32"]
    return {
        "benchmark": "precision_check",
        "recipe": args.recipe,
        "input_size": args.size,
        "steps": args.steps,
        "seeds": args.seeds,
        "runs": runs,
        "mean_val_pck": {precision: mean_pck(runs, precision, "validation") for precision in PRECISIONS},
        "mean_val_pck_validated_in_fp32": {precision: mean_pck(runs, precision, "validation_fp32")
                                           for precision in PRECISIONS},
        "fp32_seed_spread": round(max(fp32) - min(fp32), 3),
        "threads": torch.get_num_threads(),
        **machine_info(),
        "smoke": args.smoke,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("recipe", help="recipe YAML (e.g. recipes/cpu/luvizon.yaml)")
    parser.add_argument("--size", type=int, default=160, help="input size (square)")
    parser.add_argument("--steps", type=int, default=300, help="training steps of each run")
    parser.add_argument("--seeds", nargs="+", type=int, default=[0], help="one fp32 and one bf16 run per seed")
    parser.add_argument("--override", action="append", default=[], help="extra LightningCLI argument (repeatable)")
    parser.add_argument("--smoke", action="store_true", help="2 steps on generated data (for the tests)")
    args = parser.parse_args()
    if args.smoke:
        args.steps = 2
    print(json.dumps(compare(args)))


if __name__ == "__main__":
    main()
