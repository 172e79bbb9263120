"""The ``Fusion`` base class, in the shape of ONNX Runtime's transformers optimizer.

A fusion walks every node of one ``anchor_op`` type, asks its matcher for a match, and rewrites the matches.
Matchers are small functions that return a dataclass or ``None``; when they return ``None`` they say why through
:func:`miss`, and the fusion records that reason against the anchor node, so a report can say which subgraphs
looked like the pattern and why they were left alone.
"""

from __future__ import annotations

import logging
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import onnx

from edgedistill.fuse.graph import Graph

logger = logging.getLogger("edgedistill.fusion")
_last_miss: ContextVar[str] = ContextVar("last_miss", default="no match")

M = TypeVar("M")


def miss(reason: str) -> Any:
    """Record why a matcher did not match (one debug line) and return ``None`` for the matcher to return."""
    logger.debug("no match: %s", reason)
    _last_miss.set(reason)
    return None


def last_miss() -> str:
    return _last_miss.get()


@dataclass
class Skipped:
    node: str
    reason: str
    pattern: str | None = None


@dataclass
class FusionCounts:
    """What one fusion saw: candidates (anchor nodes), fused blocks by pattern, and skips with reasons."""

    fusion: str
    found: int = 0
    fused: int = 0
    patterns: dict[str, int] = field(default_factory=dict)
    skipped: list[Skipped] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "fusion": self.fusion, "found": self.found, "fused": self.fused, "patterns": dict(self.patterns),
            "skipped": [vars(s) for s in self.skipped],
        }


class Fusion(Generic[M]):
    """Match every ``anchor_op`` node, let the subclass check the matches as a group, then rewrite them.

    Subclasses implement :meth:`match` (anchor → match or ``None`` after :func:`miss`), :meth:`rewrite`
    (edit the graph for one match) and optionally :meth:`prepare` (work over all matches at once, such as running
    the mask probes in one ONNX Runtime session) and :meth:`screen` (a last per-match veto).
    ``pattern_of`` names a match's pattern.
    """

    name = "fusion"
    anchor_op = ""
    anchor_domain = ""

    def __init__(self, graph: Graph):
        self.graph = graph
        self.counts = FusionCounts(self.name)

    def apply(self) -> FusionCounts:
        matches: list[tuple[onnx.NodeProto, M]] = []
        for node in self.graph.nodes(self.anchor_op, self.anchor_domain):
            self.counts.found += 1
            match = self.match(node)
            if match is None:
                self.skip(node, last_miss())
            else:
                matches.append((node, match))
        self.prepare([match for _, match in matches])
        for node, match in matches:
            reason = self.screen(match)
            if reason is not None:
                self.skip(node, reason, self.pattern_of(match))
                continue
            self.rewrite(match)
            self.counts.fused += 1
            pattern = self.pattern_of(match)
            self.counts.patterns[pattern] = self.counts.patterns.get(pattern, 0) + 1
        if self.counts.fused:
            self.graph.prune()
        return self.counts

    def skip(self, node: onnx.NodeProto, reason: str, pattern: str | None = None) -> None:
        logger.info("%s: left %s (%s) unfused: %s", self.name, node.name or node.output[0], node.op_type, reason)
        self.counts.skipped.append(Skipped(node.name or node.output[0], reason, pattern))

    def match(self, node: onnx.NodeProto) -> M | None:
        raise NotImplementedError

    def prepare(self, matches: list[M]) -> None:
        """Work that needs every match at once (runs after matching, before screening)."""

    def screen(self, match: M) -> str | None:
        """Why ``match`` must stay unfused after all, or None."""
        return None

    def rewrite(self, match: M) -> None:
        raise NotImplementedError

    def pattern_of(self, match: M) -> str:
        return self.name
