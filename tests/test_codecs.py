"""Tests of poselit.codecs against direct per-pixel formulas written out here."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from poselit.codecs import (
    REFINEMENTS,
    CoordinateCodec,
    DetectionRegressionCodec,
    HeatmapCodec,
    LimbHeatmapCodec,
    SoftArgmaxCodec,
    argmax_decode,
    disk_heatmaps,
    gaussian_heatmaps,
    limb_heatmaps,
    soft_argmax,
    to_heatmap_coords,
    to_input_coords,
)
from poselit.geometry import crop_affine, flip_back_heatmaps, flip_back_keypoints
from poselit.skeletons import MPII


def random_pose(batch: int, joints: int, size: tuple[int, int], stride: int, seed: int = 0):
    """Sub-pixel keypoints (input pixels) spread over a map of ``size`` at ``stride``, with
    visibility 0/1/2 and NaN coordinates for the joints that are not annotated."""
    gen = torch.Generator().manual_seed(seed)
    height, width = size
    unit = torch.rand(batch, joints, 2, generator=gen)
    keypoints = to_input_coords(unit * torch.tensor([width - 1.0, height - 1.0]), stride)
    visibility = torch.randint(0, 3, (batch, joints), generator=gen)
    keypoints[visibility == 0] = float("nan")
    return keypoints, visibility


def map_xy(point, stride: float) -> tuple[float, float]:
    """Input pixel -> heatmap coordinates, written out independently of the module."""
    x, y = (float(v) for v in point)
    return (x - (stride - 1) / 2) / stride, (y - (stride - 1) / 2) / stride


# --------------------------------------------------------------------------- convention


def test_coordinate_helpers_are_inverse_and_pixel_aligned() -> None:
    xy = torch.tensor([[-0.5, 0.0], [1.5, 30.0], [247.5, 123.25]])
    for stride in (1, 2, 4, 8):
        torch.testing.assert_close(to_input_coords(to_heatmap_coords(xy, stride), stride), xy)
    # Stride 4: input pixels 0..3 form map pixel 0, centred at input 1.5; the image border
    # -0.5 is the map border -0.5; stride 1 is the identity.
    assert to_heatmap_coords(1.5, 4) == 0.0
    assert to_heatmap_coords(-0.5, 4) == -0.5
    assert to_heatmap_coords(247.5, 4) == 61.5  # right border of a 248 input / 62 map
    torch.testing.assert_close(to_heatmap_coords(xy, 1), xy)
    assert np.allclose(to_input_coords(np.array([0.0, 61.0]), 4), [1.5, 245.5])
    with pytest.raises(ValueError, match="stride"):
        to_heatmap_coords(xy, 0)


def test_convention_matches_cropping_straight_to_heatmap_size() -> None:
    """A crop at input size followed by to_heatmap_coords lands where a crop made directly at
    heatmap size puts the point (geometry.crop_affine uses the same pixel-centre convention)."""
    center, scale, point = (320.0, 240.0), 1.3, np.array([301.7, 199.2, 1.0])
    to_input = crop_affine(center, scale, (248, 248), rotation=20.0)
    to_map = crop_affine(center, scale, (62, 62), rotation=20.0)
    via_input = to_heatmap_coords(to_input @ point, 4)
    np.testing.assert_allclose(via_input, to_map @ point, atol=1e-9)


# --------------------------------------------------------------------------- encoders


@pytest.mark.parametrize("stride", [1, 4])
def test_gaussian_matches_per_pixel_formula(stride: int) -> None:
    size, std, peak = (5, 7), 1.3, 12.0
    keypoints, visibility = random_pose(2, 4, size, stride)
    keypoints[0, 0] = to_input_coords(torch.tensor([8.0, -2.0]), stride)  # centre outside the map
    visibility[0, 0] = 1
    maps = gaussian_heatmaps(keypoints, visibility, size, std, peak=peak, stride=stride)
    assert maps.shape == (2, 4, *size) and maps.dtype == torch.float32
    expected = np.zeros(maps.shape)
    for b in range(2):
        for k in range(4):
            if visibility[b, k] < 1:
                continue
            x0, y0 = map_xy(keypoints[b, k], stride)
            for i in range(size[0]):
                for j in range(size[1]):
                    d2 = (j - x0) ** 2 + (i - y0) ** 2
                    expected[b, k, i, j] = peak * math.exp(-d2 / (2 * std**2))
    np.testing.assert_allclose(maps.numpy(), expected, rtol=1e-5, atol=1e-6)


def test_gaussian_peak_and_min_visibility() -> None:
    keypoints = torch.tensor([[[2.0, 3.0], [4.0, 1.0], [1.0, 1.0]]])
    visibility = torch.tensor([[2, 1, 0]])
    maps = gaussian_heatmaps(keypoints, visibility, (6, 6), 1.0, peak=12.0)
    assert maps[0, 0, 3, 2] == 12.0 and maps[0, 0].max() == 12.0
    assert maps[0, 1].max() == 12.0 and not maps[0, 2].any()
    visible_only = gaussian_heatmaps(keypoints, visibility, (6, 6), 1.0, min_visibility=2)
    assert visible_only[0, 0].any() and not visible_only[0, 1:].any()


@pytest.mark.parametrize("stride", [1, 4])
def test_disk_matches_per_pixel_formula(stride: int) -> None:
    size, radius = (6, 8), 2.0
    keypoints, visibility = random_pose(2, 3, size, stride, seed=1)
    maps = disk_heatmaps(keypoints, visibility, size, radius, stride=stride, min_visibility=2)
    expected = np.zeros(maps.shape)
    for b in range(2):
        for k in range(3):
            if visibility[b, k] < 2:
                continue
            x0, y0 = map_xy(keypoints[b, k], stride)
            for i in range(size[0]):
                for j in range(size[1]):
                    expected[b, k, i, j] = float((j - x0) ** 2 + (i - y0) ** 2 <= radius**2)
    np.testing.assert_array_equal(maps.numpy(), expected)


def test_disk_boundary_is_inside() -> None:
    maps = disk_heatmaps(torch.tensor([[[3.0, 3.0]]]), torch.tensor([[2]]), (7, 7), 2.0)
    assert maps[0, 0, 3, 5] == 1 and maps[0, 0, 3, 6] == 0 and maps[0, 0, 1, 3] == 1
    assert maps.sum() == 13  # lattice points with x^2 + y^2 <= 4


def limb_reference(a, b, size, along, across, peak, stride):
    """The limb Gaussian as a 2D normal density written with its covariance matrix."""
    pa, pb = np.array(map_xy(a, stride)), np.array(map_xy(b, stride))
    centre, vec = (pa + pb) / 2, pb - pa
    length = np.linalg.norm(vec)
    u = vec / length
    rotation = np.array([[u[0], -u[1]], [u[1], u[0]]])
    cov = rotation @ np.diag([(along * length) ** 2, (across * length) ** 2]) @ rotation.T
    inv = np.linalg.inv(cov)
    out = np.zeros(size)
    for i in range(size[0]):
        for j in range(size[1]):
            d = np.array([j, i]) - centre
            out[i, j] = peak * math.exp(-0.5 * d @ inv @ d)
    return out


@pytest.mark.parametrize("stride", [1, 4])
def test_limbs_match_covariance_formula(stride: int) -> None:
    size = (9, 11)
    keypoints = to_input_coords(
        torch.tensor([[[1.2, 1.7], [8.6, 6.1], [5.0, 2.0], [5.0, 2.0], [3.0, 7.0]]]), stride
    )
    visibility = torch.tensor([[2, 1, 2, 2, 0]])
    limbs = [(0, 1), (1, 2), (2, 3), (3, 4), (2, 0)]
    maps = limb_heatmaps(
        keypoints,
        visibility,
        limbs,
        size,
        peak=2.0,
        stride=stride,
        std_along_frac=0.15,
        std_across_frac=0.08,
    )
    assert maps.shape == (1, 5, *size)
    for index in (0, 1, 4):
        a, b = limbs[index]
        expected = limb_reference(keypoints[0, a], keypoints[0, b], size, 0.15, 0.08, 2.0, stride)
        np.testing.assert_allclose(maps[0, index].numpy(), expected, rtol=1e-4, atol=1e-6)
    assert not maps[0, 2].any(), "zero-length limb must be empty"
    assert not maps[0, 3].any(), "limb with an unannotated joint must be empty"
    occluded_dropped = limb_heatmaps(
        keypoints, visibility, limbs, size, stride=stride, min_visibility=2
    )
    assert not occluded_dropped[0, :2].any(), "limbs with an occluded joint are dropped"
    assert occluded_dropped[0, 4].any()


def test_limbs_with_a_skeleton_and_nan_coordinates() -> None:
    keypoints, visibility = random_pose(3, MPII.num_joints, (16, 16), 4, seed=2)
    maps = limb_heatmaps(keypoints, visibility, MPII.limbs, (16, 16), stride=4)
    assert maps.shape == (3, len(MPII.limbs), 16, 16)
    assert torch.isfinite(maps).all()
    pairs = torch.tensor(MPII.limbs)
    drawn = (visibility[:, pairs[:, 0]] > 0) & (visibility[:, pairs[:, 1]] > 0)
    assert torch.equal(maps.flatten(2).amax(-1) > 0, drawn)


def test_encoders_ignore_nan_of_missing_joints_and_validate_inputs() -> None:
    keypoints = torch.tensor([[[float("nan"), float("nan")], [2.0, 2.0]]])
    visibility = torch.tensor([[0, 2]])
    for maps in (
        gaussian_heatmaps(keypoints, visibility, (5, 5), 1.0),
        disk_heatmaps(keypoints, visibility, (5, 5), 1.0),
    ):
        assert torch.isfinite(maps).all() and not maps[0, 0].any() and maps[0, 1].any()
    with pytest.raises(ValueError, match=r"keypoints must be \(B, K, 2\)"):
        gaussian_heatmaps(keypoints[0], visibility, (5, 5), 1.0)
    with pytest.raises(ValueError, match="visibility must be"):
        gaussian_heatmaps(keypoints, visibility[:, :1], (5, 5), 1.0)
    with pytest.raises(ValueError, match="std must be > 0"):
        gaussian_heatmaps(keypoints, visibility, (5, 5), 0.0)
    with pytest.raises(ValueError, match="radius must be > 0"):
        disk_heatmaps(keypoints, visibility, (5, 5), -1.0)
    with pytest.raises(ValueError, match="heatmap size"):
        gaussian_heatmaps(keypoints, visibility, (0, 5), 1.0)
    with pytest.raises(ValueError, match=r"joint index pairs in \[0, 2\)"):
        limb_heatmaps(keypoints, visibility, [(0, 2)], (5, 5))


# --------------------------------------------------------------------------- decoders


def test_argmax_quarter_offset_rule() -> None:
    maps = torch.zeros(1, 3, 4, 5)
    maps[0, 0, 1, 2], maps[0, 0, 1, 3], maps[0, 0, 1, 1] = 5.0, 2.0, 1.0  # right neighbour higher
    maps[0, 0, 0, 2] = 3.0  # upper neighbour higher (y - 0.25)
    maps[0, 1, 2, 0], maps[0, 1, 2, 1] = 4.0, 3.0  # left border: no x shift
    maps[0, 2] = -1.0  # flat map: position 0, no shift, score -1
    keypoints, scores = argmax_decode(maps)
    torch.testing.assert_close(keypoints[0], torch.tensor([[2.25, 0.75], [0.0, 2.0], [0.0, 0.0]]))
    torch.testing.assert_close(scores[0], torch.tensor([5.0, 4.0, -1.0]))
    integer, _ = argmax_decode(maps, refine=None)
    torch.testing.assert_close(integer[0], torch.tensor([[2.0, 1.0], [0.0, 2.0], [0.0, 0.0]]))
    with pytest.raises(ValueError, match="refine"):
        argmax_decode(maps, refine="dark")


def test_encode_decode_round_trip() -> None:
    size, stride = (48, 64), 4
    # Sub-pixel peaks at least 3 map pixels inside the map.
    inside = 3 + torch.rand(4, 16, 2, generator=torch.Generator().manual_seed(3)) * torch.tensor(
        [size[1] - 7.0, size[0] - 7.0]
    )
    keypoints = to_input_coords(inside, stride)
    visibility = torch.ones(4, 16, dtype=torch.long)
    maps = gaussian_heatmaps(keypoints, visibility, size, 1.3, peak=12.0, stride=stride)
    errors = {}
    for refine in ("taylor", "quarter_offset", None):
        decoded, scores = argmax_decode(maps, refine=refine)
        errors[refine] = (to_input_coords(decoded, stride) - keypoints).abs() / stride
        assert (scores <= 12.0).all() and (
            scores > 12.0 * math.exp(-0.5 * 0.5 / 1.3**2) - 1e-4
        ).all()
    assert errors["taylor"].max() < 1e-3
    assert errors["quarter_offset"].max() <= 0.25 + 1e-5
    assert errors[None].max() <= 0.5 + 1e-5
    assert errors["quarter_offset"].mean() < errors[None].mean()


def test_dark_is_exact_on_gaussians_and_beats_taylor_on_noisy_maps() -> None:
    """DARK's blur keeps a Gaussian a Gaussian (the Taylor step stays exact away from the
    border) and smooths a noisy peak, where the plain Taylor step is thrown off."""
    size, std = (24, 24), 1.5
    generator = torch.Generator().manual_seed(5)
    centres = 7 + torch.rand(64, 17, 2, generator=generator) * 10  # >= 7 px from every border
    visibility = torch.ones(64, 17, dtype=torch.long)
    maps = gaussian_heatmaps(centres, visibility, size, std, stride=1)
    clean, _ = argmax_decode(maps, refine="dark", blur_std=std)
    assert (clean - centres).abs().max() < 0.01
    noisy = maps + 0.05 * torch.randn(maps.shape, generator=generator)
    errors = {refine: (argmax_decode(noisy, refine=refine, blur_std=std)[0] - centres).norm(dim=-1).mean()
              for refine in ("dark", "taylor", "quarter_offset")}
    assert errors["dark"] < 0.8 * min(errors["taylor"], errors["quarter_offset"]), errors
    with pytest.raises(ValueError, match="refine='dark' needs blur_std > 0"):
        argmax_decode(maps, refine="dark")


@pytest.mark.parametrize(("size", "std"), [((40, 40), 1.3), ((17, 23), 2.0), ((8, 8), 0.5)])
def test_dark_blurs_only_around_the_maximum_what_blurring_every_map_would_give_there(size, std) -> None:
    """The decoder blurs a window around each maximum: the 3x3 values its step reads equal
    those of DARK as written (every whole map blurred, zero padding), peaks at the border
    included. (DARK's rescaling to the maximum is a common factor, which the step on
    log-differences ignores.)"""
    import torch.nn.functional as F

    from poselit.codecs_functional import _dark_neighbourhood

    generator = torch.Generator().manual_seed(3)
    height, width = size
    centres = torch.rand(4, 14, 2, generator=generator) * torch.tensor([width - 1.0, height - 1.0])
    maps = gaussian_heatmaps(centres, torch.ones(4, 14, dtype=torch.long), size, 1.5, stride=1)
    maps = maps + 0.1 * torch.rand(maps.shape, generator=generator) - 0.05
    radius = math.ceil(3 * std)
    kernel = torch.exp(-0.5 * (torch.arange(-radius, radius + 1.0) / std) ** 2)
    kernel = (kernel[:, None] * kernel[None, :] / kernel.sum() ** 2)[None, None]
    blurred = F.conv2d(maps.clamp_min(0).reshape(-1, 1, *size), kernel, padding=radius).reshape(maps.shape)
    x, y = argmax_decode(maps, refine=None)[0].long().unbind(-1)
    around = F.pad(blurred, (1, 1, 1, 1)).unfold(2, 3, 1).unfold(3, 3, 1)  # (B, K, H, W, 3, 3)
    expected = around[torch.arange(4)[:, None], torch.arange(14), y, x]
    rows, columns = y[..., None] + torch.arange(-1, 2), x[..., None] + torch.arange(-1, 2)
    inside = (((rows >= 0) & (rows < height))[..., :, None]
              & ((columns >= 0) & (columns < width))[..., None, :])  # the step reads no others
    assert not inside.all()  # border peaks are tried
    assert torch.allclose(_dark_neighbourhood(maps, x, y, std)[inside], expected[inside], rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("stride", [1, 2, 4, 8])
def test_a_codec_decodes_its_own_targets_in_input_pixels(stride) -> None:
    """``decode(encode(x)) == x`` in input pixels with Taylor refinement, whatever the
    stride; scores are the map maxima over the peak (1 on a pixel centre); joints not
    drawn get zero maps."""
    codec = HeatmapCodec(stride=stride, std=1.3, peak=12.0, refine="taylor")
    size = (12, 10)
    inside = 2 + torch.rand(3, 5, 2, generator=torch.Generator().manual_seed(stride)) * torch.tensor([5.0, 7.0])
    keypoints = to_input_coords(inside, stride)
    visibility = torch.tensor([[2, 1, 2, 0, 2]] * 3)
    maps = codec.encode(keypoints, visibility, size)
    torch.testing.assert_close(maps, gaussian_heatmaps(keypoints, visibility, size, 1.3, peak=12.0, stride=stride))
    decoded, scores = codec.decode(maps)
    drawn = visibility > 0
    assert (decoded[drawn] - keypoints[drawn]).abs().max() < 1e-3 * stride
    assert ((scores[drawn] > math.exp(-0.5 * 0.5 / 1.3**2) - 1e-4) & (scores[drawn] <= 1 + 1e-6)).all()
    assert (scores[~drawn] == 0).all()
    centre = to_input_coords(torch.tensor([[[4.0, 5.0]]]), stride)  # of map pixel (4, 5)
    on_centre, score = codec.decode(codec.encode(centre, visibility[:1, :1], size))
    assert score.item() == pytest.approx(1.0) and torch.equal(on_centre, centre)


def test_a_codec_clamps_negative_maps_only_when_asked() -> None:
    """Bulat et al.'s evaluation clamps maps at 0 before the argmax: a map with no positive
    response has no preferred position and scores 0."""
    maps = torch.full((1, 1, 4, 5), -3.0)
    maps[0, 0, 2, 3] = -1.0
    plain, clamped = HeatmapCodec(), HeatmapCodec(clamp_negative=True)
    keypoints, scores = plain.decode(maps)
    assert keypoints.tolist() == [[[3.0, 2.0]]] and scores.tolist() == [[-1.0]]
    keypoints, scores = clamped.decode(maps)
    assert keypoints.tolist() == [[[0.0, 0.0]]] and scores.tolist() == [[0.0]]


def test_a_codec_checks_its_settings_and_does_not_pass_gradients() -> None:
    for settings, message in (
        ({"stride": 0}, "stride must be > 0"),
        ({"std": -1.0}, "std must be > 0"),
        ({"peak": 0.0}, "peak must be > 0"),
        ({"refine": "blur"}, "refine must be one of 'quarter_offset', 'taylor', 'dark', None"),
    ):
        with pytest.raises(ValueError, match=message):
            HeatmapCodec(**settings)
    maps = torch.rand(1, 2, 5, 5, requires_grad=True)
    keypoints, scores = HeatmapCodec(refine="taylor").decode(maps)
    assert not keypoints.requires_grad and not scores.requires_grad


def test_taylor_skips_borders_and_non_maxima() -> None:
    maps = gaussian_heatmaps(torch.tensor([[[0.2, 3.0]]]), torch.tensor([[2]]), (7, 7), 1.0)
    keypoints, _ = argmax_decode(maps, refine="taylor")
    torch.testing.assert_close(keypoints[0, 0], torch.tensor([0.0, 3.0]))  # x at the border
    flat = torch.ones(1, 1, 5, 5)
    keypoints, _ = argmax_decode(flat, refine="taylor")
    assert torch.isfinite(keypoints).all()


def test_soft_argmax_of_a_sharp_peak_is_the_peak() -> None:
    logits = torch.full((2, 2, 6, 9), -30.0)
    logits[0, 0, 4, 7] = logits[0, 1, 0, 0] = logits[1, 0, 5, 8] = logits[1, 1, 2, 3] = 30.0
    expected = torch.tensor([[[7.0, 4.0], [0.0, 0.0]], [[8.0, 5.0], [3.0, 2.0]]])
    torch.testing.assert_close(soft_argmax(logits), expected, atol=1e-5, rtol=0)
    normalized = soft_argmax(logits, grid="normalized")
    torch.testing.assert_close(normalized, expected / torch.tensor([8.0, 5.0]), atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="grid"):
        soft_argmax(logits, grid="unit")


def test_soft_argmax_of_a_log_gaussian_is_subpixel_exact_and_stable() -> None:
    keypoints = torch.tensor([[[8.3, 7.6], [7.45, 11.9]]])  # >= 4.5 std from the borders
    maps = gaussian_heatmaps(keypoints, torch.ones(1, 2), (20, 16), 1.5)
    logits = maps.clamp_min(1e-30).log()
    torch.testing.assert_close(soft_argmax(logits), keypoints, atol=1e-4, rtol=0)
    # Shifting all logits by a huge constant changes nothing (max subtracted first).
    torch.testing.assert_close(soft_argmax(logits + 1e4), soft_argmax(logits), atol=2e-3, rtol=0)


def test_soft_argmax_is_differentiable() -> None:
    logits = torch.randn(2, 3, 5, 6, requires_grad=True)
    soft_argmax(logits).sum().backward()
    assert (
        logits.grad is not None
        and torch.isfinite(logits.grad).all()
        and logits.grad.abs().sum() > 0
    )
    small = torch.randn(1, 2, 3, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: soft_argmax(t, grid="normalized"), (small,))


# --------------------------------------------------------------------------- dtypes, shapes


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision_inputs_compute_in_float32(dtype: torch.dtype) -> None:
    # Multiples of 1/8 are exact in both formats, so the inputs carry no rounding.
    keypoints = torch.tensor([[[10.125, 7.5], [30.25, 20.875]]])
    visibility = torch.tensor([[2, 2]])
    reference = gaussian_heatmaps(keypoints, visibility, (16, 24), 1.3, stride=2)
    low = gaussian_heatmaps(keypoints.to(dtype), visibility, (16, 24), 1.3, stride=2)
    assert low.dtype == torch.float32
    torch.testing.assert_close(low, reference)
    limbs = limb_heatmaps(keypoints.to(dtype), visibility, [(0, 1)], (16, 24), stride=2)
    torch.testing.assert_close(
        limbs, limb_heatmaps(keypoints, visibility, [(0, 1)], (16, 24), stride=2)
    )

    decoded, scores = argmax_decode(reference.to(dtype), refine="taylor")
    assert decoded.dtype == scores.dtype == torch.float32
    torch.testing.assert_close(to_input_coords(decoded, 2), keypoints, atol=0.05, rtol=0)

    logits = reference.clamp_min(1e-4).log().to(dtype).requires_grad_()
    coords = soft_argmax(logits)
    assert coords.dtype == torch.float32
    coords.sum().backward()
    assert logits.grad.dtype == dtype and torch.isfinite(logits.grad.float()).all()


def test_float64_stays_float64() -> None:
    keypoints = torch.tensor([[[1.0, 2.0]]], dtype=torch.float64)
    maps = gaussian_heatmaps(keypoints, torch.ones(1, 1), (4, 4), 1.0)
    assert maps.dtype == torch.float64
    assert argmax_decode(maps)[0].dtype == soft_argmax(maps).dtype == torch.float64


def test_empty_and_single_batches() -> None:
    for batch in (0, 1):
        keypoints, visibility = torch.zeros(batch, 1, 2), torch.ones(batch, 1)
        for maps in (
            gaussian_heatmaps(keypoints, visibility, (4, 5), 1.0),
            disk_heatmaps(keypoints, visibility, (4, 5), 1.0),
        ):
            assert maps.shape == (batch, 1, 4, 5)
            for refine in ("quarter_offset", "taylor", None):
                decoded, scores = argmax_decode(maps, refine=refine)
                assert decoded.shape == (batch, 1, 2) and scores.shape == (batch, 1)
            assert soft_argmax(maps).shape == (batch, 1, 2)
        limbs = limb_heatmaps(torch.zeros(batch, 2, 2), torch.ones(batch, 2), [(0, 1)], (4, 5))
        assert limbs.shape == (batch, 1, 4, 5) and not limbs.any()
    with pytest.raises(ValueError, match=r"\(B, K, H, W\)"):
        soft_argmax(torch.zeros(2, 3, 4))


@pytest.mark.gpu
def test_runs_on_the_input_device() -> None:
    keypoints, visibility = random_pose(2, 16, (64, 64), 4, seed=4)
    keypoints, visibility = keypoints.cuda(), visibility.cuda()
    maps = gaussian_heatmaps(keypoints, visibility, (64, 64), 1.3, stride=4)
    limbs = limb_heatmaps(keypoints, visibility, MPII.limbs, (64, 64), stride=4)
    assert maps.is_cuda and limbs.is_cuda
    cpu = gaussian_heatmaps(keypoints.cpu(), visibility.cpu(), (64, 64), 1.3, stride=4)
    torch.testing.assert_close(maps.cpu(), cpu, atol=1e-5, rtol=1e-5)
    decoded, scores = argmax_decode(maps, refine="taylor")
    assert decoded.is_cuda and scores.is_cuda and soft_argmax(maps).is_cuda


# --------------------------------------------------------------------------- codecs of every method


def test_the_cascade_codec_draws_disks_of_visible_joints_and_gaussians_of_annotated_ones() -> None:
    """Detection targets are the disks of the codec's radius around visible joints only;
    regression targets and decoding are its :class:`HeatmapCodec`'s."""
    codec = DetectionRegressionCodec(stride=2, std=1.5, detection_radius=2.5, clamp_negative=True)
    keypoints, visibility = random_pose(2, 6, (12, 10), stride=2)
    disks = codec.encode_detection(keypoints, visibility, (12, 10))
    torch.testing.assert_close(disks, disk_heatmaps(keypoints, visibility, (12, 10), 2.5, stride=2, min_visibility=2))
    assert (disks[visibility < 2] == 0).all() and (disks[visibility == 2].sum(dim=(-2, -1)) > 0).all()
    gaussians = codec.encode(keypoints, visibility, (12, 10))
    torch.testing.assert_close(gaussians, gaussian_heatmaps(keypoints, visibility, (12, 10), 1.5, stride=2))
    assert codec.outputs == ("keypoints", "scores", "heatmaps")
    with pytest.raises(ValueError, match="detection_radius must be > 0"):
        DetectionRegressionCodec(detection_radius=0.0)
    with pytest.raises(TypeError, match="detection_radius"):
        DetectionRegressionCodec(std=1.0)  # no default radius: the method says it


