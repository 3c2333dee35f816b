"""Seeded, resumable training order (poselit.data.sampling)."""

import torch
from torch.utils.data import Dataset

from poselit.data import read_annotations
from poselit.data.dataset import PoseDataset
from poselit.data.datamodule import PoseDataModule
from poselit.data.sampling import ConcatPoseDataset, ResumableDataLoader, SeededShuffleSampler


class Echo(Dataset):
    """Returns what the sampler asked for."""

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, index):
        return torch.tensor(index)


def test_epoch_order_and_seeds_are_a_function_of_seed_and_epoch():
    a, b = SeededShuffleSampler(Echo(10), seed=3), SeededShuffleSampler(Echo(10), seed=3)
    assert list(a) == list(b)
    assert sorted(i for i, _ in a) == list(range(10))
    b.set_epoch(1)
    assert list(a) != list(b) and sorted(i for i, _ in b) == list(range(10))
    assert list(SeededShuffleSampler(Echo(10), seed=4)) != list(a)


def test_shards_of_two_processes_cover_the_epoch_permutation():
    whole = SeededShuffleSampler(Echo(7), seed=0).epoch_pairs(0)
    shards = [SeededShuffleSampler(Echo(7), num_replicas=2, rank=r, seed=0) for r in (0, 1)]
    assert [len(list(s)) for s in shards] == [4, 4]
    assert {p for s in shards for p in s} == set(whole)


def test_resumed_loader_continues_with_the_next_batch():
    full = ResumableDataLoader(Echo(11), SeededShuffleSampler(Echo(11), seed=1), batch_size=3, drop_last=True)
    epoch = [b.tolist() for b in full]
    assert len(epoch) == 3

    interrupted = ResumableDataLoader(Echo(11), SeededShuffleSampler(Echo(11), seed=1), batch_size=3, drop_last=True)
    iterator = iter(interrupted)
    next(iterator), next(iterator)
    state = interrupted.state_dict()
    assert state == {"epoch": 0, "batches": 2}

    resumed = ResumableDataLoader(Echo(11), SeededShuffleSampler(Echo(11), seed=1), batch_size=3, drop_last=True)
    resumed.load_state_dict(state)
    assert [b.tolist() for b in resumed] == epoch[2:]
    assert resumed.state_dict() == {"epoch": 0, "batches": 3}
    assert [b.tolist() for b in resumed] == epoch  # the skip applies once


def test_a_state_from_another_epoch_skips_nothing():
    loader = ResumableDataLoader(Echo(6), SeededShuffleSampler(Echo(6)), batch_size=2)
    loader.load_state_dict({"epoch": 0, "batches": 2})
    loader.sampler.set_epoch(1)
    assert len(list(loader)) == 3


def test_concat_routes_seeded_and_plain_indices():
    concat = ConcatPoseDataset([Echo(3), Echo(4)])
    assert concat[4].tolist() == 1 and concat[-1].tolist() == 3
    assert concat[(5, 99)].tolist() == [2, 99]


def test_seeded_samples_do_not_depend_on_workers(synthetic_lsp):
    annotations = read_annotations(f"lsp:all@{synthetic_lsp}")
    dataset = PoseDataset(annotations, (32, 32), train=True)
    torch.manual_seed(0)
    first = dataset[(2, 1234)]
    torch.manual_seed(1)  # the global generator plays no part
    again = dataset[(2, 1234)]
    assert torch.equal(first["image"], again["image"]) and torch.equal(first["keypoints"], again["keypoints"])
    assert not torch.equal(dataset[(2, 99)]["keypoints"], first["keypoints"])

    def batches(workers):
        dm = PoseDataModule(
            train=[f"lsp:train@{synthetic_lsp}", f"lsp:test@{synthetic_lsp}"], val=[],
            input_size=(32, 32), batch_size=2, num_workers=workers, persistent_workers=False, rotation=30.0,
        )
        dm.setup("fit")
        return [b["keypoints"] for b in dm.train_dataloader()]

    assert all(torch.equal(a, b) for a, b in zip(batches(0), batches(2), strict=True))
