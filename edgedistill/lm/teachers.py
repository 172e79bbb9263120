"""The generative teacher a config names: a model in this process (folder, ``pkg:`` folder or GGUF file), an
OpenAI-compatible endpoint, or recorded generations; and the tokenizer the student reads with."""

from __future__ import annotations

from typing import Any

from edgedistill.config import PipelineConfig, TeacherConfig
from edgedistill.config.http_lm import HttpLMConfig
from edgedistill.errors import ConfigError
from edgedistill.lm.teacher_base import LMTeacher


def load_lm_teacher(cfg: TeacherConfig) -> LMTeacher:
    """The configured teacher, ready to answer.

    Raises:
        InputError: not a causal LM, an unreadable file, an endpoint that does not answer as configured.
    """
    if cfg.source == "huggingface":
        from edgedistill.lm.whitebox import WhiteBoxLM

        assert cfg.path is not None
        return WhiteBoxLM.load(cfg.path, cfg.trust_remote_code)
    if cfg.source == "http":
        from edgedistill.lm.http_lm import HttpLM

        assert isinstance(cfg.http, HttpLMConfig)
        return HttpLM(cfg.http)
    if cfg.source == "recorded":
        from edgedistill.lm.recorded_lm import RecordedLM

        assert cfg.path is not None
        return RecordedLM(cfg.path, cfg.recorded_inputs)
    raise ConfigError(f"teacher.source '{cfg.source}' cannot be a text-generation teacher; use huggingface (a model "
                      "folder or .gguf file), http (an OpenAI-compatible endpoint) or recorded (generations JSONL)")


def student_tokenizer(config: PipelineConfig, teacher: LMTeacher) -> Any:
    """The white-box teacher's tokenizer, else that of the model the student's layers come from, else
    ``teacher.tokenizer``.

    Raises:
        ConfigError, InputError: none of them, or one that does not load.
    """
    if teacher.tokenizer is not None:
        return teacher.tokenizer
    from transformers import AutoTokenizer

    base = config.student.from_teacher.path if config.student.from_teacher else None
    folder = config.teacher.tokenizer or base
    if folder is None:
        raise ConfigError("teacher.tokenizer: a black-box teacher has no tokenizer to share; give the folder of the "
                          "tokenizer the student reads with")
    if folder.suffix == ".gguf":
        from edgedistill.lm.load import load_causal_lm

        return load_causal_lm(folder, "student.from_teacher.path")[1]
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder)
    except (OSError, ValueError, KeyError) as err:
        raise ConfigError(f"teacher.tokenizer: cannot load a tokenizer from {folder}: {str(err).splitlines()[0]}") \
            from None
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer
