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


def merged_type(annotations: list[Any]) -> str:
    """One type for a key several union members share: their Literals joined into one, other types listed."""
    literals = [a for a in annotations if typing.get_origin(a) is typing.Literal]
    if len(literals) == len(annotations):
        values = list(dict.fromkeys(v for a in literals for v in typing.get_args(a)))
        return f"Literal{values}"
    return " | ".join(dict.fromkeys(type_name(a) for a in annotations))


def member_label(model: type[BaseModel]) -> str:
    """How a config names a union member: its ``mode`` or ``source`` values (``static-int8``), else its class."""
    for name in ("mode", "source"):
        field = model.model_fields.get(name)
        if field is not None and typing.get_origin(field.annotation) is typing.Literal:
            return "/".join(map(str, typing.get_args(field.annotation)))
    return model.__name__


def row(key: str, fields: list[Any], members: list[str], of: int) -> str:
    """The row of ``key`` (declared by ``members``, ``of`` union members in all; one field outside unions)."""
    defaults = list(dict.fromkeys(default_text(f) for f in fields))
    doc = next((f.description for f in fields if f.description), "") or ""
    if len(members) < of:
        doc = f"{doc} ({', '.join(members)} only)".strip()
    kind = type_name(fields[0].annotation) if len(fields) == 1 else merged_type([f.annotation for f in fields])
    default = defaults[0] if len(defaults) == 1 else "by kind"
    kind, doc = kind.replace("|", "\\|"), doc.replace("|", "\\|")
    return f"| `{key}` | {kind} | {default} | {doc} |"


def rows(models: list[type[BaseModel]], prefix: str = "") -> list[str]:
    """One row per field, then the fields of the models it holds; the members of a union of models share one set
    of rows (each key once, its types merged, saying which members declare it when not all do)."""
    keys: dict[str, list[tuple[str, Any]]] = {}
    for model in models:
        for name, field in model.model_fields.items():
            keys.setdefault(name, []).append((member_label(model), field))
    out = []
    for name, declared in keys.items():
        fields = [f for _, f in declared]
        key = f"{prefix}{name}"
        out.append(row(key, fields, [m for m, _ in declared], len(models)))
        children = [m for f in fields for m in models_in(f.annotation)]
        if children:
            many = any(typing.get_origin(f.annotation) is list for f in fields)
            out.extend(rows(list(dict.fromkeys(children)), f"{key}[]." if many else f"{key}."))
    return out


def config_reference() -> str:
    header = ["| key | type | default | meaning |", "|---|---|---|---|"]
    return "\n".join([BEGIN, *header, *rows([PipelineConfig]), END])


def replace_block(text: str) -> str:
    start, end = text.index(BEGIN), text.index(END) + len(END)
    return text[:start] + config_reference() + text[end:]


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--write":
        path = Path(sys.argv[2])
        path.write_text(replace_block(path.read_text()))
    else:
        print(config_reference())
