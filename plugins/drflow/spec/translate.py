"""pydantic validation errors → diagnostics in plain sentences, at the line and column of the YAML."""

from __future__ import annotations

import re
import types
from datetime import date, timedelta
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, Tag, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails

from drflow.spec.check import secret_key
from drflow.spec.diagnostics import Diagnostic, closest, did_you_mean, quoted
from drflow.spec.model import Spec
from drflow.spec.source import Loc, Source
from drflow.spec.types import (
    NAME_PATTERN,
    QUEUE_PATTERN,
    parse_duration,
    parse_plain_path,
    parse_positive_duration,
    parse_schedule,
    parse_size,
)
from drflow.spec.validation import TABLE_PATTERN, URL_PATTERN

_UNIONS = (Union, types.UnionType)
_PATTERN_HELP = {
    NAME_PATTERN: (
        "is not a valid name",
        "use lowercase letters, digits and '-', starting with a letter, at most 63 characters",
    ),
    r"^[A-Za-z0-9_.-]{1,250}$": (
        "is not a valid Airflow connection id",
        "use letters, digits, '_', '.' and '-', e.g. drflow_pg_primary",
    ),
    r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$": (
        "is not a valid S3 bucket name",
        "use 3 to 63 lowercase letters, digits, '.' and '-', starting and ending with a letter or digit",
    ),
    TABLE_PATTERN: (
        "is not a valid table name",
        "write the table as PostgreSQL stores its name: `accounts` or `schema.table` (letters, digits, '_', '$')",
    ),
    URL_PATTERN: (
        "is not a plain http(s) URL",
        "write http://host/path or https://host/path (credentials go into an Airflow connection: use conn_id)",
    ),
    QUEUE_PATTERN: (
        "is not a valid Celery queue name",
        "use letters, digits, '_', '.', ':' and '-', starting with a letter or digit, e.g. drflow-db",
    ),
}


def validation_diagnostics(error: ValidationError, source: Source) -> list[Diagnostic]:
    details = error.errors(include_url=False)
    typos = _misspelt_required(details)
    # `rop: 5m` is one mistake: the unknown key's message names the required key it misspells, no other.
    misspelt = {(*loc[:-1], key) for loc, key in typos.items()}
    return [
        _diagnostic(d, source, typos.get(tuple(d["loc"])))
        for d in details
        if not (d["type"] == "missing" and tuple(d["loc"]) in misspelt)
    ]


def _misspelt_required(details: list[ErrorDetails]) -> dict[tuple[str | int, ...], str]:
    """Unknown keys (by location) that most likely misspell a required key missing beside them: that key."""
    unknown = [tuple(d["loc"]) for d in details if d["type"] == "extra_forbidden" and d["loc"]]
    missing = [tuple(d["loc"]) for d in details if d["type"] == "missing" and d["loc"]]
    found = {}
    for loc in unknown:
        match = closest(str(loc[-1]), [str(m[-1]) for m in missing if m[:-1] == loc[:-1]])
        if match is not None:
            found[loc] = match
    return found


class _Target:
    """What a pydantic error location refers to: the YAML location and, where known, its field and type."""

    def __init__(self, loc: tuple[str | int, ...]) -> None:
        self.owner: type[BaseModel] | None = None  # the model whose key this is
        self.field: FieldInfo | None = None
        self.type: Any = Spec
        path: list[str | int] = []
        for part in loc:
            current = _strip(self.type)
            branch = _tagged_branch(current, part)
            if branch is not None:  # a discriminated union adds the tag to the location; YAML has no such level
                self.type = branch
                continue
            path.append(part)
            self.owner, self.field = None, None
            if isinstance(part, int):
                self.type = get_args(current)[0] if get_origin(current) is list else None
            elif isinstance(current, type) and issubclass(current, BaseModel):
                self.owner, self.field = current, current.model_fields.get(part)
                self.type = self.field.annotation if self.field else None
            else:
                self.type = None
        self.loc: Loc = tuple(path)
        self.type = _strip(self.type)

    @property
    def key(self) -> str:
        """How messages name the value: its key, or `each 'components' entry` for a list item."""
        if self.loc and isinstance(self.loc[-1], int):
            return f"each '{_parent_key(self.loc)}' entry"
        return next((str(part) for part in reversed(self.loc) if isinstance(part, str)), "value")

    @property
    def subject(self) -> str:
        """The key quoted (`'rto'`), or a list item as it is (`each 'events' entry`)."""
        return self.key if self.key.startswith("each ") else f"'{self.key}'"

    @property
    def validator(self) -> Any:
        """The parse_* function of a duration, size or schedule field."""
        metadata = list(self.field.metadata) if self.field else []
        annotation = self.field.annotation if self.field else None
        for arg in get_args(annotation):
            if get_origin(arg) is Annotated:
                metadata.extend(arg.__metadata__)
        return next((getattr(item, "func", None) for item in metadata if hasattr(item, "func")), None)


