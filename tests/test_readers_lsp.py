"""LSP and LSP-extended readers: conventions, splits, errors, and the real files."""

import cv2
import numpy as np
import pytest
import scipy.io

from poselit.data.readers.common import DEGENERATE_BOX, MIN_PERSON_SIDE
from poselit.data.readers.lsp import read_lsp, read_lspet
from poselit.data.records import AnnotationError
from poselit.skeletons import LSP


def write_lsp(root, joints):
    (root / "images").mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(root / "joints.mat", {"joints": joints})
    return root


def test_lsp_conventions_are_converted_once(tmp_path):
    joints = np.zeros((3, 14, 4))
    joints[0] = np.arange(14)[:, None] + 11  # x, 1-based
    joints[1] = 21
    joints[1, LSP.index("right_hip")] = 61  # torso: (10,20) shoulder to (13,60) hip
    joints[2, 5, 1] = 1  # flag 1 = occluded
    records = read_lsp(write_lsp(tmp_path, joints), "train")
    assert len(records) == 2 and records.skipped == {}
    first = records[0]
    assert first.keypoints[0] == pytest.approx([10, 20])  # 1-based -> 0-based
    assert (first.visibility == 2).all()
    assert records[1].visibility[5] == 1 and (np.delete(records[1].visibility, 5) == 2).all()
    assert first.norm == pytest.approx(np.hypot(19 - 12, 60 - 20))  # left shoulder (x=19) to right hip (x=12)
    assert first.image == tmp_path / "images" / "im0001.jpg"
    assert first.source.endswith("joints.mat#1")
    test = read_lsp(tmp_path, "test")
    assert [r.image.name for r in test] == ["im0003.jpg", "im0004.jpg"]
    assert test[1].source.endswith("#4")
    assert len(read_lsp(tmp_path, "all")) == 4


def test_lspet_marks_unlabelled_joints_not_annotated(tmp_path):
    joints = np.ones((14, 3, 3)) * 50
    joints[:, 1, :] += np.arange(14)[:, None]  # a person 13 px tall
    joints[:, 2, :] = 1
    joints[3, :, 0] = (-20, -5, 0)  # unlabelled: flag 0, meaningless coordinates
    joints[:, 2, 2] = 0  # an image with nothing labelled
    records = read_lspet(write_lsp(tmp_path, joints))
    assert len(records) == 2 and records.skipped == {"no keypoints": 1}
    assert records[0].visibility[3] == 0 and (records[0].keypoints[3] == 0).all()
    assert (np.delete(records[0].visibility, 3) == 2).all()
    assert records[1].image.name == "im00002.jpg"


@pytest.mark.parametrize(
    "write, reader, message",
    [
        (lambda p: scipy.io.savemat(p / "joints.mat", {"joints": np.zeros((14, 3, 10))}), read_lsp, r"expected \(3, 14, N\).*lspet"),
        (lambda p: scipy.io.savemat(p / "joints.mat", {"joints": np.zeros((3, 14, 10))}), read_lspet, r"expected \(14, 3, N\).*'lsp' reader"),
        (lambda p: scipy.io.savemat(p / "joints.mat", {"other": np.zeros(3)}), read_lsp, r"no field 'joints' \(fields: \['other'\]\)"),
        (lambda p: (p / "joints.mat").write_bytes(b"MATLAB 5.0 truncated"), read_lsp, "not a readable MATLAB .mat file"),
        (lambda p: scipy.io.savemat(p / "joints.mat", {"joints": np.zeros((3, 14, 3))}), read_lsp, "even number of images"),
    ],
)
def test_bad_files_name_the_file_and_the_expectation(tmp_path, write, reader, message):
    write(tmp_path)
    with pytest.raises(AnnotationError, match=message) as err:
        reader(tmp_path)
    assert str(tmp_path / "joints.mat") in str(err.value)


def test_missing_file_and_bad_split(tmp_path):
    with pytest.raises(FileNotFoundError, match="LSP annotation file not found: .*joints.mat"):
        read_lsp(tmp_path)
    with pytest.raises(ValueError, match="split must be one of"):
        read_lsp(tmp_path, "valid")


def test_nan_coordinates_name_the_record(tmp_path):
    joints = np.ones((3, 14, 2)) * 30
    joints[1] += np.arange(14)[:, None]
    joints[2] = 0
    joints[0, 4, 1] = np.nan
    with pytest.raises(AnnotationError, match=r"joints.mat#2: annotated joints with non-finite .*left_knee"):
        read_lsp(write_lsp(tmp_path, joints), "all")


