"""LuvizonSoftArgmax (Luvizon et al. 2017): architecture, coordinate mapping, loss, flip
test, the LightningCLI default optimiser, and overfitting a few images on the CPU."""

from __future__ import annotations

import math
import pickle
import time

import pytest
import pytorch_lightning as pl
import torch
import yaml
from pytorch_lightning.callbacks import EarlyStopping
from pytorch_lightning.cli import LightningCLI
from torch import nn

from poselit.codecs import SoftArgmaxCodec, gaussian_heatmaps, input_to_normalized, normalized_to_input
from poselit.data.datamodule import PoseDataModule
from poselit.data.sources import DatasetSpec
from poselit.geometry import flip_back_keypoints
from poselit.models.base import PoseLitModule
from poselit.models.layers import ConvNormAct
from poselit.models.luvizon import (
    LuvizonSoftArgmax,
    StageOutput,
    aggregate_context,
    elastic_net,
    heatmap_divergence,
    presence_targets,
    regress_joints,
)


pytestmark = pytest.mark.usefixtures("one_thread")  # small tensors (tests/conftest.py)


@pytest.fixture(scope="module")
def paper_model() -> LuvizonSoftArgmax:
    """The paper's configuration (K = 8 blocks, kernel 5, Nc = 2, 256x256) on LSP's 14 joints."""
    torch.manual_seed(0)
    return LuvizonSoftArgmax(skeleton="lsp").eval()


def num_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def uint8_images(batch: int, size: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (batch, 3, size, size), dtype=torch.uint8, generator=generator)


# --------------------------------------------------------------------------- architecture


def test_output_contract_at_paper_size(paper_model):
    with torch.no_grad():
        outputs = paper_model(paper_model.normalize(uint8_images(1, 256)))
    assert "heatmaps" not in outputs
    assert outputs["map_size"] == (32, 32)
    assert len(outputs["stages"]) == 8
    for stage in outputs["stages"]:
        assert isinstance(stage, StageOutput)
        assert stage.coords.shape == (1, 14, 2) and stage.presence.shape == (1, 14)
    assert outputs["keypoints"].shape == (1, 14, 2) and outputs["scores"].shape == (1, 14)
    # Soft-argmax positions are convex combinations of map-pixel centres: 3.5 .. 251.5 px.
    assert outputs["keypoints"].min() >= 3.5 - 1e-4 and outputs["keypoints"].max() <= 251.5 + 1e-4
    assert ((outputs["scores"] > 0) & (outputs["scores"] < 1)).all()
    torch.testing.assert_close(outputs["scores"], torch.sigmoid(outputs["stages"][-1].presence))
    torch.testing.assert_close(outputs["keypoints"], outputs["stages"][-1].coords * 31 * 8 + 3.5)


def test_output_contract_at_tiny_size():
    model = LuvizonSoftArgmax(skeleton="mpii", num_blocks=3, input_size=(64, 64)).eval()
    with torch.no_grad():
        outputs = model.predict_poses(uint8_images(2, 64))  # with the flip test
    assert outputs["map_size"] == (8, 8) and len(outputs["stages"]) == 3
    assert [tuple(s.coords.shape) for s in outputs["stages"]] == [(2, 16, 2)] * 3
    assert [tuple(s.presence.shape) for s in outputs["stages"]] == [(2, 16)] * 3
    assert outputs["keypoints"].shape == (2, 16, 2) and outputs["scores"].shape == (2, 16)
    assert model.blocks[-1].remap is None and all(b.remap is not None for b in model.blocks[:-1])
    assert model.blocks[0].regmap.conv.out_channels == 48  # (1 + Nc) * Nj


