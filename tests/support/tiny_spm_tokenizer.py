"""A tiny SentencePiece-style tokenizer (as Llama-2's ``tokenizer.json``: ``▁`` for a space, a space prepended to
the text, ``<0xNN>`` byte-fallback tokens for characters outside the vocabulary), built offline in the test."""

from __future__ import annotations

import json
from typing import Any

from support.tiny_lm import CORPUS

SPM_SPECIALS = ["<unk>", "<s>", "</s>"]


def make_tiny_spm_tokenizer(vocab_size: int = 300) -> Any:
    """BPE trained on :data:`support.tiny_lm.CORPUS` with a Metaspace pre-tokenizer (``vocab_size``: before the
    byte tokens are added), then given the 256 byte tokens (in the model's vocabulary, not as added tokens, as
    Llama-2 ships them) and byte fallback."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    trained = Tokenizer(models.BPE(unk_token="<unk>"))
    trained.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always")
    trained.train_from_iterator(CORPUS, trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPM_SPECIALS,
                                                            show_progress=False))
    model = json.loads(trained.to_str())["model"]
    pieces = sorted(model["vocab"], key=model["vocab"].get)
    ordered = SPM_SPECIALS + [f"<0x{b:02X}>" for b in range(256)] + [p for p in pieces if p not in SPM_SPECIALS]
    merges = [(m.split(" ")[0], m.split(" ")[1]) if isinstance(m, str) else (m[0], m[1]) for m in model["merges"]]
    core = Tokenizer(models.BPE(vocab={p: i for i, p in enumerate(ordered)}, merges=merges, unk_token="<unk>",
                                byte_fallback=True, fuse_unk=True))
    core.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always")
    core.decoder = decoders.Sequence([decoders.Metaspace(replacement="\u2581", prepend_scheme="always"),
                                      decoders.ByteFallback(), decoders.Fuse()])
    core.add_special_tokens(SPM_SPECIALS)
    return PreTrainedTokenizerFast(tokenizer_object=core, unk_token="<unk>", bos_token="<s>", eos_token="</s>")
