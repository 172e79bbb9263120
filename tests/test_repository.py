"""A fresh clone has nothing beside it: no tracked file may read `../shared` or a path of one particular machine."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MACHINE_PATH = re.compile(r"\.\./shared|(?<![\w.~$}-])/(?:work|root|home|Users|mnt)/|(?<![\w.~$}-])/tmp/\w")
RECORDED = (".json", ".xml", ".log", ".csv", ".txt")  # measurements and data, recorded as they were


def tracked_files() -> list[Path]:
    done = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z"], capture_output=True, check=False)
    if done.returncode != 0:
        pytest.skip("not a git checkout")
    return [REPO / name for name in done.stdout.decode().split("\0") if name]


def test_no_tracked_file_names_a_path_outside_the_repository():
    offenders = []
    for path in tracked_files():
        if path.suffix in RECORDED or path.name == ".gitignore" or path == Path(__file__) or not path.is_file():
            continue
        text = path.read_text(encoding="utf-8", errors="ignore")
        offenders += [f"{path.relative_to(REPO)}:{text.count(chr(10), 0, m.start()) + 1}: {m.group(0)}"
                      for m in MACHINE_PATH.finditer(text)]
    assert not offenders, "paths outside the repository:\n" + "\n".join(offenders)


def test_the_pattern_catches_what_it_is_for():
    for line in ("path: ../../shared/data/stsb/sts-dev.csv", 'Path("/work/main/.venv/lib")',
                 "--run /tmp/run1", "TRT_MIRROR=/root/.mirror"):
        assert MACHINE_PATH.search(line), line
    for line in ("tmp_path / 'x'", "runs/minilm-cpu", "$HOME/.cache", "https://host/v1/embeddings", "~/work/x"):
        assert not MACHINE_PATH.search(line), line
