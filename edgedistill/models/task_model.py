"""A Hugging Face model together with its task head, as one ``nn.Module`` whose output is what ships.

The head is the Task's (:mod:`edgedistill.tasks`): for ``sentence-embedding`` the sentence-transformers pooling
(mean, CLS or max, read from ``1_Pooling/config.json`` when present, mean otherwise), an optional ``Dense``
projection (sentence-transformers' ``2_Dense``, linear; students narrower than their teacher use it to emit the
teacher's embedding width) and L2 normalisation; for ``sequence-classification`` and ``image-classification`` the
model's own classifier, whose output is logits. The exported ONNX graph contains the head, so a device app gets
embeddings or logits directly.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from edgedistill.artifacts import umask_mode
from edgedistill.errors import InputError
from edgedistill.tasks import Task, get_task
from edgedistill.tasks.inputs import InputSpec

if TYPE_CHECKING:
    from edgedistill.models.architectures import Architecture

POOLING_DIR = "1_Pooling"
DENSE_DIR = "2_Dense"
LINEAR_ACTIVATIONS = ("torch.nn.modules.linear.Identity", "torch.nn.modules.activation.Tanh")
FORWARD_INPUTS = ("input_ids", "attention_mask", "token_type_ids", "pixel_values")  # forward's order


def read_pooling(model_dir: Path) -> tuple[str, bool]:
    """Return (pooling mode, normalize) from the sentence-transformers files, defaulting to (mean, True)."""
    mode, normalize = "mean", True
    cfg = model_dir / POOLING_DIR / "config.json"
    if cfg.is_file():
        data = json.loads(cfg.read_text())
        for name in ("cls", "max", "mean"):
            if data.get(f"pooling_mode_{name}_token" if name == "cls" else f"pooling_mode_{name}_tokens"):
                mode = name
                break
    modules = model_dir / "modules.json"
    if modules.is_file():
        normalize = any(m.get("type", "").endswith("Normalize") for m in json.loads(modules.read_text()))
    return mode, normalize


class TaskModel(nn.Module):
    """Backbone + task head. ``forward`` takes the task's inputs (``input_ids, attention_mask[, token_type_ids]``
    or ``pixel_values``), by keyword or in :data:`FORWARD_INPUTS` order, and returns (B, D) or (B, C).

    ``dense``: a Linear applied to the pooled embedding (sentence embeddings only), ``dense_tanh`` after it.
    """

    def __init__(self, backbone: nn.Module, task: str, pooling: str = "mean", normalize: bool = True,
                 dense: nn.Linear | None = None, dense_tanh: bool = False):
        super().__init__()
        self.backbone: Any = backbone  # a transformers PreTrainedModel
        self.task = task
        self.input_names = self.spec.input_names(backbone)
        self.pooling = pooling
        self.normalize = normalize
        self.dense = dense
        self.dense_tanh = dense_tanh

    @property
    def spec(self) -> Task:
        """The model's Task (its head, inputs and metrics)."""
        return get_task(self.task)

    @property
    def output_name(self) -> str:
        return self.spec.output_name

    def input_spec(self, preprocessor: Any) -> InputSpec:
        """What the model takes, for synthetic inputs."""
        return self.spec.input_spec(self, preprocessor)

    @property
    def architecture(self) -> Architecture:
        """The family's adapter (where layers, attention and MLP live).

        Raises:
            ConfigError: a family edgedistill has no adapter for.
        """
        from edgedistill.models.architectures import architecture_of

        return architecture_of(self.backbone)

    @property
    def layers(self) -> nn.ModuleList:
        """The transformer layers (``encoder.layer`` in BERT, ``transformer.layer`` in DistilBERT, ...)."""
        return self.architecture.layer_list(self.backbone)

    @property
    def base_model(self) -> Any:
        """The encoder without a task-specific head (``BertModel`` inside ``BertForSequenceClassification``)."""
        return getattr(self.backbone, "base_model", self.backbone)

    def forward(self, input_ids: torch.Tensor | None = None, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None, pixel_values: torch.Tensor | None = None) -> torch.Tensor:
        given = {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids,
                 "pixel_values": pixel_values}
        inputs = {k: v for k, v in given.items() if v is not None and k in self.input_names}  # DistilBERT: no types
        return self.spec.head(self, inputs)


def model_inputs(model: TaskModel, preprocessor: Any, samples: list[str], max_length: int) -> dict[str, torch.Tensor]:
    """A batch of samples (texts or image paths) made into ``model``'s inputs by its Task, as tensors."""
    feeds = model.spec.encode(preprocessor, samples, max_length)
    return {name: torch.from_numpy(feeds[name]) for name in model.input_names if name in feeds}


def check_family_serves(path: Path, task: Task) -> None:
    """Raise InputError when the folder's family cannot serve ``task``: a causal LM pooled as an embedder, a vision
    model given text or the other way round. Families edgedistill has no adapter for pass (any encoder pools).
    """
    from edgedistill.models.architectures import BY_MODEL_TYPE

    model_type = json.loads((path / "config.json").read_text()).get("model_type")
    family = BY_MODEL_TYPE.get(model_type)
    if family is None:
        return
    if family.kind == "decoder" and task.name == "sentence-embedding":
        raise InputError(f"{path}: a {model_type} model is a decoder (causal LM); task sentence-embedding pools an "
                         "encoder's token states (bert, roberta, distilbert, deberta-v2); for a language model the "
                         "text-generation task is needed, which this edgedistill does not have yet")
    if (family.kind == "vision") != (task.modality == "image"):
        wanted = "image-classification" if family.kind == "vision" else "sentence-embedding or sequence-classification"
        raise InputError(f"{path}: a {model_type} model takes {'images' if family.kind == 'vision' else 'text'}, "
                         f"not the inputs of task {task.name}; use task {wanted}")


