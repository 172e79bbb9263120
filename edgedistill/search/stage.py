"""The search stage: the fastest student that keeps a quality floor of the teacher, cheap looks first.

1. The teacher labels the training data once (the store every candidate's distillation then reads): an encoder's
   outputs on the texts, a decoder's answers to the prompts.
2. Every architecture of the space, untrained: derived from the teacher, shipped in every precision; fidelity,
   the Task metric of each shipped artifact, and latency (measured here interleaved, or estimated for a target).
   The Task's side of each step is a :class:`~edgedistill.search.task_search.TaskSearch`.
3. The promising architectures (the untrained Pareto fronts, up to ``promising``) go through successive halving
   on proxy rungs (:mod:`edgedistill.search.halving`): each architecture's distillation with the config's own
   recipe, paused at the rung's step and measured there; a survivor's next rung continues from it.
4. The finalists' distillations run on to the end of the schedule; they are exported, fused, quantized and
   measured. A finalist's rungs were the first steps of its distillation: nothing trained is thrown away, and the
   result is what distilling it alone gives.
5. The fastest shipped candidate meeting the floor is chosen; ``chosen.json`` says which and why.

Writes into ``out``: ``records.json`` (every candidate: config, steps, quality, latency, why it was dropped),
``front.json``, ``search.png``, ``chosen.json``, and one folder per architecture (its run directories: untrained
and ``full``; the chosen finalist's ``<architecture>/full`` is what the pipeline carries on with).
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgedistill.artifacts import Artifact, atomic_write_json
from edgedistill.config import FromTeacher, PipelineConfig, SearchConfig
from edgedistill.errors import ConfigError, InputError
from edgedistill.progress import console
from edgedistill.search import latency
from edgedistill.search.configs import candidate_config, precision_steps
from edgedistill.search.front import pareto, plot, points
from edgedistill.search.halving import Contender, rung_steps, successive_halving
from edgedistill.search.records import Records
from edgedistill.search.space import Architecture, Candidate, TeacherShape, architectures
from edgedistill.search.task_search import Scored, TaskSearch, task_search

CHOSEN, FRONT, PLOT = "chosen.json", "front.json", "search.png"
FULL = "full"  # an architecture's distillation run: its proxy rungs are pauses of it, its finalist run the end
OUTPUTS = ("records.json", FRONT, PLOT, CHOSEN)


@dataclass
class Search:
    """What every step of one search reads: the config, the Task's side of it, the metric and the records."""

    cfg: PipelineConfig
    out: Path
    cache_dir: Path
    records: Records
    task: TaskSearch
    shape: TeacherShape
    metric: str = ""
    teacher_score: float = 1.0
    scored: dict[str, Scored] = field(default_factory=dict)

    @property
    def spec(self) -> SearchConfig:
        assert self.cfg.student.search is not None
        return self.cfg.student.search

    @property
    def budget_s(self) -> float:
        return 60.0 * self.spec.budget_minutes

    def measure(self, artifact: Artifact) -> dict[str, float]:
        """The search metric of ``artifact`` and its quality (that over the teacher's)."""
        return self.quality(self.task.metrics(artifact, self.metric), artifact.task)

    def quality(self, found: dict[str, float], task: str) -> dict[str, float]:
        if found.get(self.metric) is None:
            raise ConfigError(f"student.search.metric: '{self.metric}' is not measured for task {task} with this "
                              f"data; measured: {', '.join(found)}")
        value = float(found[self.metric])
        return {"metric": value, "quality": value / self.teacher_score}

    def seconds_per_step(self, name: str) -> float | None:
        """Measured for an architecture already distilled (its longest rung, overheads included); else scaled from
        one that was by latency (an estimate, for planning only); None before any distillation."""
        walls = {n: r["rungs"][max(r["rungs"], key=int)] for n, r in self.records.data["architectures"].items()
                 if r["rungs"]}
        if name in walls:
            return per_step(walls[name])
        if not walls:
            return None
        ref = next(iter(walls))
        return self.latency_of(name) / self.latency_of(ref) * per_step(walls[ref])

    def latency_of(self, name: str) -> float:
        """An architecture's fastest candidate's latency."""
        cands = [c for c in self.records.data["candidates"].values() if c["architecture"] == name]
        return float(min(c["latency_ms"] for c in cands))

    def affords(self, name: str, steps: int, full_after: bool = True) -> bool:
        """Whether the budget left covers distilling ``name`` on to step ``steps`` (and, by default, the finalists'
        distillations to the end of the schedule after that)."""
        seconds = self.seconds_per_step(name)
        spent = self.records.spent_s()
        if seconds is None:
            return spent < self.budget_s
        full = self.cfg.distill.steps
        after = seconds * (full - steps) * self.spec.finalists if full_after else 0.0
        return spent + seconds * (steps - steps_done(self, name)) + after <= self.budget_s


