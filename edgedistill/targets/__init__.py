"""Deployment targets: one YAML per device, a validated schema, and the defaults a target picks."""

from __future__ import annotations

from edgedistill.targets.defaults import TargetDefaults, attention_form, target_defaults
from edgedistill.targets.loader import list_targets, load_target, targets_dir
from edgedistill.targets.schema import Target

__all__ = ["Target", "TargetDefaults", "attention_form", "list_targets", "load_target", "target_defaults",
           "targets_dir"]
