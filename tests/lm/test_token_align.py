"""Token bytes and teacher-to-student token alignment, on tiny tokenizers built in the test.

Expected alignments are worked out by hand from the tokenizations printed in the comments."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from support.tiny_lm import make_tiny_tokenizer
from support.tiny_models import write_tokenizer
from support.tiny_spm_tokenizer import make_tiny_spm_tokenizer

from edgedistill.errors import InputError
from edgedistill.lm.records import Candidate, Generation, SequenceTargets, TokenLogprob
from edgedistill.lm.token_align import (
    aligned_fraction,
    byte_spans,
    check_token_ids,
    relation_line,
    targets_from_generation,
    targets_from_ids,
    vocab_relation,
)
from edgedistill.lm.token_bytes import bytes_to_id, bytes_to_unicode, token_bytes, tokenizer_style

PROMPT = "<|im_start|>user\nWho?<|im_end|>\n<|im_start|>assistant\n"


@pytest.fixture(scope="module")
def dirs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("tokenizers")


@pytest.fixture(scope="module")
def tok400(dirs: Path) -> Any:
    return make_tiny_tokenizer(dirs / "t400", vocab_size=400)


@pytest.fixture(scope="module")
def tok300(dirs: Path) -> Any:
    return make_tiny_tokenizer(dirs / "t300", vocab_size=300)


@pytest.fixture(scope="module")
def spm() -> Any:
    return make_tiny_spm_tokenizer()


def ids_of(tok: Any, pieces: list[str]) -> list[int]:
    ids = tok.convert_tokens_to_ids(pieces)
    assert tok.unk_token_id not in ids, pieces
    return ids


def text_token(text: str, logprob: float, alternatives: tuple[tuple[str, float], ...] = ()) -> TokenLogprob:
    """A token as an OpenAI-compatible API gives it: text only, the chosen one listed first among the top."""
    chosen = Candidate(text, logprob)
    return TokenLogprob(chosen, (chosen, *(Candidate(t, lp) for t, lp in alternatives)))


def teacher_rows(t: SequenceTargets) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``top_ids``, ``top_logprobs`` and ``aligned``, which targets with teacher logprobs must carry."""
    assert t.top_ids is not None and t.top_logprobs is not None and t.aligned is not None
    return t.top_ids, t.top_logprobs, t.aligned


def tokens_of(tok: Any, text: str) -> list[TokenLogprob]:
    """A teacher's tokens from a real tokenizer: text from its own decoder, no ids, logprob -0.5 each."""
    return [text_token(tok.decode([i]), -0.5) for i in tok(text, add_special_tokens=False).input_ids]


# ----- token bytes ---------------------------------------------------------------------------------------------

def test_bytes_to_unicode_is_gpt2s_map() -> None:
    from transformers.convert_slow_tokenizer import bytes_to_unicode as reference

    assert bytes_to_unicode() == reference()


@pytest.mark.parametrize("text", ["héllo 😀 dog", "What is the capital of France? Paris.", "def f(x):\n    return 1\n"])
def test_byte_level_token_bytes_spell_the_text(tok400: Any, text: str) -> None:
    table = token_bytes(tok400)
    ids = tok400(text, add_special_tokens=False).input_ids
    assert b"".join(table[i] for i in ids) == text.encode("utf-8")
    for i in ids:  # every whole-character token agrees with the tokenizer's own decoder
        if table[i].decode("utf-8", errors="replace") == tok400.decode([i]):
            continue
        assert "\ufffd" in tok400.decode([i])
    assert tokenizer_style(tok400) == "byte_level"
    assert table[tok400.convert_tokens_to_ids("Ġdog")] == b" dog"
    assert table[tok400.convert_tokens_to_ids("Ã")] == b"\xc3"
    assert [table[i] for i in tok400.all_special_ids] == [None] * 3


def test_sentencepiece_token_bytes(spm: Any) -> None:
    table = token_bytes(spm)
    text = "héllo 😀 the dog"
    ids = spm(text, add_special_tokens=False).input_ids
    assert b"".join(table[i] for i in ids) == b" " + text.encode("utf-8")  # the prepended space
    assert spm.decode(ids) == text
    assert tokenizer_style(spm) == "sentencepiece"
    assert table[spm.convert_tokens_to_ids("<0xF0>")] == b"\xf0"
    assert table[spm.convert_tokens_to_ids("\u2581dog")] == b" dog"
    assert table[spm.eos_token_id] is None and table[spm.bos_token_id] is None