def stem_params() -> int:
    """The stem's parameters from its layer table (convs without bias, BN shift only)."""
    def conv_bn(cin, cout, kh, kw=None):
        return cin * cout * kh * (kw or kh) + cout

    return (
        conv_bn(3, 32, 3) + conv_bn(32, 32, 3) + conv_bn(32, 64, 3)  # conv1..3
        + conv_bn(64, 96, 3)  # mixed1 (the max-pool has no parameters)
        + conv_bn(160, 64, 1) + conv_bn(64, 96, 3)  # mixed2, branch a
        + conv_bn(160, 64, 1) + conv_bn(64, 64, 5, 1) + conv_bn(64, 64, 1, 5) + conv_bn(64, 96, 3)
        + conv_bn(192, 192, 3)  # mixed3
        + conv_bn(384, 576, 1) + 384 * 9 + conv_bn(384, 576, 1)  # Res-SepConv 384 -> 576, 3x3
    )


def block_params(joints: int, context: int, kernel: int, width: int, last: bool) -> int:
    """One prediction block, from the layer description (Sec. 3.1 and the authors' code)."""
    half, k2, maps = width // 2, kernel * kernel, (1 + context) * joints

    def sep_res(cin, cout):  # [1x1 projection + BN] + depthwise k x k + pointwise + BN
        projection = cin * cout + cout if cin != cout else 0
        return projection + cin * k2 + cin * cout + cout

    block_a = (
        sep_res(width, width)  # full-width branch
        + width * half + half  # ReLU-1x1-BN reduce after the first max-pool
        + 2 * sep_res(half, half)  # level 2
        + 3 * sep_res(half, half)  # level 3
        + sep_res(half, width)  # back to full width
    )
    block_b = width * k2 + width * width + width  # separable k x k + BN
    block_b += width * maps  # 1x1 to the maps (no BN, no bias)
    if not last:
        block_b += maps * width + width  # 1x1 back to the stream + BN
    return block_a + block_b


def expected_params(joints: int, blocks: int = 8, context: int = 2, kernel: int = 5, width: int = 576) -> int:
    return stem_params() + sum(
        block_params(joints, context, kernel, width, last=i == blocks - 1) for i in range(blocks)
    )


def test_parameter_count_matches_the_layer_description(paper_model):
    assert stem_params() == num_params(paper_model.backbone) == 1_035_456
    assert expected_params(14) == num_params(paper_model) == 14_618_112
    mpii = LuvizonSoftArgmax(skeleton="mpii")
    assert expected_params(16) == num_params(mpii) == 14_669_952
    small = LuvizonSoftArgmax(skeleton="lsp", num_blocks=2, kernel_size=3, num_context=0, input_size=(64, 64))
    assert num_params(small) == expected_params(14, blocks=2, context=0, kernel=3)


def synthetic_batch(batch: int, size: int, joints: int, seed: int = 0) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    keypoints = torch.rand(batch, joints, 2, generator=generator) * (size - 1)
    visibility = torch.full((batch, joints), 2, dtype=torch.int64)
    visibility[:, 0] = 1  # occluded
    visibility[:, 1] = 0  # not annotated
    keypoints[:, 2, 0] = size + 10  # annotated outside the crop: presence target 0
    return {"image": uint8_images(batch, size, seed), "keypoints": keypoints, "visibility": visibility}


