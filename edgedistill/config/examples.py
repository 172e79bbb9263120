"""The example configs shipped inside the package (``edgedistill/examples/*.yaml``), so an installed wheel has
them too: ``edgedistill examples`` lists them, and a config argument may name one as ``pkg:edgedistill/examples/…``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

EXAMPLES_DIR = Path(__file__).resolve().parents[1] / "examples"


@dataclass(frozen=True)
class Example:
    name: str
    path: Path
    summary: str

    @property
    def spec(self) -> str:
        """How a command names it from any folder."""
        return f"pkg:edgedistill/examples/{self.path.name}"


def summary(path: Path) -> str:
    """The first comment line of a config file, without its ``#``."""
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            return line.lstrip("# ").strip()
    return ""


def shipped_examples() -> list[Example]:
    """Every shipped example config, by name."""
    return [Example(p.stem, p, summary(p)) for p in sorted(EXAMPLES_DIR.glob("*.yaml"))]


def examples_hint() -> str:
    """One clause naming the shipped examples, for a 'config not found' message."""
    names = ", ".join(e.spec for e in shipped_examples())
    return f"shipped examples (`edgedistill examples`): {names}" if names else "no examples are shipped"
