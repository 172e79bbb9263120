"""The STS Benchmark: sentence pairs with human similarity scores from 0 to 5.

Each line is tab-separated: genre, file, year, id, score, sentence1, sentence2, and on some lines extra
source columns that are ignored. Quotes are literal text (``csv.QUOTE_NONE``), never field delimiters.

The benchmark ships with edgedistill (``edgedistill/datasets/stsb``: train/dev/test with the dataset's readme and
LICENSE), so configs name a split (``{source: stsb, split: dev}``) instead of a path.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgedistill.errors import InputError

SCORE_COLUMN = 4
MIN_COLUMNS = 7
SPLITS = ("train", "dev", "test")
BUNDLED_DIR = Path(__file__).resolve().parents[1] / "datasets" / "stsb"


def bundled_split(split: str) -> Path:
    """The shipped STS Benchmark file of ``split`` (train, dev or test).

    Raises:
        ValueError: not one of the splits (pydantic turns this into a ConfigError naming the key).
    """
    if split not in SPLITS:
        raise ValueError(f"unknown STS Benchmark split '{split}'; expected one of: {', '.join(SPLITS)}")
    return BUNDLED_DIR / f"sts-{split}.csv"


@dataclass(frozen=True)
class StsPairs:
    """Aligned sentence pairs and their human scores, shape (N,)."""

    sentences1: list[str]
    sentences2: list[str]
    scores: np.ndarray

    def __len__(self) -> int:
        return len(self.sentences1)


def parse_row(row: list[str], path: Path, line: int) -> tuple[str, str, float]:
    """Return (sentence1, sentence2, score) from one split line.

    Raises:
        InputError: too few columns or a score that is not a number, naming the file and line.
    """
    if len(row) < MIN_COLUMNS:
        raise InputError(
            f"{path}:{line}: expected at least {MIN_COLUMNS} tab-separated columns "
            f"(genre, file, year, id, score, sentence1, sentence2), got {len(row)}"
        )
    try:
        score = float(row[SCORE_COLUMN])
    except ValueError:
        raise InputError(f"{path}:{line}: score column is not a number: {row[SCORE_COLUMN]!r}") from None
    return row[5], row[6], score


def read_sts(path: str | Path) -> StsPairs:
    """Read an STS Benchmark file (``sts-dev.csv``, ``sts-test.csv``, ``sts-train.csv``).

    Returns:
        The pairs in file order. Blank lines are skipped.
    Raises:
        InputError: the file is missing, not text, empty or malformed (with the line number).
    """
    path = Path(path)
    s1: list[str] = []
    s2: list[str] = []
    scores: list[float] = []
    try:
        with open(path, encoding="utf-8", newline="") as fh:
            for line, row in enumerate(csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE), start=1):
                if not row or all(not cell.strip() for cell in row):
                    continue
                a, b, score = parse_row(row, path, line)
                s1.append(a)
                s2.append(b)
                scores.append(score)
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise InputError(f"cannot read STS file {path}: {str(err).splitlines()[0]}") from None
    if not scores:
        raise InputError(f"{path}: no sentence pairs found; expected an STS Benchmark .csv file")
    return StsPairs(s1, s2, np.asarray(scores, dtype=np.float64))
