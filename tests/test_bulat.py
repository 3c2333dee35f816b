"""BulatCascade (Bulat & Tzimiropoulos 2016): output contract at the paper's and a tiny input
size, parameter counts of the paper configurations, the staged schedule (freezing, batch-norm
statistics, state-dict round trip), the losses against direct computations, and overfitting
a few images (slow)."""

from __future__ import annotations

import logging
import math
import warnings
from functools import partial

import numpy as np
import pytest
import pytorch_lightning as pl
import timm
import torch
import torch.nn.functional as F
from torch import nn

from poselit.codecs import DetectionRegressionCodec
from poselit.data.datamodule import PoseDataModule
from poselit.models.bulat import (
    BulatCascade,
    Hourglass,
    ResidualDetector,
    _undilate_,
    default_detection_radius,
    init_upsampling_,
)

TINY = (64, 64)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def tiny_model(variant: str = "residual", **kwargs) -> BulatCascade:
    backbone = "resnet18" if variant == "residual" else None
    return BulatCascade(variant=variant, backbone=backbone, input_size=TINY, **kwargs)


@pytest.fixture
def tiny(_tiny_model) -> BulatCascade:
    """A shared tiny residual model (ResNet-18, 64x64), reset to stage "joint" and eval mode."""
    _tiny_model.stage = "joint"
    return _tiny_model.eval()


@pytest.fixture(scope="module")
def _tiny_model() -> BulatCascade:
    torch.manual_seed(0)
    return tiny_model()


def random_batch(num_joints: int = 14, batch: int = 2, size: tuple[int, int] = TINY) -> dict:
    generator = torch.Generator().manual_seed(1)
    height, width = size
    keypoints = torch.rand(batch, num_joints, 2, generator=generator) * torch.tensor([width - 1, height - 1])
    visibility = torch.randint(0, 3, (batch, num_joints), generator=generator)
    visibility[:, :4] = 2
    return {
        "image": torch.randint(0, 256, (batch, 3, height, width), dtype=torch.uint8, generator=generator),
        "keypoints": keypoints,
        "visibility": visibility,
    }


# --------------------------------------------------------------------------- output contract


@pytest.mark.parametrize("variant", ["residual", "vgg"])
def test_output_contract_at_a_tiny_size(variant):
    model = tiny_model(variant).eval()
    images = torch.randn(2, 3, *TINY)
    with torch.no_grad():
        out = model(images)
    logits, maps = out["stages"]
    assert logits.shape == maps.shape == out["heatmaps"].shape == (2, 14, *TINY)
    assert out["heatmaps"] is maps
    assert out["keypoints"].shape == (2, 14, 2) and out["scores"].shape == (2, 14)
    assert ((out["keypoints"] >= 0) & (out["keypoints"] <= TINY[0] - 1)).all()
    # Stage "detector": the regressor is not run, heatmaps are the detection sigmoid.
    model.stage = "detector"
    with torch.no_grad():
        out = model(images)
    assert out["stages"][1] is None
    torch.testing.assert_close(out["heatmaps"], torch.sigmoid(out["stages"][0]))
    assert out["keypoints"].shape == (2, 14, 2)


@pytest.mark.parametrize("variant", ["residual", "vgg"])
@pytest.mark.parametrize("skeleton, joints", [("mpii", 16), ("lsp", 14)])
def test_output_contract_at_the_paper_size(variant, skeleton, joints):
    # ResNet-152 / VGG-16 at 256x256: shape inference on the meta device (no memory, no time).
    with torch.device("meta"):
        model = BulatCascade(skeleton=skeleton, variant=variant)
        out = model(torch.empty(2, 3, 256, 256))
    assert [tuple(t.shape) for t in out["stages"]] == [(2, joints, 256, 256)] * 2  # full resolution
    assert out["heatmaps"].shape == (2, joints, 256, 256)
    assert out["keypoints"].shape == (2, joints, 2) and out["scores"].shape == (2, joints)
    assert model.codec.detection_radius == pytest.approx(10.24)


