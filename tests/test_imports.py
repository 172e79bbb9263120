"""Every module of the package imports (mypy's ignore_missing_imports would not notice a broken internal import)."""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil

import pytest

import edgedistill

OPTIONAL = {"tensorrt", "optimum", "datasets", "pyarrow"}  # extras a module may need at import


@pytest.mark.parametrize("name", sorted(m.name for m in pkgutil.walk_packages(edgedistill.__path__, "edgedistill.")))
def test_module_imports(name):
    try:
        importlib.import_module(name)
    except ModuleNotFoundError as err:
        if (err.name or "").split(".")[0] not in OPTIONAL:
            raise


def package_imports() -> list[tuple[str, int, str, str]]:
    """Every ``from edgedistill... import name`` in the package, at any depth (lazy imports inside functions too)."""
    import ast
    from pathlib import Path

    found = []
    root = Path(edgedistill.__file__).parent
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("edgedistill"):
                found += [(str(path.relative_to(root)), node.lineno, node.module, a.name) for a in node.names]
    return found


def test_every_internal_import_names_something_that_exists():
    missing = []
    for where, line, module, name in package_imports():
        try:
            target = importlib.import_module(module)
        except ModuleNotFoundError as err:
            if (err.name or "").split(".")[0] not in OPTIONAL:
                missing.append(f"{where}:{line}: no module {module}")
            continue
        if not hasattr(target, name) and importlib.util.find_spec(f"{module}.{name}") is None:
            missing.append(f"{where}:{line}: {module} has no {name}")
    assert not missing, "\n".join(missing)
