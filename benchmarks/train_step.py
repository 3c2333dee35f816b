"""Training speed of a recipe's model, on the CPU or a GPU: the model alone and the real Lightning step.

For each recipe, input size, precision (``32``, ``bf16-mixed``) and memory format
(channels-first / channels-last) it measures, after warm-up:

* ``model_alone``: samples/s of forward + loss + backward + optimiser step on one fixed
  batch (a real batch of the recipe's data, reused), under the same autocast as Lightning;
* ``lightning``: samples/s of ``Trainer.fit`` with the recipe's data module and its real
  data loader (decode, crop, augment in the workers), timed from batch to batch;
* ``ratio``: lightning / model_alone (1.0: the loader and the loop cost nothing);

and, per recipe and size, the bf16 / fp32 speed-up. With ``--accelerator gpu`` the same runs
on the first CUDA device (timings synchronised with it) and each row also gives the peak GPU
memory of the model-alone step. Prints one JSON object.

    POSELIT_DATA=../shared/data python benchmarks/train_step.py recipes/cpu/luvizon.yaml \\
        --sizes 128 160 192 --precisions 32 bf16-mixed --channels-last both
    POSELIT_DATA=../shared/data python benchmarks/train_step.py recipes/lsp/luvizon_8blocks.yaml \\
        --accelerator gpu --override=--data.train=[lsp:train]   # the recipe's own input size

``--smoke`` runs 2 steps of each on generated data (the test suite uses it).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any, Iterator

import pytorch_lightning as pl
import torch

from poselit.callbacks import ChannelsLast
from poselit.data.synthetic import write_synthetic_lsp
from poselit.cli.lightning import run_lightning


def build(recipe: str, size: int | None, overrides: list[str]) -> tuple[pl.LightningModule, pl.LightningDataModule]:
    """The recipe's model and data module at ``size`` x ``size`` (``None``: the recipe's; nothing runs)."""
    resize = [] if size is None else [f"--data.input_size=[{size},{size}]"]
    cli = run_lightning(["-c", recipe, *resize, "--trainer.logger=false", *overrides], run=False)
    return cli.model, cli.datamodule


def smoke_overrides() -> list[str]:
    """Recipe overrides for a smoke run: generated LSP-format data, batches of 4, no weights file."""
    root = write_synthetic_lsp(Path(tempfile.mkdtemp()) / "synth", num_images=24, size=(96, 72), seed=0)
    return [f"--data.train=[lsp:train@{root}]", "--data.val=[]", "--data.test=[]", "--data.holdout=2",
            "--data.num_workers=0", "--data.batch_size=4", "--model.init_args.backbone_weights=null"]


def torch_device(accelerator: str) -> torch.device:
    """The device Lightning's ``accelerator`` puts a one-device run on."""
    return torch.device("cuda" if accelerator == "gpu" else "cpu")


def autocast(precision: str, device: torch.device):
    return torch.autocast(device.type, dtype=torch.bfloat16) if precision == "bf16-mixed" else nullcontext()


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work, so that wall time measures it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@contextmanager
def observe_first_conv(model: torch.nn.Module) -> Iterator[dict[str, Any]]:
    """What the model's first convolution really computed, the last time it ran: its output's
    dtype and whether that output is channels-last. The rows report it, so a run whose
    autocast or memory format silently did not apply cannot pass for one where it did."""
    seen: dict[str, Any] = {}
    conv = next(module for module in model.modules() if isinstance(module, torch.nn.Conv2d))

    def record(module: torch.nn.Module, inputs: Any, output: torch.Tensor) -> None:
        seen.update(dtype=str(output.dtype).removeprefix("torch."),
                    channels_last=output.is_contiguous(memory_format=torch.channels_last))

    handle = conv.register_forward_hook(record)
    try:
        yield seen
    finally:
        handle.remove()


def model_alone(model: pl.LightningModule, batch: dict, precision: str, channels_last: bool, steps: int, warmup: int,
                device: torch.device) -> tuple[float, float | None, dict[str, Any]]:
    """Samples/s of forward + loss + backward + optimiser step on one fixed batch, the
    step's peak memory in GiB on a CUDA device (``None`` on the CPU), and what its first
    convolution computed (:func:`observe_first_conv`)."""
    model = model.to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    batch = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
    model.train()
    optimizer = model.optimizer_factory(model.parameters())
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    times = []
    with observe_first_conv(model) as seen:
        for step in range(warmup + steps):
            synchronize(device)
            start = time.perf_counter()
            with autocast(precision, device):
                loss = model.loss(model(model.normalize(batch["image"])), batch)["loss"]
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            synchronize(device)
            if step >= warmup:
                times.append(time.perf_counter() - start)
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
    return len(batch["image"]) * len(times) / sum(times), peak, seen


class StepTimer(pl.Callback):
    """Wall time from one training batch's start to the next's, after ``warmup`` batches."""

    def __init__(self, warmup: int) -> None:
        self.warmup, self.starts = warmup, []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        synchronize(pl_module.device)
        self.starts.append(time.perf_counter())
        self.batch_size = len(batch["image"])

    def samples_per_second(self) -> float:
        starts = self.starts[self.warmup :]
        return self.batch_size * (len(starts) - 1) / (starts[-1] - starts[0])