def test_wordpiece_token_bytes(dirs: Path) -> None:
    (dirs / "bert").mkdir()
    bert = write_tokenizer(dirs / "bert", "bert")
    table = token_bytes(bert)
    assert tokenizer_style(bert) == "wordpiece"
    assert table[bert.convert_tokens_to_ids("##s")] == b"s"
    assert table[bert.convert_tokens_to_ids("dog")] == b"dog"
    assert table[bert.cls_token_id] is None


def test_bytes_to_id_inverts_token_bytes_and_is_cached(tok400: Any) -> None:
    table, lookup = token_bytes(tok400), bytes_to_id(tok400)
    assert all(table[i] == raw for raw, i in lookup.items())
    assert len(lookup) == sum(raw is not None for raw in table) == 397
    assert bytes_to_id(tok400) is lookup and token_bytes(tok400) is table


def test_token_bytes_follow_added_tokens(dirs: Path) -> None:
    tok = make_tiny_tokenizer(dirs / "added", vocab_size=300)
    before = token_bytes(tok)
    tok.add_tokens(["<think>"])
    tok.add_special_tokens({"additional_special_tokens": ["<|tool|>"]})
    after = token_bytes(tok)
    assert len(before) == 300 and after[300] == b"<think>" and after[301] is None
    assert bytes_to_id(tok)[b"<think>"] == 300


# ----- vocabulary relation -------------------------------------------------------------------------------------

def test_vocab_relation(tok400: Any, tok300: Any, dirs: Path) -> None:
    from transformers import AutoTokenizer

    again = AutoTokenizer.from_pretrained(dirs / "t400")
    assert vocab_relation(tok400, again, 400, 400) == "same"
    assert vocab_relation(tok400, again, 400, 512) == "padded"  # padding rows, as Qwen's 151,936 vs 152,064
    assert "padding" in relation_line("padded", 400, 512)
    assert vocab_relation(tok400, tok300, 400, 300) == "different"
    assert vocab_relation(tok400, None, 400, 400) == "same"
    assert vocab_relation(tok400, None, 400, 448) == "padded"
    assert vocab_relation(tok400, None, 400, None) == "different"  # a black-box teacher: align by bytes
    with pytest.raises(InputError, match="cannot share a vocabulary"):
        vocab_relation(tok400, None, 400, 300)


# ----- same tokenizer ------------------------------------------------------------------------------------------

def test_targets_from_ids_sorts_and_pads() -> None:
    t = targets_from_ids([5, 6], [7, 8], top_ids=[[3, 7, -1], [8, 9, 4]],
                         top_logprobs=[[-2.0, -0.1, 0.0], [-0.2, -3.0, -1.0]])
    top, lps, aligned = teacher_rows(t)
    assert t.input_ids.tolist() == [5, 6, 7, 8] and t.response_start == 2
    assert top.tolist() == [[7, 3, -1], [8, 4, 9]]
    np.testing.assert_array_equal(lps, np.array([[-0.1, -2.0, -np.inf], [-0.2, -1.0, -3.0]], np.float32))
    assert aligned.tolist() == [True, True]
    with pytest.raises(InputError, match="response tokens"):
        targets_from_ids([5], [7, 8], top_ids=[[1]], top_logprobs=[[0.0]])
    with pytest.raises(InputError, match="prompt holds no tokens"):
        targets_from_ids([], [7])


def test_same_tokenizer_uses_the_teachers_ids(tok400: Any) -> None:
    # The teacher spelled " dog" as Ġd o g (not the tokenizer's Ġdog): its ids are kept, as it conditioned on them.
    pieces = ["th", "e", "Ġd", "o", "g"]
    ids = ids_of(tok400, pieces)
    alt = ids_of(tok400, ["Ġcat", "Ġis"])
    tokens = [TokenLogprob(Candidate(tok400.decode([i]), -0.25, token_id=i),
                           (Candidate("x", -3.0, token_id=alt[1]), Candidate(tok400.decode([i]), -0.25, token_id=i),
                            Candidate(" cat", -1.5, token_id=alt[0])))
              for i in ids]
    gen = Generation(None, [{"role": "user", "content": "Who?"}], "the dog", tokens, finish_reason="length")
    t = targets_from_generation(tok400, PROMPT, gen, k=4)
    top, lps, aligned = teacher_rows(t)
    prompt_ids = tok400(PROMPT, add_special_tokens=False).input_ids
    assert t.input_ids.tolist() == prompt_ids + ids and t.response_start == len(prompt_ids)
    assert aligned.tolist() == [True] * 5
    for row, i in zip(top.tolist(), ids):
        assert row == [i, alt[0], alt[1], -1]
    np.testing.assert_array_equal(lps[0], np.array([-0.25, -1.5, -3.0, -np.inf], np.float32))


