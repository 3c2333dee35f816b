"""poselit: a PyTorch Lightning model zoo for single-person 2D human pose estimation.

``import poselit`` stays light (skeletons only); the model zoo and the predictor, which
import torch and OpenCV, load on first use:

>>> import poselit
>>> model = poselit.zoo.load("luvizon-tiny-lsp-demo")        # doctest: +SKIP
>>> pose = poselit.Predictor(model)("photo.jpg")[0]           # doctest: +SKIP
"""

import importlib

from poselit.skeletons import COCO, LSP, MPII, Skeleton, get_skeleton

__version__ = "0.1.0.dev0"

# attribute -> (module, name in it; None for the module itself), imported on first use
_LAZY = {"zoo": ("poselit.zoo", None), "Predictor": ("poselit.predict", "Predictor")}

__all__ = ["COCO", "LSP", "MPII", "Predictor", "Skeleton", "get_skeleton", "zoo", "__version__"]


def __getattr__(name: str):
    """``poselit.zoo`` and ``poselit.Predictor``, imported on first use."""
    if name not in _LAZY:
        raise AttributeError(f"module 'poselit' has no attribute {name!r}")
    module_name, attribute = _LAZY[name]
    module = importlib.import_module(module_name)
    return module if attribute is None else getattr(module, attribute)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
