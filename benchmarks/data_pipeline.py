"""Throughput of the training data pipeline (decode + one affine warp + collate).

Prints one JSON object: samples/second of ``PoseDataModule.train_dataloader()`` on a
dataset (default: LSP train + LSP-extended, the usual LSP protocol), after warm-up.

    python benchmarks/data_pipeline.py --root ../shared/data --workers 2 --batches 60
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import torch

from poselit.data.datamodule import PoseDataModule


def measure(args: argparse.Namespace) -> dict:
    dm = PoseDataModule(
        train=args.train, val=[], data_root=args.root, input_size=(args.size, args.size),
        batch_size=args.batch_size, num_workers=args.workers, color_jitter=args.color_jitter,
    )
    dm.setup("fit")
    torch.manual_seed(0)
    batches = iter(dm.train_dataloader())
    for _ in range(args.warmup):
        next(batches)
    start, samples = time.perf_counter(), 0
    for _ in range(args.batches):
        samples += len(next(batches)["image"])
    seconds = time.perf_counter() - start
    return {
        "benchmark": "data_pipeline",
        "train": args.train,
        "input_size": args.size,
        "batch_size": args.batch_size,
        "workers": args.workers,
        "color_jitter": args.color_jitter,
        "samples": samples,
        "seconds": round(seconds, 3),
        "samples_per_second": round(samples / seconds, 1),
        "cpu_count": os.cpu_count(),
        "machine": platform.machine(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", default=os.environ.get("POSELIT_DATA"), help="data root (default $POSELIT_DATA)")
    parser.add_argument("--train", nargs="+", default=["lsp:train", "lspet:train"])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batches", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--color-jitter", type=float, default=0.0)
    print(json.dumps(measure(parser.parse_args())))


if __name__ == "__main__":
    main()
