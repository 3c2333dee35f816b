"""MPII readers: JSON, stacked-hourglass .h5 and official .mat layouts -> the same records."""

from __future__ import annotations

import json
import re
from pathlib import Path

import cv2
import h5py
import numpy as np
import pytest
import scipy.io

from poselit.data.readers.mpii import read_mpii
from poselit.data.records import AnnotationError
from poselit.skeletons import MPII

K = 16
# 1-based joints (x, y) = (10 + j, 100 + 2 j): distinct, inside a 1-based image.
RAW_JOINTS = np.stack([10.0 + np.arange(K), 100.0 + 2 * np.arange(K)], axis=1)


def _error(path: Path, text: str) -> str:
    """Regex for an error that names ``path`` and then says ``text``."""
    return re.escape(str(path)) + ".*" + text


# --- JSON -------------------------------------------------------------------------------


def _json_person(**fields) -> dict:
    person = {
        "image": "a.jpg",
        "center": [50.0, 60.0],
        "scale": 2.0,
        "joints": RAW_JOINTS.tolist(),
        "joints_vis": [1] * K,
    }
    return {**person, **fields}


def _write_json(tmp_path: Path, people) -> Path:
    path = tmp_path / "mpii.json"
    path.write_text(json.dumps(people))
    return path


def test_json_conversions(tmp_path):
    flags = [1] * K
    flags[0] = flags[5] = 0
    path = _write_json(tmp_path, [_json_person(joints_vis=flags)])
    annotations = read_mpii(path)
    (record,) = annotations.records
    assert annotations.skeleton is MPII and not annotations.skipped
    annotated = np.array(flags, bool)
    np.testing.assert_array_equal(record.keypoints[annotated], RAW_JOINTS[annotated] - 1)
    np.testing.assert_array_equal(record.keypoints[~annotated], 0)
    np.testing.assert_array_equal(record.visibility, np.where(annotated, 2, 0))
    # objpos - 1, moved 15 * scale px down; the scale is kept (no x1.25).
    np.testing.assert_allclose(record.center, [49.0, 59.0 + 15 * 2.0])
    assert record.scale == 2.0
    assert record.norm == 0.0  # the JSON layout has no head box
    assert record.image == tmp_path / "a.jpg"
    assert record.source == f"{path}#1"


def test_json_images_folder_and_skipped_people(tmp_path):
    people = [_json_person(), _json_person(joints_vis=[0] * K, image="b.jpg"), _json_person(image="c.jpg")]
    annotations = read_mpii(_write_json(tmp_path, people), images=tmp_path / "imgs")
    assert [r.image for r in annotations] == [tmp_path / "imgs/a.jpg", tmp_path / "imgs/c.jpg"]
    assert [r.source.rsplit("#")[1] for r in annotations] == ["1", "3"]
    assert annotations.skipped == {"no keypoints": 1}


@pytest.mark.parametrize(
    "person, message",
    [
        (_json_person(joints=RAW_JOINTS[:15].tolist(), joints_vis=[1] * 15), r"#1: expected 16 joints"),
        (_json_person(joints=RAW_JOINTS[:, :1].tolist()), r"#1: field 'joints' has shape \(16, 1\)"),
        ({k: v for k, v in _json_person().items() if k != "scale"}, r"#1: no field 'scale'"),
        (_json_person(center=[1.0]), r"#1: field 'center' has shape \(1,\), expected \(2\)"),
        (_json_person(joints=[[float("nan"), 1.0]] + RAW_JOINTS[1:].tolist()), r"#1: .*non-finite.*right_ankle"),
        (_json_person(joints_vis=[2] * K), r"#1: field 'joints_vis' of joint right_ankle is 2, expected 0 or 1 \(16 bad flags in all\)"),
        (_json_person(image=7), r"#1: field 'image' must be a str"),
        (_json_person(scale=0.0), r"#1: person scale must be > 0"),
        ([1, 2], r"#1: expected an object with field 'joints'"),
    ],
)
def test_json_errors_name_file_and_person(tmp_path, person, message):
    path = _write_json(tmp_path, [person])
    with pytest.raises(AnnotationError, match=re.escape(str(path)) + message):
        read_mpii(path)


def test_json_file_errors(tmp_path):
    garbage = tmp_path / "bad.json"
    garbage.write_bytes(b'[{"image": "a.jpg", "cen\x00\xff')
    with pytest.raises(AnnotationError, match=_error(garbage, "not a readable JSON file")):
        read_mpii(garbage)
    not_a_list = _write_json(tmp_path, {"people": []})
    with pytest.raises(AnnotationError, match=_error(not_a_list, "expected a list of people")):
        read_mpii(not_a_list)
    with pytest.raises(FileNotFoundError, match="MPII annotation file not found"):
        read_mpii(tmp_path / "missing.json")
    other = tmp_path / "mpii.csv"
    other.write_text("x")
    with pytest.raises(AnnotationError, match=_error(other, "unknown MPII annotation format '.csv'")):
        read_mpii(other)


