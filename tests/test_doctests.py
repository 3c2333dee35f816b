"""Every ``>>>`` example in the package runs (the docs' examples are tests too)."""

import doctest
import importlib
import pkgutil
from pathlib import Path

import pytest

import poselit

MODULES = sorted(
    info.name for info in pkgutil.walk_packages(poselit.__path__, "poselit.")
    if ">>>" in (Path(importlib.util.find_spec(info.name).origin).read_text(encoding="utf-8"))
)


def test_the_package_has_examples():
    assert {"poselit", "poselit.models.base"} <= {*MODULES, "poselit"} and "poselit.models.base" in MODULES


@pytest.mark.parametrize("name", ["poselit", *MODULES])
def test_examples_run(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples of {name} failed (see the output above)"
    assert result.attempted > 0
