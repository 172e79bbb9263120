"""A self-contained HTML report: one file, no network — styles inline, plots as base64 PNG."""

from __future__ import annotations

import base64
import html
from typing import Any

from edgedistill.report.plots import FIGURES
from edgedistill.report.quality import quality_columns
from edgedistill.report.render import cells, columns, env_line

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem;color:#222;max-width:1400px}
table{border-collapse:collapse;margin:1rem 0;font-size:13px}
th,td{border:1px solid #ccc;padding:4px 8px;text-align:right}th{background:#f3f3f3}
td:first-child,th:first-child,td:nth-child(2){text-align:left}
figure{display:inline-block;margin:0 1rem 1rem 0}figcaption{font-size:13px;color:#555}
.note{color:#555;font-size:13px;max-width:70rem}
"""


def esc(value: Any) -> str:
    return html.escape(str(value))


def table_html(heads: list[str], body: list[list[str]], table_id: str) -> str:
    head = "".join(f"<th>{esc(h)}</th>" for h in heads)
    rows = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in body)
    return f'<table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>'


def ledger_table(report: dict[str, Any]) -> str:
    shapes, quality = report["shapes"], quality_columns(report["rows"])
    return table_html(columns(shapes, quality), [cells(r, shapes, quality) for r in report["rows"]], "ledger")


def comparisons_table(report: dict[str, Any]) -> str:
    comps = report.get("comparisons") or []
    if not comps:
        return ""
    body = [[c["contender"], c["baseline"], c["shape"], f"{c['speedup']:.2f}×", f"{c['ci_low']:.2f}–{c['ci_high']:.2f}",
             f"{c['round_p25']:.2f}–{c['round_p75']:.2f}", str(c["rounds"])] for c in comps]
    heads = ["model", "vs", "shape", "speed-up", "95% CI", "round IQR", "rounds"]
    return ("<h2>Interleaved speed-ups</h2><p class=note>Measured in one run, A B A B … per round, so drift "
            "cancels: baseline median / model median, with a 95% bootstrap interval and the interquartile "
            "range of per-round ratios.</p>" + table_html(heads, body, "comparisons"))


def energy_table(report: dict[str, Any]) -> str:
    body = [[r["name"], shape, f"{lat['mj_per_inference']:.2f}"] for r in report["rows"]
            for shape, lat in r["latency"].items() if lat.get("mj_per_inference") is not None]
    if not body:
        return ""
    return ("<h2>Energy per inference (Jetson)</h2><p class=note>Board input rail, idle baseline subtracted."
            "</p>" + table_html(["model", "shape", "mJ / inference"], body, "energy"))


def figures_html(report: dict[str, Any]) -> str:
    out = []
    for key, (title, draw) in FIGURES.items():
        data = base64.b64encode(draw(report)).decode("ascii")
        out.append(f'<figure id="fig-{key}"><img alt="{esc(title)}" width="640" '
                   f'src="data:image/png;base64,{data}"><figcaption>{esc(title)}</figcaption></figure>')
    return "".join(out)


def html_report(report: dict[str, Any]) -> str:
    """The whole page: environment, the ledger table, interleaved speed-ups, energy, and the three plots."""
    env = f"<p class=note>Measured on {esc(env_line(report['env']))}.</p>" if report.get("env") else ""
    missing = "".join(f"<p class=note>The {esc(s)} stage has not run; its columns are blank.</p>"
                      for s in report.get("missing_stages", []))
    return ("<!doctype html><html lang=en><head><meta charset=utf-8><title>edgedistill report</title>"
            f"<style>{STYLE}</style></head><body><h1>edgedistill report</h1>{env}{missing}"
            f"<h2>Ledger</h2>{ledger_table(report)}<p class=note>Speed-up is the teacher's p50 divided by the "
            "model's; — means not measured.</p>"
            f"{comparisons_table(report)}{energy_table(report)}<h2>Plots</h2>{figures_html(report)}</body></html>\n")