def test_the_limb_codec_draws_limbs_with_its_own_peak_and_stride() -> None:
    codec = LimbHeatmapCodec(stride=4, std=1.3, peak=12.0, limbs=MPII.limbs, limb_std_along=0.2)
    keypoints, visibility = random_pose(2, 16, (16, 16), stride=4)
    expected = limb_heatmaps(keypoints, visibility, MPII.limbs, (16, 16), std_along_frac=0.2,
                             std_across_frac=0.08, peak=12.0, stride=4)
    torch.testing.assert_close(codec.encode_limbs(keypoints, visibility, (16, 16)), expected)
    first, second = codec.limb_ends(visibility)
    pairs = torch.tensor(MPII.limbs)
    assert torch.equal(first, visibility[:, pairs[:, 0]]) and torch.equal(second, visibility[:, pairs[:, 1]])
    assert codec.limbs == tuple(tuple(pair) for pair in MPII.limbs) and hash(codec)  # a frozen value
    with pytest.raises(ValueError, match="limb_std_across must be > 0"):
        LimbHeatmapCodec(limb_std_across=0.0)
    with pytest.raises(ValueError, match=r"limbs must be joint index pairs in \[0, 2\)"):
        LimbHeatmapCodec(limbs=[(0, 5)]).encode_limbs(torch.zeros(1, 2, 2), torch.ones(1, 2), (4, 4))


