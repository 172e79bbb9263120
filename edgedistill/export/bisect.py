"""Find where an exported graph first departs from torch: compare at every module boundary.

Like polygraphy's ``mark all``, intermediate tensors become graph outputs and ONNX Runtime returns them; unlike
it, the reference is the torch module itself. Each ONNX node is placed in the module that produced it — the
dynamo exporter's ``pkg.torch.onnx.name_scopes`` metadata (``['', 'backbone', ..., 'backbone.encoder.layer.0',
'<fx node>']``), or the TorchScript exporter's node names (``/backbone/encoder/layer.0/.../MatMul``). A
module's *boundary* is the value its nodes produce and nodes outside it consume; a forward hook on the module
gives the torch value, matched by shape. Boundaries are compared in graph order and the first one beyond
tolerance is reported: with the modules nested, that is the innermost module where the error starts.

    backbone.encoder.layer.0            ok
    backbone.encoder.layer.1.attention.self.query   max abs 2.3e-01   <- first
    backbone.encoder.layer.1.attention.self         max abs 4.1e-01
    backbone.encoder.layer.1                        max abs 9.7e-01
"""

from __future__ import annotations

import ast
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from onnx import helper

from edgedistill.config import ExportConfig
from edgedistill.export.verify import torch_outputs
from edgedistill.models.onnx_file import save_onnx
from edgedistill.models.outputs import first_tensor, recorded_outputs
from edgedistill.models.task_model import TaskModel
from edgedistill.verification import compare

SCOPES_KEY = "pkg.torch.onnx.name_scopes"
ROOT = ""  # the exported module itself; its boundary is the graph output


@dataclass(frozen=True)
class Boundary:
    """The ONNX value that carries a module's output, and where it sits in the graph."""

    module: str
    value: str
    node: str
    position: int


def scope_chain(node: onnx.NodeProto) -> list[str] | None:
    """The modules enclosing ``node``, outermost first (``''`` is the root), or None when unknown."""
    props = {p.key: p.value for p in node.metadata_props}
    if SCOPES_KEY in props:
        names = ast.literal_eval(props[SCOPES_KEY])  # module names, then the FX node's own name
        return [str(n) for n in names[:-1]] if names and names[0] == ROOT else None
    if node.name.startswith("/"):  # TorchScript: /backbone/encoder/layer.0/attention/self/query/MatMul
        parts = node.name.strip("/").split("/")[:-1]
        return [ROOT] + [".".join(parts[: i + 1]) for i in range(len(parts))]
    return None


def node_chains(graph: onnx.GraphProto) -> list[list[str]]:
    """Scope chains of every node; a node the exporter left unnamed (an optimizer rewrite) takes the chain
    of the producer of its first input that has one (the rewrite replaced nodes in that module)."""
    produced_by: dict[str, list[str]] = {}
    chains = []
    for node in graph.node:
        chain = scope_chain(node)
        if chain is None:
            chain = next((produced_by[i] for i in node.input if i in produced_by), [ROOT])
        chains.append(chain)
        for out in node.output:
            produced_by[out] = chain
    return chains


def module_boundaries(model: onnx.ModelProto, modules: set[str]) -> dict[str, list[Boundary]]:
    """For each module in ``modules``: the values its nodes produce that are used outside it (graph order)."""
    graph = model.graph
    chains = node_chains(graph)
    consumers: dict[str, list[int]] = {}
    for index, node in enumerate(graph.node):
        for name in node.input:
            consumers.setdefault(name, []).append(index)
    graph_outputs = {o.name for o in graph.output}
    found: dict[str, list[Boundary]] = {}
    for index, node in enumerate(graph.node):
        for module in (m for m in chains[index] if m in modules):
            for value in node.output:
                outside = any(module not in chains[c] for c in consumers.get(value, []))
                if value and (outside or value in graph_outputs):
                    found.setdefault(module, []).append(Boundary(module, value, node.name, index))
    return found


def as_array(_key: str, output: Any) -> np.ndarray | None:
    """A module output's first tensor as a float32 numpy copy (None when it holds none)."""
    tensor = first_tensor(output)
    return None if tensor is None else tensor.detach().float().numpy().copy()


def with_outputs_marked(model: onnx.ModelProto, values: list[str]) -> onnx.ModelProto:
    """A copy of ``model`` whose graph also outputs ``values`` (types from the graph's value_info if known)."""
    marked = onnx.ModelProto()
    marked.CopyFrom(model)
    known = {v.name: v for v in [*marked.graph.value_info, *marked.graph.output]}
    present = {o.name for o in marked.graph.output}
    for name in values:
        if name not in present:
            marked.graph.output.append(known.get(name) or helper.make_empty_tensor_value_info(name))
            present.add(name)
    return marked


