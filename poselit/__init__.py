"""poselit: a PyTorch Lightning model zoo for single-person 2D human pose estimation.

``import poselit`` stays light (skeletons only); the model zoo and the predictor, which
import torch and OpenCV, load on first use:

>>> import poselit
>>> from importlib.resources import files
>>> photo = str(files("poselit") / "assets" / "samples" / "astronaut.jpg")  # a bundled sample
>>> pose = poselit.Predictor.from_zoo("luvizon-tiny-lsp-demo")(photo)[0]    # whole image, no box
>>> pose.keypoints.shape, pose.joint_names[:2]
((14, 2), ('right_ankle', 'right_knee'))
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
