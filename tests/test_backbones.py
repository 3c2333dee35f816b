"""Tests of poselit.models.backbones and the trunks' building blocks (poselit.models.layers)."""

from __future__ import annotations

from pathlib import Path

import pytest
import timm
import torch
from safetensors.torch import save_file
from torch import nn

from poselit.models.backbones import Backbone, create_backbone, import_weights, list_backbones
from poselit.models.layers import BatchNormNoScale, SeparableResidual

TRUNKS = ("poselit_belagiannis_trunk", "poselit_luvizon_stem", "poselit_vgg16_fcn")


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def conv_params(k_h: int, k_w: int, c_in: int, c_out: int, bias: bool) -> int:
    return k_h * k_w * c_in * c_out + (c_out if bias else 0)


def count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# --------------------------------------------------------------------------- paper trunks


def test_belagiannis_trunk_per_layer_table() -> None:
    # Every conv has a bias and is followed by batch norm (scale + shift).
    table = [
        (3, 3, 64),
        (3, 64, 64),
        (3, 64, 64),
        (3, 64, 128),
        (3, 128, 128),
        (3, 128, 128),
        (9, 128, 256),
        (9, 256, 512),
    ]
    expected = sum(conv_params(k, k, c_in, c_out, True) + 2 * c_out for k, c_in, c_out in table)
    model = timm.create_model("poselit_belagiannis_trunk").eval()
    assert count(model) == expected == 13_719_168
    assert model(torch.zeros(1, 3, 32, 32)).shape == (1, 512, 8, 8)

    backbone = create_backbone("poselit_belagiannis_trunk", out_indices=(-2, -1))
    skip, features = backbone(torch.zeros(1, 3, 64, 64))
    assert skip.shape == (1, 128, 16, 16) and features.shape == (1, 512, 16, 16)
    assert backbone.channels == (128, 512) and backbone.strides == (4, 4)
    assert create_backbone("poselit_belagiannis_trunk", out_strides=(1, 2, 4)).channels == (
        64,
        128,
        512,
    )


def test_luvizon_stem_per_layer_table() -> None:
    # Convs without bias; batch norm without scale contributes one shift per channel.
    def conv_bn(k_h: int, k_w: int, c_in: int, c_out: int) -> int:
        return conv_params(k_h, k_w, c_in, c_out, False) + c_out

    stem = conv_bn(3, 3, 3, 32) + conv_bn(3, 3, 32, 32) + conv_bn(3, 3, 32, 64)
    mixed1 = conv_bn(3, 3, 64, 96)  # || max-pool
    mixed2 = (
        conv_bn(1, 1, 160, 64)
        + conv_bn(3, 3, 64, 96)
        + (
            conv_bn(1, 1, 160, 64)
            + conv_bn(5, 1, 64, 64)
            + conv_bn(1, 5, 64, 64)
            + conv_bn(3, 3, 64, 96)
        )
    )
    mixed3 = conv_bn(3, 3, 192, 192)  # || max-pool
    # Separable residual 384 -> 576: 1x1 projection shortcut; depthwise 3x3 + pointwise + BN.
    sepconv = conv_bn(1, 1, 384, 576) + 9 * 384 + 384 * 576 + 576
    expected = stem + mixed1 + mixed2 + mixed3 + sepconv
    model = timm.create_model("poselit_luvizon_stem").eval()
    assert count(model) == expected == 1_035_456
    assert not any(isinstance(m, nn.Conv2d) and m.bias is not None for m in model.modules())

    backbone = create_backbone("poselit_luvizon_stem", out_strides=(2, 4, 8))
    assert backbone.channels == (64, 192, 576) and backbone.strides == (2, 4, 8)
    shapes = [f.shape for f in backbone(torch.zeros(1, 3, 64, 64))]
    assert shapes == [(1, 64, 32, 32), (1, 192, 16, 16), (1, 576, 8, 8)]
    assert create_backbone("poselit_luvizon_stem")(torch.zeros(1, 3, 36, 44))[0].shape == (
        1,
        576,
        5,
        6,
    )


