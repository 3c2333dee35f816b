"""Shared fixtures: the real-data folder (``POSELIT_DATA``) and synthetic datasets."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


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
