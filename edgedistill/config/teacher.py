"""The teacher: a Hugging Face model, an ONNX file, recorded outputs or an HTTP endpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag, ValidationInfo, field_validator, model_validator

from edgedistill.config.base import DEFAULT_TASK, PositiveInt, StrictModel, Task, resolve_path
from edgedistill.config.http_lm import HttpLMConfig
from edgedistill.config.lm import GenerationConfig


class HttpTeacherConfig(StrictModel):
    """A teacher answering over HTTP: an OpenAI-compatible `/v1/embeddings` API or a generic JSON POST."""

    url: str = Field(description="Endpoint URL, e.g. `https://host/v1/embeddings`.")
    api: Literal["openai-embeddings", "json"] = Field("openai-embeddings", description="Request/response format.")
    model: str | None = Field(None, description="`model` field sent to an OpenAI-compatible API.")
    api_key_env: str | None = Field(None, description="Environment variable holding the API key (never logged).")
    input_field: str = Field("inputs", description="`json` api: request field holding the list of texts.")
    response_path: str = Field("outputs", description="`json` api: dotted path to the list of vectors.")
    batch_size: PositiveInt = Field(32, description="Texts per request.")
    timeout_s: float = Field(30.0, gt=0, description="Per-request timeout.")
    retries: int = Field(5, ge=0, description="Retries on timeouts, 429, 5xx and malformed replies.")
    backoff_s: float = Field(0.5, ge=0, description="First retry delay; doubles each retry.")
    max_retry_after_s: float = Field(60.0, ge=0, description="Longest wait a server's `Retry-After` (seconds or "
                                     "HTTP date, on 429/503) is honoured for; longer asks are waited this long.")
    concurrency: PositiveInt = Field(4, description="Requests in flight at once.")
    rps: float | None = Field(None, gt=0, description="Requests per second at most (none: unlimited).")
    dim: PositiveInt | None = Field(None, description="Expected vector size; replies of another size are errors "
                                    "(none: the first reply's size, which every later reply must have).")

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError(f"url must start with http:// or https://, got '{v}'")
        return v


def http_tag(data: Any) -> str:
    """Which endpoint an ``http`` section describes: a generative one (``api: chat`` / ``completions``, or keys only
    the generative config has) or an embedding one."""
    if not isinstance(data, dict):
        return "lm" if isinstance(data, HttpLMConfig) else "embeddings"
    generative = data.get("api") in ("chat", "completions") or bool(set(data) - set(HttpTeacherConfig.model_fields))
    return "lm" if generative else "embeddings"


HttpSection = Annotated[
    Annotated[HttpTeacherConfig, Tag("embeddings")] | Annotated[HttpLMConfig, Tag("lm")], Discriminator(http_tag)]


class TeacherConfig(StrictModel):
    """The model to distil from.

    ``huggingface``: a model folder or ``pkg:package/subdir`` (white-box: hidden states and attention available);
    ``onnx``: an ONNX file run with ONNX Runtime; ``recorded``: a JSONL/NPZ/Parquet log of inputs and outputs;
    ``http``: a remote API. The last three are black-box: final outputs only.

    ``task: text-generation``: a causal LM: a model folder or a ``.gguf`` file (white-box: full logits); an
    OpenAI-compatible ``/v1/chat/completions`` or ``/v1/completions`` endpoint (``http`` with ``api: chat`` or
    ``completions``: text, and top log-probabilities where offered); or ``recorded`` generations (JSONL of prompt or
    ``messages`` and ``response``, optionally per-token ``logprobs``; or OpenAI Batch API output with its input
    file as ``recorded_inputs``).
    """

    source: Literal["huggingface", "onnx", "recorded", "http"] = "huggingface"
    path: Path | None = Field(
        None, description="Model folder, `pkg:<python package>/<subdir>`, ONNX file or recorded-outputs file."
    )
    task: Task = Field(DEFAULT_TASK, description="What the exported model outputs: embeddings or logits.")
    trust_remote_code: bool = Field(False, description="Allow custom model code from the folder (off by default).")
    tokenizer: Path | None = Field(
        None, description="`onnx`: tokenizer folder (default: the ONNX file's folder); `recorded` / `http`: the "
        "tokenizer the student reads with (required in a pipeline).")
    input_key: str = Field("input", description="`recorded`: field/column holding the input text.")
    output_key: str = Field("output", description="`recorded`: field/column holding the teacher's output vector.")
    http: HttpSection | None = Field(None, description="`http`: the endpoint and its limits (embeddings, or "
                                     "`api: chat` / `completions` for text-generation).")
    recorded_inputs: Path | None = Field(None, description="`recorded` text-generation in the OpenAI Batch API output "
                                         "form: the batch input JSONL, matched by `custom_id`.")
    generation: GenerationConfig = Field(default_factory=GenerationConfig,
                                         description="text-generation: how the teacher answers.")

    @field_validator("path", "tokenizer", "recorded_inputs", mode="before")
    @classmethod
    def _path(cls, v: Any, info: ValidationInfo) -> Path | None:
        return resolve_path(v, info)

    @model_validator(mode="after")
    def _source_fields(self) -> TeacherConfig:
        if self.source == "http" and self.http is None:
            raise ValueError("teacher.source 'http' needs an 'http' section with at least 'url'")
        if self.source != "http" and self.path is None:
            raise ValueError(f"teacher.source '{self.source}' needs a 'path'")
        if self.source != "http" and self.http is not None:
            raise ValueError(f"'http' applies only to teacher.source 'http', not '{self.source}'")
        generative = self.task == "text-generation"
        if self.http is not None and generative != isinstance(self.http, HttpLMConfig):
            raise ValueError("teacher.http: a text-generation teacher speaks api 'chat' or 'completions'" if generative
                             else f"teacher.http: api '{self.http.api}' answers text-generation, not {self.task}")
        if self.recorded_inputs is not None and not (generative and self.source == "recorded"):
            raise ValueError("recorded_inputs applies only to a recorded text-generation teacher")
        return self

    @property
    def white_box(self) -> bool:
        """Whether intermediate tensors (hidden states, attention) can be read from this teacher."""
        return self.source == "huggingface"