def test_gradients_reach_every_parameter():
    torch.manual_seed(0)
    model = LuvizonSoftArgmax(skeleton="lsp", input_size=(64, 64)).train()  # all 8 blocks
    batch = synthetic_batch(2, 64, 14)
    losses = model.loss(model(model.normalize(batch["image"])), batch)
    losses["loss"].backward()
    missing = [name for name, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing, f"no gradient reaches {missing}"
    assert losses["coords"] > 0 and losses["presence"] > 0


def test_timm_backbone_gets_an_adapter_to_the_block_width():
    model = LuvizonSoftArgmax(skeleton="lsp", backbone="resnet18", width=64, num_blocks=2, input_size=(64, 64))
    assert isinstance(model.adapter, ConvNormAct) and model.adapter.conv.in_channels == 128  # resnet18, stride 8
    assert model.adapter.conv.out_channels == 64
    with torch.no_grad():
        outputs = model.eval()(model.normalize(uint8_images(1, 64)))
    assert outputs["map_size"] == (8, 8) and outputs["keypoints"].shape == (1, 14, 2)
    assert isinstance(LuvizonSoftArgmax(num_blocks=1).adapter, nn.Identity)  # the paper's stem: 576 ch


def test_a_model_cut_after_k_blocks_predicts_what_its_kth_block_did(tmp_path):
    """``num_blocks=k`` + the weights of a deeper model: its pose is the deeper model's
    k-th block's (every block is supervised, so that is a pose already)."""
    options = dict(skeleton="lsp", backbone="resnet18", width=32, input_size=(64, 64))
    torch.manual_seed(0)
    deep = LuvizonSoftArgmax(num_blocks=3, **options).eval()
    torch.save(deep.state_dict(), tmp_path / "deep.pt")
    cut = LuvizonSoftArgmax(num_blocks=2, **options).eval()
    report = cut.load_compatible_weights(tmp_path / "deep.pt")
    assert not report["missing"] and not report["reshaped"]
    images = cut.normalize(uint8_images(2, 64))
    with torch.no_grad():
        second = deep(images)["stages"][1]
        outputs = cut(images)
    assert torch.allclose(outputs["stages"][-1].coords, second.coords)
    assert torch.allclose(outputs["scores"], torch.sigmoid(second.presence))
    assert len(outputs["stages"]) == 2 and cut.blocks[-1].remap is None  # the last block projects nothing back


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(num_blocks=0), "num_blocks"),
        (dict(kernel_size=4), "kernel_size"),
        (dict(num_context=-1), "num_context"),
        (dict(alpha=1.5), "alpha"),
        (dict(width=575), "width"),
        (dict(input_size=(250, 256)), "multiples of stride 8"),
        (dict(input_size=(8, 8)), "at least 16"),
        (dict(heatmap_regularization=-1.0), "heatmap_regularization must be >= 0"),
        (dict(regularization_sigma=0.0), "regularization_sigma > 0"),
    ],
)
def test_bad_arguments_are_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        LuvizonSoftArgmax(**kwargs)


# --------------------------------------------------------------------------- regression stage


def peaked_maps(batch: int, channels: int, size: int, peaks: dict[int, tuple[float, float, float]]) -> torch.Tensor:
    """Maps with a background of ``value - 60`` and ``value`` at each given ``(x, y)`` cell."""
    maps = torch.zeros(batch, channels, size, size)
    for channel, (x, y, value) in peaks.items():
        maps[:, channel] = value - 60.0
        maps[:, channel, int(y), int(x)] = value
    return maps


def test_peaked_map_decodes_to_the_expected_input_pixel():
    # 64x64 input, stride 8: map pixel (5, 2) covers input columns 40..47 and rows 16..23.
    maps = peaked_maps(1, 1, 8, {0: (5, 2, 30.0)})
    coords, presence = regress_joints(maps, num_joints=1, alpha=0.8)
    torch.testing.assert_close(coords, torch.tensor([[[5 / 7, 2 / 7]]]))
    torch.testing.assert_close(presence, torch.tensor([[30.0]]))
    keypoints = normalized_to_input(coords, (8, 8), stride=8)
    assert (keypoints - torch.tensor([[[43.5, 19.5]]])).abs().max() < 0.05
    # Two equal neighbouring peaks: half-way between the block centres.
    maps[0, 0, 2, 6] = 30.0
    keypoints = normalized_to_input(regress_joints(maps, 1, 0.8)[0], (8, 8), stride=8)
    assert (keypoints - torch.tensor([[[47.5, 19.5]]])).abs().max() < 0.05
    # The first and last map pixels are the centres of the first and last 8x8 input blocks.
    corners = normalized_to_input(torch.tensor([[0.0, 0.0], [1.0, 1.0]]), (32, 32), stride=8)
    torch.testing.assert_close(corners, torch.tensor([[3.5, 3.5], [251.5, 251.5]]))


