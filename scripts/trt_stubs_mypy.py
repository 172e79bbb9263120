"""Type-check the TensorRT-facing code against ``tensorrt-stubs`` (no TensorRT or GPU needed).

``tensorrt-stubs`` 10.13 is installed with ``pip install --no-deps tensorrt-stubs==10.13.0.35.1`` (its
dependencies are the TensorRT wheels themselves). As shipped, its big stub file does not parse (parameters
named ``in``; a parameter without a default after defaulted ones) and the ``tensorrt`` package has no
``py.typed`` marker, so mypy would silently treat ``tensorrt`` as untyped. This script copies the stubs to a
temporary folder, patches them there, proves mypy really sees them (a misspelt ``trt.BuilderFlag`` member
must fail), then runs mypy on the given paths with ``MYPYPATH`` pointing at the patched copy.

Usage: python scripts/trt_stubs_mypy.py [PATH ...]      (default: edgedistill/trt)
Exit status: mypy's; 2 if the stubs are missing or the self-check finds them inactive.
"""

from __future__ import annotations

import ast
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

STUB_PACKAGES = ("tensorrt", "tensorrt_bindings")
INSTALL_HINT = "pip install --no-deps tensorrt-stubs==10.13.0.35.1"
SELF_CHECK = "import tensorrt as trt\n\nflag: trt.BuilderFlag = trt.BuilderFlag.FP61\n"


def stubs_root() -> Path:
    """The site-packages folder holding the installed stubs."""
    spec = importlib.util.find_spec("tensorrt_stubs")
    if spec is None or spec.origin is None:
        sys.exit(f"tensorrt-stubs is not installed; run: {INSTALL_HINT}")
    root = Path(spec.origin).parent.parent
    if not (root / "tensorrt_bindings" / "tensorrt.pyi").is_file():
        sys.exit(f"tensorrt-stubs found at {root} but tensorrt_bindings/tensorrt.pyi is missing; reinstall")
    return root


def fix_keyword_params(text: str) -> str:
    """``in`` is a Python keyword: rename parameters called ``in``."""
    return re.sub(r"(?<=[(,\s])in(?=\s*:)", "in_", text)


def fix_names(text: str) -> str:
    """Module-level ``bool: DataType`` shadows the builtin in every annotation; ``...`` is used as a type;
    ``capsule`` is never defined. Point annotations at ``builtins.bool`` and alias the other two to ``Any``."""
    lines = []
    for line in text.splitlines(keepends=True):
        if not line.startswith("bool:"):
            line = re.sub(r"(?<![\w.])bool(?=[\]\),:=\s]|$)", "builtins.bool", line)
        line = re.sub(r"->\s*\.\.\.\s*:", "-> typing.Any:", line)
        line = re.sub(r"(\w):\s*\.\.\.(?=[,)])", r"\1: typing.Any", line)
        lines.append(line)
    text = "".join(lines)
    if "capsule" in text:
        text = text.replace("import typing\n", "import typing\ncapsule = typing.Any\n", 1)
    future = "from __future__ import annotations\n"
    return text.replace(future, future + "import builtins\n", 1)


def fix_default_order(text: str) -> str:
    """Give ``= ...`` to parameters without a default that follow defaulted ones, until the file parses."""
    for _ in range(1000):
        try:
            ast.parse(text)
            return text
        except SyntaxError as err:
            if err.lineno is None or "non-default argument" not in str(err.msg):
                raise
            lines = text.splitlines(keepends=True)
            lines[err.lineno - 1] = default_trailing_params(lines[err.lineno - 1])
            text = "".join(lines)
    raise RuntimeError("could not repair the stub file")


def default_trailing_params(line: str) -> str:
    head, sep, tail = line.partition("(")
    params, close, rest = tail.rpartition(")")
    seen_default, fixed = False, []
    for part in split_params(params):
        if "=" in part:
            seen_default = True
        elif seen_default and ":" in part and not part.strip().startswith("*"):
            part = part.rstrip() + " = ..."
        fixed.append(part)
    return head + sep + ",".join(fixed) + close + rest


def split_params(params: str) -> list[str]:
    """Split on commas at bracket depth 0 (annotations like ``dict[str, int]`` hold commas)."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(params):
        depth += ch in "([{"
        depth -= ch in ")]}"
        if ch == "," and depth == 0:
            parts.append(params[start:i])
            start = i + 1
    parts.append(params[start:])
    return parts


def patched_copy(root: Path, dest: Path) -> Path:
    for name in STUB_PACKAGES:
        shutil.copytree(root / name, dest / name)
    for stub in dest.rglob("*.pyi"):
        stub.write_text(fix_default_order(fix_names(fix_keyword_params(stub.read_text()))))
    return dest


def mypy_config(repo: Path, dest: Path) -> Path:
    """The project's ``[tool.mypy]`` settings as an ini file, plus: errors inside the stubs are not ours."""
    import tomllib

    settings = tomllib.loads((repo / "pyproject.toml").read_text())["tool"]["mypy"]
    lines = ["[mypy]"]
    for key, value in settings.items():
        text = ", ".join(value) if isinstance(value, list) else str(value)
        lines.append(f"{key} = {text}")
    lines += ["", "[mypy-tensorrt.*,tensorrt_bindings.*]", "ignore_errors = True", ""]
    dest.write_text("\n".join(lines))
    return dest


def mypy(paths: list[str], stubs: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, MYPYPATH=str(stubs))
    config = mypy_config(cwd, stubs.parent / "mypy.ini")
    # errors in modules only imported (the rest of the package) belong to `make typecheck`, not to this step
    cmd = [sys.executable, "-m", "mypy", "--no-incremental", "--follow-imports=silent", "--config-file", str(config),
           *paths]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)


def main(argv: list[str]) -> int:
    repo = Path(__file__).resolve().parents[1]
    paths = argv or ["edgedistill/trt"]
    with tempfile.TemporaryDirectory(prefix="trt-stubs-") as tmp:
        stubs = patched_copy(stubs_root(), Path(tmp) / "stubs")
        probe = Path(tmp) / "probe" / "trt_probe.py"
        probe.parent.mkdir()
        probe.write_text(SELF_CHECK)
        check = mypy([str(probe)], stubs, repo)
        if "FP61" not in check.stdout:
            print("self-check failed: mypy did not flag trt.BuilderFlag.FP61, so the stubs are not in use:\n"
                  + check.stdout + check.stderr, file=sys.stderr)
            return 2
        result = mypy(paths, stubs, repo)
        print(result.stdout + result.stderr, end="")
        return result.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
