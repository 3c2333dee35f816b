"""The package's imports flow one way, down its layers (:data:`LAYERS`), in no circle; the
modules that must stay light stay light, and no module is longer than :data:`MAX_MODULE_LINES`.

The graph is read from the source with ``ast``: every ``import`` statement of a poselit
module, at module level, inside a function (a deferred import still ties the two modules
together) or under ``if TYPE_CHECKING:`` (never executed, but a dependency all the same: a
type names what it depends on). Importing ``a.b.c`` also runs the ``__init__`` of ``a.b``,
so that is an edge too, unless ``a.b`` is a package the importing module lives in (it is
initialised before its modules run).
"""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
import warnings
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "poselit"

MAX_MODULE_LINES = 500
"""Longest module (issue 13): one past it does several jobs and is split into one module each."""

LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "foundations: data, geometry, skeletons, codecs, metrics, files",
        (
            "poselit", "poselit.atomic", "poselit.checkpoints", "poselit.codecs", "poselit.codecs_functional", "poselit.complexity",
            "poselit.data", "poselit.evaluation_protocols", "poselit.extras", "poselit.files", "poselit.geometry",
            "poselit.input_spec", "poselit.lazy", "poselit.metrics", "poselit.oks", "poselit.prediction_files",
            "poselit.progress", "poselit.reproduce", "poselit.skeletons", "poselit.smoothing", "poselit.tables", "poselit.tfjs",
            "poselit.protocols",  # deprecated path of poselit.evaluation_protocols, re-exporting it
        ),
    ),
    (
        "models: backbones, methods, their training and evaluation",
        (
            "poselit.models", "poselit.backbone_weights", "poselit.callbacks", "poselit.evaluate", "poselit.visualize",
            "poselit.backbones",  # deprecated path of poselit.models.backbones, re-exporting it
        ),
    ),
    ("zoo: cards, downloads, loading, export", ("poselit.zoo",)),
    (
        "runtime: predicting with a torch or ONNX model",
        (
            "poselit.onnx", "poselit.predict", "poselit.predict_inputs", "poselit.predict_results", "poselit.video",
            "poselit.detect", "poselit.tflite",
            "poselit.onnx_model", "poselit.zoo.onnx",  # deprecated paths of poselit.onnx, re-exporting it
        ),
    ),
    ("cli: the poselit command", ("poselit.cli",)),
)
"""The layers, bottom to top, and the modules of each (a package: all its modules, unless a
longer name places one elsewhere; the bare ``poselit`` is the root package alone): a module
imports from its own layer or lower ones, never from a higher one. A new module is placed
here, or its test fails. A module kept at an old path for a release belongs to the layer of
what it re-exports (:data:`DEPRECATED_MODULES`)."""

DEPRECATED_MODULES: dict[str, str] = {
    "poselit.backbones": "poselit.models.backbones",
    "poselit.onnx_model": "poselit.onnx",
    "poselit.protocols": "poselit.evaluation_protocols",
    "poselit.zoo.onnx": "poselit.onnx",
    "poselit.zoo.table": "poselit.zoo.listing",
}
"""Modules kept at an old path for one release (each warns on import): ``{old: new}``."""

DEPRECATED_NAMES: dict[str, tuple[str, ...]] = {
    "poselit.data.datamodule": ("Stage",),
    "poselit.evaluate": ("Prediction",),
    "poselit.models.base": ("flip_back_heatmaps", "flip_back_keypoints", "to_image_coords"),
    "poselit.models.bulat": ("Stage",),
    "poselit.models.luvizon": ("input_to_normalized", "normalized_to_input"),
    "poselit.models.luvizon_regression": ("input_to_normalized", "normalized_to_input"),
    "poselit.prediction_files": ("Prediction",),
}
"""Names kept under an old name or at an old place for one release (each use warns):
``{module: names}``."""


