"""Finding and loading targets (``<name>.yaml``, one file per device).

Targets ship inside the package (``edgedistill/targets/devices/``); ``EDGEDISTILL_TARGETS`` points elsewhere (a
folder of your own device files).
"""

from __future__ import annotations

import difflib
import os
import re
from functools import cache
from pathlib import Path

from pydantic import ValidationError

from edgedistill.config import format_validation_error
from edgedistill.errors import ConfigError
from edgedistill.targets.schema import Target

ENV_VAR = "EDGEDISTILL_TARGETS"
DEVICES_DIR = Path(__file__).resolve().parent / "devices"


def targets_dir() -> Path:
    """The folder holding the target YAML files."""
    override = os.environ.get(ENV_VAR)
    if override:
        return Path(override).expanduser()
    return DEVICES_DIR


def target_names(folder: Path | None = None) -> list[str]:
    folder = folder or targets_dir()
    return sorted(p.stem for p in folder.glob("*.yaml"))


def list_targets(folder: Path | None = None) -> list[Target]:
    """Every target, validated, sorted by name.

    Raises:
        ConfigError: a target file does not validate (named with its key path).
    """
    folder = folder or targets_dir()
    return [load_target(name, folder) for name in target_names(folder)]


def load_target(name: str, folder: Path | None = None) -> Target:
    """The target called ``name``.

    Raises:
        ConfigError: no such target (with a did-you-mean hint or the list of valid ones), or its file
            does not validate.
    """
    folder = folder or targets_dir()
    path = folder / f"{name}.yaml"
    if not path.is_file():
        names = target_names(folder)
        if not names:
            raise ConfigError(f"no targets found in {folder}; set {ENV_VAR} to a folder of target YAML files")
        guess = suggest_target(name, names)
        hint = f"did you mean '{guess}'? " if guess else ""
        raise ConfigError(f"unknown target '{name}'; {hint}valid targets: {', '.join(names)}")
    return parse_target_file(path, path.stat().st_mtime_ns)


def suggest_target(name: str, names: list[str]) -> str | None:
    """The target ``name`` probably meant: a unique name containing it (``agx-orin``, ``thor``), else a close
    spelling of a name without its memory size (``jetson-agx-orn``); None if nothing is close."""
    containing = [n for n in names if name in n]
    if len(containing) == 1:
        return containing[0]
    short = {re.sub(r"-\d+gb$", "", n): n for n in names}  # the memory size is rarely what is misspelt
    close = difflib.get_close_matches(name, list(short), n=1)
    return short[close[0]] if close else None


@cache
def parse_target_file(path: Path, mtime_ns: int) -> Target:
    """Validate one file (cached per path and modification time)."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {str(err).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    try:
        target = Target.model_validate(data)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err, str(path))) from None
    if target.name != path.stem:
        raise ConfigError(f"{path}: name '{target.name}' must equal the file name '{path.stem}'")
    return target