# --- stacked-hourglass .h5 --------------------------------------------------------------


def _h5_fields(n: int = 2) -> dict[str, np.ndarray]:
    return {
        "center": np.tile([[50.0, 60.0]], (n, 1)),
        "scale": np.full(n, 2.5),
        "part": np.tile(RAW_JOINTS, (n, 1, 1)),
        "visible": np.ones((n, K)),
        "normalize": np.full(n, 30.0),
        "imgname": np.array([b"a.jpg", b"b.jpg", b"c.jpg"][:n]),
        "index": np.arange(n, dtype=float),
        "person": np.zeros(n),
    }


def _write_h5(tmp_path: Path, fields: dict[str, np.ndarray]) -> Path:
    path = tmp_path / "valid.h5"
    with h5py.File(path, "w") as file:
        for key, value in fields.items():
            file[key] = value
    return path


def test_h5_conversions(tmp_path):
    fields = _h5_fields(3)
    part, visible = fields["part"], fields["visible"]
    part[0, 0] = 0  # not annotated: (0, 0), flagged 0 ...
    visible[0, 0] = 0
    part[0, 1] = 0  # ... also when flagged 1: the coordinates win
    part[0, 2] = [0.0, 40.0]  # annotated at the image border (x = 0)
    part[0, 9] = [30.0, -12.0]  # head top above the image: annotated, visible
    visible[0, 3] = 0  # annotated, not visible -> occluded
    part[2] = 0  # a person without keypoints is skipped
    annotations = read_mpii(_write_h5(tmp_path, fields))

    assert len(annotations) == 2 and annotations.skipped == {"no keypoints": 1}
    first, second = annotations.records
    expected_vis = np.full(K, 2)
    expected_vis[[0, 1]] = 0
    expected_vis[3] = 1
    np.testing.assert_array_equal(first.visibility, expected_vis)
    np.testing.assert_array_equal(first.keypoints[2:], part[0, 2:] - 1)
    np.testing.assert_array_equal(first.keypoints[9], [29.0, -13.0])
    np.testing.assert_array_equal(first.keypoints[:2], 0)
    # The .h5 centre already has the +15*scale shift: only -1; its scale has the x1.25.
    np.testing.assert_allclose(first.center, [49.0, 59.0])
    assert first.scale == pytest.approx(2.0)
    assert first.norm == 30.0
    assert first.image == tmp_path / "a.jpg" and second.image == tmp_path / "b.jpg"
    assert second.source.endswith("valid.h5#2")


def test_h5_images_folder(tmp_path):
    annotations = read_mpii(_write_h5(tmp_path, _h5_fields()), images=tmp_path / "images")
    assert annotations[1].image == tmp_path / "images/b.jpg"


def _without(key: str) -> dict:
    fields = _h5_fields()
    del fields[key]
    return fields


def _with(key: str, value) -> dict:
    return {**_h5_fields(), key: value}


@pytest.mark.parametrize(
    "fields, message",
    [
        (_without("normalize"), r"no field 'normalize'"),
        (_with("part", np.ones((2, 15, 2))), r"field 'part' has shape \(2, 15, 2\), expected \(2, 16, 2\) \(16 MPII joints\)"),
        (_with("visible", np.ones((2, 15))), r"field 'visible' has shape \(2, 15\)"),
        (_with("center", np.ones((3, 2))), r"field 'center' has shape \(3, 2\), expected \(2, 2\)"),
        (_with("imgname", np.array([b"a.jpg"])), r"field 'imgname' must hold 2 file names"),
        (_with("part", np.where(np.arange(K)[:, None] == 4, np.nan, RAW_JOINTS)[None].repeat(2, 0)), r"#1: .*non-finite.*left_knee"),
    ],
)
def test_h5_errors(tmp_path, fields, message):
    path = _write_h5(tmp_path, fields)
    with pytest.raises(AnnotationError, match=_error(path, message)):
        read_mpii(path)


def test_h5_truncated_file(tmp_path):
    path = _write_h5(tmp_path, _h5_fields())
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(AnnotationError, match=_error(path, "not a readable HDF5 file")):
        read_mpii(path)


# --- official release .mat --------------------------------------------------------------

EMPTY = np.zeros((0, 0))  # MATLAB's []


def _structs(*items: dict) -> np.ndarray:
    """A 1 x n MATLAB struct array (all elements share the fields, as in MATLAB)."""
    array = np.empty((1, len(items)), dtype=[(key, object) for key in items[0]])
    for i, item in enumerate(items):
        for key, value in item.items():
            array[0, i][key] = value
    return array