@pytest.mark.parametrize("stride", [4, 8])
def test_the_soft_argmax_codec_reads_its_targets_back(stride) -> None:
    """``decode(encode(x)) == x``; the normalised frame puts 0 and 1 on the centres of the
    map's first and last pixels; a peaked map's soft-argmax decodes to its pixel's centre."""
    codec = SoftArgmaxCodec(stride=stride)
    size = (6, 9)
    keypoints = torch.rand(2, 3, 2, generator=torch.Generator().manual_seed(stride)) * torch.tensor([9.0, 6.0]) * stride
    torch.testing.assert_close(codec.decode(codec.encode(keypoints, size), size), keypoints)
    corners = to_input_coords(torch.tensor([[[0.0, 0.0], [8.0, 5.0]]]), stride)
    torch.testing.assert_close(codec.encode(corners, size), torch.tensor([[[0.0, 0.0], [1.0, 1.0]]]))
    logits = torch.full((1, 1, *size), -40.0)
    logits[0, 0, 2, 7] = 40.0
    decoded = codec.decode(soft_argmax(logits, grid="normalized"), size)
    torch.testing.assert_close(decoded, to_input_coords(torch.tensor([[[7.0, 2.0]]]), stride), atol=1e-4, rtol=0)
    assert codec.outputs == ("keypoints", "scores")
    with pytest.raises(ValueError, match="heatmap_std must be > 0"):
        SoftArgmaxCodec(heatmap_std=0.0)


