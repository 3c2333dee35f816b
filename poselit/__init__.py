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

from poselit.lazy import lazy_names
from poselit.skeletons import COCO, LSP, MPII, Skeleton, get_skeleton

__version__ = "0.1.0.dev0"

__all__ = ["COCO", "LSP", "MPII", "Predictor", "Skeleton", "get_skeleton", "zoo", "__version__"]

# poselit.zoo and poselit.Predictor, imported on first use
__getattr__, __dir__ = lazy_names(__name__, {"zoo": "poselit.zoo", "Predictor": "poselit.predict:Predictor"})
