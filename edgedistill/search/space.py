"""The candidates of a student search: architectures cut from the teacher (depth × width) × precisions.

An :class:`Architecture` is what training sees (one distillation serves every precision of it); a
:class:`Candidate` is what ships: an architecture in one precision, with its own latency and quality.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

from edgedistill.config import FromTeacher
from edgedistill.config.search import SearchSpace
from edgedistill.errors import ConfigError


@dataclass(frozen=True)
class TeacherShape:
    """The teacher's dimensions the space is measured against. ``kv_heads``: a decoder's key/value heads (its
    query heads come in groups of ``heads / kv_heads``); none for an encoder."""

    layers: int
    hidden_size: int
    heads: int
    head_size: int
    intermediate_size: int
    kv_heads: int | None = None

    @property
    def decoder(self) -> bool:
        return self.kv_heads is not None

    @property
    def group_size(self) -> int:
        """Query heads per KV head (1 for an encoder)."""
        return self.heads // self.kv_heads if self.kv_heads else 1

    @classmethod
    def of(cls, model: Any) -> TeacherShape:
        """Read from a TaskModel's architecture adapter."""
        arch, config = model.architecture, model.backbone.config
        return cls(len(model.layers), arch.hidden_size(config), arch.num_heads(config), arch.head_size(config),
                   arch.ffn_size(config))

    @classmethod
    def of_decoder(cls, model: Any) -> TeacherShape:
        """Read from a causal LM of the Llama/Qwen2 families (the ones decoder narrowing serves)."""
        from edgedistill.lm.width_scores import decoder_architecture, gqa_shape

        arch = decoder_architecture(model)
        config = model.config
        kv_heads, per_group, head_size = gqa_shape(arch, config)
        return cls(len(arch.layer_list(model)), arch.hidden_size(config), kv_heads * per_group, head_size,
                   arch.ffn_size(config), kv_heads)


@dataclass(frozen=True)
class Architecture:
    """A student shape: a layer count (layers chosen by untrained fidelity) or explicit teacher layers, and widths."""

    layers: int | tuple[int, ...]
    hidden_size: int
    heads: int
    intermediate_size: int

    @property
    def depth(self) -> int:
        return self.layers if isinstance(self.layers, int) else len(self.layers)

    @property
    def name(self) -> str:
        """``L2-H384`` (a count), ``L0+5-H384`` (explicit layers), ``-A8-F1024`` when heads/FFN were chosen."""
        depth = str(self.layers) if isinstance(self.layers, int) else "+".join(map(str, self.layers))
        return f"L{depth}-H{self.hidden_size}-A{self.heads}-F{self.intermediate_size}"

    def from_teacher(self, teacher: TeacherShape, layers: list[int] | None = None) -> FromTeacher:
        """The student spec that makes this architecture (``layers``: the ones chosen for a count)."""
        chosen: dict[str, Any] = ({"layers": list(self.layers)} if isinstance(self.layers, tuple) else
                                  {"layers": layers} if layers is not None else
                                  {"layers": "search", "num_layers": self.layers})
        if self.heads != teacher.heads and teacher.decoder:  # a decoder keeps heads in whole KV groups
            chosen["kv_groups"] = self.heads // teacher.group_size
        elif self.heads != teacher.heads:
            chosen["heads"] = self.heads
        if self.intermediate_size != teacher.intermediate_size:
            chosen["intermediate_size"] = self.intermediate_size
        if self.hidden_size != teacher.hidden_size:
            chosen["hidden_size"] = self.hidden_size
        return FromTeacher.model_validate(chosen)


@dataclass(frozen=True)
class Candidate:
    architecture: Architecture
    precision: str

    @property
    def name(self) -> str:
        return f"{self.architecture.name}-{self.precision}"


