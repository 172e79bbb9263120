"""The STS Benchmark reader: exact pair counts on the real files, line numbers on malformed ones."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgedistill.data.stsb import BUNDLED_DIR, bundled_split, read_sts
from edgedistill.errors import InputError


@pytest.mark.parametrize(("split", "count"), [("dev", 1500), ("test", 1379), ("train", 5749)])
def test_shipped_files_have_exact_counts(split: str, count: int) -> None:
    pairs = read_sts(bundled_split(split))
    assert len(pairs) == len(pairs.sentences1) == len(pairs.sentences2) == len(pairs.scores) == count
    assert pairs.scores.min() >= 0.0 and pairs.scores.max() <= 5.0
    assert all(s.strip() for s in pairs.sentences1 + pairs.sentences2)


def test_shipped_with_its_readme_and_licence() -> None:
    assert "STS Benchmark" in (BUNDLED_DIR / "readme.txt").read_text(encoding="utf-8")
    assert "Share Alike" in (BUNDLED_DIR / "LICENSE.txt").read_text(encoding="utf-8")


def test_first_dev_pair() -> None:
    pairs = read_sts(bundled_split("dev"))
    assert pairs.sentences1[0] == "A man with a hard hat is dancing."
    assert pairs.sentences2[0] == "A man wearing a hard hat is dancing."
    assert pairs.scores[0] == 5.0


def test_quotes_and_extra_columns(tmp_path: Path) -> None:
    f = tmp_path / "sts.csv"
    f.write_text('g\tf\t2012\t0001\t3.5\tHe said "hi.\tShe said "bye".\textra\tcolumns\n\n'
                 "g\tf\t2012\t0002\t1\ta\tb\n")
    pairs = read_sts(f)
    assert pairs.sentences1 == ['He said "hi.', "a"]
    assert pairs.sentences2 == ['She said "bye".', "b"]
    np.testing.assert_array_equal(pairs.scores, [3.5, 1.0])


def test_too_few_columns_names_line(tmp_path: Path) -> None:
    f = tmp_path / "sts.csv"
    f.write_text("g\tf\t2012\t0001\t3.5\ta\tb\ng\tf\t2012\t0002\t3.5\tonly one sentence\n")
    with pytest.raises(InputError, match=r"sts\.csv:2: expected at least 7"):
        read_sts(f)


def test_bad_score_names_line(tmp_path: Path) -> None:
    f = tmp_path / "sts.csv"
    f.write_text("g\tf\t2012\t0001\tfive\ta\tb\n")
    with pytest.raises(InputError, match=r"sts\.csv:1: score column is not a number"):
        read_sts(f)


def test_missing_binary_and_empty(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read STS file"):
        read_sts(tmp_path / "nope.csv")
    (tmp_path / "bin.csv").write_bytes(b"\xff\xfe\x00\x81")
    with pytest.raises(InputError, match="cannot read STS file"):
        read_sts(tmp_path / "bin.csv")
    (tmp_path / "empty.csv").write_text("\n")
    with pytest.raises(InputError, match="no sentence pairs"):
        read_sts(tmp_path / "empty.csv")
