"""Attention fusion: every attention block the matchers recognise becomes one fused node of the chosen form.

Two fusions share the rewrite: :class:`DecomposedAttentionFusion` anchors on ``Softmax`` (the SDPA decomposition,
Hugging Face eager attention, DeBERTa-v2's disentangled attention), :class:`AttentionOpFusion` on the opset-23
``Attention`` op. Masks are classified by :mod:`~edgedistill.fuse.mask_probe` for all blocks at once before anything
is rewritten; a block whose mask the fused op cannot express exactly stays as it is, with the reason in the report.
A block with an additive score bias (DeBERTa's relative-position terms, its mask folded in) needs a form with a
bias input; the others leave it unfused and say so.
"""

from __future__ import annotations

import onnx

from edgedistill.fuse.attention_match import AttentionMatch, match_attention_op, match_softmax_attention
from edgedistill.fuse.base import Fusion
from edgedistill.fuse.forms import BUILDERS, FORMS, MaskInputs, bias_screen, plugin_screen
from edgedistill.fuse.graph import Graph
from edgedistill.fuse.mask_probe import MaskMeaning, probe_masks


class DecomposedAttentionFusion(Fusion[AttentionMatch]):
    """Attention written out as MatMul / scale / mask / Softmax / MatMul (see ``match_decomposed_attention``), or
    with heads batched for ``bmm`` and a score bias (``match_disentangled_attention``)."""

    name = "attention"
    anchor_op = "Softmax"

    def __init__(self, graph: Graph, form: str, masks: MaskInputs | None = None):
        super().__init__(graph)
        if form not in FORMS:
            raise ValueError(f"unknown attention form '{form}'; expected one of {FORMS}")
        self.form = form
        self.masks = masks or MaskInputs(graph, {})
        self.meanings: dict[str, MaskMeaning | str] = {}

    def match(self, node: onnx.NodeProto) -> AttentionMatch | None:
        return match_softmax_attention(self.graph, node)

    def pattern_of(self, match: AttentionMatch) -> str:
        return match.pattern

    def prepare(self, matches: list[AttentionMatch]) -> None:
        names = sorted({m.mask for m in matches if m.mask})
        self.meanings = probe_masks(self.graph.model, names)

    def screen(self, match: AttentionMatch) -> str | None:
        meaning = self.meanings.get(match.mask) if match.mask else None
        if isinstance(meaning, str):
            return meaning
        if (reason := bias_screen(match, self.form)) is not None:
            return reason
        return plugin_screen(match) if self.form == "trt-plugin" else None

    def rewrite(self, match: AttentionMatch) -> None:
        meaning = self.meanings.get(match.mask) if match.mask else None
        assert not isinstance(meaning, str)
        fused = BUILDERS[self.form](self.graph, match, meaning, self.masks)
        old = self.graph.producer(match.output)
        assert old is not None
        self.graph.add_node(fused, before=old)
        self.graph.remove_nodes([old])  # the rest of the block is dead now; Fusion.apply prunes it


class AttentionOpFusion(DecomposedAttentionFusion):
    """The opset-23 ``Attention`` op on heads-first tensors (see ``match_attention_op``)."""

    name = "attention_op"
    anchor_op = "Attention"

    def match(self, node: onnx.NodeProto) -> AttentionMatch | None:
        return match_attention_op(self.graph, node)
