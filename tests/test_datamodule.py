"""PoseDataModule: datasets by name, combined training sets, loaders, errors."""

import os

import pytest
import torch

from poselit.data.datamodule import PoseDataModule
from poselit.data.sources import DatasetSpec


def test_spec_parsing():
    assert DatasetSpec.parse("lsp:test") == DatasetSpec("lsp", "test")
    assert DatasetSpec.parse("coco@a/b.json") == DatasetSpec("coco", "train", "a/b.json")
    assert str(DatasetSpec.parse("mpii:valid@x.h5")) == "mpii:valid@x.h5"


def test_fit_loaders_from_a_generated_lsp_folder(synthetic_lsp):
    dm = PoseDataModule(
        train=[f"lsp:train@{synthetic_lsp}", f"lsp:test@{synthetic_lsp}"],
        val=[f"lsp:test@{synthetic_lsp}"],
        input_size=(32, 24),
        batch_size=3,
        num_workers=0,
    )
    dm.setup("fit")
    assert dm.skeleton.name == "lsp"
    train = dm.train_dataloader()
    assert len(train.dataset) == 8  # two splits concatenated
    batch = next(iter(train))
    assert batch["image"].shape == (3, 3, 32, 24) and batch["keypoints"].shape == (3, 14, 2)
    assert len(train) == 2  # drop_last for training
    val = dm.val_dataloader()
    assert len(val.dataset) == 4 and not val.dataset.train
    indices = torch.cat([b["index"] for b in val])
    assert indices.tolist() == [0, 1, 2, 3]  # every record once, in order


def test_several_validation_sets_give_one_loader_each(synthetic_lsp):
    dm = PoseDataModule(
        train=[f"lsp:train@{synthetic_lsp}"],
        val=[f"lsp:train@{synthetic_lsp}", f"lsp:test@{synthetic_lsp}"],
        test=[f"lsp:all@{synthetic_lsp}"],
        input_size=(32, 32), num_workers=0,
    )
    dm.setup("validate")
    assert [len(l.dataset) for l in dm.val_dataloader()] == [4, 4]
    dm.setup("test")
    assert len(dm.test_dataloader().dataset) == 8


def test_workers_and_loader_settings(synthetic_lsp):
    dm = PoseDataModule(
        train=[f"lsp:train@{synthetic_lsp}"], val=[f"lsp:test@{synthetic_lsp}"],
        input_size=(32, 32), batch_size=2, num_workers=2, persistent_workers=True, pin_memory=False,
    )
    dm.setup("fit")
    loader = dm.train_dataloader()
    assert loader.num_workers == 2 and loader.persistent_workers and not loader.pin_memory
    assert sum(len(b["index"]) for b in loader) == 4


def test_errors_say_what_to_fix(tmp_path, synthetic_lsp, monkeypatch):
    monkeypatch.delenv("POSELIT_DATA", raising=False)
    with pytest.raises(FileNotFoundError, match=r"dataset lsp:train@.*nowhere does not exist"):
        PoseDataModule(train=[f"lsp:train@{tmp_path / 'nowhere'}"], val=[]).setup("fit")
    with pytest.raises(ValueError, match="unknown dataset 'lps'.*did you mean lsp"):
        PoseDataModule(train=["lps:train"], val=[], data_root=str(tmp_path)).setup("fit")
    with pytest.raises(ValueError, match="give a path .* or a data root"):
        PoseDataModule(train=["lsp:train"], val=[], data_root=None).read(DatasetSpec("lsp"))


def test_real_lsp_protocol(data_root):
    dm = PoseDataModule(data_root=str(data_root), num_workers=0, batch_size=4)
    dm.setup("fit")
    assert [len(d) for d in dm.datasets["train"]] == [1000, 10000]
    assert len(dm.datasets["val"][0]) == 1000


def test_skeleton_is_known_from_dataset_names_without_reading(tmp_path):
    dm = PoseDataModule(train=["mpii:train@/nowhere/train.h5"], val=["mpii:valid@/nowhere"], data_root=str(tmp_path))
    assert dm.skeleton.name == "mpii" and dm.skeleton_spec == "mpii"
    with pytest.raises(ValueError, match="different skeletons"):
        PoseDataModule(train=["lsp:train"], val=["mpii:valid"]).skeleton


def test_holdout_validates_on_training_people_never_trained_on(synthetic_lsp):
    train = [f"lsp:train@{synthetic_lsp}", f"lsp:test@{synthetic_lsp}"]
    kwargs = dict(train=train, input_size=(32, 24), batch_size=1, num_workers=0, holdout=3, holdout_seed=5)
    dm = PoseDataModule(val=[f"lsp:test@{synthetic_lsp}"], **kwargs)
    dm.setup("fit")
    trained = {(r.image, r.keypoints.tobytes()) for d in dm.datasets["train"] for r in d.records}
    held, named = dm.datasets["val"]
    held_out = {(r.image, r.keypoints.tobytes()) for r in held.records}
    assert len(held_out) == 3 and len(trained) == 5 and not trained & held_out  # disjoint, nothing lost
    assert dm.annotations("val")[0].source.startswith("holdout 3 of ") and "(seed 5)" in dm.annotations("val")[0].source
    assert len(named) == 4 and not held.train  # the named val set follows, unchanged

    again = PoseDataModule(val=[], **kwargs)  # same seed and data: the same people, whatever val holds
    again.setup("validate")
    assert {(r.image, r.keypoints.tobytes()) for r in again.datasets["val"][0].records} == held_out
    other = PoseDataModule(val=[], **{**kwargs, "holdout_seed": 6})
    other.setup("validate")
    assert {(r.image, r.keypoints.tobytes()) for r in other.datasets["val"][0].records} != held_out


