"""The built wheel installs and works outside the source tree (slow: builds a wheel)."""

import subprocess
import sys
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
