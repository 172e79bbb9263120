"""Parse ``tegrastats`` lines into power readings per rail (milliwatts).

The rail names and units differ between boards and JetPack releases; every format is "NAME cur/avg":

    Orin Nano / NX (JetPack 6):  VDD_IN 4824mW/4824mW VDD_CPU_GPU_CV 518mW/518mW VDD_SOC 1475mW/1475mW
    AGX Orin:                    VDD_GPU_SOC 2340mW/2340mW VDD_CPU_CV 390mW/390mW VIN_SYS_5V0 4025mW/4025mW
                                 NC 0mW/0mW VDDQ_VDD2_1V8AO 301mW/301mW
    AGX Xavier (JetPack 4):      GPU 463/463 CPU 618/618 SOC 2936/2936 CV 0/0 VDDRQ 309/309 SYS5V 3306/3306
    Nano / TX2 (JetPack 4):      VDD_IN 3140/3208 VDD_SYS_GPU 153/158 ... (bare numbers are mW too)

``RAM 2454/7607MB`` and ``SWAP 0/3804MB`` share the "a/b" shape but end in MB, so they are not rails.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

RAIL = re.compile(r"(?<![\w@])([A-Z][A-Z0-9_]*) (\d+)(?:mW)?/(\d+)(?:mW)?(?=\s|$)")
STAMP = re.compile(r"^(\d\d-\d\d-\d{4} \d\d:\d\d:\d\d)\s")
UNUSED = {"NC"}  # AGX Orin prints unconnected monitor channels as NC
BOARD_INPUT = ("VDD_IN", "VIN_SYS_5V0", "POM_5V_IN", "SYS5V")  # whole-module input, in order of preference


@dataclass
class Sample:
    """One tegrastats line: ``rails`` maps rail name to instantaneous mW; ``time`` when the line has a stamp."""

    rails: dict[str, float] = field(default_factory=dict)
    time: datetime | None = None


def parse_line(line: str) -> Sample | None:
    """The power readings of one line, or None when the line has no rails (e.g. tegrastats without root)."""
    rails = {name: float(cur) for name, cur, _avg in RAIL.findall(line) if name not in UNUSED}
    if not rails:
        return None
    stamp = STAMP.match(line)
    when = datetime.strptime(stamp.group(1), "%m-%d-%Y %H:%M:%S") if stamp else None
    return Sample(rails, when)


def board_rail(rails: dict[str, float] | list[str]) -> str | None:
    """The rail that measures the whole module's input power, where the board has one."""
    return next((r for r in BOARD_INPUT if r in rails), None)
