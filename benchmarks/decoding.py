"""Which sub-pixel decoding suits a heatmap model? Held-out PCK@0.2 for each ``refine``.

Loads each zoo model (or export folder), and validates it on its recipe's held-out people
(the CPU recipes: 500 people held out of LSP train + LSP-extended, never LSP test) once per
decoding of its :class:`~poselit.codecs.HeatmapCodec`: integer argmax, the quarter-pixel
step, the Taylor step, and DARK (blur, then the Taylor step). Nothing else changes (same
weights, same flip test), so the differences are the decoding's alone. Prints one JSON
object; choose a model's ``refine`` from it, then measure LSP test once at export.

    POSELIT_DATA=../shared/data python benchmarks/decoding.py \\
        belagiannis-mobilenetv2-lsp=recipes/cpu/belagiannis.yaml \\
        bulat-mobilenetv2-lsp=recipes/cpu/bulat.yaml --out benchmarks/results/decoding_cpu.json

``--smoke`` validates the recipe's own untrained model on generated data instead (the test
suite uses it).
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch

import poselit
from poselit.codecs import REFINEMENTS
from train_step import build, machine_info, smoke_overrides
from whole_image import write_result

HEADLINE = ("val/pck", "val/PCK@0.2/AUC")


def held_out_by_decoding(model: pl.LightningModule, datamodule: pl.LightningDataModule) -> list[dict[str, Any]]:
    """Validation metrics of ``model`` with each refinement of its codec, in turn."""
    if getattr(model, "codec", None) is None:
        raise ValueError(f"{type(model).__name__} decodes without a heatmap codec: nothing to compare")
    original = model.codec
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        trainer = pl.Trainer(accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                             enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp)
        try:
            for refine in REFINEMENTS:
                model.codec = dataclasses.replace(original, refine=refine)
                start = time.perf_counter()
                metrics = trainer.validate(model, datamodule=datamodule, verbose=False)[0]
                rows.append({"refine": refine, "seconds": round(time.perf_counter() - start, 1),
                             **{name: round(float(metrics[name]), 3) for name in HEADLINE if name in metrics}})
        finally:
            model.codec = original
    return rows


def measure(spec: str, smoke: bool) -> dict[str, Any]:
    """``MODEL=RECIPE``: the model's rows on the recipe's validation data."""
    name, _, recipe = spec.partition("=")
    if not recipe:
        raise SystemExit(f"expected MODEL=RECIPE, got {spec!r}")
    overrides = ["--model.init_args.backbone_weights=null", *(smoke_overrides() if smoke else [])]
    recipe_model, datamodule = build(recipe, None, overrides)
    model = recipe_model if smoke else poselit.zoo.load(name)
    return {"model": name, "recipe": recipe, "codec": dataclasses.asdict(model.codec),
            "rows": held_out_by_decoding(model, datamodule)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+", help="MODEL=RECIPE pairs (zoo name or export folder = recipe YAML)")
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    parser.add_argument("--smoke", action="store_true", help="the recipe's untrained model on generated data (tests)")
    args = parser.parse_args()
    torch.manual_seed(0)
    result = {"benchmark": "decoding", "models": [measure(spec, args.smoke) for spec in args.models],
              "threads": torch.get_num_threads(), **machine_info(), "smoke": args.smoke}
    write_result(result, args.out)


if __name__ == "__main__":
    main()