def per_step(rung: dict[str, Any]) -> float:
    """Seconds per step of a recorded rung (the steps it trained on top of the previous rung)."""
    return float(rung["wall_s"]) / float(rung.get("trained", rung["steps"]))


def prepare(cfg: PipelineConfig, out: Path, cache_dir: Path) -> Search:
    """Load the teacher, split and label the data (the label store every candidate reads), and measure the
    teacher on the search metric."""
    assert cfg.student.search is not None
    records = Records(out, {"search": cfg.student.search.model_dump(mode="json")})
    task = task_search(cfg, out, cache_dir)
    with records.phase("prepare"):
        search = Search(cfg, out, cache_dir, records, task, task.prepare())
        search.metric = cfg.student.search.metric or task.default_metric()
        if "teacher" not in records.data:
            records.set("teacher", search.quality(task.teacher_metrics(search.metric), cfg.teacher.task)
                        | {"metric_name": search.metric})
    search.teacher_score = float(records.data["teacher"]["metric"])
    if search.teacher_score <= 0:
        raise InputError(f"the teacher scores {search.teacher_score:g} on {search.metric}; a floor relative to it "
                         "means nothing: choose another student.search.metric")
    records.set("floor", cfg.student.search.min_quality)
    return search


def score_untrained(search: Search) -> None:
    """Step 2: every architecture derived, shipped and measured untrained; latency of every candidate."""
    found = architectures(search.spec.space, search.shape)
    console.print(f"search: {len(found)} architectures × {len(search.spec.space.precision)} precisions, "
                  f"scored untrained")
    with search.records.phase("layers"):
        layers = {count: layers_for(search, count) for count in {a.layers for a in found} if isinstance(count, int)}
    with search.records.phase("untrained"):
        for arch in found:
            ship_untrained(search, arch, layers.get(arch.layers) if isinstance(arch.layers, int) else None)
    with search.records.phase("timing"):
        time_candidates(search)


def ship_untrained(search: Search, arch: Architecture, layers: list[int] | None) -> None:
    """One architecture derived, shipped in every precision and measured, untrained."""
    scored = search.task.score(arch, search.shape, layers, search.out / arch.name)
    search.scored[arch.name] = scored
    search.records.architecture(arch.name).update(spec=scored.spec, fidelity=scored.fidelity)
    for precision, artifact in scored.artifacts.items():
        cand = search.records.candidate(artifact.name)
        cand.update(architecture=arch.name, precision=precision)
        if "untrained" not in cand:
            cand["untrained"] = search.measure(artifact)
    search.records.save()


def layers_for(search: Search, count: int) -> list[int]:
    """The teacher layers a depth of ``count`` keeps (the Task's choice), recorded with every subset's scores;
    chosen once per depth, for every width."""
    chosen = search.records.data.setdefault("layers", {})
    if str(count) not in chosen:
        picked, table = search.task.choose_layers(count, search.metric)
        chosen[str(count)] = {"layers": picked, "subsets": table}
        search.records.save()
    return list(chosen[str(count)]["layers"])


def time_candidates(search: Search) -> None:
    """Latency of every candidate's shipped artifact, all in one interleaved run (or estimated for a target)."""
    kind = search.task.latency_kind()
    for name, times in search.task.time(search.scored).items():
        search.records.candidate(name).update(latency=times, latency_ms=latency.rank_ms(times), latency_kind=kind)
    search.records.save()


def contenders(search: Search) -> list[Contender]:
    """Step 3's entrants: each architecture at its fastest precision meeting the floor untrained (else at its
    fastest), taken front by front from the untrained Pareto fronts of quality against latency, up to
    ``promising``; the rest dropped, naming who dominates them."""
    left = []
    floor = search.spec.min_quality
    for name in search.scored:
        cands = sorted((c for c in search.records.data["candidates"].values() if c["architecture"] == name),
                       key=lambda c: c["latency_ms"])
        pick = next((c for c in cands if c["untrained"]["quality"] >= floor), cands[0])
        left.append(Contender(name, pick["latency_ms"], pick["untrained"]["quality"]))
    taken: list[Contender] = []
    while left and len(taken) < search.spec.promising:
        front = [c for c in left if not any(dominates(o, c) for o in left)]
        taken += sorted(front, key=lambda c: c.latency_ms)[: search.spec.promising - len(taken)]
        left = [c for c in left if c not in taken]
    for c in left:
        by = next((o.name for o in taken if dominates(o, c)), None)
        why = f"dominated untrained by {by} (faster and better)" if by else "beyond the promising candidates"
        search.records.drop(c.name, why)
    return taken


