"""Getting a model's weights: sha256 checks, the Hugging Face cache, downloads.

:func:`download` resolves a zoo name, an ``hf://ORG/NAME[@REVISION]`` reference or an
export folder to its card (or ``config.json``) and a local weights file whose sha256
matched; a mismatching file is never handed on. Downloads go through ``huggingface_hub``:
its cache (``HF_HOME``, ``HF_HUB_CACHE``, or ``cache_dir=``), offline mode
(``HF_HUB_OFFLINE=1``: cached files only), its token (``HF_TOKEN`` or ``hf auth login``)
and its progress bars. Nothing here imports the models.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from huggingface_hub import constants as hf_constants
from huggingface_hub import hf_hub_download
from huggingface_hub.errors import LocalEntryNotFoundError

from poselit import __version__
from poselit.zoo import ZOO_SCHEME
from poselit.zoo.catalog import info
from poselit.zoo.cards import (
    CONFIG_FILE,
    HF_SCHEME,
    REPO_ID_PATTERN,
    WEIGHTS_FILE,
    ChecksumError,
    HubLocation,
    ModelCard,
    WeightsNotFoundError,
    ZooError,
    read_config,
)


def source_weights(source: str) -> Path:
    """The local weights file, sha256-checked, of a zoo model named as a weights source
    (``init_from``): ``zoo:NAME`` (a card of the zoo) or ``hf://ORG/NAME[@REVISION]``."""
    return download(source.removeprefix(ZOO_SCHEME))[1]


def sha256_file(path: str | Path, chunk_size: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def verify_sha256(path: Path, expected: str, recovery: str) -> Path:
    """``path`` if its sha256 is ``expected``; otherwise a :class:`ChecksumError` that says the
    file was not loaded and how to recover."""
    actual = sha256_file(path)
    if actual != expected:
        real = path.resolve()
        shown = f"{path} (-> {real})" if real != path.absolute() else str(path)
        raise ChecksumError(
            f"{shown}: sha256 is {actual}, expected {expected}: the file is corrupt or not the "
            f"published one, so it was not loaded. {recovery}"
        )
    return path


def parse_hub_ref(ref: str) -> tuple[str, str | None]:
    """``hf://ORG/NAME[@REVISION]`` -> ``(repo_id, revision or None)``."""
    repo_id, _, revision = ref.removeprefix(HF_SCHEME).partition("@")
    if not ref.startswith(HF_SCHEME) or not REPO_ID_PATTERN.fullmatch(repo_id):
        raise ZooError(f"{ref!r}: expected hf://ORG/NAME[@REVISION]")
    return repo_id, revision or None


def hub_file(
    repo_id: str, filename: str, revision: str | None, *, cache_dir: str | Path | None, force: bool, name: str
) -> Path:
    """Download (or find in the cache) one file of a Hub model repository.

    Offline and not cached raises :class:`WeightsNotFoundError` naming the file, the cache
    and how to get the file there; ``name`` is what ``poselit zoo download`` would take.
    """
    try:
        path = hf_hub_download(
            repo_id,
            filename,
            revision=revision,
            cache_dir=cache_dir,
            force_download=force,
            library_name="poselit",
            library_version=__version__,
        )
    except LocalEntryNotFoundError as err:
        cache = cache_dir or hf_constants.HF_HUB_CACHE
        offline = hf_constants.is_offline_mode()
        reason = "offline mode is on (HF_HUB_OFFLINE)" if offline else "the Hub cannot be reached"
        raise WeightsNotFoundError(
            f"{filename} of hf://{repo_id}@{revision or 'main'} is not in the Hugging Face cache ({cache}) and "
            f"{reason}. Run 'poselit zoo download {name}' on a connected machine and copy its cache here "
            f"(HF_HOME / HF_HUB_CACHE choose the folder), or load a local export folder instead: "
            f"poselit.zoo.load('path/to/folder')"
        ) from err
    return Path(path)


def download(
    name: str,
    *,
    revision: str | None = None,
    cache_dir: str | Path | None = None,
    force: bool = False,
    zoo_dir: str | Path | None = None,
) -> tuple[ModelCard, Path]:
    """Resolve a zoo name, ``hf://`` reference or export folder to its card (or config) and a
    local weights file whose sha256 has been checked.

    Args:
        name: Zoo name, ``hf://ORG/NAME[@REVISION]`` or the path of an export folder.
        revision: Hub revision instead of the card's pinned one (its ``config.json`` then
            describes the model) or the reference's.
        cache_dir: Hugging Face cache folder (default: ``HF_HUB_CACHE``, ``$HF_HOME/hub``).
        force: Download again even if cached (to replace a corrupt file).
        zoo_dir: Card folder instead of ``$POSELIT_ZOO`` / the built-in zoo.
    """
    if name.startswith(HF_SCHEME):
        repo_id, pinned = parse_hub_ref(name)
        return _download_export(repo_id, revision or pinned, cache_dir, force)
    folder = Path(name).expanduser()
    if folder.is_dir():
        card = read_config(folder / CONFIG_FILE)
        recovery = "Export the folder again with 'poselit zoo export'."
        return card, verify_sha256(existing_weights(card.weights_path(), card), card.weights.sha256, recovery)
    card = info(name, zoo_dir=zoo_dir)
    hub = card.weights.hub
    if revision is not None and (hub is None or revision != hub.revision):
        if hub is None:
            raise ZooError(f"{card.source}: {card.name} has no Hub location, so revision {revision!r} does not apply")
        return _download_export(hub.repo_id, revision, cache_dir, force)
    local = card.weights_path()
    if local is not None and local.is_file() and not (force and hub and hub.revision):
        elsewhere = f", or delete it to use the Hub copy ({hub.ref})" if hub and hub.revision else ""
        recovery = f"Restore it (export the checkpoint again with 'poselit zoo export'){elsewhere}."
        return card, verify_sha256(local, card.weights.sha256, recovery)
    if hub is None or hub.revision is None:
        raise WeightsNotFoundError(
            f"{card.source}: weights file {local} does not exist and {card.name} is not published on the Hub "
            f"(no weights.hub.revision); export it again with 'poselit zoo export', or publish it"
        )
    path = hub_file(hub.repo_id, hub.filename, hub.revision, cache_dir=cache_dir, force=force, name=card.name)
    recovery = f"Download it again: 'poselit zoo download {card.name} --force' (or delete {path.resolve()})."
    return card, verify_sha256(path, card.weights.sha256, recovery)


def _download_export(
    repo_id: str, revision: str | None, cache_dir: str | Path | None, force: bool
) -> tuple[ModelCard, Path]:
    """The ``config.json`` and verified weights of an export folder on the Hub."""
    ref = HubLocation(repo_id, revision).ref
    card = read_config(hub_file(repo_id, CONFIG_FILE, revision, cache_dir=cache_dir, force=force, name=ref))
    file = card.weights.file or WEIGHTS_FILE  # read_config checked it is set
    path = hub_file(repo_id, file, revision, cache_dir=cache_dir, force=force, name=ref)
    recovery = f"Download it again: 'poselit zoo download {ref} --force' (or delete {path.resolve()})."
    return card, verify_sha256(path, card.weights.sha256, recovery)


def existing_weights(path: Path | None, card: ModelCard) -> Path:
    """``path``, the weights file a card or config names, or an error saying it is missing."""
    if path is None or not path.is_file():
        raise WeightsNotFoundError(f"{card.source}: weights file {path} does not exist")
    return path


__all__ = [
    "download",
    "existing_weights",
    "hub_file",
    "parse_hub_ref",
    "sha256_file",
    "source_weights",
    "verify_sha256",
]