def test_predict_poses_with_the_flip_test_on_uint8_images(tiny):
    with torch.no_grad():
        out = tiny.predict_poses(random_batch()["image"], flip_test=True)
    assert out["keypoints"].shape == (2, 14, 2) and torch.isfinite(out["keypoints"]).all()
    assert (out["scores"] >= 0).all()


def test_decode_clamps_negative_maps_to_zero(tiny):
    model = tiny
    maps = -torch.ones(1, 14, 8, 8)  # e.g. after flip averaging: all negative
    maps[0, 1, 3, 5] = 2.0  # a clean peak at x=5, y=3
    keypoints, scores = model.decode_heatmaps(maps)
    assert scores[0, 0] == 0 and scores[0, 1] == 2
    assert keypoints[0, 1].tolist() == [5.0, 3.0]  # stride 1: map pixels are input pixels


# --------------------------------------------------------------------------- parameter counts


def conv(k: int, c_in: int, c_out: int, bias: bool = True) -> int:
    return k * k * c_in * c_out + (c_out if bias else 0)


def bottleneck(c_in: int, c_out: int) -> int:
    mid = c_out // 2
    bns = 2 * (c_in + mid + mid)
    skip = conv(1, c_in, c_out) if c_in != c_out else 0
    return bns + conv(1, c_in, mid) + conv(3, mid, mid) + conv(1, mid, c_out) + skip


def hourglass(depth: int) -> int:
    up = 2 * bottleneck(256, 256) + bottleneck(256, 512)
    inner = hourglass(depth - 1) if depth > 1 else bottleneck(256, 512)
    low = 3 * bottleneck(256, 256) + inner + bottleneck(512, 512) + conv(2, 512, 512)
    return up + low


def residual_counts(k: int) -> tuple[int, int, int]:
    with torch.device("meta"):
        trunk = count(timm.create_model("resnet152", num_classes=0))  # no fc, no avg-pool params
    head = conv(1, 2048, k) + conv(16, k, k)  # B6 scoring 1x1, B7 deconvolution 16x16/16
    stem = conv(7, 3 + k, 64) + 2 * 64 + bottleneck(64, 128) + 2 * bottleneck(128, 128) + bottleneck(128, 256)
    regressor_head = conv(1, 512, 512) + 2 * 512 + conv(1, 512, 256) + 2 * 256 + conv(1, 256, k) + conv(4, k, k)
    return trunk, head, stem + hourglass(4) + regressor_head


def vgg_counts(k: int) -> tuple[int, int, int]:
    widths = [64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512]
    trunk = sum(conv(3, a, b) for a, b in zip([3] + widths[:-1], widths))
    fcn = conv(1, 512, 512) + conv(1, 512, 512)  # fc6, fc7 as 1x1 convolutions
    scores = conv(1, 512, k) + conv(1, 512, k) + conv(1, 256, k)  # fc7, pool4, pool3
    upscores = 2 * conv(4, k, k, bias=False)  # two learned 2x deconvolutions (8x: fixed bilinear)
    regressor = (
        conv(7, 3 + k, 64) + conv(13, 64, 64) + conv(13, 64, 128) + conv(15, 128, 256)
        + conv(1, 256, 512) + conv(1, 512, 512) + conv(1, 512, k) + conv(4, k, k)
    )
    return trunk, fcn + scores + upscores, regressor


@pytest.mark.parametrize(
    "variant, skeleton, k, total",
    [
        ("residual", "mpii", 16, 75_612_672),
        ("residual", "lsp", 14, 75_585_464),
        ("vgg", "mpii", 16, 25_184_848),
        ("vgg", "lsp", 14, 25_172_102),
    ],
)
def test_parameter_counts_of_the_paper_configurations(variant, skeleton, k, total):
    with torch.device("meta"):
        model = BulatCascade(skeleton=skeleton, variant=variant)
    trunk, head, regressor = (residual_counts if variant == "residual" else vgg_counts)(k)
    assert count(model.detector.backbone) == trunk
    assert count(model.detector) - trunk == head
    assert count(model.regressor) == regressor
    assert count(model) == trunk + head + regressor == total  # the class docstring's table


