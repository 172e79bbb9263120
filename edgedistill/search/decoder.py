"""The text-generation Task's side of a search: decoders cut from a white-box causal-LM teacher.

The teacher answers the prompts once (cached with its top-k, as a distillation of the same config caches them, so
every candidate's distillation reads them back); its answers to the held-out prompts are what every candidate is
scored on: top-1 agreement under teacher forcing (or exact match / ROUGE-L of greedy answers), the teacher's own
being 1 by definition. A depth keeps the layers of the better of ShortGPT's block influence and a uniform cut,
by untrained agreement. Widths narrow Minitron-style (KV groups, FFN units, hidden channels). Each candidate is
exported with its KV cache, fused and quantized weight-only (INT8 / INT4) by the pipeline's own stages, and timed
generating ``decode_tokens`` tokens (tg128), or estimated by the decode roofline for a remote target.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from edgedistill.artifacts import Artifact
from edgedistill.config.search import DECODER_SEARCH_METRICS, LOCAL
from edgedistill.search import decode_latency
from edgedistill.search.configs import candidate_config
from edgedistill.search.space import Architecture, Candidate, TeacherShape, check_space
from edgedistill.search.task_search import Scored, TaskSearch

HELDOUT_DIR = "heldout"  # the held-out prompts with the teacher's answers, as a distill stage writes them


class DecoderSearch(TaskSearch):
    latency_iterations = 5  # tgN repetitions

    teacher: Any
    tokenizer: Any
    held: Any  # edgedistill.lm.evaluate_stage.HeldOut
    calibration: list[str]

    def __init__(self, cfg: Any, out: Path, cache_dir: Path):
        super().__init__(cfg, out, cache_dir)
        self.float_graphs: dict[str, Path] = {}  # architecture -> its deployed float decoder

    def prepare(self) -> TeacherShape:
        from edgedistill.distill.distributed import current_world
        from edgedistill.errors import ConfigError
        from edgedistill.lm.evaluate_stage import HeldOut
        from edgedistill.lm.stage import teacher_data, write_heldout
        from edgedistill.lm.teachers import load_lm_teacher, student_tokenizer

        cfg = self.cfg
        self.teacher = load_lm_teacher(cfg.teacher)
        if self.teacher.model is None:
            raise ConfigError("student.search cuts students from the teacher's layers: give a white-box teacher "
                              "(a causal-LM folder or GGUF file)")
        shape = TeacherShape.of_decoder(self.teacher.model)
        check_space(self.spec.space, shape)  # before the teacher answers anything
        self.tokenizer = student_tokenizer(cfg, self.teacher)
        given = teacher_data(cfg, self.teacher, self.tokenizer, self.cache_dir, False, current_world())
        write_heldout(self.out / HELDOUT_DIR, given.heldout_texts, given.heldout_answers)
        self.held = HeldOut(self.out / HELDOUT_DIR)
        self.calibration = given.calibration_texts() or [g.response for g, _ in given.answers]
        return shape

    def default_metric(self) -> str:
        return "top1_agreement"

    def metrics(self, artifact: Artifact, metric: str) -> dict[str, float]:
        from edgedistill.lm.evaluate_stage import agreement, open_model

        model, tokenizer, _ = open_model(artifact)
        return agreement(model, tokenizer, self.held, self.cfg, greedy=metric != "top1_agreement")

    def teacher_metrics(self, metric: str) -> dict[str, float]:
        """1 for every agreement metric: the answers scored against are the teacher's own."""
        return dict.fromkeys(DECODER_SEARCH_METRICS, 1.0)

    def agreement(self, model: Any) -> float:
        from edgedistill.lm.metrics import teacher_forcing

        return float(teacher_forcing(model, self.held.targets)["top1_agreement"])

    def choose_layers(self, count: int, metric: str) -> tuple[list[int], dict[str, Any]]:
        """Of block influence's and a uniform cut's layers, those agreeing more with the teacher untrained."""
        from edgedistill.lm.layer_drop import choose_decoder_layers, keep_layers
        from edgedistill.lm.students import uniform_layers

        model = self.teacher.model
        total = TeacherShape.of_decoder(model).layers
        if count == total:
            return list(range(total)), {}
        picks = {"block-influence": choose_decoder_layers(model, self.tokenizer, "block-influence", count,
                                                          self.calibration, self.cfg.distill.max_length)[0],
                 "uniform": uniform_layers(total, count)}
        table: dict[str, dict[str, Any]] = {}
        for method, layers in picks.items():
            key = ",".join(map(str, layers))
            if key not in table:
                table[key] = {"methods": [], "top1_agreement": self.agreement(keep_layers(model, layers))}
            table[key]["methods"].append(method)
        best = max(table, key=lambda k: table[k]["top1_agreement"])
        return [int(i) for i in best.split(",")], table

    def score(self, architecture: Architecture, shape: TeacherShape, layers: list[int] | None,
              folder: Path) -> Scored:
        from edgedistill.lm.stage import save_model
        from edgedistill.lm.students import derive_lm_student

        cfg, precisions = self.cfg, self.spec.space.precision
        spec = architecture.from_teacher(shape, layers)
        student, _ = derive_lm_student(candidate_config(cfg, spec, precisions), self.teacher.model, self.tokenizer,
                                       self.calibration)
        hf = folder / "untrained" / "student"
        if not (hf / "config.json").is_file():
            partial = hf.with_name("student.partial")
            save_model(student, self.tokenizer, partial)
            partial.rename(hf)
        fidelity = self.agreement(student)
        shipped = self.ship_untrained(Artifact(architecture.name, "hf", hf, cfg.teacher.task), folder / "untrained",
                                      ["fp32", *(p for p in precisions if p != "fp32")])
        self.float_graphs[architecture.name] = shipped["fp32"].path  # what FLOPs are counted on
        shipped = {p: shipped[p] for p in precisions}
        named = {p: replace(a, name=Candidate(architecture, p).name) for p, a in shipped.items()}
        return Scored(architecture, spec.model_dump(mode="json", exclude_defaults=True), fidelity, named)

    def time(self, scored: dict[str, Scored]) -> dict[str, dict[str, float]]:
        tokens = self.spec.decode_tokens
        if self.spec.target == LOCAL:
            ids = [int(i) for t in self.held.targets for i in t.input_ids]
            cycled = [ids[i % len(ids)] for i in range(tokens)]
            decoders = {a.name: a.path for s in scored.values() for a in s.artifacts.values()}
            return decode_latency.measured(decoders, cycled, self.iterations, self.cfg.bench.threads)
        items = [(a.name, a.path, self.float_graphs[n], p) for n, s in scored.items() for p, a in s.artifacts.items()]
        return decode_latency.estimated(items, self.spec.target, tokens)

    def latency_kind(self) -> str:
        if self.spec.target == LOCAL:
            return decode_latency.MEASURED.format(n=self.spec.decode_tokens)
        return f"{decode_latency.ESTIMATED}, {self.spec.target}"
