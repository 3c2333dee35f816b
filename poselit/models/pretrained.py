"""Trained weights from the model zoo, through hooks: the models never import the zoo.

The zoo builds models, so it sits on top of them (``tests/test_imports.py`` holds the
layers). What the models offer that the zoo serves goes through hooks here, which the
zoo's modules fill when they are imported:

* :func:`load_pretrained`: ``Method.from_pretrained(name)``, a ready model
  (:func:`poselit.zoo.load`; filled by :data:`PROVIDER`);
* :func:`weights_file`: the local file of a weights source such as ``init_from``, where a
  source may name a zoo model (``zoo:NAME``, ``hf://ORG/NAME[@REVISION]``; :data:`PROVIDER`);
* :func:`push_to_hub`: ``model.push_to_hub(repo_id)``, the model exported and uploaded to
  the Hugging Face Hub (:func:`poselit.zoo.push.push_to_hub`; filled by :data:`PUBLISHER`).

A hook asked for before anything imported the zoo imports its module by name, as the
method registry imports method classes by name, so ``Method.from_pretrained(name)`` and
``model.push_to_hub(repo_id)`` work in any program.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Callable

PretrainedLoader = Callable[..., Any]
"""``loader(name, *, expect=cls, **options)``: the ready model ``name`` of class ``cls``."""

SourceResolver = Callable[[str], Path]
"""``resolve(source)``: the local weights file of a source that starts with its prefix."""

ModelPublisher = Callable[..., Any]
"""``publish(model, repo_id, **options)``: ``model`` uploaded to the Hub repository ``repo_id``."""

PROVIDER = "poselit.zoo.loading"
"""The module that fills the loading hooks (:func:`load_pretrained`, :func:`weights_file`) when it is imported."""

PUBLISHER = "poselit.zoo.push"
"""The module that fills the publishing hook (:func:`push_to_hub`) when it is imported."""

_loaders: list[PretrainedLoader] = []
_sources: dict[str, SourceResolver] = {}
_publishers: list[ModelPublisher] = []


def register_loader(loader: PretrainedLoader) -> None:
    """Make ``loader`` the one :func:`load_pretrained` calls."""
    _loaders[:] = [loader]


def register_weights_source(prefix: str, resolve: SourceResolver) -> None:
    """Let :func:`weights_file` hand a source starting with ``prefix`` (``"zoo:"``) to ``resolve``."""
    _sources[prefix] = resolve


def register_publisher(publish: ModelPublisher) -> None:
    """Make ``publish`` the one :func:`push_to_hub` calls."""
    _publishers[:] = [publish]


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


def push_to_hub(model: Any, repo_id: str, **options: Any) -> Any:
    """Export ``model`` (weights, ``config.json``, a Hub ``README.md``) and upload it to the
    Hub model repository ``repo_id`` (``ORG/NAME``) with the registered publisher;
    ``options`` and the result are :func:`poselit.zoo.push.push_to_hub`'s."""
    if not _publishers:
        importlib.import_module(PUBLISHER)
    return _publishers[0](model, repo_id, **options)


__all__ = [
    "PROVIDER",
    "PUBLISHER",
    "ModelPublisher",
    "PretrainedLoader",
    "SourceResolver",
    "load_pretrained",
    "push_to_hub",
    "register_loader",
    "register_publisher",
    "register_weights_source",
    "weights_file",
]
