"""Putting a teacher's answer into the student's tokens, whether or not the two share a tokenizer.

Same vocabulary: the teacher's token ids are the student's, so its top-k distribution at every response
position is used as is. Different tokenizers (an API teacher, another model family): both tokenizations are laid
over the response's UTF-8 bytes; where a student token covers exactly the byte span of one teacher token the
position is *aligned*, and each of the teacher's candidates that is exactly one student token (by bytes) keeps its
log-probability. Candidates that are no single student token are dropped, so their mass falls into the tail
bucket the loss adds. Positions that do not align get the sequence-level loss only (``aligned`` False); what
fraction aligned is reported (:func:`aligned_fraction`), never hidden.
"""

from __future__ import annotations

import difflib
import math
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from itertools import accumulate
from typing import Any

import numpy as np

from edgedistill.errors import InputError
from edgedistill.lm.records import Candidate, Generation, SequenceTargets, TokenLogprob
from edgedistill.lm.token_bytes import bytes_to_id, token_bytes

Span = tuple[int, int]  # [start, end) in the response's UTF-8 bytes
Block = tuple[int, int, int]  # (start in stream, start in text, length): a run of bytes both hold


def vocab_relation(student_tok: Any, teacher_tok: Any, student_rows: int, teacher_rows: int | None) -> str:
    """How the teacher's vocabulary relates to the student's: ``same``, ``padded`` or ``different``.

    ``same``: equal vocabularies (token -> id) and embedding rows; ``padded``: equal vocabularies but the row
    counts differ (padding rows past the tokenizer, as Qwen ships: 151,936 vs 152,064; the caller says so in one
    line, see :func:`relation_line`); ``different``: the tokenizers differ, so answers are aligned by bytes.
    ``teacher_tok`` None: the teacher is assumed to share the student's tokenizer when ``teacher_rows`` is known,
    and is treated as ``different`` (aligned by bytes) when it is not (a black-box teacher).
    Raises InputError when the teacher has no tokenizer and too few rows to share the student's vocabulary.
    """
    if teacher_tok is None:
        if teacher_rows is None:
            return "different"
        if teacher_rows == student_rows:
            return "same"
        if min(teacher_rows, student_rows) >= len(student_tok):
            return "padded"
        raise InputError(
            f"the teacher has {teacher_rows} embedding rows and no tokenizer, the student {student_rows} rows and a "
            f"tokenizer of {len(student_tok)} tokens: they cannot share a vocabulary; give the teacher's tokenizer")
    if student_tok.get_vocab() != teacher_tok.get_vocab():
        return "different"
    return "same" if teacher_rows in (None, student_rows) else "padded"


def relation_line(relation: str, student_rows: int, teacher_rows: int | None) -> str:
    """One line for the log saying how teacher and student tokens relate."""
    if relation == "padded":
        return (f"teacher and student share a tokenizer; embedding rows differ ({teacher_rows} vs {student_rows}): "
                "the extra rows are padding and are ignored")
    if relation == "same":
        return "teacher and student share a tokenizer: teacher distributions are used token for token"
    return "teacher and student tokenizers differ: teacher distributions are aligned to student tokens by bytes"


def targets_from_ids(prompt_ids: Sequence[int], response_ids: Sequence[int], top_ids: Any = None,
                     top_logprobs: Any = None) -> SequenceTargets:
    """Targets from ids already in the student's vocabulary (same tokenizer): every position is aligned.

    ``top_ids`` / ``top_logprobs``: (R, k) array-likes, the teacher's top-k per response token (id -1 pads);
    each row is sorted best first. Raises InputError when the shapes disagree or the prompt is empty."""
    prompt = _ids_array(prompt_ids, "prompt")
    response = np.asarray(response_ids, dtype=np.int64).reshape(-1)
    targets = SequenceTargets(np.concatenate([prompt, response]), len(prompt))
    if top_ids is None and top_logprobs is None:
        return targets
    ids = np.asarray(top_ids, dtype=np.int64)
    logprobs = np.asarray(top_logprobs, dtype=np.float32)
    if ids.ndim != 2 or ids.shape != logprobs.shape or len(ids) != len(response):
        raise InputError(f"teacher top-k ids {ids.shape} and log-probabilities {logprobs.shape} must both be "
                         f"(response tokens, k) with {len(response)} response tokens")
    logprobs = np.where(ids < 0, -np.inf, logprobs).astype(np.float32)
    order = np.argsort(-logprobs, axis=1, kind="stable")
    targets.top_ids = np.where(np.take_along_axis(logprobs, order, 1) == -np.inf, -1,
                               np.take_along_axis(ids, order, 1))
    targets.top_logprobs = np.take_along_axis(logprobs, order, 1)
    targets.aligned = np.ones(len(response), dtype=bool)
    return targets


