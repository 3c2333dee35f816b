"""Validation PCK@0.2 against CPU-hours of training runs, from their CSV logs.

Each run is a folder written by a recipe with a ``CSVLogger`` and the
:class:`~poselit.callbacks.TrainingClock` callback (the CPU recipes): every
``metrics.csv`` under it is read (a resumed run writes a new ``version_N`` folder; the
clock goes on counting across them), the rows with both ``val/pck`` and
``time/cpu_hours`` are plotted, one line per run, and the points are printed as JSON.

    python benchmarks/plot_training.py luvizon=/runs/cpu/luvizon bulat=/runs/cpu/bulat \\
        --out docs/training_curves.png

``NAME+=FOLDER`` continues curve ``NAME`` with a run that started from its end (a new run
with ``init_from``, whose clock starts again at zero): its CPU-hours are shifted by the
curve's last point. Run folders do not outlive their machine, so the points are kept in the
repository: ``--stored FILE`` reads the curves of an earlier ``--json FILE`` first (a run
folder named again replaces its stored curve; ``+=`` extends it), ``--json FILE``
writes all curves plotted, and ``--level LABEL=PCK`` draws a dashed line (the held-out PCK
of the model a run should beat)::

    python benchmarks/plot_training.py --stored benchmarks/results/training_curves.json \\
        bulat+=/runs/bulat_anneal2 --json benchmarks/results/training_curves.json \\
        --out benchmarks/results/cpu_training_curves.png
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


def plot(curves: dict[str, list[tuple[float, float]]], out: Path, title: str, levels: dict[str, float] | None = None) -> Path:
    """Write the PNG of the curves (one line per run), with a dashed horizontal line per
    entry of ``levels`` (e.g. the held-out PCK of the model a run should beat)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4.5), dpi=120)
    for name, points in curves.items():
        hours, pck = zip(*points)
        axes.plot(hours, pck, marker="o", markersize=3, label=f"{name} (best {max(pck):.1f})")
    for name, value in (levels or {}).items():
        axes.axhline(value, linestyle="--", linewidth=1, color="grey")
        axes.annotate(f"{name}: {value:g}", (0, value), xycoords=("axes fraction", "data"),
                      xytext=(4, 3), textcoords="offset points", fontsize=8, color="dimgrey")
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


def read_stored(path: Path) -> dict[str, list[tuple[float, float]]]:
    """The curves of a JSON file this script wrote (``--json``): ``{"curves": {NAME: [[h, pck], ...]}}``."""
    try:
        curves = json.loads(path.read_text())["curves"]
        return {name: [(float(h), float(p)) for h, p in points] for name, points in curves.items()}
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ValueError(f"{path}: not a curves file written by plot_training.py --json ({err})") from None


def add_run(curves: dict[str, list[tuple[float, float]]], spec: str) -> None:
    """Add ``NAME=FOLDER`` (a new curve; a bare folder is named after itself) or
    ``NAME+=FOLDER`` (continuing ``NAME``: CPU-hours shifted by its last point) to ``curves``."""
    name, plus, folder = spec.partition("+=")
    if not plus:
        name, equals, folder = spec.partition("=")
        if not equals:
            name, folder = Path(spec).name, spec
        curves[name] = read_curve(Path(folder))
        return
    if name not in curves:
        raise ValueError(f"{spec}: no curve {name!r} to continue (known: {', '.join(curves) or 'none'})")
    offset = curves[name][-1][0]
    curves[name] = curves[name] + [(offset + hours, pck) for hours, pck in read_curve(Path(folder))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="*", help="NAME=RUN_FOLDER (or a folder, named after itself), or NAME+=RUN_FOLDER")
    parser.add_argument("--out", type=Path, required=True, help="PNG to write")
    parser.add_argument("--stored", type=Path, help="curves written earlier with --json, plotted first")
    parser.add_argument("--json", type=Path, help="also write the curves here (for --stored next time)")
    parser.add_argument("--title", default="Validation PCK@0.2 (held-out people) during training")
    parser.add_argument("--level", action="append", default=[], metavar="LABEL=PCK",
                        help="a dashed horizontal line, e.g. the shipped model's held-out PCK (repeatable)")
    args = parser.parse_args()
    try:
        curves = read_stored(args.stored) if args.stored else {}
        for spec in args.runs:
            add_run(curves, spec)
    except (OSError, ValueError) as err:
        raise SystemExit(f"plot_training.py: {err}") from None
    if not curves:
        raise SystemExit("plot_training.py: nothing to plot: name run folders or --stored FILE")
    try:
        levels = {label: float(value) for label, _, value in (level.rpartition("=") for level in args.level)}
    except ValueError:
        raise SystemExit(f"plot_training.py: --level takes LABEL=PCK, got {args.level}") from None
    plot(curves, args.out, args.title, levels)
    result = {"out": str(args.out), "curves": {k: [[round(h, 4), round(p, 2)] for h, p in v] for k, v in curves.items()}}
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