def test_dilation_changes_no_parameter_count():
    with torch.device("meta"):
        plain = BulatCascade(backbone="resnet50")
        dilated = BulatCascade(backbone="resnet50", dilation=True)
    assert count(plain) == count(dilated)
    dilations = lambda m: {c.dilation for c in m.detector.backbone.modules() if isinstance(c, nn.Conv2d)}
    assert dilations(plain) == {(1, 1)} and (2, 2) in dilations(dilated)


def test_undilated_stride1_stage_keeps_the_feature_size():
    trunk = timm.create_model("resnet18", features_only=True, output_stride=16, out_indices=(4,))
    images = torch.randn(1, 3, 64, 64)
    before = trunk(images)[-1].shape
    assert _undilate_(trunk) == 3
    assert trunk(images)[-1].shape == before == (1, 512, 4, 4)


# --------------------------------------------------------------------------- building blocks


def test_upsampling_init_is_bilinear_or_nearest():
    x = torch.randn(1, 3, 6, 7)
    bilinear = nn.ConvTranspose2d(3, 3, 16, stride=8, padding=4, bias=False)
    init_upsampling_(bilinear)
    expected = F.interpolate(x, scale_factor=8, mode="bilinear", align_corners=False)
    with torch.no_grad():
        torch.testing.assert_close(bilinear(x)[..., 8:-8, 8:-8], expected[..., 8:-8, 8:-8])
    nearest = nn.ConvTranspose2d(3, 3, 4, stride=4)
    init_upsampling_(nearest)
    with torch.no_grad():
        torch.testing.assert_close(nearest(x), F.interpolate(x, scale_factor=4, mode="nearest"))


def test_hourglass_keeps_resolution_and_widens():
    out = Hourglass(depth=2, width=256, out_chs=512)(torch.randn(1, 256, 8, 8))
    assert out.shape == (1, 512, 8, 8)


def test_residual_detector_reaches_full_resolution_from_stride_16(tiny):
    model = tiny
    assert isinstance(model.detector, ResidualDetector) and model.detector.stride == 16
    assert model.detector.upsample.kernel_size == model.detector.upsample.stride == (16, 16)


# --------------------------------------------------------------------------- losses


def test_detection_loss_is_bce_against_disks_of_visible_joints():
    model = tiny_model(detection_radius=2.5)
    size = (9, 11)
    keypoints = torch.tensor([[[3.0, 4.0], [7.2, 1.6], [5.0, 5.0], [0.0, 0.0]]])
    visibility = torch.tensor([[2, 2, 1, 0]])  # visible, visible, occluded, not annotated
    logits = torch.randn(1, 4, *size)
    loss = model.detection_loss(logits, keypoints, visibility)

    ys, xs = np.mgrid[0 : size[0], 0 : size[1]]
    prob = torch.sigmoid(logits.double()).numpy()
    terms = []
    for j in range(3):  # joint 3 (not annotated) is left out; 2 (occluded) is all background
        x, y = keypoints[0, j].tolist()
        disk = ((xs - x) ** 2 + (ys - y) ** 2 <= 2.5**2).astype(float) * (visibility[0, j] == 2).item()
        p = prob[0, j]
        terms.append(-(disk * np.log(p) + (1 - disk) * np.log(1 - p)))
    assert terms[0].size and disk.sum() == 0  # the occluded joint has no disk
    assert float(loss) == pytest.approx(float(np.mean(terms)), rel=1e-5)