def _diagnostic(detail: ErrorDetails, source: Source, required: str | None = None) -> Diagnostic:
    target = _Target(detail["loc"])
    kind, value, ctx = detail["type"], detail.get("input"), detail.get("ctx") or {}
    key, loc = target.key, target.loc

    if kind == "extra_forbidden":
        reason = secret_key(key)
        if reason:
            message = f"'{key}' is not a spec key, and {reason} must never be written into a spec"
            hint = "store it in an Airflow connection and name that connection here (conn_id: my_connection)"
            return source.diagnostic(loc, message, hint, key=True)
        parent = _Target(detail["loc"][:-1]).type
        is_model = isinstance(parent, type) and issubclass(parent, BaseModel)
        # As the spec writes them: `from`, not the Python name `from_node`.
        fields = [info.alias or name for name, info in parent.model_fields.items()] if is_model else []
        suggestion = f"did you mean '{required}' (required, and missing)?" if required else did_you_mean(key, fields)
        hint = " ".join(filter(None, [suggestion, f"{_noun(parent)} keys are: {', '.join(fields)}"]))
        return source.diagnostic(loc, f"unknown key '{key}' in {_noun(parent)}", hint, key=True)

    if kind == "missing":
        owner = target.owner
        description = target.field.description if target.field else None
        message = f"{_noun(owner)} is missing the required key '{key}'"
        hint = f"add '{key}:' with {_expected(target)}" + (f" ({description.rstrip('.')})" if description else "")
        return source.diagnostic(loc, message, hint)

    if value is None and kind != "union_tag_not_found":
        message = f"{key} needs a value" if key.startswith("each ") else f"'{key}' has no value"
        return source.diagnostic(loc, message, f"write {_expected(target)}", key=True)

    if kind == "literal_error":
        allowed = list(get_args(target.type)) or [ctx.get("expected", "")]
        message = f"{target.subject} cannot be {_found(value)}"
        if str(value) in map(str, allowed):  # `version: '1'`: the right value, quoted into text
            return source.diagnostic(loc, message, f"write it without quotes: {key}: {value}")
        suggestion = did_you_mean(str(value), [str(option) for option in allowed])
        hint = " ".join(filter(None, [suggestion, f"use one of {quoted(allowed)}"]))
        return source.diagnostic(loc, message, hint)

    if kind in ("union_tag_invalid", "union_tag_not_found"):
        tags = [tag.strip(" '") for tag in str(ctx.get("expected_tags", "")).split(",") if tag.strip()]
        tags = tags or _union_tags(target.type)
        what = _parent_key(loc)
        # The key that chooses the branch: `type` for storage targets, `action` for automated plan steps.
        field = str(ctx.get("discriminator", "'type'")).strip("'\"")
        if field.endswith("()"):  # a callable discriminator (validation checks: `type`, `sql` when left out)
            field = "type"
        if kind == "union_tag_not_found":
            message = f"this {what} entry has no '{field}'"
            return source.diagnostic(loc, message, f"add '{field}:' with one of {quoted(tags)}")
        tag = str(ctx.get("tag", ""))
        hint = " ".join(filter(None, [did_you_mean(tag, tags), f"the {field}s that exist are {quoted(tags)}"]))
        return source.diagnostic((*loc, field), f"there is no {what} {field} '{tag}'", hint)

    if kind == "string_pattern_mismatch":
        pattern = str(ctx.get("pattern"))
        problem, hint = _PATTERN_HELP.get(pattern, ("does not have the expected form", ""))
        if pattern == NAME_PATTERN and isinstance(value, str):
            suggestion = re.sub(r"[^a-z0-9-]+", "-", value.lower()).strip("-")
            if re.match(NAME_PATTERN, suggestion):
                hint += f", e.g. '{suggestion}'"
        return source.diagnostic(loc, f"{_found(value)} {problem}", hint or f"write {_expected(target)}")

    if kind == "value_error":
        text = str(ctx.get("error", detail["msg"])).removeprefix("Value error, ")
        # The hint follows the last "; " (a quoted value in the message may hold one).
        message, separator, hint = text.rpartition("; ")
        if not separator:
            message, hint = text, ""
        return source.diagnostic(loc, message, hint or f"write {_expected(target)}")

    if kind in ("too_short", "string_too_short"):
        if kind == "string_too_short":
            return source.diagnostic(loc, f"{target.subject} must not be empty", f"write {_expected(target)}")
        count = ctx.get("min_length", 1)
        message = f"{target.subject} needs at least {count} item{'s' if count != 1 else ''}"
        description = target.field.description if target.field else None
        hint = f"write {_expected(target)}" + (f" ({description.rstrip('.')})" if description else "")
        return source.diagnostic(loc, message, hint)

    bounds = {"greater_than_equal": "at least", "less_than_equal": "at most", "greater_than": "more than"}
    if kind in bounds:
        limit = next(iter(ctx.values()), "")
        message = f"{target.subject} must be {bounds[kind]} {limit}, not {value}"
        return source.diagnostic(loc, message, f"write a number {bounds[kind]} {limit}")

    if kind.endswith(("_type", "_parsing")) or kind in ("int_from_float", "model_attributes_type"):
        if not loc:  # the whole document: a list, or a lone value, where the spec's keys belong
            message = f"the spec must be a mapping of its keys (version, metadata, components, …), not {_found(value)}"
            return source.diagnostic(loc, message, "start the file with 'version: 1', each top-level key in column 1")
        hint = f"write {_expected(target)}"
        if target.type is str and not isinstance(value, list | dict):
            hint = f"put the value in quotes: {key}: '{value}'"
        elif get_origin(target.type) is list:
            hint = f"write each item on its own '- ' line below '{key}:'"
        elif isinstance(target.type, type) and issubclass(target.type, BaseModel):
            hint = "write it as 'key: value' lines, indented one level deeper"
        subject = key if key.startswith("each ") else f"'{key}'"
        return source.diagnostic(loc, f"{subject} must be {_expected(target)}, not {_found(value)}", hint)

    return source.diagnostic(loc, detail["msg"], f"write {_expected(target)}")


