"""PoseLitModule: the shared loop, flip test, original-pixel metrics, optimisers."""

import pytorch_lightning as pl
import pytest
import torch

from poselit.codecs import gaussian_heatmaps
from poselit.data.datamodule import PoseDataModule
from poselit.geometry import to_image_coords
from poselit.models.base import flip_back_heatmaps, flip_back_keypoints
from poselit.skeletons import LSP
from tiny_models import ConstantModel, TinyHeatmapModel


def test_flip_back_keypoints_mirrors_and_swaps_joints():
    keypoints = torch.rand(2, 14, 2, generator=torch.Generator().manual_seed(0)) * 31
    flip = torch.tensor(LSP.flip_index)
    restored = flip_back_keypoints(keypoints, flip, width=32)
    assert torch.allclose(restored[:, flip, 0], 31 - keypoints[..., 0])
    assert torch.allclose(flip_back_keypoints(restored, flip, 32), keypoints, atol=1e-5)


def test_flip_back_heatmaps_undoes_the_mirror_of_the_input():
    keypoints = torch.tensor([[[5.0, 7.0]] * 14]) + torch.arange(14.0)[None, :, None]
    visibility = torch.full((1, 14), 2)
    flip = torch.tensor(LSP.flip_index)
    maps = gaussian_heatmaps(keypoints, visibility, (16, 16), std=1.0, stride=2)
    mirrored = flip_back_keypoints(keypoints, flip, 32)  # joints of the mirrored image
    mirrored_maps = gaussian_heatmaps(mirrored, visibility, (16, 16), std=1.0, stride=2)
    assert torch.allclose(flip_back_heatmaps(mirrored_maps, flip), maps, atol=1e-6)


def test_flip_test_averages_coordinates_for_coordinate_methods():
    fixed = torch.rand(1, 14, 2) * 31
    model = ConstantModel(fixed, input_size=(32, 32))
    images = torch.zeros(1, 3, 32, 32, dtype=torch.uint8)
    plain = model.predict_poses(images, flip_test=False)["keypoints"]
    averaged = model.predict_poses(images, flip_test=True)["keypoints"]
    expected = (fixed + flip_back_keypoints(fixed, model.flip_index, 32)) / 2
    assert torch.allclose(plain, fixed) and torch.allclose(averaged, expected)


def test_flip_test_is_exact_for_a_mirror_symmetric_heatmap_model():
    torch.manual_seed(0)
    model = TinyHeatmapModel(input_size=(32, 32)).eval()
    image = torch.randint(0, 255, (1, 3, 32, 16), dtype=torch.uint8)
    symmetric = torch.cat([image, image.flip(-1)], dim=-1)
    with torch.no_grad():
        merged = model.predict_poses(symmetric, flip_test=True)
        plain = model.predict_poses(symmetric, flip_test=False)
    # the mirrored image is the same image, so flip-averaged heatmaps are the average of
    # the maps and their mirror with joints swapped: decoding must agree with that average
    maps = plain["heatmaps"]
    expected, _ = model.decode_heatmaps((maps + flip_back_heatmaps(maps, model.flip_index)) / 2)
    assert torch.allclose(merged["keypoints"], expected)


def test_normalize_uses_mean_and_std_in_0_255_units():
    model = ConstantModel(torch.zeros(1, 14, 2), mean=(128, 128, 128), std=(256, 256, 256))
    images = torch.full((1, 3, 2, 2), 192, dtype=torch.uint8)
    assert torch.allclose(model.normalize(images), torch.full((1, 3, 2, 2), 0.25))


@pytest.fixture()
def datamodule(synthetic_lsp):
    return PoseDataModule(
        train=[f"lsp:train@{synthetic_lsp}"], val=[f"lsp:test@{synthetic_lsp}", f"lsp:train@{synthetic_lsp}"],
        input_size=(32, 32), batch_size=2, num_workers=0,
    )


def _trainer(**kwargs):
    return pl.Trainer(accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
                      enable_model_summary=False, **kwargs)


def test_fit_validates_each_dataset_and_logs_the_protocol_metrics(datamodule):
    torch.manual_seed(0)
    model = TinyHeatmapModel(input_size=(32, 32))
    trainer = _trainer(max_epochs=1)
    trainer.fit(model, datamodule)
    metrics = trainer.callback_metrics
    assert {"train/loss", "val/loss", "val/pck", "val1/pck", "val/PCK@0.2/Total", "val/PCP@0.5/Total"} <= set(metrics)
    assert set(model.results) >= {"val/pck", "val1/pck", "val/pcp", "val/visibility_ap"}
    assert model.results["val/pck"].counts["head_top"] == 4  # the 4 test records, each once


def test_a_list_and_a_tuple_input_size_log_together(synthetic_lsp, tmp_path):
    """With a logger, Lightning compares the hyper-parameters the model and the data module
    share: an input size given as a list to one and a tuple to the other must agree."""
    data = PoseDataModule(train=[f"lsp:train@{synthetic_lsp}"], val=[], input_size=[32, 32], batch_size=2, num_workers=0)
    model = TinyHeatmapModel(input_size=(32, 32))
    assert model.hparams.input_size == data.hparams.input_size == (32, 32)
    trainer = pl.Trainer(accelerator="cpu", max_steps=1, logger=pl.loggers.CSVLogger(tmp_path), enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0)
    trainer.fit(model, data)
    assert trainer.global_step == 1


