"""COCO keypoints reader: categories -> skeleton, boxes, skipped people, errors."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from poselit.data.readers.coco import read_coco
from poselit.data.records import AnnotationError, CocoInstance
from poselit.skeletons import COCO

HANDS = {
    "id": 3,
    "name": "hands",
    "keypoints": ["nose", "left_hand", "right_hand"],
    "skeleton": [[1, 2], [1, 3]],
}
PERSON = {"id": 1, "name": "person", "keypoints": ["head", "tail"], "skeleton": [[1, 2]]}
IMAGES = [{"id": 10, "file_name": "a.jpg"}, {"id": 11, "file_name": "sub/b.jpg"}]


def _annotation(id: int, **fields) -> dict:
    annotation = {
        "id": id,
        "image_id": 10,
        "category_id": 3,
        "iscrowd": 0,
        "num_keypoints": 3,
        "keypoints": [10, 20, 2, 30, 40, 1, 50, 60, 2],
        "bbox": [5.0, 10.0, 60.0, 80.0],
    }
    return {**annotation, **fields}


def _write(tmp_path: Path, annotations, categories=(HANDS,), images=IMAGES, name="kp.json") -> Path:
    path = tmp_path / name
    data = {"images": list(images), "annotations": list(annotations), "categories": list(categories)}
    path.write_text(json.dumps(data))
    return path


def test_records_and_skeleton(tmp_path):
    path = _write(tmp_path, [_annotation(7), _annotation(8, image_id=11, keypoints=[0, 0, 0, 3, 4, 2, 0, 0, 0])])
    annotations = read_coco(path)
    skeleton = annotations.skeleton
    assert skeleton.name == "hands" and skeleton.joints == ("nose", "left_hand", "right_hand")
    assert skeleton.limbs == ((0, 1), (0, 2)) and skeleton.flip_pairs == ((1, 2),)
    assert skeleton.norm == "bbox"

    first, second = annotations.records
    np.testing.assert_array_equal(first.keypoints, [[10, 20], [30, 40], [50, 60]])  # as is
    np.testing.assert_array_equal(first.visibility, [2, 1, 2])
    np.testing.assert_allclose(first.center, [35.0, 50.0])  # box centre
    assert first.scale == pytest.approx(80.0 / 200)  # longer side / 200
    assert first.norm == pytest.approx(80.0)
    assert first.image == tmp_path / "a.jpg"
    assert first.source == f"{path}#1 (annotation id 7)"
    np.testing.assert_array_equal(second.visibility, [0, 2, 0])
    assert second.image == tmp_path / "sub/b.jpg"


@pytest.mark.parametrize("bbox", [None, [5.0, 10.0, 0.0, 80.0], [5.0, 10.0, 60.0, -1.0]])
def test_box_from_keypoints_without_usable_bbox(tmp_path, bbox):
    annotation = _annotation(7, bbox=bbox)
    if bbox is None:
        del annotation["bbox"]
    (record,) = read_coco(_write(tmp_path, [annotation])).records
    # Labelled keypoints span x 10..50, y 20..60: a 40 px box around (30, 40).
    np.testing.assert_allclose(record.center, [30.0, 40.0])
    assert record.scale == pytest.approx(40.0 / 200)
    assert record.norm == pytest.approx(40.0)


def test_skipped_people_are_counted(tmp_path):
    path = _write(
        tmp_path,
        [
            _annotation(1),
            _annotation(2, iscrowd=1),
            _annotation(3, iscrowd=1, num_keypoints=0, keypoints=[0] * 9),
            _annotation(4, num_keypoints=0, keypoints=[0] * 9),
            _annotation(5, category_id=1, keypoints=[1, 1, 2, 2, 2, 2]),
        ],
        categories=[HANDS, PERSON],
    )
    annotations = read_coco(path, category_id=3)
    assert [r.source for r in annotations] == [f"{path}#1 (annotation id 1)"]
    assert annotations.skipped == {"crowd": 2, "no keypoints": 1, "other category": 1}


def test_category_choice(tmp_path):
    both = _write(tmp_path, [_annotation(1, category_id=1, keypoints=[1, 1, 2, 2, 2, 2])], categories=[HANDS, PERSON])
    with pytest.raises(AnnotationError, match=re.escape(str(both)) + ".*2 categories have 'keypoints'.*category_id"):
        read_coco(both)
    assert read_coco(both, category_id=1).skeleton.joints == ("head", "tail")
    with pytest.raises(AnnotationError, match=r"no keypoint category with id 5 \(keypoint categories: 3 \(hands\), 1 \(person\)\)"):
        read_coco(both, category_id=5)
    plain = _write(tmp_path, [], categories=[{"id": 1, "name": "person"}], name="instances.json")
    with pytest.raises(AnnotationError, match="no category has 'keypoints'.*not a COCO keypoints file"):
        read_coco(plain)


def test_image_folder_resolution(tmp_path):
    path = _write(tmp_path, [_annotation(1)])
    assert read_coco(path)[0].image == tmp_path / "a.jpg"
    (tmp_path / "images").mkdir()
    assert read_coco(path)[0].image == tmp_path / "images/a.jpg"
    assert read_coco(path, images=tmp_path / "elsewhere")[0].image == tmp_path / "elsewhere/a.jpg"


@pytest.mark.parametrize(
    "annotation, message",
    [
        (_annotation(7, keypoints=[1, 2, 2] * 4), r"#1 \(annotation id 7\): 12 keypoint values, expected 3 x 3 .* 'hands'"),
        (_annotation(7, image_id=99), r"#1 \(annotation id 7\): image_id 99 is not in the file's 'images'"),
        (_annotation(7, keypoints=[1, 2, 3] * 3), r"#1 \(annotation id 7\): keypoint flags v must be 0, 1 or 2"),
        (_annotation(7, keypoints=[None, 2, 2] * 3), r"#1 \(annotation id 7\): .*non-finite.*nose"),
        (_annotation(7, keypoints="1 2 2"), r"#1 \(annotation id 7\): field 'keypoints' is not an array of numbers"),
        (_annotation(7, bbox=[1, 2, 3]), r"#1 \(annotation id 7\): field 'bbox' has shape \(3,\), expected \(4\)"),
        ({"image_id": 10}, r"#1: no field 'id'"),
        ({k: v for k, v in _annotation(7).items() if k != "keypoints"}, r"#1 \(annotation id 7\): no field 'keypoints'"),
    ],
)
def test_annotation_errors(tmp_path, annotation, message):
    path = _write(tmp_path, [annotation])
    with pytest.raises(AnnotationError, match=re.escape(str(path)) + message):
        read_coco(path)


def test_file_errors(tmp_path):
    garbage = tmp_path / "bad.json"
    garbage.write_bytes(b"\x89PNG\r\n\x1a\n")
    with pytest.raises(AnnotationError, match=re.escape(str(garbage)) + ": not a readable JSON file"):
        read_coco(garbage)
    no_annotations = tmp_path / "x.json"
    no_annotations.write_text(json.dumps({"images": [], "categories": [HANDS]}))
    with pytest.raises(AnnotationError, match=r"x.json: no field 'annotations' \(fields: \['categories', 'images'\]\)"):
        read_coco(no_annotations)
    bad_image = _write(tmp_path, [], images=[{"id": 1}])
    with pytest.raises(AnnotationError, match=r"kp.json#image1: no field 'file_name'"):
        read_coco(bad_image)
    bad_category = _write(tmp_path, [], categories=[{**HANDS, "skeleton": [[1, 4]]}])
    with pytest.raises(AnnotationError, match=r"kp.json: COCO category 'hands': 'skeleton' entry"):
        read_coco(bad_category)
    with pytest.raises(FileNotFoundError, match="COCO annotation file not found"):
        read_coco(tmp_path / "missing.json")


# --- malformed files: one clear error naming the file, the field and what was expected ---


@pytest.mark.parametrize(
    "skeleton, message",
    [
        (None, r"field 'skeleton' must be a list of \[a, b\] entries, each a pair of integer 1-based joint indices in \[1, 3\]; got None"),
        (3, r"field 'skeleton' must be a list of \[a, b\] entries.*got 3"),
        ([1, 2], r"'skeleton' entry 1 is not a pair of integer 1-based joint indices in \[1, 3\]"),
        ([[1, 2, 3]], r"'skeleton' entry \[1, 2, 3\] is not a pair"),
        ([[1.7, 2]], r"'skeleton' entry \[1.7, 2\] is not a pair of integer"),
        ([["1", 2]], r"'skeleton' entry \['1', 2\] is not a pair of integer"),
        ([[True, 2]], r"'skeleton' entry \[true, 2\] is not a pair of integer"),
    ],
)
def test_bad_category_skeleton_is_one_clear_error(tmp_path, skeleton, message):
    path = _write(tmp_path, [_annotation(1)], categories=[{**HANDS, "skeleton": skeleton}])
    with pytest.raises(AnnotationError, match=re.escape(f"{path}: COCO category 'hands': ") + message.replace("true", "True")):
        read_coco(path)


def test_integral_float_indices_are_integers_not_truncations(tmp_path):
    path = _write(tmp_path, [_annotation(1)], categories=[{**HANDS, "skeleton": [[1.0, 2.0], [1, 3]]}])
    assert read_coco(path).skeleton.limbs == ((0, 1), (0, 2))
    bad_flip = _write(tmp_path, [_annotation(1)], categories=[{**HANDS, "flip_pairs": [[1, 2.5]]}], name="flip.json")
    with pytest.raises(AnnotationError, match=r"flip.json: COCO category 'hands': 'flip_pairs' entry \[1, 2.5\] is not a pair of integer 0-based"):
        read_coco(bad_flip)


def test_category_sigmas_are_read_and_checked(tmp_path):
    path = _write(tmp_path, [_annotation(1)], categories=[{**HANDS, "sigmas": [0.02, 0.05, 0.05]}])
    assert read_coco(path).skeleton.sigmas == (0.02, 0.05, 0.05)
    bad = _write(tmp_path, [_annotation(1)], categories=[{**HANDS, "sigmas": [0.02, -1, 0.05]}], name="bad.json")
    with pytest.raises(AnnotationError, match=r"bad.json: COCO category 'hands': field 'sigmas' must be a list of 3 positive numbers"):
        read_coco(bad)


def test_two_images_with_one_id_are_refused_naming_both(tmp_path):
    images = [{"id": 10, "file_name": "a.jpg"}, {"id": 11, "file_name": "b.jpg"}, {"id": 10, "file_name": "c.jpg"}]
    path = _write(tmp_path, [_annotation(1)], images=images)
    message = f"{path}#image3: image id 10 is also the id of {path}#image1 ('a.jpg'); ids must be unique"
    with pytest.raises(AnnotationError, match=re.escape(message)):
        read_coco(path)


def test_duplicated_annotations_are_refused_naming_both(tmp_path):
    same_id = _write(tmp_path, [_annotation(1), _annotation(2, image_id=11), _annotation(1, image_id=11, bbox=[0, 0, 9, 9])])
    with pytest.raises(AnnotationError, match=re.escape(f"{same_id}#3: annotation id 1 is also the id of {same_id}#1; ids must be unique")):
        read_coco(same_id)
    copied = _write(tmp_path, [_annotation(1), _annotation(2, image_id=11), _annotation(3)], name="copy.json")
    message = f"{copied}#3 (annotation id 3): a duplicate of {copied}#1 (annotation id 1) (same image_id, category_id"
    with pytest.raises(AnnotationError, match=re.escape(message)):
        read_coco(copied)


@pytest.mark.parametrize("ids", [[[1], 2], [1.5, 2]])
def test_ids_must_be_integers_or_strings(tmp_path, ids):
    path = _write(tmp_path, [_annotation(ids[0]), _annotation(ids[1])])
    with pytest.raises(AnnotationError, match=re.escape(f"{path}#1: field 'id' must be an integer or a string")):
        read_coco(path)


def test_malformed_skeleton_ends_eval_in_one_line(tmp_path, capsys):
    from poselit.cli import main

    path = _write(tmp_path, [_annotation(1)], categories=[{**HANDS, "skeleton": None}])
    predictions = tmp_path / "p.json"
    predictions.write_text(json.dumps({"predictions": [{"index": 0, "keypoints": [[0, 0]] * 3}]}))
    assert main(["eval", str(predictions), "--dataset", f"coco@{path}"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err
    assert err.startswith(f"poselit: error: {path}: COCO category 'hands': field 'skeleton' must be a list")


# --- COCO evaluation fields -------------------------------------------------------------


def test_records_keep_area_box_and_image_and_ignored_people_become_ignore_regions(tmp_path):
    path = _write(
        tmp_path,
        [
            _annotation(1, area=1234.5),
            _annotation(2, iscrowd=1, area=99.0, keypoints=[0] * 9, bbox=[1, 2, 30, 40]),
            _annotation(3, image_id=11, keypoints=[0] * 9, num_keypoints=0, bbox=[3, 4, 5, 6]),
            _annotation(4, image_id=11, keypoints=[0] * 9, num_keypoints=0, bbox=[3, 4, 0, 6]),  # cannot be placed
        ],
    )
    annotations = read_coco(path)
    (record,) = annotations.records
    assert record.coco == CocoInstance(image_id=10, box=(5.0, 10.0, 60.0, 80.0), area=1234.5, crowd=False)
    assert annotations.skipped == {"crowd": 1, "no keypoints": 2}
    crowd, empty = annotations.ignored
    assert crowd.coco == CocoInstance(10, (1.0, 2.0, 30.0, 40.0), 99.0, crowd=True)
    assert empty.coco == CocoInstance(11, (3.0, 4.0, 5.0, 6.0), None, crowd=False)
    assert not empty.visibility.any() and empty.image == tmp_path / "sub/b.jpg"
    with pytest.raises(AnnotationError, match=r"#1 \(annotation id 1\): field 'area' must be a number >= 0, got -1"):
        read_coco(_write(tmp_path, [_annotation(1, area=-1)], name="area.json"))


# --- real data --------------------------------------------------------------------------


def _expected_counts(path: Path) -> tuple[int, dict[str, int]]:
    """Records and skip reasons computed straight from the JSON, independently of the reader."""
    annotations = json.loads(path.read_text())["annotations"]
    crowd = sum(bool(a["iscrowd"]) for a in annotations)
    empty = sum(not a["iscrowd"] and a["num_keypoints"] == 0 for a in annotations)
    skipped = {"crowd": crowd, "no keypoints": empty}
    return len(annotations) - crowd - empty, {reason: n for reason, n in skipped.items() if n}


@pytest.mark.parametrize(
    "file, records, skipped, joints",
    [
        ("coco-mini/person_keypoints.json", 86, {"crowd": 5, "no keypoints": 56}, (800, 102)),
        ("coco/test_coco.json", 12, {"no keypoints": 2}, (181, 17)),
    ],
)
def test_real_coco(data_root, file, records, skipped, joints):
    path = data_root / file
    annotations = read_coco(path)
    assert (records, skipped) == _expected_counts(path)
    summary = annotations.summary()
    assert summary["records"] == records and summary["skipped"] == skipped
    assert (summary["annotated_joints"], summary["occluded_joints"]) == joints
    assert annotations.skeleton is COCO  # COCO's person layout maps to the built-in skeleton
    assert all(r.image.is_file() for r in annotations)
    assert all(r.norm > 0 for r in annotations)
