"""Typed pipeline configuration.

A YAML file is read with a safe loader and validated into frozen pydantic models. Unknown keys,
wrong types and missing files are rejected before any work starts; the error names the file, the
key path and what was expected. Relative paths are resolved against the config file's folder.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from edgedistill.errors import ConfigError

TASKS = ("sentence-embedding", "sequence-classification")
LOSS_NAMES = (
    "embedding_mse", "embedding_cosine", "logits_kl",
    "hidden_mse", "attention_mse", "attention_kl", "minilm_relation", "fitnets",
)
# Losses that read intermediate tensors (hooks), so they need a white-box teacher.
WHITE_BOX_LOSSES = ("hidden_mse", "attention_mse", "attention_kl", "minilm_relation", "fitnets")
# Options each loss accepts beyond `name` and `weight`; any other option set is a mistake worth saying.
LOSS_OPTIONS: dict[str, tuple[str, ...]] = {
    "embedding_mse": (), "embedding_cosine": (),
    "logits_kl": ("temperature", "hard_label_weight"),
    "hidden_mse": ("layers", "projection"),
    "attention_mse": ("layers",), "attention_kl": ("layers",),
    "minilm_relation": ("layers", "relations", "relation_heads"),
    "fitnets": ("student_module", "teacher_module"),
}
TABLE_SOURCES = ("jsonl", "csv", "tsv", "hf-dataset")
TEACHER_SOURCES = ("huggingface", "onnx", "recorded", "http")
QUANTIZE_MODES = ("dynamic-int8", "static-int8", "trt-int8", "fp16", "qad-int8")
QUANTIZE_PRESETS = ("avx2", "avx512", "avx512-vnni", "arm64", "tensorrt")
BACKENDS = ("torch", "onnxruntime", "tensorrt")

Task = Literal["sentence-embedding", "sequence-classification"]
PositiveInt = Annotated[int, Field(gt=0)]


def known(name: str, choices: tuple[str, ...], what: str) -> str:
    """``name`` if it is one of ``choices``, else ValueError with a did-you-mean hint."""
    if name not in choices:
        raise ValueError(f"unknown {what} '{name}'; {suggest(name, choices)}")
    return name


class StrictModel(BaseModel):
    """Base: frozen, and unknown keys are errors (a typo never passes silently)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def resolve_path(value: str | Path | None, info: ValidationInfo, must_exist: bool = True) -> Path | None:
    """Resolve ``value`` against the config's folder (from the validation context) and check it exists."""
    if value is None:
        return None
    text = str(value)
    if text.startswith("pkg:"):
        from edgedistill.models.locate import resolve_pkg_path

        return resolve_pkg_path(text)
    path = Path(text).expanduser()
    base = (info.context or {}).get("base_dir")
    if not path.is_absolute() and base is not None:
        path = Path(base) / path
    if must_exist and not path.exists():
        raise ValueError(f"file not found: {path}")
    return path


def suggest(name: str, choices: tuple[str, ...] | list[str]) -> str:
    """`unknown 'x'; did you mean 'y'?` — the hint part, or a list of the valid names."""
    close = difflib.get_close_matches(name, choices, n=1)
    if close:
        return f"did you mean '{close[0]}'?"
    return "expected one of: " + ", ".join(choices)


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
    concurrency: PositiveInt = Field(4, description="Requests in flight at once.")
    rps: float | None = Field(None, gt=0, description="Requests per second at most (none: unlimited).")
    dim: PositiveInt | None = Field(None, description="Expected vector size; replies of another size are errors.")

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError(f"url must start with http:// or https://, got '{v}'")
        return v


