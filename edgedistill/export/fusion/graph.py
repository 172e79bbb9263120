"""A mutable view of an ONNX graph for pattern matching: who produces and who consumes each tensor.

Fusions read the graph through :class:`Graph` (producer, consumers, constant values) and edit it through
``add_node`` / ``remove_nodes`` / ``prune``; the index is rebuilt lazily after each edit, so matchers always
see the current wiring.
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

    # ------------------------------------------------------------------ index

    def _reindex(self) -> None:
        if not self._dirty:
            return
        self._producer = {out: node for node in self.graph.node for out in node.output if out}
        self._consumers = {}
        for node in self.graph.node:
            for name in node.input:
                if name:
                    self._consumers.setdefault(name, []).append(node)
        self._initializers = {init.name: init for init in self.graph.initializer}
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
        taken = set(self._producer) | set(self._initializers) | {i.name for i in self.graph.input}
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
