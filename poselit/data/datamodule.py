"""PoseDataModule: datasets by name -> train / val / test DataLoaders.

Training may combine several datasets of one skeleton (e.g. LSP train + LSP-extended,
the usual LSP protocol); validation and test keep each dataset's standard split apart,
one DataLoader per dataset, so every table row is scored on exactly its split.

``holdout=N`` draws N people (by ``holdout_seed``) out of the training datasets and
validates on them: checkpoint selection, learning-rate schedules and tuning then never see
a test split, which is measured once, at the end.
"""

from __future__ import annotations

import functools
import os

from dataclasses import replace
from functools import cached_property
from pathlib import Path
from typing import Literal

import numpy as np
import pytorch_lightning as pl
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from poselit.data.conventions import shift_joints
from poselit.data.dataset import BadImagePolicy, PoseDataset
from poselit.data.records import AnnotationSet
from poselit.data.sampling import ConcatPoseDataset, ResumableDataLoader, SeededShuffleSampler
from poselit.data.sources import DatasetSpec, default_data_root, read_annotations, source
from poselit.data.transforms import AugmentConfig
from poselit.geometry import DEFAULT_FILL, DEFAULT_PADDING
from poselit.lazy import lazy_names
from poselit.skeletons import Skeleton, get_skeleton

LoopStage = Literal["fit", "validate", "test", "predict"]
"""Lightning's loop stage, as ``setup`` receives it; not a cascade's training stage
(:data:`poselit.models.bulat.CascadeStage`)."""


class UnpaddedDistributedSampler(DistributedSampler):
    """Shards an evaluation set across processes **without** padding or repeating samples.

    PyTorch's :class:`DistributedSampler` pads every shard to the same length by repeating
    samples, which would count some people twice in the metrics. Here process ``r`` of
    ``n`` takes samples ``r, r + n, r + 2n, ...``; the sum-reduced metric states then add
    up to exactly the single-process counts. Lightning keeps a sampler that is already a
    ``DistributedSampler`` instead of replacing it.
    """

    def __init__(self, dataset: Dataset, num_replicas: int | None = None, rank: int | None = None) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=False, drop_last=False)
        self.num_samples = len(range(self.rank, len(dataset), self.num_replicas))
        self.total_size = len(dataset)

    def __iter__(self):
        return iter(range(self.rank, self.total_size, self.num_replicas))


def split_holdout(sets: list[AnnotationSet], count: int, seed: int) -> tuple[list[AnnotationSet], AnnotationSet]:
    """Draw ``count`` records out of ``sets`` (taken together) with ``seed``.

    Returns the sets without them (same order, each its own source) and the drawn records
    as one set, in the order of ``sets``. The draw depends only on the seed and the sets'
    sizes, so a recipe validates on the same people in every run.
    """
    total = sum(len(a) for a in sets)
    if not 0 < count < total:
        raise ValueError(f"holdout must be between 1 and {total - 1} people (the training data have {total}), got {count}")
    drawn = np.zeros(total, bool)
    drawn[np.random.default_rng(seed).choice(total, count, replace=False)] = True
    kept, held_out, start = [], [], 0
    for annotations in sets:
        mask = drawn[start : start + len(annotations)]
        start += len(annotations)
        kept.append(replace(annotations, records=[r for r, m in zip(annotations.records, mask) if not m]))
        held_out += [r for r, m in zip(annotations.records, mask) if m]
    sources = "+".join(a.source for a in sets)
    return kept, AnnotationSet(held_out, sets[0].skeleton, f"holdout {count} of {sources} (seed {seed})")


def lower_priority(increment: int, worker_id: int) -> None:
    """A loader worker's ``worker_init_fn``: its niceness raised by ``increment`` (nothing
    where the platform has no ``os.nice``)."""
    if hasattr(os, "nice"):
        os.nice(increment)


