"""The fused attention node in each deployment form.

- ``ort``: ``com.microsoft.MultiHeadAttention`` — ONNX Runtime's CPU and CUDA kernels. The key-padding mask
  goes in as ``key_padding_mask`` (B, S_kv) int32 (0 = padding), ``mask_filter_value`` as in the export; an
  additive score bias (DeBERTa's relative-position terms, the export's mask folded in: :func:`score_bias`) as
  ``attention_bias`` (B, N, S_q, S_kv), input 5 of the contrib op (query, key, value, bias, key_padding_mask,
  attention_bias, past_key, past_value);
- ``onnx``: the standard opset-23 ``Attention`` on 3D tensors (``q_num_heads``/``kv_num_heads``), the padding
  as a boolean ``attn_mask`` (B, 1, 1, S_kv) — ONNX Runtime, TensorRT >= 10.14; a score bias as a float
  ``attn_mask`` (B, N, S_q, S_kv), which the op adds to the scaled scores;
- ``trt-plugin``: a node whose op type is the plugin name from ``plugins/fused_attention/spec.json``; TensorRT's
  ONNX parser maps a node it has no importer for to the plugin creator registered under the op type, the
  ``plugin_version`` and ``plugin_namespace`` string attributes, and turns the other attributes into plugin
  fields (ints → INT32, floats → FLOAT32). The fields come from the spec, so the C++ creator and this pass agree.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper

from edgedistill.config.export import ATTENTION_OPSET
from edgedistill.errors import InputError
from edgedistill.fuse.attention_match import AttentionMatch
from edgedistill.fuse.graph import Graph
from edgedistill.fuse.mask_probe import MaskMeaning
from edgedistill.plugins import fused_attention_spec

FORMS = ("ort", "onnx", "trt-plugin")
MS_DOMAIN = "com.microsoft"
TRT_PLUGIN_DOMAIN = "trt.plugins"  # the parser ignores the domain for plugin nodes; this keeps ONNX checkers calm


@dataclass
class MaskInputs:
    """Mask tensors derived from a graph input, made once and shared by every fused node."""

    graph: Graph
    made: dict[tuple[str, str], str]

    def int32(self, source: str) -> str:
        """``source`` (B, S_kv) as int32, nonzero = keep."""
        return self._derive(source, "int32", lambda out: [cast(source, out, TensorProto.INT32)])

    def keep_4d(self, source: str) -> str:
        """``source`` (B, S) as a boolean keep-mask (B, 1, S, S) for self-attention.

        Expanded over the query axis because ONNX Runtime's CPU ``Attention`` (1.32) requires the mask's
        second-to-last dimension to equal the query length rather than broadcasting a 1 there.
        """
        g = self.graph

        def build(out: str) -> list[onnx.NodeProto]:
            names = [g.unique_name(f"{source}_{part}") for part in ("bool", "b11s", "seq", "target")]
            axes = g.add_initializer(g.unique_name("mask_axes"), np.array([1, 2], dtype=np.int64))
            one = g.add_initializer(g.unique_name("mask_one"), np.array([1], dtype=np.int64))
            return [
                cast(source, names[0], TensorProto.BOOL),
                helper.make_node("Unsqueeze", [names[0], axes], [names[1]]),  # (B, 1, 1, S)
                helper.make_node("Shape", [source], [names[2]], start=1, end=2),  # [S]
                helper.make_node("Concat", [one, one, names[2], one], [names[3]], axis=0),  # [1, 1, S, 1]
                helper.make_node("Expand", [names[1], names[3]], [out]),  # (B, 1, S, S)
            ]
        return self._derive(source, "keep_4d", build)

    def _derive(self, source: str, kind: str, build: Callable[[str], list[onnx.NodeProto]]) -> str:
        if (source, kind) not in self.made:
            out = self.graph.unique_name(f"{source}_{kind}")
            for offset, node in enumerate(build(out)):
                self.graph.graph.node.insert(offset, node)  # only reads a graph input: first is topological
            self.graph._dirty = True
            self.made[(source, kind)] = out
        return self.made[(source, kind)]


def cast(source: str, out: str, to: int) -> onnx.NodeProto:
    return helper.make_node("Cast", [source], [out], to=to, name=out)


def node_name(m: AttentionMatch, form: str) -> str:
    return f"{form}_attention/{m.anchor.name or m.anchor.output[0]}"


BIAS_INPUTS = {"ort": "attention_bias", "onnx": "attn_mask"}  # the forms that take an additive score bias


def bias_screen(m: AttentionMatch, form: str) -> str | None:
    """Why ``form`` cannot take the block's score bias (it has no input for one), or None."""
    if m.bias is None:
        return None
    terms = "+".join(m.bias.terms) or "score"
    if form not in BIAS_INPUTS:
        return (f"disentangled position bias ({terms}) needs an additive attention bias input; form {form} has none "
                f"(forms with one: {', '.join(BIAS_INPUTS)})")
    if form == "onnx" and m.mask is not None:
        return f"the {terms} bias and the mask '{m.mask}' would both need the one attn_mask of form onnx"
    return None


