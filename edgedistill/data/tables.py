"""Texts from a column of a table: JSONL, CSV, TSV, or a Hugging Face ``datasets`` dataset on disk.

With ``text_pair`` both columns give texts (a sentence-embedding student learns each sentence of a pair, as
with STS). Missing columns are reported with the columns the file has. This module imports nothing from the
config, so the config can call :func:`table_columns` while validating.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from edgedistill.errors import InputError, MissingDependencyError

DELIMITERS = {"csv": ",", "tsv": "\t"}
DATASET_FILES = {".json": "json", ".jsonl": "json", ".csv": "csv", ".parquet": "parquet", ".txt": "text"}


def jsonl_rows(path: Path) -> Iterator[dict[str, Any]]:
    """Objects of a JSON-lines file (blank lines skipped); InputError names the bad line."""
    with path.open(encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise InputError(f"{path}:{number}: not valid JSON ({err.msg})") from None
            if not isinstance(row, dict):
                raise InputError(f"{path}:{number}: expected a JSON object per line, got {type(row).__name__}")
            yield row


def table_rows(path: Path, kind: str) -> Iterator[dict[str, Any]]:
    if kind == "jsonl":
        yield from jsonl_rows(path)
        return
    with path.open(encoding="utf-8", newline="") as f:
        yield from csv.DictReader(f, delimiter=DELIMITERS[kind])


def table_columns(path: Path, kind: str) -> list[str]:
    """Column names of a CSV/TSV header, or the keys of a JSONL file's first object."""
    try:
        first = next(table_rows(path, kind), None)
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"cannot read {path}: {err}") from None
    return list(first) if first else []


def check_columns(found: list[str], wanted: list[str], where: str) -> None:
    """Raises InputError naming the first missing column and the columns present."""
    for name in wanted:
        if name not in found:
            raise InputError(f"{where}: no column '{name}'; columns found: {', '.join(found) or 'none'}")


def texts_from_rows(rows: Iterator[dict[str, Any]], columns: list[str], where: str) -> list[str]:
    texts = []
    for number, row in enumerate(rows, 1):
        for name in columns:
            value = row.get(name)
            if value is None:
                raise InputError(f"{where}: row {number} has no '{name}'")
            if str(value).strip():
                texts.append(str(value).strip())
    return texts


def read_table(path: Path, kind: str, column: str, text_pair: str | None = None) -> list[str]:
    """Texts of ``column`` (and ``text_pair``) of a JSONL/CSV/TSV file, in row order.

    Raises:
        InputError: unreadable file, a missing column (naming those present), or no texts.
    """
    columns = [column] + ([text_pair] if text_pair else [])
    check_columns(table_columns(path, kind), columns, str(path))
    try:
        texts = texts_from_rows(table_rows(path, kind), columns, str(path))
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise InputError(f"cannot read {path}: {err}") from None
    if not texts:
        raise InputError(f"{path}: column '{column}' holds no text")
    return texts


def load_dataset_any(path: Path, split: str | None) -> Any:
    """A ``datasets.Dataset`` from a ``save_to_disk`` folder or from data files (JSON/CSV/Parquet/text)."""
    try:
        import datasets
    except ImportError:
        raise MissingDependencyError("source 'hf-dataset' needs the datasets package: pip install datasets") from None
    if path.is_dir():
        data = datasets.load_from_disk(str(path))
    elif path.suffix in DATASET_FILES:
        data = datasets.load_dataset(DATASET_FILES[path.suffix], data_files=str(path))
    else:
        raise InputError(f"{path}: not a save_to_disk folder or a {'/'.join(DATASET_FILES)} file")
    if isinstance(data, datasets.DatasetDict):
        name = split or ("train" if "train" in data else next(iter(data)))
        if name not in data:
            raise InputError(f"{path}: no split '{name}'; splits found: {', '.join(data)}")
        data = data[name]
    return data


def read_dataset(path: Path, column: str, text_pair: str | None = None, split: str | None = None) -> list[str]:
    """Texts of ``column`` (and ``text_pair``) of a Hugging Face dataset on disk.

    Raises:
        InputError: a missing split or column (naming those present); MissingDependencyError without datasets.
    """
    data = load_dataset_any(path, split)
    columns = [column] + ([text_pair] if text_pair else [])
    check_columns(list(data.column_names), columns, str(path))
    return texts_from_rows(iter(data.select_columns(columns)), columns, str(path))