def test_normalised_coordinates_round_trip_and_mirror():
    points = torch.tensor([[0.0, 0.0], [63.0, 31.0], [17.25, 40.5], [-3.0, 70.0]])
    normalised = input_to_normalized(points, (4, 8), stride=8)  # 32x64 input: maps 4 rows x 8 columns
    torch.testing.assert_close(normalized_to_input(normalised, (4, 8), stride=8), points)
    # u -> 1 - u is the mirror x -> (W - 1) - x of the base's flip test.
    mirrored = normalised.clone()
    mirrored[:, 0] = 1 - normalised[:, 0]
    torch.testing.assert_close(normalized_to_input(mirrored, (4, 8), stride=8)[:, 0], 63.0 - points[:, 0])
    with pytest.raises(ValueError, match="at least 2x2"):
        normalized_to_input(normalised, (1, 8), stride=8)


def test_the_codec_holds_the_coordinate_frame_and_the_regulariser_maps():
    """Stride and regulariser std are the codec's, said once: the forward pass decodes with
    it, the loss encodes with it; the coordinate mapping's old import path still works, with
    a deprecation warning, for one release."""
    model = LuvizonSoftArgmax(skeleton="lsp", num_blocks=1, width=32, input_size=(64, 64),
                              heatmap_regularization=0.5, regularization_sigma=1.5)
    assert model.codec == SoftArgmaxCodec(stride=8, heatmap_std=1.5)
    assert not {"stride", "regularization_sigma"} & set(vars(model))
    with torch.no_grad():
        out = model(model.normalize(uint8_images(1, 64)))
    assert out["map_size"] == (8, 8)
    torch.testing.assert_close(out["keypoints"], model.codec.decode(out["stages"][-1].coords, (8, 8)))
    present = torch.tensor([[True] * 13 + [False]])
    maps = model.codec.encode_heatmaps(torch.full((1, 14, 2), 30.0), present, (8, 8))
    torch.testing.assert_close(maps.sum(dim=(-2, -1)), present.float())
    from poselit.models import luvizon

    with pytest.warns(DeprecationWarning, match="moved to poselit.codecs.normalized_to_input"):
        assert luvizon.normalized_to_input is normalized_to_input


def test_context_aggregation_formula():
    part = torch.tensor([[[0.2, 0.4]]])
    context = torch.tensor([[[[0.6, 0.0], [1.0, 1.0]]]])  # (B, K, Nc, 2)
    logits = torch.tensor([[[2.0, -1.0]]])
    p1, p2 = 1 / (1 + math.exp(-2.0)), 1 / (1 + math.exp(1.0))
    expected = [
        0.8 * a + 0.2 * (p1 * c1 + p2 * c2) / (p1 + p2) for a, c1, c2 in zip((0.2, 0.4), (0.6, 0.0), (1.0, 1.0))
    ]
    torch.testing.assert_close(aggregate_context(part, context, logits, alpha=0.8), torch.tensor([[expected]]))
    # Underflowing probabilities still give finite, equal weights.
    tiny = aggregate_context(part, context, torch.full((1, 1, 2), -200.0), alpha=0.8)
    torch.testing.assert_close(tiny, 0.8 * part + 0.2 * context.mean(dim=-2))


def test_regression_uses_the_authors_channel_order():
    # 2 joints, 2 context maps each: [part0, part1, ctx(0,0), ctx(0,1), ctx(1,0), ctx(1,1)].
    maps = peaked_maps(1, 6, 8, {
        0: (0, 0, 5.0), 1: (7, 7, -3.0), 2: (7, 0, 2.0), 3: (0, 7, -1.0), 4: (7, 7, 0.0), 5: (0, 0, 0.0),
    })
    coords, presence = regress_joints(maps, num_joints=2, alpha=0.8)
    torch.testing.assert_close(presence, torch.tensor([[5.0, -3.0]]))
    expected0 = aggregate_context(
        torch.tensor([[[0.0, 0.0]]]), torch.tensor([[[[1.0, 0.0], [0.0, 1.0]]]]), torch.tensor([[[2.0, -1.0]]]), 0.8
    )
    torch.testing.assert_close(coords[:, :1], expected0, atol=1e-5, rtol=0)
    torch.testing.assert_close(coords[0, 1], torch.tensor([0.9, 0.9]), atol=1e-5, rtol=0)  # 0.8 + 0.2 * 0.5
    no_context = regress_joints(maps[:, :2], num_joints=2, alpha=0.8)[0]
    torch.testing.assert_close(no_context, torch.tensor([[[0.0, 0.0], [1.0, 1.0]]]), atol=1e-5, rtol=0)


