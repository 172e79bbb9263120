"""A resumable on-disk store of a generative teacher's answers: each example's :class:`Generation` and its
:class:`SequenceTargets` (the answer in the student's tokens, with the teacher's top-k at each response token).

Layout of ``cache_dir/lm-{key}/`` (as :mod:`edgedistill.distill.label_store`, whose helpers it uses)::

    meta.json            key inputs (never secrets), k, vocab size, count, chunk size, the dtypes below
    chunks/000012.npz    examples [12·chunk, 13·chunk), written atomically (temp file + rename)

A chunk file exists only once complete, so a job killed at any moment resumes with the missing chunks only. Each
chunk is read whole and checked (zip CRCs, array sizes against each other and the meta) before its data is used:
a damaged one (truncated, overwritten) is deleted and reported missing, to be asked for again, never read as data.

What a chunk holds, compactly (``np.savez``, uncompressed: top-k log-probabilities do not compress):

- token ids as uint16 when the vocabulary has fewer than 65,536 entries (a top-k padding id −1 is stored as
  65,535, never a real id then), else int32;
- top-k log-probabilities as float16. Its 11-bit significand rounds a log-probability ℓ by at most |ℓ|·2⁻¹¹, so
  p = e^ℓ moves by a relative |ℓ|·0.05 %: 0.05 % at p = 0.37, 0.5 % at p = 4.5e-5. The error is smallest where
  the mass is, and the top-k KL moves by ≤ 3e-4 relative (measured on random teachers in tests/lm/test_sparse_cache.py);
  −inf (padding) is kept exactly. At k = 20 a response token costs 20 · (2 + 2) = 80 bytes (120 with int32 ids).
- the tail mass is not stored: it is 1 − Σ exp(top_logprobs), as :func:`edgedistill.lm.losses.sparse_kl` reads it.
- the generations as UTF-8 JSON (:meth:`Generation.as_json`), one list per chunk.
"""

from __future__ import annotations

import io
import json
import shutil
import zipfile
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgedistill.artifacts import atomic_write_json, read_json
from edgedistill.distill.label_store import rename_into_place
from edgedistill.errors import InputError
from edgedistill.lm.records import Generation, SequenceTargets

FORMAT = 1
UINT16_PAD = 65535  # a top-k padding id (-1) in a uint16 chunk; vocabularies stored as uint16 have < 65,536 ids
LOGPROB_DTYPE = np.float16
KEPT_CHUNKS = 8  # decoded chunks held in memory for get(); the rest are read again when asked for
DAMAGE = (OSError, ValueError, EOFError, KeyError, IndexError, zipfile.BadZipFile, InputError)

Example = tuple[Generation, SequenceTargets]


def id_dtype(vocab_size: int) -> np.dtype[Any]:
    """uint16 for a vocabulary of fewer than 65,536 ids, else int32."""
    return np.dtype(np.uint16) if vocab_size < 65536 else np.dtype(np.int32)


@dataclass(frozen=True)
class ChunkSummary:
    """What one stored chunk holds, for :meth:`SparseCache.stats` (kept without its data)."""

    examples: int
    response_tokens: int
    top_tokens: int  # response tokens that carry a teacher top-k
    top_bytes: int  # bytes of the stored top-k ids and log-probabilities
    file_bytes: int


