"""The model zoo: model cards -> ready models, and Lightning checkpoints -> Hub-ready folders.

One loader for three ways of naming a model::

    import poselit.zoo
    model = poselit.zoo.load("belagiannis-recurrent2-lsp")    # a card of the zoo
    model = poselit.zoo.load("hf://ORG/NAME@<commit>")        # an export folder on the Hugging Face Hub
    model = poselit.zoo.load("runs/export/my-model")          # an export folder on disk
    out = model.predict_poses(crops)                          # eval mode, on ``device``

One module per job, each importing only what it needs (the names below are re-exported
here and imported on first use, so ``import poselit.zoo`` is cheap):

- :mod:`~poselit.zoo.cards`: the card format (YAML cards, an export's ``config.json``);
- :mod:`~poselit.zoo.catalog`: the zoo folder (``zoo/`` in the source tree, shipped as
  ``poselit/zoo_cards``; ``POSELIT_ZOO=DIR`` or ``zoo_dir=`` for another): list and look up;
- :mod:`~poselit.zoo.hub`: sha256 checks, the Hugging Face cache, downloads;
- :mod:`~poselit.zoo.loading`: building a module from a card and loading its weights;
- :mod:`~poselit.zoo.export`: Lightning checkpoint -> export folder + card (with metrics);
- :mod:`~poselit.zoo.publishing`: the Hub README, uploading, pinning the commit;
- :mod:`~poselit.zoo.table`: the zoo table (``zoo/README.md``).

The card format and the downloads import nothing of the models.

**Safety.** Weights are only read as safetensors, after their sha256 matched the card or
config; a mismatching file is never loaded. Lightning checkpoints are read with
``weights_only=True``. Building a module never downloads backbone weights
(``pretrained=False``): the safetensors file holds every tensor. A config only names
classes of poselit or of modules the caller has already imported.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, tuple[str, ...]] = {
    "cards": (
        "ChecksumError",
        "HubLocation",
        "IncompatibleVersionError",
        "ModelCard",
        "WeightsInfo",
        "WeightsNotFoundError",
        "ZooError",
        "read_card",
        "read_config",
        "write_card",
    ),
    "catalog": ("ZOO_ENV", "all_cards", "builtin_zoo_dir", "info", "list_models", "zoo_folder"),
    "hub": ("download", "sha256_file"),
    "loading": ("check_card_class", "load", "load_with_card"),
    "export": ("RunConfig", "evaluate_model", "export_checkpoint", "find_recipe"),
    "publishing": ("PublishResult", "publish"),
    "table": ("markdown_table", "table_is_current", "write_table"),
}
"""The public names of the zoo, by the module that defines them."""

_HOME = {name: module for module, names in _EXPORTS.items() for name in names}


def __getattr__(name: str) -> Any:
    """The public names, imported from their module on first use; ``poselit.zoo.list()``
    is :func:`~poselit.zoo.catalog.list_models` (without shadowing the builtin here)."""
    target = "list_models" if name == "list" else name
    if target not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOME[target]}"), target)


def __dir__() -> list[str]:
    return sorted({*globals(), *_HOME, "list"})


__all__ = sorted([*_HOME, "list"])