def test_mirrored_maps_give_the_mirrored_pose(paper_model):
    """The map -> input mapping agrees with the base's flip convention, aggregation included."""
    flip = paper_model.flip_index
    maps = torch.randn(2, 3 * 14, 8, 8, generator=torch.Generator().manual_seed(1)) * 3
    part, context = maps[:, :14], maps[:, 14:].reshape(2, 14, 2, 8, 8)
    mirrored = torch.cat([part.flip(-1)[:, flip], context.flip(-1)[:, flip].reshape(2, 28, 8, 8)], dim=1)
    keypoints = normalized_to_input(regress_joints(maps, 14, 0.8)[0], (8, 8), 8)
    mirrored_keypoints = normalized_to_input(regress_joints(mirrored, 14, 0.8)[0], (8, 8), 8)
    torch.testing.assert_close(flip_back_keypoints(mirrored_keypoints, flip, 64), keypoints, atol=1e-4, rtol=0)


# --------------------------------------------------------------------------- loss


def test_presence_rule_annotated_and_inside_the_crop():
    keypoints = torch.tensor([[[10.0, 10.0], [10.0, 10.0], [10.0, 10.0], [-0.6, 10.0], [63.4, 63.4], [10.0, 64.0]]])
    visibility = torch.tensor([[2, 1, 0, 2, 2, 1]])
    present = presence_targets(keypoints, visibility, (64, 64))
    assert present.tolist() == [[True, True, False, False, True, False]]


def test_loss_equals_the_formula_on_a_tiny_example():
    model = LuvizonSoftArgmax(skeleton="lsp", num_blocks=1, input_size=(64, 64), presence_weight=0.5)
    # Joint 0 visible, 1 occluded (both count), 2 not annotated (NaN: ignored), 3 annotated
    # outside the crop (presence target 0, no coordinate loss); the rest not annotated.
    keypoints = torch.zeros(1, 14, 2)
    keypoints[0, :4] = torch.tensor([[3.5, 59.5], [31.5, 11.5], [float("nan"), float("nan")], [80.0, 30.0]])
    visibility = torch.zeros(1, 14, dtype=torch.int64)
    visibility[0, :4] = torch.tensor([2, 1, 0, 2])
    batch = {"image": uint8_images(1, 64), "keypoints": keypoints, "visibility": visibility}
    stages = []
    for shift in (0.1, -0.05):
        coords = torch.full((1, 14, 2), 0.5)
        coords[0, :4] += shift
        presence = torch.linspace(-2, 2, 14)[None]
        stages.append(StageOutput(coords.requires_grad_(), presence.requires_grad_()))
    losses = model.loss({"stages": stages, "map_size": (8, 8)}, batch)
    losses["loss"].backward()
    for stage in stages:  # NaN coordinates of the unannotated joint stay out of the gradients
        assert torch.isfinite(stage.coords.grad).all() and torch.isfinite(stage.presence.grad).all()
        assert (stage.coords.grad[0, 2:] == 0).all()
        assert (stage.presence.grad[0, [2, *range(4, 14)]] == 0).all()

    # Targets on the normalised grid: (x - 3.5) / 8 / 7.
    targets = {0: (0.0, 56 / 56), 1: (28 / 56, 8 / 56)}
    coords_loss = presence_loss = 0.0
    for stage in stages:
        errors = [(stage.coords[0, j, 0] - tx, stage.coords[0, j, 1] - ty) for j, (tx, ty) in targets.items()]
        coords_loss += sum(abs(dx) + abs(dy) + dx**2 + dy**2 for dx, dy in errors) / 2
        bce = 0.0
        for j, target in ((0, 1.0), (1, 1.0), (3, 0.0)):
            p = torch.sigmoid(stage.presence[0, j])
            bce += -(target * torch.log(p) + (1 - target) * torch.log(1 - p))
        presence_loss += bce / 3
    torch.testing.assert_close(losses["coords"], torch.as_tensor(coords_loss).float())
    torch.testing.assert_close(losses["presence"], torch.as_tensor(presence_loss).float())
    torch.testing.assert_close(losses["loss"], losses["coords"] + 0.5 * losses["presence"])


