"""BelagiannisRecurrent: output contract, layer-table parameter count, shared recurrent
weights, targets and occlusion modes, the foreground/background weighted loss, flip test,
other backbones, and overfitting a few images (slow)."""

from __future__ import annotations

import time
from functools import partial

import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import EarlyStopping

from poselit.codecs import LimbHeatmapCodec, gaussian_heatmaps, limb_heatmaps
from poselit.data.datamodule import PoseDataModule
from poselit.data.sources import DatasetSpec
from poselit.models.belagiannis import (
    BelagiannisRecurrent,
    balanced_weights,
    nearest_stride,
    weighted_l2,
)
from poselit.skeletons import LSP, MPII

# --------------------------------------------------------------------------- helpers


def conv(k: int, cin: int, cout: int) -> int:
    """Parameters of a k x k convolution with bias (every layer of the original has one)."""
    return k * k * cin * cout + cout


def bn(c: int) -> int:
    return 2 * c


# The layer table (shared/reference/original_implementations.md, section Belagiannis).
TRUNK = [(3, 3, 64), (3, 64, 64), (3, 64, 64), (3, 64, 128), (3, 128, 128), (3, 128, 128), (9, 128, 256), (9, 256, 512)]
RECURRENT_CONVS = [(7, 384, 64), (13, 64, 64), (13, 64, 128), (1, 128, 256)]
RECURRENT_BNS = [64, 64, 128]


def expected_parameters(num_joints: int, num_limbs: int, iterations: int, body_parts: bool = True) -> int:
    trunk = sum(conv(*layer) + bn(layer[2]) for layer in TRUNK)  # conv1..conv8, BN each
    conv9_10 = conv(1, 512, 256) + conv(1, 256, 256)  # no BN
    heads = conv(1, 256, num_joints) + (conv(1, 256, num_limbs) if body_parts else 0)
    total = trunk + conv9_10 + heads
    if iterations:  # one shared set of convolutions and heads, one BN set per iteration
        total += sum(conv(*layer) for layer in RECURRENT_CONVS) + heads
        total += iterations * sum(bn(c) for c in RECURRENT_BNS)
    return total


def num_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def lsp_pose(scale: float = 1.0) -> torch.Tensor:
    """A standing LSP pose (1, 14, 2) in a 248 x 248 input, scaled about the centre."""
    pose = torch.tensor(
        [
            [100, 220], [102, 175], [105, 135], [143, 135], [146, 175], [148, 220],
            [70, 130], [78, 100], [95, 70], [153, 70], [170, 100], [178, 130],
            [124, 60], [124, 25],
        ],
        dtype=torch.float32,
    )
    return ((pose - 124) * scale + 124)[None]


def fake_batch(keypoints: torch.Tensor, visibility: torch.Tensor) -> dict[str, torch.Tensor]:
    return {"keypoints": keypoints, "visibility": visibility}


# --------------------------------------------------------------------------- architecture


def test_output_contract_at_the_paper_input_size():
    model = BelagiannisRecurrent(skeleton="mpii").eval()  # defaults: 2 iterations + body parts, 248 input
    assert model.input_size == (248, 248) and model.codec.stride == 4
    with torch.no_grad():
        out = model.predict_poses(torch.randint(0, 256, (1, 3, 248, 248), dtype=torch.uint8), flip_test=False)
    assert out["heatmaps"].shape == (1, 16, 62, 62)
    assert len(out["stages"]) == 3
    for keypoint_maps, limb_maps in out["stages"]:
        assert keypoint_maps.shape == (1, 16, 62, 62) and limb_maps.shape == (1, 15, 62, 62)
        assert (keypoint_maps >= 0).all() and (limb_maps >= 0).all()  # ReLU outputs
    assert out["heatmaps"] is out["stages"][-1][0]
    assert out["keypoints"].shape == (1, 16, 2) and out["scores"].shape == (1, 16)
    assert ((out["keypoints"] >= -0.5) & (out["keypoints"] <= 247.5)).all()