def test_vgg16_fcn_layers_and_fcn_taps() -> None:
    widths = [
        (3, 64),
        (64, 64),
        (64, 128),
        (128, 128),
        (128, 256),
        (256, 256),
        (256, 256),
        (256, 512),
        (512, 512),
        (512, 512),
        (512, 512),
        (512, 512),
        (512, 512),
    ]
    expected = sum(conv_params(3, 3, c_in, c_out, True) for c_in, c_out in widths)
    model = timm.create_model("poselit_vgg16_fcn").eval()
    assert count(model) == expected == 14_714_688

    backbone = create_backbone("poselit_vgg16_fcn", out_strides=(8, 16, 32))
    assert backbone.channels == (256, 512, 512) and backbone.strides == (8, 16, 32)
    shapes = [f.shape for f in backbone(torch.zeros(1, 3, 64, 64))]
    assert shapes == [(1, 256, 8, 8), (1, 512, 4, 4), (1, 512, 2, 2)]


def test_vgg16_fcn_has_the_layout_of_imagenet_vgg16() -> None:
    """Same tensor names and shapes as timm's vgg16 ``features``: ImageNet weights fit."""
    with torch.device("meta"):
        ours = timm.create_model("poselit_vgg16_fcn").state_dict()
        theirs = timm.create_model("vgg16").state_dict()
    theirs = {k: v.shape for k, v in theirs.items() if k.startswith("features.")}
    assert {k: v.shape for k, v in ours.items()} == theirs
    assert "poselit_vgg16_fcn.tv_in1k" in list_backbones("poselit_*", pretrained=True)


def test_trunks_are_in_timm_registry() -> None:
    assert set(TRUNKS) <= set(timm.list_models("poselit_*"))
    assert set(TRUNKS) <= set(list_backbones("poselit_*"))
    for name in TRUNKS:
        features = timm.create_model(name, features_only=True)
        assert len(features(torch.zeros(1, 3, 32, 32))) == len(features.feature_info.channels())
    with pytest.raises(ValueError, match="num_classes must be 0"):
        timm.create_model("poselit_luvizon_stem", num_classes=10)
    with pytest.raises(RuntimeError, match="No pretrained weights"):
        create_backbone("poselit_belagiannis_trunk", pretrained=True)


def test_the_old_module_path_works_for_one_release_and_warns() -> None:
    """``poselit.backbones`` moved into ``poselit.models``; the old path still gives the same
    objects (and registers the trunks), with a DeprecationWarning naming the new one."""
    import importlib

    with pytest.warns(DeprecationWarning, match="poselit.models.backbones"):
        old = importlib.reload(importlib.import_module("poselit.backbones"))
    assert old.create_backbone is create_backbone and old.Backbone is Backbone and set(old.__all__) >= {"TopDownNeck"}


def test_trunk_in_chans() -> None:
    backbone = create_backbone("poselit_luvizon_stem", in_chans=1)
    assert backbone(torch.zeros(1, 1, 32, 32))[0].shape == (1, 576, 4, 4)


# --------------------------------------------------------------------------- building blocks


def test_batchnorm_without_scale() -> None:
    norm = BatchNormNoScale(4)
    assert [name for name, _ in norm.named_parameters()] == ["bias"]
    with torch.no_grad():
        norm.bias.copy_(torch.arange(4.0))
    out = norm(torch.randn(8, 4, 5, 5) * 3 + 2)
    torch.testing.assert_close(out.mean(dim=(0, 2, 3)), torch.arange(4.0), atol=1e-5, rtol=0)
    torch.testing.assert_close(
        out.var(dim=(0, 2, 3), unbiased=False), torch.ones(4), atol=1e-3, rtol=0
    )
    synced = nn.SyncBatchNorm.convert_sync_batchnorm(nn.Sequential(norm))
    assert torch.equal(synced[0].bias, norm.bias), "sync-BN conversion must keep the shift"


