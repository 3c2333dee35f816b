"""The notebooks in notebooks/ are stored without outputs and run top to bottom.

Each runs in a fresh Jupyter kernel (nbclient) with a temporary working directory, so
what it writes lands there; the fine-tuning notebook runs with its tiny settings
(``POSELIT_NOTEBOOK_SMOKE=1``) on the real coco-mini data.
"""

import json
import re
import sys
from pathlib import Path

import cv2
import nbformat
import pytest
from huggingface_hub import ModelCard as HubModelCard
from nbclient import NotebookClient

import poselit
from poselit.skeletons import COCO, LSP

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


KERNEL = "poselit-tests"


@pytest.fixture
def kernel(tmp_path_factory, monkeypatch) -> str:
    """A Jupyter kernel running this interpreter. The ``python3`` kernel that ipykernel
    installs starts whatever ``python`` is first on the PATH: another interpreter, or none."""
    folder = tmp_path_factory.mktemp("jupyter")
    spec = folder / "kernels" / KERNEL / "kernel.json"
    spec.parent.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    spec.write_text(json.dumps({"argv": argv, "display_name": KERNEL, "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(folder))
    return KERNEL


def execute(name: str, cwd: Path, kernel: str) -> nbformat.NotebookNode:
    """Run a notebook in a new kernel whose working directory is ``cwd``; a failing cell
    raises ``CellExecutionError`` with the cell and its traceback."""
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    NotebookClient(notebook, timeout=600, kernel_name=kernel, resources={"metadata": {"path": str(cwd)}}).execute()
    return notebook


def test_notebooks_are_stored_without_outputs():
    found = sorted(path.name for path in NOTEBOOKS.glob("*.ipynb"))
    assert found == ["finetune_custom_keypoints.ipynb", "quickstart.ipynb"]
    for name in found:
        notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
        nbformat.validate(notebook)
        code = [cell for cell in notebook.cells if cell.cell_type == "code"]
        assert code, name
        for cell in code:
            assert cell.outputs == [] and cell.execution_count is None, f"{name}: clear the outputs before committing"


def test_quickstart_runs_and_saves_a_pose(tmp_path, kernel):
    execute("quickstart.ipynb", tmp_path, kernel)
    document = json.loads((tmp_path / "astronaut_pose.json").read_text())
    assert document["model"] == "luvizon-tiny-lsp-demo" and document["skeleton"]["joints"] == list(LSP.joints)
    (person,) = document["people"]
    assert len(person["keypoints"]) == len(person["scores"]) == LSP.num_joints
    assert all(0 <= x < 512 and 0 <= y < 512 for x, y in person["keypoints"])  # inside the 512 x 512 photo
    assert cv2.imread(str(tmp_path / "astronaut_pose.png")).shape == (512, 512, 3)


@pytest.mark.slow  # about a minute on 2 cores: CI runs it, the quick run leaves it out
def test_finetune_notebook_runs_on_coco_mini_and_exports_a_17_joint_model(data_root, tmp_path, monkeypatch, kernel):
    monkeypatch.setenv("POSELIT_DATA", str(data_root.resolve()))
    monkeypatch.setenv("POSELIT_NOTEBOOK_SMOKE", "1")
    execute("finetune_custom_keypoints.ipynb", tmp_path, kernel)

    work = tmp_path / "runs" / "finetune_custom_keypoints"
    source = json.loads((data_root / "coco-mini" / "person_keypoints.json").read_text())
    train, val = (json.loads((work / f"{split}.json").read_text()) for split in ("train", "val"))
    train_ids, val_ids = ({image["id"] for image in split["images"]} for split in (train, val))
    assert train_ids and val_ids and not train_ids & val_ids  # split by image
    assert train_ids | val_ids == {image["id"] for image in source["images"]}
    assert len(train["annotations"]) + len(val["annotations"]) == len(source["annotations"])

    model = poselit.zoo.load(str(work / "export"))
    assert model.skeleton.joints == COCO.joints and model.input_size == (160, 160)  # bulat-mobilenetv2-lsp's
    assert type(model).__name__ == "BulatCascade"
    card = HubModelCard.load(work / "export" / "README.md")  # the measured metrics, for the Hub
    metrics = {(r.dataset_type, r.dataset_split, r.metric_name): r.metric_value for r in card.data.eval_results}
    assert 0 <= metrics["coco", "val", "PCK@0.2 Total"] <= 100 and 0 <= metrics["coco", "val", "OKS AP"] <= 100
    assert not any(name.startswith("PCP") for _, _, name in metrics)  # LSP/MPII's protocol, not COCO's
    # no zoo card was written (update_zoo=False), so the Hub README's example loads the folder
    (example,) = re.findall(r'poselit\.Predictor\.from_zoo\("([^"]+)"\)', card.text)
    assert (tmp_path / example).resolve() == (work / "export").resolve()
