"""``poselit data show`` (augmented samples and a summary of a dataset) and ``poselit data
synth`` (a small generated dataset in the LSP layout)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def add_data_command(commands: Any) -> None:
    """Add ``poselit data show|synth`` to an ``argparse`` sub-parser set."""
    data = commands.add_parser("data", help="inspect and generate datasets").add_subparsers(
        dest="data_command", required=True, metavar="SUBCOMMAND"
    )
    show = data.add_parser("show", help="draw augmented training samples and summarise a dataset")
    show.add_argument("--dataset", default="lsp:train", help="NAME[:SPLIT][@PATH], e.g. lsp:train, mpii:valid")
    show.add_argument("--root", help="data root folder (default: $POSELIT_DATA)")
    show.add_argument("--out", default="runs/data-show", help="output folder")
    show.add_argument("--num", type=positive_int, default=16, help="number of samples to draw")
    show.add_argument("--columns", type=positive_int, default=4, help="grid columns")
    show.add_argument("--size", type=positive_int, default=256, help="crop size in pixels")
    show.add_argument("--seed", type=int, default=0)
    show.add_argument("--no-augment", action="store_true", help="plain centred crops")
    show.add_argument("--color-jitter", type=float, default=0.0, help="colour jitter strength")
    show.add_argument("--quiet", action="store_true", help="no progress bar")
    show.set_defaults(func=data_show)

    synth = data.add_parser("synth", help="write a small generated dataset in the LSP layout")
    synth.add_argument("--out", required=True, help="output folder")
    synth.add_argument("--num", type=positive_int, default=40, help="number of images (even)")
    synth.add_argument("--height", type=positive_int, default=160, help="image height in pixels")
    synth.add_argument("--width", type=positive_int, default=120, help="image width in pixels")
    synth.add_argument("--seed", type=int, default=0)
    synth.set_defaults(func=data_synth)


def positive_int(text: str) -> int:
    """``argparse`` type of counts and sizes: an integer > 0, else argparse's one-line
    error naming the argument (a crop size of 0 used to end in "Singular matrix")."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected an integer > 0, got {text!r}")
    return value


def data_show(args: argparse.Namespace) -> int:
    """Write ``samples.png`` (augmented crops with skeletons) and ``summary.json``."""
    import numpy as np
    import torch
    from tqdm import tqdm

    from poselit.atomic import make_folder, write_atomic
    from poselit.data.dataset import PoseDataset
    from poselit.data.sources import default_data_root, read_annotations
    from poselit.data.transforms import AugmentConfig
    from poselit.visualize import draw_skeleton, image_grid, save_image

    from poselit.data.dataset import max_image_pixels

    limit, pixels = max_image_pixels(), args.num * args.size**2
    if pixels > limit:
        raise ValueError(
            f"--num {args.num} crops of --size {args.size} = {pixels} pixels in the grid is above the limit of "
            f"{limit} that images are read with (POSELIT_MAX_IMAGE_PIXELS raises it)"
        )
    annotations = read_annotations(args.dataset, args.root or default_data_root())
    missing = [str(r.image) for r in annotations.records if not r.image.is_file()]
    dataset = PoseDataset(
        annotations,
        (args.size, args.size),
        train=not args.no_augment,
        augment=AugmentConfig(color_jitter=args.color_jitter),
        on_bad_image="skip",
    )
    torch.manual_seed(args.seed)
    picks = np.random.default_rng(args.seed).choice(len(dataset), min(args.num, len(dataset)), replace=False)
    tiles = []
    for index in tqdm(picks, desc="drawing samples", unit="sample", disable=args.quiet):
        sample = dataset[int(index)]
        image = sample["image"].permute(1, 2, 0).numpy()
        tiles.append(draw_skeleton(image, sample["keypoints"].numpy(), sample["visibility"].numpy(), dataset.skeleton))
    out = Path(args.out)
    make_folder(out)
    grid_path = out / "samples.png"
    save_image(image_grid(tiles, args.columns), grid_path)
    summary = {
        "dataset": args.dataset,
        **annotations.summary(),
        "missing_images": {"count": len(missing), "first": missing[:10]},
        "drawn_samples": len(tiles),
        "unreadable_images_skipped_while_drawing": dataset.num_skipped,
    }
    write_atomic(out / "summary.json", json.dumps(summary, indent=2))
    print(
        f"{args.dataset}: {summary['records']} records, {summary['annotated_joints']} annotated joints "
        f"({summary['occluded_joints']} occluded), skipped {dict(annotations.skipped) or 'none'}, "
        f"{len(missing)} missing images"
    )
    print(f"wrote {grid_path} and {out / 'summary.json'}")
    return 0


def data_synth(args: argparse.Namespace) -> int:
    """Write a generated LSP-layout dataset."""
    from poselit.data.synthetic import write_synthetic_lsp

    root = write_synthetic_lsp(args.out, args.num, (args.height, args.width), args.seed)
    print(f"wrote {args.num} images and joints.mat to {root} (read it as 'lsp:train@{root}')")
    return 0
