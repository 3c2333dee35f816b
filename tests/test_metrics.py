"""PCK / PCKh / AUC / PCP / visibility AP: hand-computed cases, protocol choices, DDP merging,
and the real MPII valid / LSP test splits with a known perturbation."""

import json
import math
import socket

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from poselit.data import read_annotations
from poselit.metrics import (
    CocoPeople,
    KeypointAP,
    PCK,
    PCP,
    VisibilityAP,
    average_precision,
    pck_parts,
    pcp_sticks,
    pose_metrics,
    threshold_grid,
    total_joints,
)
from poselit.skeletons import COCO, LSP, MPII, Skeleton

J = LSP.index


def batch(target, preds=None, visibility=None, norm=None):
    """Tensors for one update: target (B, K, 2); preds default to the target."""
    target = torch.as_tensor(np.asarray(target, np.float64))
    preds = target.clone() if preds is None else torch.as_tensor(np.asarray(preds, np.float64))
    b, k = target.shape[:2]
    visibility = torch.full((b, k), 2) if visibility is None else torch.as_tensor(visibility)
    norm = torch.full((b,), 100.0) if norm is None else torch.as_tensor(norm, dtype=torch.float64)
    return preds, target, visibility, norm


def lsp_pose():
    """An LSP ground truth whose PCP sticks have round lengths (see test_pcp_hand_computed)."""
    pose = np.zeros((14, 2))
    for name, xy in {
        "right_shoulder": (0, 0),
        "right_elbow": (0, 10),
        "right_wrist": (0, 30),
        "left_shoulder": (50, 0),
        "left_elbow": (50, 10),
        "left_wrist": (50, 30),
        "right_hip": (10, 60),
        "right_knee": (10, 80),
        "right_ankle": (10, 100),
        "left_hip": (40, 60),
        "left_knee": (40, 80),
        "left_ankle": (40, 100),
        "neck": (25, -5),
        "head_top": (25, -25),
    }.items():
        pose[J(name)] = xy
    return pose


# --- PCK --------------------------------------------------------------------------------------


def test_pck_threshold_is_inclusive_and_parts_average_left_and_right():
    target = np.zeros((1, 14, 2))
    preds = target + 1000.0  # every joint far away ...
    preds[0, J("right_ankle")] = (12, 16)  # ... except: exactly 20 px = 0.2 x 100 -> correct (<=)
    preds[0, J("right_knee")] = (19.99, 0)  # just under
    preds[0, J("right_hip")] = (20.01, 0)  # just over
    preds[0, J("left_hip")] = (0, 0)  # exact
    metric = PCK(LSP).to(torch.bfloat16)  # a module cast (bf16 training) must not round the grid
    metric.update(*batch(target, preds))
    result = metric.result()
    assert result.metric == "PCK@0.2"
    assert result.items["right_ankle"] == 100 and result.items["right_knee"] == 100
    assert result.items["right_hip"] == 0 and result.items["left_hip"] == 100
    assert result.columns["Ankle"] == 50  # (right 100 + left 0) / 2
    assert result.columns["Knee"] == 50 and result.columns["Hip"] == 50
    assert result.columns["Head"] == 0 and result.columns["Wrist"] == 0
    assert result.columns["Total"] == pytest.approx(100 * 3 / 14)
    assert list(result.columns) == [
        "Head",
        "Shoulder",
        "Elbow",
        "Wrist",
        "Hip",
        "Knee",
        "Ankle",
        "Total",
        "AUC",
    ]


def test_pck_ignores_not_annotated_joints_and_averages_percentages_not_counts():
    target = np.zeros((2, 14, 2))
    preds = target.copy()
    visibility = np.full((2, 14), 2)
    visibility[1, J("left_wrist")] = 0  # left wrist annotated once ...
    preds[0, J("left_wrist")] = (50, 0)  # ... and missed there: 0 / 1
    preds[1, J("left_wrist")] = (1e6, 1e6)  # not annotated: ignored whatever it is
    visibility[:, J("neck")] = 0  # never annotated
    preds[:, J("neck")] = np.nan
    metric = PCK(LSP)
    metric.update(*batch(target, preds, visibility))
    result = metric.result()
    assert result.counts["left_wrist"] == 1 and result.counts["right_wrist"] == 2
    assert result.counts["neck"] == 0 and math.isnan(result.items["neck"])
    assert result.columns["Wrist"] == 50  # mean(100, 0), not the pooled 2 / 3
    assert result.columns["Head"] == 100  # only head_top was scored
    assert result.columns["Total"] == 96  # 2 x 13 joints (no neck) - 1 left wrist = 25 scored, 1 missed


