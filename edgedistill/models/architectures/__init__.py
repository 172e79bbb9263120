"""Architecture adapters: one per transformer family, found from a model's Hugging Face config."""

from __future__ import annotations

from typing import Any

from edgedistill.errors import ConfigError
from edgedistill.models.architectures.base import Architecture, Kind
from edgedistill.models.architectures.families import FAMILIES

BY_MODEL_TYPE = {model_type: family for family in FAMILIES for model_type in family.model_types}


def supported() -> str:
    """The families and their model types, for messages."""
    return "; ".join(f"{f.name} ({', '.join(f.model_types)})" for f in FAMILIES)


def architecture_of(model_or_config: Any, where: str = "model") -> Architecture:
    """The adapter for a model (or its config), by ``model_type``.

    Raises:
        ConfigError: a family edgedistill has no adapter for (the message lists the supported ones).
    """
    config = getattr(model_or_config, "config", model_or_config)
    model_type = getattr(config, "model_type", None)
    if model_type not in BY_MODEL_TYPE:
        raise ConfigError(f"{where}: model type '{model_type}' is not a family edgedistill can slice; supported: "
                          f"{supported()}")
    return BY_MODEL_TYPE[model_type]


__all__ = ["BY_MODEL_TYPE", "FAMILIES", "Architecture", "Kind", "architecture_of", "supported"]
