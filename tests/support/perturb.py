"""Inject a disagreement into an exported ONNX file: noise on one weight of one layer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

from edgedistill.export.bisect import node_chains


def perturb_layer(src: Path, dst: Path, layer: str) -> str:
    """Add noise (std 1, against weights of std 0.02) to the first 2-D float weight used inside ``layer``;
    returns the module that uses it."""
    model = onnx.load(str(src))
    inits = {i.name: i for i in model.graph.initializer}
    for node, chain in zip(model.graph.node, node_chains(model.graph), strict=True):
        weights = [i for i in node.input if i in inits and len(inits[i].dims) == 2 and inits[i].data_type == 1]
        if layer in chain and weights:
            array = numpy_helper.to_array(inits[weights[0]])
            array = array + np.random.default_rng(0).standard_normal(array.shape).astype(np.float32)
            inits[weights[0]].CopyFrom(numpy_helper.from_array(array, weights[0]))
            onnx.save(model, str(dst))
            return chain[-1]
    raise AssertionError(f"no weight inside {layer}")