def test_metrics_are_computed_in_original_image_pixels(datamodule):
    """Predicting the ground truth (in input pixels) must give 100 after mapping back."""
    datamodule.setup("validate")
    batch = next(iter(datamodule.val_dataloader()[0]))

    class Oracle(ConstantModel):
        def forward(self, images):
            return {"keypoints": batch["keypoints"].clone(), "scores": torch.ones(len(images), 14)}

        def loss(self, outputs, batch):
            return {"loss": torch.zeros(())}

    model = Oracle(torch.zeros(1, 14, 2), input_size=(32, 32), flip_test=False)
    model._evaluate(batch, "val", 0)
    result = model._metrics("val", 0)["pck"].result()
    assert result.columns["Total"] == pytest.approx(100.0)


def test_predict_step_returns_original_pixels(datamodule):
    datamodule.setup("test")
    batch = next(iter(datamodule.test_dataloader()[0]))
    fixed = batch["keypoints"][:1]
    model = ConstantModel(fixed, input_size=(32, 32), flip_test=False)
    out = model.predict_step({**batch, "image": batch["image"][:1], "affine": batch["affine"][:1], "index": batch["index"][:1]}, 0)
    record = datamodule.datasets["test"][0].records[int(batch["index"][0])]
    assert torch.allclose(out["keypoints"][0], torch.tensor(record.keypoints), atol=1e-3)


def test_predict_step_and_the_predictor_map_back_alike(datamodule):
    """Lightning's predict step and :class:`~poselit.predict.Predictor` crop a person the
    same way and take the same keypoints back to the same image pixels."""
    from poselit.predict import Predictor

    datamodule.setup("test")
    batch = next(iter(datamodule.test_dataloader()[0]))
    model = ConstantModel(batch["keypoints"][:1], input_size=(32, 32), flip_test=False)
    step = model.predict_step({**batch, "image": batch["image"][:1], "affine": batch["affine"][:1]}, 0)
    record = datamodule.datasets["test"][0].records[int(batch["index"][0])]
    box = {"center": record.center.tolist(), "scale": record.scale}
    (person,) = Predictor(model)(str(record.image), box=box)
    assert torch.allclose(torch.from_numpy(person.keypoints), step["keypoints"][0], atol=1e-3)


def test_to_image_coords_computes_in_float32_or_the_affines_float64():
    affine = torch.tensor([[[2.0, 0.0, 10.0], [0.0, 2.0, -5.0]]])
    keypoints = torch.tensor([[[1.5, 3.25]]], dtype=torch.bfloat16)
    for given in (affine, affine.to(torch.bfloat16)):  # bf16: a batch under "bf16-true" precision
        mapped = to_image_coords(keypoints, given)
        assert mapped.dtype == torch.float32 and mapped.tolist() == [[[13.0, 1.5]]]
    assert to_image_coords(keypoints, affine.double()).dtype == torch.float64


def test_to_image_coords_at_its_old_place_works_for_one_release_and_warns():
    """It moved from the Lightning module's file to :mod:`poselit.geometry` (the predictor
    and the ONNX runtime map back without importing the training loop)."""
    with pytest.warns(DeprecationWarning, match="poselit.geometry.to_image_coords"):
        from poselit.models.base import to_image_coords as old
    assert old is to_image_coords


def test_optimizer_and_plateau_scheduler_from_the_constructor():
    model = ConstantModel(
        torch.zeros(1, 14, 2),
        optimizer=lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9),
        lr_scheduler=lambda o: torch.optim.lr_scheduler.ReduceLROnPlateau(o, mode="max", factor=0.4),
    )
    config = model.configure_optimizers()
    assert isinstance(config["optimizer"], torch.optim.SGD) and config["optimizer"].defaults["lr"] == 0.1
    assert config["lr_scheduler"]["monitor"] == "val/pck"
    plain = ConstantModel(torch.zeros(1, 14, 2)).configure_optimizers()
    assert isinstance(plain, torch.optim.Adam)


def test_init_from_copies_matching_tensors_and_reports_the_rest(tmp_path):
    torch.manual_seed(0)
    source = TinyHeatmapModel(input_size=(32, 32))
    path = tmp_path / "source.ckpt"
    torch.save({"state_dict": source.state_dict(), "epoch": 3}, path)
    same = TinyHeatmapModel(input_size=(32, 32), init_from=str(path))
    same.setup("fit")
    assert all(torch.equal(a, b) for a, b in zip(same.state_dict().values(), source.state_dict().values()))
    coco = TinyHeatmapModel(skeleton="coco", input_size=(32, 32))  # 17 joints: last conv differs
    with pytest.warns(UserWarning, match=r"kept fresh: \['net.4.weight', 'net.4.bias'\]"):
        report = coco.load_compatible_weights(path)
    assert report["reshaped"] == ["net.4.weight", "net.4.bias"] and len(report["loaded"]) == 4
    with pytest.raises(FileNotFoundError, match="checkpoint not found"):
        coco.load_compatible_weights(tmp_path / "nothing.ckpt")