def score_bias(g: Graph, m: AttentionMatch) -> str:
    """The fused node's additive bias (B, N, S_q, S_kv), made from the match's :class:`ScoreBias`::

        bias (B*N, S_q, S_kv) ─Reshape [-1, N, S_q, S_kv]─[Where(cond, fill, ·)]─▶ attention bias

    The mask is applied as the export applied it (same condition, same fill, same branch order); the fused op adds
    the result to the scaled scores, where ``scores + fill == fill`` (see ``ScoreBias``). The nodes go before the
    block's softmax, where the bias and the mask are ready.
    """
    assert m.bias is not None
    bias, stem = m.bias, m.bias.tensor
    name = {part: g.unique_name(f"{stem}_{part}") for part in ("sizes", "target", "unfolded", "masked")}
    lead = g.add_initializer(g.unique_name(f"{stem}_lead"), np.array([-1, m.num_heads], dtype=np.int64))
    nodes = [
        helper.make_node("Shape", [stem], [name["sizes"]], start=1),  # [S_q, S_kv]
        helper.make_node("Concat", [lead, name["sizes"]], [name["target"]], axis=0),  # [-1, N, S_q, S_kv]
        helper.make_node("Reshape", [stem, name["target"]], [name["unfolded"]]),
    ]
    out = name["unfolded"]
    if (masked := bias.mask) is not None:
        branches = [masked.fill, out] if masked.fill_when_true else [out, masked.fill]
        nodes.append(helper.make_node("Where", [masked.condition, *branches], [name["masked"]]))
        out = name["masked"]
    for node in nodes:
        node.name = node.output[0]
        g.add_node(node, before=m.anchor)
    return out


def ort_node(g: Graph, m: AttentionMatch, mask: MaskMeaning | None, masks: MaskInputs) -> onnx.NodeProto:
    """``com.microsoft.MultiHeadAttention(q, k, v, bias="", key_padding_mask, attention_bias)``."""
    inputs = [m.query, m.key, m.value, "", "", ""]
    attrs: dict[str, Any] = {"num_heads": m.num_heads, "scale": m.scale}
    if mask is not None and mask.source is not None:
        inputs[4] = masks.int32(mask.source)
        attrs["mask_filter_value"] = mask.filter_value
    if m.bias is not None:
        inputs[5] = score_bias(g, m)
    while not inputs[-1]:
        inputs.pop()
    if m.causal or (mask is not None and mask.causal):
        attrs["unidirectional"] = 1
    g.require_opset(MS_DOMAIN, 1)
    name = node_name(m, "ort")
    return helper.make_node("MultiHeadAttention", inputs, [m.output], name=name, domain=MS_DOMAIN, **attrs)


def onnx_node(g: Graph, m: AttentionMatch, mask: MaskMeaning | None, masks: MaskInputs) -> onnx.NodeProto:
    """Standard ``Attention`` (opset 23) on (B, S, N*H) tensors."""
    if g.opset() < ATTENTION_OPSET:
        raise InputError(
            f"the 'onnx' attention form needs opset {ATTENTION_OPSET}; this model is opset {g.opset()} "
            f"(re-export with export.opset: {ATTENTION_OPSET}, or use the 'ort' form)"
        )
    inputs = [m.query, m.key, m.value]
    if mask is not None and mask.source is not None:
        inputs.append(masks.keep_4d(mask.source))
    elif m.bias is not None:  # never both: bias_screen keeps such a block unfused
        inputs.append(score_bias(g, m))
    causal = int(m.causal or (mask is not None and mask.causal))
    return helper.make_node(
        "Attention", inputs, [m.output], name=node_name(m, "onnx"), q_num_heads=m.num_heads,
        kv_num_heads=m.num_heads, scale=m.scale, is_causal=causal,
    )