class TeacherConfig(StrictModel):
    """The model to distil from.

    ``huggingface``: a model folder or ``pkg:package/subdir`` (white-box: hidden states and attention available);
    ``onnx``: an ONNX file run with ONNX Runtime; ``recorded``: a JSONL/NPZ/Parquet log of inputs and outputs;
    ``http``: a remote API. The last three are black-box: final outputs only.
    """

    source: Literal["huggingface", "onnx", "recorded", "http"] = "huggingface"
    path: Path | None = Field(
        None, description="Model folder, `pkg:<python package>/<subdir>`, ONNX file or recorded-outputs file."
    )
    task: Task = Field("sentence-embedding", description="What the exported model outputs: embeddings or logits.")
    trust_remote_code: bool = Field(False, description="Allow custom model code from the folder (off by default).")
    tokenizer: Path | None = Field(
        None, description="`onnx`: tokenizer folder (default: the ONNX file's folder); `recorded` / `http`: the "
        "tokenizer the student reads with (required in a pipeline).")
    input_key: str = Field("input", description="`recorded`: field/column holding the input text.")
    output_key: str = Field("output", description="`recorded`: field/column holding the teacher's output vector.")
    http: HttpTeacherConfig | None = Field(None, description="`http`: the endpoint and its limits.")

    @field_validator("path", "tokenizer", mode="before")
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
        return self

    @property
    def white_box(self) -> bool:
        """Whether intermediate tensors (hidden states, attention) can be read from this teacher."""
        return self.source == "huggingface"


