"""Seeded, resumable training order: a run killed mid-epoch resumes on the exact batch.

Randomness of a training epoch has one source, :class:`SeededShuffleSampler`: for epoch
``e`` it draws the sample order *and one augmentation seed per sample* from a generator
seeded with ``(seed, e)``, and yields ``(index, seed)`` pairs that
:class:`~poselit.data.dataset.PoseDataset` accepts as indices. What a batch contains and
how it is augmented therefore depends neither on DataLoader workers nor on the process's
global random state, and :class:`ResumableDataLoader` saves how many batches of the epoch
were consumed (Lightning stores loaders with ``state_dict`` in its checkpoints) and skips
exactly those on resume.
"""

from __future__ import annotations

import bisect
import os
from typing import Any, Iterator

import torch
from torch.utils.data import ConcatDataset, DataLoader, Dataset, DistributedSampler

SeededIndex = tuple[int, int]
"""``(sample index, augmentation seed)``."""


def default_seed() -> int:
    """The run's seed: Lightning's ``seed_everything`` value (``PL_GLOBAL_SEED``), else 0."""
    return int(os.environ.get("PL_GLOBAL_SEED", 0))


class SeededShuffleSampler(DistributedSampler):
    """Shuffled ``(index, augmentation seed)`` pairs, a pure function of ``(seed, epoch)``.

    A :class:`DistributedSampler` (so Lightning keeps it under DDP instead of wrapping it):
    each of ``num_replicas`` processes takes every ``num_replicas``-th pair of the same
    epoch permutation, padded by repetition to equal shards as usual for training.

    Args:
        dataset: The training dataset.
        num_replicas: Processes sharing the epoch (1 without DDP).
        rank: This process's rank.
        seed: Base seed (default: :func:`default_seed`).
    """

    def __init__(self, dataset: Dataset, num_replicas: int = 1, rank: int = 0, seed: int | None = None) -> None:
        super().__init__(
            dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=default_seed() if seed is None else seed
        )
        self._resume: tuple[int, int] | None = None  # (epoch, pairs already consumed)

    def epoch_pairs(self, epoch: int) -> list[SeededIndex]:
        """This process's ``(index, seed)`` pairs of ``epoch``, in order."""
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        order = torch.randperm(len(self.dataset), generator=generator).tolist()
        seeds = torch.randint(0, 2**31 - 1, (len(order),), generator=generator).tolist()
        pairs = list(zip(order, seeds))
        pairs += pairs[: self.total_size - len(pairs)]  # equal shards (DistributedSampler)
        return pairs[self.rank : self.total_size : self.num_replicas]

    def resume(self, epoch: int, consumed: int) -> None:
        """Skip the first ``consumed`` pairs when epoch ``epoch`` is iterated next."""
        self._resume = (epoch, consumed)

    def pending_skip(self) -> int:
        """How many pairs the next iteration skips (a resume into the current epoch)."""
        if self._resume is None or self._resume[0] != self.epoch:
            return 0
        return self._resume[1]

    def __iter__(self) -> Iterator[SeededIndex]:  # type: ignore[override]
        start = self.pending_skip()
        self._resume = None
        return iter(self.epoch_pairs(self.epoch)[start:])


class ResumableDataLoader(DataLoader):
    """A training DataLoader whose ``state_dict`` records the batches consumed this epoch.

    Lightning saves it in every checkpoint and hands it back on ``--ckpt_path`` resume, so
    the interrupted epoch continues with the batch after the last one trained on. Needs a
    :class:`SeededShuffleSampler`.
    """

    def __init__(self, dataset: Dataset, sampler: SeededShuffleSampler, **kwargs: Any) -> None:
        super().__init__(dataset, sampler=sampler, **kwargs)
        self._consumed = 0

    def __iter__(self) -> Iterator[Any]:
        self._consumed = self.sampler.pending_skip() // self.batch_size
        for batch in super().__iter__():
            self._consumed += 1
            yield batch

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.sampler.epoch, "batches": self._consumed}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.sampler.resume(state["epoch"], state["batches"] * self.batch_size)


class ConcatPoseDataset(ConcatDataset):
    """:class:`ConcatDataset` that routes ``(index, seed)`` pairs as well as plain indices."""

    def __getitem__(self, index: int | SeededIndex) -> Any:
        flat, seed = index if isinstance(index, tuple) else (index, None)
        if flat < 0:
            flat += len(self)
        part = bisect.bisect_right(self.cumulative_sizes, flat)
        local = flat - (self.cumulative_sizes[part - 1] if part else 0)
        return self.datasets[part][local if seed is None else (local, seed)]