def test_same_tokenizer_from_text_aligns_everywhere(tok400: Any) -> None:
    text = "héllo 😀 the dog is running"
    # a partial character decodes to "\ufffd": the API gives the bytes as well, as OpenAI does
    table = token_bytes(tok400)
    ids = tok400(text, add_special_tokens=False).input_ids
    texts = [t.chosen.text for t in tokens_of(tok400, text)]
    tokens = [TokenLogprob(Candidate(piece, -0.5, tuple(table[i]))) for piece, i in zip(texts, ids)]
    gen = Generation("Q", None, text, tokens, finish_reason="length")
    t = targets_from_generation(tok400, "Q:", gen, k=2)
    top, lps, aligned = teacher_rows(t)
    assert t.input_ids[t.response_start:].tolist() == ids
    assert aligned.all() and top[:, 0].tolist() == ids and (top[:, 1] == -1).all()


# ----- different tokenizers ------------------------------------------------------------------------------------

def test_different_tokenizer_aligns_identical_byte_spans(tok400: Any, tok300: Any) -> None:
    # student: th(0,2) e(2,3) Ġdog(3,7) Ġis(7,10) Ġrun(10,14) ning(14,18)
    # teacher: th(0,2) e(2,3) Ġd(3,5) o(5,6) g(6,7) Ġ(7,8) is(8,10) Ġrun(10,14) n(14,15) ing(15,18)
    text = "the dog is running"
    assert tok300.convert_ids_to_tokens(tok300(text, add_special_tokens=False).input_ids) == \
        ["th", "e", "Ġd", "o", "g", "Ġ", "is", "Ġrun", "n", "ing"]
    gen = Generation("Q", None, text, tokens_of(tok300, text), finish_reason="length")
    t = targets_from_generation(tok400, "Q:", gen, k=3)
    top, lps, aligned = teacher_rows(t)
    assert t.input_ids[t.response_start:].tolist() == ids_of(tok400, ["th", "e", "Ġdog", "Ġis", "Ġrun", "ning"])
    assert aligned.tolist() == [True, True, False, False, True, False]
    assert top[:, 0].tolist() == ids_of(tok400, ["th", "e"]) + [-1, -1] + ids_of(tok400, ["Ġrun"]) + [-1]
    assert aligned_fraction([t]) == pytest.approx(3 / 6)


def test_candidates_map_by_bytes_and_the_rest_is_dropped(tok400: Any) -> None:
    # teacher: "the"(0,3) " dog"(3,7) " is"(7,10) " run"(10,14) "ning"(14,18); student as above
    tokens = [text_token("the", -0.1), text_token(" dog", -0.2, ((" zebra", -1.0), (" cat", -2.0), (" c", -3.0))),
              text_token(" is", -0.3), text_token(" run", -0.4), text_token("ning", -0.5, (("ning", -4.0),))]
    gen = Generation("Q", None, "the dog is running", tokens, finish_reason="length")
    assert b" zebra" not in bytes_to_id(tok400)
    t = targets_from_generation(tok400, "Q:", gen, k=3)
    top, lps, aligned = teacher_rows(t)
    assert aligned.tolist() == [False, False, True, True, True, True]
    assert top[2].tolist() == ids_of(tok400, ["Ġdog", "Ġcat", "Ġc"])  # " zebra" is no student token
    np.testing.assert_allclose(lps[2], [-0.2, -2.0, -3.0])
    assert top[5].tolist() == [ids_of(tok400, ["ning"])[0], -1, -1]  # the same token twice: mass adds
    assert lps[5, 0] == pytest.approx(np.logaddexp(-0.5, -4.0))
    assert (top[:2] == -1).all() and np.isneginf(lps[:2]).all()