class PoseDataModule(pl.LightningDataModule):
    """Pose datasets chosen by name (``NAME[:SPLIT][@PATH]``, see :mod:`poselit.data.sources`).

    ``input_size``, ``padding``, ``fill`` and the skeleton describe the crops the model
    sees: ``poselit fit`` links them into the model (:mod:`poselit.cli.lightning`), which
    owns them from then on (its input description, recorded in checkpoints and cards).

    Args:
        train: Datasets concatenated for training (one skeleton).
        val: Datasets for validation, one DataLoader each.
        test: Datasets for testing (default: the validation datasets).
        data_root: Folder holding the dataset folders (default: ``$POSELIT_DATA``).
        input_size: Crop size ``(height, width)``.
        padding: Person-box enlargement before cropping: the crop side is
            ``200 * scale * padding`` px.
        scale: Training box-size range. rotation: Training rotation range (+- deg).
        flip_prob: Training horizontal-flip probability. shift: Training centre shift
            (fraction of the box). color_jitter: Training colour jitter strength.
        fill: Value of pixels outside the image (0-255, all channels).
        batch_size: Samples per batch (per process under DDP).
        num_workers: DataLoader worker processes.
        pin_memory: Pin host memory for faster host-to-GPU copies (default: when CUDA
            is available).
        persistent_workers: Keep workers alive between epochs (when ``num_workers > 0``).
        worker_nice: Added to each loader worker's niceness (``os.nice``, Unix), so that on a
            CPU the workers run in the cycles the training threads leave instead of
            preempting them (the Lightning step then keeps pace with the model alone:
            ``benchmarks/train_step.py``); 0: the trainer's priority.
        on_bad_image: ``"raise"`` or ``"skip"`` unreadable images (warned and counted).
        holdout: People drawn out of the training datasets (together) and used for
            validation instead of training: validation set 0 (``val/...`` metrics), before
            the ``val`` datasets. 0: no hold-out.
        holdout_seed: Seed of the hold-out draw: the same seed, data and ``holdout`` give
            the same people.
        label_offsets: Per dataset (as named in ``train`` / ``val`` / ``test``), joints moved
            to another labelling convention when read: ``{joint: (up, out)}`` in torso lengths
            (:func:`~poselit.data.conventions.shift_joints`), e.g. one dataset's hips to
            another's. Held-out people drawn from such a dataset are scored against the
            moved labels.
    """

    def __init__(
        self,
        train: list[str] = ["lsp:train", "lspet:train"],  # noqa: B006 (LightningCLI reads defaults)
        val: list[str] = ["lsp:test"],  # noqa: B006
        test: list[str] | None = None,
        data_root: str | None = None,
        input_size: tuple[int, int] = (256, 256),
        padding: float = DEFAULT_PADDING,
        scale: tuple[float, float] = (0.7, 1.3),
        rotation: float = 40.0,
        flip_prob: float = 0.5,
        shift: float = 0.0,
        color_jitter: float = 0.0,
        fill: int = DEFAULT_FILL,
        batch_size: int = 16,
        num_workers: int = 4,
        pin_memory: bool | None = None,
        persistent_workers: bool = True,
        worker_nice: int = 10,
        on_bad_image: BadImagePolicy = "raise",
        holdout: int = 0,
        holdout_seed: int = 0,
        label_offsets: dict[str, dict[str, tuple[float, float]]] | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        # recorded as the model records it (see PoseLitModule.__init__)
        self.hparams["input_size"] = self._hparams_initial["input_size"] = (int(input_size[0]), int(input_size[1]))
        self.train_specs = [DatasetSpec.parse(s) for s in train]
        self.val_specs = [DatasetSpec.parse(s) for s in val]
        self.test_specs = [DatasetSpec.parse(s) for s in (test if test is not None else val)]
        self.data_root = data_root or default_data_root()
        self.augment = AugmentConfig(
            scale=tuple(scale), rotation=rotation, flip_prob=flip_prob, shift=shift, color_jitter=color_jitter
        )
        if holdout < 0:
            raise ValueError(f"holdout must be >= 0 people, got {holdout}")
        self.label_offsets = {str(DatasetSpec.parse(name)): dict(joints) for name, joints in (label_offsets or {}).items()}
        named = {str(s) for s in (*self.train_specs, *self.val_specs, *self.test_specs)}
        for name in self.label_offsets.keys() - named:
            raise ValueError(f"label_offsets names {name}, which is not among the datasets ({', '.join(sorted(named))})")
        self.datasets: dict[str, list[PoseDataset]] = {}

    def read(self, spec: DatasetSpec) -> AnnotationSet:
        """Read one dataset's annotations (relative paths resolved against ``data_root``),
        its joints moved as ``label_offsets`` says."""
        annotations = read_annotations(spec, self.data_root)
        offsets = self.label_offsets.get(str(spec))
        return shift_joints(annotations, offsets) if offsets else annotations

    def make_dataset(self, annotations: AnnotationSet, train: bool) -> PoseDataset:
        """Wrap records in a :class:`PoseDataset` with this module's settings."""
        hp = self.hparams
        return PoseDataset(
            annotations,
            hp.input_size,
            train=train,
            augment=self.augment,
            padding=hp.padding,
            fill=hp.fill,
            on_bad_image=hp.on_bad_image,
        )

    def specs(self, stage: str) -> list[DatasetSpec]:
        """The datasets a stage needs (``train`` / ``val`` / ``test``)."""
        return {"train": self.train_specs, "val": self.val_specs, "test": self.test_specs}[stage]

    @staticmethod
    def parts(stage: LoopStage | None) -> tuple[str, ...]:
        """The dataset parts (``train`` / ``val`` / ``test``) a trainer stage reads."""
        return {
            "fit": ("train", "val"),
            "validate": ("val",),
            "test": ("test",),
            "predict": ("test",),
            None: ("train", "val", "test"),
        }[stage]

    def check(self, stage: LoopStage | None = None) -> None:
        """Fail fast, before any training, on an unknown dataset name or a missing path."""
        for part in self.parts(stage):
            for spec in self.specs(part):
                spec.resolve_path(self.data_root)
        if stage in ("fit", None) and not self.train_specs:
            raise ValueError("data.train is empty: name at least one training dataset, e.g. lsp:train")

    def annotations(self, part: str) -> list[AnnotationSet]:
        """The annotation sets of a part (``train`` / ``val`` / ``test``), hold-out applied:
        ``train`` without the held-out people, ``val`` with them first."""
        if not self.hparams.holdout or part == "test":
            return [self.read(s) for s in self.specs(part)]
        train, held_out = self._holdout_split
        return train if part == "train" else [held_out, *(self.read(s) for s in self.val_specs)]

    @cached_property
    def _holdout_split(self) -> tuple[list[AnnotationSet], AnnotationSet]:
        """The training sets read once and split once, for ``train`` and ``val`` alike."""
        sets = [self.read(s) for s in self.train_specs]
        return split_holdout(sets, self.hparams.holdout, self.hparams.holdout_seed)

    def setup(self, stage: LoopStage | None = None) -> None:
        for part in self.parts(stage):
            if part not in self.datasets:
                self.datasets[part] = [self.make_dataset(a, part == "train") for a in self.annotations(part)]
        skeletons = {d.skeleton.name: d.skeleton for ds in self.datasets.values() for d in ds}
        if len(skeletons) > 1:
            raise ValueError(
                f"datasets use different skeletons {sorted(skeletons)}; train, val and test "
                "must share one joint layout"
            )

    @property
    def skeleton(self) -> Skeleton:
        """The joint layout shared by all datasets.

        Known from the dataset names for LSP / LSP-extended / MPII (no file is read, so
        a recipe can be checked without its data); read from the first COCO-format file.
        """
        for datasets in self.datasets.values():
            if datasets:
                return datasets[0].skeleton
        specs = self.train_specs + self.val_specs + self.test_specs
        fixed = {source(s).skeleton for s in specs}
        if len(fixed - {None}) > 1:
            raise ValueError(f"datasets {[str(s) for s in specs]} use different skeletons {sorted(fixed - {None})}")
        if None not in fixed:
            return get_skeleton(fixed.pop())
        return self.read(next(s for s in specs if source(s).skeleton is None)).skeleton

    @property
    def skeleton_spec(self) -> str | dict:
        """The skeleton in config form (:meth:`Skeleton.to_spec`), linked into the model."""
        return self.skeleton.to_spec()

    def _loader_settings(self) -> dict:
        hp = self.hparams
        return {
            "batch_size": hp.batch_size,
            "num_workers": hp.num_workers,
            "pin_memory": torch.cuda.is_available() if hp.pin_memory is None else hp.pin_memory,
            "persistent_workers": hp.persistent_workers and hp.num_workers > 0,
            "worker_init_fn": functools.partial(lower_priority, hp.worker_nice) if hp.worker_nice else None,
        }

    def loader(self, dataset: Dataset) -> DataLoader:
        """An evaluation DataLoader (in order) with this module's loader settings.

        Under ``torch.distributed`` it shards with :class:`UnpaddedDistributedSampler`, so
        every sample is scored exactly once.
        """
        distributed = dist.is_available() and dist.is_initialized()
        sampler = UnpaddedDistributedSampler(dataset) if distributed else None
        return DataLoader(dataset, sampler=sampler, **self._loader_settings())

    def _eval_loaders(self, part: str) -> DataLoader | list[DataLoader]:
        loaders = [self.loader(d) for d in self.datasets[part]]
        return loaders[0] if len(loaders) == 1 else loaders

    def train_dataloader(self) -> ResumableDataLoader:
        """Shuffled training batches (incomplete last batch dropped), resumable mid-epoch.

        Order and augmentation are a function of the run's seed and the epoch (see
        :mod:`poselit.data.sampling`); under DDP each process takes its shard of them.
        """
        datasets = self.datasets["train"]
        dataset = datasets[0] if len(datasets) == 1 else ConcatPoseDataset(datasets)
        trainer = self.trainer
        sampler = SeededShuffleSampler(
            dataset,
            num_replicas=trainer.world_size if trainer else 1,
            rank=trainer.global_rank if trainer else 0,
        )
        return ResumableDataLoader(dataset, sampler, drop_last=True, **self._loader_settings())

    def val_dataloader(self) -> DataLoader | list[DataLoader]:
        return self._eval_loaders("val")

    def test_dataloader(self) -> DataLoader | list[DataLoader]:
        return self._eval_loaders("test")

    def predict_dataloader(self) -> DataLoader | list[DataLoader]:
        return self._eval_loaders("test")


# Renamed, importable under its old name for one release (with a DeprecationWarning).
__getattr__, __dir__ = lazy_names(__name__, moved={"Stage": "poselit.data.datamodule:LoopStage"})
