"""``model.push_to_hub(repo_id)``: a model in memory -> an export folder -> the Hugging Face Hub.

The Hub mixin habit (``huggingface_hub.ModelHubMixin``) on every method: the model is
written as a Lightning checkpoint into a temporary folder, exported from it exactly as
``poselit zoo export`` exports a training run's checkpoint (:func:`~poselit.zoo.export.export_checkpoint`:
the module is rebuilt from its constructor arguments and its tensors loaded strictly, so
what is uploaded loads), and uploaded as ``poselit zoo publish`` uploads
(:func:`~poselit.zoo.publishing.upload_export`). No zoo card is written: a pushed model is loaded
by its Hub name, ``poselit.zoo.load("hf://ORG/NAME")`` or ``Method.from_pretrained(...)``.
The methods reach this module through :func:`poselit.models.pretrained.push_to_hub`.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch

from poselit.atomic import write_atomic
from poselit.models.base import PoseLitModule
from poselit.models.pretrained import register_publisher
from poselit.zoo.cards import NAME_PATTERN, README_FILE, RECIPE_FILE, REPO_ID_PATTERN, HubLocation, ZooError
from poselit.zoo.export import export_checkpoint
from poselit.zoo.publishing import PublishResult, folder_files, hub_readme, upload_export


def save_checkpoint(model: PoseLitModule, path: Path) -> Path:
    """Write ``model`` as the Lightning checkpoint a trainer would save for export: its
    tensors (on the CPU), constructor arguments and what the model itself records on save."""
    checkpoint = {
        "state_dict": {key: value.detach().cpu() for key, value in model.state_dict().items()},
        "hyper_parameters": dict(model.hparams),
    }
    model.on_save_checkpoint(checkpoint)  # the class path, as in every training checkpoint
    torch.save(checkpoint, path)
    return path


def push_to_hub(
    model: PoseLitModule,
    repo_id: str,
    *,
    name: str | None = None,
    half: bool = False,
    private: bool = False,
    commit_message: str | None = None,
    api: object | None = None,
) -> PublishResult:
    """Upload ``model`` to the Hub model repository ``repo_id`` as an export folder.

    Args:
        model: Any method's module.
        repo_id: ``ORG/NAME``, created if needed.
        name: The model's name in its card (default: ``NAME`` of ``repo_id``, lowercased).
        half: Store float tensors as fp16 (half the size; loaded into an fp32 module).
        private: Create the repository as private.
        commit_message: Hub commit message (default: "Upload NAME (poselit VERSION)").
        api: The Hub client (default: ``huggingface_hub.HfApi``, whose token is ``HF_TOKEN``
            or ``hf auth login``'s; tests pass a fake).

    Returns:
        The repository, the uploaded files, the commit and its URL.
    """
    if not REPO_ID_PATTERN.fullmatch(repo_id):
        raise ZooError(f"push_to_hub: the Hub repository must be ORG/NAME, got {repo_id!r}")
    name = name or repo_id.split("/")[1].lower()
    if not NAME_PATTERN.fullmatch(name):
        raise ZooError(f"push_to_hub: name must be lowercase letters, digits, '.', '_' or '-', got {name!r}")
    with tempfile.TemporaryDirectory(prefix="poselit-push-") as temporary:
        # three folders deep: the export looks for a run's config.yaml up to three folders
        # above a checkpoint, which must all be this temporary folder's
        checkpoint = Path(temporary, "a", "b", "c", "model.ckpt")
        checkpoint.parent.mkdir(parents=True)
        folder = Path(temporary, name)
        card = export_checkpoint(save_checkpoint(model, checkpoint), name, folder, half=half, update_zoo=False)
        readme = hub_readme(card, has_recipe=(folder / RECIPE_FILE).is_file(), example=HubLocation(repo_id).ref)
        write_atomic(folder / README_FILE, readme)  # the export's names its temporary folder
        files = folder_files(folder)
        commit = upload_export(
            folder, repo_id, files, name=name, private=private, commit_message=commit_message, api=api
        )
    return PublishResult(repo_id, files, commit.oid, commit.commit_url)


register_publisher(push_to_hub)

__all__ = ["push_to_hub", "save_checkpoint"]