def test_the_soft_argmax_codec_draws_normalised_distributions() -> None:
    codec = SoftArgmaxCodec(stride=8, heatmap_std=1.5)
    keypoints = torch.tensor([[[20.0, 30.0], [40.0, 12.0]]])
    valid = torch.tensor([[True, False]])
    maps = codec.encode_heatmaps(keypoints, valid, (8, 8))
    torch.testing.assert_close(maps.sum(dim=(-2, -1)), torch.tensor([[1.0, 0.0]]))
    gaussian = gaussian_heatmaps(keypoints, valid.long(), (8, 8), 1.5, stride=8)[0, 0]
    torch.testing.assert_close(maps[0, 0], gaussian / gaussian.sum())


def test_heatmap_codecs_average_maps_before_decoding_coordinate_codecs_average_keypoints() -> None:
    """The flip test's merge is the codec's: a heatmap codec decodes the average of the maps
    and of the mirror image's maps mapped back (:func:`poselit.geometry.flip_back_heatmaps`:
    the maps of the mirrored joints are the joints' maps), so a sure peak outweighs a
    doubtful one; a coordinate codec averages keypoints and scores."""
    flip_index = torch.tensor([1, 0, 2])
    size, stride, width = (8, 10), 2, 20
    keypoints = torch.tensor([[[6.5, 7.5], [12.5, 3.5], [8.5, 9.5]]])  # map x 3, 6, 4
    visibility = torch.full((1, 3), 2)
    codec = HeatmapCodec(stride=stride, std=1.0, refine="taylor")
    maps = codec.encode(keypoints, visibility, size)
    mirror_maps = codec.encode(flip_back_keypoints(keypoints, flip_index, width), visibility, size)
    assert torch.allclose(flip_back_heatmaps(mirror_maps, flip_index), maps, atol=1e-6)
    sure, doubtful = maps.roll(1, dims=-1), 0.2 * maps.roll(-1, dims=-1)  # one map pixel off either way
    merged, scores = codec.merge_flipped({"heatmaps": sure}, {"heatmaps": flip_back_heatmaps(doubtful, flip_index)},
                                         flip_index, width)
    torch.testing.assert_close((merged, scores), codec.decode((sure + doubtful) / 2))
    assert (merged[..., 0] - keypoints[..., 0] - stride).abs().max() < 0.5 * stride  # near the sure peak
    assert (merged[..., 1] - keypoints[..., 1]).abs().max() < 1e-3

    seen = {"keypoints": keypoints, "scores": torch.tensor([[0.2, 0.4, 0.6]])}
    mirrored = {"keypoints": flip_back_keypoints(keypoints + 1.0, flip_index, width), "scores": torch.tensor([[0.8, 0.6, 0.4]])}
    merged, scores = CoordinateCodec().merge_flipped(seen, mirrored, flip_index, width)
    torch.testing.assert_close(merged, keypoints + 0.5)
    torch.testing.assert_close(scores, torch.tensor([[0.4, 0.6, 0.5]]))  # mirror scores swapped: 0.6, 0.8, 0.4
    assert CoordinateCodec().outputs == ("keypoints", "scores")