def test_regression_loss_is_l2_on_gaussians_and_masks_missing_joints():
    model = tiny_model(regression_std=1.5)
    size = (10, 12)
    keypoints = torch.tensor([[[3.0, 4.0], [8.0, 2.0], [6.0, 7.0]]])
    visibility = torch.tensor([[2, 1, 0]])  # visible, occluded (still regressed), missing
    maps = torch.rand(1, 3, *size)
    loss = model.regression_loss(maps, keypoints, visibility)
    ys, xs = np.mgrid[0 : size[0], 0 : size[1]]
    errors = []
    for j in range(2):
        x, y = keypoints[0, j].tolist()
        gauss = np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * 1.5**2))
        errors.append((maps[0, j].double().numpy() - gauss) ** 2)
    assert float(loss) == pytest.approx(float(np.mean(errors)), rel=1e-5)
    # Whatever the missing joint's map or coordinates hold, the loss and its gradient ignore it.
    maps.requires_grad_(True)
    other = maps.detach().clone()
    other[0, 2] = 1e3
    keypoints[0, 2] = float("nan")
    assert float(model.regression_loss(other, keypoints, visibility)) == pytest.approx(float(loss))
    model.regression_loss(maps, keypoints, visibility).backward()
    assert maps.grad[0, 2].abs().sum() == 0 and maps.grad[0, :2].abs().sum() > 0


@torch.no_grad()
def test_losses_per_stage(tiny):
    batch = random_batch()
    out = tiny(tiny.normalize(batch["image"]))
    joint = tiny.loss(out, batch)
    assert set(joint) == {"detection", "regression", "loss"}
    assert float(joint["loss"]) == pytest.approx(float(joint["detection"] + joint["regression"]))
    weighted = tiny_model(detection_weight=0.5, regression_weight=2.0)
    terms = weighted.loss(out, batch)
    assert float(terms["loss"]) == pytest.approx(float(0.5 * terms["detection"] + 2 * terms["regression"]))
    tiny.stage = "detector"
    assert set(tiny.loss(tiny(tiny.normalize(batch["image"])), batch)) == {"detection", "loss"}
    tiny.stage = "regressor"
    assert set(tiny.loss(out, batch)) == {"regression", "loss"}


def test_default_detection_radius_scales_with_the_crop():
    assert default_detection_radius(256) == pytest.approx(10.24)  # 204.8 px person, 10 px / 200 px
    assert default_detection_radius(256, padding=1.0) == pytest.approx(12.8)
    with torch.device("meta"):
        assert tiny_model().codec.detection_radius == pytest.approx(64 / 25)
        assert tiny_model(padding=1.0).codec.detection_radius == pytest.approx(64 / 20)  # the model's own crop


def test_the_codec_holds_every_target_and_decoding_setting():
    """Stride, disk radius, Gaussian std and decoding are the codec's, said once: the
    constructor's arguments land there, and the losses and the decoding read them there."""
    with torch.device("meta"):
        model = tiny_model(detection_radius=2.5, regression_std=1.5)
    assert model.codec == DetectionRegressionCodec(
        stride=1, std=1.5, refine="quarter_offset", clamp_negative=True, detection_radius=2.5
    )
    assert not {"detection_radius", "regression_std"} & set(vars(model))


# --------------------------------------------------------------------------- stages and gradients


def train_step(model: BulatCascade, batch: dict, lr: float = 1e-2) -> None:
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=lr)
    optimizer.zero_grad()
    model.loss(model(model.normalize(batch["image"])), batch)["loss"].backward()
    optimizer.step()


@pytest.mark.parametrize("stage", ["detector", "regressor", "joint"])
def test_gradients_reach_exactly_the_trained_parameters(stage):
    model = tiny_model(stage=stage).train()
    with torch.no_grad():  # zero-initialised layers (scoring convs, timm's last BN of each
        for param in model.parameters():  # block) would stop the gradients at the start
            param.add_(torch.randn_like(param), alpha=1e-2)
    batch = random_batch()
    model.loss(model(model.normalize(batch["image"])), batch)["loss"].backward()
    trained = {"detector": ["detector"], "regressor": ["regressor"], "joint": ["detector", "regressor"]}[stage]
    for name, param in model.named_parameters():
        if name.split(".")[0] in trained:
            assert param.requires_grad and param.grad is not None, name
            assert torch.isfinite(param.grad).all() and param.grad.abs().sum() > 0, name
        else:
            assert not param.requires_grad and param.grad is None, name


