"""Trained weights from the model zoo, through hooks: the models never import the zoo.

The zoo builds models, so it sits on top of them (``tests/test_imports.py`` holds the
layers). What the models offer that the zoo serves goes through two hooks here, which
:mod:`poselit.zoo.loading` fills when it is imported:

* :func:`load_pretrained`: ``Method.from_pretrained(name)``, a ready model
  (:func:`poselit.zoo.load`);
* :func:`weights_file`: the local file of a weights source such as ``init_from``, where a
  source may name a zoo model (``zoo:NAME``, ``hf://ORG/NAME[@REVISION]``).

A hook asked for before anything imported the zoo imports :data:`PROVIDER` by name, as the
method registry imports method classes by name, so ``Method.from_pretrained(name)`` works
in any program.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Callable

PretrainedLoader = Callable[..., Any]
"""``loader(name, *, expect=cls, **options)``: the ready model ``name`` of class ``cls``."""

SourceResolver = Callable[[str], Path]
"""``resolve(source)``: the local weights file of a source that starts with its prefix."""

PROVIDER = "poselit.zoo.loading"
"""The module that fills the hooks when it is imported."""

_loaders: list[PretrainedLoader] = []
_sources: dict[str, SourceResolver] = {}


def register_loader(loader: PretrainedLoader) -> None:
    """Make ``loader`` the one :func:`load_pretrained` calls."""
    _loaders[:] = [loader]


def register_weights_source(prefix: str, resolve: SourceResolver) -> None:
    """Let :func:`weights_file` hand a source starting with ``prefix`` (``"zoo:"``) to ``resolve``."""
    _sources[prefix] = resolve


def _provided() -> None:
    """Import :data:`PROVIDER` if no hook is filled yet (it fills them)."""
    if not (_loaders and _sources):
        importlib.import_module(PROVIDER)


def load_pretrained(name: str, expect: type, **options: Any) -> Any:
    """The ready model ``name`` (a zoo name, ``hf://`` reference or export folder) of class
    ``expect`` or a subclass, from the registered loader (``options``: its own)."""
    _provided()
    return _loaders[0](name, expect=expect, **options)


def weights_file(source: str | Path) -> Path:
    """The local file of a weights source: a registered source's (``zoo:NAME``,
    ``hf://ORG/NAME[@REVISION]``: fetched, checked), else ``source`` itself as a path."""
    text = str(source)
    if ":" in text:
        _provided()
        for prefix, resolve in _sources.items():
            if text.startswith(prefix):
                return resolve(text)
    return Path(source)


__all__ = [
    "PROVIDER",
    "PretrainedLoader",
    "SourceResolver",
    "load_pretrained",
    "register_loader",
    "register_weights_source",
    "weights_file",
]