@pytest.mark.parametrize("iterations", [0, 1, 3])
def test_tiny_input_stage_count_and_body_parts_switch(iterations):
    images = torch.randn(2, 3, 64, 64)
    model = BelagiannisRecurrent(skeleton="lsp", num_iterations=iterations, input_size=(64, 64))
    out = model(images)
    assert len(out["stages"]) == 1 + iterations
    assert all(k.shape == (2, 14, 16, 16) and p.shape == (2, 14, 16, 16) for k, p in out["stages"])
    assert out["heatmaps"].shape == (2, 14, 16, 16) and out["keypoints"].shape == (2, 14, 2)

    plain = BelagiannisRecurrent(skeleton="lsp", num_iterations=iterations, body_parts=False)
    out = plain(images)
    assert len(out["stages"]) == 1 + iterations and all(p is None for _, p in out["stages"])
    batch = fake_batch((lsp_pose() * 64 / 248).expand(2, -1, -1), torch.full((2, 14), 2))
    assert set(plain.loss(out, batch)) == {"loss", "keypoints"} | {f"stage{i}" for i in range(1 + iterations)}
    assert not any("limbs" in name for name, _ in plain.named_parameters())


def test_parameter_count_follows_the_layer_table():
    # Defaults (2 iterations + body parts): 17,247,422 (MPII) and 17,245,880 (LSP).
    assert (MPII.num_joints, len(MPII.limbs), LSP.num_joints, len(LSP.limbs)) == (16, 15, 14, 14)
    assert expected_parameters(16, 15, 2) == 17_247_422
    assert expected_parameters(14, 14, 2) == 17_245_880
    assert num_parameters(BelagiannisRecurrent(skeleton="mpii")) == 17_247_422
    assert num_parameters(BelagiannisRecurrent(skeleton="lsp")) == 17_245_880
    # Other sizes: the count does not depend on the input size; no body parts drops the
    # limb heads; no iterations drops the whole recurrent module.
    assert num_parameters(BelagiannisRecurrent(skeleton="lsp", body_parts=False, input_size=(64, 64))) == expected_parameters(
        14, 14, 2, body_parts=False
    )
    assert num_parameters(BelagiannisRecurrent(skeleton="mpii", num_iterations=0)) == expected_parameters(16, 15, 0)