def lightning_step(recipe: str, size: int | None, precision: str, channels_last: bool, steps: int, warmup: int,
                   overrides: list[str], accelerator: str) -> tuple[float, dict[str, Any]]:
    """Samples/s of the real ``Trainer.fit`` loop with the recipe's data loader, and what the
    loop really ran: the trainer's precision and the first convolution's output
    (:func:`observe_first_conv`)."""
    model, datamodule = build(recipe, size, overrides)
    model.scheduler_factory = None  # a plateau schedule needs the validation, which is not timed
    timer = StepTimer(warmup)
    callbacks = [timer, *([ChannelsLast()] if channels_last else [])]
    with tempfile.TemporaryDirectory() as tmp:
        trainer = pl.Trainer(
            accelerator=accelerator, devices=1, precision=precision, max_steps=warmup + steps + 1, limit_val_batches=0,
            num_sanity_val_steps=0, logger=False, enable_checkpointing=False, enable_progress_bar=False,
            enable_model_summary=False, callbacks=callbacks, default_root_dir=tmp,
        )
        with observe_first_conv(model) as seen:
            trainer.fit(model, datamodule=datamodule)
    return timer.samples_per_second(), {"trainer_precision": str(trainer.precision), **seen}


def measure(args: argparse.Namespace) -> dict[str, Any]:
    overrides = list(args.override) + (smoke_overrides() if args.smoke else [])
    memory_formats = {"both": (False, True), "yes": (True,), "no": (False,)}[args.channels_last]
    device = torch_device(args.accelerator)
    rows = []
    for recipe in args.recipes:
        for size in args.sizes or [None]:
            model, datamodule = build(recipe, size, overrides)
            datamodule.setup("fit")
            loader = datamodule.train_dataloader()
            batch = next(iter(loader))
            params = sum(p.numel() for p in model.parameters())
            for precision in args.precisions:
                for channels_last in memory_formats:
                    torch.manual_seed(0)
                    alone, peak, alone_seen = model_alone(build(recipe, size, overrides)[0], batch, precision, channels_last,
                                              args.steps, args.warmup, device)
                    loop, loop_seen = lightning_step(recipe, size, precision, channels_last, args.steps, args.warmup, overrides,
                                          args.accelerator)
                    rows.append({
                        "recipe": recipe, "method": type(model).__name__, "parameters": params,
                        "input_size": model.input_size[0], "batch_size": len(batch["image"]),
                        "train_samples": len(loader.dataset), "precision": precision,
                        "channels_last": channels_last, "model_alone_samples_per_s": round(alone, 2),
                        "lightning_samples_per_s": round(loop, 2), "ratio": round(loop / alone, 3),
                        **({"peak_memory_gib": round(peak, 2)} if peak is not None else {}),
                        "observed": {"model_alone": alone_seen, "lightning": loop_seen},
                    })
                    if args.verbose:
                        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    speedups = []
    for row in rows:
        if row["precision"] == "bf16-mixed":
            base = [r for r in rows if r["precision"] == "32" and r["recipe"] == row["recipe"]
                    and r["input_size"] == row["input_size"] and not r["channels_last"]]
            if base:
                speedups.append({
                    "recipe": row["recipe"], "input_size": row["input_size"], "channels_last": row["channels_last"],
                    "bf16_over_fp32_model_alone": round(row["model_alone_samples_per_s"] / base[0]["model_alone_samples_per_s"], 2),
                    "bf16_over_fp32_lightning": round(row["lightning_samples_per_s"] / base[0]["lightning_samples_per_s"], 2),
                })
    return {
        "benchmark": "train_step",
        "rows": rows,
        "speedups": speedups,
        "steps": args.steps,
        "warmup": args.warmup,
        "threads": torch.get_num_threads(),
        "accelerator": args.accelerator,
        **machine_info(),
        "smoke": args.smoke,
    }


def machine_info() -> dict[str, Any]:
    """What a measurement ran on: CPU model and count, the widest vector instructions torch
    uses on it (``AVX512``, ``AVX2``: one "AMD EPYC" name covers both kinds), architecture,
    torch version, the GPU
    where one is present, and the load average over the last 1, 5 and 15 minutes when this is
    called (at the end of a measurement: ~1 per busy thread of the benchmark itself; more
    means other work shared the machine)."""
    gpu = {"gpu": torch.cuda.get_device_name(0)} if torch.cuda.is_available() else {}
    load = {"load_average": [round(x, 2) for x in os.getloadavg()]} if hasattr(os, "getloadavg") else {}
    return {"cpu_count": os.cpu_count(), "cpu": cpu_name(), "cpu_capability": torch.backends.cpu.get_cpu_capability(),
            "machine": platform.machine(), "torch": torch.__version__, **gpu, **load}


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("recipes", nargs="+", help="recipe YAMLs (e.g. recipes/cpu/*.yaml)")
    parser.add_argument("--sizes", nargs="+", type=int, default=None,
                        help="square input sizes to measure (default: each recipe's own)")
    parser.add_argument("--accelerator", choices=["cpu", "gpu"], default="cpu", help="where to train (gpu: CUDA)")
    parser.add_argument("--precisions", nargs="+", default=["32", "bf16-mixed"], choices=["32", "bf16-mixed"])
    parser.add_argument("--channels-last", choices=["both", "yes", "no"], default="both")
    parser.add_argument("--steps", type=int, default=10, help="timed steps of each measurement")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--override", action="append", default=[], help="extra LightningCLI argument (repeatable)")
    parser.add_argument("--smoke", action="store_true", help="2 steps on generated data (for the tests)")
    parser.add_argument("--verbose", action="store_true", help="print each row to stderr as it is measured")
    args = parser.parse_args()
    if args.smoke:
        args.steps, args.warmup = 2, 1
    print(json.dumps(measure(args)))


if __name__ == "__main__":
    main()
