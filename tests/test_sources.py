"""Datasets by name: ``NAME[:SPLIT][@PATH]`` -> the right reader on the right file."""

from __future__ import annotations

import json

import pytest

from poselit.data.sources import DatasetSpec, read_annotations


def test_parse_spec():
    spec = DatasetSpec.parse("coco:val@coco-mini/person_keypoints.json")
    assert (spec.name, spec.split, spec.path) == ("coco", "val", "coco-mini/person_keypoints.json")
    assert DatasetSpec.parse("mpii") == DatasetSpec("mpii", "train")


def test_unknown_dataset_suggests_close_name(tmp_path):
    with pytest.raises(ValueError, match=r"unknown dataset 'mpi' \(known: .*\); did you mean mpii\?"):
        read_annotations("mpi:valid", tmp_path)


def test_mpii_folder_picks_split_file(tmp_path):
    person = {"image": "a.jpg", "center": [5, 6], "scale": 1.0, "joints": [[1, 1]] * 16, "joints_vis": [1] * 16}
    (tmp_path / "mpii").mkdir()
    (tmp_path / "mpii/valid.json").write_text(json.dumps([person]))
    assert read_annotations("mpii:valid", tmp_path)[0].image == tmp_path / "mpii/a.jpg"
    with pytest.raises(FileNotFoundError, match="none of train.h5, train.json, mpii_human_pose_v1_u12_1.mat"):
        read_annotations("mpii:train", tmp_path)


def test_real_mpii_valid(data_root):
    annotations = read_annotations("mpii:valid", data_root)
    assert len(annotations) == 2958 and annotations.skeleton.name == "mpii"
    assert annotations.source == str(data_root / "mpii/valid.h5")


def test_real_coco_by_path(data_root):
    annotations = read_annotations("coco@coco-mini/person_keypoints.json", data_root)
    assert len(annotations) == 86 and annotations.skeleton.num_joints == 17
    assert annotations[0].image.parent == data_root / "coco-mini/images"


def test_python_api_and_commands_resolve_the_data_root_alike(tmp_path, monkeypatch):
    """``read_annotations(name)`` without a root reads ``$POSELIT_DATA``, as the commands do;
    without either it says how to give one."""
    for root in ("env", "given"):
        person = {"image": f"{root}.jpg", "center": [5, 6], "scale": 1.0, "joints": [[1, 1]] * 16, "joints_vis": [1] * 16}
        (tmp_path / root / "mpii").mkdir(parents=True)
        (tmp_path / root / "mpii/valid.json").write_text(json.dumps([person]))
    monkeypatch.setenv("POSELIT_DATA", str(tmp_path / "env"))
    assert read_annotations("mpii:valid")[0].image == tmp_path / "env/mpii/env.jpg"
    assert read_annotations("mpii:valid", tmp_path / "given")[0].image.name == "given.jpg"  # a given root wins
    monkeypatch.delenv("POSELIT_DATA")
    with pytest.raises(ValueError, match="give a path .* POSELIT_DATA=DIR"):
        read_annotations("mpii:valid")
