"""``poselit backbone import``: ImageNet weights saved by another library -> a timm
safetensors file that recipes load as ``backbone_weights`` (:func:`poselit.backbones.import_weights`)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def add_backbone_command(commands: Any) -> None:
    """Add ``poselit backbone import`` to an ``argparse`` sub-parser set."""
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
    convert.set_defaults(func=backbone_import)


def backbone_import(args: argparse.Namespace) -> int:
    """Convert a backbone weights file of another library to a timm safetensors file."""
    import hashlib

    from safetensors.torch import save

    from poselit.atomic import make_folder, write_atomic
    from poselit.backbones import import_weights

    state = import_weights(args.source, args.model)
    out = Path(args.out)
    make_folder(out.parent)
    data = save(state, metadata={"timm_model": args.model, "source": Path(args.source).name})
    write_atomic(out, data)
    digest = hashlib.sha256(data).hexdigest()
    print(f"wrote {out} ({len(state)} tensors of timm's {args.model!r}, sha256 {digest}); "
          f"use it as backbone_weights: {out}")
    return 0