def test_pckh_total_excludes_pelvis_and_thorax_and_head_is_neck_and_top():
    target = np.zeros((1, 16, 2))
    preds = target.copy()
    preds[0, MPII.index("pelvis")] = preds[0, MPII.index("thorax")] = (500, 0)
    preds[0, MPII.index("head_top")] = (60, 0)  # 0.6 x head size 100: wrong
    metric = PCK(MPII)
    metric.update(*batch(target, preds))
    result = metric.result()
    assert result.metric == "PCKh@0.5"
    assert result.items["pelvis"] == 0 and result.items["thorax"] == 0
    assert result.columns["Head"] == 50  # mean(upper_neck 100, head_top 0)
    assert result.columns["Total"] == pytest.approx(100 * 13 / 14)
    assert "Pelvis" not in result.columns and "Thorax" not in result.columns


def test_auc_is_the_normalised_trapezoid_over_0_to_0_5():
    # One scored joint at exactly 0.25 x head size: the Total curve is 0 below t = 0.25 and
    # 100 from there. Trapezoids on the 0.01 grid: 0.01 x 100 / 2 + 0.25 x 100 = 25.5,
    # divided by the range 0.5 -> 51.
    target = np.zeros((1, 16, 2))
    preds = target.copy()
    visibility = np.zeros((1, 16), int)
    visibility[0, MPII.index("head_top")] = 1  # occluded joints are scored too
    preds[0, MPII.index("head_top")] = (15, 20)  # 25 px
    for threshold, total in ((None, 100.0), (0.1, 0.0)):
        metric = PCK(MPII, threshold=threshold)
        metric.update(*batch(target, preds, visibility))
        result = metric.result()
        assert result.columns["AUC"] == pytest.approx(51.0, abs=1e-9)  # range stays 0..0.5
        assert result.columns["Total"] == total
    assert result.metric == "PCKh@0.1"
    assert result.curve["threshold"][25] == 0.25 and result.curve["Total"][24:26] == [0.0, 100.0]


def test_degenerate_normaliser_is_reported_not_divided_by():
    target = np.zeros((4, 14, 2))
    visibility = np.full((4, 14), 2)
    visibility[3] = 0  # a record with nothing annotated is not degenerate: nothing to score
    metric = PCK(LSP)
    metric.update(*batch(target, target + 1.0, visibility, norm=[100.0, 0.0, float("nan"), 0.0]))
    result = metric.result()
    assert result.degenerate == 2
    assert result.counts["neck"] == 1 and result.columns["Total"] == 100
    assert any("2 records with a zero or unknown normaliser were not scored" in n for n in result.notes())


def test_nan_prediction_is_a_miss():
    target = np.zeros((1, 14, 2))
    preds = target.copy()
    preds[0, 0] = np.nan
    metric = PCK(LSP)
    metric.update(*batch(target, preds))
    assert metric.result().items["right_ankle"] == 0


def test_ground_truth_scores_100_and_far_predictions_0_for_every_metric():
    rng = np.random.default_rng(0)
    target = np.tile(lsp_pose(), (5, 1, 1)) + rng.normal(size=(5, 14, 2))
    visible = np.tile([2, 1], (5, 7))
    for preds, expected in ((target, 100.0), (target + 1e4, 0.0)):
        metrics = pose_metrics(LSP, scores=True)
        p, t, v, n = batch(target, preds, visible)
        metrics.update(preds=p, target=t, visibility=v, norm=n, scores=v.double())
        values = metrics.compute()
        assert len(values) == 9 + 14 + 7 + 10 + 1
        for key, value in values.items():
            assert value == (100.0 if key == "Visibility AP/AP" else expected), key