def test_checkpoints_carry_the_constructor_arguments(tmp_path, synthetic_lsp):
    from poselit.models import LuvizonSoftArgmax

    model = LuvizonSoftArgmax(num_blocks=1, input_size=(64, 64), alpha=0.7)
    assert dict(model.hparams)["alpha"] == 0.7 and "optimizer" not in model.hparams
    trainer = pl.Trainer(max_steps=0, logger=False, enable_progress_bar=False, enable_model_summary=False,
                         default_root_dir=tmp_path)
    trainer.strategy.connect(model)
    trainer.save_checkpoint(tmp_path / "m.ckpt")
    loaded = LuvizonSoftArgmax.load_from_checkpoint(tmp_path / "m.ckpt", weights_only=True)
    assert loaded.hparams["num_blocks"] == 1 and tuple(loaded.input_size) == (64, 64)
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), model.state_dict().values()))


@pytest.mark.parametrize("scaling, expected", [("none", 1e-3), ("linear", 4e-3), ("sqrt", 2e-3)])
def test_learning_rate_scales_with_the_number_of_processes(scaling, expected):
    from types import SimpleNamespace

    model = TinyHeatmapModel(
        skeleton="lsp", lr_scaling=scaling, optimizer=lambda p: torch.optim.SGD(p, lr=1e-3),
        lr_scheduler=lambda o: torch.optim.lr_scheduler.StepLR(o, 1),
    )
    model._trainer = SimpleNamespace(world_size=4)
    config = model.configure_optimizers()
    assert config["optimizer"].param_groups[0]["lr"] == pytest.approx(expected)
    assert config["lr_scheduler"]["scheduler"].base_lrs == [pytest.approx(expected)]
    with pytest.raises(ValueError, match="lr_scaling must be"):
        TinyHeatmapModel(skeleton="lsp", lr_scaling="cubic")


def test_channels_last_and_compile_switches_keep_the_numbers(datamodule):
    from poselit.callbacks import ChannelsLast, CompileModel

    torch.manual_seed(0)
    model = TinyHeatmapModel(skeleton="lsp", input_size=(32, 32), flip_test=False)
    images = torch.randint(0, 255, (2, 3, 32, 32), dtype=torch.uint8)
    expected = model.predict_poses(images)["heatmaps"]
    trainer = _trainer(max_epochs=1, limit_train_batches=1, callbacks=[ChannelsLast(), CompileModel(backend="eager")])
    trainer.validate(model, datamodule, verbose=False)
    assert model.net[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert "forward" in vars(model) and "net.0.weight" in model.state_dict()  # compiled, names unchanged
    assert torch.allclose(model.predict_poses(images)["heatmaps"], expected, atol=1e-5)


def test_damaged_checkpoints_are_refused_naming_the_file(tmp_path):
    """Zero-byte, truncated and text files: one ValueError naming the file, whether
    read whole or memory-mapped (torch's own errors name no file, and for a non-zip file
    torch blames mmap)."""
    from poselit.checkpoints import CheckpointError, read_checkpoint

    good = tmp_path / "good.ckpt"
    torch.save({"state_dict": {"w": torch.arange(4096.0)}}, good)
    data = good.read_bytes()
    cases = {"empty.ckpt": b"", "truncated.ckpt": data[: len(data) // 2], "text.ckpt": b"not a checkpoint"}
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
        for mmap in (False, True):
            with pytest.raises(CheckpointError, match=rf"{name}: not a checkpoint: torch.save writes a zip archive"):
                read_checkpoint(tmp_path / name, mmap=mmap)
    assert read_checkpoint(good)["state_dict"]["w"].shape == (4096,)


def test_damaged_safetensors_are_refused_naming_the_file_by_every_reader(tmp_path):
    """``init_from`` / ``read_state_dict`` (a CheckpointError) and backbone weights (a
    ValueError) read safetensors through one reader: a zero-byte or truncated file, or a
    damaged header, is one error naming the file, not a SafetensorError without a path."""
    from safetensors.torch import save_file

    from poselit.models.backbones import create_backbone
    from poselit.checkpoints import CheckpointError, read_state_dict

    good = tmp_path / "good.safetensors"
    save_file({"w": torch.arange(4096.0)}, good)
    data = good.read_bytes()
    cases = {"empty": b"", "truncated": data[: len(data) // 2], "header": b"\x10" + b"\xff" * 200}
    for name, content in cases.items():
        path = tmp_path / f"{name}.safetensors"
        path.write_bytes(content)
        with pytest.raises(CheckpointError, match=rf"{name}.safetensors: not a readable safetensors file"):
            read_state_dict(path)
        with pytest.raises(ValueError, match=rf"{name}.safetensors: not a readable safetensors file"):
            create_backbone("resnet18", weights=path)
    assert read_state_dict(good)["w"].shape == (4096,)
