"""Render a report dict as a markdown table, a rich table and a quality-vs-latency plot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgedistill.artifacts import atomic_write_bytes
from edgedistill.report.quality import Column, quality_columns

BLANK = "—"


def fmt(value: Any, spec: str, suffix: str = "") -> str:
    """Format a number, or a dash for a value that was not measured."""
    return BLANK if value is None else f"{value:{spec}}{suffix}"


def shapes_in(rows: list[dict[str, Any]]) -> list[str]:
    """The benchmark shapes present in ``rows``, in first-seen order."""
    shapes: list[str] = []
    for row in rows:
        shapes += [s for s in row.get("latency", {}) if s not in shapes]
    return shapes


def columns(shapes: list[str], quality: list[Column]) -> list[str]:
    heads = ["artifact", "backend", "params (M)", "size MB", "size vs teacher", *(c.label for c in quality)]
    for shape in shapes:
        heads += [f"p50 ms {shape}", f"p99 ms {shape}", f"samples/s {shape}", f"speed-up {shape}"]
    return heads


def cells(row: dict[str, Any], shapes: list[str], quality: list[Column]) -> list[str]:
    """One row's cells, in the order of :func:`columns`."""
    params = row["params"] / 1e6 if row.get("params") is not None else None
    out = [row["name"], row.get("backend") or BLANK, fmt(params, ".2f"), fmt(row.get("file_mb"), ".1f"),
           fmt(row.get("size_ratio"), ".2f", "×"), *(fmt(row.get(c.key), c.spec) for c in quality)]
    for shape in shapes:
        lat = row.get("latency", {}).get(shape, {})
        out += [fmt(lat.get("p50_ms"), ".2f"), fmt(lat.get("p99_ms"), ".2f"),
                fmt(lat.get("throughput_per_s"), ".1f"), fmt(row.get("speedup_p50", {}).get(shape), ".2f", "×")]
    return out


