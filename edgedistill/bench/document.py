"""The results document every benchmark writes: its measurements, with what makes them comparable.

A document is the measurements plus ``document`` (this format's version), ``kind`` (what was measured), ``label``,
``date`` and ``created`` (UTC), ``command`` (how to re-run it) and ``env``, the environment fingerprint, which holds
the git commit. A bench results file (schema 2) already carries ``env`` and ``created``; they are kept as measured.
Documents are named ``<area>/results/<date>-<label>-<device>.json``, e.g.
``benchmarks/distill/results/20261129-sts-targets-intel-xeon-2core.json``.
"""

from __future__ import annotations

import os
import re
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from edgedistill.artifacts import atomic_write_json
from edgedistill.bench.env import fingerprint

DOCUMENT = 1
CPU_NOISE = re.compile(r"\((r|tm)\)|\bcpu\b|\bprocessor\b|@.*$|\d+-core", re.IGNORECASE)


def slug(text: str) -> str:
    """Lower-case words joined by '-' (for file names)."""
    return "-".join(re.findall(r"[a-z0-9]+", text.lower()))


def device_label(env: dict[str, Any]) -> str:
    """The machine in a file name: the first GPU (``NVIDIA_H200``), else the CPU and its cores
    (``amd-epyc-2core``)."""
    if env.get("gpus"):
        return re.sub(r"[^A-Za-z0-9]+", "_", str(env["gpus"][0])).strip("_")
    return f"{slug(CPU_NOISE.sub(' ', str(env.get('cpu') or 'cpu')))}-{env.get('cores') or 0}core"


def results_document(kind: str, label: str, payload: dict[str, Any], threads: int | None = None) -> dict[str, Any]:
    """``payload`` wrapped as a results document (its own ``env`` and ``created`` win, when it has them).

    ``threads``: the intra-op threads the measurements used (default: every core).
    """
    created = payload.get("created") or datetime.now(timezone.utc).isoformat(timespec="seconds")
    env = payload.get("env") or fingerprint(threads or os.cpu_count() or 1)
    header = {"document": DOCUMENT, "kind": kind, "label": label, "date": created[:10], "created": created,
              "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]), "env": env}
    return {**header, **{k: v for k, v in payload.items() if k not in header}}


def results_path(area: Path, document: dict[str, Any]) -> Path:
    """``<area>/results/<date>-<label>-<device>.json`` for a document."""
    date = document["date"].replace("-", "")
    return Path(area) / "results" / f"{date}-{slug(document['label'])}-{device_label(document['env'])}.json"


def write_results(area: Path, kind: str, label: str, payload: dict[str, Any], threads: int | None = None,
                  out: Path | None = None) -> Path:
    """Write ``payload`` as a results document into ``area``'s results folder (or to ``out``); returns the path."""
    document = results_document(kind, label, payload, threads)
    path = Path(out) if out is not None else results_path(area, document)
    atomic_write_json(path, document)
    return path
