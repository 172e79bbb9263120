"""Plain-text views of targets for ``edgedistill targets`` and ``edgedistill targets show NAME``."""

from __future__ import annotations

from edgedistill.targets.defaults import target_defaults
from edgedistill.targets.loader import list_targets, load_target
from edgedistill.targets.schema import Target


def targets_table(targets: list[Target] | None = None) -> str:
    """One line per target: name, kind, compute capability, peak fp16 (or fp32), bandwidth, TensorRT, precisions."""
    rows = [f"{'name':22} {'kind':6} {'cc':5} {'peak TFLOPS':>12} {'GB/s':>7} {'DLA':>3} {'TensorRT':9} precisions"]
    for t in targets if targets is not None else list_targets():
        peak = t.peak.fp16 or t.peak.fp32
        label = "fp16" if t.peak.fp16 else "fp32"
        rows.append(f"{t.name:22} {t.kind:6} {t.compute_capability or '-':5} {peak:>7g} {label} "
                    f"{t.memory_bandwidth_gbs:>7g} {t.dla_cores:>3} {t.tensorrt or '-':9} {','.join(t.precisions)}")
    return "\n".join(rows)


def describe_target(name: str) -> str:
    """Every field of target ``name`` with its source, and the defaults it picks downstream.

    Raises:
        ConfigError: unknown target (with a did-you-mean hint and the valid names).
    """
    t = load_target(name)
    d = target_defaults(t)
    lines = [f"{t.display_name} ({t.name}, {t.kind}, {t.architecture})"]
    if t.reference:
        lines.append(f"  numbers of the reference part: {t.reference}")
    for field in ("compute_capability", "sm_count", "gpu_max_mhz", "cpu_cores", "cpu_max_mhz", "memory_gib",
                  "memory_bandwidth_gbs", "dla_cores", "jetpack", "tensorrt"):
        value = getattr(t, field)
        if value is not None:
            lines.append(f"  {field:21} {value!s:10} [{t.sources.get(field, '-')}]")
    peaks = ", ".join(f"{p} {t.peak.of(p):g}" for p in ("fp32", "tf32", "fp16", "bf16", "int8", "fp8", "fp4")
                      if t.peak.of(p))
    lines.append(f"  peak dense TFLOPS/TOPS {peaks} [{t.sources.get('peak', '-')}]")
    modes = ", ".join(m.name + (f" {m.watts:g}W" if m.watts else "") for m in t.power_modes) or "-"
    lines.append(f"  power modes           {modes}")
    lines.append(f"  defaults: precision {d.precision}, attention {d.attention}, workspace {d.workspace_mib} MiB, "
                 f"DLA {'core ' + str(d.dla_core) if d.dla_core is not None else 'off'}")
    if t.notes:
        lines.append(f"  note: {t.notes}")
    return "\n".join(lines)
