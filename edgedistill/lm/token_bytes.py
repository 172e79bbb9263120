"""The bytes each token of a Hugging Face tokenizer stands for, so two tokenizers can be compared byte for byte.

A teacher behind an API answers in its own tokens, each with its text or UTF-8 bytes; to use its per-token
distribution the student needs to know which of *its* tokens covers the same bytes. Tokenizers spell their
vocabulary in different ways:

- byte-level BPE (GPT-2, Llama-3, SmolLM2, Qwen): every byte is written as one printable character
  (:func:`bytes_to_unicode`; ``Ġ`` is a space), so a token's string maps back to bytes exactly;
- SentencePiece (Llama-2, Mistral, Gemma): ``▁`` stands for a space and ``<0xNN>`` tokens for single bytes
  (byte fallback);
- WordPiece (BERT): ``##`` marks a continuation; word-initial tokens carry no space, so this is a best effort.

Special tokens (BOS, EOS, chat markers) stand for no text: their entry is None. Added tokens that are not
special stand for their content as written.
"""

from __future__ import annotations

import json
import re
import weakref
from functools import lru_cache
from typing import Any

SPM_SPACE = "\u2581"  # ▁
_BYTE_TOKEN = re.compile(r"^<0x([0-9A-Fa-f]{2})>$")
_CACHE: dict[int, tuple[int, list[bytes | None], dict[bytes, int]]] = {}


@lru_cache(maxsize=1)
def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's map from each byte to the printable character byte-level BPE writes it as."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    chars = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(printable, (chr(c) for c in chars)))


@lru_cache(maxsize=1)
def unicode_to_bytes() -> dict[str, int]:
    """Inverse of :func:`bytes_to_unicode`."""
    return {c: b for b, c in bytes_to_unicode().items()}


def _component_types(tokenizer: Any) -> set[str]:
    """The ``type`` names in a fast tokenizer's model, pre-tokenizer and decoder (empty for slow tokenizers)."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        return set()
    doc = json.loads(backend.to_str())
    types: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("type"), str):
                types.add(node["type"])
            for key, value in node.items():
                if key not in ("vocab", "merges"):
                    walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk({k: doc.get(k) for k in ("model", "pre_tokenizer", "decoder")})
    return types


def _vocab_guess(tokens: list[str]) -> str:
    """The spelling most tokens use, for tokenizers whose components cannot be read."""
    counts = {"byte_level": sum(t.startswith("Ġ") for t in tokens),
              "sentencepiece": sum(t.startswith(SPM_SPACE) for t in tokens),
              "wordpiece": sum(t.startswith("##") for t in tokens)}
    style = max(counts, key=lambda s: counts[s])
    return style if counts[style] else "plain"


def tokenizer_style(tokenizer: Any, tokens: list[str] | None = None) -> str:
    """How the vocabulary is spelled: ``byte_level``, ``sentencepiece``, ``wordpiece`` or ``plain`` (as written)."""
    types = _component_types(tokenizer)
    if "ByteLevel" in types:
        return "byte_level"
    if types & {"Metaspace", "ByteFallback"} or hasattr(tokenizer, "sp_model"):
        return "sentencepiece"
    if "WordPiece" in types:
        return "wordpiece"
    if types:
        return "plain"
    return _vocab_guess(tokens if tokens is not None else list(tokenizer.get_vocab()))


def piece_bytes(piece: str, style: str) -> bytes | None:
    """The bytes one vocabulary entry stands for, in the given spelling; None where it cannot be read."""
    if style == "byte_level":
        inverse = unicode_to_bytes()
        if not all(c in inverse for c in piece):
            return None
        return bytes(inverse[c] for c in piece)
    if style == "sentencepiece":
        match = _BYTE_TOKEN.match(piece)
        if match:
            return bytes([int(match.group(1), 16)])
        return piece.replace(SPM_SPACE, " ").encode("utf-8")
    if style == "wordpiece" and piece.startswith("##"):
        return piece[2:].encode("utf-8")
    return piece.encode("utf-8")


def _special_ids(tokenizer: Any) -> set[int]:
    ids = {int(i) for i in getattr(tokenizer, "all_special_ids", []) if i is not None}
    added = getattr(tokenizer, "added_tokens_decoder", {}) or {}
    return ids | {int(i) for i, tok in added.items() if getattr(tok, "special", False)}


def _build(tokenizer: Any) -> list[bytes | None]:
    vocab: dict[str, int] = tokenizer.get_vocab()
    style = tokenizer_style(tokenizer, list(vocab))
    added = {int(i): str(t) for i, t in (getattr(tokenizer, "added_tokens_decoder", {}) or {}).items()}
    special = _special_ids(tokenizer)
    table: list[bytes | None] = [None] * (max(vocab.values(), default=-1) + 1)
    for piece, i in vocab.items():
        if i in special:
            continue
        table[i] = added[i].encode("utf-8") if i in added else piece_bytes(piece, style)
    return table


def _cached(tokenizer: Any) -> tuple[list[bytes | None], dict[bytes, int]]:
    key = id(tokenizer)
    entry = _CACHE.get(key)
    if entry is not None and entry[0] == len(tokenizer):
        return entry[1], entry[2]
    table = _build(tokenizer)
    lookup: dict[bytes, int] = {}
    for i, raw in enumerate(table):
        if raw:  # first id wins where two entries spell the same bytes
            lookup.setdefault(raw, i)
    if entry is None:
        try:  # forget the entry with the tokenizer, so a new object at the same address is not mistaken for it
            weakref.finalize(tokenizer, _CACHE.pop, key, None)
        except TypeError:
            return table, lookup  # not weakly referable: not cached
    _CACHE[key] = (len(tokenizer), table, lookup)
    return table, lookup


def token_bytes(tokenizer: Any) -> list[bytes | None]:
    """The bytes of every token, indexed by id; None for special tokens and ids the vocabulary skips.

    Cached per tokenizer object (rebuilt if tokens are added). Do not modify the returned list."""
    return _cached(tokenizer)[0]


def bytes_to_id(tokenizer: Any) -> dict[bytes, int]:
    """Inverse of :func:`token_bytes`: the id of the token that is exactly these bytes (cached per tokenizer)."""
    return _cached(tokenizer)[1]