def test_regressor_stage_freezes_the_detector_and_its_batch_norm_statistics():
    model = tiny_model(stage="regressor")
    model.train()
    assert model.training and model.regressor.training and not model.detector.training
    assert all(not m.training for m in model.detector.modules())
    before = {k: v.clone() for k, v in model.detector.state_dict().items()}
    regressor_before = {k: v.clone() for k, v in model.regressor.state_dict().items()}
    train_step(model, random_batch())
    after = model.detector.state_dict()
    for key, value in before.items():  # weights and running_mean / running_var / num_batches
        assert torch.equal(value, after[key]), key
    assert any(not torch.equal(v, model.regressor.state_dict()[k]) for k, v in regressor_before.items())
    # Back to joint training: the detector trains again.
    model.stage = "joint"
    assert model.detector.training and all(p.requires_grad for p in model.detector.parameters())


def test_staged_schedule_detector_then_regressor_then_joint(synthetic_lsp, tmp_path):
    dm = PoseDataModule(
        train=[f"lsp:train@{synthetic_lsp}"], val=[f"lsp:train@{synthetic_lsp}"], input_size=TINY,
        batch_size=4, num_workers=0, scale=(1, 1), rotation=0, flip_prob=0,
    )

    def fit(model: BulatCascade) -> pl.Trainer:
        trainer = pl.Trainer(
            max_steps=1, accelerator="cpu", logger=False, enable_checkpointing=False,
            enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
        )
        trainer.fit(model, dm)  # one step (one batch per epoch), then validation
        assert math.isfinite(trainer.callback_metrics["val/pck"])
        return trainer

    def snapshot(module: nn.Module) -> dict:
        return {k: v.clone() for k, v in module.state_dict().items()}

    def changed(old: dict, module: nn.Module) -> bool:
        return any(not torch.equal(v, module.state_dict()[k]) for k, v in old.items())

    optimizer = partial(torch.optim.Adam, lr=1e-3)
    detector_stage = tiny_model(stage="detector", optimizer=optimizer)
    regressor0 = snapshot(detector_stage.regressor)
    fit(detector_stage).save_checkpoint(tmp_path / "detector.ckpt")
    assert not changed(regressor0, detector_stage.regressor)  # neither run nor trained

    # Stage 2 starts from the stage-1 checkpoint (init_from, loaded at fit start).
    regressor_stage = tiny_model(stage="regressor", optimizer=optimizer, init_from=str(tmp_path / "detector.ckpt"))
    fit(regressor_stage)
    after_stage1 = detector_stage.state_dict()
    for key, value in regressor_stage.detector.state_dict().items():  # frozen, BN statistics too
        assert torch.equal(value, after_stage1[f"detector.{key}"]), key
    assert changed(regressor0, regressor_stage.regressor)

    # Stage 3 from a state dict (every stage has the same tensors: strict loading).
    joint_stage = tiny_model(stage="joint", optimizer=optimizer)
    joint_stage.load_state_dict(regressor_stage.state_dict())
    detector2, regressor2 = snapshot(joint_stage.detector), snapshot(joint_stage.regressor)
    fit(joint_stage)
    assert changed(detector2, joint_stage.detector) and changed(regressor2, joint_stage.regressor)


# --------------------------------------------------------------------------- errors


def test_clear_errors_for_bad_arguments():
    with pytest.raises(ValueError, match="multiple of 64"):
        BulatCascade(backbone="resnet18", input_size=(96, 96))
    with pytest.raises(ValueError, match="stage must be"):
        tiny_model(stage="pretrain")
    with pytest.raises(ValueError, match="variant must be"):
        BulatCascade(variant="inception")
    with pytest.raises(ValueError, match="residual variant only"):
        BulatCascade(variant="vgg", dilation=True, input_size=TINY)
    with pytest.raises(ValueError, match=r"^neck_channels, regressor_width: settings of the residual variant only, not of 'vgg'$"):
        BulatCascade(variant="vgg", neck_channels=64, regressor_width=64, input_size=TINY)
    with pytest.raises(ValueError, match="regression_std"):
        tiny_model(regression_std=0)
    with pytest.raises(ValueError, match=r"image size \(64, 96\)"):
        tiny_model()(torch.randn(1, 3, 64, 96))