def test_elastic_net_without_valid_joints_is_zero():
    loss = elastic_net(torch.rand(2, 3, 2), torch.full((2, 3, 2), float("nan")), torch.zeros(2, 3, dtype=torch.bool))
    assert loss == 0



def normalised_gaussians(centres: torch.Tensor, size: int, sigma: float) -> torch.Tensor:
    """``(B, K, size, size)`` Gaussians at ``(B, K, 2)`` map pixels, each summing to 1."""
    maps = gaussian_heatmaps(centres, torch.ones(centres.shape[:2], dtype=torch.long), (size, size), sigma)
    return maps / maps.sum(dim=(-2, -1), keepdim=True)


def test_heatmap_divergence_is_jensen_shannon_and_ignores_invalid_joints():
    target = normalised_gaussians(torch.tensor([[[3.0, 4.0], [6.0, 1.0]]]), 8, sigma=1.0)
    valid = torch.tensor([[True, True]])
    # The softmax of log(target) is the target: no divergence (up to the tiny floor).
    assert heatmap_divergence(target.log(), target, valid) < 1e-6
    # Disjoint distributions: log 2, the largest Jensen-Shannon divergence, whatever the
    # logits' scale; a flat map lies in between.
    far = normalised_gaussians(torch.tensor([[[0.0, 0.0], [7.0, 7.0]]]), 8, sigma=0.2)
    far_target = normalised_gaussians(torch.tensor([[[7.0, 7.0], [0.0, 0.0]]]), 8, sigma=0.2)
    assert heatmap_divergence(200 * far, far_target, valid) == pytest.approx(math.log(2), abs=1e-4)
    flat = heatmap_divergence(torch.zeros(1, 2, 8, 8), target, valid)
    assert 0.1 < flat < math.log(2)
    # An invalid joint adds nothing, even with non-finite logits; the mean runs over valid joints.
    logits = torch.zeros(1, 2, 8, 8)
    logits[0, 1] = float("nan")
    half = heatmap_divergence(logits, target, torch.tensor([[True, False]]))
    assert half == pytest.approx(heatmap_divergence(torch.zeros(1, 1, 8, 8), target[:, :1], valid[:, :1]).item())
    assert heatmap_divergence(logits, target, torch.zeros(1, 2, dtype=torch.bool)) == 0


def test_heatmap_divergence_gradient_pulls_the_soft_argmax_to_the_joint():
    target = normalised_gaussians(torch.tensor([[[5.0, 2.0]]]), 8, sigma=1.0)
    logits = torch.zeros(1, 1, 8, 8, requires_grad=True)
    optimizer = torch.optim.SGD([logits], lr=50.0)
    for _ in range(50):
        optimizer.zero_grad()
        heatmap_divergence(logits, target, torch.tensor([[True]])).backward()
        optimizer.step()
    coords = regress_joints(logits.detach(), num_joints=1, alpha=0.8)[0] * 7  # normalised -> map pixels
    torch.testing.assert_close(coords, torch.tensor([[[5.0, 2.0]]]), atol=0.1, rtol=0)