def test_iterations_share_convolutions_and_heads_with_batch_norm_per_iteration():
    counts = {t: num_parameters(BelagiannisRecurrent(skeleton="lsp", num_iterations=t)) for t in (1, 2, 3)}
    per_iteration = sum(bn(c) for c in RECURRENT_BNS)  # 512
    assert counts[2] - counts[1] == per_iteration and counts[3] - counts[2] == per_iteration
    model = BelagiannisRecurrent(skeleton="lsp", num_iterations=3)
    assert len(model.recurrent.norms) == 3
    convs = [m for m in model.recurrent.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 4  # one set, reused by every iteration


def test_gradients_reach_every_parameter():
    torch.manual_seed(0)
    model = BelagiannisRecurrent(skeleton="lsp", num_iterations=2, input_size=(64, 64))
    images = torch.randint(0, 256, (2, 3, 64, 64), dtype=torch.uint8)
    keypoints = torch.rand(2, 14, 2) * 63
    out = model(model.normalize(images))
    model.loss(out, fake_batch(keypoints, torch.full((2, 14), 2)))["loss"].backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert missing == []


def test_weights_start_from_the_authors_initialisation():
    torch.manual_seed(0)
    model = BelagiannisRecurrent(skeleton="lsp")
    for module in (model.conv9, model.recurrent.conv2, model.heads.keypoints, model.recurrent_heads.limbs):
        assert abs(module.weight.detach().std().item() - 0.01) < 0.001 and (module.bias == 0).all()


# --------------------------------------------------------------------------- targets, loss


def test_foreground_background_weights_follow_the_formula():
    fg = torch.zeros(1, 3, 6, 8, dtype=torch.bool)
    fg[0, 0, 1:2, 2:7] = True  # 5 of 48 pixels
    fg[0, 1, :5] = True  # 40 of 48: more foreground than background
    weights = balanced_weights(fg)  # map 2 has no foreground
    assert torch.allclose(weights[0, 0][fg[0, 0]], torch.tensor(43 / 48))
    assert torch.allclose(weights[0, 0][~fg[0, 0]], torch.tensor(5 / 48))
    assert torch.isclose(weights[0, 0][fg[0, 0]].sum(), weights[0, 0][~fg[0, 0]].sum())  # equal shares
    assert (weights[0, 1] == 1).all() and (weights[0, 2] == 0).all()

    torch.manual_seed(0)
    pred, target, w = torch.rand(2, 3, 6, 8), torch.rand(2, 3, 6, 8), torch.rand(2, 3, 6, 8)
    direct = sum(
        0.5 * float(w[b, k, i, j]) * (float(pred[b, k, i, j]) - float(target[b, k, i, j])) ** 2
        for b in range(2) for k in range(3) for i in range(6) for j in range(8)
    ) / 2
    assert weighted_l2(pred, target, w).item() == pytest.approx(direct, rel=1e-5)


def test_model_loss_equals_the_weighted_formula_at_every_stage():
    model = BelagiannisRecurrent(skeleton="lsp", num_iterations=1, body_parts=True)
    keypoints = lsp_pose()
    visibility = torch.full((1, 14), 2)
    torch.manual_seed(0)
    stages = [(torch.rand(1, 14, 62, 62) * 12, torch.rand(1, 14, 62, 62) * 12) for _ in range(2)]
    terms = model.loss({"stages": stages}, fake_batch(keypoints, visibility))

    def direct(pred: torch.Tensor, target: torch.Tensor) -> float:
        total = 0.0
        for k in range(pred.shape[1]):
            fg = target[0, k] > 12e-18
            n = fg.numel()
            n_fg = int(fg.sum())
            n_bg = n - n_fg
            w = torch.full_like(target[0, k], n_fg / n)
            w[fg] = n_bg / n
            if n_fg > n_bg:
                w[:] = 1
            total += 0.5 * float((w * (pred[0, k] - target[0, k]) ** 2).sum())
        return total

    kp_target = gaussian_heatmaps(keypoints, visibility, (62, 62), 1.3, peak=12, stride=4)
    limb_target = limb_heatmaps(
        keypoints, visibility, LSP.limbs, (62, 62), std_along_frac=0.15, std_across_frac=0.08, peak=12, stride=4
    )
    assert kp_target.amax().item() == pytest.approx(12, rel=0.05)
    for i, (kp, limb) in enumerate(stages):
        assert terms[f"stage{i}"].item() == pytest.approx(direct(kp, kp_target) + direct(limb, limb_target), rel=1e-4)
    assert terms["loss"].item() == pytest.approx(terms["stage0"].item() + terms["stage1"].item(), rel=1e-6)
    assert terms["loss"].item() == pytest.approx(terms["keypoints"].item() + terms["limbs"].item(), rel=1e-6)


def test_the_codec_holds_every_target_and_decoding_setting():
    """Stride, Gaussian std and peak, limbs and their widths, refinement: the codec's, said
    once; without body parts it has no limbs to draw."""
    model = BelagiannisRecurrent(skeleton="lsp", num_iterations=0, input_size=(64, 64), heatmap_std=1.7,
                                 limb_std_along=0.2, refine="dark")
    assert model.codec == LimbHeatmapCodec(stride=4, std=1.7, peak=12.0, refine="dark", limbs=LSP.limbs,
                                           limb_std_along=0.2, limb_std_across=0.08)
    assert not {"limb_std_along", "limb_std_across", "limb_pairs"} & {*vars(model), *dict(model.named_buffers())}
    keypoints, visibility = lsp_pose(0.25) - 92, torch.full((1, 14), 2)  # centred in the 64x64 crop
    targets = model.encode_targets(keypoints, visibility, (16, 16))
    assert torch.equal(targets["limbs"], model.codec.encode_limbs(keypoints, visibility, (16, 16)))
    without = BelagiannisRecurrent(skeleton="lsp", num_iterations=0, input_size=(64, 64), body_parts=False)
    assert without.codec.limbs == () and set(without.encode_targets(keypoints, visibility, (16, 16))) == {
        "keypoints", "keypoint_weights"}


OCCLUDED = 7  # right elbow; limbs (6, 7) and (7, 8) touch it
MISSING = 0  # right ankle, not annotated; limb (0, 1) touches it


def occlusion_setup(mode: str):
    model = BelagiannisRecurrent(skeleton="lsp", num_iterations=0, occlusion=mode)
    keypoints = lsp_pose()
    visibility = torch.full((1, 14), 2)
    visibility[0, OCCLUDED] = 1
    visibility[0, MISSING] = 0
    keypoints[0, MISSING] = float("nan")  # whatever a missing joint holds
    return model, fake_batch(keypoints, visibility)


def limbs_touching(joint: int) -> list[int]:
    return [i for i, (a, b) in enumerate(LSP.limbs) if joint in (a, b)]


def loss_and_grad(model, batch, kp_pred, limb_pred):
    kp_pred = kp_pred.clone().requires_grad_(True)
    loss = model.loss({"stages": [(kp_pred, limb_pred)]}, batch)["loss"]
    (grad,) = torch.autograd.grad(loss, kp_pred)
    return loss.item(), grad


@pytest.mark.parametrize("mode", ["include", "ignore", "exclude"])
def test_missing_joints_have_zero_target_and_zero_weight(mode):
    model, batch = occlusion_setup(mode)
    t = model.encode_targets(batch["keypoints"], batch["visibility"], (62, 62))
    assert (t["keypoints"][0, MISSING] == 0).all() and (t["keypoint_weights"][0, MISSING] == 0).all()
    for limb in limbs_touching(MISSING):
        assert (t["limbs"][0, limb] == 0).all() and (t["limb_weights"][0, limb] == 0).all()
    assert torch.isfinite(t["keypoints"]).all() and torch.isfinite(t["limbs"]).all()


def test_include_draws_occluded_joints_like_visible_ones():
    model, batch = occlusion_setup("include")
    t = model.encode_targets(batch["keypoints"], batch["visibility"], (62, 62))
    drawn = gaussian_heatmaps(batch["keypoints"], batch["visibility"].clamp(max=1), (62, 62), 1.3, peak=12, stride=4)
    assert torch.equal(t["keypoints"][0, OCCLUDED], drawn[0, OCCLUDED])
    assert t["keypoints"][0, OCCLUDED].max() > 10
    for limb in limbs_touching(OCCLUDED):
        assert t["limbs"][0, limb].max() > 10


def test_exclude_makes_occluded_joints_background_and_penalises_them():
    model, batch = occlusion_setup("exclude")
    t = model.encode_targets(batch["keypoints"], batch["visibility"], (62, 62))
    include = occlusion_setup("include")[0].encode_targets(batch["keypoints"], batch["visibility"], (62, 62))
    assert (t["keypoints"][0, OCCLUDED] == 0).all()
    for limb in limbs_touching(OCCLUDED):
        assert (t["limbs"][0, limb] == 0).all() and (t["limb_weights"][0, limb] > 0).all()
    # The loss counts there, with the weights the joint would have had if drawn.
    assert torch.equal(t["keypoint_weights"], include["keypoint_weights"])
    y, x = divmod(int(include["keypoints"][0, OCCLUDED].argmax()), 62)
    assert t["keypoint_weights"][0, OCCLUDED, y, x] > 0.5  # foreground weight N_bg / N
    # Predicting the occluded joint costs; predicting nothing there is the optimum.
    zero_kp = torch.zeros(1, 14, 62, 62)
    responded = zero_kp.clone()
    responded[0, OCCLUDED] = include["keypoints"][0, OCCLUDED]
    silent_loss, _ = loss_and_grad(model, batch, zero_kp, t["limbs"])
    loss, grad = loss_and_grad(model, batch, responded, t["limbs"])
    assert loss > silent_loss + 1 and grad[0, OCCLUDED, y, x] > 0
    assert model.loss({"stages": [(t["keypoints"], t["limbs"])]}, batch)["loss"].item() == 0


def test_ignore_gives_no_gradient_at_occluded_joints():
    model, batch = occlusion_setup("ignore")
    t = model.encode_targets(batch["keypoints"], batch["visibility"], (62, 62))
    region = t["keypoints"][0, OCCLUDED] > 12e-18  # the drawn joint's foreground
    assert region.sum() > 100 and (t["keypoint_weights"][0, OCCLUDED][region] == 0).all()
    torch.manual_seed(0)
    pred = torch.rand(1, 14, 62, 62) * 12
    loss, grad = loss_and_grad(model, batch, pred, t["limbs"])
    assert (grad[0, OCCLUDED][region] == 0).all()
    assert (grad[0, OCCLUDED][~region] != 0).any()  # the rest of the map is still background
    changed = pred.clone()
    changed[0, OCCLUDED][region] = torch.rand(int(region.sum())) * 100
    assert loss_and_grad(model, batch, changed, t["limbs"])[0] == loss
    for limb in limbs_touching(OCCLUDED):
        limb_region = t["limbs"][0, limb] > 12e-18
        assert (t["limb_weights"][0, limb][limb_region] == 0).all()


# --------------------------------------------------------------------------- inference


def calibrated_model() -> BelagiannisRecurrent:
    """An untrained model in eval mode whose maps are not flat.

    With N(0, 0.01) weights and the initial batch-norm statistics, activations vanish layer
    after layer and every map is numerically constant (argmax ties). One forward pass in
    training mode with cumulative statistics sets the batch norms to the data's scale.
    """
    torch.manual_seed(0)
    model = BelagiannisRecurrent(skeleton="lsp", num_iterations=1, input_size=(64, 64))
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.momentum = None  # running statistics = those of the batches seen
    with torch.no_grad():
        model(model.normalize(torch.randint(0, 256, (2, 3, 64, 64), dtype=torch.uint8)))
    return model.eval()


def test_flip_test_on_a_mirror_symmetric_image_gives_mirrored_keypoints():
    model = calibrated_model()
    torch.manual_seed(1)
    left = torch.randint(0, 256, (1, 3, 64, 32), dtype=torch.uint8)
    image = torch.cat([left, left.flip(-1)], dim=-1)
    assert torch.equal(image, image.flip(-1))
    with torch.no_grad():
        out = model.predict_poses(image, flip_test=True)
    kp, scores = out["keypoints"][0], out["scores"][0]
    for left_joint, right_joint in LSP.flip_pairs:
        assert kp[right_joint, 0].item() == pytest.approx(63 - kp[left_joint, 0].item(), abs=1e-4)
        assert kp[right_joint, 1].item() == pytest.approx(kp[left_joint, 1].item(), abs=1e-4)
        assert scores[right_joint].item() == pytest.approx(scores[left_joint].item(), abs=1e-6)


def test_flip_test_is_mirror_equivariant_and_scores_are_peak_normalised():
    model = calibrated_model()
    torch.manual_seed(2)
    image = torch.randint(0, 256, (1, 3, 64, 64), dtype=torch.uint8)
    with torch.no_grad():
        out = model.predict_poses(image, flip_test=True)
        mirrored = model.predict_poses(image.flip(-1), flip_test=True)
        plain = model.predict_poses(image, flip_test=False)
    flip = list(LSP.flip_index)
    expected = out["keypoints"][:, flip].clone()
    expected[..., 0] = 63 - expected[..., 0]
    torch.testing.assert_close(mirrored["keypoints"], expected)
    assert (plain["heatmaps"].flatten(2).std(-1) > 0).all()  # no flat maps, no argmax ties
    torch.testing.assert_close(plain["scores"], plain["heatmaps"].flatten(2).amax(-1) / 12)


def test_other_timm_backbone_through_adapters():
    model = BelagiannisRecurrent(skeleton="lsp", num_iterations=1, backbone="resnet18", input_size=(64, 64))
    assert model.codec.stride == 4 and model.backbone.channels == (64,)  # resnet18 layer1
    out = model(torch.randn(2, 3, 64, 64))
    assert out["heatmaps"].shape == (2, 14, 16, 16)
    assert ((out["keypoints"] >= -0.5) & (out["keypoints"] <= 63.5)).all()
    assert nearest_stride([8, 16, 32]) == 8 and nearest_stride([2, 8]) == 2 and nearest_stride([4, 8]) == 4


def test_bad_arguments_say_what_is_wrong():
    with pytest.raises(ValueError, match="occlusion must be"):
        BelagiannisRecurrent(occlusion="hide")
    with pytest.raises(ValueError, match="num_iterations"):
        BelagiannisRecurrent(num_iterations=-1)
    with pytest.raises(ValueError, match="heatmap_std must be > 0"):
        BelagiannisRecurrent(heatmap_std=0)
    no_limbs = {"name": "dots", "keypoints": ["a", "b"], "skeleton": []}
    with pytest.raises(ValueError, match="no limbs.*body_parts=False"):
        BelagiannisRecurrent(skeleton=no_limbs)
    assert BelagiannisRecurrent(skeleton=no_limbs, body_parts=False, num_iterations=0).num_joints == 2
    with pytest.raises(KeyError, match="unknown backbone"):
        BelagiannisRecurrent(backbone="resnet_nonexistent")


def test_constructor_is_lightning_cli_friendly():
    from jsonargparse import ArgumentParser

    parser = ArgumentParser()
    parser.add_class_arguments(BelagiannisRecurrent, "model")
    cfg = parser.parse_args(["--model.skeleton=mpii", "--model.num_iterations=1", "--model.occlusion=exclude"])
    instantiate = getattr(parser, "instantiate", None) or parser.instantiate_classes  # renamed in 4.49
    model = instantiate(cfg).model
    assert model.num_joints == 16 and model.num_iterations == 1 and model.occlusion == "exclude"
    with pytest.raises(SystemExit):
        parser.parse_args(["--model.occlusion=hide"])


def test_one_training_and_validation_step_through_the_shared_loop(synthetic_lsp):
    dm = PoseDataModule(
        train=[f"lsp:train@{synthetic_lsp}"], val=[f"lsp:test@{synthetic_lsp}"], input_size=(64, 64),
        batch_size=2, num_workers=0,
    )
    model = BelagiannisRecurrent(skeleton="lsp", num_iterations=1, input_size=(64, 64))
    trainer = pl.Trainer(fast_dev_run=1, accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(model, dm)
    assert {"train/loss", "train/keypoints", "train/limbs", "train/stage0", "train/stage1"} <= set(trainer.callback_metrics)
    assert 0 <= model.results["val/pck"].columns["Total"] <= 100


# --------------------------------------------------------------------------- overfitting


def overfit(datamodule: PoseDataModule, size: int, max_epochs: int) -> tuple[float, int, float]:
    """Fit until validation PCK@0.2 on the training images reaches 95%; (PCK, epochs, s)."""
    pl.seed_everything(0)
    model = BelagiannisRecurrent(
        skeleton="lsp", num_iterations=1, input_size=(size, size), optimizer=partial(torch.optim.Adam, lr=1e-3)
    )
    stop = EarlyStopping("val/pck", mode="max", stopping_threshold=95.0, patience=10**6, check_on_train_epoch_end=False)
    trainer = pl.Trainer(
        max_epochs=max_epochs,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        check_val_every_n_epoch=5,
        callbacks=[stop],
    )
    start = time.perf_counter()
    trainer.fit(model, datamodule)
    pck = float(trainer.callback_metrics["val/pck"])
    assert pck == pytest.approx(model.results["val/pck"].columns["Total"])
    seconds = time.perf_counter() - start
    print(f"overfit: PCK@0.2 {pck:.1f}% after {trainer.current_epoch} epochs, {seconds:.0f} s")
    return pck, trainer.current_epoch, seconds


def overfit_datamodule(train: str, size: int, **kwargs) -> PoseDataModule:
    return PoseDataModule(
        train=[train], val=[train], input_size=(size, size), scale=(1.0, 1.0), rotation=0.0,
        flip_prob=0.0, batch_size=4, num_workers=0, fill=128, **kwargs,
    )


@pytest.mark.slow
def test_overfits_four_synthetic_images(synthetic_lsp):
    pck, epochs, seconds = overfit(overfit_datamodule(f"lsp:train@{synthetic_lsp}", 96), 96, max_epochs=150)
    assert pck >= 95.0, f"PCK@0.2 {pck:.1f}% after {epochs} epochs ({seconds:.0f} s)"


@pytest.mark.slow
def test_overfits_four_real_lsp_images(data_root):
    dm = overfit_datamodule("lsp:train", 96, data_root=str(data_root))
    records = list(dm.read(DatasetSpec.parse("lsp:train")))[:4]
    dm.datasets = {part: [dm.make_dataset(records, train=part == "train")] for part in ("train", "val")}
    pck, epochs, seconds = overfit(dm, 96, max_epochs=150)
    assert pck >= 95.0, f"PCK@0.2 {pck:.1f}% after {epochs} epochs ({seconds:.0f} s)"


def test_another_backbone_at_a_chosen_stride_with_a_neck():
    model = BelagiannisRecurrent(backbone="resnet18", stride=8, neck_channels=16, input_size=(64, 64))
    assert model.codec.stride == 8 and model.feature_extractor().channels == (16,)
    outputs = model(torch.randn(2, 3, 64, 64))
    assert outputs["heatmaps"].shape == (2, 14, 8, 8) and outputs["keypoints"].shape == (2, 14, 2)
    with pytest.raises(ValueError, match="has one stride"):
        BelagiannisRecurrent(stride=8)  # the paper's trunk
