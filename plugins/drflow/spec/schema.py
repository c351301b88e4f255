"""The JSON Schema of the spec language, for editors (yaml-language-server) and other tools.

Editors check the shape of a spec as it is typed; `drflow validate` remains the judge (references,
cron expressions, secrets and feasibility are beyond JSON Schema).
"""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path
from typing import Any, get_args

from pydantic.json_schema import GenerateJsonSchema

from drflow.spec.model import Spec
from drflow.spec.types import Duration, PlainPath, PositiveDuration, Schedule, Size, format_duration

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_ID = "urn:drflow:spec:1"


class _SpecJsonSchema(GenerateJsonSchema):
    def encode_default(self, dft: Any) -> Any:
        # pydantic writes timedelta defaults as ISO 8601 ("PT5M"); a spec writes "5m".
        if isinstance(dft, timedelta):
            return format_duration(dft)
        return super().encode_default(dft)

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False  # "Rpo", "Conn Id": generated titles add noise to editor hovers


def json_schema() -> dict[str, Any]:
    """Spec.model_json_schema with the dialect, an id, a title and complete descriptions."""
    schema = Spec.model_json_schema(schema_generator=_SpecJsonSchema)
    _describe_value_types(schema)
    _preset_or_policy(schema)
    return {
        "$schema": SCHEMA_DIALECT,
        "$id": SCHEMA_ID,
        "title": "drflow disaster-recovery spec, version 1",
        **{key: value for key, value in schema.items() if key != "title"},
    }


def _preset_or_policy(schema: dict[str, Any]) -> None:
    """oneOf makes editors flag the whole entry; choose the branch the way the model does (a `preset` key)."""
    backups = schema["$defs"]["Component"]["properties"]["backups"]
    backups["items"] = {
        "if": {"type": "object", "required": ["preset"]},
        "then": {"$ref": "#/$defs/BackupPreset"},
        "else": {"$ref": "#/$defs/BackupPolicy"},
    }


def write_schema(path: str | os.PathLike[str]) -> Path:
    """Write the schema as formatted JSON (stable output, so a committed copy diffs cleanly)."""
    target = Path(path)
    target.write_text(json.dumps(json_schema(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return target


def _describe_value_types(node: Any) -> None:
    """A field's own description replaces its type's ("Recovery point objective." hides how to write a
    duration); put the type's description back after the field's."""
    formats = {}
    for value_type in (Duration, PositiveDuration, Schedule, Size, PlainPath):
        for item in get_args(value_type):
            json_schema = getattr(item, "json_schema", None)
            if isinstance(json_schema, dict) and "pattern" in json_schema:
                formats[json_schema["pattern"]] = json_schema["description"]
    _walk(node, formats)


def _walk(node: Any, formats: dict[str, str]) -> None:
    if isinstance(node, list):
        for item in node:
            _walk(item, formats)
    if not isinstance(node, dict):
        return
    described = formats.get(node.get("pattern", ""))
    if described and node.get("description") and described not in node["description"]:
        node["description"] = f"{node['description']} {described}"
    for value in node.values():
        _walk(value, formats)
