"""Drawing: skeletons in side and score colours with a minimum opacity, heatmap grids,
side-by-side pairs, PCK curves."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from poselit.data.records import AnnotationSet, PoseRecord
from poselit.evaluate import evaluate_poses
from poselit.skeletons import LSP
from poselit.visualize import (
    CURVE_COLORS,
    SCORE_COLORS,
    SIDE_COLORS,
    draw_heatmaps,
    draw_skeleton,
    image_grid,
    marker_sizes,
    pck_curves,
    plot_pck_curve,
    save_image,
    score_alpha,
    score_color,
    side_by_side,
)

GRAY = 100


def pose(seed: int = 0, size: int = 64) -> np.ndarray:
    return np.random.default_rng(seed).uniform(8, size - 8, (14, 2))


def canvas(size: int = 64) -> np.ndarray:
    return np.full((size, size, 3), GRAY, np.uint8)


def test_annotation_is_opaque_in_side_colours_with_a_dark_outline():
    keypoints = pose()
    alone = np.where(np.arange(14) == 13, 2, 0)  # only the head top: no bone under it
    x, y = np.round(keypoints[13]).astype(int)
    drawn = draw_skeleton(canvas(), keypoints, alone, LSP, radius=3)
    assert tuple(drawn[y, x]) == SIDE_COLORS["center"]
    assert (drawn[y, x + 4] < 60).all()  # the 1 px outline just outside the radius
    ends = np.where(np.isin(np.arange(14), (2, 1)), 2, 0)  # right hip - right knee: a right bone
    bone = draw_skeleton(canvas(), keypoints, ends, LSP, radius=0)
    x, y = np.round(keypoints[1:3].mean(axis=0)).astype(int)
    assert tuple(bone[y, x]) == SIDE_COLORS["right"]


def test_score_colours_run_red_yellow_green_and_opacity_never_falls_below_the_minimum():
    assert [score_color(s) for s in (0.0, 0.5, 1.0)] == list(SCORE_COLORS)
    assert score_color(-1.0) == SCORE_COLORS[0] and score_color(1.5) == SCORE_COLORS[-1]
    assert score_color(0.25) == tuple(round((a + b) / 2) for a, b in zip(SCORE_COLORS[0], SCORE_COLORS[1]))
    np.testing.assert_allclose(score_alpha(np.array([-1.0, 0.0, 0.2, 1.0, 2.0]), 0.4), [0.4, 0.4, 0.52, 1.0, 1.0])


def test_predicted_joints_take_their_score_colour_and_fade_with_it():
    keypoints = pose()
    alone = np.where(np.arange(14) == 13, 2, 0)
    x, y = np.round(keypoints[13]).astype(int)
    for score, alpha in ((1.0, 1.0), (0.5, 0.75), (0.0, 0.5)):  # min_alpha 0.5
        drawn = draw_skeleton(canvas(), keypoints, alone, LSP, scores=np.full(14, score), min_alpha=0.5)
        np.testing.assert_allclose(drawn[y, x], alpha * np.array(score_color(score)) + (1 - alpha) * GRAY, atol=1.5)
    # a bone keeps its side's colour and takes the opacity of its weaker end
    ends = np.where(np.isin(np.arange(14), (12, 13)), 2, 0)  # neck - head top
    scores = np.where(np.arange(14) == 12, 0.0, 1.0)
    bone = draw_skeleton(canvas(), keypoints, ends, LSP, scores=scores, radius=0, min_alpha=0.5)
    x, y = np.round(keypoints[12:14].mean(axis=0)).astype(int)
    np.testing.assert_allclose(bone[y, x], 0.5 * np.array(SIDE_COLORS["center"]) + 0.5 * GRAY, atol=1.5)


def test_a_low_score_skeleton_stays_visible_on_a_white_background():
    """The demo's complaint: bones drawn at their joints' opacity vanished on snow (0.2 x
    orange on white differs by ~50 levels). Every bone of a skeleton scored 0.02 differs from
    white by at least 90 levels in some channel at its middle."""
    angles = np.linspace(0, 2 * np.pi, 14, endpoint=False)
    keypoints = np.stack([32 + 24 * np.cos(angles), 32 + 24 * np.sin(angles)], axis=1)  # a ring: bones apart
    white = np.full((64, 64, 3), 255, np.uint8)
    drawn = draw_skeleton(white, keypoints, np.full(14, 2), LSP, scores=np.full(14, 0.02), radius=0, thickness=3)
    for a, b in LSP.limbs:
        x, y = np.round((keypoints[a] + keypoints[b]) / 2).astype(int)
        assert (255 - drawn[y, x].astype(int)).max() >= 90, (LSP.joints[a], LSP.joints[b], drawn[y, x])


def test_skeleton_skips_unannotated_joints_and_points_outside():
    keypoints = pose()
    assert (draw_skeleton(canvas(), keypoints, np.zeros(14), LSP) == GRAY).all()
    far = draw_skeleton(canvas(), keypoints + 1000, np.full(14, 2), LSP, scores=np.full(14, 0.5))
    assert (far == GRAY).all()


def test_marker_sizes_grow_with_the_image():
    assert marker_sizes((64, 64, 3)) == marker_sizes((300, 200)) == (3, 2)
    assert marker_sizes((1200, 900)) == (12, 8)


def test_heatmap_grid_puts_each_joint_hottest_at_its_peak():
    maps = np.zeros((14, 16, 16), np.float32)
    for j in range(14):
        maps[j, j, 15 - j] = 1.0 + j  # one peak per joint, the last one strongest
    image = np.zeros((64, 64, 3), np.uint8)
    grid = draw_heatmaps(image, torch.from_numpy(maps), LSP, columns=4, alpha=1.0)
    assert grid.shape == (4 * 64 + 3 * 2, 4 * 64 + 3 * 2, 3)
    last = grid[3 * 66 : 3 * 66 + 64, 66 : 66 + 64].astype(int)  # joint 13: row 3, column 1
    red = last[..., 0] - last[..., 2]
    y, x = np.unravel_index(np.argmax(red[16:]), red[16:].shape)  # below the title
    assert abs(x - (4 * (15 - 13) + 1.5)) <= 2 and abs(y + 16 - (4 * 13 + 1.5)) <= 2
    with pytest.raises(ValueError, match=r"\(14, h, w\)"):
        draw_heatmaps(image, maps[:3], LSP)
    with pytest.raises(ValueError, match="only heatmap methods"):  # PosePrediction.heatmaps of a coordinate method
        draw_heatmaps(image, None, LSP)


def test_side_by_side_is_truth_then_prediction():
    truth, guess, visibility = pose(0), pose(1), np.r_[np.full(7, 2), np.full(7, 1)]
    pair = side_by_side(canvas(), guess, truth, LSP, visibility=visibility, scores=np.full(14, 0.7))
    assert pair.shape == (64, 130, 3)
    assert (pair[:, :64] == draw_skeleton(canvas(), truth, visibility, LSP)).all()
    assert (pair[:, 66:] == draw_skeleton(canvas(), guess, np.full(14, 2), LSP, scores=np.full(14, 0.7))).all()


def lsp_report(label: str, noise: float, n: int = 20):
    """An evaluation report of noisy predictions on generated LSP records."""
    rng = np.random.default_rng(0)
    records = []
    for i in range(n):
        keypoints = rng.uniform(0, 100, (14, 2))
        norm = LSP.torso_size(keypoints, np.full(14, 2))
        records.append(PoseRecord(f"im{i}.jpg", keypoints, np.full(14, 2), [50, 50], 0.5, norm, LSP, f"j#{i}"))
    truth = np.stack([r.keypoints for r in records])
    annotations = AnnotationSet(records, LSP, "generated")
    return evaluate_poses(annotations, truth + rng.normal(0, noise, truth.shape), dataset="lsp:test", label=label)


def test_pck_curve_plot_draws_one_line_per_report():
    good, bad = lsp_report("good", 2.0), lsp_report("bad", 15.0)
    assert [label for label, _ in pck_curves([good, bad])] == ["good", "bad"]
    assert [label for label, _ in pck_curves(good.results[0])] == ["PCK@0.2"]
    plot = plot_pck_curve([good, bad], size=(300, 400))
    assert plot.shape == (300, 400, 3) and plot.dtype == np.uint8
    for color in CURVE_COLORS[:2]:
        assert (np.abs(plot.astype(int) - color).sum(axis=-1) < 30).sum() > 100, color
    assert not (np.abs(plot.astype(int) - CURVE_COLORS[2]).sum(axis=-1) < 30).any()
    with pytest.raises(ValueError, match="no PCK curve"):
        pck_curves([r for r in good.results if r.curve is None])


def test_pck_curve_without_matplotlib_says_which_extra_to_install(monkeypatch, tmp_path, capsys, synthetic_lsp):
    import json
    import sys

    from poselit.cli import main
    from poselit.data import read_annotations
    from poselit.evaluate import predictions_document
    from poselit.extras import MissingDependencyError

    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)  # as if not installed
    with pytest.raises(MissingDependencyError, match=r"plot_pck_curve needs matplotlib.*pip install -e \"\.\[plot\]\""):
        plot_pck_curve(lsp_report("good", 2.0))
    spec = f"lsp:test@{synthetic_lsp}"
    annotations = read_annotations(spec)
    truth = np.stack([r.keypoints for r in annotations.records])
    predictions = tmp_path / "p.json"
    predictions.write_text(json.dumps(predictions_document(annotations, truth, dataset=spec)))
    assert main(["eval", str(predictions), "--plot", str(tmp_path / "pck.png")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("poselit: error: plot_pck_curve needs matplotlib") and "Traceback" not in err


def test_image_grid_checks_sizes():
    with pytest.raises(ValueError, match="expected"):
        image_grid([canvas(64), canvas(32)])


def test_save_image_writes_rgb_and_names_a_failed_write(tmp_path):
    image = np.zeros((8, 12, 3), np.uint8)
    image[..., 0] = 200  # red in RGB
    path = save_image(image, tmp_path / "new" / "folder" / "red.png")
    assert np.array_equal(cv2.imread(str(path))[..., ::-1], image)
    with pytest.raises(OSError, match=r"red\.xyz: could not encode the image"):
        save_image(image, tmp_path / "red.xyz")