def check_model_dir(path: Path) -> None:
    if not path.is_dir():
        raise InputError(f"model folder not found: {path}")
    if not (path / "config.json").is_file():
        raise InputError(f"{path} is not a Hugging Face model folder (no config.json)")


def load_task_model(path: Path, task: str, trust_remote_code: bool = False) -> tuple[TaskModel, Any]:
    """Load a model folder as a :class:`TaskModel` for ``task`` in eval mode, plus its tokenizer or image processor.

    Weights load from safetensors where present; ``trust_remote_code`` stays off unless asked for.

    Raises:
        InputError: the folder is missing, does not hold a loadable model, or its family cannot serve the task.
        ConfigError: an unknown task.
    """
    from safetensors import SafetensorError
    from transformers.utils import logging as hf_logging

    import edgedistill.models.pruned_bert  # noqa: F401 (registers the pruned_bert model type)

    hf_logging.disable_progress_bar()  # our own progress bars report the work; keep the terminal clean
    hf_logging.set_verbosity_error()
    spec = get_task(task)
    check_model_dir(path)
    check_family_serves(path, spec)
    try:
        backbone = spec.auto_class().from_pretrained(path, trust_remote_code=trust_remote_code, use_safetensors=None)
    except SafetensorError as err:
        raise InputError(f"cannot load model from {path}: its weights file is damaged or incomplete ({err}); "
                         "copy model.safetensors again") from None
    except (OSError, ValueError, KeyError) as err:
        raise InputError(f"cannot load model from {path}: {str(err).splitlines()[0]}") from None
    preprocessor = spec.load_preprocessor(path)
    pooling, normalize = read_pooling(path)
    dense, tanh = read_dense(path) if task == "sentence-embedding" else (None, False)
    model = TaskModel(backbone, task, pooling, normalize, dense, tanh)
    model.eval()
    return model, preprocessor


def read_dense(model_dir: Path) -> tuple[nn.Linear | None, bool]:
    """The sentence-transformers ``Dense`` module named in ``modules.json`` (Linear, tanh?), or (None, False).

    Raises:
        InputError: its files are missing or it uses an activation other than identity or tanh.
    """
    modules = model_dir / "modules.json"
    entries = json.loads(modules.read_text()) if modules.is_file() else []
    found = [m for m in entries if m.get("type", "").endswith("Dense")]
    if not found:
        return None, False
    folder = model_dir / found[0].get("path", DENSE_DIR)
    try:
        config = json.loads((folder / "config.json").read_text())
        from safetensors.torch import load_file

        weights = load_file(folder / "model.safetensors")
    except (OSError, ValueError) as err:
        raise InputError(f"{folder}: cannot read the Dense module ({err})") from None
    activation = config.get("activation_function", LINEAR_ACTIVATIONS[1])
    if activation not in LINEAR_ACTIVATIONS:
        raise InputError(f"{folder}: Dense activation {activation} is not supported (identity or tanh)")
    dense = nn.Linear(config["in_features"], config["out_features"], bias=config.get("bias", True))
    dense.load_state_dict({k.removeprefix("linear."): v for k, v in weights.items()})
    return dense, activation == LINEAR_ACTIVATIONS[1]


def save_dense(model: TaskModel, out: Path) -> None:
    """Write ``model.dense`` as sentence-transformers' ``2_Dense`` (config.json + model.safetensors)."""
    from safetensors.torch import save_file

    dense = model.dense
    assert dense is not None
    (out / DENSE_DIR).mkdir(exist_ok=True)
    config = {"in_features": dense.in_features, "out_features": dense.out_features, "bias": dense.bias is not None,
              "activation_function": LINEAR_ACTIVATIONS[1 if model.dense_tanh else 0]}
    (out / DENSE_DIR / "config.json").write_text(json.dumps(config, indent=2))
    tensors = {f"linear.{k}": v.detach().contiguous() for k, v in dense.state_dict().items()}
    save_file(tensors, out / DENSE_DIR / "model.safetensors")


def save_task_model(model: TaskModel, tokenizer: Any, out: Path) -> None:
    """Save as a Hugging Face folder (safetensors) with tokenizer and sentence-transformers pooling files."""
    model.backbone.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    for path in out.glob("*.safetensors"):  # written through a private temporary file (0600): give it the umask's
        path.chmod(umask_mode())
    if model.task != "sentence-embedding":
        return
    hidden = model.backbone.config.hidden_size
    pooling = {f"pooling_mode_{m}_tokens": model.pooling == m for m in ("mean", "max", "mean_sqrt_len")}
    pooling["pooling_mode_cls_token"] = model.pooling == "cls"
    (out / POOLING_DIR).mkdir(exist_ok=True)
    pooling_config = {"word_embedding_dimension": hidden, **pooling}
    (out / POOLING_DIR / "config.json").write_text(json.dumps(pooling_config, indent=2))
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": POOLING_DIR, "type": "sentence_transformers.models.Pooling"},
    ]
    if model.dense is not None:
        save_dense(model, out)
        modules.append({"idx": 2, "name": "2", "path": DENSE_DIR, "type": "sentence_transformers.models.Dense"})
    if model.normalize:
        n = len(modules)
        modules.append({"idx": n, "name": str(n), "path": f"{n}_Normalize",
                        "type": "sentence_transformers.models.Normalize"})
    (out / "modules.json").write_text(json.dumps(modules, indent=2))


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
