"""tegrastats lines of every board format parse to the right rails; energy per inference from samples."""

from __future__ import annotations

import sys
import time
from datetime import datetime
from pathlib import Path

import pytest
from support.tegrastats_lines import AGX_ORIN, ORIN_NANO, ORIN_NANO_LOADED, TX2, XAVIER

from edgedistill.bench.jetson import clocks_locked, parse_nvpmodel
from edgedistill.bench.power import Sample, TegrastatsSampler, board_rail, energy_summary, parse_line

CASES = {
    "orin_nano": (ORIN_NANO, {"VDD_IN": 4824, "VDD_CPU_GPU_CV": 518, "VDD_SOC": 1475}, "VDD_IN"),
    "agx_orin": (AGX_ORIN, {"VDD_GPU_SOC": 2340, "VDD_CPU_CV": 390, "VIN_SYS_5V0": 4025, "VDDQ_VDD2_1V8AO": 301},
                 "VIN_SYS_5V0"),
    "xavier": (XAVIER, {"GPU": 463, "CPU": 618, "SOC": 2936, "CV": 0, "VDDRQ": 309, "SYS5V": 3306}, "SYS5V"),
    "tx2": (TX2, {"VDD_SYS_GPU": 153, "VDD_SYS_SOC": 536, "VDD_4V0_WIFI": 633, "VDD_IN": 3140, "VDD_SYS_CPU": 536,
                  "VDD_SYS_DDR": 557}, "VDD_IN"),
}


@pytest.mark.parametrize("board", sorted(CASES))
def test_parse_each_format(board: str) -> None:
    line, rails, board_input = CASES[board]
    sample = parse_line(line)
    assert sample is not None
    assert sample.rails == rails  # RAM/SWAP "a/bMB", temperatures and NC channels are not rails
    assert board_rail(sample.rails) == board_input


def test_timestamp_and_lines_without_rails() -> None:
    sample = parse_line(ORIN_NANO)
    assert sample is not None and sample.time == datetime(2025, 6, 18, 11, 25, 24)
    assert parse_line(XAVIER).time is None  # type: ignore[union-attr]
    assert parse_line("RAM 2454/7607MB (lfb 2x4MB) SWAP 0/3804MB (cached 0MB) GR3D_FREQ 0%") is None


def test_energy_summary_subtracts_idle() -> None:
    idle = [parse_line(ORIN_NANO)] * 3
    active = [parse_line(ORIN_NANO_LOADED)] * 5
    out = energy_summary(active, idle, seconds=2.0, calls=100)  # type: ignore[arg-type]
    assert out["board_rail"] == "VDD_IN"
    assert out["net_mw"]["VDD_IN"] == pytest.approx(12479 - 4824)
    assert out["net_mw"]["VDD_CPU_GPU_CV"] == pytest.approx(4667 - 518)
    assert out["mj_per_inference"] == pytest.approx((12479 - 4824) * 2.0 / 100)  # mW x s / calls = mJ
    assert out["mj_per_inference_gross"] == pytest.approx(12479 * 2.0 / 100)
    assert energy_summary([Sample({"GPU": 1.0})], [], 1.0, 10)["mj_per_inference"] is None  # no board rail


def test_nvpmodel_and_clocks(tmp_path: Path) -> None:
    assert parse_nvpmodel("NV Power Mode: MAXN\n0\n") == {"mode": "MAXN", "id": 0}
    assert parse_nvpmodel("NV Power Mode: 15W\n2") == {"mode": "15W", "id": 2}
    (tmp_path / "scaling_min_freq").write_text("1510400\n")
    (tmp_path / "cpuinfo_max_freq").write_text("1510400\n")
    assert clocks_locked(tmp_path) is True
    (tmp_path / "scaling_min_freq").write_text("729600\n")
    assert clocks_locked(tmp_path) is False
    assert clocks_locked(tmp_path / "missing") is None


def test_sampler_reads_a_live_stream() -> None:
    """The sampler keeps only lines inside its window, from a process that prints like tegrastats."""
    script = f"import time\nwhile True:\n    print({ORIN_NANO_LOADED!r}, flush=True)\n    time.sleep(0.02)\n"
    with TegrastatsSampler(command=[sys.executable, "-c", script]) as sampler:
        time.sleep(0.3)
    assert len(sampler.samples) >= 3 and 0.25 < sampler.seconds < 1.0
    assert all(s.rails["VDD_IN"] == 12479 for _, s in sampler.samples)