def _strip(annotation: Any) -> Any:
    """Annotated[X, …] → X and X | None → X."""
    while True:
        if get_origin(annotation) is Annotated:
            annotation = get_args(annotation)[0]
            continue
        if get_origin(annotation) in _UNIONS:
            members = [arg for arg in get_args(annotation) if arg is not type(None)]
            if len(members) == 1:
                annotation = members[0]
                continue
        return annotation


def _tagged_branch(annotation: Any, part: str | int) -> Any:
    if not isinstance(part, str) or get_origin(annotation) not in _UNIONS:
        return None
    for raw in get_args(annotation):  # callable discriminators tag members with Tag(...) in Annotated
        if get_origin(raw) is Annotated and any(isinstance(m, Tag) and m.tag == part for m in get_args(raw)[1:]):
            return _strip(raw)
    for member in map(_strip, get_args(annotation)):
        if isinstance(member, type) and issubclass(member, BaseModel) and part in _union_tags(member):
            return member
    return None


def _union_tags(annotation: Any) -> list[str]:
    members = get_args(annotation) if get_origin(annotation) in _UNIONS else (annotation,)
    tags: list[str] = []
    for member in map(_strip, members):
        if not (isinstance(member, type) and issubclass(member, BaseModel)):
            continue
        for key in ("type", "action"):  # the discriminators the spec uses
            field = member.model_fields.get(key)
            if field is not None and get_origin(field.annotation) is Literal:
                tags.extend(str(arg) for arg in get_args(field.annotation))
    return tags


def _noun(model: Any) -> str:
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        return "this mapping"
    if model is Spec:
        return "the spec"
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", model.__name__).lower().replace("s3", "S3")


def _parent_key(loc: Loc) -> str:
    return next((str(part) for part in reversed(loc) if isinstance(part, str)), "list")


def _expected(target: _Target) -> str:
    validator, annotation = target.validator, target.type
    if validator is parse_duration:
        return "a duration such as 30s, 15m, 1h or 2d"
    if validator is parse_positive_duration:
        return "a duration greater than zero, such as 30s, 15m, 1h or 2d"
    if validator is parse_plain_path:
        return "an absolute path such as /etc/pgbackrest/pgbackrest.conf"
    if validator is parse_schedule:
        return "a cron expression such as '0 2 * * *' or a preset such as @daily"
    if validator is parse_size:
        return "a size such as 512MiB"
    if get_origin(annotation) is Literal:
        return f"one of {quoted(get_args(annotation))}"
    if get_origin(annotation) is list:
        return "a list of " + _plural(_strip(get_args(annotation)[0]))
    if get_origin(annotation) in _UNIONS and _union_tags(annotation):
        return f"a mapping with a 'type' ({quoted(_union_tags(annotation))})"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return f"a mapping of {_noun(annotation)} keys"
    simple = {
        str: "text",
        int: "a whole number",
        bool: "true or false",
        float: "a number",
        timedelta: "a duration",
    }
    return simple.get(annotation, "a value") if isinstance(annotation, type) else "a value"


def _plural(annotation: Any) -> str:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return f"{_noun(annotation)} mappings"
    if get_origin(annotation) in _UNIONS:
        return "mappings with a 'type'"
    return "names" if annotation is str else "values"


def _found(value: Any) -> str:
    """How a YAML reader would describe the value that was written."""
    if value is None:
        return "empty"
    if isinstance(value, bool):
        return f"{str(value).lower()} (a yes/no value)"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, date):
        return f"the date {value.isoformat()}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return repr(value) if isinstance(value, str) else f"{value!r}"
