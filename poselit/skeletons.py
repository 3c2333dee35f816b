"""Skeletons: joint names, flip pairs, limbs and PCK normalisers.

A :class:`Skeleton` is the one place that knows what joint ``k`` means. Everything else
(readers, augmentation, target codecs, metrics, drawing) asks the skeleton instead of
hard-coding a joint index.

Joint names follow COCO's ``left_*`` / ``right_*`` style, so flip pairs are derived from
the names and never typed twice. Three skeletons are built in:

* ``mpii`` (16 joints, order of the MPII release and of the stacked-hourglass files),
* ``lsp`` (14 joints, order of ``joints.mat`` of LSP and LSP-extended),
* ``coco`` (17 joints, order of COCO ``person_keypoints``),

and :meth:`Skeleton.from_coco_category` builds one for any COCO-format keypoint category.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field, replace
from typing import Literal, Mapping, Sequence

import numpy as np

NormKind = Literal["head", "torso", "bbox"]
"""What a skeleton's PCK normaliser is.

* ``head``: the annotation's head size (MPII PCKh; 0.6 x head-box diagonal).
* ``torso``: the distance between the two joints of :attr:`Skeleton.torso`
  (LSP PCK: left shoulder to right hip, as in the public LSP evaluation code).
* ``bbox``: the longer side of the annotated person box (COCO-format data, which has
  neither head boxes nor a fixed torso definition).
