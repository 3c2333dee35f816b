"""Size and time of a fresh prediction install of this checkout, with PyTorch's default
wheels (PyPI: CUDA libraries and Triton included) or its CPU-only wheels (PyTorch's own
index, as its install instructions give it), as the README's install note says.

Each variant gets a new virtual environment in a temporary folder and pip without its cache
(every wheel downloaded, as on a fresh machine); the folder is removed afterwards. Prints
JSON: per variant, the commands, wall seconds, the environment's size, the largest installed
distributions, and whether ``import poselit`` and a prediction on a bundled photo worked::

    python benchmarks/install.py --variants cpu default > benchmarks/results/install_cpu.json

Needs the network (PyPI, and download.pytorch.org for ``cpu``) and ~7 GB of free disk.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CPU_INDEX = "https://download.pytorch.org/whl/cpu"
VARIANTS = {
    "default": [["-m", "pip", "install", "--quiet", "--no-cache-dir", "-e", str(REPO)]],
    "cpu": [
        ["-m", "pip", "install", "--quiet", "--no-cache-dir", "torch", "torchvision", "--index-url", CPU_INDEX],
        ["-m", "pip", "install", "--quiet", "--no-cache-dir", "-e", str(REPO)],
    ],
}
CHECK = (
    "import poselit; from poselit.predict import SAMPLES; "
    "p = poselit.Predictor.from_zoo('luvizon-mobilenetv2-movenet-lsp')(SAMPLES / 'walking.jpg')[0]; "
    "print(len(p.keypoints))"
)


def folder_bytes(folder: Path) -> int:
    """Bytes of the files under ``folder`` (links not followed)."""
    return sum(path.lstat().st_size for path in folder.rglob("*") if path.is_file() and not path.is_symlink())


def largest_distributions(site: Path, count: int = 8) -> dict[str, float]:
    """The ``count`` largest top-level folders of ``site`` (site-packages), in MB."""
    sizes = {path.name: folder_bytes(path) for path in site.iterdir() if path.is_dir()}
    return {name: round(size / 1e6, 1) for name, size in sorted(sizes.items(), key=lambda kv: -kv[1])[:count]}


def measure(commands: list[list[str]], env: Path, check: str = CHECK) -> dict:
    """Run pip's ``commands`` in a new environment ``env`` (removed afterwards), then ``check``
    in it: the commands, wall seconds, the environment's size and largest distributions."""
    subprocess.run([sys.executable, "-m", "venv", str(env)], check=True)
    python = env / "bin" / "python"
    start = time.perf_counter()
    for command in commands:
        subprocess.run([python, *command], check=True)
    seconds = time.perf_counter() - start
    checked = subprocess.run([python, "-c", check], capture_output=True, text=True, cwd=env.parent)
    site = next((env / "lib").glob("python*/site-packages"))
    result = {
        "commands": [" ".join(["python", *command]) for command in commands],
        "seconds": round(seconds, 1),
        "environment_gb": round(folder_bytes(env) / 1e9, 2),
        "largest_mb": largest_distributions(site),
        "predicts": checked.returncode == 0 and checked.stdout.strip() == "14",
    }
    if checked.returncode != 0:
        result["error"] = checked.stderr.strip().splitlines()[-1:]
    shutil.rmtree(env)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", nargs="+", choices=tuple(VARIANTS), default=list(VARIANTS))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="poselit-install-") as root:
        results = {variant: measure(VARIANTS[variant], Path(root) / variant) for variant in args.variants}
    print(json.dumps({
        "machine": {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count()},
        "variants": results,
    }, indent=2))


if __name__ == "__main__":
    main()
