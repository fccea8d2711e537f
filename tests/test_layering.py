"""Imports inside lstmkit only go down the layers, and the public API is what __all__ says."""

import ast
from pathlib import Path

import lstmkit

PACKAGE = Path(lstmkit.__file__).parent
# a module may import from layers listed before its own, never after
LAYERS = [
    "errors",
    "utils",
    "config",
    "core",
    "backends",
    "nn",
    "data",
    "eval",
    "train",
    "models",
    "tasks",
    "textgen",
    "classify",
    "forecast",
    "experiment",
    "speech",
    "inspect",
    "cli",
    "__init__",
    "__main__",
]

# bans between layers the order alone allows: models never reach for the trainer, inspect reads runs through
# the task registry and never through a task's public face
SIDEWAYS = {
    "models": {"train"},
    "inspect": {"textgen", "classify", "forecast", "experiment", "speech"},
}


def _layer(path: Path) -> str:
    return path.relative_to(PACKAGE).parts[0].removesuffix(".py")


def _imported_layers(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level > 0:
            depth = len(path.relative_to(PACKAGE).parts) - node.level
            parts = list(path.relative_to(PACKAGE).parts[:depth]) + (node.module.split(".") if node.module else [])
            if parts:
                found.add(parts[0].removesuffix(".py"))
            else:
                found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("lstmkit."):
            found.add(node.module.split(".")[1])
    return found


def test_imports_only_go_down_the_layers():
    violations = []
    for path in PACKAGE.rglob("*.py"):
        own = _layer(path)
        for other in _imported_layers(path) - {own}:
            if other in LAYERS and LAYERS.index(other) > LAYERS.index(own):
                violations.append(f"{path.relative_to(PACKAGE)} imports {other}")
    assert violations == []


def test_sideways_bans():
    violations = [
        f"{path.relative_to(PACKAGE)} imports {other}"
        for path in PACKAGE.rglob("*.py")
        for other in _imported_layers(path) & SIDEWAYS.get(_layer(path), set())
    ]
    assert violations == []


def test_every_module_is_in_a_layer():
    assert {_layer(p) for p in PACKAGE.rglob("*.py")} <= set(LAYERS)


def test_public_api_is_importable():
    for name in lstmkit.__all__:
        assert hasattr(lstmkit, name), name
    from lstmkit import textgen

    assert callable(textgen.train) and callable(textgen.load)
