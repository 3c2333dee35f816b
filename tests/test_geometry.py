"""Geometry: boxes, the one crop affine, its inverse, batched NumPy and torch use, the flip
test's mapping back from a mirrored crop."""

import math

import numpy as np
import pytest
import torch

from poselit.codecs import gaussian_heatmaps
from poselit.geometry import (
    affine_scale,
    apply_affine,
    box_from_keypoints,
    box_xywh_to_center_scale,
    crop_affine,
    flip_back_heatmaps,
    flip_back_keypoints,
    invert_affine,
)
from poselit.skeletons import LSP


def test_crop_affine_maps_the_box_onto_the_crop():
    center, scale = (500.0, 300.0), 1.0  # 200 px box
    a = crop_affine(center, scale, (256, 128))
    # box centre -> crop centre (pixel-centre convention: (W-1)/2, (H-1)/2)
    assert apply_affine(np.array([center]), a)[0] == pytest.approx([63.5, 127.5])
    # the box's top edge (100 px above the centre) -> the crop's top edge (y = -0.5)
    assert apply_affine(np.array([[500.0, 200.0]]), a)[0][1] == pytest.approx(-0.5)
    assert affine_scale(a) == pytest.approx(256 / 200)


def test_padding_enlarges_the_box():
    a = crop_affine((0, 0), 1.0, (100, 100), padding=1.25)
    assert affine_scale(a) == pytest.approx(100 / 250)


def test_rotation_is_counter_clockwise_on_screen_about_the_centre():
    a = crop_affine((10.0, 10.0), 0.5, (100, 100), rotation=90)
    # a point to the right of the centre ends up above it (y decreases) after 90 deg CCW
    p = apply_affine(np.array([[20.0, 10.0]]), a)[0]
    assert p == pytest.approx([49.5, 49.5 - 10], abs=1e-9)


def test_flip_mirrors_about_the_crop_centre():
    plain = crop_affine((50, 60), 0.7, (64, 48), rotation=13)
    flipped = crop_affine((50, 60), 0.7, (64, 48), rotation=13, flip=True)
    pts = np.random.default_rng(0).uniform(0, 100, (20, 2))
    p, f = apply_affine(pts, plain), apply_affine(pts, flipped)
    assert f[:, 0] == pytest.approx(47 - p[:, 0])
    assert f[:, 1] == pytest.approx(p[:, 1])


def test_inverse_round_trip_within_1e_3_px():
    rng = np.random.default_rng(1)
    for _ in range(20):
        a = crop_affine(rng.uniform(0, 2000, 2), rng.uniform(0.3, 8), (256, 192),
                        padding=1.25, rotation=rng.uniform(-40, 40), flip=bool(rng.random() < 0.5))
        pts = rng.uniform(0, 2000, (16, 2))
        back = apply_affine(apply_affine(pts, a), invert_affine(a))
        assert np.abs(back - pts).max() < 1e-3


def test_apply_affine_is_batched_and_works_on_torch():
    a = np.stack([crop_affine((5, 5), 1, (32, 32), rotation=r) for r in (0, 30)])
    pts = np.random.default_rng(2).uniform(0, 10, (2, 7, 2))
    expected = np.stack([apply_affine(pts[i], a[i]) for i in range(2)])
    assert np.allclose(apply_affine(pts, a), expected)
    assert torch.allclose(apply_affine(torch.from_numpy(pts), torch.from_numpy(a)), torch.from_numpy(expected))
    assert torch.allclose(affine_scale(torch.from_numpy(a)), torch.from_numpy(affine_scale(a)))


def test_boxes():
    kps = np.array([[10, 20], [50, 100], [999, 999]], float)
    center, scale = box_from_keypoints(kps, np.array([2, 1, 0]))
    assert center == pytest.approx([30, 60]) and scale == pytest.approx(80 / 200)
    with pytest.raises(ValueError, match="no joint is annotated"):
        box_from_keypoints(kps, np.zeros(3))
    center, scale = box_xywh_to_center_scale([10, 20, 100, 50])
    assert center == pytest.approx([60, 45]) and scale == pytest.approx(0.5)
    with pytest.raises(ValueError, match="zero or negative size"):
        box_xywh_to_center_scale([0, 0, 0, 5])
    assert math.isclose(scale, 0.5)


def test_flip_back_keypoints_is_the_crop_affines_mirror_with_joints_swapped():
    """A flipped crop (:func:`crop_affine` with ``flip``) puts each point at ``W - 1 - x`` of
    the unflipped crop; mapping back swaps every joint with its mirror partner and is its own
    inverse."""
    keypoints = torch.rand(2, 14, 2, generator=torch.Generator().manual_seed(0)) * 31
    flip = torch.tensor(LSP.flip_index)
    plain = crop_affine((50.0, 40.0), 0.2, (32, 32))
    mirrored = crop_affine((50.0, 40.0), 0.2, (32, 32), flip=True)
    in_mirror = apply_affine(apply_affine(keypoints.double(), torch.from_numpy(invert_affine(plain))),
                             torch.from_numpy(mirrored))
    restored = flip_back_keypoints(in_mirror[:, flip], flip, width=32)
    torch.testing.assert_close(restored, keypoints.double())
    assert torch.allclose(flip_back_keypoints(flip_back_keypoints(keypoints, flip, 32), flip, 32), keypoints)


@pytest.mark.parametrize("stride", [1, 2, 4])
def test_flip_back_heatmaps_undoes_the_mirror_of_the_input(stride):
    """Exact when the stride divides the width: the maps of a mirrored crop's joints, mapped
    back, are the crop's maps."""
    keypoints = torch.tensor([[[5.0, 7.0]] * 14]) + torch.arange(14.0)[None, :, None]
    visibility = torch.full((1, 14), 2)
    flip = torch.tensor(LSP.flip_index)
    size = (32 // stride, 32 // stride)
    maps = gaussian_heatmaps(keypoints, visibility, size, std=1.0, stride=stride)
    mirrored = gaussian_heatmaps(flip_back_keypoints(keypoints, flip, 32), visibility, size, std=1.0, stride=stride)
    torch.testing.assert_close(flip_back_heatmaps(mirrored, flip), maps, atol=1e-6, rtol=0)


def test_the_flip_mapping_is_importable_from_its_old_place_for_one_release():
    import poselit.models.base as base

    with pytest.warns(DeprecationWarning, match="moved to poselit.geometry.flip_back_keypoints"):
        assert base.flip_back_keypoints is flip_back_keypoints
    with pytest.warns(DeprecationWarning, match="moved to poselit.geometry.flip_back_heatmaps"):
        assert base.flip_back_heatmaps is flip_back_heatmaps
