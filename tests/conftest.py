"""Shared fixtures (the real-data folder ``POSELIT_DATA``, synthetic datasets) and markers.

Markers are given by what a test needs, not by hand: every test using ``data_root`` is
marked ``realdata`` (so ``-m "not realdata"`` selects the self-contained ones), and
``gpu`` tests are skipped when no CUDA device is present, whatever ``-m`` selects.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "data_root" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.realdata)
    gpu_tests = [item for item in items if item.get_closest_marker("gpu")]
    if gpu_tests:
        import torch

        if not torch.cuda.is_available():
            skip = pytest.mark.skip(reason="needs a CUDA device (none is present)")
            for item in gpu_tests:
                item.add_marker(skip)


@pytest.fixture(scope="session")
def data_root() -> Path:
    """The real datasets folder named by ``POSELIT_DATA``; the test is skipped without it.

    CI always sets it (``.ci/run``), so these tests run there.
    """
    root = os.environ.get("POSELIT_DATA")
    if not root:
        pytest.skip("POSELIT_DATA is not set (real-data test)")
    path = Path(root)
    if not path.is_dir():
        pytest.fail(f"POSELIT_DATA={root} is not a folder")
    return path


@pytest.fixture(scope="session")
def synthetic_lsp(tmp_path_factory) -> Path:
    """A generated 8-image dataset in the real LSP layout (4 train, 4 test)."""
    from poselit.data.synthetic import write_synthetic_lsp

    return write_synthetic_lsp(tmp_path_factory.mktemp("synthetic_lsp"), num_images=8, size=(96, 72), seed=3)


@pytest.fixture(scope="module")
def one_thread():
    """One intra-op thread for a module of small-tensor tests (``pytestmark =
    pytest.mark.usefixtures("one_thread")``): with two, torch's workers spin-wait whenever
    the 2 cores are shared (parallel test runs), making such a module several times slower."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True, scope="session")
def _onnx_cache(tmp_path_factory):
    """Predictor's exported ONNX files (``$POSELIT_CACHE/onnx``) in a folder of the test
    session, not the user's cache: each distinct model is exported once per session."""
    previous = os.environ.get("POSELIT_CACHE")
    os.environ["POSELIT_CACHE"] = str(tmp_path_factory.mktemp("poselit_cache"))
    yield
    if previous is None:
        os.environ.pop("POSELIT_CACHE", None)
    else:
        os.environ["POSELIT_CACHE"] = previous