def test_heatmap_regularization_adds_the_part_maps_divergence_to_the_loss():
    """Off by default (the paper); with a weight, the loss gains that weight x the divergence
    of every block's part maps (not the context maps) from Gaussians at the valid joints."""
    torch.manual_seed(0)
    batch = synthetic_batch(2, 64, 14)
    paper = LuvizonSoftArgmax(num_blocks=2, width=32, input_size=(64, 64))
    assert "divergence" not in paper.loss(paper(paper.normalize(batch["image"])), batch)
    model = LuvizonSoftArgmax(num_blocks=2, width=32, input_size=(64, 64), heatmap_regularization=0.5,
                              regularization_sigma=1.5)
    outputs = model(model.normalize(batch["image"]))
    losses = model.loss(outputs, batch)
    present = presence_targets(batch["keypoints"], batch["visibility"], (64, 64))
    centres = (batch["keypoints"] - 3.5) / 8  # input pixels -> map pixels at stride 8
    target = gaussian_heatmaps(centres, present.long(), (8, 8), 1.5)
    target = target / target.sum(dim=(-2, -1), keepdim=True).clamp_min(1e-12)
    expected = sum(heatmap_divergence(s.part_maps, target, present) for s in outputs["stages"])
    assert all(s.part_maps.shape == (2, 14, 8, 8) for s in outputs["stages"])
    torch.testing.assert_close(losses["divergence"], expected)
    torch.testing.assert_close(losses["loss"], losses["coords"] + losses["presence"] + 0.5 * expected)
    losses["loss"].backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)

# --------------------------------------------------------------------------- flip test


def test_flip_test_on_a_symmetric_input_is_mirror_consistent():
    torch.manual_seed(0)
    model = LuvizonSoftArgmax(skeleton="lsp", num_blocks=2, input_size=(64, 64)).eval()
    half = uint8_images(2, 64)[..., :32]
    images = torch.cat([half, half.flip(-1)], dim=-1)  # left-right symmetric
    assert torch.equal(images, images.flip(-1))
    flip = model.flip_index
    with torch.no_grad():
        plain = model.predict_poses(images, flip_test=False)
        tested = model.predict_poses(images, flip_test=True)
    mirror = flip_back_keypoints(plain["keypoints"], flip, 64)
    torch.testing.assert_close(tested["keypoints"], (plain["keypoints"] + mirror) / 2)
    torch.testing.assert_close(tested["scores"], (plain["scores"] + plain["scores"][:, flip]) / 2)
    # The flip-tested pose is its own mirror: left/right joints mirror each other exactly.
    torch.testing.assert_close(flip_back_keypoints(tested["keypoints"], flip, 64), tested["keypoints"])
    torch.testing.assert_close(tested["scores"][:, flip], tested["scores"])
    # And on any input, the flip-tested poses of an image and of its mirror are mirrors.
    with torch.no_grad():
        direct = model.predict_poses(uint8_images(1, 64, seed=5))["keypoints"]
        of_mirror = model.predict_poses(uint8_images(1, 64, seed=5).flip(-1))["keypoints"]
    torch.testing.assert_close(flip_back_keypoints(of_mirror, flip, 64), direct, atol=1e-4, rtol=0)


# --------------------------------------------------------------------------- LightningCLI


def test_lightning_cli_default_optimizer_is_the_papers_rmsprop(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    base_args = ["--model.num_blocks=1", "--trainer.logger=false", "--trainer.enable_checkpointing=false"]
    with pytest.raises(SystemExit):
        LightningCLI(LuvizonSoftArgmax, PoseDataModule, run=False, args=base_args + ["--print_config"])
    config = yaml.safe_load(capsys.readouterr().out)
    assert config["model"]["optimizer"]["class_path"] == "torch.optim.RMSprop"
    assert config["model"]["optimizer"]["init_args"]["lr"] == 0.001
    assert config["model"]["optimizer"]["init_args"]["alpha"] == 0.9  # Keras' rho
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))

    for args in (base_args, ["--config", "config.yaml"]):
        cli = LightningCLI(LuvizonSoftArgmax, PoseDataModule, run=False, args=args)
        optimizer = cli.model.configure_optimizers()
        assert type(optimizer) is torch.optim.RMSprop
        assert optimizer.defaults["lr"] == 1e-3 and optimizer.defaults["alpha"] == 0.9

    # Subclass mode, as `poselit fit` builds it; the learning rate can be overridden.
    cli = LightningCLI(
        PoseLitModule, PoseDataModule, subclass_mode_model=True, run=False, auto_configure_optimizers=False,
        args=["--model=poselit.models.luvizon.LuvizonSoftArgmax", "--model.init_args.num_blocks=1",
              "--model.init_args.optimizer.lr=2e-5", "--trainer.logger=false"],
    )
    optimizer = cli.model.configure_optimizers()
    assert type(optimizer) is torch.optim.RMSprop and optimizer.defaults["lr"] == 2e-5


