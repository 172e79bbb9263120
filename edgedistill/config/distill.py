"""Distillation: the named losses and the training loop's settings."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from edgedistill.config.base import (
    FULL_LOGIT_LOSSES,
    LM_LOSSES,
    LOSS_NAMES,
    LOSS_OPTIONS,
    WHITE_BOX_LOSSES,
    PositiveInt,
    StrictModel,
    known,
)

LayerPair = tuple[Annotated[int, Field(ge=0)], Annotated[int, Field(ge=0)]]  # (student layer, teacher layer)


class LossSpec(StrictModel):
    """One named loss and its weight; options apply only to the losses named in their descriptions."""

    name: str
    weight: float = Field(1.0, gt=0)
    temperature: float = Field(1.0, gt=0, description="Softmax temperature (logits_kl, forward_kl, gkd).")
    hard_label_weight: float = Field(
        0.0, ge=0, le=1, description="logits_kl: share of hard-label cross-entropy when labels exist."
    )
    layers: list[LayerPair] | Literal["uniform", "last"] | None = Field(
        None, description="Layer mapping as [student, teacher] pairs, `uniform` (TinyBERT g(m)=km) or `last`."
    )
    projection: bool = Field(True, description="hidden_mse: learn a linear projection when widths differ.")
    relations: list[Literal["qq", "kk", "vv"]] = Field(
        ["qq", "kk", "vv"], min_length=1, description="minilm_relation: self-attention relations to transfer."
    )
    relation_heads: PositiveInt | None = Field(
        None, description="minilm_relation: relation heads (default: the teacher's attention heads)."
    )
    beta: float = Field(0.5, ge=0, le=1, description="gkd: generalized JSD interpolation, 0 = forward KL, "
                        "1 = reverse KL (as TRL's GKDTrainer).")
    on_policy: float = Field(0.5, ge=0, le=1, description="gkd: fraction of batches (GKD's lambda) whose responses the "
                             "student generates itself, scored by the teacher.")
    max_new_tokens: PositiveInt = Field(48, description="gkd: longest on-policy response, in tokens.")
    student_module: str | None = Field(None, description="fitnets: student module whose output is regressed.")
    teacher_module: str | None = Field(None, description="fitnets: teacher module giving the target feature map.")

    @field_validator("name")
    @classmethod
    def _known(cls, v: str) -> str:
        return known(v, LOSS_NAMES, "loss")

    @model_validator(mode="after")
    def _options_apply(self) -> LossSpec:
        extra = sorted(self.model_fields_set - {"name", "weight"} - set(LOSS_OPTIONS[self.name]))
        if extra:
            allowed = ", ".join(LOSS_OPTIONS[self.name]) or "none"
            raise ValueError(f"option '{extra[0]}' does not apply to loss '{self.name}' (its options: {allowed})")
        if self.name == "fitnets" and not (self.student_module and self.teacher_module):
            raise ValueError("loss 'fitnets' needs student_module and teacher_module (module paths)")
        return self

    @property
    def white_box(self) -> bool:
        """Whether the loss needs more than final outputs: intermediate tensors, or an LM teacher's full logits."""
        return self.name in WHITE_BOX_LOSSES or self.name in FULL_LOGIT_LOSSES

    @property
    def language_model(self) -> bool:
        """A loss over a causal LM's next-token distributions (text-generation only)."""
        return self.name in LM_LOSSES


class DistillConfig(StrictModel):
    losses: list[LossSpec] = Field(default_factory=lambda: [LossSpec(name="embedding_mse")], min_length=1)
    steps: PositiveInt = Field(1500, description="Optimizer steps.")
    batch_size: PositiveInt = Field(64, description="Texts per step.")
    lr: float = Field(1.0e-4, gt=0, description="Peak AdamW learning rate (warm-up, then `schedule` decay).")
    schedule: Literal["linear", "cosine"] = Field("linear", description="Decay after warm-up.")
    grad_accum: PositiveInt = Field(1, description="Micro-batches per step; `batch_size` stays the per-step total.")
    precision: Literal["fp32", "bf16"] = Field("fp32", description="bf16 autocast where the device supports it.")
    eval_every: PositiveInt | None = Field(None, description="Steps between fidelity evaluations (none: off).")
    keep_best: bool = Field(True, description="With eval_every: end with the best-evaluated weights.")
    weight_decay: float = Field(0.01, ge=0)
    warmup_ratio: float = Field(0.1, ge=0, lt=1, description="Fraction of steps spent warming up the learning rate.")
    max_length: PositiveInt = Field(128, description="Token limit for training texts.")
    grad_clip: float = Field(1.0, gt=0, description="Max global gradient norm (clipped before each step).")
    dropout: float | None = Field(
        None, ge=0, lt=1, description="Dropout probability for every dropout layer of the student while it trains "
        "(none: the model's own, e.g. BERT's 0.1)."
    )
    seed: int = Field(0, description="Seeds the student's batch order and dropout; same seed, same result on CPU.")
    checkpoint_every: PositiveInt = Field(100, description="Steps between resumable checkpoints.")
    fsdp: bool = Field(False, description="text-generation under torchrun: shard the student (and a live "
                       "forward_kl/gkd teacher) over the ranks with FSDP2, per decoder layer, so models too "
                       "big for one device train; checkpoints hold the gathered state. One process: no effect.")
    text_kd: bool = Field(True, description="text-generation with a white-box teacher: also train on `data.train` "
                          "real text, scored once by the teacher (false: `data.train` only measures perplexity).")
    keep_better: bool = Field(
        True, description="Keep the untrained student if distillation did not improve it on the eval data."
    )
