"""Skeletons: names, flip pairs derived from names, limbs, the LSP -> MPII slots."""

import numpy as np
import pytest

from poselit.skeletons import (
    COCO,
    LSP,
    MPII,
    Skeleton,
    flip_pairs_from_names,
    get_skeleton,
    lsp_to_mpii,
)

# The reference flip indices of the authors' code (original_implementations.md), 0-based.
MPII_FLIP = [5, 4, 3, 2, 1, 0, 6, 7, 8, 9, 15, 14, 13, 12, 11, 10]
LSP_FLIP_1_BASED_PAIRS = [(1, 6), (2, 5), (3, 4), (7, 12), (8, 11), (9, 10)]
COCO_FLIP = [0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15]


def test_builtin_sizes_and_flip_indices_match_the_reference_code():
    assert (MPII.num_joints, LSP.num_joints, COCO.num_joints) == (16, 14, 17)
    assert list(MPII.flip_index) == MPII_FLIP
    lsp_flip = list(range(14))
    for a, b in LSP_FLIP_1_BASED_PAIRS:
        lsp_flip[a - 1], lsp_flip[b - 1] = b - 1, a - 1
    assert list(LSP.flip_index) == lsp_flip
    assert list(COCO.flip_index) == COCO_FLIP


def test_limbs_form_the_kinematic_trees():
    assert len(MPII.limbs) == 15  # Belagiannis: 15 body-part heatmaps on MPII
    # every MPII joint is reached by some limb
    assert {j for limb in MPII.limbs for j in limb} == set(range(16))
    assert len(COCO.limbs) == 19


def test_lsp_torso_is_left_shoulder_to_right_hip():
    assert [LSP.joints[j] for j in LSP.torso] == ["left_shoulder", "right_hip"]
    kps = np.zeros((14, 2))
    kps[LSP.index("left_shoulder")] = (3, 4)
    vis = np.full(14, 2)
    assert LSP.torso_size(kps, vis) == pytest.approx(5.0)
    vis[LSP.index("right_hip")] = 0
    assert LSP.torso_size(kps, vis) == 0.0


def test_lsp_to_mpii_places_joints_as_the_bulat_evaluation_code():
    kps = np.arange(28, dtype=float).reshape(14, 2)
    vis = np.full(14, 2)
    out, out_vis = lsp_to_mpii(kps, vis)
    assert out.shape == (16, 2) and out_vis.shape == (16,)
    for name in ("right_ankle", "left_hip", "right_wrist", "left_wrist", "head_top"):
        assert (out[MPII.index(name)] == kps[LSP.index(name)]).all()
    assert (out[MPII.index("upper_neck")] == kps[LSP.index("neck")]).all()
    assert out_vis[MPII.index("pelvis")] == 0 and out_vis[MPII.index("thorax")] == 0
    assert (out[[6, 7]] == 0).all()
    batched, _ = lsp_to_mpii(np.stack([kps, kps]), np.stack([vis, vis]))
    assert batched.shape == (2, 16, 2)


def test_from_coco_category_derives_flip_pairs_and_limbs():
    category = {
        "name": "hand",
        "keypoints": ["wrist", "left_tip", "right_tip", "left_base", "right_base"],
        "skeleton": [[1, 2], [1, 3], [2, 4]],
    }
    skeleton = Skeleton.from_coco_category(category)
    assert skeleton.name == "hand" and skeleton.norm == "bbox"
    assert skeleton.limbs == ((0, 1), (0, 2), (1, 3))
    assert skeleton.flip_pairs == ((1, 2), (3, 4))
    assert skeleton.flip_index == (0, 2, 1, 4, 3)
    explicit = Skeleton.from_coco_category({**category, "flip_pairs": [[1, 2]]})
    assert explicit.flip_pairs == ((1, 2),)


@pytest.mark.parametrize(
    "category, message",
    [
        ({"name": "x", "keypoints": []}, "non-empty list"),
        ({"name": "x", "keypoints": ["a", "b"], "skeleton": [[1, 3]]}, r"\[1, 3\] is not a pair"),
        ({"name": "x", "keypoints": ["left_a", "b"]}, "no mirrored partner 'right_a'"),
        ({"name": "x", "keypoints": ["a", "a"]}, "duplicate joint names"),
    ],
)
def test_bad_categories_are_rejected_with_the_reason(category, message):
    with pytest.raises(ValueError, match=message):
        Skeleton.from_coco_category(category)


def test_lookups_suggest_close_names():
    assert get_skeleton("lsp") is LSP and get_skeleton(MPII) is MPII
    with pytest.raises(KeyError, match="did you mean mpii"):
        get_skeleton("mpi")
    with pytest.raises(KeyError, match="did you mean left_knee"):
        MPII.index("left_kne")


def test_sides_and_flip_pairs_from_names():
    assert MPII.sides()[MPII.index("pelvis")] == "center"
    assert MPII.sides()[MPII.index("left_wrist")] == "left"
    assert flip_pairs_from_names(["right_x", "left_x", "y"]) == ((1, 0),)


def test_skeleton_from_spec_accepts_names_and_categories():
    from poselit.skeletons import skeleton_from_spec

    assert skeleton_from_spec("mpii") is MPII and skeleton_from_spec(LSP) is LSP
    assert skeleton_from_spec({"name": "person", "keypoints": list(COCO.joints)}) is COCO
    custom = skeleton_from_spec({"name": "fin", "keypoints": ["tip", "left_a", "right_a"]})
    assert custom.name == "fin" and custom.flip_index == (0, 2, 1)


def test_to_spec_round_trips_builtin_and_custom_skeletons():
    from poselit.skeletons import skeleton_from_spec

    assert MPII.to_spec() == "mpii"
    custom = Skeleton.from_coco_category({"name": "fin", "keypoints": ["tip", "left_a", "right_a"], "skeleton": [[1, 2]]})
    spec = custom.to_spec()
    assert spec["skeleton"] == [[1, 2]] and skeleton_from_spec(spec) == custom


def test_oks_sigmas_coco_given_and_defaults_by_name():
    from poselit.skeletons import COCO_SIGMAS, DEFAULT_OKS_SIGMA, oks_sigmas, skeleton_from_spec

    assert oks_sigmas(COCO) == (COCO_SIGMAS, ()) and COCO_SIGMAS[COCO.index("left_hip")] == 0.107
    custom = Skeleton.from_coco_category({"name": "fin", "keypoints": ["nose", "left_a", "right_a"]})
    assert oks_sigmas(custom) == ((0.026, DEFAULT_OKS_SIGMA, DEFAULT_OKS_SIGMA), ("left_a", "right_a"))
    given = Skeleton.from_coco_category({"name": "fin", "keypoints": ["nose", "left_a", "right_a"], "sigmas": [0.1, 0.2, 0.2]})
    assert oks_sigmas(given) == ((0.1, 0.2, 0.2), ()) and given == custom  # sigmas are not part of the layout
    assert skeleton_from_spec(given.to_spec()).sigmas == (0.1, 0.2, 0.2)
    coco_own = skeleton_from_spec({"name": "person", "keypoints": list(COCO.joints), "sigmas": [0.05] * 17})
    assert coco_own == COCO and coco_own.sigmas == (0.05,) * 17 and coco_own.to_spec()["sigmas"] == [0.05] * 17
    assert COCO.to_spec() == "coco"
    with pytest.raises(ValueError, match=r"skeleton 'x': sigmas must be 2 positive numbers"):
        Skeleton("x", ("a", "b"), (), sigmas=(0.1, 0.0))
