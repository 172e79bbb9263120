"""Which student layer learns from which teacher layer."""

from __future__ import annotations

from edgedistill.errors import ConfigError


def uniform_pairs(student_layers: int, teacher_layers: int) -> list[tuple[int, int]]:
    """TinyBERT's g(m) = k·m with k = teacher/student layers, 0-based: student i ↔ teacher k(i+1) - 1.

    A 4-layer student of a 12-layer teacher learns from teacher layers 2, 5, 8, 11 (1-based 3, 6, 9, 12).
    """
    return [(i, round((i + 1) * teacher_layers / student_layers) - 1) for i in range(student_layers)]


def layer_pairs(mapping: list[tuple[int, int]] | str | None, student_layers: int, teacher_layers: int,
                where: str, default: str = "uniform") -> list[tuple[int, int]]:
    """Resolve a loss's ``layers`` option into (student, teacher) pairs, checking both layers exist.

    Raises:
        ConfigError: a pair names a layer one of the models lacks.
    """
    mapping = default if mapping is None else mapping
    if mapping == "uniform":
        return uniform_pairs(student_layers, teacher_layers)
    if mapping == "last":
        return [(student_layers - 1, teacher_layers - 1)]
    assert not isinstance(mapping, str), f"unknown layer mapping {mapping!r}"
    pairs = [(int(s), int(t)) for s, t in mapping]
    for s, t in pairs:
        for who, index, count in (("student", s, student_layers), ("teacher", t, teacher_layers)):
            if index >= count:
                raise ConfigError(f"{where}.layers: {who} layer {index} does not exist; the {who} has "
                                  f"{count} layers (0-{count - 1})")
    return pairs
