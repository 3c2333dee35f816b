"""Datasets by name: ``"lsp:train"`` -> the right reader on the right files.

A dataset is named by a :class:`DatasetSpec`, written compactly as
``NAME[:SPLIT][@PATH]``:

============  ======================  =================================================
name          splits                  path (default: ``<data_root>/<folder>``)
============  ======================  =================================================
``lsp``       train, test, all        the LSP folder (``joints.mat``, ``images/``)
``lspet``     train                   the LSP-extended folder
``mpii``      valid, train, ...       a ``.h5``, ``.json`` or official ``.mat`` file, or
                                      a folder holding ``<split>.h5`` / ``<split>.json``
                                      / ``mpii_human_pose_v1_u12_1.mat``
``coco``      any (label only)        a COCO keypoints ``.json`` or a folder with one
============  ======================  =================================================

Examples: ``"lsp:test"``, ``"mpii:valid"``, ``"coco@data/coco-mini/person_keypoints.json"``.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from poselit.data.records import AnnotationSet


def default_data_root() -> str | None:
    """The data root from the ``POSELIT_DATA`` environment variable, if set.

    The one place the variable is read: the Python API (:func:`read_annotations`), the
    data module and every command resolve a missing data root through it.
    """
    return os.environ.get("POSELIT_DATA") or None


@dataclass(frozen=True)
class DatasetSpec:
    """Which annotations to read.

    Args:
        name: Dataset format: ``lsp``, ``lspet``, ``mpii`` or ``coco``.
        split: Split name (see the module docs).
        path: Folder or annotation file; relative paths are resolved against the data
            root. Default: the dataset's usual folder under the data root.
        images: Image folder, for layouts that keep images away from the annotations.
    """

    name: str
    split: str = "train"
    path: str | None = None
    images: str | None = None

    @classmethod
    def parse(cls, text: "str | DatasetSpec") -> "DatasetSpec":
        """Parse ``NAME[:SPLIT][@PATH]`` (a :class:`DatasetSpec` is returned as is)."""
        if isinstance(text, DatasetSpec):
            return text
        head, _, path = text.partition("@")
        name, _, split = head.partition(":")
        return cls(name=name.strip(), split=split.strip() or "train", path=path.strip() or None)

    def __str__(self) -> str:
        return f"{self.name}:{self.split}" + (f"@{self.path}" if self.path else "")

    def resolve_path(self, data_root: str | Path | None) -> Path:
        """The folder or file to read, from ``path`` and the data root (``None``:
        :func:`default_data_root`)."""
        folder = source(self).folder
        data_root = data_root or default_data_root()
        path = Path(self.path) if self.path else Path(folder)
        if not path.is_absolute():
            if data_root is None and not self.path:
                raise ValueError(
                    f"dataset {self}: give a path (NAME:SPLIT@PATH) or a data root holding the "
                    f"'{folder}' folder: POSELIT_DATA=DIR, or --data.data_root DIR (poselit fit, "
                    f"validate, test), --root DIR (the other commands)"
                )
            path = Path(data_root or ".") / path
        if not path.exists():
            raise FileNotFoundError(f"dataset {self}: {path} does not exist")
        return path


@dataclass(frozen=True)
class Source:
    """How to read one dataset format: its full name (``title``, as model cards and the
    Hub show it), its default folder, its reader, and its skeleton when the format fixes
    one (``None``: it comes from the file, as for COCO-format)."""

    title: str
    folder: str
    read: Callable[[Path, DatasetSpec], AnnotationSet]
    skeleton: str | None = None


def _read_lsp(path: Path, spec: DatasetSpec) -> AnnotationSet:
    from poselit.data.readers.lsp import read_lsp

    return read_lsp(path, spec.split)  # type: ignore[arg-type]


def _read_lspet(path: Path, spec: DatasetSpec) -> AnnotationSet:
    from poselit.data.readers.lsp import read_lspet

    if spec.split != "train":
        raise ValueError(f"LSP-extended has only a 'train' split, got {spec.split!r}")
    return read_lspet(path)


def _read_mpii(path: Path, spec: DatasetSpec) -> AnnotationSet:
    from poselit.data.readers.mpii import read_mpii

    if path.is_dir():
        candidates = [path / f"{spec.split}.h5", path / f"{spec.split}.json"]
        if spec.split == "train":
            candidates.append(path / "mpii_human_pose_v1_u12_1.mat")
        found = [c for c in candidates if c.is_file()]
        if not found:
            names = ", ".join(c.name for c in candidates)
            raise FileNotFoundError(f"dataset {spec}: none of {names} in {path}")
        path = found[0]
    return read_mpii(path, split=spec.split, images=spec.images)


def _read_coco(path: Path, spec: DatasetSpec) -> AnnotationSet:
    from poselit.data.readers.coco import read_coco

    if path.is_dir():
        found = sorted(path.glob("*.json"))
        if len(found) != 1:
            raise FileNotFoundError(
                f"dataset {spec}: expected one COCO .json in {path}, found "
                f"{[f.name for f in found] or 'none'}; name the file with @PATH"
            )
        path = found[0]
    return read_coco(path, images=spec.images)


SOURCES: dict[str, Source] = {
    "lsp": Source("Leeds Sports Pose", "lsp", _read_lsp, "lsp"),
    "lspet": Source("LSP extended", "lspet", _read_lspet, "lsp"),
    "mpii": Source("MPII Human Pose", "mpii", _read_mpii, "mpii"),
    "coco": Source("COCO keypoints", "coco", _read_coco),
}
"""The datasets poselit reads, by name: the one list of dataset names."""


def source(spec: DatasetSpec) -> Source:
    """The :class:`Source` of a spec's dataset name, with close matches in the error."""
    if spec.name not in SOURCES:
        close = difflib.get_close_matches(spec.name, SOURCES, n=2)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ValueError(f"unknown dataset {spec.name!r} (known: {', '.join(SOURCES)}){hint}")
    return SOURCES[spec.name]


def read_annotations(spec: str | DatasetSpec, data_root: str | Path | None = None) -> AnnotationSet:
    """Read the records of a dataset given by name, e.g. ``read_annotations("lsp:test", root)``.

    Without ``data_root``, relative paths resolve against ``$POSELIT_DATA``
    (:func:`default_data_root`), as in the commands.
    """
    spec = DatasetSpec.parse(spec)
    return source(spec).read(spec.resolve_path(data_root), spec)
