"""A mutable view of an ONNX graph for pattern matching: who produces and who consumes each tensor.

Fusions read the graph through :class:`Graph` (producer, consumers, constant values) and edit it through
``add_node`` / ``remove_nodes`` / ``prune``; the index is rebuilt lazily after each edit, so matchers always
see the current wiring. A node with subgraphs (``If``) counts as a consumer of every tensor its subgraphs read
from the enclosing graph, so pruning never drops what only a branch uses.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator

import numpy as np
import onnx
from onnx import numpy_helper


def same_domain(a: str, b: str) -> bool:
    """ONNX spells the default domain "" or "ai.onnx"."""
    return (a or "ai.onnx") == (b or "ai.onnx")


def subgraphs(node: onnx.NodeProto) -> list[onnx.GraphProto]:
    """The graph attributes of ``node``: ``If`` branches, ``Loop``/``Scan`` bodies."""
    return [g for attr in node.attribute for g in ([attr.g] if attr.HasField("g") else list(attr.graphs))]


def subgraph_outputs(node: onnx.NodeProto) -> set[str]:
    """Every tensor name produced inside the subgraphs of ``node`` (nested ones too)."""
    return {o for sub in subgraphs(node) for inner in sub.node for o in [*inner.output, *subgraph_outputs(inner)]}


def outer_scope_inputs(node: onnx.NodeProto) -> list[str]:
    """Names the subgraphs of ``node`` read from the enclosing graph (each once)."""
    names: list[str] = []
    for sub in subgraphs(node):
        local = {i.name for i in sub.input} | {i.name for i in sub.initializer}
        local |= {o for n in sub.node for o in n.output}
        for inner in sub.node:
            names += [n for n in [*inner.input, *outer_scope_inputs(inner)] if n and n not in local]
    return list(dict.fromkeys(names))


def sort_topologically(graph: onnx.GraphProto) -> bool:
    """Reorder ``graph.node`` so every node follows the producers of what it and its subgraphs read.

    Tools that sort by explicit inputs only (ONNX Runtime's quantizer) can put an ``If`` ahead of a tensor its
    branch reads from the enclosing graph; ``onnx.checker`` then rejects the model. Stable: nodes already in order
    keep their places. Returns whether anything moved.
    """
    producer = {o: n for n in graph.node for o in n.output if o}
    deps = {id(n): [producer[i] for i in [*n.input, *outer_scope_inputs(n)] if i in producer] for n in graph.node}
    order: list[onnx.NodeProto] = []
    state: dict[int, str] = {}  # "open" while its producers are being placed, "done" once placed
    for root in graph.node:
        stack = [root]
        while stack:
            node = stack[-1]
            if state.get(id(node)) == "done":
                stack.pop()
                continue
            state[id(node)] = "open"
            todo = [d for d in deps[id(node)] if state.get(id(d)) != "done"]
            if any(state.get(id(d)) == "open" for d in todo):
                raise ValueError(f"graph '{graph.name}' has a cycle through node '{node.name or node.op_type}'")
            if todo:
                stack.extend(reversed(todo))
                continue
            state[id(node)] = "done"
            order.append(node)
            stack.pop()
    if [id(n) for n in order] == [id(n) for n in graph.node]:
        return False
    copies = [onnx.NodeProto() for _ in order]
    for copy, node in zip(copies, order, strict=True):
        copy.CopyFrom(node)
    del graph.node[:]
    graph.node.extend(copies)
    return True


class Graph:
    """Index over ``model.graph``: producers, consumers and constants (initializers and ``Constant`` nodes)."""

    def __init__(self, model: onnx.ModelProto):
        self.model = model
        self.graph = model.graph
        self._counter = itertools.count()
        self._dirty = True
        self._producer: dict[str, onnx.NodeProto] = {}
        self._consumers: dict[str, list[onnx.NodeProto]] = {}
        self._initializers: dict[str, onnx.TensorProto] = {}
        self._inner: set[str] = set()

    # ------------------------------------------------------------------ index

    def _reindex(self) -> None:
        if not self._dirty:
            return
        self._producer = {out: node for node in self.graph.node for out in node.output if out}
        self._consumers = {}
        for node in self.graph.node:
            implicit = [n for n in outer_scope_inputs(node) if n not in node.input]
            for name in [*node.input, *implicit]:
                if name:
                    self._consumers.setdefault(name, []).append(node)
        self._initializers = {init.name: init for init in self.graph.initializer}
        self._inner = {o for node in self.graph.node for o in subgraph_outputs(node)}
        self._dirty = False

    def nodes(self, op_type: str, domain: str = "") -> list[onnx.NodeProto]:
        """Nodes of ``op_type`` (a snapshot: safe to edit the graph while iterating)."""
        return [n for n in self.graph.node if n.op_type == op_type and same_domain(n.domain, domain)]

    def producer(self, name: str) -> onnx.NodeProto | None:
        self._reindex()
        return self._producer.get(name)

    def consumers(self, name: str) -> list[onnx.NodeProto]:
        self._reindex()
        return self._consumers.get(name, [])

    def is_graph_output(self, name: str) -> bool:
        return any(o.name == name for o in self.graph.output)

    def graph_inputs(self) -> dict[str, onnx.ValueInfoProto]:
        self._reindex()
        return {i.name: i for i in self.graph.input if i.name not in self._initializers}

    def opset(self, domain: str = "") -> int:
        return next((o.version for o in self.model.opset_import if same_domain(o.domain, domain)), 0)

    def require_opset(self, domain: str, version: int) -> None:
        """Declare ``domain`` at ``version`` (for the fused op's domain) unless already imported."""
        if not any(same_domain(o.domain, domain) for o in self.model.opset_import):
            self.model.opset_import.append(onnx.helper.make_opsetid(domain, version))

    # -------------------------------------------------------------- constants

    def constant(self, name: str) -> np.ndarray | None:
        """The value of ``name`` if it is an initializer or a ``Constant`` node's output, else None."""
        self._reindex()
        if name in self._initializers:
            return numpy_helper.to_array(self._initializers[name])
        node = self._producer.get(name)
        if node is None or node.op_type != "Constant":
            return None
        attr = next((a for a in node.attribute if a.name == "value"), None)
        return numpy_helper.to_array(attr.t) if attr is not None else None

    def scalar(self, name: str) -> float | None:
        """The value of a one-element constant, else None."""
        value = self.constant(name)
        return float(value.reshape(-1)[0]) if value is not None and value.size == 1 else None

    def other_input(self, node: onnx.NodeProto, name: str) -> str | None:
        """For a binary node with ``name`` as one input, the other input."""
        if len(node.input) != 2 or name not in node.input:
            return None
        return node.input[1] if node.input[0] == name else node.input[0]

    # ------------------------------------------------------------------ edits

    def unique_name(self, stem: str) -> str:
        self._reindex()
        taken = set(self._producer) | set(self._initializers) | {i.name for i in self.graph.input} | self._inner
        while True:
            name = f"{stem}_{next(self._counter)}"
            if name not in taken:
                return name

    def add_initializer(self, name: str, value: np.ndarray) -> str:
        self.graph.initializer.append(numpy_helper.from_array(value, name))
        self._dirty = True
        return name

    def add_node(self, node: onnx.NodeProto, before: onnx.NodeProto | None = None) -> None:
        """Insert ``node`` before ``before`` (keeps the list topologically sorted when inputs exist earlier)."""
        nodes = self.graph.node
        index = len(nodes) if before is None else next(i for i, n in enumerate(nodes) if n is before)
        nodes.insert(index, node)
        self._dirty = True

    def remove_nodes(self, doomed: Iterable[onnx.NodeProto]) -> None:
        ids = {id(n) for n in doomed}
        for index in reversed([i for i, n in enumerate(self.graph.node) if id(n) in ids]):
            del self.graph.node[index]  # in place: no copy of the node list per rewrite
        self._dirty = True

    def prune(self) -> int:
        """Remove nodes whose outputs nobody uses, and unused initializers; returns how many nodes went."""
        removed = 0
        while True:
            self._reindex()
            dead = [
                n for n in self.graph.node
                if not any(self._consumers.get(o) or self.is_graph_output(o) for o in n.output if o)
            ]
            if not dead:
                break
            removed += len(dead)
            self.remove_nodes(dead)
        self._reindex()
        used = set(self._consumers) | {o.name for o in self.graph.output}
        kept = [i for i in self.graph.initializer if i.name in used]
        del self.graph.initializer[:]
        self.graph.initializer.extend(kept)
        self._dirty = True
        return removed

    def ancestors(self, name: str) -> Iterator[onnx.NodeProto]:
        """Every node ``name`` depends on (each once)."""
        seen: set[int] = set()
        stack = [name]
        while stack:
            node = self.producer(stack.pop())
            if node is None or id(node) in seen:
                continue
            seen.add(id(node))
            yield node
            stack.extend(i for i in node.input if i)
