"""Roofline latency estimates: per-node FLOPs and bytes from ONNX shapes against a target's peaks."""

from __future__ import annotations

from edgedistill.estimate.roofline import LABEL, Estimate, estimate, estimate_graph, format_estimate

__all__ = ["LABEL", "Estimate", "estimate", "estimate_graph", "format_estimate"]