def _points(joints: list[int], **visible) -> np.ndarray:
    """Points of ``joints`` at RAW_JOINTS; ``is_visible=[...]`` per point, or no field."""
    flags = visible.get("is_visible")
    return _structs(
        *(
            {"x": RAW_JOINTS[j, 0], "y": RAW_JOINTS[j, 1], "id": j}
            | ({} if flags is None else {"is_visible": flags[n]})
            for n, j in enumerate(joints)
        )
    )


def _person(points, objpos=(50.0, 60.0), scale=2.0, head=(1.0, 2.0, 7.0, 10.0)) -> dict:
    return {
        "x1": head[0], "y1": head[1], "x2": head[2], "y2": head[3],
        "annopoints": EMPTY if points is None else {"point": points},
        "scale": scale,
        "objpos": EMPTY if objpos is None else {"x": objpos[0], "y": objpos[1]},
    }


def _release(annolist: list[dict], img_train: list[int]) -> dict:
    return {"RELEASE": {"annolist": _structs(*annolist), "img_train": np.array([img_train])}}


def _write_mat(tmp_path: Path, release: dict) -> Path:
    path = tmp_path / "mpii_human_pose_v1_u12_1.mat"
    scipy.io.savemat(path, release)
    return path


def _image(name: str, annorect) -> dict:
    return {"image": {"name": name}, "annorect": annorect}


@pytest.fixture
def release() -> dict:
    """Four images: two people; one person (a bare struct); no keypoints; a test image."""
    return _release(
        [
            _image(
                "two.jpg",
                _structs(
                    _person(_points(list(range(K)), is_visible=[1, 0] * 8)),
                    _person(_points([9, 0, 3], is_visible=["0", "1", EMPTY]), objpos=(20.0, 30.0), scale=1.5),
                ),
            ),
            _image("one.jpg", _person(_points([7, 8]), scale=4.0)),  # points without is_visible
            _image("none.jpg", _structs(_person(None), _person(_points([1]), objpos=None))),
            _image("test.jpg", {"scale": 3.0, "objpos": {"x": 5.0, "y": 6.0}}),
        ],
        img_train=[1, 1, 1, 0],
    )


def test_mat_layout_matches_release(tmp_path, release):
    """The fixture loads with the release's squeezing: bare lone structs, empty fields."""
    mat = scipy.io.loadmat(_write_mat(tmp_path, release), struct_as_record=False, squeeze_me=True)
    annolist = mat["RELEASE"].annolist
    assert annolist.shape == (4,)
    assert annolist[0].annorect.shape == (2,)
    assert not isinstance(annolist[1].annorect, np.ndarray)
    assert annolist[0].annorect[1].annopoints.point[1].is_visible == "1"
    assert annolist[2].annorect[0].annopoints.size == 0


def test_mat_records(tmp_path, release):
    path = _write_mat(tmp_path, release)
    annotations = read_mpii(path)
    assert annotations.skipped == {"no keypoints": 1, "no objpos/scale": 1, "test image": 1}
    assert [r.source for r in annotations] == [
        f"{path}#image1/person1", f"{path}#image1/person2", f"{path}#image2/person1"
    ]
    full, partial, single = annotations.records
    assert full.image == tmp_path / "images/two.jpg" and single.image == tmp_path / "images/one.jpg"

    np.testing.assert_array_equal(full.keypoints, RAW_JOINTS - 1)
    np.testing.assert_array_equal(full.visibility, [2, 1] * 8)  # is_visible 1 -> 2, 0 -> 1
    np.testing.assert_allclose(full.center, [49.0, 59.0 + 15 * 2.0])
    assert full.scale == 2.0
    assert full.norm == pytest.approx(0.6 * np.hypot(6.0, 8.0))

    # '0' -> occluded, '1' -> visible, [] -> visible; the other joints not annotated.
    expected = np.zeros(K, int)
    expected[[9, 0, 3]] = [1, 2, 2]
    np.testing.assert_array_equal(partial.visibility, expected)
    np.testing.assert_array_equal(partial.keypoints[9], RAW_JOINTS[9] - 1)
    np.testing.assert_allclose(partial.center, [19.0, 29.0 + 15 * 1.5])

    np.testing.assert_array_equal(np.flatnonzero(single.visibility), [7, 8])
    assert (single.visibility[[7, 8]] == 2).all()  # no is_visible field -> visible


def test_mat_images_folder(tmp_path, release):
    annotations = read_mpii(_write_mat(tmp_path, release), images=tmp_path / "pics")
    assert annotations[0].image == tmp_path / "pics/two.jpg"