def test_holdout_larger_than_the_training_data_is_refused(synthetic_lsp):
    dm = PoseDataModule(train=[f"lsp:train@{synthetic_lsp}"], val=[], num_workers=0, holdout=4)
    with pytest.raises(ValueError, match=r"holdout must be between 1 and 3 people \(the training data have 4\), got 4"):
        dm.setup("fit")
    with pytest.raises(ValueError, match="holdout must be >= 0"):
        PoseDataModule(holdout=-1)


def _worker_nice_list(items: list[int]) -> list[int]:
    """The niceness of the process collating a batch (a loader worker)."""
    return [os.nice(0) for _ in items]


def test_loader_workers_run_at_lower_priority_than_the_trainer(synthetic_lsp):
    """On a CPU the loader workers must not preempt the training threads: each starts with
    its niceness raised by ``worker_nice`` (0: unchanged)."""
    base = os.nice(0)
    for worker_nice in (7, 0):
        dm = PoseDataModule(train=[f"lsp:train@{synthetic_lsp}"], val=[], input_size=(64, 64), batch_size=2,
                            num_workers=1, persistent_workers=False, worker_nice=worker_nice)
        settings = dm._loader_settings()
        loader = torch.utils.data.DataLoader(range(2), batch_size=1, num_workers=1,
                                             worker_init_fn=settings["worker_init_fn"], collate_fn=_worker_nice_list)
        assert [int(n) for batch in loader for n in batch] == [min(base + worker_nice, 19)] * 2  # 19: the most


def test_label_offsets_move_one_datasets_joints_in_training_and_held_out_people(synthetic_lsp):
    """``label_offsets`` moves the named dataset's hips when read, for the training people and
    the held-out people drawn from it alike; the other dataset keeps its labels."""
    import numpy as np

    from poselit.data import read_annotations
    from poselit.data.conventions import torso_frame

    moved, kept = f"lsp:train@{synthetic_lsp}", f"lsp:test@{synthetic_lsp}"
    kwargs = dict(train=[moved, kept], val=[], input_size=(32, 24), batch_size=1, num_workers=0, holdout=3)
    plain = PoseDataModule(**kwargs)
    shifted = PoseDataModule(**kwargs, label_offsets={moved: {"left_hip": [0.1, 0.0], "right_hip": [0.0, 0.2]}})
    for dm in (plain, shifted):
        dm.setup("fit")
    before = {r.image: r for d in [*plain.datasets["train"], *plain.datasets["val"]] for r in d.records}
    after = {r.image: r for d in [*shifted.datasets["train"], *shifted.datasets["val"]] for r in d.records}
    assert before.keys() == after.keys() and len(after) == 8
    lh, rh = (shifted.skeleton.index(n) for n in ("left_hip", "right_hip"))
    not_named = {r.image for r in read_annotations(kept)}
    assert len(not_named) == 4
    for image, record in after.items():
        old = before[image]
        if image in not_named:
            assert np.array_equal(record.keypoints, old.keypoints)  # lsp:test: not named, kept
            continue
        up, left, length = (v[0] for v in torso_frame(old.keypoints[None], shifted.skeleton))
        np.testing.assert_allclose(record.keypoints[lh], old.keypoints[lh] + 0.1 * length * up, atol=1e-3)
        np.testing.assert_allclose(record.keypoints[rh], old.keypoints[rh] - 0.2 * length * left, atol=1e-3)  # out: rightwards
        others = [j for j in range(14) if j not in (lh, rh)]
        assert np.array_equal(record.keypoints[others], old.keypoints[others])
    with pytest.raises(ValueError, match=r"label_offsets names lspet:train, which is not among the datasets"):
        PoseDataModule(**kwargs, label_offsets={"lspet": {"left_hip": [0.1, 0.0]}})


def test_shift_joints_refuses_unknown_joints_and_sideless_outward_moves(synthetic_lsp):
    from poselit.data import read_annotations
    from poselit.data.conventions import shift_joints

    annotations = read_annotations(f"lsp:train@{synthetic_lsp}")
    with pytest.raises(ValueError, match=r"no joint 'left_hipp' in skeleton 'lsp' \(right_ankle, "):
        shift_joints(annotations, {"left_hipp": (0.1, 0.0)})
    with pytest.raises(ValueError, match=r"joint 'neck' has no side"):
        shift_joints(annotations, {"neck": (0.0, 0.1)})
    with pytest.raises(ValueError, match=r"the offset of 'neck' must be two numbers \(up, out\), got \[0.1\]"):
        shift_joints(annotations, {"neck": [0.1]})
    up_only = shift_joints(annotations, {"neck": (0.1, 0.0)})  # 'up' needs no side
    assert not all((a.keypoints == b.keypoints).all() for a, b in zip(annotations.records, up_only.records))
