"""The JSON Schema editors use: it accepts the real specs and rejects the mistakes editors can see."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from drflow.spec.schema import SCHEMA_DIALECT, json_schema, write_schema

ROOT = Path(__file__).resolve().parents[2]
SPECS = [ROOT / "plan_specs" / "api-marketplace.yaml", ROOT / "plan_specs" / "examples" / "minimal.yaml"]


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    schema = json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


class _Yaml12Loader(yaml.SafeLoader):
    """Dates stay text, as editors (YAML 1.2) and drflow's own reader read them (`reviewed: 2026-11-16`)."""


def _as_text(loader: _Yaml12Loader, node: yaml.Node) -> str:
    assert isinstance(node, yaml.ScalarNode)
    return str(loader.construct_scalar(node))


_Yaml12Loader.add_constructor("tag:yaml.org,2002:timestamp", _as_text)


def load_yaml(text: str) -> Any:
    return yaml.load(text, Loader=_Yaml12Loader)  # noqa: S506 - a SafeLoader subclass


def marketplace() -> dict[str, Any]:
    data: dict[str, Any] = load_yaml(SPECS[0].read_text())
    return data


def test_schema_header() -> None:
    schema = json_schema()
    assert schema["$schema"] == SCHEMA_DIALECT
    assert schema["$id"] and schema["title"].startswith("drflow")
    assert schema["additionalProperties"] is False


@pytest.mark.parametrize("spec", SPECS, ids=lambda path: path.name)
def test_schema_accepts_the_specs(validator: jsonschema.Draft202012Validator, spec: Path) -> None:
    errors = [error.message for error in validator.iter_errors(load_yaml(spec.read_text()))]
    assert errors == []


def test_schema_rejects_what_an_editor_can_see(validator: jsonschema.Draft202012Validator) -> None:
    data = marketplace()
    component = data["components"][0]
    component["rpo"] = "5 minutes"
    component["backups"][0]["compresion"] = "zstd"
    component["backups"][0]["schedule"] = "0 2 * *"
    data["storage"][0]["type"] = "ftp"
    errors = {tuple(error.absolute_path) for error in validator.iter_errors(data)}
    assert ("components", 0, "rpo") in errors
    assert ("components", 0, "backups", 0) in errors  # the unknown key
    assert ("components", 0, "backups", 0, "schedule") in errors
    assert any(path[:2] == ("storage", 0) for path in errors)


def test_value_types_keep_their_string_schemas() -> None:
    defs = json_schema()["$defs"]
    rpo = defs["Component"]["properties"]["rpo"]
    assert rpo["type"] == "string" and "pattern" in rpo
    assert rpo["description"].startswith("Recovery point objective.") and "duration" in rpo["description"]
    assert defs["Defaults"]["properties"]["retry_delay"]["default"] == "5m"  # not ISO 8601 "PT5M"
    schedule = defs["BackupPolicy"]["properties"]["schedule"]
    assert schedule["type"] == "string" and "@daily" in schedule["description"]
    assert all("description" in model for model in defs.values())


def test_write_schema(tmp_path: Path) -> None:
    target = write_schema(tmp_path / "drflow.schema.json")
    assert json.loads(target.read_text()) == json_schema()
