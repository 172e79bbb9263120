"""Black-box against white-box distillation of SmolLM2-135M-Instruct at the same token budget.

Three students, the same init (the teacher's layers chosen by block influence), the same prompts and the same steps:

- ``white-box``: ``forward_kl`` on the live teacher's full logits;
- ``top20``: ``sparse_kl`` from the teacher's answers as an OpenAI-compatible API returns them with
  ``top_logprobs: 20`` (chat ``logprobs.content[]`` entries with token text and bytes), read as recorded
  generations and aligned onto the student's tokens by their bytes: the same information an HTTP teacher gives,
  without the time of serving a 135M model over HTTP on 2 cores (the transport is measured by ``http_throughput.py``);
- ``seqkd``: the same answers as text only (cross-entropy on the teacher's tokens).

Reports each student's top-1 agreement and KL on held-out teacher answers, perplexity, and the share of the top-1 gap
(untrained → teacher) it closes; target: ``top20`` reaches ≥ 90 % of ``white-box``'s gap closure.

Run: .venv/bin/python benchmarks/llm/blackbox_vs_whitebox.py [--steps 100]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: options
from options import RUNS, add_out, add_work, recorded, save_results  # noqa: E402

CONFIG = "pkg:edgedistill/examples/smollm2-cpu.yaml"


def base_config(steps: int) -> dict[str, Any]:
    from edgedistill.config.pipeline import config_path

    cfg = yaml.safe_load(config_path(CONFIG).read_text())
    cfg["distill"].update(steps=steps, text_kd=False)  # answers only: the same tokens for every student
    return cfg


def write(cfg: dict[str, Any], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(cfg))
    return path


def api_records(run: Path, with_logprobs: bool) -> list[dict[str, Any]]:
    """The white-box run's training answers as an OpenAI-compatible API would return them (plain recorded form)."""
    from edgedistill.lm.load import load_causal_lm
    from edgedistill.lm.sparse_cache import SparseCache
    from edgedistill.lm.token_bytes import token_bytes
    from edgedistill.models.locate import resolve_pkg_path

    cfg = yaml.safe_load((run / "config.yaml").read_text())
    _, tokenizer = load_causal_lm(resolve_pkg_path(cfg["teacher"]["path"]))
    pieces = token_bytes(tokenizer)
    metas = [json.loads(p.read_text()) for p in sorted((run / "cache").glob("lm-*/meta.json"))]
    meta = next(m for m in metas if "generation" in m)  # the answers' store (not the scored text's)
    layout = ("format", "key", "count", "chunk", "id_dtype", "logprob_dtype")
    store = SparseCache(run / "cache", meta["key"], meta["count"], meta["chunk"],
                        {k: v for k, v in meta.items() if k not in layout})
    records = {}
    for generation, targets in store.all():
        doc = generation.as_json()
        if with_logprobs and targets.top_ids is not None and targets.top_logprobs is not None:
            response = targets.input_ids[targets.response_start:]
            doc["logprobs"] = [token_entry(int(t), row_ids, row_lp, tokenizer, pieces)
                               for t, row_ids, row_lp in zip(response, targets.top_ids, targets.top_logprobs)]
        records[json.dumps(doc.get("messages") or doc.get("prompt"))] = doc
    # in the order the white-box run read its prompts, so the same seed splits off the same held-out prompts
    order = [json.loads(line) for line in next((run / "cache").glob("magpie-*.jsonl")).read_text().splitlines()]
    return [records[json.dumps(p.get("messages") or p.get("prompt"))] for p in order]


def token_entry(token: int, ids: Any, logprobs: Any, tokenizer: Any, pieces: list[bytes | None]) -> dict[str, Any]:
    def candidate(i: int, lp: float) -> dict[str, Any]:
        piece = pieces[i]
        raw = piece if piece is not None else tokenizer.decode([i]).encode("utf-8")
        return {"token": raw.decode("utf-8", errors="replace"), "logprob": float(lp), "bytes": list(raw)}

    top = [candidate(int(i), lp) for i, lp in zip(ids, logprobs) if int(i) >= 0]
    chosen = next((c for c, i in zip(top, ids) if int(i) == token), candidate(token, float(logprobs[-1])))
    return chosen | {"top_logprobs": top}


def run_one(name: str, cfg: dict[str, Any], work: Path, cache_from: Path | None = None) -> dict[str, Any]:
    import shutil

    from edgedistill import api

    out = work / name
    if cache_from is not None and not (out / "cache").exists():  # the teacher's prompts and answers, not re-asked
        shutil.copytree(cache_from / "cache", out / "cache")
    api.run(write(cfg, work / f"{name}.yaml"), out)
    (out / "config.yaml").write_text(yaml.safe_dump(cfg))
    metrics = json.loads((out / "evaluate" / "metrics.json").read_text())["artifacts"]
    untrained, student = metrics["student-untrained"], metrics["student"]
    gap = 1.0 - untrained["top1_agreement"]
    return {"untrained": untrained, "student": student, "teacher": metrics.get("teacher"),
            "gap_closed": (student["top1_agreement"] - untrained["top1_agreement"]) / gap if gap else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100, help="optimizer steps of every student (default 100)")
    parser.add_argument("--cache-from", type=Path, default=None,
                        help="a smollm2-cpu run whose teacher cache (Magpie prompts, answers) the white-box run reuses")
    add_work(parser, "llm-blackbox")
    add_out(parser, Path(__file__).parent, "blackbox-vs-whitebox")
    args = parser.parse_args()
    work: Path = args.work or RUNS / "llm-blackbox"
    white = base_config(args.steps)
    white["distill"]["losses"] = [{"name": "forward_kl"}]
    results = {"white-box": run_one("white-box", white, work, args.cache_from)}
    teacher_path = white["teacher"]["path"]
    for name, logprobs, loss in (("top20", True, "sparse_kl"), ("seqkd", False, "seqkd")):
        records = work / f"{name}.jsonl"
        records.write_text("".join(json.dumps(r) + "\n" for r in api_records(work / "white-box", logprobs)))
        cfg = base_config(args.steps)
        cfg["teacher"] = {"source": "recorded", "path": str(records), "task": "text-generation",
                          "generation": white["teacher"]["generation"]}
        cfg["student"]["from_teacher"]["path"] = teacher_path
        cfg["data"].pop("prompts")  # the recording's own prompts (the white-box run's, in its order)
        cfg["data"]["heldout_prompts"] = white["data"]["heldout_prompts"]
        cfg["distill"]["losses"] = [{"name": loss}]
        results[name] = run_one(name, cfg, work)
    white_gap = results["white-box"]["gap_closed"]
    ratio = results["top20"]["gap_closed"] / white_gap if white_gap else None
    for name, r in results.items():
        print(f"{name:10s} top-1 {r['untrained']['top1_agreement']:.3f} -> {r['student']['top1_agreement']:.3f} "
              f"(gap closed {r['gap_closed']:.1%}), KL {r['untrained']['kl']:.3f} -> {r['student']['kl']:.3f}, "
              f"PPL {r['student']['perplexity']:.1f}")
    print(f"top20 / white-box gap closure: {ratio:.2f} (target >= 0.90)" if ratio is not None else "no gap")
    save_results(args, "llm-blackbox-vs-whitebox", {"options": recorded(args), "results": results,
                                                     "top20_over_whitebox": ratio})


if __name__ == "__main__":
    main()