def module_names() -> dict[str, Path]:
    """``{dotted name: file}`` of every module of the package."""
    names = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        names[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return names


def ancestors(name: str) -> list[str]:
    """``a.b.c`` -> ``["a", "a.b"]``."""
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


def imported_modules(tree: ast.AST, modules: dict[str, Path]) -> set[str]:
    """The poselit modules the statements of ``tree`` import (``TYPE_CHECKING`` blocks included)."""
    found: set[str] = set()
    todo = [tree]
    while todo:
        node = todo.pop()
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            submodules = [f"{node.module}.{alias.name}" for alias in node.names]
            found.update(name for name in submodules if name in modules)
            if any(name not in modules for name in submodules):  # names defined in the module
                found.add(node.module)
        else:
            todo.extend(ast.iter_child_nodes(node))
    return {name for name in found if name in modules}


def import_graph() -> dict[str, set[str]]:
    """``{module: the poselit modules importing it runs}``."""
    modules = module_names()
    graph = {}
    for name, path in modules.items():
        edges = set()
        for target in imported_modules(ast.parse(path.read_text(), str(path)), modules):
            edges.add(target)
            edges.update(a for a in ancestors(target) if a not in ancestors(name) and a != name)
        edges.discard(name)
        graph[name] = edges
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle of ``graph`` (first module repeated at the end), or ``None``."""
    state: dict[str, str] = {}  # "open" while on the current path, "done" after
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        path.append(node)
        for target in sorted(graph[node]):
            if state.get(target) == "open":
                return path[path.index(target) :] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        path.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def layer_of(module: str) -> int:
    """The index in :data:`LAYERS` of ``module``'s layer, by the longest entry naming it or a
    package above it (``ValueError`` if none does)."""
    entries = [
        (len(member), index)
        for index, (_, members) in enumerate(LAYERS)
        for member in members
        if module == member or (member != "poselit" and module.startswith(member + "."))
    ]
    if not entries:
        raise ValueError(f"{module} is in no layer: add it to LAYERS in tests/test_imports.py")
    return max(entries)[1]


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    """``"a -> b"`` for every edge of ``graph`` from a module to one of a higher layer."""
    return sorted(
        f"{source} ({LAYERS[layer_of(source)][0].split(':')[0]}) -> {target} ({LAYERS[layer_of(target)][0].split(':')[0]})"
        for source, targets in graph.items()
        for target in targets
        if layer_of(target) > layer_of(source)
    )


def test_every_module_has_a_layer():
    unplaced = []
    for name in module_names():
        try:
            layer_of(name)
        except ValueError:
            unplaced.append(name)
    assert not unplaced, f"modules in no layer of LAYERS: {unplaced}"


def test_imports_flow_down_the_layers():
    """Nothing imports from a higher layer, not even for a type: the models do not import
    the zoo (it fills their hooks, :mod:`poselit.models.pretrained`), the checkpoint reader
    does not fetch zoo models, the runtime does not import the training loop's module."""
    upward = upward_imports(import_graph())
    assert not upward, "imports from a lower layer to a higher one:\n" + "\n".join(upward)


def test_the_layer_check_sees_type_checking_imports(tmp_path):
    """An import under ``if TYPE_CHECKING:`` is an edge, and an edge up the layers fails."""
    tree = ast.parse("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from poselit.zoo.loading import load\n")
    modules = {"poselit.zoo.loading": Path(), "poselit.zoo": Path(), "poselit.models.base": Path()}
    assert imported_modules(tree, modules) == {"poselit.zoo.loading"}
    assert upward_imports({"poselit.models.base": {"poselit.zoo.loading"}, "poselit.zoo.loading": set()}) == [
        "poselit.models.base (models) -> poselit.zoo.loading (zoo)"
    ]
    assert upward_imports({"poselit.zoo.loading": {"poselit.models.base"}, "poselit.models.base": set()}) == []


def test_the_package_imports_form_no_circle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import circle: " + " -> ".join(cycle)


def test_the_cycle_finder_finds_circles_through_packages():
    """The graph follows package ``__init__`` files: ``a.x -> b.y`` runs ``b``'s ``__init__``."""
    graph = {"a": set(), "a.x": {"b.y", "b"}, "b": {"a.x"}, "b.y": set()}
    assert find_cycle(graph) == ["a.x", "b", "a.x"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_nothing_in_the_package_uses_a_deprecated_path():
    """The old paths are for the package's users, for one release: no module of the package
    imports a deprecated module (but the module itself, re-exporting the new one) or a
    deprecated name, so that none of them warns from inside the package and each can go."""
    modules = module_names()
    graph = import_graph()
    users = sorted(f"{source} -> {target}" for source, targets in graph.items() for target in targets
                   if target in DEPRECATED_MODULES)
    assert not users, "imports of deprecated modules:\n" + "\n".join(users)
    names = []
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.level == 0:
                old = set(DEPRECATED_NAMES.get(node.module or "", ())) & {alias.name for alias in node.names}
                names.extend(f"{name}: from {node.module} import {n}" for n in sorted(old))
    assert not names, "imports of deprecated names:\n" + "\n".join(names)
    assert set(DEPRECATED_MODULES) <= set(modules) and set(DEPRECATED_NAMES) <= set(modules)


def test_card_and_download_code_import_nothing_of_the_models():
    """Reading cards and fetching weights must not build (or import) a network."""
    graph = import_graph()

    def reachable(start: str) -> set[str]:
        seen, todo = set(), [start]
        while todo:
            for target in graph[todo.pop()] - seen:
                seen.add(target)
                todo.append(target)
        return seen

    for light in ("poselit.zoo.cards", "poselit.zoo.catalog", "poselit.zoo.hub", "poselit.checkpoints"):
        heavy = sorted(m for m in reachable(light) if m.startswith(("poselit.models.", "poselit.backbones")))
        assert not heavy, f"{light} imports {heavy}"


def test_predicting_loads_no_training_code():
    """The predictor (the ONNX runtime's too) maps joints back with :mod:`poselit.geometry`:
    importing it loads neither Lightning nor the training loop's module."""
    training = ("pytorch_lightning", "poselit.models.base")
    code = f"import sys, poselit.predict; print(sorted(m for m in {training!r} if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]", result.stdout


def test_no_module_is_longer_than_the_limit():
    lengths = {
        path.relative_to(PACKAGE.parent).as_posix(): len(path.read_text().splitlines())
        for path in module_names().values()
    }
    long = sorted((name, n) for name, n in lengths.items() if n > MAX_MODULE_LINES)
    assert not long, f"modules over {MAX_MODULE_LINES} lines (split each into modules of one job): " + ", ".join(
        f"{name} ({n} lines)" for name, n in long
    )


def test_every_exported_name_is_defined():
    """``__all__`` promises names; a re-export by star import (``*module.__all__``) that lost
    its import, or a name renamed in one place only, fails here."""
    missing = {}
    for name in sorted(module_names()):
        if name.endswith("__main__"):
            continue
        with warnings.catch_warnings():  # the deprecated paths warn on import (tests/test_deprecations.py)
            warnings.filterwarnings("ignore", r"poselit\.", DeprecationWarning)
            module = importlib.import_module(name)
        absent = [n for n in getattr(module, "__all__", ()) if not hasattr(module, n)]
        if absent:
            missing[name] = absent
    assert not missing, f"names in __all__ that the module does not define: {missing}"
