"""The results file's JSON Schema, and loading a results file with a clear error when it is not one."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from edgedistill.errors import InputError

SCHEMA_FILE = Path(__file__).with_name("results.schema.json")
SUPPORTED = (1, 2)


def results_schema() -> dict[str, Any]:
    return json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def schema_errors(doc: Any) -> list[str]:
    """Violations of the current schema, as ``path: message`` lines (needs ``jsonschema``)."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(results_schema())
    return [f"{'/'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message}"
            for e in sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))]


def load_results(path: Path) -> dict[str, Any]:
    """Read a bench results file (schema 1 or 2).

    Raises:
        InputError: missing, not JSON, or not a results file of a known schema version.
    """
    path = Path(path)
    if path.is_dir():
        path = path / "bench" / "results.json" if (path / "bench").is_dir() else path / "results.json"
    if not path.is_file():
        raise InputError(f"results file not found: {path}; run `edgedistill bench` first")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise InputError(f"{path} is not readable JSON ({err}); re-run the bench stage") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("results"), list):
        raise InputError(f"{path} is not a bench results file (no 'results' list)")
    if doc.get("schema") not in SUPPORTED:
        raise InputError(f"{path} has results schema {doc.get('schema')!r}; this edgedistill reads "
                         f"{', '.join(map(str, SUPPORTED))} — upgrade edgedistill")
    return doc