"""

Side = Literal["left", "right", "center"]

_SIDE_PREFIXES: tuple[tuple[str, Side], ...] = (("left_", "left"), ("right_", "right"))


def side_of(name: str) -> Side:
    """Body side of a joint from its name (``left_``/``right_`` prefix, else centre)."""
    for prefix, side in _SIDE_PREFIXES:
        if name.startswith(prefix):
            return side
    return "center"


def flip_pairs_from_names(names: Sequence[str]) -> tuple[tuple[int, int], ...]:
    """Pair every ``left_X`` joint with its ``right_X`` partner.

    Returns ``(left_index, right_index)`` pairs in the order the left joints appear.
    A ``left_`` joint without a ``right_`` partner (or the reverse) is an error, because
    a horizontal flip could not map it anywhere.
    """
    index = {name: i for i, name in enumerate(names)}
    pairs: list[tuple[int, int]] = []
    for name, i in index.items():
        side = side_of(name)
        if side == "center":
            continue
        stem = name.split("_", 1)[1]
        partner = ("right_" if side == "left" else "left_") + stem
        if partner not in index:
            raise ValueError(
                f"joint {name!r} has no mirrored partner {partner!r}; give flip pairs "
                "explicitly or rename the joints"
            )
        if side == "left":
            pairs.append((i, index[partner]))
    return tuple(pairs)


@dataclass(frozen=True)
class Skeleton:
    """The joint layout of a dataset.

    Args:
        name: Short identifier (``"mpii"``, ``"lsp"``, ``"coco"`` or a custom name).
        joints: Joint names in annotation order.
        limbs: Joint index pairs drawn as bones and used for limb heatmaps.
        flip_pairs: ``(left, right)`` index pairs swapped by a horizontal flip. Derived
            from ``left_``/``right_`` names when omitted.
        norm: Kind of PCK normaliser, see :data:`NormKind`.
        torso: The joint pair whose distance is the ``torso`` normaliser.
        sigmas: Per-joint OKS constants ``sigma_i`` of COCO's keypoint evaluation
            (:func:`oks_sigmas`); None: the documented default. Not part of equality: the
            same joints with other sigmas are the same layout.
    """

    name: str
    joints: tuple[str, ...]
    limbs: tuple[tuple[int, int], ...]
    flip_pairs: tuple[tuple[int, int], ...] | None = None
    norm: NormKind = "bbox"
    torso: tuple[int, int] | None = None
    sigmas: tuple[float, ...] | None = field(default=None, compare=False)
    flip_index: tuple[int, ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        joints = tuple(self.joints)
        if len(set(joints)) != len(joints):
            raise ValueError(f"skeleton {self.name!r} has duplicate joint names: {joints}")
        object.__setattr__(self, "joints", joints)
        k = len(joints)
        limbs = tuple((int(a), int(b)) for a, b in self.limbs)
        pairs = (
            flip_pairs_from_names(joints)
            if self.flip_pairs is None
            else tuple((int(a), int(b)) for a, b in self.flip_pairs)
        )
        for what, items in (("limb", limbs), ("flip pair", pairs)):
            for a, b in items:
                if not (0 <= a < k and 0 <= b < k) or a == b:
                    raise ValueError(
                        f"skeleton {self.name!r}: {what} ({a}, {b}) is not a pair of "
                        f"distinct joint indices in [0, {k})"
                    )
        object.__setattr__(self, "limbs", limbs)
        object.__setattr__(self, "flip_pairs", pairs)
        if self.sigmas is not None:
            sigmas = tuple(float(x) for x in self.sigmas)
            if len(sigmas) != k or not all(0 < x < float("inf") for x in sigmas):
                raise ValueError(f"skeleton {self.name!r}: sigmas must be {k} positive numbers, got {sigmas}")
            object.__setattr__(self, "sigmas", sigmas)
        if self.norm == "torso" and self.torso is None:
            raise ValueError(f"skeleton {self.name!r}: norm='torso' needs the torso joints")
        flip = list(range(k))
        for a, b in pairs:
            if flip[a] != a or flip[b] != b:
                raise ValueError(f"skeleton {self.name!r}: joint in two flip pairs: ({a}, {b})")
            flip[a], flip[b] = b, a
        object.__setattr__(self, "flip_index", tuple(flip))

    @property
    def num_joints(self) -> int:
        return len(self.joints)

    def index(self, joint: str) -> int:
        """Index of a joint by name, with close matches in the error."""
        try:
            return self.joints.index(joint)
        except ValueError:
            close = difflib.get_close_matches(joint, self.joints, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise KeyError(f"skeleton {self.name!r} has no joint {joint!r}{hint}") from None

    def sides(self) -> tuple[Side, ...]:
        """Body side of every joint (for colouring: left, right, centre)."""
        return tuple(side_of(n) for n in self.joints)

    def torso_size(self, keypoints: np.ndarray, visibility: np.ndarray) -> float:
        """Torso normaliser ``||torso[0] - torso[1]||``; 0.0 when either is not annotated."""
        if self.torso is None:
            raise ValueError(f"skeleton {self.name!r} defines no torso joints")
        a, b = self.torso
        if visibility[a] == 0 or visibility[b] == 0:
            return 0.0
        return float(np.linalg.norm(np.asarray(keypoints[a]) - np.asarray(keypoints[b])))

    def to_spec(self) -> str | dict:
        """The config form of this skeleton: its name if built in, else a COCO category.

        Inverse of :func:`skeleton_from_spec`; plain JSON, so recipes and exported model
        configs can carry custom keypoint layouts.
        """
        if SKELETONS.get(self.name) == self and SKELETONS[self.name].sigmas == self.sigmas:
            return self.name
        return {
            "name": self.name,
            "keypoints": list(self.joints),
            "skeleton": [[a + 1, b + 1] for a, b in self.limbs],
            "flip_pairs": [list(p) for p in self.flip_pairs],
            **({} if self.sigmas is None else {"sigmas": list(self.sigmas)}),
        }

    @classmethod
    def from_coco_category(cls, category: Mapping, name: str | None = None) -> "Skeleton":
        """Build a skeleton from a COCO-format ``categories`` entry.

        Uses ``keypoints`` (names) and ``skeleton`` (1-based joint pairs) from the
        category; flip pairs come from an optional ``flip_pairs`` field (0-based) or are
        derived from ``left_``/``right_`` names; OKS ``sigmas`` (one per joint) are read
        when given. The normaliser is the person box. Joint indices must be integers
        (``2`` or ``2.0``; ``1.7`` is an error, never truncated).
        """
        where = f"COCO category {category.get('name', '?')!r}"
        names = category.get("keypoints")
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            raise ValueError(f"{where}: field 'keypoints' must be a non-empty list of names, got {names!r}")
        k = len(names)
        limbs = _index_pairs(category.get("skeleton", []), "skeleton", 1, k, where)
        flip_pairs = category.get("flip_pairs")
        sigmas = category.get("sigmas")
        return cls(
            name=name or str(category.get("name", "custom")),
            joints=tuple(names),
            limbs=tuple((a - 1, b - 1) for a, b in limbs),
            flip_pairs=None if flip_pairs is None else _index_pairs(flip_pairs, "flip_pairs", 0, k, where),
            norm="bbox",
            sigmas=None if sigmas is None else _sigmas(sigmas, k, where),
        )


def _index_pairs(value: object, field_name: str, base: int, k: int, where: str) -> tuple[tuple[int, int], ...]:
    """A category's list of joint index pairs (``base``-based), checked: a list of
    two-element lists of integers in ``[base, k + base)``; anything else (``null``, a
    number, ``[1.7, 2]``) is an error naming the field and what was expected."""
    pair_of = f"a pair of integer {base}-based joint indices in [{base}, {k + base - 1}]"
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"{where}: field {field_name!r} must be a list of [a, b] entries, each {pair_of}; got {value!r}")
    pairs = []
    for pair in value:
        ok = isinstance(pair, (list, tuple)) and len(pair) == 2 and all(_is_integer(j) for j in pair)
        if not ok or not all(base <= j < k + base for j in pair):
            raise ValueError(f"{where}: {field_name!r} entry {pair!r} is not {pair_of}")
        pairs.append((int(pair[0]), int(pair[1])))
    return tuple(pairs)


def _is_integer(value: object) -> bool:
    """A JSON integer (``2``, or an integral float ``2.0``); booleans and ``1.7`` are not."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return float(value).is_integer()


