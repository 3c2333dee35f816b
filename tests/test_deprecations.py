"""Renamed and moved names keep their old import path for one release: each old path gives
the very object of the new one, with one :class:`DeprecationWarning` per use that names the
new one (issue 25: the confusable names). ``tests/test_imports.py`` checks that nothing in
the package uses an old path."""

from __future__ import annotations

import importlib
import re
import sys
import warnings
from typing import get_args

import pytest

from poselit.data.datamodule import LoopStage
from poselit.models.bulat import CascadeStage
from poselit.prediction_files import SavedPrediction

MODULES = [
    ("poselit.protocols", "poselit.evaluation_protocols", ("poselit.evaluation_protocols",)),
    ("poselit.zoo.table", "poselit.zoo.listing", ("poselit.zoo.listing",)),
    ("poselit.onnx_model", "poselit.onnx", ("poselit.onnx.runtime",)),
    ("poselit.zoo.onnx", "poselit.onnx", ("poselit.onnx.export", "poselit.onnx.metadata")),
]
"""``(old module, new place, the modules defining its names)``: the old one re-exports them."""

NAMES = [
    ("poselit.prediction_files", "Prediction", "poselit.prediction_files", "SavedPrediction"),
    ("poselit.evaluate", "Prediction", "poselit.prediction_files", "SavedPrediction"),
    ("poselit.models.bulat", "Stage", "poselit.models.bulat", "CascadeStage"),
    ("poselit.data.datamodule", "Stage", "poselit.data.datamodule", "LoopStage"),
]
"""``(module, old name, module of the new name, new name)``."""


def deprecations(record: pytest.WarningsRecorder) -> list[str]:
    return [str(w.message) for w in record if issubclass(w.category, DeprecationWarning)]


@pytest.mark.parametrize(("old", "new", "sources"), MODULES, ids=[old for old, _, _ in MODULES])
def test_an_old_module_path_imports_the_new_objects_and_warns_once(old, new, sources, monkeypatch):
    if "onnx" in new:
        pytest.importorskip("onnxruntime")
    defined = {name: value for source in sources for name, value in vars(importlib.import_module(source)).items()}
    monkeypatch.delitem(sys.modules, old, raising=False)  # run the old module's body again
    with pytest.warns(DeprecationWarning, match=re.escape(new)) as record:
        shim = importlib.import_module(old)
    assert len(deprecations(record)) == 1, deprecations(record)
    assert shim.__all__ and all(getattr(shim, name) is defined[name] for name in shim.__all__)
    if sources == (new,):  # a renamed module: the old path offers the new one's every name
        assert set(shim.__all__) == set(importlib.import_module(new).__all__)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert importlib.import_module(old) is shim  # imported once: it warned once


@pytest.mark.parametrize(("module", "old", "new_module", "new"), NAMES, ids=[f"{m}.{o}" for m, o, _, _ in NAMES])
def test_an_old_name_is_the_new_object_and_warns_at_each_use(module, old, new_module, new):
    imported = importlib.import_module(module)
    target = getattr(importlib.import_module(new_module), new)
    with pytest.warns(DeprecationWarning, match=rf"{re.escape(module)}\.{old} moved to {re.escape(new_module)}\.{new}") as record:
        assert getattr(imported, old) is target
    assert len(deprecations(record)) == 1
    with pytest.warns(DeprecationWarning, match=new) as record:
        exec(f"from {module} import {old}", {})  # the import statement users wrote
        exec(f"from {module} import {old}", {})
    assert len(deprecations(record)) == 2  # once per use
    assert old not in dir(imported) and new in dir(importlib.import_module(new_module))


def test_the_new_names_say_what_they_are():
    """One name per thing: the cascade's training stage is not Lightning's loop stage, and a
    prediction read back from a file is not the live result of a model."""
    assert get_args(CascadeStage) == ("detector", "regressor", "joint")
    assert get_args(LoopStage) == ("fit", "validate", "test", "predict")
    from poselit.predict_results import PosePrediction

    assert SavedPrediction is not PosePrediction and SavedPrediction.__name__ == "SavedPrediction"


def test_the_star_imports_of_the_new_modules_do_not_warn():
    """``poselit.evaluate`` and ``poselit.metrics`` re-export the modules they split off with
    a star import, which takes their ``__all__``: no deprecated name is in it."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        namespace: dict = {}
        exec("from poselit.prediction_files import *\nfrom poselit.evaluate import *\nfrom poselit.metrics import *", namespace)
    assert namespace["SavedPrediction"] is SavedPrediction and "Prediction" not in namespace
    assert {"MetricResult", "PCK_PARTS", "average_precision"} <= set(namespace)  # evaluation_protocols' names
    assert {"comparison_table", "write_table", "table_is_current"} <= set(importlib.import_module("poselit.zoo").__all__)