def test_real_lsp_and_lspet_counts(data_root):
    train, test = read_lsp(data_root / "lsp", "train"), read_lsp(data_root / "lsp", "test")
    assert (len(train), len(test)) == (1000, 1000)
    assert train[0].image.name == "im0001.jpg" and test[0].image.name == "im1001.jpg"
    assert all(r.image.is_file() for r in train.records + test.records)
    both = train.records + test.records
    assert all((r.visibility > 0).all() for r in both)  # LSP annotates all 14 joints
    occluded = sum(int((r.visibility == 1).sum()) for r in both)
    assert 0.06 < occluded / (14 * 2000) < 0.08  # "about 7%" (data README)
    assert all(r.norm > 0 for r in both)
    extended = read_lspet(data_root / "lspet")
    assert len(extended) == 10000 and sum(extended.skipped.values()) == 0
    assert extended[9999].image.name == "im10000.jpg" and extended[9999].image.is_file()
    missing = sum(int((r.visibility == 0).sum()) for r in extended)
    assert 0 < missing < 0.2 * 14 * 10000


@pytest.mark.parametrize("reader, layout, flag", [(read_lsp, (3, 14, 2), 2), (read_lspet, (14, 3, 2), -1)])
def test_flags_other_than_0_and_1_are_refused_naming_the_image(tmp_path, reader, layout, flag):
    joints = np.ones(layout) * 30
    flags = joints[2] if layout[0] == 3 else joints[:, 2]  # (14, N) either way
    flags[:] = 1
    flags[LSP.index("left_wrist"), 1] = flag
    with pytest.raises(AnnotationError, match=rf"joints.mat#2: field 'joints flag' of joint left_wrist is {flag}, expected 0 or 1"):
        reader(write_lsp(tmp_path, joints), **({"split": "all"} if reader is read_lsp else {}))


def test_joints_absurdly_far_outside_their_image_are_refused(tmp_path):
    """Checked against the image's size from its header (here real 100x80 JPEGs): a 1e30
    coordinate, or a whole person thousands of pixels away, names the record; joints just
    outside the image are fine, and records of missing images are not checked."""
    joints = np.zeros((3, 14, 4))
    joints[:2] = 40
    joints[1] += np.arange(14)[:, None]  # people 13 px tall
    joints[0, :, 1] += np.linspace(-70, 70, 14)  # reaches 30 px past both sides of the image: fine
    joints[1, LSP.index("head_top"), 2] = 1e30
    joints[0, :, 3] += 5000  # the whole person, thousands of px to the right
    root = write_lsp(tmp_path, joints)
    for i in range(3):
        cv2.imwrite(str(root / "images" / f"im{i + 1:04d}.jpg"), np.zeros((100, 80, 3), np.uint8))
    assert len(read_lsp(root, "train")) == 2
    with pytest.raises(AnnotationError, match=r"joints.mat#3: head_top at \(39, 1e\+30\) lies more than 100 px outside the 80x100 image \(.*im0003.jpg\)"):
        read_lsp(root, "test")
    (root / "images" / "im0003.jpg").unlink()
    (root / "images" / "im0004.jpg").write_bytes(cv2.imencode(".jpg", np.zeros((100, 80, 3), np.uint8))[1].tobytes())
    with pytest.raises(AnnotationError, match=r"joints.mat#4: right_ankle at \(5039, 39\) lies more than 100 px outside"):
        read_lsp(root, "test")


def test_people_whose_joints_lie_on_one_point_are_dropped_naming_them(tmp_path):
    """All 14 joints on one point make a 1 px box (the joints' extent, floored at 1 px):
    no pose to train on or score. Every reader's records pass through ``collect``, so
    training and evaluation drop it alike, with a warning naming the record."""
    joints = np.zeros((3, 14, 4))
    joints[:2] = 40
    joints[1] += np.arange(14)[:, None]  # people 13 px tall ...
    joints[:2, :, 2] = 40  # ... but #3: every joint at (39, 39)
    joints[0, :, 3] = 40 + np.linspace(0, 1.5, 14)  # #4: a 1.5 px person, under the 2 px minimum
    joints[1, :, 3] = 40
    root = write_lsp(tmp_path, joints)
    with pytest.warns(UserWarning) as caught:
        test = read_lsp(root, "test")
    assert len(test) == 0 and test.skipped == {DEGENERATE_BOX: 2}
    messages = [str(w.message) for w in caught]
    assert any(f"joints.mat#3: dropped: its person box is 1 px, under {MIN_PERSON_SIDE:g} px (14 annotated joints "
               "spanning 0 px)" in m and "im0003.jpg" in m for m in messages), messages
    assert any("joints.mat#4: dropped: its person box is 1.5 px" in m for m in messages), messages
    assert len(read_lsp(root, "train")) == 2 and read_lsp(root, "train").skipped == {}
    one_joint = np.ones((14, 3, 2)) * 50
    one_joint[:, 1, :] += np.arange(14)[:, None]
    one_joint[:, 2, :] = 1
    one_joint[:, 2, 0] = 0
    one_joint[5, 2, 0] = 1  # LSP-extended: only one labelled joint, a 1 px box
    with pytest.warns(UserWarning, match=r"joints.mat#1: dropped: .*\(1 annotated joints spanning 0 px\)"):
        extended = read_lspet(write_lsp(tmp_path / "lspet", one_joint))
    assert len(extended) == 1 and extended.skipped == {DEGENERATE_BOX: 1}