def test_multibyte_characters_split_across_tokens(tok400: Any) -> None:
    # student: h Ã © l l o Ġ ð Ł ĺ Ģ Ġdog  (é and 😀 are split into their bytes)
    text = "héllo 😀 dog"
    whole = [text_token("h", -0.1), text_token("é", -0.2), text_token("llo", -0.3), text_token(" ", -0.4),
             text_token("😀", -0.5, (("😃", -1.5),)), text_token(" dog", -0.6)]
    t = targets_from_generation(tok400, "Q:", Generation("Q", None, text, whole), k=2)
    top, lps, aligned = teacher_rows(t)
    assert aligned.tolist() == [True, False, False, False, False, False, True, False, False, False, False, True]
    # the teacher split 😀 in two 2-byte tokens (bytes given, text not decodable): still no student token matches
    halves = [TokenLogprob(Candidate("\ufffd", -0.5, (0xF0, 0x9F))),
              TokenLogprob(Candidate("\ufffd", -0.1, (0x98, 0x80)))]
    split = whole[:4] + halves + whole[5:]
    t = targets_from_generation(tok400, "Q:", Generation("Q", None, text, split), k=2)
    top, lps, aligned = teacher_rows(t)
    assert aligned.tolist() == [True, False, False, False, False, False, True, False, False, False, False, True]
    # byte for byte (bytes given): each byte token aligns and maps to the student's byte token
    per_byte = [TokenLogprob(Candidate("\ufffd", -0.5, (b,))) for b in "😀".encode()]
    t = targets_from_generation(tok400, "Q:", Generation("Q", None, text, whole[:4] + per_byte + whole[5:]), k=2)
    top, lps, aligned = teacher_rows(t)
    assert aligned[7:11].all() and top[7:11, 0].tolist() == ids_of(tok400, ["ð", "Ł", "ĺ", "Ģ"])


def test_text_that_does_not_spell_the_response_aligns_what_matches(tok400: Any) -> None:
    # llama.cpp gives bytes null: partial characters come as "\ufffd", so the teacher's bytes miss é and 😀;
    # the runs that do match (h, "llo ", " dog") still align
    text = "héllo 😀 dog"
    pieces = ["h", "\ufffd", "\ufffd", "l", "l", "o", " ", "\ufffd", "\ufffd", "\ufffd", "\ufffd", " dog"]
    gen = Generation("Q", None, text, [text_token(p, -0.5) for p in pieces])
    t = targets_from_generation(tok400, "Q:", gen, k=1)
    top, lps, aligned = teacher_rows(t)
    assert aligned.tolist() == [True, False, False, True, True, True, True, False, False, False, False, True]
    assert top[3:7, 0].tolist() == ids_of(tok400, ["l", "l", "o", "Ġ"])


def test_sentencepiece_student_with_a_byte_level_teacher(spm: Any, tok400: Any) -> None:
    # student: ▁h(0,1: its space is prepended, no text) <0xC3> <0xA9> l lo(4,6) ▁ <0xF0> <0x9F> <0x98> <0x80> ▁dog
    # teacher: h Ã © l l o Ġ ð Ł ĺ Ģ Ġdog
    text = "héllo 😀 dog"
    table = token_bytes(tok400)
    teacher_ids = tok400(text, add_special_tokens=False).input_ids
    tokens = [TokenLogprob(Candidate(tok400.decode([i]), -0.5, tuple(table[i]))) for i in teacher_ids]
    tokens[0] = TokenLogprob(Candidate("h", -0.5), (Candidate("h", -0.5), Candidate("the", -2.0)))
    t = targets_from_generation(spm, "Q:", Generation("Q", None, text, tokens, finish_reason="stop"), k=2)
    top, lps, aligned = teacher_rows(t)
    student = ["\u2581h", "<0xC3>", "<0xA9>", "l", "lo", "\u2581", "<0xF0>", "<0x9F>", "<0x98>", "<0x80>", "\u2581dog"]
    assert t.input_ids[t.response_start:].tolist() == ids_of(spm, student) + [spm.eos_token_id]
    assert aligned.tolist() == [True, True, True, True, False, True, True, True, True, True, True, False]
    # at the first token the student's word-initial pieces stand for the teacher's: "h" -> ▁h, "the" -> ▁the
    assert top[0].tolist() == ids_of(spm, ["\u2581h", "\u2581the"])
    assert top[1, 0] == spm.convert_tokens_to_ids("<0xC3>")