def test_mat_splits(tmp_path, release):
    path = _write_mat(tmp_path, release)
    with pytest.raises(ValueError, match=_error(path, "test persons carry no keypoints")):
        read_mpii(path, split="test")
    with pytest.raises(ValueError, match=_error(path, "splits 'train' and 'test', got 'valid'")):
        read_mpii(path, split="valid")


@pytest.mark.parametrize(
    "points, message",
    [
        (_structs({"x": 1.0, "y": 1.0, "id": 16}), r"#image1/person1: joint id 16 is not an MPII joint id"),
        (_points([3, 3]), r"#image1/person1: joint id 3 is annotated twice"),
        (_points([0], is_visible=["yes"]), r"#image1/person1: is_visible must be 0 or 1, got 'yes'"),
        (_structs({"x": 1.0, "id": 0}), r"#image1/person1: no field 'y'"),
        (_structs({"x": np.nan, "y": 1.0, "id": 0}), r"#image1/person1: .*non-finite.*right_ankle"),
    ],
)
def test_mat_person_errors(tmp_path, points, message):
    path = _write_mat(tmp_path, _release([_image("a.jpg", _person(points))], [1]))
    with pytest.raises(AnnotationError, match=_error(path, message)):
        read_mpii(path)


def test_mat_file_errors(tmp_path):
    truncated = tmp_path / "a.mat"
    truncated.write_bytes(b"MATLAB 5.0 MAT-file" + b"\x00" * 20)
    with pytest.raises(AnnotationError, match=_error(truncated, "not a readable MATLAB .mat file")):
        read_mpii(truncated)
    no_release = tmp_path / "b.mat"
    scipy.io.savemat(no_release, {"annolist": np.zeros(3)})
    with pytest.raises(AnnotationError, match=_error(no_release, r"no field 'RELEASE' \(fields: \['annolist'\]\)")):
        read_mpii(no_release)
    mismatch = _write_mat(tmp_path, _release([_image("a.jpg", EMPTY)] * 2, [1, 1, 0]))
    with pytest.raises(AnnotationError, match=_error(mismatch, r"img_train has shape \(3,\)")):
        read_mpii(mismatch)


# --- real data --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def real_h5(data_root):
    return read_mpii(data_root / "mpii/valid.h5")


@pytest.fixture(scope="module")
def real_json(data_root):
    return read_mpii(data_root / "mpii/test_mpii.json")


def test_real_valid_h5(real_h5, data_root):
    summary = real_h5.summary()
    assert summary["records"] == 2958 and summary["skipped"] == {}
    assert summary["annotated_joints"] == 44240 and summary["occluded_joints"] == 10243
    # 45 joints (43 head tops, 2 necks) lie on or beyond the image's top/left border.
    outside = np.array([(r.keypoints[r.visibility > 0] < 0).any(axis=1).sum() for r in real_h5])
    assert outside.sum() == 45
    assert all(r.norm > 0 for r in real_h5)


def test_real_json(real_json):
    assert len(real_json) == 5 and real_json.skipped == {}
    assert all(r.image.is_file() for r in real_json)
    assert real_json.summary()["annotated_joints"] == 76


def test_real_json_and_h5_agree(real_json, real_h5):
    """The first five people of valid.h5 are the five JSON people, in the same order."""
    for from_json, from_h5 in zip(real_json, real_h5.records[:5]):
        assert from_json.image.name == from_h5.image.name
        np.testing.assert_allclose(from_json.center, from_h5.center, atol=0.01)
        assert from_json.scale == pytest.approx(from_h5.scale, abs=1e-4)
        np.testing.assert_array_equal(from_json.visibility > 0, from_h5.visibility > 0)
        # The .h5 rounded the (interpolated) neck and head-top coordinates down.
        np.testing.assert_allclose(from_json.keypoints, from_h5.keypoints, atol=1.0)


def test_h5_visible_flags_other_than_0_and_1_are_refused_naming_the_person(tmp_path):
    fields = _h5_fields(3)
    fields["visible"][2, MPII.index("upper_neck")] = 2
    with pytest.raises(AnnotationError, match=r"valid.h5#3: field 'visible' of joint upper_neck is 2, expected 0 or 1"):
        read_mpii(_write_h5(tmp_path, fields))


def test_h5_box_absurdly_large_for_its_image_is_refused(tmp_path):
    """A scale of 1e27 with sane joints: refused against the real image's header size."""
    fields = _h5_fields(2)
    fields["scale"][1] = 1e27
    path = _write_h5(tmp_path, fields)
    for name in ("a.jpg", "b.jpg"):
        cv2.imwrite(str(tmp_path / name), np.zeros((120, 160, 3), np.uint8))
    with pytest.raises(AnnotationError, match=r"valid.h5#2: person box of side 1.6e\+29 px is more than 3x the 160x120 image's longer side \(.*b.jpg\)"):
        read_mpii(path)