def markdown_table(rows: list[dict[str, Any]], shapes: list[str] | None = None) -> str:
    """A GitHub-markdown table, one line per report row; shapes default to those in ``rows``."""
    shapes = shapes_in(rows) if shapes is None else shapes
    quality = quality_columns(rows)
    heads = columns(shapes, quality)
    lines = ["| " + " | ".join(heads) + " |", "|" + "|".join(["---"] * len(heads)) + "|"]
    lines += ["| " + " | ".join(cells(r, shapes, quality)) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def env_line(env: dict[str, Any]) -> str:
    keys = ("cpu", "cores", "threads", "python", "torch", "onnxruntime")
    return ", ".join(f"{k}: {env[k]}" for k in keys if env.get(k) is not None)


LEGEND = ("Speed-up is the teacher's p50 latency divided by the artifact's; size vs teacher is the artifact's "
          "file size divided by the teacher's. Fidelity is the mean cosine to the teacher's embeddings on "
          "held-out samples (a classifier's: agreement with the teacher's class, and the KL divergence of its "
          "class distribution); STS is Spearman ×100, acc the accuracy on labelled samples. — means not measured.")
LM_LEGEND = ("top-1 agree is the share of held-out teacher-answer tokens where the model's most likely next token "
             "is the teacher's (teacher forcing), KL the mean KL(teacher ‖ model) there; PPL the perplexity of "
             "held-out real text; EM and ROUGE-L compare the model's greedy answers to held-out prompts with the "
             "teacher's; MC acc / acc_n: multiple-choice accuracy (lm-evaluation-harness acc / acc_norm). — means "
             "not measured.")


def markdown_report(report: dict[str, Any], image: str | None = None) -> str:
    """The whole report.md: environment, the table, how to read the ratios, and the plot."""
    parts = ["# edgedistill report", ""]
    if report["env"]:
        parts += [f"Measured on {env_line(report['env'])}.", ""]
    for stage in report.get("missing_stages", []):
        parts += [f"> The {stage} stage has not run for this directory; its columns are blank.", ""]
    parts += [markdown_table(report["rows"], report["shapes"])]
    parts += [LM_LEGEND if report.get("task") == "text-generation" else LEGEND, ""]
    parts += fusion_lines(report.get("fusion"))
    parts += comparison_lines(report.get("comparisons") or [])
    parts += search_lines(report.get("search"))
    parts += distill_lines(report.get("distill"))
    if image:
        parts += [f"![quality vs latency]({image})", ""]
    return "\n".join(parts)


def comparison_lines(comparisons: list[dict[str, Any]]) -> list[str]:
    """The interleaved speed-ups with their spread, as a markdown table (nothing when none was measured)."""
    if not comparisons:
        return []
    lines = ["Speed-ups measured interleaved in one run (baseline median / model median; 95% bootstrap "
             "interval; interquartile range of the per-round ratios):", "",
             "| model | vs | shape | speed-up | 95% CI | round IQR | rounds |", "|---|---|---|---|---|---|---|"]
    lines += [f"| {c['contender']} | {c['baseline']} | {c['shape']} | {c['speedup']:.2f}× | "
              f"{c['ci_low']:.2f}–{c['ci_high']:.2f} | {c['round_p25']:.2f}–{c['round_p75']:.2f} | {c['rounds']} |"
              for c in comparisons]
    return [*lines, ""]


def unfused_note(fusion: dict[str, Any] | None) -> str | None:
    """One sentence when the fuse stage left attention blocks unfused (their speed is the unfused graph's)."""
    if not fusion or fusion["fused"] >= fusion["found"]:
        return None
    why = f"; first reason: {fusion['skipped'][0]}" if fusion["skipped"] else ""
    return (f"{fusion['artifact']}: only {fusion['fused']} of {fusion['found']} attention blocks were fused, the "
            f"others run as the export wrote them{why}")


def fusion_lines(fusion: dict[str, Any] | None) -> list[str]:
    note = unfused_note(fusion)
    return [f"> **Attention left unfused.** {note}.", ""] if note else []


def search_lines(search: dict[str, Any] | None) -> list[str]:
    """Which candidate the student search chose and why (nothing when the student was not searched)."""
    if not search:
        return []
    latency = ", ".join(f"{shape} {ms:.3g} ms" + (f"/token ({1e3 / ms:.1f} tokens/s)" if shape.startswith("tg")
                                                   else "") for shape, ms in search["latency"].items())
    return [f"Student search: **{search['candidate']}** chosen of {search['candidates']} candidates "
            f"({search['finalists']} fully distilled, shipped as {search['shipped']}), keeping "
            f"{search['quality']:.4f} of the teacher's {search['metric']} (floor {search['floor']:g}) at {latency}, "
            f"{search['latency_kind']}. Why: "
            f"{search['why']} The search took {search['search_s'] / 60:.1f} min; its records, Pareto front and plot "
            "are in `search/`.", ""]


def distill_lines(distill: dict[str, Any] | None) -> list[str]:
    """A sentence on which student was kept: the distilled one, or the untrained one when training did not help."""
    if not distill or "selected" not in distill:
        return []
    scores = ", ".join(f"{name} {value:.4g}" for name, value in distill["selection_scores"].items())
    trained_on = (f"{distill['train_sequences']} sequences" if "train_sequences" in distill
                  else f"{distill.get('train_texts', '?')} texts")
    lines = [f"Distillation kept **{distill['selected']}** as the student, by {distill['selection_metric']} "
             f"({scores}); trained on {trained_on}.", ""]
    return lines + [f"> **Note.** {note}" for note in distill.get("notes") or []] + lm_lines(distill)


def lm_lines(distill: dict[str, Any]) -> list[str]:
    """A language model's student shape, teacher usage and cache size, where the distill stage recorded them."""
    lines = []
    student, teacher = distill.get("student_non_embedding_params"), distill.get("teacher_non_embedding_params")
    if student and teacher:
        lines.append(f"Student: layers {distill.get('student_layers')}, {student / teacher:.1%} of the teacher's "
                     f"non-embedding parameters ({student:,} of {teacher:,}).")
    usage = distill.get("teacher_usage") or {}
    if usage.get("completion_tokens"):
        cost = f", cost {usage['cost_usd']:.4f} USD" if usage.get("cost_usd") is not None else ""
        lines.append(f"Teacher usage: {usage.get('prompt_tokens', 0):,} prompt and {usage['completion_tokens']:,} "
                     f"completion tokens{cost}.")
    if distill.get("cache_bytes_per_token"):
        lines.append(f"Teacher cache: {distill['cache_bytes_per_token']:.0f} bytes per token (top-k log-probs).")
    return [*lines, ""] if lines else []


def write_plot(report: dict[str, Any], path: Path) -> None:
    """Write the quality-vs-latency PNG (with its Pareto front) to ``path``."""
    from edgedistill.report.plots import pareto_png

    atomic_write_bytes(path, pareto_png(report))


def shape_heads(shapes: list[str]) -> list[str]:
    """p50 and speed-up per shape, by their names in :func:`columns`."""
    return [head for shape in shapes for head in (f"p50 ms {shape}", f"speed-up {shape}")]


def terminal_table(report: dict[str, Any], heads: list[str], title: str | None) -> Any:
    """A rich table of the report's rows restricted to ``heads`` (names from :func:`columns`)."""
    from rich import box
    from rich.table import Table

    shapes, quality = report["shapes"], quality_columns(report["rows"])
    index = {head: i for i, head in enumerate(columns(shapes, quality))}
    table = Table(title=title, box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, title_justify="left")
    for head in heads:
        label = head.replace(" ms ", " ms\n") if head.startswith("p50") else head.replace(" ", "\n", 1)
        table.add_column(label, justify="left" if head == "artifact" else "right", no_wrap=True)
    for row in report["rows"]:
        row_cells = cells(row, shapes, quality)
        table.add_row(*(row_cells[index[head]] for head in heads))
    return table


def terminal_tables(report: dict[str, Any], width: int) -> list[Any]:
    """The columns a user decides on (artifact, size, quality, then p50 and speed-up per shape), as one table, or
    split into several (artifact repeated) where one would not fit ``width``: no cell is ever cut short."""
    from rich.console import Console

    measure = Console(width=10_000).measure
    title = "edgedistill report (every column: report/report.md, report/report.html)"

    def fits(heads: list[str]) -> bool:
        return bool(measure(terminal_table(report, heads, None)).maximum <= width)

    tables: list[list[str]] = [["artifact", "size MB"]]
    for head in [c.label for c in quality_columns(report["rows"])] + shape_heads(report["shapes"]):
        if not fits(tables[-1] + [head]) and len(tables[-1]) > 1:
            tables.append(["artifact"])
        tables[-1].append(head)
    return [terminal_table(report, heads, title if i == 0 else None) for i, heads in enumerate(tables)]


def print_table(report: dict[str, Any], console: Any = None) -> None:
    """Print the compact report table with rich (to stdout unless a console is given), fitted to its width:
    80 columns when stdout is not a terminal."""
    from rich.console import Console

    console = console or Console()
    for table in terminal_tables(report, console.width):
        console.print(table)
    if note := unfused_note(report.get("fusion")):
        console.print(f"[yellow]note:[/yellow] {note}", highlight=False)
