"""PoseDataset: the sample contract, one-affine geometry, flips, bad images."""

import numpy as np
import pytest
import torch

from poselit.data.dataset import ImageReadError, PoseDataset
from poselit.data.readers.lsp import read_lsp
from poselit.data.sources import read_annotations
from poselit.data.transforms import AugmentConfig, AugmentParams, sample_augment
from poselit.geometry import apply_affine


@pytest.fixture()
def records(synthetic_lsp):
    return read_lsp(synthetic_lsp, "all")


def test_sample_contract(records):
    dataset = PoseDataset(records, (64, 48))
    sample = dataset[1]
    assert set(sample) == {"image", "keypoints", "visibility", "norm", "affine", "index"}
    assert sample["image"].shape == (3, 64, 48) and sample["image"].dtype == torch.uint8
    assert sample["keypoints"].shape == (14, 2) and sample["keypoints"].dtype == torch.float32
    assert sample["visibility"].dtype == torch.int64 and sample["affine"].shape == (2, 3)
    assert int(sample["index"]) == 1
    # norm is the record's normaliser in input pixels
    scale = 64 / (200 * records[1].scale * 1.25)
    assert float(sample["norm"]) == pytest.approx(records[1].norm * scale, rel=1e-5)


def test_affine_maps_input_back_to_the_original_image(records):
    dataset = PoseDataset(records, (64, 64), train=True)
    for i in range(len(dataset)):
        sample = dataset[i]  # random scale / rotation / flip
        back = apply_affine(sample["keypoints"].double(), sample["affine"].double()).numpy()
        record = records[i]
        # a random flip may have swapped left and right joints
        candidates = [back, back[list(dataset.skeleton.flip_index)]]
        assert min(np.abs(c - record.keypoints).max() for c in candidates) < 1e-3


def test_flip_swaps_left_and_right_joints_and_mirrors_them(records):
    dataset = PoseDataset(records, (64, 48))
    plain = dataset.sample(0, AugmentParams())
    flipped = dataset.sample(0, AugmentParams(flip=True))
    partner = list(dataset.skeleton.flip_index)
    k, kf = plain["keypoints"].numpy(), flipped["keypoints"].numpy()[partner]
    assert np.allclose(kf[:, 0], 47 - k[:, 0], atol=1e-4) and np.allclose(kf[:, 1], k[:, 1], atol=1e-4)
    assert torch.equal(flipped["visibility"], plain["visibility"][partner])
    assert torch.equal(flipped["image"], plain["image"].flip(-1))


def test_one_resampling_reproduces_the_original_pixels(records):
    """A crop pixel equals the original pixel its affine points at (no resampling chain)."""
    import cv2

    dataset = PoseDataset(records, (96, 72), padding=1.0)
    record = records[2]
    sample = dataset.sample(2, AugmentParams(scale=1.1, rotation=17.0))
    original = cv2.cvtColor(cv2.imread(str(record.image)), cv2.COLOR_BGR2RGB).astype(int)
    # bilinear interpolation of the original at the positions the affine maps crop pixels to
    ys, xs = np.mgrid[10:80:7, 10:60:7]
    pts = np.stack([xs.ravel(), ys.ravel()], 1).astype(float)
    src = apply_affine(pts, sample["affine"].double().numpy())
    inside = (src[:, 0] >= 0) & (src[:, 1] >= 0) & (src[:, 0] < 71) & (src[:, 1] < 95)
    x0, y0 = np.floor(src[inside]).astype(int).T
    fx, fy = (src[inside] - np.floor(src[inside])).T
    interp = (
        original[y0, x0] * ((1 - fx) * (1 - fy))[:, None] + original[y0, x0 + 1] * (fx * (1 - fy))[:, None]
        + original[y0 + 1, x0] * ((1 - fx) * fy)[:, None] + original[y0 + 1, x0 + 1] * (fx * fy)[:, None]
    )
    crop = sample["image"].permute(1, 2, 0).numpy().astype(int)[pts[inside, 1].astype(int), pts[inside, 0].astype(int)]
    assert inside.sum() > 20
    assert np.abs(crop - interp).max() <= 2  # OpenCV's fixed-point bilinear rounding


def test_training_augmentation_is_reproducible_from_torch_seed(records):
    dataset = PoseDataset(records, (32, 32), train=True, augment=AugmentConfig(color_jitter=0.3))
    torch.manual_seed(5)
    a = [dataset[i] for i in range(3)]
    torch.manual_seed(5)
    b = [dataset[i] for i in range(3)]
    assert all(torch.equal(x["image"], y["image"]) and torch.equal(x["keypoints"], y["keypoints"]) for x, y in zip(a, b))


