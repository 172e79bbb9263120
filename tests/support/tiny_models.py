"""Tiny random models of every architecture family edgedistill supports (hidden 32, 2 layers), saved as Hugging Face
folders with a tokenizer (text) or an image processor (vision), built in the test: nothing is downloaded.

Every text family reads with the same WordPiece vocabulary (its own tokenizer class where the family has no
token types); the weights are random, so what a test checks is shapes, wiring and numbers against torch.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

WORDS = (
    "a the man woman dog cat is are was plays playing runs running eats eating on in at with and of to "
    "ball guitar piano park street house car red blue green big small young old happy sad food water "
    "python function returns value list string file module class object error data model"
).split()
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
VOCAB = [*SPECIALS, *WORDS, *[f"##{c}" for c in "abcdefghijklmnopqrstuvwxyz"], *"abcdefghijklmnopqrstuvwxyz.,!?"]
ENCODERS = ("bert", "roberta", "xlm-roberta", "distilbert", "deberta-v2")
DECODERS = ("llama", "qwen2", "gpt2")
VISION = ("vit",)
FAMILIES = (*ENCODERS, *VISION)
SHAPE = {"hidden": 32, "layers": 2, "heads": 2, "intermediate": 64}


def encoder_config(family: str, **extra: Any) -> Any:
    """A tiny config of ``family`` over :data:`VOCAB` (padding id 0, as the WordPiece tokenizer pads)."""
    from transformers import AutoConfig

    h, n, a, m = SHAPE["hidden"], SHAPE["layers"], SHAPE["heads"], SHAPE["intermediate"]
    if family == "distilbert":
        fields = {"dim": h, "n_layers": n, "n_heads": a, "hidden_dim": m, "dropout": 0.0, "attention_dropout": 0.0}
    elif family in DECODERS:
        fields = ({"n_embd": h, "n_layer": n, "n_head": a, "n_inner": m, "n_positions": 128} if family == "gpt2" else
                  {"hidden_size": h, "num_hidden_layers": n, "num_attention_heads": a, "num_key_value_heads": 1,
                   "intermediate_size": m, "max_position_embeddings": 128})
    else:
        fields = {"hidden_size": h, "num_hidden_layers": n, "num_attention_heads": a, "intermediate_size": m,
                  "max_position_embeddings": 128, "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}
    if family == "deberta-v2":  # DeBERTa-v3 style: relative positions, content-to-position and back
        fields.update(relative_attention=True, position_buckets=16, max_relative_positions=-1,
                      norm_rel_ebd="layer_norm", share_att_key=True, pos_att_type=["p2c", "c2p"],
                      position_biased_input=False, type_vocab_size=0)
    return AutoConfig.for_model(family, vocab_size=len(VOCAB), pad_token_id=0, **fields, **extra)


def write_tokenizer(out: Path, family: str) -> Any:
    from transformers import BertTokenizerFast, DistilBertTokenizerFast

    (out / "vocab.txt").write_text("\n".join(VOCAB) + "\n")
    cls = DistilBertTokenizerFast if family in ("distilbert", *DECODERS) else BertTokenizerFast
    tokenizer = cls(vocab=str(out / "vocab.txt"), do_lower_case=True)
    tokenizer.save_pretrained(out)
    return tokenizer


def write_sentence_transformers_files(out: Path) -> None:
    """Mean pooling and normalisation, as sentence-transformers saves them."""
    (out / "1_Pooling").mkdir(exist_ok=True)
    (out / "1_Pooling" / "config.json").write_text('{"pooling_mode_mean_tokens": true}')
    modules = [{"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
               {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
               {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}]
    (out / "modules.json").write_text(json.dumps(modules))


def make_tiny_text_model(family: str, out: Path, task: str = "sentence-embedding", seed: int = 0,
                         num_labels: int = 3) -> Path:
    """Save a random ``family`` model folder for ``task`` (sentence-embedding: the bare encoder + pooling files;
    sequence-classification: the family's classifier with ``num_labels``)."""
    import torch
    from transformers import AutoModel, AutoModelForSequenceClassification

    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    if task == "sequence-classification":
        model = AutoModelForSequenceClassification.from_config(encoder_config(family, num_labels=num_labels))
    else:
        model = AutoModel.from_config(encoder_config(family))
    model.save_pretrained(out)
    write_tokenizer(out, family)
    if task == "sentence-embedding":
        write_sentence_transformers_files(out)
    return out


def make_tiny_vit(out: Path, num_labels: int | None = 3, seed: int = 0, image_size: int = 32) -> Path:
    """Save a random ViT folder (image-classification head with ``num_labels``, or the bare encoder) with its image
    processor (resize to ``image_size``, ImageNet normalisation)."""
    import torch
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor, ViTModel

    out.mkdir(parents=True, exist_ok=True)
    config = ViTConfig(hidden_size=SHAPE["hidden"], num_hidden_layers=SHAPE["layers"],
                       num_attention_heads=SHAPE["heads"], intermediate_size=SHAPE["intermediate"],
                       image_size=image_size, patch_size=8, num_channels=3, hidden_dropout_prob=0.0,
                       attention_probs_dropout_prob=0.0, num_labels=num_labels or 2)
    torch.manual_seed(seed)
    model = ViTForImageClassification(config) if num_labels else ViTModel(config, add_pooling_layer=False)
    model.save_pretrained(out)
    ViTImageProcessor(size={"height": image_size, "width": image_size}).save_pretrained(out)
    return out


def make_tiny(family: str, out: Path, task: str | None = None, seed: int = 0) -> Path:
    """A tiny model of any family: vision families as image classifiers, text ones for ``task``."""
    if family in VISION:
        return make_tiny_vit(out, seed=seed)
    return make_tiny_text_model(family, out, task or "sentence-embedding", seed=seed)


def write_image_folder(root: Path, classes: int = 3, per_class: int = 6, size: int = 40, seed: int = 0) -> Path:
    """``root/<class>/<n>.png``: noisy images whose dominant colour channel is the class, so labels are learnable."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    for c in range(classes):
        (root / f"class{c}").mkdir(parents=True, exist_ok=True)
        for n in range(per_class):
            pixels = rng.integers(0, 90, size=(size, size, 3))
            pixels[..., c % 3] += 150
            Image.fromarray(pixels.astype("uint8")).save(root / f"class{c}" / f"{n}.png")
    return root


def make_tiny_bert(out: Path, layers: int = 2, hidden: int = 32, heads: int = 2, seed: int = 0,
                   **config: float) -> Path:
    """Save a randomly initialised BERT sentence-embedding folder (WordPiece tokenizer over :data:`VOCAB`, mean
    pooling, 512 positions). ``config``: other BertConfig fields (e.g. ``hidden_dropout_prob=0.0``)."""
    import torch
    from transformers import BertConfig, BertModel

    out.mkdir(parents=True, exist_ok=True)
    bert = BertConfig(vocab_size=len(VOCAB), hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                      intermediate_size=hidden * 2, max_position_embeddings=512, **config)
    torch.manual_seed(seed)
    BertModel(bert).save_pretrained(out, safe_serialization=True)
    write_tokenizer(out, "bert")
    write_sentence_transformers_files(out)
    return out