def test_separable_residual_shortcuts() -> None:
    same = SeparableResidual(8, 8, 5).eval()
    assert isinstance(same.shortcut, nn.Identity) and isinstance(same.reduce, nn.Identity)
    x = torch.randn(2, 8, 6, 6)
    torch.testing.assert_close(same(x), x + same.conv(x))  # identity shortcut on the raw input
    widen, narrow = SeparableResidual(8, 12), SeparableResidual(12, 8)
    assert not isinstance(widen.shortcut, nn.Identity) and isinstance(widen.reduce, nn.Identity)
    assert not isinstance(narrow.reduce, nn.Identity)
    assert widen(x).shape == (2, 12, 6, 6) and narrow(torch.randn(2, 12, 6, 6)).shape == (
        2,
        8,
        6,
        6,
    )


# --------------------------------------------------------------------------- timm backbones


def test_timm_backbone_strides_and_channels() -> None:
    backbone = create_backbone("resnet18", out_strides=(4, 8, 16, 32))
    assert isinstance(backbone, Backbone)
    assert backbone.channels == (64, 128, 256, 512) and backbone.strides == (4, 8, 16, 32)
    features = backbone(torch.zeros(2, 3, 64, 64))
    assert [f.shape for f in features] == [
        (2, c, 64 // s, 64 // s) for c, s in zip(backbone.channels, backbone.strides)
    ]
    deepest = create_backbone("mobilenetv3_small_050")
    assert (
        deepest.strides == (32,)
        and deepest(torch.zeros(1, 3, 64, 64))[0].shape[1] == deepest.channels[0]
    )
    assert create_backbone("resnet18", out_strides=8).strides == (8,)
    assert create_backbone("resnet18", out_strides=8, output_stride=8).channels == (512,)


def test_bad_strides_and_names() -> None:
    with pytest.raises(
        ValueError, match="no feature map at stride 64; available strides: 2, 4, 8, 16, 32"
    ):
        create_backbone("resnet18", out_strides=(8, 64))
    with pytest.raises(ValueError, match="strictly increasing"):
        create_backbone("resnet18", out_strides=(32, 8))
    with pytest.raises(ValueError, match="not both"):
        create_backbone("resnet18", out_strides=8, out_indices=(2,))
    with pytest.raises(KeyError, match="did you mean .*resnet18"):
        create_backbone("resnet_18")
    with pytest.raises(KeyError, match="poselit_luvizon_stem"):
        create_backbone("poselit_luvizon_stemm")


# --------------------------------------------------------------------------- local weights


def features_of(backbone: Backbone, x: torch.Tensor) -> list[torch.Tensor]:
    with torch.no_grad():
        return backbone.eval()(x)


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
def test_local_weights_reproduce_the_source_model(tmp_path: Path, suffix: str) -> None:
    source = timm.create_model("resnet18").eval()
    for m in source.modules():  # non-trivial running statistics must load too
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    file = tmp_path / f"resnet18{suffix}"
    state = source.state_dict()
    save_file(state, file) if suffix == ".safetensors" else torch.save(state, file)

    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        expected = source.forward_intermediates(x, indices=[2, 4], intermediates_only=True)
    loaded = create_backbone("resnet18", weights=file, out_strides=(8, 32))
    for got, want in zip(features_of(loaded, x), expected):
        torch.testing.assert_close(got, want)
    random = create_backbone("resnet18", out_strides=(8, 32))
    assert not torch.allclose(features_of(random, x)[1], expected[1])


def test_local_weights_for_a_trunk_and_from_a_folder(tmp_path: Path) -> None:
    source = timm.create_model("poselit_vgg16_fcn").eval()
    state = dict(source.state_dict())
    # An ImageNet VGG-16 file also holds the classifier; the trunk's filter drops it.
    state["head.fc.weight"] = torch.zeros(10, 4096)
    save_file(state, tmp_path / "model.safetensors")
    torch.save(
        {"unrelated": torch.zeros(1)}, tmp_path / "other.pth"
    )  # ignored: model.safetensors wins
    x = torch.randn(1, 3, 32, 32)
    loaded = create_backbone("poselit_vgg16_fcn", weights=tmp_path, out_strides=(8, 32))
    with torch.no_grad():
        expected = [source.features[:17](x), source.features(x)]  # pool3, pool5
    torch.testing.assert_close(features_of(loaded, x), expected)


def test_weights_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        create_backbone("resnet18", weights=tmp_path / "missing.safetensors")
    with pytest.raises(FileNotFoundError, match="found none"):
        create_backbone("resnet18", weights=tmp_path)
    # A training checkpoint (prefixed names) must not load silently as a random model.
    prefixed = {
        f"model.backbone.{k}": v for k, v in timm.create_model("resnet18").state_dict().items()
    }
    save_file(prefixed, tmp_path / "prefixed.safetensors")
    with pytest.raises(ValueError, match="does not hold the weights of 'resnet18'"):
        create_backbone("resnet18", weights=tmp_path / "prefixed.safetensors")
    torch.save({"state_dict": {}, "epoch": 3}, tmp_path / "checkpoint.pth")
    with pytest.raises(FileNotFoundError, match="exactly one"):
        create_backbone("resnet18", weights=tmp_path)
    torch.save(nn.Linear(2, 2), tmp_path / "module.bin")  # a pickled object, not a state dict
    with pytest.raises(ValueError, match=r"not a plain state dict: .*\(Unsupported global: GLOBAL torch\.nn\.modules") as err:
        create_backbone("resnet18", weights=tmp_path / "module.bin")
    assert "\n" not in str(err.value) and "weights_only` set to `False`" not in str(err.value)  # one line, no advice to run it


# --------------------------------------------------------------------------- top-down neck


def test_neck_fuses_every_deeper_feature_into_the_requested_stride() -> None:
    backbone = create_backbone("resnet18", out_strides=8, neck_channels=16)
    assert backbone.channels == (16,) and backbone.strides == (8,)
    assert backbone.body.feature_info.reduction() == [8, 16, 32]  # stride 8 and every deeper one
    (out,) = backbone(torch.randn(2, 3, 64, 96))
    assert out.shape == (2, 16, 8, 12)
    # the deepest stage reaches the output: its gradient is not zero
    out.square().mean().backward()
    assert backbone.body.layer4[-1].bn2.weight.grad.abs().sum() > 0  # (timm starts its gain at 0)
    assert create_backbone("resnet18", out_strides=32, neck_channels=8).body.feature_info.reduction() == [32]


def test_neck_needs_one_stride() -> None:
    with pytest.raises(ValueError, match="needs one output stride"):
        create_backbone("resnet18", out_strides=(8, 16), neck_channels=16)


def test_import_weights_pairs_tensors_of_another_layout_by_position(tmp_path: Path) -> None:
    source = timm.create_model("resnet18")
    renamed = {f"layer_{i:03d}": v.clone() for i, (k, v) in enumerate(source.state_dict().items())
               if not k.endswith("num_batches_tracked")}  # another library's names, no counters
    torch.save(renamed, tmp_path / "other.pth")
    state = import_weights(tmp_path / "other.pth", "resnet18")
    model = timm.create_model("resnet18")
    model.load_state_dict(state, strict=True)
    x = torch.randn(1, 3, 64, 64)
    assert torch.equal(model.eval()(x), source.eval()(x))
    save_file(state, tmp_path / "resnet18.safetensors")  # and it serves as weights= for a backbone
    backbone = create_backbone("resnet18", weights=tmp_path / "resnet18.safetensors", out_strides=32)
    assert torch.equal(backbone.body.conv1.weight, source.conv1.weight)


def test_import_weights_refuses_another_network(tmp_path: Path) -> None:
    torch.save(timm.create_model("resnet18").state_dict(), tmp_path / "r18.pth")
    with pytest.raises(ValueError, match="not the same network"):
        import_weights(tmp_path / "r18.pth", "resnet34")
    shuffled = timm.create_model("resnet18").state_dict()
    shuffled = dict(reversed(list(shuffled.items())))
    torch.save(shuffled, tmp_path / "reversed.pth")
    with pytest.raises(ValueError, match=r"does not fit 'resnet18'"):
        import_weights(tmp_path / "reversed.pth", "resnet18")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        import_weights(tmp_path / "nothing.pth", "resnet18")