def dominates(a: Contender, b: Contender) -> bool:
    qa, qb = a.quality or 0.0, b.quality or 0.0
    return a.latency_ms <= b.latency_ms and qa >= qb and (a.latency_ms < b.latency_ms or qa > qb)


def proxy(search: Search, name: str, steps: int) -> float:
    """Distil architecture ``name`` up to step ``steps`` of the config's own schedule (a proxy rung), continuing
    from its previous rung, and return its quality there; recorded, so a resumed search never trains it again.

    Every rung and the final distillation of an architecture are one run, ``<architecture>/full``, paused at each
    rung (:mod:`edgedistill.distill.pause`): a finalist's rungs are the first steps of its final distillation.
    """
    from edgedistill import api
    from edgedistill.distill.pause import Paused

    record = search.records.architecture(name)
    if str(steps) in record["rungs"]:
        return float(record["rungs"][str(steps)]["quality"])
    start = time.perf_counter()
    try:
        student = api.distill(full_config(search, name), search.out / name / FULL, cache_dir=search.cache_dir,
                              stop_after=steps)
    except Paused as paused:
        student = paused.student
    wall = time.perf_counter() - start
    record["rungs"][str(steps)] = {"steps": steps, "trained": steps - steps_done(search, name),
                                   **search.measure(student), "wall_s": round(wall, 2)}
    search.records.save()
    return float(record["rungs"][str(steps)]["quality"])


def full_config(search: Search, name: str) -> PipelineConfig:
    """The config of architecture ``name``'s run: its student, the config's own distillation, every precision."""
    spec = FromTeacher.model_validate(search.scored[name].spec)
    return candidate_config(search.cfg, spec, search.spec.space.precision)


def steps_done(search: Search, name: str) -> int:
    """Steps of its schedule architecture ``name`` has been distilled for (its last rung's)."""
    rungs = search.records.architecture(name)["rungs"]
    return max((int(k) for k in rungs), default=0)


def finish(search: Search, finalists: list[Contender]) -> None:
    """Step 4: each finalist's distillation run to the end of the config's schedule in ``<architecture>/full``
    (resumed from its last rung), shipped in every precision and measured."""
    from edgedistill import api

    precisions = search.spec.space.precision
    for c in finalists:
        record = search.records.architecture(c.name)
        if record.get("status") != "finalist" and not search.affords(c.name, search.cfg.distill.steps, False):
            search.records.drop(c.name, f"the budget left cannot distil it fully ({search.cfg.distill.steps} steps)")
            continue
        record.update(status="finalist", run_dir=f"{c.name}/{FULL}")
        cfg = full_config(search, c.name)
        run_dir = search.out / c.name / FULL
        start = time.perf_counter()
        student = api.distill(cfg, run_dir, cache_dir=search.cache_dir)
        record.setdefault("full_distill_s", round(time.perf_counter() - start, 2))
        record.setdefault("resumed_from_step", steps_done(search, c.name))
        for precision, artifact in search.task.ship(student, run_dir, cfg, precisions).items():
            cand = search.records.candidate(Candidate(architecture_of(search, c.name), precision).name)
            cand.setdefault("final", search.measure(artifact) | {"path": str(artifact.path.relative_to(
                search.out))})
            cand["status"] = "finalist"
        search.records.save()


def architecture_of(search: Search, name: str) -> Architecture:
    return search.scored[name].architecture


