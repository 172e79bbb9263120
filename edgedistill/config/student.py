"""The student: derived from the teacher (layers, width) or built from a Hugging Face config or a factory."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from edgedistill.config.base import PositiveInt, StrictModel, resolve_path
from edgedistill.config.search import SearchConfig


class FromTeacher(StrictModel):
    """A student made of a subset of the teacher's transformer layers (0-based, in order), optionally narrower.

    ``layers``: an explicit list, ``uniform`` (every k-th layer, ending with the last), or ``search`` (score
    candidate subsets of ``num_layers`` layers by fidelity to the teacher on held-out texts, untrained, and
    keep the best). ``heads`` / ``intermediate_size`` then keep each layer's most important attention heads and
    FFN units, and ``hidden_size`` the most important units of the residual stream (all by ``importance``); a
    sentence-embedding student narrower than its teacher gets a Dense projection back to the teacher's width.
    """

    layers: list[Annotated[int, Field(ge=0)]] | Literal["uniform", "search", "block-influence", "kl"] = Field(
        description="Teacher layers to keep, e.g. [0, 3, 5], or with `num_layers`: `uniform`, `search` (encoders), "
        "`block-influence` (decoders: drop the layers that change the hidden states least, ShortGPT) or `kl` "
        "(decoders: drop, one at a time, the layer whose removal raises the held-out KL to the teacher least)."
    )
    path: Path | None = Field(None, description="The model whose layers are kept (default: the teacher); give one "
                              "for a black-box teacher, e.g. an open model of the family served behind the API.")
    num_layers: PositiveInt | None = Field(None, description="Layers to keep for `uniform` and `search`.")
    search_texts: PositiveInt = Field(256, description="`search`: held-out texts used to score each subset.")
    search_limit: PositiveInt = Field(64, description="`search`: most candidate subsets scored (seeded sample).")
    heads: PositiveInt | None = Field(None, description="Attention heads kept per layer (none: all the teacher's).")
    kv_groups: PositiveInt | None = Field(None, description="Decoders: KV groups kept per layer (a KV head and the "
                                          "query heads sharing it; none: all).")
    intermediate_size: PositiveInt | None = Field(None, description="FFN units kept per layer (none: all).")
    hidden_size: PositiveInt | None = Field(
        None, description="Residual-stream width kept (none: the teacher's); e.g. 256 with `heads: 8`.")
    importance: Literal["weight", "activation"] = Field(
        "weight", description="How heads, FFN units and hidden units are ranked: weight magnitude, or activations on "
        "`importance_texts` held-out texts.")
    importance_texts: PositiveInt = Field(64, description="`importance: activation`: held-out texts measured.")

    @field_validator("path", mode="before")
    @classmethod
    def _model_path(cls, v: Any, info: ValidationInfo) -> Path | None:
        return resolve_path(v, info)

    @field_validator("layers")
    @classmethod
    def _unique(cls, v: list[int] | str) -> list[int] | str:
        if isinstance(v, list) and (not v or len(set(v)) != len(v) or v != sorted(v)):
            raise ValueError("layers must be distinct and increasing, e.g. [0, 3, 5]")
        return v

    @model_validator(mode="after")
    def _count(self) -> FromTeacher:
        if isinstance(self.layers, str) and self.num_layers is None:
            raise ValueError(f"layers '{self.layers}' needs num_layers, e.g. num_layers: 3")
        if isinstance(self.layers, list) and self.num_layers is not None:
            raise ValueError("num_layers applies only to layers 'uniform' or 'search'")
        return self


class StudentConfig(StrictModel):
    """The student: exactly one of ``from_teacher`` (layers of the teacher, optionally narrower), ``hf_config``
    (a Hugging Face ``config.json``, randomly initialised, using the teacher's tokenizer), ``factory``
    (``module.path:function`` returning a TaskModel or a Hugging Face model) or ``search`` (the fastest student of
    the teacher's layers and widths that keeps a quality floor; the run then carries the chosen one on)."""

    from_teacher: FromTeacher | None = None
    search: SearchConfig | None = None
    hf_config: Path | None = Field(None, description="A Hugging Face config.json (or its folder): random init.")
    factory: str | None = Field(
        None, description="`module.path:function` called with no arguments; returns a TaskModel or a HF model.")

    @field_validator("hf_config", mode="before")
    @classmethod
    def _config_path(cls, v: Any, info: ValidationInfo) -> Path | None:
        return resolve_path(v, info)

    @field_validator("factory")
    @classmethod
    def _factory(cls, v: str | None) -> str | None:
        module, _, name = (v or "x:y").partition(":")
        if not (module and name.isidentifier() and all(p.isidentifier() for p in module.split("."))):
            raise ValueError(f"factory must look like 'package.module:function', got '{v}'")
        return v

    @model_validator(mode="after")
    def _one_kind(self) -> StudentConfig:
        given = [k for k in ("from_teacher", "hf_config", "factory", "search") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of from_teacher, hf_config, factory, search; got "
                             + (", ".join(given) or "none"))
        return self
