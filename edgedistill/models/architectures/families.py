"""The families edgedistill knows, one :class:`Architecture` each (module paths as transformers 5 names them)."""

from __future__ import annotations

from typing import Any

from edgedistill.models.architectures.base import Architecture


def bert_like(name: str, model_types: tuple[str, ...], **fields: Any) -> Architecture:
    """BERT's layer layout (RoBERTa and XLM-R share it)."""
    return Architecture(name, model_types, "encoder", "encoder.layer", query="attention.self.query",
                        key="attention.self.key", value="attention.self.value", output="attention.output.dense",
                        ffn_in=("intermediate.dense",), ffn_out="output.dense", **fields)


def llama_like(name: str, model_types: tuple[str, ...]) -> Architecture:
    """Llama's layer layout: grouped KV heads, a gated MLP (Mistral, Qwen2 and Qwen3 share it)."""
    return Architecture(name, model_types, "decoder", "layers", query="self_attn.q_proj", key="self_attn.k_proj",
                        value="self_attn.v_proj", output="self_attn.o_proj", ffn_in=("mlp.gate_proj", "mlp.up_proj"),
                        ffn_out="mlp.down_proj", kv_heads_key="num_key_value_heads", head_size_key="head_dim")


BERT = bert_like("bert", ("bert", "pruned_bert"), head_size_key="attention_head_size", head_pruning=True,
                 hidden_pruning=True)
ROBERTA = bert_like("roberta", ("roberta", "xlm-roberta", "camembert"))
DISTILBERT = Architecture("distilbert", ("distilbert",), "encoder", "transformer.layer", query="attention.q_lin",
                          key="attention.k_lin", value="attention.v_lin", output="attention.out_lin",
                          ffn_in=("ffn.lin1",), ffn_out="ffn.lin2", layers_key="n_layers", heads_key="n_heads",
                          hidden_key="dim", ffn_key="hidden_dim")
DEBERTA_V2 = Architecture("deberta-v2", ("deberta-v2",), "encoder", "encoder.layer",
                          query="attention.self.query_proj", key="attention.self.key_proj",
                          value="attention.self.value_proj", output="attention.output.dense",
                          ffn_in=("intermediate.dense",), ffn_out="output.dense", head_size_key="attention_head_size")
VIT = Architecture("vit", ("vit",), "vision", "layers", query="attention.q_proj", key="attention.k_proj",
                   value="attention.v_proj", output="attention.o_proj", ffn_in=("mlp.fc1",), ffn_out="mlp.fc2",
                   head_size_key="head_dim", head_pruning=True)
LLAMA = llama_like("llama", ("llama", "mistral"))
QWEN2 = llama_like("qwen2", ("qwen2", "qwen3"))
GPT2 = Architecture("gpt2", ("gpt2",), "decoder", "h", query="attn.c_attn", key="attn.c_attn", value="attn.c_attn",
                    output="attn.c_proj", ffn_in=("mlp.c_fc",), ffn_out="mlp.c_proj", layers_key="n_layer",
                    heads_key="n_head", hidden_key="n_embd", ffn_key="n_inner", conv1d=True)

FAMILIES = (BERT, ROBERTA, DISTILBERT, DEBERTA_V2, VIT, LLAMA, QWEN2, GPT2)