def test_augment_sampling_respects_ranges():
    rng = np.random.default_rng(0)
    config = AugmentConfig(scale=(0.7, 1.3), rotation=40, flip_prob=0.5, shift=0.1)
    draws = [sample_augment(rng, config) for _ in range(2000)]
    scales = np.array([d.scale for d in draws])
    rotations = np.array([d.rotation for d in draws])
    assert scales.min() >= 0.7 and scales.max() <= 1.3 and abs(rotations).max() <= 40
    assert 0.45 < np.mean([d.flip for d in draws]) < 0.55
    assert max(abs(v) for d in draws for v in d.shift) <= 0.1
    with pytest.raises(ValueError, match="scale range"):
        AugmentConfig(scale=(1.3, 0.7))


def test_bad_images_raise_or_are_skipped_and_counted(records, tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    from dataclasses import replace

    bad = [replace(records[0], image=tmp_path / "missing.jpg"), replace(records[1], image=broken), records[2]]
    with pytest.raises(ImageReadError, match=r"image not found: .*missing.jpg \(record .*#1\)"):
        PoseDataset(bad)[0]
    with pytest.raises(ImageReadError, match="cannot be decoded: .*broken.jpg"):
        PoseDataset(bad)[1]
    dataset = PoseDataset(bad, (32, 32), on_bad_image="skip")
    with pytest.warns(UserWarning, match="skipping unreadable image"):
        sample = dataset[0]
    assert int(sample["index"]) == 2 and dataset.num_skipped == 2


def test_mixed_skeletons_and_empty_input_are_rejected(records, data_root):
    coco = read_annotations("coco@coco/test_coco.json", data_root)
    with pytest.raises(ValueError, match="mix skeletons"):
        PoseDataset(list(records) + list(coco))
    with pytest.raises(ValueError, match="at least one record"):
        PoseDataset([])


def test_real_lsp_flip_maps_every_joint_to_its_mirrored_partner(data_root):
    records = read_lsp(data_root / "lsp", "test")
    dataset = PoseDataset(records, (256, 256))
    partner = list(dataset.skeleton.flip_index)
    for i in (0, 499, 999):
        plain, flipped = dataset.sample(i, AugmentParams()), dataset.sample(i, AugmentParams(flip=True))
        mirrored = flipped["keypoints"].numpy()[partner]
        assert np.allclose(mirrored[:, 0], 255 - plain["keypoints"].numpy()[:, 0], atol=1e-3)
        for sample in (plain, flipped):
            back = apply_affine(sample["keypoints"].double(), sample["affine"].double()).numpy()
            order = partner if sample is flipped else list(range(14))
            assert np.abs(back[order] - records[i].keypoints).max() < 1e-3


def test_truncated_and_oversized_images_follow_the_bad_image_policy(records, tmp_path, monkeypatch):
    """A truncated JPEG is an error, not a partly grey crop; an image whose header claims
    more pixels than the limit (here also more than OpenCV allows) is refused before
    decoding. ``on_bad_image="skip"`` counts both."""
    from dataclasses import replace

    from bad_files import png_claiming, truncated_jpeg

    truncated = truncated_jpeg(tmp_path / "truncated.jpg")
    huge = png_claiming(tmp_path / "huge.png", 40000, 40000)
    bad = [replace(records[0], image=truncated), replace(records[1], image=huge), records[2]]
    with pytest.raises(ImageReadError, match=r"cannot be decoded: .*truncated.jpg \(record .*#1\): image file is truncated"):
        PoseDataset(bad)[0]
    with pytest.raises(ImageReadError, match=r"image too large: .*huge.png \(record .*#2\).*1600000000 pixels.*not decoded"):
        PoseDataset(bad)[1]
    dataset = PoseDataset(bad, (32, 32), on_bad_image="skip")
    with pytest.warns(UserWarning, match="skipping unreadable image"):
        assert int(dataset[0]["index"]) == 2
    assert dataset.num_skipped == 2
    # the limit is configurable, and checked from the header of a real, readable image
    monkeypatch.setenv("POSELIT_MAX_IMAGE_PIXELS", "1000")
    with pytest.raises(ImageReadError, match=r"image too large: .*im0003.jpg .*: 72x96 pixels, above the limit of 1000"):
        PoseDataset(records)[2]
    monkeypatch.setenv("POSELIT_MAX_IMAGE_PIXELS", "lots")
    with pytest.raises(ValueError, match="POSELIT_MAX_IMAGE_PIXELS must be a whole number of pixels > 0, got 'lots'"):
        PoseDataset(records)[2]
