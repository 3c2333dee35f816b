"""The built wheel installs and works outside the source tree (slow: builds a wheel)."""

import json
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_works_outside_the_source_tree(tmp_path):
    """Build the wheel, install it (without dependencies: they are already present) into a
    separate target folder, and import it from a directory that is not the source tree."""
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp_path / "dist"), str(REPO)],
        check=True, capture_output=True,
    )
    wheel = next((tmp_path / "dist").glob("poselit-*.whl"))
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--target", str(target), str(wheel)],
        check=True, capture_output=True,
    )
    code = (
        "import poselit, poselit.data.readers.lsp, pathlib, sys;"
        "from poselit.data.synthetic import write_synthetic_lsp;"
        "from poselit.data import read_annotations;"
        "root = write_synthetic_lsp('synth', 4);"
        "print(poselit.__file__); print(len(read_annotations(f'lsp:all@{root}')))"
    )
    env = {"PYTHONPATH": str(target), "PATH": ""}
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    location, count = result.stdout.split()
    assert Path(location).is_relative_to(target) and count == "4"

    # the zoo cards ship inside the package, and the installed copy lists and loads them offline
    cards = sorted(p for p in (REPO / "zoo").iterdir() if p.suffix in (".yaml", ".safetensors"))
    with zipfile.ZipFile(wheel) as archive:
        assert {"poselit/zoo_cards/README.md", *(f"poselit/zoo_cards/{p.name}" for p in cards)} <= set(archive.namelist())
    code = (
        "import json, poselit;"
        "z = poselit.zoo; names = z.list();"
        "shipped = [n for n in names if z.info(n).weights_path() and z.info(n).weights_path().is_file()];"
        "print(json.dumps([str(z.builtin_zoo_dir()), names, [z.load(n).num_joints for n in shipped]]))"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env={**env, "HF_HUB_OFFLINE": "1"},
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    folder, names, _ = json.loads(result.stdout.splitlines()[-1])
    assert Path(folder).is_relative_to(target) and names == [p.stem for p in cards if p.suffix == ".yaml"]


def test_pyproject_lists_every_package_of_the_source_tree():
    """pyproject.toml lists the packages (the zoo cards are mapped in from zoo/ as
    poselit.zoo_cards): a new subpackage must be listed there too, or the wheel lacks it."""
    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(REPO).parts) for p in (REPO / "poselit").rglob("__init__.py")}
    assert listed == found | {"poselit.zoo_cards"}


def test_top_level_exports_load_on_first_use():
    """``import poselit`` does not import torch; ``poselit.zoo`` and ``poselit.Predictor``
    import it when first used, and are the objects of their modules."""
    code = (
        "import sys, poselit;"
        "light = 'torch' not in sys.modules;"
        "from poselit.predict import Predictor; import poselit.zoo as zoo;"
        "print(light, poselit.Predictor is Predictor, poselit.zoo is zoo,"
        " {'Predictor', 'zoo'} <= set(dir(poselit)), set(poselit.__all__) <= set(dir(poselit)))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True"] * 5
    with pytest.raises(AttributeError, match="no attribute 'Predicter'"):
        import poselit

        poselit.Predicter
