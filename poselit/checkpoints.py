"""The one checkpoint reader: ``torch.save`` files read weights-only, with errors naming the file.

Everything that opens a checkpoint goes through :func:`read_checkpoint`: resuming and
testing checks (:func:`check_checkpoint`), ``init_from`` (:func:`check_weights`,
:func:`read_state_dict`) and ``poselit zoo export`` (with ``--average``, the mean of
several checkpoints' weights: :func:`average_state_dicts`). Nothing is unpickled
(``weights_only=True``): a file holding other objects is refused, and so is a damaged one,
naming the file rather than torch's internals. What a weights file is (a checkpoint or a
safetensors file) is read from its content, never from its name.

What :class:`~poselit.models.base.PoseLitModule` and ``poselit fit`` write into a
checkpoint besides Lightning's own keys is named here too: :data:`CLASS_KEY` (the class
that saved it) and :data:`CONFIG_KEY` (the run's configuration).
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any, Literal, Mapping, Sequence

import torch
from torch import Tensor

from poselit.files import load_safetensors, safetensors_shapes, weights_only_refusal
from poselit.skeletons import Skeleton, skeleton_from_spec

CLASS_KEY = "poselit"
"""Checkpoint key ``{"class_path": ...}``: the module class that saved the checkpoint."""

CONFIG_KEY = "poselit_config"
"""Checkpoint key of the run's configuration: ``{"yaml": full LightningCLI config,
"recipes": the -c files}``, written by ``poselit fit`` (``poselit.cli.lightning``)."""


class CheckpointError(ValueError):
    """A checkpoint that cannot be read: damaged, not a ``torch.save`` file, or holding
    objects other than tensors and plain data. The message names the file."""


def read_checkpoint(path: str | Path, *, mmap: bool = False) -> dict[str, Any]:
    """A ``torch.save`` file (e.g. a Lightning checkpoint) read with ``weights_only=True``.

    ``mmap`` maps the tensors instead of reading them, for a look at the hyper-parameters
    only. A missing file is a ``FileNotFoundError``; anything else that is wrong with it a
    :class:`CheckpointError` naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    if not zipfile.is_zipfile(path):  # what torch.save writes; torch's own errors name no file
        size = path.stat().st_size
        raise CheckpointError(
            f"{path}: not a checkpoint: torch.save writes a zip archive, this file ({size} bytes) is "
            f"{'empty' if not size else 'not one (truncated, damaged, another format, or a pre-1.6 torch.save)'}"
        )
    try:
        data = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except (RuntimeError, EOFError) as err:  # a zip archive whose content is damaged
        raise CheckpointError(f"{path}: the checkpoint cannot be read (damaged?): {str(err).splitlines()[0]}") from None
    except pickle.UnpicklingError as err:  # torch's message advises weights_only=False: not here
        raise CheckpointError(
            f"{path}: holds objects other than tensors and plain data ({weights_only_refusal(err)}); "
            "poselit reads checkpoints with weights_only=True only"
        ) from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: expected a dict of tensors (a checkpoint or state dict), got {type(data).__name__}")
    return data


def _is_safetensors(path: Path) -> bool:
    """True when ``path`` begins as a safetensors file does, whatever its name: an 8-byte
    little-endian header length that fits in the file, then the header's JSON object."""
    with path.open("rb") as file:
        head = file.read(9)
    return len(head) == 9 and head[8:] == b"{" and int.from_bytes(head[:8], "little") <= path.stat().st_size - 8


def weights_format(path: Path) -> Literal["safetensors", "checkpoint"]:
    """What a weights file holds, read from its content (a checkpoint renamed ``.pt`` is
    still a checkpoint): a safetensors header, or torch.save's zip archive. Anything else
    (an empty, truncated or pre-1.6 ``torch.save`` file) is a :class:`CheckpointError`
    naming the file; a missing one a ``FileNotFoundError``."""
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    if _is_safetensors(path):
        return "safetensors"
    if zipfile.is_zipfile(path):
        return "checkpoint"
    size = path.stat().st_size
    raise CheckpointError(
        f"{path}: not a readable safetensors file nor a checkpoint (torch.save's zip archive): this file "
        f"({size} bytes) is {'empty' if not size else 'truncated, damaged, another format, or a pre-1.6 torch.save'}"
    )


def read_state_dict(path: str | Path) -> dict[str, Tensor]:
    """Model tensors from a Lightning checkpoint or a state dict saved with ``torch.save``
    (read by :func:`read_checkpoint`) or a safetensors file (told apart by
    :func:`weights_format`). A zoo model named as a source (``zoo:NAME``) is fetched first,
    by :func:`poselit.models.pretrained.weights_file`."""
    path = Path(path)
    if weights_format(path) == "safetensors":
        return load_safetensors(path, "weights", CheckpointError)
    checkpoint = read_checkpoint(path)
    return checkpoint.get("state_dict", checkpoint)


