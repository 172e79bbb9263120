"""The config reference in README, generated from the config models so it cannot drift.

``python -m edgedistill.config_doc --write README.md`` rewrites the block between the markers;
a test fails when README and the models disagree.
"""

from __future__ import annotations

import re
import sys
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from edgedistill.config import PipelineConfig

BEGIN, END = "<!-- config-reference:begin -->", "<!-- config-reference:end -->"


def models_in(annotation: Any) -> list[type[BaseModel]]:
    """The config models an annotation holds, through ``Annotated``, unions and ``list``, in order."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    for arg in typing.get_args(annotation):
        found += [m for m in models_in(arg) if m not in found]
    return found


def type_name(annotation: Any) -> str:
    members = models_in(annotation)
    if len(members) > 1:  # a (discriminated) union of models: name them
        optional = type(None) in typing.get_args(annotation)
        return " | ".join(m.__name__ for m in members) + (" | None" if optional else "")
    text = str(annotation).replace("typing.", "").replace("pathlib.", "")
    text = re.sub(r"edgedistill\.config\.(?:\w+\.)?", "", text)  # the package and its per-stage modules
    text = text.replace("<class '", "").replace("'>", "").replace("NoneType", "None")
    text = re.sub(r"Annotated\[(\w+), FieldInfo\(.*?\]\)\]", r"\1", text)
    return re.sub(r"Optional\[(.*)\]", r"\1 | None", text)


def default_text(field: Any) -> str:
    if field.default is PydanticUndefined and field.default_factory is None:
        return "required"
    value = field.default_factory() if field.default_factory else field.default
    if isinstance(value, BaseModel):
        return "see below"
    if isinstance(value, list) and value and isinstance(value[0], BaseModel):
        return "`" + str([v.model_dump(exclude_defaults=True) for v in value]) + "`"
    return f"`{value}`"


def rows(model: type[BaseModel], prefix: str = "", seen: set[str] | None = None) -> list[str]:
    """One row per field, then the fields of the models it holds (each key once, for unions of models)."""
    seen = set() if seen is None else seen
    out = []
    for name, field in model.model_fields.items():
        key = f"{prefix}{name}"
        if key in seen:
            continue
        seen.add(key)
        doc = (field.description or "").replace("|", "\\|")
        kind = type_name(field.annotation).replace("|", "\\|")
        out.append(f"| `{key}` | {kind} | {default_text(field)} | {doc} |")
        many = typing.get_origin(field.annotation) is list
        for child in models_in(field.annotation):
            out.extend(rows(child, f"{key}[]." if many else f"{key}.", seen))
    return out


def config_reference() -> str:
    header = ["| key | type | default | meaning |", "|---|---|---|---|"]
    return "\n".join([BEGIN, *header, *rows(PipelineConfig), END])


def replace_block(text: str) -> str:
    start, end = text.index(BEGIN), text.index(END) + len(END)
    return text[:start] + config_reference() + text[end:]


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--write":
        path = Path(sys.argv[2])
        path.write_text(replace_block(path.read_text()))
    else:
        print(config_reference())
