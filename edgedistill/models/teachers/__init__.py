"""Teachers behind one interface (:class:`Teacher`), built from ``teacher:`` in the config."""

from __future__ import annotations

from edgedistill.config import TeacherConfig
from edgedistill.models.teachers.base import Teacher


def load_teacher(cfg: TeacherConfig, max_length: int) -> Teacher:
    """The configured teacher, ready to label."""
    if cfg.source == "huggingface":
        from edgedistill.models.teachers.huggingface import HuggingFaceTeacher

        assert cfg.path is not None
        return HuggingFaceTeacher.load(cfg.path, cfg.task, max_length, cfg.trust_remote_code)
    if cfg.source == "onnx":
        from edgedistill.models.teachers.onnx_teacher import OnnxTeacher

        assert cfg.path is not None
        return OnnxTeacher(cfg.path, cfg.tokenizer, max_length)
    if cfg.source == "recorded":
        from edgedistill.models.teachers.recorded import RecordedTeacher

        assert cfg.path is not None
        return RecordedTeacher(cfg.path, cfg.input_key, cfg.output_key)
    from edgedistill.config import HttpTeacherConfig
    from edgedistill.models.teachers.http_teacher import HttpTeacher

    assert isinstance(cfg.http, HttpTeacherConfig)
    return HttpTeacher(cfg.http)


__all__ = ["Teacher", "load_teacher"]
