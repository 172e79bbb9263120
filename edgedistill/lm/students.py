"""The untrained causal-LM student: layers of the teacher (or of another model of its family, for a black-box
teacher) kept by list, ``uniform``, ``block-influence`` or ``kl``, then narrowed (KV groups, FFN units, hidden size,
Minitron-style); or a Hugging Face config (random init) or a factory. Tied embeddings stay tied."""

from __future__ import annotations

from typing import Any

from edgedistill.config import PipelineConfig
from edgedistill.config.student import FromTeacher
from edgedistill.errors import ConfigError, InputError
from edgedistill.lm.layer_drop import choose_decoder_layers, keep_layers
from edgedistill.lm.load import load_causal_lm
from edgedistill.models.architectures import architecture_of


def uniform_layers(count: int, keep: int) -> list[int]:
    """Every k-th layer, ending with the last (TinyBERT's uniform map, as for encoders)."""
    if not 0 < keep <= count:
        raise ConfigError(f"student.from_teacher.num_layers: {keep} of a {count}-layer model")
    return sorted({round((i + 1) * count / keep) - 1 for i in range(keep)})


def pick_layers(spec: FromTeacher, model: Any, tokenizer: Any, texts: list[str],
                max_length: int) -> tuple[list[int], dict[str, Any]]:
    count = len(architecture_of(model, "student.from_teacher").layer_list(model))
    if isinstance(spec.layers, list):
        return spec.layers, {}
    assert spec.num_layers is not None
    if spec.layers == "uniform":
        return uniform_layers(count, spec.num_layers), {}
    if spec.layers == "search":
        raise ConfigError("student.from_teacher.layers 'search' ranks encoder layers by embedding fidelity; for a "
                          "decoder use 'block-influence' or 'kl'")
    return choose_decoder_layers(model, tokenizer, spec.layers, spec.num_layers, texts, max_length)


def narrowed(spec: FromTeacher, student: Any, tokenizer: Any, texts: list[str], max_length: int) -> Any:
    """``student`` with fewer KV groups / FFN units / hidden channels where the config asks (ranked by weights, or
    by activations on ``texts``)."""
    if spec.heads is not None:
        raise ConfigError("student.from_teacher.heads: a decoder keeps attention heads in whole KV groups; give "
                          "kv_groups instead")
    if spec.kv_groups is None and spec.intermediate_size is None and spec.hidden_size is None:
        return student
    from edgedistill.lm.width import prune_decoder_width
    from edgedistill.lm.width_scores import decoder_scores

    measured = spec.importance == "activation"
    scores = decoder_scores(student, tokenizer, texts[: spec.importance_texts] if measured else None, max_length)
    return prune_decoder_width(student, spec.kv_groups, spec.intermediate_size, spec.hidden_size, scores)


def from_model(config: PipelineConfig, teacher_model: Any, tokenizer: Any,
               texts: list[str]) -> tuple[Any, dict[str, Any]]:
    spec = config.student.from_teacher
    assert spec is not None
    source = teacher_model
    if spec.path is not None:
        source, _ = load_causal_lm(spec.path, "student.from_teacher.path")
    if source is None:
        raise ConfigError("student.from_teacher: a black-box teacher has no layers to copy; give "
                          "student.from_teacher.path (a model of the family to take them from)")
    max_length = config.distill.max_length
    layers, scores = pick_layers(spec, source, tokenizer, texts, max_length)
    student = narrowed(spec, keep_layers(source, layers), tokenizer, texts, max_length)
    info: dict[str, Any] = {"student_layers": layers, **({"layer_scores": scores} if scores else {})}
    return student, info


def from_config_or_factory(config: PipelineConfig) -> tuple[Any, dict[str, Any]]:
    import importlib

    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    spec = config.student
    if spec.hf_config is not None:
        torch.manual_seed(config.distill.seed)
        folder = spec.hf_config.parent if spec.hf_config.is_file() else spec.hf_config
        model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(folder))
        return model, {"student_source": "hf_config"}
    assert spec.factory is not None
    module, _, name = spec.factory.partition(":")
    try:
        model = getattr(importlib.import_module(module), name)()
    except (ImportError, AttributeError) as err:
        raise ConfigError(f"student.factory '{spec.factory}': {err}") from None
    return model, {"student_source": "factory"}


def derive_lm_student(config: PipelineConfig, teacher_model: Any, tokenizer: Any,
                      texts: list[str]) -> tuple[Any, dict[str, Any]]:
    """The untrained student and what was chosen for it.

    Raises:
        ConfigError: impossible layers or widths; InputError: a student that cannot read the tokenizer's ids.
    """
    if config.student.from_teacher is not None:
        student, info = from_model(config, teacher_model, tokenizer, texts)
    else:
        student, info = from_config_or_factory(config)
    rows = student.get_input_embeddings().weight.shape[0]
    if rows < len(tokenizer):
        raise InputError(f"the student's vocabulary has {rows} rows, but the tokenizer has {len(tokenizer)} tokens; "
                         "give the student at least as many (vocab_size in its config)")
    info.update(student_params=sum(p.numel() for p in student.parameters()),
                student_non_embedding_params=non_embedding_params(student))
    return student.eval(), info


def non_embedding_params(model: Any) -> int:
    """Parameters outside the token embeddings and the LM head (the compute per token, as scaling laws count)."""
    skip = {id(model.get_input_embeddings().weight)}
    head = model.get_output_embeddings()
    if head is not None:
        skip.add(id(head.weight))
    seen: set[int] = set()
    total = 0
    for p in model.parameters():
        if id(p) not in skip and id(p) not in seen:
            seen.add(id(p))
            total += p.numel()
    return total