def test_bad_shapes_and_thresholds_are_clear_errors():
    metric = PCK(LSP)
    with pytest.raises(ValueError, match=r"\(B, 14, 2\).*'lsp'.*\(2, 16, 2\)"):
        metric.update(*batch(np.zeros((2, 16, 2)), norm=[1.0, 1.0]))
    with pytest.raises(ValueError, match="norm of shape"):
        metric.update(*batch(np.zeros((2, 14, 2)), norm=[1.0, 1.0, 1.0]))
    with pytest.raises(ValueError, match=r"0.123 is not on the grid 0, 0.01, ..., 0.2"):
        PCK(LSP, threshold=0.123)
    with pytest.raises(ValueError, match="0.255 must be a positive multiple of the grid step 0.01"):
        PCK(LSP, threshold=0.255)
    with pytest.raises(ValueError, match="no PCP stick"):
        PCP(Skeleton("dots", ("a", "b"), ()))


def test_threshold_grid_hits_its_end_points_exactly():
    grid = threshold_grid(0.5)
    assert len(grid) == 51 and grid[0] == 0 and grid[-1] == 0.5 and grid[10] == 0.1
    assert len(threshold_grid(0.2)) == 21 and threshold_grid(0.2)[-1] == 0.2


def test_parts_and_total_come_from_joint_names():
    assert pck_parts(MPII)["Head"] == (MPII.index("upper_neck"), MPII.index("head_top"))
    assert pck_parts(LSP)["Head"] == (J("neck"), J("head_top"))
    assert [MPII.joints[i] for i in set(range(16)) - set(total_joints(MPII))] == ["pelvis", "thorax"]
    assert total_joints(LSP) == tuple(range(14))
    assert "Head" not in pck_parts(COCO) and len(pck_parts(COCO)) == 6  # face joints: per joint only
    assert {s.name for s in pcp_sticks(COCO)} == {s.name for s in pcp_sticks(LSP)} - {"head"}
    assert len(pcp_sticks(MPII)) == 10


def test_custom_skeleton_gets_per_joint_results_and_a_total():
    skeleton = Skeleton("paw", ("left_claw", "right_claw", "tail"), ((0, 2), (1, 2)), norm="bbox")
    metric = PCK(skeleton)
    target = np.zeros((1, 3, 2))
    metric.update(*batch(target, target + [[0, 0], [0, 30], [0, 0]]))
    result = metric.result()
    assert result.columns == {"Total": pytest.approx(200 / 3), "AUC": result.columns["AUC"]}
    assert result.items == {"left_claw": 100, "right_claw": 0, "tail": 100}
    assert "pcp" not in pose_metrics(skeleton)


# --- PCP --------------------------------------------------------------------------------------


def test_pcp_hand_computed():
    # Stick lengths of lsp_pose(): upper arms 10, forearms 20, legs 20, head 20, torso 60
    # (mid-hips (25, 60) to mid-shoulders (25, 0)).
    target = lsp_pose()[None]
    preds = target.copy()
    preds[0, J("right_wrist"), 1] += 10.0  # = 0.5 x forearm 20: correct (<=)
    preds[0, J("left_elbow"), 1] += 5.001  # > 0.5 x upper arm 10: wrong; forearm still fine
    preds[0, J("head_top"), 0] += 10.0  # = 0.5 x head 20: correct
    preds[0, J("left_ankle"), 0] += 10.5  # > 0.5 x lower leg 20: wrong
    preds[0, J("right_hip"), 1] += 10.0  # upper leg limit 10: correct; torso: mid-hip moves 5 of 30
    metric = PCP(LSP)
    metric.update(*batch(target, preds)[:3])
    result = metric.result()
    assert result.columns == {
        "Torso": 100,
        "Upper leg": 100,
        "Lower leg": 50,
        "Upper arm": 50,
        "Forearm": 100,
        "Head": 100,
        "Total": 80,
    }
    assert result.items["left_upper_arm"] == 0 and result.items["left_lower_leg"] == 0


