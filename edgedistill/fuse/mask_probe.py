"""What an attention mask means, found by running the graph that computes it.

The exporters build the mask through long index arithmetic (``arange``, ``GatherND``, ``And``, ``Where`` in the
dynamo export; ``Expand``/``Equal`` in the TorchScript one), which changes between torch and transformers
releases. Instead of matching that path node by node, the mask tensors are computed by ONNX Runtime on probe
inputs (random keep patterns, several shapes) and compared with the masks a fused op can express:

- key padding from a graph input ``(B, S_kv)``: ``keep[b, n, q, k] = input[b, k] != 0``;
- causal: ``keep = k <= q``; or both.

A mask that is anything else — on the query axis, a finite bias, per-head values — is reported and its block
stays unfused. The fused graph is verified against the unfused one afterwards, so a probe cannot let a wrong
rewrite through unnoticed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx

from edgedistill.fuse.graph import Graph

PROBE_SHAPES = ((3, 7), (2, 5), (4, 9))  # (B, S): several, so a mask that only fits one shape is caught
MASKED_BELOW = -1e4  # an additive mask value this low removes the key (exp underflows to 0 in float32)
FLOAT32_LOWEST = float(np.finfo(np.float32).min)
INT_TYPES = {onnx.TensorProto.INT64, onnx.TensorProto.INT32, onnx.TensorProto.BOOL}


@dataclass(frozen=True)
class MaskMeaning:
    """A mask a fused attention op can carry."""

    source: str | None  # graph input (B, S_kv) whose nonzero entries are the keys to keep; None: no padding
    causal: bool
    filter_value: float  # what the export adds to masked scores (finite; ONNX Runtime's mask_filter_value)


Hypothesis = tuple[str | None, bool]
Probe = tuple[dict[str, np.ndarray], dict[str, np.ndarray]]  # (keep pattern per candidate input, mask values)


def probe_masks(model: onnx.ModelProto, names: list[str], seed: int = 0) -> dict[str, MaskMeaning | str]:
    """Classify each mask tensor in ``names``: a :class:`MaskMeaning`, or a sentence saying why it is none."""
    import onnxruntime as ort

    if not names:
        return {}
    probe = probe_model(model, names)
    session = ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
    inputs = {i.name: i for i in probe.graph.input if i.name in {x.name for x in session.get_inputs()}}
    candidates = sorted(
        (n for n, i in inputs.items() if i.type.tensor_type.elem_type in INT_TYPES and rank(i) == 2),
        key=lambda n: "mask" not in n,
    )
    rng = np.random.default_rng(seed)
    runs = []
    for batch, seq in PROBE_SHAPES:
        keeps = {c: keep_pattern(rng, batch, seq) for c in candidates}
        feeds = {n: feed(i, batch, seq, keeps.get(n)) for n, i in inputs.items()}
        runs.append((keeps, dict(zip(names, session.run(names, feeds)))))
    return {name: classify(name, runs, candidates) for name in names}


def probe_model(model: onnx.ModelProto, names: list[str]) -> onnx.ModelProto:
    """A copy of ``model`` whose outputs are the mask tensors, with everything else pruned away."""
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    del probe.graph.output[:]
    probe.graph.output.extend(onnx.ValueInfoProto(name=n) for n in names)
    Graph(probe).prune()
    used = {i for node in probe.graph.node for i in node.input}
    kept = [i for i in probe.graph.input if i.name in used]
    del probe.graph.input[:]
    probe.graph.input.extend(kept)
    return probe


def rank(info: onnx.ValueInfoProto) -> int:
    return len(info.type.tensor_type.shape.dim)


def keep_pattern(rng: np.random.Generator, batch: int, seq: int) -> np.ndarray:
    """Random keep/pad pattern (B, S): not only right padding, and the first key always kept."""
    keep = rng.random((batch, seq)) < 0.6
    keep[:, 0] = True
    keep[0, :] = True  # one full row
    return keep


def feed(info: onnx.ValueInfoProto, batch: int, seq: int, keep: np.ndarray | None) -> np.ndarray:
    """A probe input: the keep pattern for a candidate mask input, zeros (valid ids) for anything else."""
    tensor = info.type.tensor_type
    dtype = onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type)
    dims = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else (batch, seq)[min(i, 1)]
            for i, d in enumerate(tensor.shape.dim)]
    if keep is not None and keep.shape == tuple(dims):
        return keep.astype(dtype)
    return np.zeros(dims, dtype=dtype)


def to_keep(mask: np.ndarray) -> np.ndarray | str:
    """Boolean keep-mask from a boolean mask or an additive float mask (0: keep, very negative: masked)."""
    if mask.dtype == np.bool_:
        return mask
    finite_bias = (mask != 0) & (mask > MASKED_BELOW)
    if finite_bias.any():
        return f"it holds finite bias values (e.g. {float(mask[finite_bias].flat[0]):g}), not only 0 and -inf"
    return mask == 0


def expected(keep: np.ndarray | None, causal: bool, batch: int, seq: int) -> np.ndarray:
    """The (B, 1, S_q, S_kv) keep-mask of a hypothesis."""
    out = np.ones((batch, 1, seq, seq), dtype=bool)
    if keep is not None:
        out &= keep[:, None, None, :]
    if causal:
        out &= np.tril(np.ones((seq, seq), dtype=bool))
    return out


def fits(keep: np.ndarray, want: np.ndarray) -> bool:
    if keep.ndim != 4:
        return False
    try:
        return bool(np.array_equal(np.broadcast_to(keep, (*want.shape[:1], keep.shape[1], *want.shape[2:])),
                                   np.broadcast_to(want, (*want.shape[:1], keep.shape[1], *want.shape[2:]))))
    except ValueError:
        return False


def classify(name: str, runs: list[Probe], candidates: list[str]) -> MaskMeaning | str:
    """The first hypothesis (key padding by a candidate input, causal, both, neither) every probe agrees with."""
    hypotheses: list[Hypothesis] = [(c, causal) for c in candidates for causal in (False, True)]
    hypotheses += [(None, False), (None, True)]
    weakest = FLOAT32_LOWEST  # the masked value closest to zero, across the probes
    for keeps, masks in runs:
        keep = to_keep(masks[name])
        if isinstance(keep, str):
            return f"mask '{name}': {keep}"
        if masks[name].dtype != np.bool_ and (~keep).any():
            weakest = max(weakest, float(masks[name][~keep].max()))
        batch, seq = next(iter(keeps.values())).shape if keeps else (keep.shape[0], keep.shape[-1])
        hypotheses = [
            (c, causal) for c, causal in hypotheses
            if fits(keep, expected(keeps.get(c) if c else None, causal, batch, seq))
        ]
    if not hypotheses:
        return f"mask '{name}': {describe_misfit(runs, name, candidates)}"
    source, causal = hypotheses[0]
    return MaskMeaning(source, causal, weakest)


def describe_misfit(runs: list[Probe], name: str, candidates: list[str]) -> str:
    """Why no hypothesis fits: name the query-axis case, which is the common near miss."""
    for c in candidates:
        on_query = all(
            fits(k, keeps[c][:, None, :, None] & np.ones((1, 1, 1, keeps[c].shape[1]), dtype=bool))
            for (keeps, masks) in runs
            if not isinstance(k := to_keep(masks[name]), str)
        )
        if on_query:
            return f"it masks the query axis by '{c}' (padding masks act on keys); not a key-padding mask"
    return "it is not a key-padding mask of any graph input, nor causal"
