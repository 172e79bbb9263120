"""The teacher's answers, through the resumable sparse cache: prompts (from a file, a recording, or written by the
teacher: Magpie), each answered once and stored with its top-k log-probabilities in the student's tokens; real
text scored once by a white-box teacher. A run killed at any moment resumes without asking the teacher again."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from edgedistill.artifacts import atomic_write_text, sha256_json
from edgedistill.config import PipelineConfig
from edgedistill.data.corpus import texts_hash
from edgedistill.distill.distributed import SINGLE, World, chunks_to_fill, main_first, wait_until
from edgedistill.distill.label_store import store_key
from edgedistill.lm.magpie import magpie_prompts
from edgedistill.lm.prompts import load_prompts, prompt_text
from edgedistill.lm.records import Generation, SequenceTargets
from edgedistill.lm.sparse_cache import SparseCache
from edgedistill.lm.teacher_base import GenerationSettings, LMTeacher, Prompt
from edgedistill.lm.token_align import targets_from_generation
from edgedistill.progress import progress_bar

Answer = tuple[Generation, SequenceTargets]
TEXT_CHUNK = 32


def settings_of(config: PipelineConfig) -> GenerationSettings:
    g = config.teacher.generation
    return GenerationSettings(g.max_new_tokens, g.temperature, g.top_p, g.top_logprobs, config.distill.seed)


def tokenizer_identity(tokenizer: Any) -> str:
    return sha256_json(sorted(tokenizer.get_vocab().items()))[:16]


def gather_prompts(config: PipelineConfig, teacher: LMTeacher, cache_dir: Path, refresh: bool,
                   world: World = SINGLE) -> list[Prompt]:
    """The prompts to answer: the recording's own, a file's, or (Magpie) written by the teacher once and kept in
    the cache (under torchrun by rank 0, the other ranks then read them)."""
    source = config.data.prompts
    if source is None:
        return teacher.prompts()  # a recorded teacher's own
    if source.source != "magpie":
        return load_prompts(source)
    return main_first(world, lambda again: magpie_cached(config, teacher, cache_dir, again), refresh)


def magpie_cached(config: PipelineConfig, teacher: LMTeacher, cache_dir: Path, refresh: bool) -> list[Prompt]:
    source = config.data.prompts
    assert source is not None
    key = store_key(teacher.identity(), "magpie", {"prompts": source.model_dump(mode="json"),
                                                    "seed": config.distill.seed})
    path = cache_dir / f"magpie-{key}.jsonl"
    if path.is_file() and not refresh:
        return [Prompt(**json.loads(line)) for line in path.read_text(encoding="utf-8").splitlines()]
    with progress_bar("teacher writing prompts (magpie)", total=source.count, unit="prompts"):
        prompts = magpie_prompts(teacher, source, config.distill.seed)
    atomic_write_text(path, "".join(json.dumps(p.as_json()) + "\n" for p in prompts))
    return prompts


def split_prompts(prompts: list[Prompt], heldout: int, seed: int) -> tuple[list[Prompt], list[Prompt]]:
    """Seeded split: ``heldout`` prompts kept out of training (at most a quarter of them)."""
    n = min(heldout, len(prompts) // 4) if len(prompts) > 1 else 0
    order = np.random.default_rng([seed, 11]).permutation(len(prompts))
    return [prompts[i] for i in order[n:]], [prompts[i] for i in order[:n]]


def answer_chunk(teacher: LMTeacher, tokenizer: Any, prompts: list[Prompt],
                 settings: GenerationSettings) -> list[Answer]:
    """Answers to ``prompts`` in order, as student targets (white-box: exact ids; else aligned by bytes)."""
    from edgedistill.lm.whitebox import WhiteBoxLM

    answers: dict[int, Answer] = {}
    if isinstance(teacher, WhiteBoxLM):
        for i, generation, targets in teacher.answer(prompts, settings):
            answers[i] = (generation, targets)
    else:
        for i, generation in teacher.generate(prompts, settings):
            targets = targets_from_generation(tokenizer, prompt_text(tokenizer, prompts[i]), generation,
                                              settings.top_logprobs)
            answers[i] = (generation, targets)
    return [answers[i] for i in range(len(prompts))]


def fill_in_turn(cache: SparseCache, world: World, shared: bool, fill: Callable[[int], None], title: str,
                 unit: str) -> None:
    """Store the missing chunks, ``fill(c)`` each: under torchrun this rank's share of them (``shared``: a teacher
    in every process) or, for a remote teacher, all on rank 0; every rank returns once all are stored (polling
    the cache: see :func:`edgedistill.distill.distributed.wait_until`)."""
    mine = chunks_to_fill(world, cache.missing_chunks(), shared)
    world.barrier()  # every rank has looked at the stored chunks before any is written
    with progress_bar(title, total=sum(len(cache.rows(c)) for c in mine), unit=unit) as advance:
        for c in mine:
            fill(c)
            advance(len(cache.rows(c)))
    wait_until(world, lambda: not cache.missing_chunks())


def teacher_answers(config: PipelineConfig, teacher: LMTeacher, tokenizer: Any, prompts: list[Prompt],
                    cache_dir: Path, refresh: bool, world: World = SINGLE) -> tuple[list[Answer], SparseCache]:
    """Every prompt's answer, from the cache where stored; the rest asked for chunk by chunk (under torchrun:
    see :func:`fill_in_turn`; rank 0 sets the cache up, or clears it for ``refresh``)."""
    settings = settings_of(config)
    k = settings.top_logprobs if teacher.logprobs else 0
    inputs = {"generation": config.teacher.generation.model_dump(mode="json"), "seed": config.distill.seed,
              "tokenizer": tokenizer_identity(tokenizer)}
    key = store_key(teacher.identity(), sha256_json([p.as_json() for p in prompts]), inputs)
    chunk = config.teacher.generation.batch_size
    cache = main_first(world, lambda again: SparseCache(cache_dir, key, len(prompts), chunk,
                                                        {"k": k, "vocab_size": len(tokenizer), **inputs},
                                                        refresh=again), refresh)

    def fill(c: int) -> None:
        answered = answer_chunk(teacher, tokenizer, [prompts[i] for i in cache.rows(c)], settings)
        cache.put(c, [g for g, _ in answered], [t for _, t in answered])

    fill_in_turn(cache, world, teacher.white_box, fill, "teacher answering", "prompts")
    return [(e[0], e[1]) for e in cache.all()], cache


def text_targets(teacher: LMTeacher, texts: list[str], max_length: int, k: int, tokenizer: Any,
                 cache_dir: Path, refresh: bool, world: World = SINGLE) -> list[SequenceTargets]:
    """Real text scored by a white-box teacher (its top-k at every token), cached like the answers (chunks shared
    by the ranks under torchrun)."""
    key = store_key(teacher.identity(), texts_hash(texts), {"max_length": max_length, "k": k,
                                                            "tokenizer": tokenizer_identity(tokenizer)})
    meta = {"k": k, "vocab_size": len(tokenizer), "max_length": max_length}
    cache = main_first(world, lambda again: SparseCache(cache_dir, key, len(texts), TEXT_CHUNK, meta,
                                                        refresh=again), refresh)

    def fill(c: int) -> None:
        chunk = [texts[i] for i in cache.rows(c)]
        scored = teacher.score_texts(chunk, max_length, k)  # type: ignore[attr-defined]
        cache.put(c, [Generation(None, None, t) for t in chunk], scored)

    fill_in_turn(cache, world, True, fill, "teacher scoring text", "texts")
    return [e[1] for e in cache.all() if len(e[1].input_ids) > 1]