def test_pcp_torso_uses_midpoints_and_skips_unannotated_or_zero_length_sticks():
    target = np.stack([lsp_pose()] * 3)
    preds = target.copy()
    preds[0, J("left_hip"), 1] += 59.0  # mid-hips move 29.5 <= 30: torso correct ...
    preds[1, J("left_hip"), 1] += 61.0  # ... 30.5 > 30: wrong (and so is the left upper leg)
    visibility = np.full((3, 14), 2)
    visibility[2, J("left_wrist")] = 0  # left forearm not scored in record 2
    target[2, J("head_top")] = target[2, J("neck")]  # zero-length head stick in record 2
    metric = PCP(LSP)
    metric.update(*batch(target, preds, visibility)[:3])
    result = metric.result()
    assert result.items["torso"] == pytest.approx(200 / 3)
    assert result.counts["left_forearm"] == 2 and result.counts["head"] == 2
    assert result.degenerate == 1
    assert any("1 sticks of zero length" in n for n in result.notes())


# --- visibility AP ----------------------------------------------------------------------------


def test_average_precision_hand_computed():
    # Ranked: visible, occluded, visible, occluded -> P@1 = 1 (R 0.5), P@3 = 2/3 (R 1).
    scores = torch.tensor([0.9, 0.8, 0.7, 0.1])
    labels = torch.tensor([True, False, True, False])
    assert average_precision(scores, labels) == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)
    # A tie is one threshold: precision 1/2 at recall 1.
    assert average_precision(torch.tensor([0.5, 0.5]), torch.tensor([True, False])) == 0.5
    assert math.isnan(average_precision(torch.tensor([0.5]), torch.tensor([False])))


def test_visibility_ap_ranks_annotated_joints_only():
    metric = VisibilityAP()
    scores = torch.tensor([[0.9, 0.8, 1.0], [0.7, 0.1, float("nan")]])
    visibility = torch.tensor([[2, 1, 0], [2, 1, 1]])  # the 1.0 is not annotated; NaN ranks last
    metric.update(scores, visibility)
    result = metric.result()
    assert result.columns["AP"] == pytest.approx(100 * (0.5 + 0.5 * 2 / 3))
    assert result.counts == {"visible": 2, "occluded": 3}
    only_visible = VisibilityAP()
    only_visible.update(torch.ones(1, 3), torch.full((1, 3), 2))
    assert math.isnan(only_visible.result().columns["AP"])


# --- distributed accumulation -----------------------------------------------------------------


def random_inputs(n=40, seed=0):
    rng = np.random.default_rng(seed)
    target = np.tile(lsp_pose(), (n, 1, 1)) + rng.normal(scale=3, size=(n, 14, 2))
    preds = target + rng.normal(scale=6, size=target.shape)
    visibility = rng.integers(0, 3, size=(n, 14))
    norm = rng.uniform(20, 60, size=n)
    norm[::7] = 0.0
    scores = torch.as_tensor(rng.random((n, 14)))
    return (*batch(target, preds, visibility, norm), scores)


def updated(metric, inputs):
    p, t, v, n, s = inputs
    metric.update(*{PCK: (p, t, v, n), PCP: (p, t, v), VisibilityAP: (s, v)}[type(metric)])
    return metric


