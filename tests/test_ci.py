"""CI runs what the README tells a newcomer to run, in a fresh virtual environment."""

import importlib.util
import subprocess
import sys
from pathlib import Path


REPO = Path(__file__).resolve().parents[1]


def _readme_command_module():
    spec = importlib.util.spec_from_file_location("readme_command", REPO / ".ci/readme_command.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_ci_runs_the_readmes_test_command_in_a_fresh_virtual_environment():
    command = _readme_command_module().readme_command((REPO / "README.md").read_text(), "ci: test command")
    steps = command.split(" && ")
    assert steps[0] == "python3 -m venv .venv" and steps[1] == ". .venv/bin/activate"
    assert 'python3 -m pip install -e ".[dev]"' in steps and steps[-1] == 'python3 -m pytest -m "slow or not slow"'
    script = (REPO / ".ci/run").read_text()
    assert 'readme_command.py README.md "ci: test command"' in script and "rm -rf .venv" in script


def test_a_bare_pytest_leaves_the_slow_tests_out_and_the_readme_command_runs_them(tmp_path):
    """The project's pytest settings, on a two-test project of its own (fast to collect)."""
    (tmp_path / "pyproject.toml").write_text((REPO / "pyproject.toml").read_text())
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests/test_two.py").write_text(
        "import pytest\n\ndef test_quick():\n    pass\n\n@pytest.mark.slow\ndef test_long():\n    pass\n")

    def collected(*marks: str) -> str:
        return subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *marks],
                              cwd=tmp_path, capture_output=True, text=True).stdout

    default, everything = collected(), collected("-m", "slow or not slow")
    assert "test_quick" in default and "test_long" not in default and "1 deselected" in default
    assert "test_quick" in everything and "test_long" in everything and "deselected" not in everything


def test_readme_command_joins_lines_drops_comments_and_names_a_missing_marker(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- ci: x -->\n```bash\n# set up\nmake\n\nmake test\n```\n```bash\nnot this\n```\n")
    script = str(REPO / ".ci/readme_command.py")
    done = subprocess.run([sys.executable, script, str(readme), "ci: x"], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout.strip() == "make && make test"
    missing = subprocess.run([sys.executable, script, str(readme), "ci: y"], capture_output=True, text=True)
    assert missing.returncode == 1 and "no ```bash block after '<!-- ci: y -->'" in missing.stderr


def test_gpu_tests_are_selectable_and_skipped_without_cuda():
    """``-m gpu`` (or ``-m "not slow"``) selects the gpu tests; without CUDA they are skipped,
    not failed (the conftest hook), so every documented -m expression is green on a CPU."""
    import torch

    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", "-m", "gpu", "tests/test_codecs.py"],
        cwd=REPO, capture_output=True, text=True,
    )
    if torch.cuda.is_available():
        assert done.returncode == 0 and "1 passed" in done.stdout
    else:
        assert done.returncode == 0 and "1 skipped" in done.stdout and "needs a CUDA device" in done.stdout