class FromTeacher(StrictModel):
    """A student made of a subset of the teacher's transformer layers (0-based, in order), optionally narrower.

    ``layers``: an explicit list, ``uniform`` (every k-th layer, ending with the last), or ``search`` (score
    candidate subsets of ``num_layers`` layers by fidelity to the teacher on held-out texts, untrained, and
    keep the best). ``heads`` / ``intermediate_size`` then keep each layer's most important attention heads and
    FFN units, and ``hidden_size`` the most important units of the residual stream (all by ``importance``); a
    sentence-embedding student narrower than its teacher gets a Dense projection back to the teacher's width.
    """

    layers: list[Annotated[int, Field(ge=0)]] | Literal["uniform", "search"] = Field(
        description="Teacher layers to keep, e.g. [0, 3, 5], or `uniform` / `search` with `num_layers`."
    )
    num_layers: PositiveInt | None = Field(None, description="Layers to keep for `uniform` and `search`.")
    search_texts: PositiveInt = Field(256, description="`search`: held-out texts used to score each subset.")
    search_limit: PositiveInt = Field(64, description="`search`: most candidate subsets scored (seeded sample).")
    heads: PositiveInt | None = Field(None, description="Attention heads kept per layer (none: all the teacher's).")
    intermediate_size: PositiveInt | None = Field(None, description="FFN units kept per layer (none: all).")
    hidden_size: PositiveInt | None = Field(
        None, description="Residual-stream width kept (none: the teacher's); e.g. 256 with `heads: 8`.")
    importance: Literal["weight", "activation"] = Field(
        "weight", description="How heads, FFN units and hidden units are ranked: weight magnitude, or activations on "
        "`importance_texts` held-out texts.")
    importance_texts: PositiveInt = Field(64, description="`importance: activation`: held-out texts measured.")

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
    (a Hugging Face ``config.json``, randomly initialised, using the teacher's tokenizer) or ``factory``
    (``module.path:function`` returning a TaskModel or a Hugging Face model)."""

    from_teacher: FromTeacher | None = None
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
        given = [k for k in ("from_teacher", "hf_config", "factory") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of from_teacher, hf_config, factory; got "
                             + (", ".join(given) or "none"))
        return self


class TextSource(StrictModel):
    """Unlabelled text for distillation.

    ``text-lines``: one text per line; ``python-docs``: the built-in corpus made from the Python
    documentation and standard-library docstrings on this machine; ``stsb``: the sentences of an
    STS Benchmark file, scores ignored; ``jsonl`` / ``csv`` / ``tsv``: the texts of ``column`` (and of
    ``text_pair`` for sentence pairs); ``hf-dataset``: the same from a Hugging Face ``datasets`` folder written
    by ``save_to_disk`` or a JSON/CSV/Parquet/text data file (needs ``pip install datasets``).
    """

    source: Literal["text-lines", "python-docs", "stsb", "jsonl", "csv", "tsv", "hf-dataset"] = Field(
        description="Kind of text source (see above).")
    path: Path | None = None
    column: str | None = Field(None, description="jsonl/csv/tsv/hf-dataset: column holding the text (default text).")
    text_pair: str | None = Field(None, description="Second sentence's column of a pair; both become texts.")
    split: str | None = Field(None, description="hf-dataset: split of a DatasetDict (default: train).")
    required: bool = Field(True, description="If false, a missing file is skipped with a warning instead of an error.")
    limit: PositiveInt | None = Field(None, description="Use at most this many texts from this source.")

    @model_validator(mode="before")
    @classmethod
    def _path(cls, data: Any, info: ValidationInfo) -> Any:
        if not isinstance(data, dict):
            return data
        needs_path = data.get("source") != "python-docs"
        if needs_path and data.get("path") is None:
            raise ValueError(f"source '{data['source']}' needs a 'path'")
        if data.get("source") == "python-docs" and data.get("path") is not None:
            raise ValueError("source 'python-docs' takes no 'path'")
        if data.get("path") is not None:
            data = dict(data, path=resolve_path(data["path"], info, must_exist=data.get("required", True)))
        return data

    @model_validator(mode="after")
    def _columns(self) -> TextSource:
        tabular = self.source in TABLE_SOURCES
        for key in ("column", "text_pair", "split"):
            if getattr(self, key) is not None and not (tabular and (key != "split" or self.source == "hf-dataset")):
                raise ValueError(f"'{key}' does not apply to source '{self.source}'")
        if self.source in ("jsonl", "csv", "tsv") and self.path is not None and self.path.is_file():
            from edgedistill.data.tables import check_columns, table_columns
            from edgedistill.errors import InputError

            wanted = [self.column or "text"] + ([self.text_pair] if self.text_pair else [])
            try:
                check_columns(table_columns(self.path, self.source), wanted, str(self.path))
            except InputError as err:  # becomes a validation error, so the message carries the key path
                raise ValueError(str(err)) from None
        return self


class StsSource(StrictModel):
    """An STS Benchmark file (tab-separated: genre, file, year, id, score, sentence1, sentence2)."""

    source: Literal["stsb"] = "stsb"
    path: Path

    @field_validator("path", mode="before")
    @classmethod
    def _path(cls, v: Any, info: ValidationInfo) -> Path | None:
        return resolve_path(v, info)


class DataConfig(StrictModel):
    train: list[TextSource] = Field(min_length=1)
    holdout: PositiveInt = Field(500, description="Texts held out of `train` to measure fidelity to the teacher.")
    eval: StsSource | None = Field(None, description="Scored pairs used to choose between students (dev split).")
    test: StsSource | None = Field(None, description="Scored pairs reported only, never used for choices (test split).")

    @field_validator("train", mode="before")
    @classmethod
    def _listify(cls, v: Any) -> Any:
        return [v] if isinstance(v, dict) else v


LayerPair = tuple[Annotated[int, Field(ge=0)], Annotated[int, Field(ge=0)]]


class LossSpec(StrictModel):
    """One named loss and its weight; options apply only to the losses named in their descriptions."""

    name: str
    weight: float = Field(1.0, gt=0)
    temperature: float = Field(1.0, gt=0, description="Softmax temperature (logits_kl only).")
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
        return self.name in WHITE_BOX_LOSSES


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
    keep_better: bool = Field(
        True, description="Keep the untrained student if distillation did not improve it on the eval data."
    )


class Range(StrictModel):
    min: PositiveInt
    max: PositiveInt

    @model_validator(mode="before")
    @classmethod
    def _pair(cls, data: Any) -> Any:
        if isinstance(data, (list, tuple)):
            if len(data) != 2:
                raise ValueError("expected [min, max]")
            return {"min": data[0], "max": data[1]}
        return data

    @model_validator(mode="after")
    def _order(self) -> Range:
        if self.min > self.max:
            raise ValueError(f"min {self.min} > max {self.max}")
        return self


class DynamicAxes(StrictModel):
    batch: Range = Range(min=1, max=64)
    sequence: Range = Range(min=1, max=256)


class ExportConfig(StrictModel):
    opset: Annotated[int, Field(ge=17, le=23)] | Literal["auto"] = Field(
        20, description="ONNX opset (17-23), or auto: by the deployment (ONNX Runtime CPU: 20; fuse form onnx: 23; "
        "fuse form trt-plugin: 17, what TensorRT 8.5-10.13 parse)."
    )
    exporter: Literal["dynamo", "torchscript"] = Field("dynamo", description="torch.onnx exporter to use.")
    dynamic: DynamicAxes = DynamicAxes()
    atol: float = Field(1e-4, gt=0, description="Max absolute difference allowed between ONNX Runtime and torch.")
    min_cosine: float = Field(0.9999, gt=0, le=1, description="Min cosine per row between ONNX Runtime and torch.")


class QuantizeBudget(StrictModel):
    """The quality a quantized model may lose, measured against the float model on the evaluation texts."""

    metric: Literal["fidelity_cosine", "sts_drop"] = Field(
        description="fidelity_cosine: mean cosine to the float model's embeddings; "
        "sts_drop: STS Spearman points lost against the float model.")
    min: float | None = Field(None, description="Lowest fidelity_cosine allowed (e.g. 0.995).")
    max: float | None = Field(None, ge=0, description="Most STS points that may be lost (e.g. 0.3).")

    @model_validator(mode="after")
    def _bound(self) -> QuantizeBudget:
        need = "min" if self.metric == "fidelity_cosine" else "max"
        if getattr(self, need) is None:
            raise ValueError(f"budget metric {self.metric} needs '{need}'")
        return self


class FuseConfig(StrictModel):
    """Attention fusion after export: which fused op to write, and how closely it must match the unfused graph."""

    form: Literal["ort", "onnx", "trt-plugin"] = Field(
        "ort", description="Fused attention op: ort (com.microsoft.MultiHeadAttention; with pack_qkv, self-attention "
        "becomes com.microsoft.Attention), onnx (opset-23 Attention), "
        "trt-plugin (the FusedMultiHeadAttention TensorRT plugin node)."
    )
    pack_qkv: bool = Field(
        True, description="ort form: self-attention whose Q/K/V projections read one tensor becomes "
        "com.microsoft.Attention with one packed QKV weight (one GEMM instead of three; 4-6% faster on CPU)."
    )
    ort_fusions: bool = Field(
        False, description="Also save ONNX Runtime's own fusions (SkipLayerNormalization, BiasGelu) into the file "
        "(ort form only; ONNX Runtime applies them at load anyway; measured gain 0-15%, within noise on 2 cores)."
    )
    require_all: bool = Field(False, description="Fail when an attention block stays unfused.")
    atol: float = Field(1e-5, gt=0, description="Max absolute difference allowed between fused and unfused outputs.")
    min_cosine: float = Field(0.99999, gt=0, le=1, description="Min row cosine between fused and unfused outputs.")


class QuantizeStep(StrictModel):
    mode: str = Field(description="Quantization mode: " + ", ".join(QUANTIZE_MODES) + ".")
    preset: str | None = Field(
        None, description="Target preset for static INT8: " + ", ".join(QUANTIZE_PRESETS)
        + " (fills the options below that are not set).")
    per_channel: bool = Field(
        True, description="One weight scale per output channel (per-tensor loses ~3% cosine on MiniLM)."
    )
    reduce_range: bool = Field(False, description="7-bit weights, for CPUs without VNNI where saturation hurts.")
    calibration: Literal["minmax", "entropy", "percentile"] = Field(
        "minmax", description="Static INT8: how activation ranges are chosen from the calibration texts.")
    calibration_size: PositiveInt = Field(256, description="Static INT8: number of calibration texts.")
    percentile: float = Field(99.999, gt=90, le=100, description="Percentile kept by 'percentile' calibration.")
    symmetric_activations: bool = Field(False, description="Static INT8: int8 activations with zero point 0.")
    exclude: list[str] = Field(default_factory=list, description="Node names or groups kept in float.")
    group_by: Literal["matmul", "layer"] = Field(
        "matmul", description="Unit of the sensitivity analysis and of the budget's float fallbacks.")
    sensitivity: bool = Field(False, description="Write a per-group sensitivity table and plot.")
    budget: QuantizeBudget | None = Field(None, description="Keep sensitive groups in float until this holds.")
    qad_steps: PositiveInt = Field(300, description="qad-int8: optimizer steps of fake-quantized distillation.")
    qad_lr: float = Field(2.0e-5, gt=0, description="qad-int8: peak AdamW learning rate (weights, activation scales).")
    qad_batch_size: PositiveInt = Field(32, description="qad-int8: texts per step.")
    keep_io_fp32: bool = Field(True, description="FP16: inputs and outputs stay FP32 (casts inserted).")
    fp32_ops: list[str] = Field(
        default_factory=lambda: ["LayerNormalization", "Softmax", "ReduceSum", "ReduceMean", "ReduceL2", "Pow",
                                 "Sqrt", "Erf"],
        description="FP16: op types kept in FP32 (numerically fragile).")

    @field_validator("mode")
    @classmethod
    def _known(cls, v: str) -> str:
        return known(v, QUANTIZE_MODES, "quantization mode")

    @field_validator("preset")
    @classmethod
    def _known_preset(cls, v: str | None) -> str | None:
        return None if v is None else known(v, QUANTIZE_PRESETS, "quantization preset")

    @property
    def label(self) -> str:
        """Folder and artifact suffix: the mode, then the preset and calibration when they matter."""
        parts = [self.mode]
        if self.mode == "static-int8":
            parts += [self.preset or "default", self.calibration]
        if self.budget is not None:
            parts.append("budget")
        return "-".join(parts)


class Shape(StrictModel):
    batch: PositiveInt
    seq: PositiveInt

    @property
    def label(self) -> str:
        return f"{self.batch}x{self.seq}"


class BenchConfig(StrictModel):
    backends: list[Literal["torch", "onnxruntime", "tensorrt"]] = ["torch", "onnxruntime"]
    shapes: list[Shape] = Field(default_factory=lambda: [Shape(batch=1, seq=128)], min_length=1)
    warmup: int = Field(5, ge=0, description="Untimed runs per shape before timing.")
    warmup_s: float = Field(0.0, ge=0, description="Keep warming up until this much time has passed.")
    iterations: PositiveInt = Field(50, description="Timed runs per shape.")
    min_duration_s: float = Field(0.0, ge=0, description="Keep iterating until this much time has passed.")
    threads: PositiveInt | None = Field(None, description="Intra-op threads for every backend (default: all cores).")
    inter_op_threads: PositiveInt = Field(1, description="Inter-op threads for every backend (pinned, recorded).")
    compare: Literal["interleaved", "sequential"] = Field(
        "interleaved", description="Several models: time them A B A B … per round so drift cancels, or one by one."
    )
    rounds: PositiveInt = Field(10, description="Interleaved rounds per shape.")
    sessions: PositiveInt = Field(
        1, description="Fresh sessions per model, called in turn and pooled: averages out each session's "
        "memory-layout luck, so consecutive runs agree more closely (costs memory and load time; use with "
        "threads: 1, as idle ONNX Runtime thread pools spin and steal cores).")
    round_warmup: int = Field(
        1, ge=0, description="Untimed calls opening each model's turn in a round (the switch leaves caches cold)."
    )
    device: str = Field("cpu", description="torch device: cpu or cuda[:N].")
    providers: list[Literal["cpu", "cuda", "tensorrt"]] = Field(
        ["cpu"], description="ONNX Runtime execution providers, in priority order."
    )
    torch_compile: bool = Field(False, description="Run torch models through torch.compile.")
    cuda_graphs: bool = Field(False, description="Replay a captured CUDA graph per shape (torch on CUDA).")
    power: Literal["auto", "on", "off"] = Field("auto", description="Sample tegrastats (auto: where present).")

    @field_validator("power", mode="before")
    @classmethod
    def _yaml_switch(cls, v: Any) -> Any:
        return {True: "on", False: "off"}.get(v, v) if isinstance(v, bool) else v  # YAML reads `off` as false
    power_s: float = Field(5.0, gt=0, description="Energy window per model and shape (s).")
    idle_s: float = Field(3.0, gt=0, description="Idle baseline before energy windows (s).")


class EvaluateConfig(StrictModel):
    batch_size: PositiveInt = 64
    max_length: PositiveInt = 128


class PipelineConfig(StrictModel):
    """The whole pipeline, from one YAML file."""

    name: str = Field(description="A name for the run, shown in the report.")
    teacher: TeacherConfig
    student: StudentConfig
    data: DataConfig
    distill: DistillConfig = DistillConfig()
    export: ExportConfig = ExportConfig()
    fuse: FuseConfig | None = Field(
        default_factory=FuseConfig, description="Attention fusion after export; null to ship the unfused export."
    )
    quantize: list[QuantizeStep] = Field(default_factory=lambda: [QuantizeStep(mode="dynamic-int8")])
    evaluate: EvaluateConfig = EvaluateConfig()
    bench: BenchConfig = BenchConfig()

    @model_validator(mode="after")
    def _consistent(self) -> PipelineConfig:
        for i, shape in enumerate(self.bench.shapes):
            check_shape_in_range(shape, self.export.dynamic, where=f"bench.shapes[{i}]")
        check_teacher_serves_losses(self.teacher, self.distill)
        if not self.teacher.white_box and self.student.from_teacher is not None:
            raise ValueError(
                f"student.from_teacher copies the teacher's layers, so it needs teacher.source 'huggingface', "
                f"not '{self.teacher.source}'; with a black-box teacher give student.hf_config or student.factory"
            )
        if self.teacher.source in ("recorded", "http") and self.teacher.tokenizer is None:
            raise ValueError(
                f"teacher.tokenizer: a {self.teacher.source} teacher has no tokenizer for the student; give the "
                "folder of the tokenizer the student should read with"
            )
        return self


def check_teacher_serves_losses(teacher: TeacherConfig, distill: DistillConfig) -> None:
    """Raise ValueError if a loss needs intermediate tensors a black-box teacher cannot give."""
    if teacher.white_box:
        return
    for i, spec in enumerate(distill.losses):
        if spec.white_box:
            raise ValueError(
                f"distill.losses[{i}]: loss '{spec.name}' needs the teacher's hidden states/attention, but "
                f"teacher.source '{teacher.source}' is black-box (final outputs only); use embedding_mse, "
                "embedding_cosine or logits_kl, or a huggingface teacher"
            )


def check_shape_in_range(shape: Shape, dynamic: DynamicAxes, where: str = "shape") -> None:
    """Raise ValueError if ``shape`` lies outside the exported dynamic range."""
    for axis, value, rng in (("batch", shape.batch, dynamic.batch), ("seq", shape.seq, dynamic.sequence)):
        if not rng.min <= value <= rng.max:
            raise ValueError(
                f"{where}: {axis} {value} is outside the exported range [{rng.min}, {rng.max}]; "
                "widen export.dynamic or pick another shape"
            )


def format_validation_error(err: ValidationError, source: str) -> str:
    """One line: `source: key.path: message; key.path: message`."""
    parts = []
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"] if not str(p).startswith("function-"))
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = "unknown key (check the spelling against the config reference in README)"
        elif e["type"] == "missing":
            msg = "required key is missing"
        parts.append(f"{loc}: {msg}" if loc else msg)
    return f"{source}: " + "; ".join(parts)


def parse_config(data: Any, base_dir: Path | None = None, source: str = "config") -> PipelineConfig:
    """Validate a dict into a :class:`PipelineConfig`.

    Raises:
        ConfigError: naming the key path and what was expected.
    """
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level, got {type(data).__name__}")
    try:
        return PipelineConfig.model_validate(data, context={"base_dir": base_dir})
    except ValidationError as err:
        raise ConfigError(format_validation_error(err, source)) from None


def load_config(path: str | Path) -> PipelineConfig:
    """Read a YAML file (safe loader) into a validated :class:`PipelineConfig`.

    Raises:
        ConfigError: the file is missing, is not YAML, or does not validate.
    """
    import yaml

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {str(err).splitlines()[0]}") from None
    return parse_config(data, base_dir=path.parent.resolve(), source=str(path))