class SparseCache:
    """Teacher answers for ``count`` examples, stored in chunks of ``chunk`` examples.

    ``key`` names the store (e.g. :func:`edgedistill.distill.label_store.store_key` of the teacher's identity, the
    prompts' hash and the student tokenizer); ``meta`` holds the key's inputs and must give ``k`` (top-k width
    stored per response token, 0 for a text-only teacher) and ``vocab_size`` (the student's). A store whose
    meta differs, or ``refresh=True``, is started over.
    """

    def __init__(self, cache_dir: Path, key: str, count: int, chunk: int, meta: dict[str, Any],
                 refresh: bool = False):
        if "k" not in meta or "vocab_size" not in meta:
            raise InputError("SparseCache: meta must give 'k' (top-k width, 0 for text only) and 'vocab_size'")
        if count < 0 or chunk < 1 or int(meta["k"]) < 0 or int(meta["vocab_size"]) < 1:
            raise InputError(f"SparseCache: count {count}, chunk {chunk}, k {meta['k']}, vocab_size "
                             f"{meta['vocab_size']}; give count ≥ 0, chunk ≥ 1, k ≥ 0, vocab_size ≥ 1")
        self.root = cache_dir / f"lm-{key}"
        self.count, self.chunk = count, chunk
        self.k, self.vocab_size = int(meta["k"]), int(meta["vocab_size"])
        self.ids = id_dtype(self.vocab_size)
        self.decoded: OrderedDict[int, list[Example]] = OrderedDict()
        self.summaries: dict[int, ChunkSummary] = {}
        expected = {**meta, "format": FORMAT, "key": key, "count": count, "chunk": chunk,
                    "id_dtype": self.ids.name, "logprob_dtype": np.dtype(LOGPROB_DTYPE).name}
        meta_path = self.root / "meta.json"
        if refresh or (meta_path.is_file() and read_json(meta_path) != json.loads(json.dumps(expected, default=str))):
            shutil.rmtree(self.root, ignore_errors=True)  # asked to, or another layout under the key: never mix
        if not meta_path.is_file():
            atomic_write_json(meta_path, expected)

    @property
    def n_chunks(self) -> int:
        return -(-self.count // self.chunk)

    def rows(self, c: int) -> range:
        return range(c * self.chunk, min((c + 1) * self.chunk, self.count))

    def chunk_path(self, c: int) -> Path:
        return self.root / "chunks" / f"{c:06d}.npz"

    def missing_chunks(self) -> list[int]:
        """The chunks not stored (or damaged, then deleted): what a resumed job must still ask the teacher for."""
        return [c for c in range(self.n_chunks) if c not in self.summaries and self.read_chunk(c) is None]

    def put(self, chunk_index: int, generations: list[Generation], targets: list[SequenceTargets]) -> None:
        """Store chunk ``chunk_index`` (all its examples, in order), atomically; a chunk already stored is replaced.

        Raises InputError, storing nothing, when the counts, shapes or ids do not fit the store.
        """
        if not 0 <= chunk_index < self.n_chunks:
            raise InputError(f"SparseCache.put: chunk {chunk_index} is outside 0..{self.n_chunks - 1}")
        n = len(self.rows(chunk_index))
        if len(generations) != n or len(targets) != n:
            raise InputError(f"SparseCache.put: chunk {chunk_index} holds {n} examples; got {len(generations)} "
                             f"generations and {len(targets)} targets; nothing was stored for it")
        arrays = encode_chunk(generations, targets, self.k, self.vocab_size, self.ids)
        buf = io.BytesIO()
        np.savez(buf, **arrays)  # type: ignore[arg-type]  # numpy stubs type **kwds as allow_pickle
        rename_into_place(self.chunk_path(chunk_index), buf.getvalue())
        self.decoded.pop(chunk_index, None)
        self.summaries[chunk_index] = summarize(arrays, len(buf.getvalue()))

    def read_chunk(self, c: int) -> list[Example] | None:
        """Chunk ``c``'s examples, or None when it is not stored or is damaged (the damaged file is deleted)."""
        if c in self.decoded:
            self.decoded.move_to_end(c)
            return self.decoded[c]
        path = self.chunk_path(c)
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as npz:
                arrays = {name: npz[name] for name in npz.files}
            examples = decode_chunk(arrays, len(self.rows(c)), self.k, self.ids)
        except DAMAGE:
            path.unlink(missing_ok=True)
            self.summaries.pop(c, None)
            return None
        self.summaries[c] = summarize(arrays, path.stat().st_size)
        self.decoded[c] = examples
        while len(self.decoded) > KEPT_CHUNKS:
            self.decoded.popitem(last=False)
        return examples

    def get(self, i: int) -> Example:
        """Example ``i``: its Generation and SequenceTargets. Raises InputError when its chunk is not stored."""
        if not 0 <= i < self.count:
            raise InputError(f"SparseCache.get: example {i} is outside 0..{self.count - 1}")
        examples = self.read_chunk(i // self.chunk)
        if examples is None:
            raise InputError(f"SparseCache: example {i} (chunk {i // self.chunk}) is not stored in {self.root}; "
                             "ask the teacher for the missing chunks first")
        return examples[i % self.chunk]

    def all(self) -> list[Example]:
        """Every example, in order. Raises InputError when a chunk is missing."""
        return [self.get(i) for i in range(self.count)]

    def bytes_per_token(self) -> float:
        """Stored bytes of the top-k part (ids + log-probabilities) per response token that carries one."""
        self.missing_chunks()  # summarizes the chunks stored by an earlier job
        tokens = sum(s.top_tokens for s in self.summaries.values())
        return sum(s.top_bytes for s in self.summaries.values()) / tokens if tokens else 0.0

    def stats(self) -> dict[str, Any]:
        """Counts and sizes of what is stored, for the manifest and report."""
        missing = self.missing_chunks()
        done = self.summaries.values()
        return {"examples": sum(s.examples for s in done), "of": self.count, "chunks": self.n_chunks,
                "missing_chunks": len(missing), "k": self.k, "id_dtype": self.ids.name,
                "logprob_dtype": np.dtype(LOGPROB_DTYPE).name,
                "response_tokens": sum(s.response_tokens for s in done),
                "top_tokens": sum(s.top_tokens for s in done),
                "bytes_on_disk": sum(s.file_bytes for s in done), "bytes_per_token": self.bytes_per_token()}


def summarize(arrays: dict[str, np.ndarray], file_bytes: int) -> ChunkSummary:
    lengths, starts = arrays["lengths"].astype(np.int64), arrays["response_start"].astype(np.int64)
    return ChunkSummary(examples=len(lengths), response_tokens=int((lengths - starts).sum()),
                        top_tokens=int(arrays["top_ids"].shape[0]),
                        top_bytes=int(arrays["top_ids"].nbytes + arrays["top_logprobs"].nbytes),
                        file_bytes=file_bytes)


def check_targets(t: SequenceTargets, k: int, vocab_size: int) -> None:
    """Raise InputError unless ``t`` fits a store of top-k width ``k`` over ``vocab_size`` ids."""
    ids, r = np.asarray(t.input_ids), t.response_length
    if ids.ndim != 1 or not 1 <= t.response_start <= len(ids):
        raise InputError(f"SparseCache.put: response_start {t.response_start} must lie in 1..{len(ids)} "
                         "(the prompt has at least one token)")
    if len(ids) and (ids.min() < 0 or ids.max() >= vocab_size):
        raise InputError(f"SparseCache.put: input_ids must lie in 0..{vocab_size - 1}")
    if t.aligned is not None and np.asarray(t.aligned).shape != (r,):
        raise InputError(f"SparseCache.put: aligned has shape {np.shape(t.aligned)}; expected ({r},)")
    if (t.top_ids is None) != (t.top_logprobs is None):
        raise InputError("SparseCache.put: give top_ids and top_logprobs together, or neither")
    if t.top_ids is None or t.top_logprobs is None:
        return
    top, lp = np.asarray(t.top_ids), np.asarray(t.top_logprobs)
    if top.shape != lp.shape or top.ndim != 2 or top.shape[0] != r or top.shape[1] > k:
        raise InputError(f"SparseCache.put: top_ids {top.shape} / top_logprobs {lp.shape} must both be "
                         f"({r}, ≤{k}): one row of at most k = {k} entries per response token")
    if top.size and (top.min() < -1 or top.max() >= vocab_size):
        raise InputError(f"SparseCache.put: top_ids must lie in 0..{vocab_size - 1}, or be -1 for padding")
    if not np.all(np.isfinite(lp) | ((top == -1) & (lp == -np.inf))):
        raise InputError("SparseCache.put: top_logprobs must be finite, or -inf exactly where top_ids is -1")


def padded_top(t: SequenceTargets, k: int) -> tuple[np.ndarray, np.ndarray]:
    """``t``'s top-k (R, k), rows narrower than k padded with id -1 / logprob -inf."""
    top, lp = np.asarray(t.top_ids, dtype=np.int64), np.asarray(t.top_logprobs, dtype=np.float32)
    width = k - top.shape[1]
    return (np.pad(top, ((0, 0), (0, width)), constant_values=-1),
            np.pad(lp, ((0, 0), (0, width)), constant_values=-np.inf))


def encode_chunk(generations: list[Generation], targets: list[SequenceTargets], k: int, vocab_size: int,
                 ids: np.dtype[Any]) -> dict[str, np.ndarray]:
    """One chunk's arrays: the sequences concatenated, with per-example lengths and flags to split them again."""
    for t in targets:
        check_targets(t, k, vocab_size)
    with_top = [t for t in targets if t.top_ids is not None]
    tops = [padded_top(t, k) for t in with_top]
    top_ids = np.concatenate([a for a, _ in tops]) if tops else np.zeros((0, k), np.int64)
    top_lp = np.concatenate([b for _, b in tops]) if tops else np.zeros((0, k), np.float32)
    if ids == np.uint16:
        top_ids = np.where(top_ids < 0, UINT16_PAD, top_ids)
    aligned = [np.asarray(t.aligned, dtype=bool) for t in targets if t.aligned is not None]
    doc = json.dumps([g.as_json() for g in generations], ensure_ascii=False).encode("utf-8")
    return {
        "generations": np.frombuffer(doc, dtype=np.uint8),
        "input_ids": np.concatenate([np.asarray(t.input_ids, np.int64) for t in targets]).astype(ids),
        "lengths": np.array([len(t.input_ids) for t in targets], np.int32),
        "response_start": np.array([t.response_start for t in targets], np.int32),
        "has_top": np.array([t.top_ids is not None for t in targets], bool),
        "has_aligned": np.array([t.aligned is not None for t in targets], bool),
        "top_ids": top_ids.astype(ids), "top_logprobs": top_lp.astype(LOGPROB_DTYPE),
        "aligned": np.concatenate(aligned) if aligned else np.zeros(0, bool),
    }


def check_chunk(a: dict[str, np.ndarray], n: int, k: int, ids: np.dtype[Any]) -> None:
    """Raise InputError unless the arrays are one whole chunk of ``n`` examples as this store writes them."""
    lengths, starts = a["lengths"].astype(np.int64), a["response_start"].astype(np.int64)
    r = lengths - starts
    if not (len(lengths) == len(starts) == len(a["has_top"]) == len(a["has_aligned"]) == n):
        raise InputError("chunk holds another number of examples")
    if a["input_ids"].dtype != ids or a["top_ids"].dtype != ids or a["top_logprobs"].dtype != LOGPROB_DTYPE:
        raise InputError("chunk has other dtypes than its store")
    if a["input_ids"].shape != (lengths.sum(),) or (r < 0).any() or (starts < 1).any():
        raise InputError("chunk's sequences do not add up")
    top_rows = int(r[a["has_top"]].sum())
    if a["top_ids"].shape != (top_rows, k) or a["top_logprobs"].shape != (top_rows, k):
        raise InputError("chunk's top-k does not add up")
    if a["aligned"].shape != (int(r[a["has_aligned"]].sum()),):
        raise InputError("chunk's aligned mask does not add up")


def decode_chunk(a: dict[str, np.ndarray], n: int, k: int, ids: np.dtype[Any]) -> list[Example]:
    """The examples of one chunk's arrays (checked first: raises InputError or a decoding error when damaged)."""
    check_chunk(a, n, k, ids)
    docs = json.loads(a["generations"].tobytes().decode("utf-8"))
    if not isinstance(docs, list) or len(docs) != n:
        raise InputError("chunk holds another number of generations")
    top_ids = a["top_ids"].astype(np.int64)
    if ids == np.uint16:
        top_ids[top_ids == UINT16_PAD] = -1
    top_lp = a["top_logprobs"].astype(np.float32)
    seq_at, top_at, aligned_at = np.cumsum(a["lengths"], dtype=np.int64), 0, 0
    examples = []
    for i, doc in enumerate(docs):
        end = int(seq_at[i])
        start, r = end - int(a["lengths"][i]), int(a["lengths"][i] - a["response_start"][i])
        t = SequenceTargets(input_ids=a["input_ids"][start:end].astype(np.int64),
                            response_start=int(a["response_start"][i]))
        if a["has_top"][i]:
            t.top_ids, t.top_logprobs = top_ids[top_at:top_at + r], top_lp[top_at:top_at + r]
            top_at += r
        if a["has_aligned"][i]:
            t.aligned = a["aligned"][aligned_at:aligned_at + r].copy()
            aligned_at += r
        examples.append((Generation.from_json(doc), t))
    return examples
