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
