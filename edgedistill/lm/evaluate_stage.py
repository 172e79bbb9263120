"""The evaluate stage of a text-generation run: every model measured the same way, with the Task's metric set,
into ``out/metrics.json`` (the same document the report reads for every Task):

- ``perplexity`` of the held-out real text;
- ``top1_agreement`` and ``kl`` to the teacher under teacher forcing, on its held-out answers (full-vocabulary KL
  with a white-box teacher, else over its top-k plus a tail bucket);
- ``exact_match`` and ``rouge_l`` of greedy answers against the teacher's, on the held-out prompts;
- ``mc_acc`` / ``mc_acc_norm`` on the user's multiple-choice questions, when given.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from edgedistill.artifacts import Artifact, atomic_write_json
from edgedistill.config import PipelineConfig
from edgedistill.data.tables import jsonl_rows
from edgedistill.engines.size import model_file_mb
from edgedistill.errors import InputError
from edgedistill.lm.load import load_causal_lm
from edgedistill.lm.prompts import prompt_text
from edgedistill.lm.records import Generation, SequenceTargets
from edgedistill.lm.stage import HELDOUT, HELDOUT_ANSWERS, HELDOUT_TARGETS, NOTES, load_targets, with_token_targets
from edgedistill.lm.teacher_base import Prompt
from edgedistill.progress import console
from edgedistill.report.ledger import IDENTITY

METRICS = "metrics.json"


class HeldOut:
    """What the distill stage kept out of training: real text, and prompts with the teacher's answers."""

    def __init__(self, distill_dir: Path):
        self.texts = [t for t in (distill_dir / HELDOUT).read_text(encoding="utf-8").splitlines() if t.strip()]
        lines = (distill_dir / HELDOUT_ANSWERS).read_text(encoding="utf-8").splitlines()
        self.answers = [Generation.from_json(json.loads(line)) for line in lines]
        self.targets: list[SequenceTargets] = [with_token_targets(t) for t in load_targets(distill_dir /
                                                                                             HELDOUT_TARGETS)]
        notes = distill_dir / NOTES
        self.notes: list[str] = json.loads(notes.read_text()) if notes.is_file() else []


def mc_items(config: PipelineConfig) -> list[dict[str, Any]]:
    mc = config.data.mc
    if mc is None:
        return []
    items = []
    for number, row in enumerate(jsonl_rows(mc.path), 1):
        missing = [f for f in (mc.question, mc.choices, mc.answer) if f not in row]
        if missing:
            raise InputError(f"{mc.path}:{number}: no field '{missing[0]}' (fields: {', '.join(row)})")
        items.append({"question": row[mc.question], "choices": row[mc.choices], "answer": int(row[mc.answer])})
    return items


def measure(model: Any, tokenizer: Any, held: HeldOut, config: PipelineConfig, teacher: Any,
            is_teacher: bool) -> dict[str, float]:
    from edgedistill.lm.metrics import multiple_choice, perplexity

    found: dict[str, float] = {}
    if held.texts:
        found["perplexity"] = perplexity(model, tokenizer, held.texts, config.distill.max_length)
    if held.targets and not is_teacher:
        found.update(agreement(model, tokenizer, held, config, teacher))
    items = mc_items(config)
    if items:
        mc = multiple_choice(model, tokenizer, items)
        found.update(mc_acc=mc["acc"], mc_acc_norm=mc["acc_norm"])
    return found


def agreement(model: Any, tokenizer: Any, held: HeldOut, config: PipelineConfig, teacher: Any = None,
              greedy: bool = True) -> dict[str, float]:
    """Agreement with the teacher on its held-out answers: top-1 and KL under teacher forcing (full-vocabulary KL
    against a white-box ``teacher``), and with ``greedy`` exact match and ROUGE-L of greedy answers."""
    from edgedistill.lm.metrics import greedy_agreement, teacher_forcing

    forced = teacher_forcing(model, held.targets, teacher)
    found = {"top1_agreement": forced["top1_agreement"], "kl": forced["kl"]}
    if greedy:
        prompts = [prompt_text(tokenizer, Prompt(g.prompt, g.messages)) for g in held.answers]
        answers = greedy_agreement(model, tokenizer, prompts, [g.response for g in held.answers],
                                   config.teacher.generation.max_new_tokens, add_special_tokens=False)
        found.update(exact_match=answers["exact_match"], rouge_l=answers["rouge_l"])
    return found


def size_mb(artifact: Artifact) -> float:
    if artifact.path.is_file() and artifact.kind != "onnx":  # a GGUF teacher
        return artifact.path.stat().st_size / 2**20
    return model_file_mb(artifact)


def open_model(artifact: Artifact) -> tuple[Any, Any, str]:
    """``(model, tokenizer, backend)``: a model folder or GGUF file in torch, an exported decoder on ONNX Runtime
    (behind the calls the metrics make, :class:`~edgedistill.lm.onnx_model.DecoderAsCausalLM`)."""
    if artifact.kind != "onnx":
        model, tokenizer = load_causal_lm(artifact.path, artifact.name)
        return model, tokenizer, "torch"
    from edgedistill.lm.decoders import OrtDecoder
    from edgedistill.lm.generate import stop_ids
    from edgedistill.lm.onnx_model import DecoderAsCausalLM
    from edgedistill.lm.runtime import tokenizer_beside

    tokenizer = tokenizer_beside(artifact.path)
    return DecoderAsCausalLM(OrtDecoder(artifact.path), stop_ids(tokenizer)), tokenizer, "onnxruntime"


def run(config: PipelineConfig, models: list[Artifact], distill_dir: Path, out: Path) -> Artifact:
    """Measure ``models`` (model folders, a GGUF file, exported decoders; the first may be the teacher) into
    ``out/metrics.json``; returns the metrics artifact (``meta["quality"]``: per artifact its metrics)."""
    held = HeldOut(distill_dir)
    teacher_model = None
    results: dict[str, dict[str, Any]] = {}
    for artifact in models:
        console.print(f"[dim]evaluating {artifact.name}[/dim]")
        model, tokenizer, backend = open_model(artifact)
        is_teacher = artifact.name == "teacher"
        if is_teacher:
            teacher_model = model
        metrics = measure(model, tokenizer, held, config, teacher_model, is_teacher)
        params = sum(p.numel() for p in model.parameters()) if backend == "torch" else None
        results[artifact.name] = {"kind": artifact.kind, "path": str(artifact.path), "backend": backend,
                                  "params": params, "file_mb": round(size_mb(artifact), 3), **metrics}
    doc = {"artifacts": results, "order": [a.name for a in models], "task": "text-generation", "notes": held.notes}
    atomic_write_json(out / METRICS, doc)
    quality = {n: {k: v for k, v in r.items() if k not in IDENTITY} for n, r in results.items()}
    return Artifact("quality-metrics", "metrics", out / METRICS, "text-generation", {"quality": quality})