def choose(search: Search) -> dict[str, Any]:
    """Step 5: the fastest shipped candidate meeting the floor.

    Raises:
        InputError: none meets it (naming the best found; nothing that looks like a result is written).
    """
    floor, cands = search.spec.min_quality, search.records.data["candidates"]
    shipped = {n: c for n, c in cands.items() if "final" in c}
    meeting = {n: c for n, c in shipped.items() if c["final"]["quality"] >= floor}
    if not meeting:
        rows = points(search.records.data)
        best = max(rows, key=lambda r: r["quality"]) if rows else None
        found = (f"the best found, {best['name']}, keeps {best['quality']:.4f} ({best['stage']}) at "
                 f"{best['latency_ms']:.3g} ms" if best else "no candidate was distilled")
        raise InputError(f"student.search: no candidate keeps {floor:g} of the teacher's {search.metric}: {found}; "
                         f"lower min_quality, widen the space or raise budget_minutes (records: "
                         f"{search.records.path})")
    name = min(meeting, key=lambda n: meeting[n]["latency_ms"])
    chosen = meeting[name]
    for other, cand in shipped.items():
        cand["status"] = "chosen" if other == name else cand["status"]
    search.records.save()
    arch = search.records.architecture(chosen["architecture"])
    faster = sorted((n for n, c in cands.items() if c["latency_ms"] < chosen["latency_ms"]),
                    key=lambda n: cands[n]["latency_ms"])
    why = (f"the fastest shipped candidate keeping >= {floor:g} of the teacher's {search.metric} "
           f"({chosen['final']['quality']:.4f})"
           + (f"; the {len(faster)} faster candidate(s) did not: " + "; ".join(
               f"{n}: {cands[n].get('reason') or 'below the floor when shipped'}" for n in faster) if faster
              else "; no candidate was faster") + ".")
    return {"candidate": name, "architecture": chosen["architecture"], "precision": chosen["precision"],
            "student": {"from_teacher": arch["spec"]}, "run_dir": arch["run_dir"],
            "quantize": [s.model_dump(mode="json") for _, s in precision_steps(search.cfg, [chosen["precision"]])],
            "quality": chosen["final"]["quality"], "metric": search.metric, "metric_value": chosen["final"]["metric"],
            "teacher_metric": search.teacher_score, "floor": floor, "latency": chosen["latency"],
            "latency_ms": chosen["latency_ms"], "latency_kind": chosen["latency_kind"], "why": why,
            "search_s": round(search.records.spent_s(), 1), "full_distill_s": arch.get("full_distill_s")}


def prune(search: Search) -> None:
    """Once chosen, the untrained candidates' model files go (their numbers are in the records; their run
    directories keep their manifests), and so do the paused runs of the architectures that never became
    finalists (checkpoints and snapshots): a search of a 6-layer teacher would otherwise leave gigabytes."""
    for name in search.scored:
        for path in (search.out / name / "untrained").rglob("*"):
            if path.is_file() and path.suffix in (".onnx", ".safetensors", ".data", ".bin"):
                path.unlink()
        if search.records.architecture(name).get("status") != "finalist":
            shutil.rmtree(search.out / name / FULL, ignore_errors=True)


def check_budget(search: Search, after: str) -> None:
    """Raises InputError when the budget is already spent before any candidate was distilled."""
    spent = search.records.spent_s()
    if spent >= search.budget_s:
        raise InputError(f"student.search.budget_minutes {search.spec.budget_minutes:g} is too small to train even "
                         f"one candidate: {after} alone took {spent / 60:.2f} min; raise it")


def run(cfg: PipelineConfig, out: Path, cache_dir: Path) -> Artifact:
    """Search for the student (see the module docstring) inside ``out``; returns ``chosen.json`` as an artifact
    whose ``meta`` is its content.

    Raises:
        ConfigError: the space does not fit the teacher, or the metric is not the Task's.
        InputError: the budget cannot train one candidate, or no candidate meets the floor.
    """
    search = prepare(cfg, out, cache_dir)
    score_untrained(search)
    check_budget(search, "scoring the candidates untrained")
    spec = search.spec
    full = search.cfg.distill.steps
    rungs = rung_steps(spec.proxy_steps or max(1, full // 10), full, spec.eta)
    with search.records.phase("proxies"):
        kept = successive_halving(contenders(search), rungs, spec.min_quality, spec.eta, spec.finalists,
                                  train=lambda n, s: proxy(search, n, s), afford=search.affords,
                                  drop=search.records.drop)
    if not kept or not any(search.affords(c.name, full, False) for c in kept):
        raise InputError(f"student.search.budget_minutes {spec.budget_minutes:g} is too small to train even one "
                         f"candidate fully ({full} steps) after {search.records.spent_s() / 60:.2f} min of search; "
                         "raise it, or lower distill.steps")
    with search.records.phase("final"):
        finish(search, kept)
    chosen = choose(search)
    rows = points(search.records.data)
    atomic_write_json(out / FRONT, {"front": pareto([r for r in rows if r["stage"] == "final"]), "points": rows})
    over = f"geometric mean over {', '.join(chosen['latency'])}; " if len(chosen["latency"]) > 1 else ""
    plot(rows, spec.min_quality, f"{over}{search.task.latency_kind()}", out / PLOT)
    atomic_write_json(out / CHOSEN, chosen)
    prune(search)
    return Artifact("search", "search", out / CHOSEN, cfg.teacher.task, chosen)
