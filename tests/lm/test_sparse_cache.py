"""The sparse teacher cache: exact round trip, resume after a kill, damaged chunks relabelled, compact storage."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from edgedistill.errors import InputError
from edgedistill.lm.losses import sparse_kl, topk_logprobs
from edgedistill.lm.records import Candidate, Generation, SequenceTargets, TokenLogprob
from edgedistill.lm.sparse_cache import SparseCache

VOCAB, K = 400, 20


def example(i: int, k: int = K, vocab: int = VOCAB, with_top: bool = True) -> tuple[Generation, SequenceTargets]:
    """A generation with logprobs and its targets: a prompt of 3 + i % 4 tokens, a response of 2 + i % 5."""
    rng = np.random.default_rng(i)
    prompt_len, r = 3 + i % 4, 2 + i % 5
    ids = rng.integers(0, vocab, prompt_len + r)
    top = lp = aligned = None
    if with_top:
        logits = torch.from_numpy(rng.normal(size=(r, vocab)) * 3).float()
        top_t, lp_t = topk_logprobs(logits, k)
        top, lp = top_t.numpy(), lp_t.numpy()
        top[0, k - 2:], lp[0, k - 2:] = -1, -np.inf  # the first token listed k - 2 alternatives only
        aligned = rng.random(r) > 0.3
    tokens = [TokenLogprob(Candidate(f"t{j}", -0.5, bytes=(116, 48 + j)), (Candidate(f"t{j}", -0.5),
                                                                           Candidate("é", -1.25, token_id=7)))
              for j in range(r)]
    gen = Generation(prompt=f"prompt {i} ü", messages=None, response=f"answer {i}", tokens=tokens,
                     finish_reason="stop", usage={"prompt_tokens": prompt_len, "completion_tokens": r})
    return gen, SequenceTargets(input_ids=ids, response_start=prompt_len, top_ids=top, top_logprobs=lp,
                                aligned=aligned)


def fill(cache: SparseCache, chunks: list[int], **kw: object) -> dict[int, tuple[Generation, SequenceTargets]]:
    made: dict[int, tuple[Generation, SequenceTargets]] = {}
    for c in chunks:
        pairs = [example(i, **kw) for i in cache.rows(c)]  # type: ignore[arg-type]
        cache.put(c, [g for g, _ in pairs], [t for _, t in pairs])
        made.update(zip(cache.rows(c), pairs))
    return made


def open_cache(tmp_path: Path, count: int = 10, chunk: int = 4, k: int = K, vocab: int = VOCAB,
               **kw: bool) -> SparseCache:
    return SparseCache(tmp_path, "abc123", count, chunk, {"teacher": {"name": "t"}, "k": k, "vocab_size": vocab},
                       **kw)


def assert_same(got: tuple[Generation, SequenceTargets], want: tuple[Generation, SequenceTargets]) -> None:
    (g, t), (g0, t0) = got, want
    assert g.as_json() == g0.as_json()
    np.testing.assert_array_equal(t.input_ids, t0.input_ids)
    assert t.input_ids.dtype == np.int64 and t.response_start == t0.response_start
    if t0.top_ids is None:
        assert t.top_ids is None and t.top_logprobs is None and t.aligned is None
        return
    assert t.top_ids is not None and t.top_logprobs is not None and t0.top_logprobs is not None
    np.testing.assert_array_equal(t.top_ids, t0.top_ids)  # -1 padding restored from uint16
    pad = t0.top_ids == -1
    assert np.isneginf(t.top_logprobs[pad]).all()
    # float16 rounds a log-probability l by at most |l| * 2^-11
    np.testing.assert_array_less(np.abs(t.top_logprobs[~pad] - t0.top_logprobs[~pad]),
                                 np.abs(t0.top_logprobs[~pad]) * 2.0**-11 + 1e-7)
    np.testing.assert_array_equal(t.aligned, t0.aligned)


def test_round_trip_of_every_example(tmp_path: Path) -> None:
    cache = open_cache(tmp_path)
    assert cache.missing_chunks() == [0, 1, 2]
    made = fill(cache, [0, 1, 2])
    assert cache.missing_chunks() == []
    reopened = open_cache(tmp_path)
    for i, got in enumerate(reopened.all()):
        assert_same(got, made[i])
    assert (tmp_path / "lm-abc123" / "meta.json").is_file()


def test_text_only_examples_and_narrow_rows(tmp_path: Path) -> None:
    cache = open_cache(tmp_path, count=3, chunk=3)
    pairs = [example(0, with_top=False), example(1, k=5), example(2)]  # k = 5 rows are padded to 20
    cache.put(0, [g for g, _ in pairs], [t for _, t in pairs])
    (_, t0), (_, t1), _ = open_cache(tmp_path, count=3, chunk=3).all()
    assert t0.top_ids is None
    assert t1.top_ids is not None and t1.top_ids.shape == (t1.response_length, K)
    assert (t1.top_ids[:, 5:] == -1).all() and pairs[1][1].top_ids is not None
    np.testing.assert_array_equal(t1.top_ids[:, :5], pairs[1][1].top_ids)


def test_resume_asks_only_for_missing_chunks_and_ignores_a_killed_write(tmp_path: Path) -> None:
    made = fill(open_cache(tmp_path), [0, 2])
    chunks = tmp_path / "lm-abc123" / "chunks"
    (chunks / ".000001.npz.x1y2.tmp").write_bytes(b"half a chunk")  # a job killed mid-write leaves this
    cache = open_cache(tmp_path)
    assert cache.missing_chunks() == [1]
    with pytest.raises(InputError, match="chunk 1"):
        cache.get(5)
    assert_same(cache.get(9), made[9])


@pytest.mark.parametrize("damage", ["truncate", "overwrite"])
def test_a_damaged_chunk_is_treated_as_missing_and_relabelled(tmp_path: Path, damage: str) -> None:
    fill(open_cache(tmp_path), [0, 1, 2])
    path = tmp_path / "lm-abc123" / "chunks" / "000001.npz"
    data = bytearray(path.read_bytes())
    if damage == "truncate":
        path.write_bytes(bytes(data[: len(data) // 2]))
    else:  # bytes flipped inside the top-k data: the zip CRC catches it
        middle = len(data) // 2
        data[middle:middle + 16] = bytes(255 - b for b in data[middle:middle + 16])
        path.write_bytes(bytes(data))
    cache = open_cache(tmp_path)
    assert cache.missing_chunks() == [1]
    assert not path.exists()
    made = fill(cache, [1])
    assert cache.missing_chunks() == []
    assert_same(open_cache(tmp_path).get(4), made[4])


def test_other_meta_or_refresh_starts_over(tmp_path: Path) -> None:
    fill(open_cache(tmp_path), [0, 1, 2])
    assert open_cache(tmp_path).missing_chunks() == []
    assert open_cache(tmp_path, refresh=True).missing_chunks() == [0, 1, 2]
    fill(open_cache(tmp_path), [0])
    assert open_cache(tmp_path, k=10).missing_chunks() == [0, 1, 2]  # another k: the old chunks are dropped


@pytest.mark.parametrize(("vocab", "expected"), [(VOCAB, 20 * (2 + 2)), (100_000, 20 * (4 + 2))])
def test_bytes_per_token_at_k20(tmp_path: Path, vocab: int, expected: int) -> None:
    cache = open_cache(tmp_path, vocab=vocab)
    fill(cache, [0, 1, 2], vocab=vocab)
    assert cache.bytes_per_token() == expected
    assert open_cache(tmp_path, vocab=vocab).bytes_per_token() <= 400
    stats = open_cache(tmp_path, vocab=vocab).stats()
    assert stats["examples"] == 10 and stats["missing_chunks"] == 0
    assert stats["id_dtype"] == ("uint16" if vocab < 65536 else "int32")
    assert stats["top_tokens"] == stats["response_tokens"] == sum(2 + i % 5 for i in range(10))
    assert stats["bytes_on_disk"] > stats["top_tokens"] * expected


def test_float16_logprobs_change_the_sparse_kl_by_little(tmp_path: Path) -> None:
    cache = open_cache(tmp_path)
    made = fill(cache, [0, 1, 2])
    rng = np.random.default_rng(0)
    for i in range(10):
        t0, (_, t) = made[i][1], cache.get(i)
        student = torch.from_numpy(rng.normal(size=(t0.response_length, VOCAB)) * 3).float()
        mask = torch.ones(t0.response_length)
        exact = sparse_kl(student, torch.from_numpy(t0.top_ids), torch.from_numpy(t0.top_logprobs), mask).item()
        stored = sparse_kl(student, torch.from_numpy(t.top_ids), torch.from_numpy(t.top_logprobs), mask).item()
        assert stored == pytest.approx(exact, rel=1e-3)  # ≤ 3e-4 seen


def test_put_refuses_what_does_not_fit_and_stores_nothing(tmp_path: Path) -> None:
    cache = open_cache(tmp_path)
    pairs = [example(i) for i in range(4)]
    gens, targets = [g for g, _ in pairs], [t for _, t in pairs]
    with pytest.raises(InputError, match="holds 4 examples"):
        cache.put(0, gens[:3], targets[:3])
    wide = example(0, k=K + 1)[1]
    with pytest.raises(InputError, match="at most k"):
        cache.put(0, gens, [wide, *targets[1:]])
    bad_id = example(0)[1]
    bad_id.input_ids = bad_id.input_ids.copy()
    bad_id.input_ids[0] = VOCAB
    with pytest.raises(InputError, match="input_ids"):
        cache.put(0, gens, [bad_id, *targets[1:]])
    with pytest.raises(InputError, match="outside"):
        cache.put(3, gens, targets)
    assert cache.missing_chunks() == [0, 1, 2]
    with pytest.raises(InputError, match="vocab_size"):
        SparseCache(tmp_path, "x", 1, 1, {"k": 20})