def test_teacher_ids_of_another_tokenizer_are_not_trusted(spm: Any, tok400: Any) -> None:
    text = "the dog"
    table = token_bytes(spm)
    ids = spm(text, add_special_tokens=False).input_ids  # ▁the ▁dog: ids in spm's vocabulary, not tok400's
    tokens = [TokenLogprob(Candidate(p.decode(), -0.5, tuple(p), token_id=i)) for i, p in
              zip(ids, [b"the", b" dog"])]
    assert [table[i] for i in ids] == [b" the", b" dog"]
    t = targets_from_generation(tok400, "Q:", Generation("Q", None, text, tokens), k=1)
    top, lps, aligned = teacher_rows(t)
    # tok400: th(0,2) e(2,3) Ġdog(3,7)
    assert t.input_ids[t.response_start:].tolist() == ids_of(tok400, ["th", "e", "Ġdog"])
    assert aligned.tolist() == [False, False, True] and top[2, 0] == tok400.convert_tokens_to_ids("Ġdog")


# ----- end of sequence -----------------------------------------------------------------------------------------

def test_eos_is_appended_only_when_the_teacher_stopped(tok400: Any) -> None:
    eos = tok400.eos_token_id
    tokens = tokens_of(tok400, "the dog")
    stopped = targets_from_generation(tok400, "Q:", Generation("Q", None, "the dog", tokens, "stop"), k=2)
    stopped_top, _, stopped_aligned = teacher_rows(stopped)
    cut = targets_from_generation(tok400, "Q:", Generation("Q", None, "the dog", tokens, "length"), k=2)
    assert stopped.input_ids[-1] == eos and stopped.response_length == cut.response_length + 1
    assert stopped_aligned.tolist() == [True, True, True, False] and (stopped_top[-1] == -1).all()
    text_only = targets_from_generation(tok400, "Q:", Generation("Q", None, "the dog", None, "stop"), k=2)
    assert text_only.input_ids.tolist() == stopped.input_ids.tolist() and text_only.top_ids is None
    other = targets_from_generation(tok400, "Q:", Generation("Q", None, "the dog", None, "stop"), k=2, eos_id=0)
    assert other.input_ids[-1] == 0


def test_teacher_eos_token_is_kept_with_its_distribution(tok400: Any) -> None:
    eos = tok400.eos_token_id
    ids = tok400("the dog", add_special_tokens=False).input_ids + [eos]
    tokens = [TokenLogprob(Candidate(tok400.decode([i]), -0.5, token_id=i)) for i in ids[:-1]]
    dot = tok400.convert_tokens_to_ids(".")
    tokens.append(TokenLogprob(Candidate("", -0.05, token_id=eos), (Candidate("", -0.05, token_id=eos),
                                                                     Candidate(".", -3.0, token_id=dot))))
    t = targets_from_generation(tok400, "Q:", Generation("Q", None, "the dog", tokens, "stop"), k=2)
    top, lps, aligned = teacher_rows(t)
    assert t.input_ids[t.response_start:].tolist() == ids and aligned.all()
    assert top[-1].tolist() == [eos, dot]


# ----- spans, fractions, vocabulary checks ---------------------------------------------------------------------

def test_byte_spans_by_hand() -> None:
    assert byte_spans([b"ab", b"", b"c"], b"abc") == ([(0, 2), None, (2, 3)], None)
    assert byte_spans([b" ab", b" c"], b"ab c") == ([(0, 2), (2, 4)], 0)  # SentencePiece's prepended space
    assert byte_spans([b" ", b" ab"], b" ab") == ([None, (0, 3)], None)
    assert byte_spans([b"ab", b"X", b"cd"], b"abYcd")[0] == [(0, 2), None, (3, 5)]


def test_aligned_fraction() -> None:
    ids = np.array([1, 2, 3])
    a = SequenceTargets(ids, 1, aligned=np.array([True, False]))
    b = SequenceTargets(ids, 0, aligned=np.array([True, True, True]))
    assert aligned_fraction([a, b, SequenceTargets(ids, 1)]) == pytest.approx(4 / 5)
    assert aligned_fraction([SequenceTargets(ids, 1)]) == 0.0


def test_check_token_ids() -> None:
    ok = targets_from_ids([1, 2], [3], top_ids=[[3, -1]], top_logprobs=[[-0.1, -math.inf]])
    check_token_ids(ok, 4, "recorded.jsonl")
    check_token_ids([ok, ok], 4, "recorded.jsonl")
    message = r"^recorded.jsonl: student vocabulary has 3 rows but the data holds token id 3; "
    with pytest.raises(InputError, match=message):
        check_token_ids([ok], 3, "recorded.jsonl")
    high_top = targets_from_ids([1], [2], top_ids=[[7]], top_logprobs=[[0.0]])
    with pytest.raises(InputError, match="token id 7"):
        check_token_ids(high_top, 4, "teacher")