def test_default_optimizer_of_a_python_built_model_pickles():
    """ddp_spawn pickles the model: the default factory must survive it."""
    model = pickle.loads(pickle.dumps(LuvizonSoftArgmax(num_blocks=1, input_size=(64, 64))))
    optimizer = model.configure_optimizers()
    assert type(optimizer) is torch.optim.RMSprop
    assert optimizer.defaults["lr"] == 1e-3 and optimizer.defaults["alpha"] == 0.9


# --------------------------------------------------------------------------- overfitting


def overfit(dm: PoseDataModule, size: int, max_epochs: int = 60) -> tuple[float, int, float]:
    """Train the paper's architecture with 2 blocks on a few samples until PCK@0.2 >= 95 %.

    Default optimiser (RMSprop, lr 1e-3). Two deliberate test settings: no flip test (the
    training crops are never mirrored, so the mirrored prediction would be unseen data), and
    batch-norm running averages with momentum 0.5 instead of Keras' 0.01, whose running
    statistics need hundreds of steps to catch up with the batches (evaluation uses them).
    """
    pl.seed_everything(0)
    model = LuvizonSoftArgmax(skeleton="lsp", num_blocks=2, input_size=(size, size), flip_test=False)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.momentum = 0.5
    stop = EarlyStopping(
        "val/pck", mode="max", stopping_threshold=95.0, patience=max_epochs, check_on_train_epoch_end=False
    )
    trainer = pl.Trainer(
        max_epochs=max_epochs, accelerator="cpu", logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0, callbacks=[stop],
    )
    start = time.perf_counter()
    trainer.fit(model, dm)
    assert model.results["val/pck"].columns["Total"] == pytest.approx(float(trainer.callback_metrics["val/pck"]))
    return float(trainer.callback_metrics["val/pck"]), trainer.current_epoch, time.perf_counter() - start


def overfit_datamodule(train: list[str], size: int, **kwargs) -> PoseDataModule:
    return PoseDataModule(
        train=train, val=train[:1], input_size=(size, size), scale=(1.0, 1.0), rotation=0.0, flip_prob=0.0,
        batch_size=4, num_workers=0, **kwargs,
    )


def test_overfits_four_synthetic_images(synthetic_lsp):
    spec = f"lsp:train@{synthetic_lsp}"  # 4 images; listed twice: 2 steps per epoch
    pck, epochs, seconds = overfit(overfit_datamodule([spec, spec], 64), 64)
    assert pck >= 95.0, f"PCK@0.2 {pck:.1f}% after {epochs} epochs ({seconds:.0f} s)"


def test_overfits_four_real_lsp_images(data_root):
    dm = overfit_datamodule(["lsp:train"], 64, data_root=str(data_root))
    records = list(dm.read(DatasetSpec.parse("lsp:train")))[:4]
    dm.datasets = {
        "train": [dm.make_dataset(records * 2, train=True)],  # listed twice: 2 steps per epoch
        "val": [dm.make_dataset(records, train=False)],
    }
    pck, epochs, seconds = overfit(dm, 64)
    assert pck >= 95.0, f"PCK@0.2 {pck:.1f}% after {epochs} epochs ({seconds:.0f} s)"


def test_a_pretrained_style_trunk_with_a_neck_feeds_the_blocks():
    model = LuvizonSoftArgmax(backbone="resnet18", neck_channels=32, width=32, num_blocks=1, input_size=(64, 64))
    assert model.feature_extractor().channels == (32,) and isinstance(model.adapter, torch.nn.Identity)
    outputs = model(torch.randn(2, 3, 64, 64))
    assert outputs["map_size"] == (8, 8) and outputs["keypoints"].shape == (2, 14, 2)
