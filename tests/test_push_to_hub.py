"""``model.push_to_hub(repo_id)`` on every method, against a fake Hub API as publishing is
tested (:class:`test_zoo.FakeHub`): what is uploaded is an export folder that loads back
as the same model, and nothing is written to the zoo."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from poselit import zoo
from poselit.models import BelagiannisRecurrent, BulatCascade
from test_zoo import COMMIT, REPO_ID, FakeHub, hub_cache, offline, tiny_luvizon, zoo_dir  # noqa: F401 (fixtures)


class SnapshotHub(FakeHub):
    """A :class:`FakeHub` that also keeps a copy of each uploaded folder's allowed files,
    as the repository holds them after the commit."""

    def __init__(self, remote: Path):
        super().__init__()
        self.remote = remote

    def upload_folder(self, **kwargs):
        folder = Path(kwargs["folder_path"])
        for name in kwargs["allow_patterns"]:
            shutil.copy2(folder / name, self.remote / name)
        return super().upload_folder(**kwargs)


@pytest.fixture
def hub(tmp_path):
    (tmp_path / "remote").mkdir()
    return SnapshotHub(tmp_path / "remote")


def outputs(model: torch.nn.Module, size: tuple[int, int]) -> torch.Tensor:
    crops = torch.randint(0, 256, (2, 3, *size), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        return model.eval().predict_poses(crops)["keypoints"]


def pushed_and_loaded(model, hub, tmp_path, **options):
    """Push ``model`` to the fake Hub, lay the commit out as a Hub cache, load it by its Hub name."""
    result = model.push_to_hub(REPO_ID, api=hub, **options)
    hub_cache(tmp_path / "hf-cache", REPO_ID, hub.remote, commit=result.revision)
    return result, zoo.load(f"hf://{REPO_ID}", cache_dir=tmp_path / "hf-cache")


def test_push_uploads_an_export_that_loads_back_as_the_same_model(hub, zoo_dir, tmp_path):
    model = tiny_luvizon()
    result, loaded = pushed_and_loaded(model, hub, tmp_path, commit_message="first")
    assert hub.calls[0] == ("create_repo", REPO_ID, {"repo_type": "model", "private": False, "exist_ok": True})
    upload = hub.calls[1][1]
    assert upload["repo_id"] == REPO_ID and upload["repo_type"] == "model" and upload["commit_message"] == "first"
    assert sorted(result.files) == sorted(upload["allow_patterns"]) == ["README.md", "config.json", "model.safetensors"]
    assert (result.repo_id, result.revision) == (REPO_ID, COMMIT) and result.url.endswith(f"/commit/{COMMIT}")
    assert type(loaded) is type(model) and torch.equal(outputs(loaded, (64, 64)), outputs(model, (64, 64)))
    config = json.loads((hub.remote / "config.json").read_text())
    assert config["name"] == "luvizon-tiny" and config["class_path"].endswith("LuvizonSoftArgmax")
    readme = (hub.remote / "README.md").read_text()
    assert f'from_zoo("hf://{REPO_ID}")' in readme and "poselit-push-" not in readme  # no temporary path
    assert list(zoo_dir.iterdir()) == []  # no zoo card: a pushed model is loaded by its Hub name
    assert not Path(upload["folder_path"]).exists()  # the temporary export is gone


def test_push_options_name_half_private(hub, zoo_dir, tmp_path):
    model = tiny_luvizon()
    result, loaded = pushed_and_loaded(model, hub, tmp_path, name="my-model", half=True, private=True)
    assert hub.calls[0][2]["private"] is True
    assert hub.calls[1][1]["commit_message"].startswith("Upload my-model (poselit ")
    config = json.loads((hub.remote / "config.json").read_text())
    assert config["name"] == "my-model" and config["weights"]["dtype"] == "float16"
    torch.testing.assert_close(outputs(loaded, (64, 64)), outputs(model, (64, 64)), atol=0.5, rtol=0)


def test_push_refuses_a_bad_repository_or_name_before_uploading(hub):
    model = tiny_luvizon()
    with pytest.raises(zoo.ZooError, match=r"push_to_hub: the Hub repository must be ORG/NAME, got 'luvizon'"):
        model.push_to_hub("luvizon", api=hub)
    with pytest.raises(zoo.ZooError, match=r"push_to_hub: name must be lowercase .*got 'My Model'"):
        model.push_to_hub(REPO_ID, name="My Model", api=hub)
    assert hub.calls == []


@pytest.mark.slow
@pytest.mark.parametrize(
    "build",
    [
        lambda: BulatCascade(backbone="resnet18", input_size=(64, 64)),
        lambda: BelagiannisRecurrent(skeleton="lsp", num_iterations=1, input_size=(64, 64)),
    ],
    ids=["bulat", "belagiannis"],
)
def test_every_method_pushes(build, hub, zoo_dir, tmp_path):
    torch.manual_seed(0)
    model = build().eval()
    _, loaded = pushed_and_loaded(model, hub, tmp_path)
    assert type(loaded) is type(model) and torch.equal(outputs(loaded, (64, 64)), outputs(model, (64, 64)))
