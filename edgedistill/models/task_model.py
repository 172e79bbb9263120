"""A Hugging Face encoder together with its task head, as one ``nn.Module``.

For ``sentence-embedding`` the head is the sentence-transformers pooling (mean, CLS or max, read from
``1_Pooling/config.json`` when present, mean otherwise), an optional ``Dense`` projection (sentence-transformers'
``2_Dense``, linear; students narrower than their teacher use it to emit the teacher's embedding width) and L2
normalisation; for
``sequence-classification`` it is the model's own classifier and the output is logits. The exported ONNX
graph contains the head, so a device app gets embeddings or logits directly.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from edgedistill.artifacts import umask_mode
from edgedistill.errors import InputError

if TYPE_CHECKING:
    from edgedistill.models.architectures import Architecture

POOLING_DIR = "1_Pooling"
DENSE_DIR = "2_Dense"
LINEAR_ACTIVATIONS = ("torch.nn.modules.linear.Identity", "torch.nn.modules.activation.Tanh")
TEXT_INPUTS = ("input_ids", "attention_mask", "token_type_ids")  # forward's order
OUTPUT_NAMES = {"sentence-embedding": "sentence_embedding", "sequence-classification": "logits"}


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


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor, mode: str, mean: bool = True) -> torch.Tensor:
    """Pool token states (B, S, H) into one vector per text (B, H), ignoring padding.

    Mean pooling is one batched MatMul of the mask with the states (a single pass, where Mul + ReduceSum make
    two and a (B, S, H) temporary). ``mean=False`` leaves it as the masked sum, which points the same way:
    when an L2 normalisation follows, the division by the token count changes nothing and is left out.
    """
    if mode == "cls":
        return hidden[:, 0]
    mask = attention_mask.to(hidden.dtype)  # (B, S)
    if mode == "max":
        return hidden.masked_fill(mask.unsqueeze(-1) == 0, torch.finfo(hidden.dtype).min).amax(dim=1)
    summed = torch.matmul(mask.unsqueeze(1), hidden).squeeze(1)  # (B, 1, S) @ (B, S, H)
    return summed / mask.sum(dim=1, keepdim=True).clamp(min=1e-9) if mean else summed


class TaskModel(nn.Module):
    """Encoder + task head. ``forward(input_ids, attention_mask, token_type_ids)`` returns (B, D) or (B, C).

    ``dense``: a Linear applied to the pooled embedding (sentence embeddings only), ``dense_tanh`` after it.
    """

    def __init__(self, backbone: nn.Module, task: str, pooling: str = "mean", normalize: bool = True,
                 dense: nn.Linear | None = None, dense_tanh: bool = False):
        super().__init__()
        self.backbone: Any = backbone  # a transformers PreTrainedModel
        self.input_names = accepted_inputs(backbone)
        self.task = task
        self.pooling = pooling
        self.normalize = normalize
        self.dense = dense
        self.dense_tanh = dense_tanh

    @property
    def output_name(self) -> str:
        return OUTPUT_NAMES[self.task]

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

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor | None = None
    ) -> torch.Tensor:
        kwargs: dict[str, Any] = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None and "token_type_ids" in self.input_names:  # DistilBERT takes none
            kwargs["token_type_ids"] = token_type_ids
        out = self.backbone(**kwargs)
        if self.task == "sequence-classification":
            logits: torch.Tensor = out.logits
            return logits
        scale_free = self.normalize and self.dense is None  # normalize(mean) == normalize(sum)
        emb = pool(out.last_hidden_state, attention_mask, self.pooling, mean=not scale_free)
        if self.dense is not None:
            emb = self.dense(emb)
            emb = torch.tanh(emb) if self.dense_tanh else emb
        return nn.functional.normalize(emb, p=2, dim=-1) if self.normalize else emb


def accepted_inputs(backbone: nn.Module) -> list[str]:
    """The text inputs the backbone's ``forward`` takes, in :meth:`TaskModel.forward` order."""
    params = inspect.signature(backbone.forward).parameters
    return [name for name in TEXT_INPUTS if name in params]


def check_family_serves(path: Path, task: str) -> None:
    """Raise InputError when the folder's family cannot serve ``task`` (a causal LM pooled as an embedder).

    Families edgedistill has no adapter for pass: their layers are never sliced, and any encoder pools.
    """
    from edgedistill.models.architectures import BY_MODEL_TYPE

    model_type = json.loads((path / "config.json").read_text()).get("model_type")
    family = BY_MODEL_TYPE.get(model_type)
    if family is not None and family.kind == "decoder" and task == "sentence-embedding":
        raise InputError(f"{path}: a {model_type} model is a decoder (causal LM); task sentence-embedding pools an "
                         "encoder's token states (bert, roberta, distilbert, deberta-v2); for a language model the "
                         "text-generation task is needed, which this edgedistill does not have yet")


def check_model_dir(path: Path) -> None:
    if not path.is_dir():
        raise InputError(f"model folder not found: {path}")
    if not (path / "config.json").is_file():
        raise InputError(f"{path} is not a Hugging Face model folder (no config.json)")


def load_task_model(path: Path, task: str, trust_remote_code: bool = False) -> tuple[TaskModel, Any]:
    """Load a model folder as a :class:`TaskModel` in eval mode, plus its tokenizer.

    Weights load from safetensors where present; ``trust_remote_code`` stays off unless asked for.

    Raises:
        InputError: the folder is missing or does not hold a loadable model.
    """
    from safetensors import SafetensorError
    from transformers import AutoModel, AutoModelForSequenceClassification, AutoTokenizer
    from transformers.utils import logging as hf_logging

    import edgedistill.models.pruned_bert  # noqa: F401 (registers the pruned_bert model type)

    hf_logging.disable_progress_bar()  # our own progress bars report the work; keep the terminal clean
    hf_logging.set_verbosity_error()
    check_model_dir(path)
    check_family_serves(path, task)
    auto = AutoModelForSequenceClassification if task == "sequence-classification" else AutoModel
    try:
        backbone = auto.from_pretrained(path, trust_remote_code=trust_remote_code, use_safetensors=None)
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    except SafetensorError as err:
        raise InputError(f"cannot load model from {path}: its weights file is damaged or incomplete ({err}); "
                         "copy model.safetensors again") from None
    except (OSError, ValueError, KeyError) as err:
        raise InputError(f"cannot load model from {path}: {str(err).splitlines()[0]}") from None
    pooling, normalize = read_pooling(path)
    dense, tanh = read_dense(path) if task == "sentence-embedding" else (None, False)
    model = TaskModel(backbone, task, pooling, normalize, dense, tanh)
    model.eval()
    return model, tokenizer


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
