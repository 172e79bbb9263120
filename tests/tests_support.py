"""Helpers shared by tests (not fixtures)."""

from __future__ import annotations

from pathlib import Path


def write_sts(path: Path, texts: list[str], pairs: int = 24) -> Path:
    """An STS-format file pairing texts with made-up scores (0-5), for pipeline tests."""
    rows = [
        f"main-captions\tMSRvid\t2012test\t{i:04d}\t{(i * 7) % 6:.3f}\t{texts[i]}\t{texts[-i - 1]}"
        for i in range(pairs)
    ]
    path.write_text("\n".join(rows) + "\n")
    return path