def halves(inputs):
    n = len(inputs[0])
    return [tuple(x[: n // 2] for x in inputs), tuple(x[n // 2 :] for x in inputs)]


@pytest.mark.parametrize("make", [lambda: PCK(LSP), lambda: PCP(LSP), VisibilityAP], ids=["PCK", "PCP", "AP"])
def test_merged_halves_equal_one_pass(make):
    inputs = random_inputs()
    single = updated(make(), inputs).result()
    first, second = (updated(make(), part) for part in halves(inputs))
    first.merge_state(second)
    assert first.result() == single


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank, port, inputs, results):
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    try:
        metrics = [PCK(LSP), PCP(LSP), VisibilityAP()]
        part = halves(inputs)[rank]
        results[rank] = [updated(m, part).result() for m in metrics]
    finally:
        dist.destroy_process_group()


def test_ddp_sync_equals_one_pass():
    inputs = random_inputs(seed=1)
    single = [updated(m, inputs).result() for m in (PCK(LSP), PCP(LSP), VisibilityAP())]
    with mp.Manager() as manager:
        results = manager.dict()
        mp.spawn(_ddp_worker, args=(_free_port(), inputs, results), nprocs=2, join=True)
        assert results[0] == single and results[1] == single


@pytest.mark.gpu
def test_metrics_on_cuda_match_cpu():
    inputs = random_inputs(seed=2)
    for make in (lambda: PCK(LSP), lambda: PCP(LSP), VisibilityAP):
        on_cpu = updated(make(), inputs).result()
        on_gpu = updated(make().to("cuda"), tuple(x.to("cuda") for x in inputs)).result()
        assert on_gpu.columns == pytest.approx(on_cpu.columns, rel=1e-12)  # GPU sums may reorder
        assert on_gpu.items == pytest.approx(on_cpu.items, rel=1e-12) and on_gpu.counts == on_cpu.counts


# --- real data --------------------------------------------------------------------------------

GOLDEN = 2.399963229728653  # golden angle: well-spread perturbation directions


def perturb(records, levels):
    """Ground truth moved by levels[(7 i + 3 k) % len] x the record's normaliser, in a
    deterministic direction. Returns predictions (N, K, 2) and the factors (N, K)."""
    n, k = len(records), records[0].skeleton.num_joints
    i, j = np.meshgrid(np.arange(n), np.arange(k), indexing="ij")
    factor = np.asarray(levels)[(7 * i + 3 * j) % len(levels)]
    angle = GOLDEN * (i * k + j)
    norm = np.array([r.norm for r in records])[:, None]
    offset = np.stack([np.cos(angle), np.sin(angle)], -1) * (factor * norm)[..., None]
    return np.stack([r.keypoints for r in records]).astype(np.float64) + offset, factor


def expected_pck(factor, annotated, joints, t, names, parts):
    """Per-joint, per-part, Total and AUC (over 0..t) straight from the perturbation factors."""
    per_joint = dict(zip(names, 100 * ((factor <= t) & annotated).sum(0) / annotated.sum(0)))
    cols = {part: np.mean([per_joint[n] for n in members]) for part, members in parts.items()}
    grid = np.arange(round(t * 100) + 1) / 100
    ann = annotated[:, joints]
    curve = [100 * ((factor[:, joints] <= g) & ann).sum() / ann.sum() for g in grid]
    cols["Total"] = 100 * ((factor[:, joints] <= t) & ann).sum() / ann.sum()
    cols["AUC"] = np.trapezoid(curve, grid) / t
    return per_joint, cols


PARTS = {
    "Shoulder": ["left_shoulder", "right_shoulder"],
    "Elbow": ["left_elbow", "right_elbow"],
    "Wrist": ["left_wrist", "right_wrist"],
    "Hip": ["left_hip", "right_hip"],
    "Knee": ["left_knee", "right_knee"],
    "Ankle": ["left_ankle", "right_ankle"],
}


def test_real_lsp_test_split_with_known_perturbation(data_root):
    records = read_annotations("lsp:test", data_root).records
    # Factors of the torso, all at least 0.003 away from the 0.01 threshold grid.
    preds, factor = perturb(records, (0.0, 0.043, 0.097, 0.155, 0.196, 0.204, 0.33, 0.61, 1.3))
    metric = PCK(LSP)
    metric.update(
        *batch(
            np.stack([r.keypoints for r in records]),
            preds,
            np.stack([r.visibility for r in records]),
            [r.norm for r in records],
        )
    )
    result = metric.result()
    per_joint, columns = expected_pck(
        factor,
        np.ones_like(factor, bool),
        list(range(14)),
        0.2,
        LSP.joints,
        {"Head": ["neck", "head_top"], **PARTS},
    )
    assert result.items == pytest.approx(per_joint, abs=1e-9)
    assert result.columns == pytest.approx(columns, abs=1e-9)
    assert 40 < result.columns["Total"] < 70  # the perturbation is not trivially all/none


def test_real_lsp_pcp_head_sticks(data_root):
    records = read_annotations("lsp:test", data_root).records
    target = np.stack([r.keypoints for r in records]).astype(np.float64)
    preds = target.copy()
    head = target[:, J("head_top")] - target[:, J("neck")]
    factor = np.array([0.2, 0.45, 0.55, 0.9])[np.arange(len(records)) % 4]
    preds[:, J("head_top")] += head * factor[:, None]  # along the stick: error = factor x length
    metric = PCP(LSP)
    metric.update(*batch(target, preds, np.stack([r.visibility for r in records]))[:3])
    result = metric.result()
    assert result.columns["Head"] == pytest.approx(100 * (factor <= 0.5).mean())
    assert all(v == 100 for k, v in result.columns.items() if k not in ("Head", "Total"))
    assert result.columns["Total"] == pytest.approx(
        100 * (9 * 1000 - 2 + (factor <= 0.5).sum()) / (10 * 1000 - 2)
    )
    assert result.degenerate == 2  # two zero-length right-leg sticks in the LSP test split


def test_real_mpii_valid_with_known_perturbation(data_root):
    records = read_annotations("mpii:valid", data_root).records
    assert len(records) == 2958
    # Factors of the head size, all at least 0.003 away from the 0.01 threshold grid.
    preds, factor = perturb(records, (0.0, 0.133, 0.274, 0.417, 0.493, 0.507, 0.771, 1.3))
    visibility = np.stack([r.visibility for r in records])
    metric = PCK(MPII)
    metric.update(
        *batch(np.stack([r.keypoints for r in records]), preds, visibility, [r.norm for r in records])
    )
    result = metric.result()
    joints = [i for i, n in enumerate(MPII.joints) if n not in ("pelvis", "thorax")]
    per_joint, columns = expected_pck(
        factor, visibility > 0, joints, 0.5, MPII.joints, {"Head": ["upper_neck", "head_top"], **PARTS}
    )
    assert result.items == pytest.approx(per_joint, abs=1e-9, nan_ok=True)
    assert result.columns == pytest.approx(columns, abs=1e-9)
    assert result.counts["head_top"] == (visibility[:, MPII.index("head_top")] > 0).sum()
    assert result.degenerate == 0


# --- COCO keypoint evaluation (OKS AP / AR) ---------------------------------------------


def _people(keypoints, visibility, area, image=None, box=None, crowd=None) -> CocoPeople:
    keypoints = np.asarray(keypoints, np.float64)
    n = len(keypoints)
    return CocoPeople(
        np.zeros(n, np.int64) if image is None else np.asarray(image),
        keypoints,
        np.asarray(visibility, np.float64),
        np.asarray(area, np.float64),
        np.full((n, 4), np.nan) if box is None else np.asarray(box, np.float64),
        np.zeros(n, bool) if crowd is None else np.asarray(crowd),
    )


def test_oks_hand_computed_over_labelled_joints_and_outside_the_box_without_them():
    from poselit.metrics import object_keypoint_similarity

    sigmas = np.array([0.05, 0.1])
    person = _people([[[10.0, 10.0], [20.0, 20.0]]], [[2, 0]], [400.0])
    pred = np.array([[[13.0, 14.0], [99.0, 99.0]]])  # 5 px off on the labelled joint
    expected = np.exp(-25 / (2 * 400 * (2 * 0.05) ** 2))  # exp(-d^2 / (2 s^2 k^2)), k = 2 sigma
    assert object_keypoint_similarity(pred, person, sigmas)[0, 0] == pytest.approx(expected, rel=1e-12)
    # No labelled joint: distance outside the box [x - w, x + 2w] x [y - h, y + 2h] (here [0, 30]^2).
    region = _people([[[0.0, 0.0]] * 2], [[0, 0]], [400.0], box=[[10, 10, 10, 10]])
    inside_and_4_px_out = np.array([[[5.0, 25.0], [34.0, 30.0]]])
    expected = (1 + np.exp(-16 / (2 * 400 * 0.2**2))) / 2
    assert object_keypoint_similarity(inside_and_4_px_out, region, sigmas)[0, 0] == pytest.approx(expected, rel=1e-12)


def test_matching_prefers_people_over_ignore_regions_and_crowds_absorb_many():
    from poselit.metrics import match_predictions

    oks = np.array([[0.6, 0.9], [0.7, 0.8], [0.1, 0.95]])  # columns: a person, then a crowd region
    matched, ignored = match_predictions(oks, np.array([False, True]), np.array([False, True]), 0.5)
    # The first takes the person although the crowd is closer; the rest fall to the crowd (ignored).
    assert matched.tolist() == [True, True, True] and ignored.tolist() == [False, True, True]
    matched, ignored = match_predictions(oks, np.array([False, False]), np.array([False, False]), 0.5)
    assert matched.tolist() == [True, True, False]  # one prediction per person


def test_keypoint_ap_hand_computed_ranking():
    # Two people on one image, a third on another; the best-scored prediction is wrong.
    target = torch.tensor([[[0.0, 0.0]], [[100.0, 0.0]], [[0.0, 0.0]]])
    preds = target.clone()
    preds[0, 0, 0] = 50.0  # far from both people of image 0
    metric = KeypointAP(Skeleton("dot", ("dot",), ()), sigmas=[0.1])
    metric.update(preds, target, torch.full((3, 1), 2), torch.full((3,), 100.0), torch.tensor([0, 0, 1]),
                  scores=torch.tensor([[0.9], [0.5], [0.4]]))
    result = metric.result()
    # Ranked: miss, hit, hit: precision 0, 1/2, 2/3 at recall 0, 1/3, 2/3. Interpolated (the best
    # precision at any recall >= r), it is 2/3 at the 67 recall points 0..0.66 and 0 from 0.67 on.
    precision = np.r_[np.full(67, 2 / 3), np.zeros(34)]
    assert result.columns["AP"] == pytest.approx(100 * precision.mean())
    assert result.columns["AR"] == pytest.approx(100 * 2 / 3)
    assert math.isnan(result.columns["APm"]) and result.warnings == ()  # no person of 32^2..96^2 px^2
    defaulted = KeypointAP(Skeleton("dot", ("dot",), ()))
    assert "default OKS sigma 0.067" in defaulted.result().warnings[0]
    with pytest.raises(ValueError, match="OKS sigmas: expected 1 positive numbers"):
        KeypointAP(Skeleton("dot", ("dot",), ()), sigmas=[0.1, 0.2])


def _pycocotools_stats(path, results) -> np.ndarray:
    import contextlib
    import io

    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        truth = COCO(str(path))
        evaluation = COCOeval(truth, truth.loadRes(results), "keypoints")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return evaluation.stats


@pytest.mark.parametrize("seed", range(4))
def test_oks_ap_breaks_score_ties_across_images_as_pycocotools(tmp_path, seed):
    """Equal scores on different images: COCOeval ranks them by ascending image id, then in
    the predictions' order within an image (a stable sort per image, images concatenated in
    id order, a stable sort of all). Here the ids are not in file order, an image's people
    are not together, and each prediction is a hit or a miss scored 0.5 or 0.75, so that
    another tie order changes AP (images pooled in descending id order, or an image's tied
    predictions taken in reverse order, fail this test)."""
    from poselit.data.readers.coco import read_coco
    from poselit.evaluate import evaluate_poses

    rng = np.random.default_rng(seed)
    image_ids = [12, 3, 40, 7, 25]
    people = [(int(rng.choice(image_ids)), n + 1) for n in range(14)]  # (image id, annotation id)
    truth = {n: np.c_[rng.uniform(100, 500, (17, 2)), np.full(17, 2)] for _, n in people}
    area = {n: float(rng.uniform(40**2, 150**2)) for _, n in people}
    used = sorted({image for image, _ in people}, key=image_ids.index)
    path = tmp_path / "ties.json"
    path.write_text(json.dumps({
        "images": [{"id": i, "file_name": f"{i}.jpg", "width": 640, "height": 480} for i in used],
        "annotations": [
            {"id": n, "image_id": image, "category_id": 1, "iscrowd": 0, "area": area[n], "num_keypoints": 17,
             "bbox": [100.0, 100.0, 400.0, 300.0], "keypoints": truth[n].ravel().tolist()}
            for image, n in people
        ] + [  # a person without labelled joints: an ignore region of both evaluations
            {"id": 99, "image_id": used[0], "category_id": 1, "iscrowd": 0, "area": 900.0, "num_keypoints": 0,
             "bbox": [10.0, 10.0, 30.0, 30.0], "keypoints": [0] * 51}
        ],
        "categories": [{"id": 1, "name": "person", "keypoints": list(COCO.joints), "skeleton": []}],
    }))
    annotations = read_coco(path)
    assert [r.coco.image_id for r in annotations.records] == [image for image, _ in people]
    offsets = rng.choice([0.02, 0.4], len(people))[:, None, None]  # a hit or a miss
    preds = np.stack([truth[n][:, :2] for _, n in people])
    preds = preds + offsets * np.sqrt([area[n] for _, n in people])[:, None, None] * rng.standard_normal(preds.shape)
    score = rng.choice([0.5, 0.75], len(people))  # exact in binary: the means tie exactly
    report = evaluate_poses(annotations, preds, np.repeat(score[:, None], 17, axis=1))
    ours = np.array(list(next(r for r in report.results if r.metric == "OKS AP").columns.values())) / 100
    results = [
        {"image_id": image, "category_id": 1, "keypoints": np.c_[p, np.ones(17)].ravel().tolist(), "score": float(s)}
        for (image, _), p, s in zip(people, preds, score)
    ]
    np.testing.assert_allclose(ours, _pycocotools_stats(path, results), atol=1e-6, rtol=0)


@pytest.mark.parametrize("noise", [0.0, 0.05, 0.15, 0.4])
@pytest.mark.parametrize("with_scores", [True, False], ids=["scores", "tied"])
def test_real_coco_mini_oks_ap_equals_pycocotools(data_root, noise, with_scores):
    """Ground truth moved by known, area-scaled offsets: our ten numbers are pycocotools'
    COCOeval(iouType='keypoints') on the same predictions (tied scores included)."""
    from poselit.data.readers.coco import read_coco
    from poselit.evaluate import coco_people, evaluate_poses

    path = data_root / "coco-mini/person_keypoints.json"
    annotations = read_coco(path)
    records = annotations.records
    assert (len(records), len(annotations.ignored)) == (86, 61)  # 5 crowds, 56 without keypoints
    raw = {a["id"]: np.reshape(a["keypoints"], (-1, 3)) for a in json.loads(path.read_text())["annotations"]}
    truth = np.stack([raw[int(r.source.rsplit(" ", 1)[1].rstrip(")"))][:, :2] for r in records])
    rng = np.random.default_rng(7)
    scale = np.sqrt([r.coco.area for r in records])[:, None, None]
    preds = truth + noise * scale * rng.standard_normal(truth.shape)
    scores = rng.uniform(size=(len(records), 17)) if with_scores else None
    report = evaluate_poses(annotations, preds, scores)
    ours = np.array(list(next(r for r in report.results if r.metric == "OKS AP").columns.values())) / 100
    results = [
        {
            "image_id": r.coco.image_id,
            "category_id": 1,
            "keypoints": np.c_[p, np.ones(17)].ravel().tolist(),
            "score": 1.0 if scores is None else float(s.mean()),
        }
        for r, p, s in zip(records, preds, scores if scores is not None else preds)
    ]
    reference = _pycocotools_stats(path, results)
    np.testing.assert_allclose(ours, reference, atol=1e-6, rtol=0)
    if noise == 0.05 and with_scores:  # a level where the ignore regions change the numbers
        assert 0.1 < reference[0] < 0.9
        without = coco_people(annotations)[0]
        metrics = KeypointAP(COCO)
        metrics.update(torch.tensor(preds), torch.tensor(without.keypoints), torch.tensor(without.visibility),
                       torch.tensor(without.area), torch.tensor(without.image), torch.tensor(scores))
        assert abs(metrics.result().columns["AP"] / 100 - reference[0]) > 1e-3
