"""poselit: a PyTorch Lightning model zoo for single-person 2D human pose estimation."""

from poselit.skeletons import COCO, LSP, MPII, Skeleton, get_skeleton

__version__ = "0.1.0.dev0"

__all__ = ["COCO", "LSP", "MPII", "Skeleton", "get_skeleton", "__version__"]
