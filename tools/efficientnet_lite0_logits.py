"""Runs the original EfficientNet-Lite0 and its import into timm on the same images and
compares their ImageNet logits: the reference that ``poselit backbone import`` of
``efficientnet-lite0-57934424.pth`` is checked against (tests/test_efficientnet_import.py).

The original network is the one the file was converted for: ml-illustrated's
``efficientnet_lite_pytorch``, lukemelas' ``efficientnet_pytorch`` with Lite0's parameters
(width 1.0, depth 1.0, 224 px, no squeeze-excitation, ReLU6 instead of swish, stem and head
not scaled, which changes nothing at width 1.0). ``efficientnet_pytorch`` 0.7.1 has no Lite
variants by name, so :func:`original_lite0` builds it from that package's own blocks with
those parameters. The import is timm's ``tf_efficientnet_lite0`` with the safetensors file
written by ``poselit backbone import``. Both get the same input tensor: the image fitted to
224 x 224 (centre crop to a square, bicubic) and normalised as timm's ``pretrained_cfg`` says.

Needs ``efficientnet_pytorch`` (pure Python, depends on torch only)::

    pip install --no-deps --target /tmp/effpkgs efficientnet_pytorch==0.7.1
    PYTHONPATH=/tmp/effpkgs python tools/efficientnet_lite0_logits.py \\
        efficientnet-lite0-57934424.pth tf_efficientnet_lite0.in1k.safetensors IMAGE [IMAGE ...] \\
        [--fixture tests/fixtures/efficientnet_lite0_logits.npz]

Prints one JSON line per image and a summary line; ``--fixture`` writes the original
network's top-5 classes and logits for the first image.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import timm
import torch
from efficientnet_pytorch import EfficientNet
from efficientnet_pytorch.utils import BlockDecoder, efficientnet
from PIL import Image, ImageOps
from safetensors.torch import load_file
from torch import Tensor, nn

#: Lite0's blocks (tensorflow/tpu efficientnet/lite/efficientnet_lite_builder.py): B0's
#: without squeeze-excitation.
LITE0_BLOCKS = [
    "r1_k3_s11_e1_i32_o16",
    "r2_k3_s22_e6_i16_o24",
    "r2_k5_s22_e6_i24_o40",
    "r3_k3_s22_e6_i40_o80",
    "r3_k5_s11_e6_i80_o112",
    "r4_k5_s22_e6_i112_o192",
    "r1_k3_s11_e6_i192_o320",
]
SIZE = 224


def original_lite0(weights: Path) -> nn.Module:
    """efficientnet_pytorch's EfficientNet with Lite0's blocks and ReLU6, loaded strictly
    (every name and shape) from the efficientnet-pytorch state dict ``weights``."""
    _, params = efficientnet(width_coefficient=1.0, depth_coefficient=1.0, image_size=SIZE, dropout_rate=0.2)
    model = EfficientNet(BlockDecoder.decode(LITE0_BLOCKS), params)
    for module in [model, *model._blocks]:
        module._swish = nn.ReLU6()  # Lite's activation; efficientnet_pytorch hard-codes swish
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    return model.eval()


def imported_lite0(weights: Path) -> nn.Module:
    """timm's tf_efficientnet_lite0 with the imported weights, loaded strictly."""
    model = timm.create_model("tf_efficientnet_lite0")
    model.load_state_dict(load_file(weights))
    return model.eval()


def input_tensor(image: Path, mean: tuple[float, ...], std: tuple[float, ...]) -> Tensor:
    """``image`` centre-cropped to a square, resized to 224 x 224 (bicubic) and normalised."""
    fitted = ImageOps.fit(Image.open(image).convert("RGB"), (SIZE, SIZE), Image.Resampling.BICUBIC)
    x = torch.from_numpy(np.asarray(fitted, dtype=np.float32) / 255).permute(2, 0, 1)
    return ((x - torch.tensor(mean).view(3, 1, 1)) / torch.tensor(std).view(3, 1, 1)).unsqueeze(0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("original", type=Path, help="efficientnet-lite0-57934424.pth")
    parser.add_argument("imported", type=Path, help="the safetensors file of `poselit backbone import`")
    parser.add_argument("images", type=Path, nargs="+")
    parser.add_argument("--fixture", type=Path, help="write the first image's top-5 of the original network here")
    args = parser.parse_args()
    torch.set_num_threads(1)
    original, imported = original_lite0(args.original), imported_lite0(args.imported)
    names = timm.data.ImageNetInfo()
    cfg = imported.pretrained_cfg
    worst_abs = worst_rel = 0.0
    same_top5 = 0
    for i, image in enumerate(args.images):
        x = input_tensor(image, cfg["mean"], cfg["std"])
        with torch.no_grad():
            a, b = original(x)[0], imported(x)[0]
        diff = float((a - b).abs().max())
        rel = diff / float(a.abs().max())
        top_a, top_b = a.topk(5), b.topk(5)
        same = top_a.indices.tolist() == top_b.indices.tolist()
        worst_abs, worst_rel, same_top5 = max(worst_abs, diff), max(worst_rel, rel), same_top5 + same
        print(json.dumps({
            "image": image.name,
            "max_abs_logit_diff": diff,
            "max_rel_logit_diff": rel,
            "top5_max_abs_diff": float((top_a.values - b[top_a.indices]).abs().max()),
            "top5_original": top_a.indices.tolist(),
            "top5_imported": top_b.indices.tolist(),
            "top5_same": same,
            "top1": names.index_to_description(int(top_a.indices[0])),
            "top1_probability": float(a.softmax(0)[top_a.indices[0]]),
        }))
        if i == 0 and args.fixture:
            np.savez(args.fixture, top5_indices=top_a.indices.numpy(), top5_logits=top_a.values.numpy())
    print(json.dumps({"images": len(args.images), "top5_same": same_top5,
                      "max_abs_logit_diff": worst_abs, "max_rel_logit_diff": worst_rel}))


if __name__ == "__main__":
    main()
