"""poselit: a PyTorch Lightning model zoo for single-person 2D human pose estimation."""

from poselit.skeletons import COCO, LSP, MPII, Skeleton, get_skeleton

__version__ = "0.1.0.dev0"

__all__ = ["COCO", "LSP", "MPII", "Skeleton", "get_skeleton", "__version__"]


def __getattr__(name: str):
    """``poselit.zoo`` imported on first use: ``import poselit`` stays light, and
    ``poselit.zoo.load("NAME")`` works after it."""
    if name == "zoo":
        import importlib

        return importlib.import_module("poselit.zoo")
    raise AttributeError(f"module 'poselit' has no attribute {name!r}")
