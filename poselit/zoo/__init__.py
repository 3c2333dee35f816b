"""The model zoo: model cards -> ready models, and Lightning checkpoints -> Hub-ready folders.

One loader for three ways of naming a model::

    import poselit.zoo
    model = poselit.zoo.load("bulat-mobilenetv2-lsp")         # a card of the zoo
    model = poselit.zoo.load("hf://ORG/NAME@<commit>")        # an export folder on the Hugging Face Hub
    model = poselit.zoo.load("runs/export/my-model")          # an export folder on disk
    out = model.predict_poses(crops)                          # eval mode, on ``device``

>>> import poselit.zoo
>>> "bulat-mobilenetv2-lsp" in poselit.zoo.list()           # the card named above
True

One module per job, each importing only what it needs (the public names of each, its
``__all__``, are offered here and imported on first use, so ``import poselit.zoo`` is cheap):

- :mod:`~poselit.zoo.cards`: the card format (YAML cards, an export's ``config.json``);
- :mod:`~poselit.zoo.catalog`: the zoo folder (``zoo/`` in the source tree, shipped as
  ``poselit/zoo_cards``; ``POSELIT_ZOO=DIR`` or ``zoo_dir=`` for another): list and look up;
- :mod:`~poselit.zoo.hub`: sha256 checks, the Hugging Face cache, downloads;
- :mod:`~poselit.zoo.loading`: building a module from a card and loading its weights;
- :mod:`~poselit.zoo.export`: Lightning checkpoint -> export folder + card (with metrics);
- :mod:`~poselit.zoo.publishing`: the Hub README, uploading, pinning the commit;
- :mod:`~poselit.zoo.listing`: the zoo's listing of its cards (``zoo/README.md``).

The card format and the downloads import nothing of the models. The zoo sits on top of
the models: :mod:`~poselit.zoo.loading` fills their hooks (:mod:`poselit.models.pretrained`)
when imported, so ``Method.from_pretrained(name)`` loads through :func:`load` and an
``init_from`` source may name a zoo model (``zoo:NAME``, ``hf://ORG/NAME[@REVISION]``).

**Safety.** Weights are only read as safetensors, after their sha256 matched the card or
config; a mismatching file is never loaded. Lightning checkpoints are read with
``weights_only=True``. Building a module never downloads backbone weights
(``pretrained=False``): the safetensors file holds every tensor. A config only names
classes of poselit or of modules the caller has already imported.
"""

from __future__ import annotations

from poselit.lazy import lazy_names, submodule_targets

HF_SCHEME = "hf://"
"""A model folder on the Hugging Face Hub: ``hf://ORG/NAME[@REVISION]``."""

ZOO_SCHEME = "zoo:"
"""A card of the zoo named as a weights source: ``init_from: zoo:NAME``."""

SUBMODULES = ("cards", "catalog", "hub", "loading", "export", "publishing", "listing")
"""The modules whose public names (their ``__all__``) are offered here."""

_TARGETS = {**submodule_targets(__name__, SUBMODULES), "list": f"{__name__}.catalog:list_models"}
"""Every public name, and ``poselit.zoo.list()``: :func:`~poselit.zoo.catalog.list_models`
(without shadowing the builtin here)."""

__getattr__, __dir__ = lazy_names(__name__, _TARGETS)

__all__ = sorted([*_TARGETS, "HF_SCHEME", "ZOO_SCHEME"])
