"""The zoo folder: the cards that ship with poselit (or ``$POSELIT_ZOO``'s), listed and looked up.

The built-in cards are the project's ``zoo/`` folder; a wheel ships them inside the
package as ``poselit/zoo_cards`` (``pyproject.toml`` maps the folder in).
``POSELIT_ZOO=DIR`` (or ``zoo_dir=``) uses the cards of another folder instead.
"""

from __future__ import annotations

import difflib
import fnmatch
import os
from pathlib import Path

from poselit.zoo.cards import REPO_ID_PATTERN, ModelCard, ZooError, read_card

ZOO_ENV = "POSELIT_ZOO"
"""The environment variable naming another card folder."""


def builtin_zoo_dir() -> Path:
    """The cards that come with poselit: ``poselit/zoo_cards`` in an installed wheel, the
    project's ``zoo/`` folder in a source checkout or an editable install."""
    package = Path(__file__).resolve().parents[1]  # poselit/
    installed = package / "zoo_cards"
    return installed if installed.is_dir() else package.parent / "zoo"


def zoo_folder(directory: str | Path | None = None) -> Path:
    """The card folder in use: ``directory``, else ``$POSELIT_ZOO``, else the built-in one."""
    return Path(directory or os.environ.get(ZOO_ENV) or builtin_zoo_dir())


def card_paths(directory: str | Path | None = None) -> dict[str, Path]:
    """``{name: card file}`` of every ``*.yaml`` card of the zoo folder, sorted by name."""
    folder = zoo_folder(directory)
    if not folder.is_dir():
        raise ZooError(f"zoo folder {folder_label(directory)} does not exist")
    return {path.stem: path for path in sorted(folder.glob("*.yaml"))}


def list_models(pattern: str | None = None, *, zoo_dir: str | Path | None = None) -> list[str]:
    """Names of the zoo's models, optionally filtered by a shell pattern (``"luvizon-*"``).

    Also available as ``poselit.zoo.list()``.
    """
    names = card_paths(zoo_dir)
    return [name for name in names if pattern is None or fnmatch.fnmatch(name, pattern)]


def info(name: str, *, zoo_dir: str | Path | None = None) -> ModelCard:
    """The card of a zoo model; an unknown name is an error listing close names."""
    paths = card_paths(zoo_dir)
    if name in paths:
        return read_card(paths[name])
    close = difflib.get_close_matches(name, paths, n=5, cutoff=0.5)
    hints = [f"close names: {', '.join(close)}" if close else f"known: {', '.join(paths) or 'none'}"]
    if REPO_ID_PATTERN.fullmatch(name):
        hints.append(f"for a Hub repository write hf://{name}")
    if os.sep in name or name.startswith("."):
        hints.append(f"no export folder {name} either")
    raise ZooError(
        f"unknown zoo model {name!r} in {folder_label(zoo_dir)}; {'; '.join(hints)} (see 'poselit zoo list')"
    )


def folder_label(directory: str | Path | None = None) -> str:
    """The card folder in use, for messages, saying when it comes from ``$POSELIT_ZOO``."""
    return f"{zoo_folder(directory)}" + (f" (${ZOO_ENV})" if directory is None and os.environ.get(ZOO_ENV) else "")


def all_cards(directory: str | Path | None = None) -> list[ModelCard]:
    """Every card of the zoo folder, read and checked."""
    return [read_card(path) for path in card_paths(directory).values()]


__all__ = ["ZOO_ENV", "all_cards", "builtin_zoo_dir", "card_paths", "folder_label", "info", "list_models", "zoo_folder"]