def targets_from_generation(tokenizer: Any, prompt_text: str, generation: Generation, k: int,
                            eos_id: int | None = None) -> SequenceTargets:
    """A teacher's answer as student training targets.

    ``prompt_text``: the prompt, chat template already applied, tokenized without extra special tokens; the
    response follows, plus ``eos_id`` (default: the tokenizer's EOS) when the teacher stopped by itself
    (``finish_reason`` "stop"). With per-token logprobs, each response position gets the teacher's top ``k`` in
    student ids (sorted best first, padded with id -1 / -inf) where it aligns; the teacher's own ids are used
    directly when they are the student's (they reproduce the response byte for byte)."""
    prompt = _ids_array(_encode(tokenizer, prompt_text), "prompt")
    eos = tokenizer.eos_token_id if eos_id is None else eos_id
    stop = generation.finish_reason == "stop" and eos is not None
    if generation.tokens is None:
        response = _encode(tokenizer, generation.response) + ([eos] if stop else [])
        return SequenceTargets(np.concatenate([prompt, np.asarray(response, dtype=np.int64)]), len(prompt))
    if k < 1:
        raise InputError(f"top-k must be at least 1 to use the teacher's log-probabilities, got {k}")
    rows = _same_vocab_rows(tokenizer, generation)
    if rows is None:
        rows = _byte_aligned_rows(tokenizer, generation)
    response_ids, top, aligned = rows
    if stop and (not response_ids or response_ids[-1] != eos):
        response_ids, aligned = response_ids + [eos], aligned + [False]
        top.append([])
    top_ids, top_logprobs = _pad_rows(top, k)
    return SequenceTargets(np.concatenate([prompt, np.asarray(response_ids, dtype=np.int64)]), len(prompt),
                           top_ids, top_logprobs, np.asarray(aligned, dtype=bool))


def aligned_fraction(targets_list: Iterable[SequenceTargets]) -> float:
    """Share of response positions, over sequences that carry teacher distributions, whose distribution maps
    onto student tokens (0.0 when none carry any)."""
    masks = [t.aligned for t in targets_list if t.aligned is not None]
    total = sum(len(m) for m in masks)
    return float(sum(int(m.sum()) for m in masks) / total) if total else 0.0


def check_token_ids(targets: SequenceTargets | Iterable[SequenceTargets], vocab_rows: int, where: str) -> None:
    """Raise InputError when the data holds a token id the student's embedding cannot look up."""
    for t in [targets] if isinstance(targets, SequenceTargets) else targets:
        ids = t.input_ids if t.top_ids is None else np.concatenate([t.input_ids, t.top_ids[t.top_ids != -1]])
        bad = ids[(ids >= vocab_rows) | (ids < 0)]
        if bad.size:
            raise InputError(
                f"{where}: student vocabulary has {vocab_rows} rows but the data holds token id {int(bad[0])}; "
                "the data was tokenized with another tokenizer: re-tokenize it with the student's tokenizer "
                "or pick a student with this vocabulary")


# ----- tokenizing ----------------------------------------------------------------------------------------------

def _encode(tokenizer: Any, text: str) -> list[int]:
    if not text:
        return []
    return [int(i) for i in tokenizer(text, add_special_tokens=False)["input_ids"]]


def _ids_array(ids: Sequence[int], what: str) -> np.ndarray:
    array = np.asarray(ids, dtype=np.int64).reshape(-1)
    if not len(array):
        raise InputError(f"the {what} holds no tokens: the first response token needs at least one token before "
                         "it to be predicted from; give a prompt (or a BOS token)")
    return array


def _teacher_piece(c: Candidate) -> bytes:
    return bytes(c.bytes) if c.bytes is not None else c.text.encode("utf-8")


# ----- same vocabulary -----------------------------------------------------------------------------------------

Rows = tuple[list[int], list[list[tuple[int, float]]], list[bool]]  # response ids, top (id, logprob), aligned


def _same_vocab_rows(tokenizer: Any, generation: Generation) -> Rows | None:
    """The teacher's own ids when they are student ids that spell the response; None otherwise."""
    tokens = generation.tokens or []
    table = token_bytes(tokenizer)
    ids = [-1 if t.chosen.token_id is None else int(t.chosen.token_id) for t in tokens]
    if not tokens or any(not 0 <= i < len(table) for i in ids):
        return None
    pieces = [table[i] for i in ids]
    if any(t.chosen.bytes is not None and p is not None and bytes(t.chosen.bytes) != p
           for t, p in zip(tokens, pieces)):
        return None
    stream, text = b"".join(p or b"" for p in pieces), generation.response.encode("utf-8")
    if stream != text and not (stream[:1] == b" " and stream[1:] == text):
        return None
    lookup = bytes_to_id(tokenizer)
    top = [_map_candidates(t, lookup, None, table) for t in tokens]
    return ids, top, [True] * len(tokens)


# ----- different tokenizers: alignment by bytes ----------------------------------------------------------------

def _byte_aligned_rows(tokenizer: Any, generation: Generation) -> Rows:
    """Student tokens of the response; the teacher's distribution where a teacher token has the same byte span."""
    text = generation.response.encode("utf-8")
    ids = _encode(tokenizer, generation.response)
    table, lookup = token_bytes(tokenizer), bytes_to_id(tokenizer)
    student_spans, prefixed = byte_spans([table[i] if i < len(table) else None for i in ids], text)
    tokens = generation.tokens or []
    teacher_spans, _ = byte_spans([_teacher_piece(t.chosen) for t in tokens], text, strip_prefix=False)
    by_span = {s: j for j, s in enumerate(teacher_spans) if s is not None}
    top: list[list[tuple[int, float]]] = []
    aligned: list[bool] = []
    for i, span in enumerate(student_spans):
        j = by_span.get(span) if span is not None else None
        aligned.append(j is not None)
        top.append([] if j is None else _map_candidates(tokens[j], lookup, b" " if i == prefixed else None))
    return ids, top, aligned