def run_marked(model: onnx.ModelProto, values: list[str], feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """ONNX Runtime (CPU, default optimizations) on ``model`` with ``values`` marked as outputs."""
    import onnxruntime as ort

    marked = with_outputs_marked(model, values)
    with tempfile.TemporaryDirectory(prefix="edgedistill-bisect-") as tmp:
        path = Path(tmp) / "marked.onnx"
        save_onnx(marked, path)
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        graph_inputs = [i.name for i in session.get_inputs()]
        names = [o.name for o in session.get_outputs()]
        return dict(zip(names, session.run(None, {n: feeds[n] for n in graph_inputs}), strict=True))


def disagreement(ref: np.ndarray, got: np.ndarray, atol: float) -> dict[str, Any]:
    """Max abs diff, the reference's scale, and whether the diff exceeds ``atol`` times max(1, scale).

    The tolerance scales with the tensor because pre-LayerNorm hidden states reach tens, where an fp32
    export legitimately differs by more than the final output's ``atol``.
    """
    both_nan = np.isnan(ref) & np.isnan(got)
    diff = np.where(both_nan, 0.0, np.abs(ref.astype(np.float64) - got.astype(np.float64)))
    max_abs = float(np.nan_to_num(diff, nan=np.inf).max()) if diff.size else 0.0
    scale = float(np.nanmax(np.abs(ref))) if ref.size and not np.isnan(ref).all() else 0.0
    return {"max_abs": max_abs, "scale": scale, "disagrees": max_abs > atol * max(1.0, scale)}


def worst_batch(
    model: TaskModel, preprocessor: Any, onnx_path: Path, cfg: ExportConfig
) -> tuple[str, dict[str, np.ndarray]]:
    """The verification batch on which the final output differs most (the failing input)."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    graph_inputs = [i.name for i in session.get_inputs()]
    worst: tuple[float, str, dict[str, np.ndarray]] | None = None
    for label, feeds in model.spec.verification_feeds(model, preprocessor, cfg.dynamic):
        got = session.run(None, {n: feeds[n] for n in graph_inputs})[0]
        ref = next(iter(torch_outputs(model, feeds).values()))
        diff = compare(ref, got)["max_abs"]
        if worst is None or diff > worst[0]:
            worst = (diff, label, feeds)
    assert worst is not None
    return worst[1], worst[2]


def bisect_onnx(
    model: TaskModel, preprocessor: Any, onnx_path: Path, cfg: ExportConfig,
    feeds: dict[str, np.ndarray] | None = None,
) -> dict[str, Any]:
    """Compare ONNX Runtime with torch at every module boundary and name the first module that disagrees.

    Args:
        model: the module that was exported (module names must be those the export recorded).
        preprocessor: its tokenizer or image processor (the Task's verification inputs, when ``feeds`` is not
            given).
        onnx_path: the exported file (dynamo or TorchScript export).
        cfg: ``atol`` is the tolerance (scaled by each tensor's magnitude, see :func:`disagreement`).
        feeds: the input to bisect on; default: the verification batch with the largest output difference.
    Returns:
        ``{"feeds": label, "atol", "compared": [{module, value, node, shape, max_abs, scale, disagrees}]`` in
        graph order, ``"first"``: the first disagreeing entry or None, ``"enclosing"``: the modules containing
        it that also disagree, ``"layer"``: the numbered layer holding it (``backbone.encoder.layer.1``) or
        None, ``"unmatched"``: modules with no ONNX value of their output's shape}.
    """
    label = "given"
    if feeds is None:
        label, feeds = worst_batch(model, preprocessor, onnx_path, cfg)
    proto = onnx.load(str(onnx_path))
    modules = {name for name, _ in model.named_modules()}
    boundaries = module_boundaries(proto, modules)
    named = {name: module for name, module in model.named_modules() if name in boundaries}
    with recorded_outputs(named, as_array, first_call_only=True) as captured, torch.inference_mode():
        model(**{name: torch.from_numpy(value) for name, value in feeds.items()})
    values = sorted({b.value for bs in boundaries.values() for b in bs})
    got = run_marked(proto, values, feeds)
    compared, unmatched = [], []
    for module, candidates in boundaries.items():
        ref = captured.get(module)
        fits = [b for b in candidates if ref is not None and got[b.value].shape == ref.shape]
        if ref is None or not fits:
            unmatched.append(module)
            continue
        b = fits[-1]  # several values of the right shape leave the module: its output is produced last
        entry = {"module": module or "<model>", "value": b.value, "node": b.node, "position": b.position,
                 "shape": list(ref.shape), **disagreement(ref, got[b.value].astype(np.float32), cfg.atol)}
        compared.append(entry)
    compared.sort(key=lambda e: (e["position"], -len(e["module"])))
    first = next((e for e in compared if e["disagrees"]), None)
    enclosing = [e["module"] for e in compared if first and e["disagrees"] and e is not first
                 and (first["module"].startswith(e["module"] + ".") or e["module"] == "<model>")]
    return {"feeds": label, "atol": cfg.atol, "compared": compared, "first": first, "enclosing": enclosing,
            "layer": layer_of(first["module"]) if first else None, "unmatched": sorted(unmatched)}


def layer_of(module: str) -> str | None:
    """The innermost numbered module (an entry of a ``ModuleList``, e.g. ``encoder.layer.1``) holding ``module``."""
    parts = module.split(".")
    numbered = [i for i, part in enumerate(parts) if part.isdigit()]
    return ".".join(parts[: numbered[-1] + 1]) if numbered else None


def describe(report: dict[str, Any]) -> str:
    """One line for the user: the first disagreeing module, its ONNX node and value, shape and error."""
    first = report["first"]
    if first is None:
        return f"bisect: all {len(report['compared'])} module outputs agree with torch on {report['feeds']}"
    where = f" in {report['layer']}" if report.get("layer") else ""
    return (
        f"bisect: first disagreement{where} at module '{first['module']}' (ONNX node '{first['node']}', value "
        f"'{first['value']}', shape {tuple(first['shape'])}): max abs diff {first['max_abs']:.2e} "
        f"(|ref| up to {first['scale']:.2g}) on input {report['feeds']}"
    )
