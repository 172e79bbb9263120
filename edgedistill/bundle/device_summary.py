"""Summarise a device benchmark: trtexec's exported times + tegrastats power samples → results JSON.

Runs ON THE DEVICE from ``bench.sh`` with the system ``python3`` only (standard library, Python 3.6+), so
the bundle needs nothing installed. The bundle carries this file as ``bench_summary.py``.

Usage: python3 bench_summary.py TIMES_JSON TEGRASTATS_LOG MANIFEST_JSON > results.json
"""

import json
import re
import sys

POWER = re.compile(r"\b(VDD_IN|POM_5V_IN)\s+(\d+)(?:mW)?/(\d+)")  # Orin/Thor: VDD_IN; Xavier: POM_5V_IN


def percentile(values, q):
    """Nearest-rank percentile of a sorted list (the definition trtexec reports)."""
    if not values:
        return None
    rank = max(1, int(-(-q * len(values) // 100)))  # ceil(q/100 * n)
    return values[min(rank, len(values)) - 1]


def latencies(times):
    """Per-inference latency in ms from trtexec --exportTimes records (end-to-end, else GPU compute)."""
    out = []
    for record in times:
        value = record.get("latencyMs", record.get("computeMs"))
        if value is not None:
            out.append(float(value))
    return sorted(out)


def power_samples(text):
    """Instantaneous module input power in mW, one per tegrastats line that reports it."""
    return [int(m.group(2)) for m in POWER.finditer(text)]


def summarise(times, tegrastats_text, manifest):
    lat = latencies(times)
    power = power_samples(tegrastats_text)
    mean_ms = sum(lat) / len(lat) if lat else None
    return {
        "kind": "edgedistill.device_bench",
        "format": 1,
        "target": manifest.get("target"),
        "precision": manifest.get("precision"),
        "shapes": {i["name"]: i.get("opt", i.get("shape")) for i in manifest.get("inputs", [])},
        "iterations": len(lat),
        "latency_ms": {"mean": mean_ms, "p50": percentile(lat, 50), "p90": percentile(lat, 90),
                       "p99": percentile(lat, 99), "min": lat[0] if lat else None, "max": lat[-1] if lat else None},
        "throughput_per_s": 1000.0 / mean_ms if mean_ms else None,
        "power_mw": {"samples": len(power), "mean": sum(power) / len(power) if power else None,
                     "max": max(power) if power else None},
        "measured": True,
    }


def main(argv):
    with open(argv[1]) as fh:
        times = json.load(fh)
    try:
        with open(argv[2]) as fh:
            tegrastats_text = fh.read()
    except OSError:
        tegrastats_text = ""  # not a Jetson, or tegrastats missing: no power numbers
    with open(argv[3]) as fh:
        manifest = json.load(fh)
    json.dump(summarise(times, tegrastats_text, manifest), sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