def average_state_dicts(states: Sequence[Mapping[str, Tensor]], sources: Sequence[str]) -> dict[str, Tensor]:
    """The element-wise mean of state dicts of one network: weight averaging of checkpoints
    along one run's low-learning-rate trajectory, as in stochastic weight averaging (Izmailov
    et al. 2018, "Averaging Weights Leads to Wider Optima and Better Generalization").

    Floating-point tensors (batch norm's running statistics included) are averaged in
    float32 and returned in the first state dict's dtype; other tensors (batch norm's step
    counters) are the first's. Every state dict must have the first's keys and shapes;
    ``sources`` name them in the errors.

    >>> a, b = {"w": torch.tensor([1.0, 2.0]), "n": torch.tensor(3)}, {"w": torch.tensor([3.0, 6.0]), "n": torch.tensor(5)}
    >>> average_state_dicts([a, b], ["a.ckpt", "b.ckpt"])
    {'w': tensor([2., 4.]), 'n': tensor(3)}
    """
    if len(states) != len(sources) or not states:
        raise ValueError(f"expected one source name per state dict, got {len(states)} state dicts and {len(sources)} names")
    first, first_source = states[0], sources[0]
    for state, source in zip(states[1:], sources[1:]):
        missing, extra = sorted(first.keys() - state.keys()), sorted(state.keys() - first.keys())
        if missing or extra:
            raise CheckpointError(
                f"{source}: not the network of {first_source}, cannot average them: "
                f"{len(missing)} tensors missing (e.g. {missing[:1]}), {len(extra)} unexpected (e.g. {extra[:1]})"
            )
        for key, tensor in first.items():
            if state[key].shape != tensor.shape:
                raise CheckpointError(
                    f"{source}: {key} has shape {tuple(state[key].shape)}, {first_source} {tuple(tensor.shape)}: "
                    "not the same network, cannot average them"
                )
    return {
        key: torch.stack([state[key].float() for state in states]).mean(0).to(tensor.dtype)
        if tensor.is_floating_point() else tensor.clone()
        for key, tensor in first.items()
    }


def check_weights(path: str | Path, method: str | type) -> None:
    """Stop before training when ``path`` (``init_from``) cannot initialise ``method``.

    Decided by the content (:func:`weights_format`), never by the name: a safetensors file
    has its header read; a checkpoint is read weights-only (memory-mapped, so its tensors
    are not loaded) and, when it records the class that saved it, must be ``method``'s
    (:func:`check_checkpoint`). A plain state dict records no class and is not checked.
    """
    path = Path(path)
    if weights_format(path) == "safetensors":
        safetensors_shapes(path, "weights", CheckpointError)
    else:
        check_checkpoint(path, method)


def saved_class_path(checkpoint: dict[str, Any]) -> str | None:
    """The class a checkpoint was saved by: the one :class:`~poselit.models.base.PoseLitModule`
    records (:data:`CLASS_KEY`), else LightningCLI's ``_class_path`` hyper-parameter."""
    hparams = checkpoint.get("hyper_parameters") or {}
    return (checkpoint.get(CLASS_KEY) or {}).get("class_path") or hparams.get("_class_path")


def check_checkpoint(path: str | Path, method: str | type, skeleton: Skeleton | None = None) -> None:
    """Stop early, saying what to fix, when a Lightning checkpoint does not fit a recipe.

    Checks that it was trained by ``method`` (a class or its ``class_path``) and, when
    ``skeleton`` is given (resuming or testing with ``--ckpt_path``), for its joint count.
    Only the hyper-parameters are read (the tensors are memory-mapped, not loaded).
    """
    checkpoint = read_checkpoint(path, mmap=True)
    hparams = checkpoint.get("hyper_parameters", {})
    trained_by = saved_class_path(checkpoint)
    name = (method if isinstance(method, str) else method.__name__).rsplit(".", 1)[-1]
    if trained_by and trained_by.rsplit(".", 1)[-1] != name:
        raise ValueError(
            f"{path} is a {trained_by.rsplit('.', 1)[-1]} checkpoint but the recipe builds {name}: "
            f"use a {name} checkpoint, or set model.class_path: {trained_by}"
        )
    if skeleton is not None and "skeleton" in hparams:
        trained_for = skeleton_from_spec(hparams["skeleton"])
        if trained_for.num_joints != skeleton.num_joints:
            raise ValueError(
                f"{path} was trained for {trained_for.num_joints} joints ({trained_for.name}) but the "
                f"data have {skeleton.num_joints} ({skeleton.name}): test on {trained_for.name} data, or "
                f"fine-tune to the new joints with --model.init_args.init_from {path} instead of --ckpt_path"
            )


__all__ = [
    "CLASS_KEY",
    "CONFIG_KEY",
    "CheckpointError",
    "average_state_dicts",
    "check_checkpoint",
    "check_weights",
    "read_checkpoint",
    "read_state_dict",
    "saved_class_path",
    "weights_format",
]