# --------------------------------------------------------------------------- overfitting (slow)


class _StopAtPCK(pl.Callback):
    """Stop as soon as validation PCK reaches ``target`` (validation every few epochs)."""

    def __init__(self, target: float) -> None:
        self.target = target
        self.epochs = 0

    def on_validation_end(self, trainer: pl.Trainer, pl_module: BulatCascade) -> None:
        # After the module's on_validation_epoch_end, which computes the metrics.
        self.epochs = trainer.current_epoch + 1
        if pl_module.results["val/pck"].columns["Total"] >= self.target:
            trainer.should_stop = True


def overfit(dm: PoseDataModule, max_epochs: int, **model_args) -> float:
    """Train stage "joint" on ``dm``'s few training samples (one batch: one step per epoch)
    with Adam (lr 1e-3); the final validation PCK@0.2 on the same samples."""
    warnings.filterwarnings("ignore", ".*does not have many workers.*")
    logging.getLogger("pytorch_lightning").setLevel(logging.WARNING)
    pl.seed_everything(0, verbose=False)
    model = BulatCascade(
        backbone="resnet18", input_size=dm.hparams.input_size, stage="joint", flip_test=False,
        optimizer=partial(torch.optim.Adam, lr=1e-3), **model_args,
    )
    trainer = pl.Trainer(
        max_epochs=max_epochs, check_val_every_n_epoch=5, accelerator="cpu", logger=False,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        num_sanity_val_steps=0, callbacks=[stop := _StopAtPCK(95.0)],
    )
    trainer.fit(model, dm)
    print(f"overfit: {stop.epochs} epochs, val PCK@0.2 {model.results['val/pck'].columns['Total']:.1f}")
    return float(model.results["val/pck"].columns["Total"])


def few_samples(train: str, size: tuple[int, int], data_root=None, limit: int | None = None) -> PoseDataModule:
    class FirstRecords(PoseDataModule):
        def read(self, spec):
            records = super().read(spec)
            return records if limit is None else list(records)[:limit]

    return FirstRecords(
        train=[train], val=[train], data_root=data_root, input_size=size, batch_size=4, num_workers=0,
        scale=(1, 1), rotation=0, flip_prob=0,
    )


@pytest.mark.slow
def test_overfits_four_synthetic_images(synthetic_lsp):
    # 35-45 steps to >= 95 % (about 20-30 s on 2 idle CPU cores, mostly warm-up).
    pck = overfit(few_samples(f"lsp:train@{synthetic_lsp}", TINY), max_epochs=100, regression_std=3.0)
    assert pck >= 95.0


@pytest.mark.slow
def test_overfits_four_real_lsp_images(data_root):
    # The first four LSP training images; about 50 steps to >= 95 %.
    dm = few_samples("lsp:train", TINY, data_root=data_root, limit=4)
    pck = overfit(dm, max_epochs=150, regression_std=3.0)
    assert pck >= 95.0


def test_cpu_sized_cascade_on_a_neck_scores_at_the_detector_stride_and_regresses_at_full_resolution():
    model = BulatCascade(backbone="resnet18", neck_channels=16, detector_stride=8, regressor_width=16,
                         regressor_depth=2, input_size=(64, 64))
    assert model.detector.stride == 8 and model.multiple == 16  # lcm(8, 4 * 2**2)
    assert model.feature_extractor().channels == (16,) and model.feature_extractor().strides == (8,)
    outputs = model(torch.randn(2, 3, 64, 64))
    logits, maps = outputs["stages"]
    assert logits.shape == maps.shape == (2, 14, 64, 64)  # detection and regression at the input resolution
    assert model.regressor.hourglass.up[0].body[2].in_channels == 16  # the hourglass at regressor_width