def check_space(space: SearchSpace, teacher: TeacherShape) -> None:
    """Raises ConfigError when the space names more layers, a layer index, or a width the teacher does not have."""
    where = "student.search.space"
    for item in space.layers:
        if isinstance(item, int) and item > teacher.layers:
            raise ConfigError(f"{where}.layers: {item} layers asked for, but the teacher has {teacher.layers}")
        if isinstance(item, list) and max(item) >= teacher.layers:
            raise ConfigError(f"{where}.layers: layer {max(item)} does not exist; the teacher's layers are "
                              f"0-{teacher.layers - 1}")
    for key, limit in (("hidden_size", teacher.hidden_size), ("heads", teacher.heads),
                       ("intermediate_size", teacher.intermediate_size)):
        wider = [v for v in getattr(space, key) or [] if v > limit]
        if wider:
            raise ConfigError(f"{where}.{key}: {wider[0]} is wider than the teacher's {limit}; a student keeps a "
                              "subset of the teacher's units")
    split = [h for h in space.heads or [] if h % teacher.group_size]
    if split:
        raise ConfigError(f"{where}.heads: {split[0]} heads would split a KV group; the teacher's query heads come "
                          f"{teacher.group_size} per KV head, so give a multiple of {teacher.group_size}")
    if teacher.decoder:
        check_decoder_widths(space, teacher)


def decoder_heads(hidden: int, teacher: TeacherShape) -> int | None:
    """A decoder's query heads at ``hidden`` when the space gives none: the most, in whole KV groups and at most
    the teacher's, that divide ``hidden`` (transformers' Llama / Qwen2 configs require ``hidden % heads == 0``
    even with an explicit ``head_dim``); none when no count does."""
    counts = range(teacher.heads, 0, -teacher.group_size)
    return next((h for h in counts if hidden % h == 0), None)


def check_decoder_widths(space: SearchSpace, teacher: TeacherShape) -> None:
    """Raises ConfigError for a decoder hidden size that no head count of the space (or in whole KV groups)
    divides, naming the nearest sizes that work."""
    g = teacher.group_size
    for hidden in space.hidden_size or []:
        heads: list[int | None] = [*space.heads] if space.heads else [decoder_heads(hidden, teacher)]
        bad = next((h for h in heads if h is None or hidden % h), 0)
        if bad == 0:
            continue
        step = math.lcm(*(h for h in heads if h)) if bad else g  # a size every listed count divides
        what = (f"is not a multiple of {bad} heads" if bad else
                f"is divided by no count of query heads in whole KV groups ({g} per KV head, at most {teacher.heads})")
        near = (max(step, hidden - hidden % step), hidden + step - hidden % step)
        raise ConfigError(f"student.search.space.hidden_size: {hidden} {what}, and transformers' decoder configs "
                          f"require hidden_size % num_attention_heads == 0; try {near[0]} or {near[1]}")


def architectures(space: SearchSpace, teacher: TeacherShape) -> list[Architecture]:
    """Every architecture of the space (checked against the teacher first), in the order the space lists them.

    Unset ``heads`` keep the teacher's head size at each hidden size (an encoder) or the most of its heads, in
    whole KV groups, that divide the hidden size (a decoder, whose ``head_dim`` is explicit: see
    :func:`decoder_heads`); unset ``intermediate_size`` its FFN ratio.
    """
    check_space(space, teacher)
    found: list[Architecture] = []
    for depth, hidden in itertools.product(space.layers, space.hidden_size or [teacher.hidden_size]):
        heads = space.heads or [decoder_heads(hidden, teacher) or teacher.heads if teacher.decoder
                                else max(1, hidden // teacher.head_size)]
        ffns = space.intermediate_size or [teacher.intermediate_size * hidden // teacher.hidden_size]
        layers = depth if isinstance(depth, int) else tuple(depth)
        found += [Architecture(layers, hidden, h, f) for h, f in itertools.product(heads, ffns)]
    return list(dict.fromkeys(found))


def candidates(space: SearchSpace, teacher: TeacherShape) -> list[Candidate]:
    """Every architecture in every precision of the space."""
    return [Candidate(a, p) for a in architectures(space, teacher) for p in space.precision]
