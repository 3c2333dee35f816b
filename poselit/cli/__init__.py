"""The ``poselit`` command.

``poselit data show``   grid of augmented training samples + JSON dataset summary
``poselit data synth``  write a small generated dataset in the LSP layout
``poselit backbone import``  ImageNet weights of another library -> timm safetensors
``poselit eval``        score a predictions file against a dataset split (paper tables)
``poselit zoo``         model zoo: list, info, download, export, publish, table
``poselit reproduce``   test a checkpoint with a recipe, our row beside the paper's
``poselit predict``     poses in your images: JSON + annotated images (poselit.predict)
``poselit demo``        a zoo model on the bundled sample images
``poselit fit | validate | test | predict -c RECIPE.yaml``  LightningCLI (see poselit.training)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Sequence

from poselit import __version__
from poselit.commands import (
    add_eval_command,
    add_predict_commands,
    add_reproduce_command,
    add_zoo_command,
    handler,
    is_lightning_predict,
)
from poselit.extras import MissingDependencyError

# Nothing heavy at the top: parsing arguments, --help and argument errors must not wait for
# torch or Lightning (tests/test_cli.py checks it). Handlers import what they use.


def data_show(args: argparse.Namespace) -> int:
    """Write ``samples.png`` (augmented crops with skeletons) and ``summary.json``."""
    import numpy as np
    import torch
    from tqdm import tqdm

    from poselit.data.datamodule import default_data_root
    from poselit.data.dataset import PoseDataset
    from poselit.data.sources import read_annotations
    from poselit.atomic import write_atomic
    from poselit.data.transforms import AugmentConfig
    from poselit.visualize import draw_skeleton, image_grid, save_image

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
    out.mkdir(parents=True, exist_ok=True)
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


def backbone_import(args: argparse.Namespace) -> int:
    """Convert a backbone weights file of another library to a timm safetensors file."""
    import hashlib

    from safetensors.torch import save

    from poselit.atomic import write_atomic
    from poselit.backbones import import_weights

    state = import_weights(args.source, args.model)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    data = save(state, metadata={"timm_model": args.model, "source": Path(args.source).name})
    write_atomic(out, data)
    digest = hashlib.sha256(data).hexdigest()
    print(f"wrote {out} ({len(state)} tensors of timm's {args.model!r}, sha256 {digest}); "
          f"use it as backbone_weights: {out}")
    return 0


LIGHTNING_SUBCOMMANDS = ("fit", "validate", "test", "predict")

USER_ERRORS = (FileNotFoundError, ValueError, KeyError, OSError, MissingDependencyError)
"""Errors that mean bad input or a missing optional dependency: reported in one line,
without a traceback."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="poselit", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"poselit {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in LIGHTNING_SUBCOMMANDS:
        if name == "predict":  # images, or LightningCLI with a recipe: add_predict_commands
            continue
        commands.add_parser(name, help=f"LightningCLI {name} -c RECIPE.yaml (see 'poselit {name} --help')", add_help=False)

    data = commands.add_parser("data", help="inspect and generate datasets").add_subparsers(
        dest="data_command", required=True, metavar="SUBCOMMAND"
    )
    show = data.add_parser("show", help="draw augmented training samples and summarise a dataset")
    show.add_argument("--dataset", default="lsp:train", help="NAME[:SPLIT][@PATH], e.g. lsp:train, mpii:valid")
    show.add_argument("--root", help="data root folder (default: $POSELIT_DATA)")
    show.add_argument("--out", default="runs/data-show", help="output folder")
    show.add_argument("--num", type=int, default=16, help="number of samples to draw")
    show.add_argument("--columns", type=int, default=4, help="grid columns")
    show.add_argument("--size", type=int, default=256, help="crop size in pixels")
    show.add_argument("--seed", type=int, default=0)
    show.add_argument("--no-augment", action="store_true", help="plain centred crops")
    show.add_argument("--color-jitter", type=float, default=0.0, help="colour jitter strength")
    show.add_argument("--quiet", action="store_true", help="no progress bar")
    show.set_defaults(func=handler("poselit.cli:data_show"))

    synth = data.add_parser("synth", help="write a small generated dataset in the LSP layout")
    synth.add_argument("--out", required=True, help="output folder")
    synth.add_argument("--num", type=int, default=40, help="number of images (even)")
    synth.add_argument("--height", type=int, default=160)
    synth.add_argument("--width", type=int, default=120)
    synth.add_argument("--seed", type=int, default=0)
    synth.set_defaults(func=handler("poselit.cli:data_synth"))

    backbone = commands.add_parser("backbone", help="backbone weights for training").add_subparsers(
        dest="backbone_command", required=True, metavar="SUBCOMMAND"
    )
    convert = backbone.add_parser(
        "import",
        help="convert ImageNet weights saved by another library (torchvision, ...) to a timm safetensors file",
        description="Pair the tensors of SOURCE with those of timm's MODEL by position (same network, other "
        "names; every shape must match) and save them for backbone_weights: in a recipe.",
    )
    convert.add_argument("source", help="weights file of the same network (.pth/.pt/.bin/.safetensors state dict)")
    convert.add_argument("--model", required=True, help="timm model name, e.g. mobilenetv2_100")
    convert.add_argument("--out", required=True, help="safetensors file to write")
    convert.set_defaults(func=handler("poselit.cli:backbone_import"))

    add_eval_command(commands)
    add_zoo_command(commands)
    add_predict_commands(commands)
    add_reproduce_command(commands)
    return parser


def parse_args(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """Parse ``argv``; what follows ``--`` goes to ``args.overrides`` for the commands that
    take LightningCLI arguments (those whose defaults set ``overrides``)."""
    ours, dashes, theirs = argv, [], []
    if "--" in argv:
        cut = argv.index("--")
        ours, dashes, theirs = argv[:cut], ["--"], argv[cut + 1 :]
    args = parser.parse_args(ours)
    if dashes and not isinstance(getattr(args, "overrides", None), list):
        parser.error(f"unrecognized arguments: {' '.join(dashes + theirs)}")
    if dashes:
        args.overrides = theirs
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``poselit`` console command; returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in LIGHTNING_SUBCOMMANDS and (argv[0] != "predict" or is_lightning_predict(argv[1:])):
        from poselit.training import RecipeError, run_lightning

        try:
            run_lightning(argv)
        except RecipeError as err:  # errors during training keep their traceback
            print(f"poselit: error: {err}", file=sys.stderr)
            return 2
        return 0
    args = parse_args(build_parser(), argv)
    try:
        return args.func(args)
    except USER_ERRORS as err:
        print(f"poselit: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
