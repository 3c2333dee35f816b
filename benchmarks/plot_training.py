"""Validation PCK@0.2 against CPU-hours of training runs, from their CSV logs.

Each run is a folder written by a recipe with a ``CSVLogger`` and the
:class:`~poselit.callbacks.TrainingClock` callback (the CPU recipes): every
``metrics.csv`` under it is read (a resumed run writes a new ``version_N`` folder; the
clock goes on counting across them), the rows with both ``val/pck`` and
``time/cpu_hours`` are plotted, one line per run, and the points are printed as JSON.

    python benchmarks/plot_training.py luvizon=/runs/cpu/luvizon bulat=/runs/cpu/bulat \\
        --out docs/training_curves.png
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path


def read_curve(run: Path) -> list[tuple[float, float]]:
    """``(cpu_hours, val_pck)`` of every validation of a run, in CPU-time order; a
    validation logged twice (a resume repeats the interrupted epoch) keeps its last value."""
    files = sorted(run.rglob("metrics.csv"))
    if not files:
        raise FileNotFoundError(f"{run}: no metrics.csv under it (train with a CSVLogger)")
    points: dict[float, float] = {}
    for file in files:
        with file.open(newline="") as handle:
            for row in csv.DictReader(handle):
                if row.get("val/pck") and row.get("time/cpu_hours"):
                    points[float(row["time/cpu_hours"])] = float(row["val/pck"])
    if not points:
        raise ValueError(f"{run}: no row has both val/pck and time/cpu_hours (add poselit.callbacks.TrainingClock)")
    return sorted(points.items())


def plot(curves: dict[str, list[tuple[float, float]]], out: Path, title: str) -> Path:
    """Write the PNG of the curves (one line per run)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4.5), dpi=120)
    for name, points in curves.items():
        hours, pck = zip(*points)
        axes.plot(hours, pck, marker="o", markersize=3, label=f"{name} (best {max(pck):.1f})")
    axes.set_xlabel("training CPU-hours (process + loader workers)")
    axes.set_ylabel("validation PCK@0.2 (%)")
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out)
    plt.close(figure)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", help="NAME=RUN_FOLDER (or a folder, named after itself)")
    parser.add_argument("--out", type=Path, required=True, help="PNG to write")
    parser.add_argument("--title", default="Validation PCK@0.2 (held-out people) during training")
    args = parser.parse_args()
    runs = dict(r.split("=", 1) if "=" in r else (Path(r).name, r) for r in args.runs)
    curves = {name: read_curve(Path(folder)) for name, folder in runs.items()}
    plot(curves, args.out, args.title)
    print(json.dumps({"out": str(args.out), "curves": {k: [[round(h, 4), round(p, 2)] for h, p in v] for k, v in curves.items()}}))


if __name__ == "__main__":
    main()
