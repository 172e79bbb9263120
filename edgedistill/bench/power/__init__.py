"""Power and energy on Jetson: tegrastats parsing, a background sampler, and energy per inference."""

from edgedistill.bench.power.energy import energy_summary, mean_rails
from edgedistill.bench.power.sampler import TegrastatsSampler, tegrastats_available
from edgedistill.bench.power.tegrastats import Sample, board_rail, parse_line

__all__ = ["Sample", "TegrastatsSampler", "board_rail", "energy_summary", "mean_rails", "parse_line",
           "tegrastats_available"]