def _sigmas(value: object, k: int, where: str) -> tuple[float, ...]:
    """A category's ``sigmas``: ``k`` positive finite numbers, or an error saying so."""
    ok = isinstance(value, list) and len(value) == k and all(
        not isinstance(s, bool) and isinstance(s, (int, float)) and 0 < s < float("inf") for s in value
    )
    if not ok:
        raise ValueError(f"{where}: field 'sigmas' must be a list of {k} positive numbers (one per joint), got {value!r}")
    return tuple(float(s) for s in value)


MPII = Skeleton(
    name="mpii",
    joints=(
        "right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle",
        "pelvis", "thorax", "upper_neck", "head_top",
        "right_wrist", "right_elbow", "right_shoulder",
        "left_shoulder", "left_elbow", "left_wrist",
    ),
    # The 15 bones of the MPII kinematic tree (the Belagiannis body-part heatmaps).
    limbs=(
        (0, 1), (1, 2), (2, 6), (3, 6), (3, 4), (4, 5),
        (6, 7), (7, 8), (8, 9),
        (10, 11), (11, 12), (12, 7), (13, 7), (13, 14), (14, 15),
    ),
    norm="head",
)

LSP = Skeleton(
    name="lsp",
    joints=(
        "right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle",
        "right_wrist", "right_elbow", "right_shoulder",
        "left_shoulder", "left_elbow", "left_wrist",
        "neck", "head_top",
    ),
    limbs=(
        (0, 1), (1, 2), (3, 4), (4, 5), (2, 3),
        (6, 7), (7, 8), (9, 10), (10, 11),
        (8, 12), (9, 12), (12, 13), (2, 8), (3, 9),
    ),
    norm="torso",
    # ||left shoulder - right hip||: 1-based joints 10 and 3 of the LSP evaluation code.
    torso=(9, 2),
)

COCO_SIGMAS: tuple[float, ...] = (
    0.026, 0.025, 0.025, 0.035, 0.035, 0.079, 0.079, 0.072, 0.072,
    0.062, 0.062, 0.107, 0.107, 0.087, 0.087, 0.089, 0.089,
)
"""COCO's per-keypoint OKS constants (``kpt_oks_sigmas`` of pycocotools' ``cocoeval.py``:
the standard deviation of each joint's annotation, relative to the object scale,
measured on 5000 redundantly annotated images)."""

DEFAULT_OKS_SIGMA = 0.067
"""OKS sigma of a custom joint whose name is not a COCO joint and that the category gives
no ``sigmas`` for: the mean of :data:`COCO_SIGMAS` (0.0669) rounded, i.e. a joint
annotated as precisely as an average COCO joint."""