@pytest.mark.parametrize("refine", REFINEMENTS)
def test_every_refinement_exports_to_onnx_with_the_model(refine, tmp_path) -> None:
    """The decoding is in the exported graph, DARK's blur included: ONNX Runtime gives
    ``predict_poses``'s keypoints at batch sizes other than the traced one, flip test on
    and off."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    import dataclasses

    from poselit.onnx import OnnxPoseModel, export_onnx
    from tiny_models import TinyHeatmapModel, as_if_trained

    torch.manual_seed(0)
    model = TinyHeatmapModel(input_size=(32, 32))
    model.codec = dataclasses.replace(model.codec, refine=refine)
    generator = torch.Generator().manual_seed(1)
    images = torch.randint(0, 256, (3, 3, 32, 32), dtype=torch.uint8, generator=generator)
    model = as_if_trained(model, images)
    runtime = OnnxPoseModel.from_file(export_onnx(model, tmp_path / "model.onnx"), threads=1)
    for flip_test in (False, True):
        for batch in (1, 3):
            with torch.no_grad():
                expected = model.predict_poses(images[:batch], flip_test=flip_test)
            got = runtime.predict_poses(images[:batch], flip_test=flip_test)
            assert (got["keypoints"] - expected["keypoints"]).abs().max() <= 1e-3
            assert (got["scores"] - expected["scores"]).abs().max() <= 1e-4