def byte_spans(pieces: Sequence[bytes | None], text: bytes,
               strip_prefix: bool = True) -> tuple[list[Span | None], int | None]:
    """Where each token's bytes lie in ``text``; None for tokens that cover no bytes or fall where the tokens do
    not spell the text. Also returns the index of the token whose leading space is no text: the space a
    SentencePiece tokenizer prepends (``strip_prefix``), or None."""
    sizes = [len(p or b"") for p in pieces]
    ends = list(accumulate(sizes))
    stream = b"".join(p or b"" for p in pieces)
    if strip_prefix and stream != text and stream[:1] == b" " and stream[1:] == text:
        first = next(i for i, n in enumerate(sizes) if n)
        shifted = [_span(max(e - n - 1, 0), e - 1) for e, n in zip(ends, sizes)]
        return shifted, first if shifted[first] is not None else None
    blocks = [(0, 0, len(text))] if stream == text else _matching_blocks(stream, text)
    starts = [b[0] for b in blocks]
    spans: list[Span | None] = []
    for end, n in zip(ends, sizes):
        index = bisect_right(starts, end - n) - 1
        i, j, size = blocks[index] if index >= 0 else (0, 0, 0)
        spans.append(_span(end - n - i + j, end - i + j) if n and end <= i + size else None)
    return spans, None


def _span(start: int, end: int) -> Span | None:
    return (start, end) if end > start else None


def _matching_blocks(stream: bytes, text: bytes) -> list[Block]:
    """Runs of bytes the tokens' stream and the text share, in order (the longest first, as difflib finds them);
    the common head and tail are taken off first, so a local disagreement costs little."""
    head = 0
    while head < min(len(stream), len(text)) and stream[head] == text[head]:
        head += 1
    tail = 0
    while tail < min(len(stream), len(text)) - head and stream[-1 - tail] == text[-1 - tail]:
        tail += 1
    middle = difflib.SequenceMatcher(None, stream[head:len(stream) - tail], text[head:len(text) - tail],
                                     autojunk=False).get_matching_blocks()
    blocks = [(0, 0, head)] + [(a + head, b + head, n) for a, b, n in middle if n]
    blocks.append((len(stream) - tail, len(text) - tail, tail))
    return [b for b in blocks if b[2]]


# ----- candidates ----------------------------------------------------------------------------------------------

def _map_candidates(token: TokenLogprob, lookup: dict[bytes, int], prefix: bytes | None,
                    table: list[bytes | None] | None = None) -> list[tuple[int, float]]:
    """The teacher's candidates at one position as (student id, logprob), duplicates merged (their
    probabilities add). ``table``: the student's token bytes when the teacher's ids are the student's (candidates'
    own ids are then used, where their bytes agree); ``prefix``: try ``prefix + bytes`` first (the token that
    carries a SentencePiece leading space)."""
    candidates = list(token.top)
    if not any(_same_candidate(c, token.chosen) for c in candidates):
        candidates.append(token.chosen)
    merged: dict[int, float] = {}
    for c in candidates:
        sid = _student_id(c, lookup, prefix, table)
        if sid is not None and not math.isnan(c.logprob):
            merged[sid] = float(np.logaddexp(merged[sid], c.logprob)) if sid in merged else float(c.logprob)
    return sorted(merged.items(), key=lambda item: -item[1])


def _same_candidate(a: Candidate, b: Candidate) -> bool:
    if a.token_id is not None and b.token_id is not None:
        return a.token_id == b.token_id
    return _teacher_piece(a) == _teacher_piece(b)


def _student_id(c: Candidate, lookup: dict[bytes, int], prefix: bytes | None,
                table: list[bytes | None] | None) -> int | None:
    if table is not None and c.token_id is not None:
        if not 0 <= c.token_id < len(table):
            return None  # a padding row of the teacher's: no student token
        own = table[c.token_id]
        if c.bytes is None or own is None or own == bytes(c.bytes):
            return c.token_id
    piece = _teacher_piece(c)
    if prefix is not None and prefix + piece in lookup:
        return lookup[prefix + piece]
    return lookup.get(piece)


def _pad_rows(rows: list[list[tuple[int, float]]], k: int) -> tuple[np.ndarray, np.ndarray]:
    """(R, k) ids and logprobs from per-position candidate lists (best first), padded with -1 / -inf."""
    ids = np.full((len(rows), k), -1, dtype=np.int64)
    logprobs = np.full((len(rows), k), -np.inf, dtype=np.float32)
    for r, row in enumerate(rows):
        for c, (sid, lp) in enumerate(row[:k]):
            ids[r, c], logprobs[r, c] = sid, lp
    return ids, logprobs