COCO = Skeleton(
    name="coco",
    joints=(
        "nose", "left_eye", "right_eye", "left_ear", "right_ear",
        "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
        "left_wrist", "right_wrist", "left_hip", "right_hip",
        "left_knee", "right_knee", "left_ankle", "right_ankle",
    ),
    # COCO's own ``skeleton`` field, converted to 0-based.
    limbs=(
        (15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12), (5, 6),
        (5, 7), (6, 8), (7, 9), (8, 10), (1, 2), (0, 1), (0, 2), (1, 3), (2, 4),
        (3, 5), (4, 6),
    ),
    norm="bbox",
    sigmas=COCO_SIGMAS,
)

SKELETONS: dict[str, Skeleton] = {s.name: s for s in (MPII, LSP, COCO)}

# For each MPII slot, the LSP joint placed there (-1: no LSP joint). As in the Bulat et al.
# evaluation code: MPII 1..6 = LSP 1..6, 11..16 = LSP 7..12, 9..10 = LSP 13..14 (1-based);
# pelvis and thorax stay empty.
LSP_TO_MPII: tuple[int, ...] = (0, 1, 2, 3, 4, 5, -1, -1, 12, 13, 6, 7, 8, 9, 10, 11)


def get_skeleton(name: str | Skeleton) -> Skeleton:
    """Look a built-in skeleton up by name (a :class:`Skeleton` is returned as is)."""
    if isinstance(name, Skeleton):
        return name
    try:
        return SKELETONS[name]
    except KeyError:
        close = difflib.get_close_matches(name, SKELETONS, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise KeyError(
            f"unknown skeleton {name!r} (known: {', '.join(SKELETONS)}){hint}"
        ) from None


def remap_joints(
    keypoints: np.ndarray, visibility: np.ndarray, slots: Sequence[int]
) -> tuple[np.ndarray, np.ndarray]:
    """Place joints into another skeleton's slots.

    ``slots[j]`` is the source joint for target slot ``j`` (``-1``: none; the slot is
    marked not annotated with zero coordinates). Works on ``(..., K, 2)`` / ``(..., K)``.
    """
    index = np.asarray(slots)
    empty = index < 0
    keypoints = np.asarray(keypoints)[..., np.where(empty, 0, index), :].copy()
    visibility = np.asarray(visibility)[..., np.where(empty, 0, index)].copy()
    keypoints[..., empty, :] = 0
    visibility[..., empty] = 0
    return keypoints, visibility


def lsp_to_mpii(keypoints: np.ndarray, visibility: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Place LSP's 14 joints into MPII's 16 slots (pelvis and thorax not annotated)."""
    return remap_joints(keypoints, visibility, LSP_TO_MPII)


def oks_sigmas(skeleton: Skeleton) -> tuple[tuple[float, ...], tuple[str, ...]]:
    """The OKS sigmas of a skeleton's joints and the names of those given by default.

    The skeleton's own :attr:`~Skeleton.sigmas` when it has them (COCO's for ``coco``,
    a category's ``sigmas`` field); otherwise, joint by joint, COCO's sigma for a joint
    of the same name (the same point is annotated as precisely) and
    :data:`DEFAULT_OKS_SIGMA` for any other joint, which is then named in the second value.
    """
    if skeleton.sigmas is not None:
        return skeleton.sigmas, ()
    coco = dict(zip(COCO.joints, COCO_SIGMAS))
    sigmas = tuple(coco.get(name, DEFAULT_OKS_SIGMA) for name in skeleton.joints)
    return sigmas, tuple(name for name in skeleton.joints if name not in coco)


def skeleton_from_spec(spec: str | Mapping | Skeleton) -> Skeleton:
    """A skeleton from a config value: a built-in name or a COCO-format category dict.

    This is the form models take in their constructor, so a configuration (a recipe, a
    checkpoint's ``config.json``) describes custom keypoints in plain JSON.
    """
    if isinstance(spec, (str, Skeleton)):
        return get_skeleton(spec)
    skeleton = Skeleton.from_coco_category(spec)
    if skeleton.joints == COCO.joints:
        return COCO if skeleton.sigmas in (None, COCO.sigmas) else replace(COCO, sigmas=skeleton.sigmas)
    return skeleton
