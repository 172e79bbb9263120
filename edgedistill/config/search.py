"""The student search: a quality floor, a device, a space of students, a time budget."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator

from edgedistill.config.base import PositiveInt, StrictModel
from edgedistill.config.bench import Shape

Precision = Literal["fp32", "int8", "fp16", "int4"]
LOCAL = "local"  # latency measured on this machine; any other target is estimated (roofline)
ENCODER_PRECISIONS = ("fp32", "int8", "fp16")  # dynamic INT8 / FP16 of the graph
DECODER_PRECISIONS = ("fp32", "int8", "int4")  # weight-only (MatMulNBits) for text-generation
DECODER_SEARCH_METRICS = ("top1_agreement", "exact_match", "rouge_l")  # agreement with the teacher, 1 for itself


class SearchSpace(StrictModel):
    """The students tried: every combination of depth, width and precision (narrower than the teacher only).

    ``layers``: layer counts (the layers themselves are chosen by untrained fidelity) or explicit lists of teacher
    layers. ``heads`` / ``intermediate_size``: none keeps the teacher's head size (an encoder) or its heads (a
    decoder, whose narrowing keeps ``head_dim``) and its FFN ratio at each ``hidden_size``. A decoder's heads go in
    whole KV groups, so each must be a multiple of the teacher's query heads per KV head.
    """

    layers: list[PositiveInt | list[Annotated[int, Field(ge=0)]]] = Field(
        min_length=1, description="Depths to try: layer counts (e.g. [1, 2, 3]) or explicit lists ([[0, 5]]).")
    hidden_size: list[PositiveInt] | None = Field(
        None, description="Residual widths to try (none: the teacher's only).")
    heads: list[PositiveInt] | None = Field(
        None, description="Attention heads per layer to try (none: hidden_size / the teacher's head size).")
    intermediate_size: list[PositiveInt] | None = Field(
        None, description="FFN units per layer to try (none: the teacher's FFN ratio times hidden_size).")
    precision: list[Precision] = Field(
        ["fp32", "int8"], min_length=1, description="Precisions to ship in: fp32, int8 (the config's INT8 "
        "quantize step, or dynamic INT8; for text-generation weight-only INT8), fp16 (encoders), int4 "
        "(text-generation: the config's 4-bit weight-only step, or RTN with blocks of 32).")

    @field_validator("layers")
    @classmethod
    def _lists(cls, v: list[int | list[int]]) -> list[int | list[int]]:
        for item in v:
            if isinstance(item, list) and (not item or item != sorted(set(item))):
                raise ValueError(f"layers {item}: an explicit list must be distinct and increasing, e.g. [0, 5]")
        return v


class SearchConfig(StrictModel):
    """Find the fastest student that keeps ``min_quality`` of the teacher on ``target``: every candidate scored
    untrained (fidelity, latency), the promising ones distilled briefly, successive halving giving survivors
    ``eta`` times more steps, the finalists distilled fully, exported, fused and quantized, and measured. A
    proxy rung is the first steps of the candidate's own distillation (``distill``'s schedule, paused there);
    a survivor's next rung and a finalist's distillation continue from it."""

    min_quality: float = Field(gt=0, le=1.5, description="Floor: the candidate's metric over the teacher's, "
                               "e.g. 0.97.")
    metric: str | None = Field(None, description="The Task's metric the floor applies to (default: its "
                               "selection metric, e.g. sts_eval_spearman on the eval set; for text-generation "
                               "top1_agreement with the teacher, or exact_match / rouge_l of greedy answers).")
    target: str = Field(LOCAL, description="`local` (latency measured here) or a targets/*.yaml name (latency "
                        "from the roofline estimate, labelled as an estimate).")
    shapes: list[Shape] | None = Field(None, description="Shapes latency is taken at (default: bench.shapes); "
                                       "candidates are ranked by the geometric mean of their p50s. Encoders only: "
                                       "a decoder is timed generating `decode_tokens`.")
    decode_tokens: PositiveInt = Field(128, description="text-generation: tokens one timed repetition generates "
                                       "from an empty cache (tg128 in llama-bench's terms); ranked by ms per token.")
    space: SearchSpace
    budget_minutes: float = Field(gt=0, description="Wall-clock budget of the whole search, in minutes.")
    proxy_steps: PositiveInt | None = Field(None, description="Step of the schedule the first proxy rung "
                                            "pauses at (default: distill.steps / 10).")
    eta: int = Field(3, ge=2, description="Successive halving: each rung keeps 1/eta of the candidates and gives "
                     "them eta times the steps.")
    promising: PositiveInt = Field(8, description="Most candidates distilled in the first proxy rung (the "
                                   "untrained Pareto front first).")
    finalists: PositiveInt = Field(1, description="Candidates fully distilled, exported and quantized at the end.")
    heldout: PositiveInt = Field(256, description="Held-out texts for the untrained fidelity scores.")
    untrained_atol: float = Field(
        1e-3, gt=0, description="Export and fusion tolerance for the untrained candidates (scored and timed, never "
        "shipped), relative to the outputs' magnitude as export.atol is: a cut that keeps a layer's massive "
        "activations without the layers that cancel them is ill-conditioned (SmolLM2's 12-layer cut: residual "
        "stream near 1.3e4, torch's own fp32 logits 2.7e-5 of their scale off fp64). The finalists are verified "
        "at export.atol / fuse.atol; greedy answers must be identical either way.")
    latency_iterations: PositiveInt | None = Field(
        None, description="Timed runs per candidate and shape, interleaved (default 20 for an encoder, in "
        "bench.rounds rounds of at most 5; 5 tgN repetitions for a decoder): enough to rank candidates; the chosen "
        "one is timed again by the bench stage with bench.iterations.")

    @field_validator("target")
    @classmethod
    def _target(cls, v: str) -> str:
        if v != LOCAL:
            from edgedistill.errors import ConfigError
            from edgedistill.targets.loader import load_target

            try:
                load_target(v)
            except ConfigError as err:
                raise ValueError(str(err)) from None
        return v