def plugin_fields(m: AttentionMatch, mask: MaskMeaning | None) -> dict[str, int | float]:
    """The plugin's field values for this block, keyed by the spec's field names."""
    return {
        "num_heads": m.num_heads,
        "head_size": m.head_size,
        "scale": m.scale,
        "causal": int(m.causal or (mask is not None and mask.causal)),
        "mask_type": 1 if mask is not None and mask.source is not None else 0,
        "num_kv_heads": m.num_heads,  # the blocks matched here share every key/value head with one query head
    }


def plugin_attributes(values: dict[str, int | float], spec: dict[str, Any]) -> dict[str, int | float | str]:
    """Node attributes from the spec: every field typed as the spec says, plus version and namespace.

    Raises:
        InputError: the spec has a field this pass cannot fill (the spec and the pass disagree).
    """
    attrs: dict[str, int | float | str] = {}
    for field in spec["fields"]:
        name, kind = field["name"], field["type"]
        if name not in values:
            raise InputError(f"plugin spec field '{name}' has no value in the fusion pass; update forms.plugin_fields")
        attrs[name] = float(values[name]) if kind.startswith("float") else int(values[name])
    attrs["plugin_version"] = str(spec["version"])
    attrs["plugin_namespace"] = str(spec["namespace"])
    return attrs


def plugin_screen(m: AttentionMatch) -> str | None:
    """Why the plugin cannot take this block (head sizes outside the spec), or None."""
    sizes = fused_attention_spec().get("supported_head_sizes")
    if sizes and m.head_size not in sizes:
        return f"head size {m.head_size} is not supported by the {fused_attention_spec()['name']} plugin ({sizes})"
    return None


def plugin_node(g: Graph, m: AttentionMatch, mask: MaskMeaning | None, masks: MaskInputs) -> onnx.NodeProto:
    """The TensorRT plugin node: ``op_type`` = spec name, fields and version/namespace as attributes."""
    spec = fused_attention_spec()
    inputs = [m.query, m.key, m.value]
    if mask is not None and mask.source is not None:
        inputs.append(masks.int32(mask.source))
    g.require_opset(TRT_PLUGIN_DOMAIN, 1)
    attrs: dict[str, Any] = plugin_attributes(plugin_fields(m, mask), spec)
    name = node_name(m, "trt")
    return helper.make_node(spec["name"], inputs, [m.output], name=name, domain=TRT_PLUGIN_DOMAIN, **attrs)


Builder = Callable[[Graph, AttentionMatch, "MaskMeaning | None", MaskInputs], onnx.NodeProto]
BUILDERS: dict[str, Builder] = {"ort": ort_node, "onnx": onnx_node, "trt-plugin": plugin_node}


def plugin_problems(model: onnx.ModelProto, spec: dict[str, Any] | None = None) -> list[str]:
    """Structural check of every plugin node against the spec; returns the problems found (empty: all good).

    Checks op type and domain, version and namespace attributes, that each spec field is present with the
    spec's type and no other attribute is, the input count implied by ``mask_type``, and supported head sizes.
    """
    spec = spec or fused_attention_spec()
    kinds = {"int32": onnx.AttributeProto.INT, "float32": onnx.AttributeProto.FLOAT}
    problems = []
    for node in (n for n in model.graph.node if n.op_type == spec["name"]):
        where = f"{spec['name']} node '{node.name}'"
        attrs = {a.name: a for a in node.attribute}
        expected = {f["name"] for f in spec["fields"]} | {"plugin_version", "plugin_namespace"}
        if node.domain != TRT_PLUGIN_DOMAIN:
            problems.append(f"{where}: domain '{node.domain}', expected '{TRT_PLUGIN_DOMAIN}'")
        if extra := sorted(set(attrs) - expected):
            problems.append(f"{where}: attributes {extra} are not fields of the plugin")
        for key in ("version", "namespace"):
            got = helper.get_attribute_value(attrs[f"plugin_{key}"]).decode() if f"plugin_{key}" in attrs else None
            if got != str(spec[key]):
                problems.append(f"{where}: plugin_{key} is {got!r}, the spec says {spec[key]!r}")
        for f in spec["fields"]:
            a = attrs.get(f["name"])
            if a is None or a.type != kinds[f["type"]]:
                problems.append(f"{where}: field '{f['name']}' missing or not {f['type']}")
        values = {k: helper.get_attribute_value(a) for k, a in attrs.items()}
        if len(node.input) != (4 if values.get("mask_type") == 1 else 3):
            problems.append(f"{where}: {len(node.input)} inputs for mask_type {values.get('mask_type')}")
        if values.get("head_size") not in spec.get("supported_head_sizes", [values.get("head_size")]):
            problems.append(f"{where}: head_size {values.get('head_size')} not in {spec['supported_head_sizes']}")
    return problems
