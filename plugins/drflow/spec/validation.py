"""Validation suites: the checks a drill's `validation:` list and a plan's `validate` step run.

An entry without `type:` is the original `{name, query, expected}` SQL check (`type: sql`). Typed entries:

- functional: `http` (status, body match, latency), `integration` (the service's dependencies answer);
- data: `checksum` (integrity against the backup), `constraints` (foreign keys and CHECKs hold), `amcheck`
  (btree indexes), `row-count` (completeness against the backup, within a tolerance), `orphans` (a query
  listing rows that break a relationship must list none);
- performance: `http-latency` (percentiles over N requests), `pgbench` (a short read-only run against a
  baseline recorded from the source at backup time).
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    PlainSerializer,
    StringConstraints,
    Tag,
    TypeAdapter,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from drflow.spec.types import NAME_PATTERN, Duration, ExpectedValue, PositiveDuration

Name = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
ConnId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,250}$")]
TABLE_PATTERN = r"^[A-Za-z_][A-Za-z0-9_$]{0,62}(\.[A-Za-z_][A-Za-z0-9_$]{0,62})?$"
URL_PATTERN = r"^https?://[^\s/]+(/\S*)?$"
TableName = Annotated[
    str,
    StringConstraints(pattern=TABLE_PATTERN),
    Field(
        description="A table as PostgreSQL stores its name (unquoted names are lowercase): `accounts` (schema "
        "public) or `billing.invoices`."
    ),
]
Url = Annotated[str, StringConstraints(pattern=URL_PATTERN)]

_LATENCY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s)\s*$")
_TOLERANCE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(%?)\s*$")
_PERCENTILE = re.compile(r"^p(\d{1,2}(\.\d+)?|100)$")


def parse_latency(value: object) -> float:
    """A latency in seconds, from `250ms`, `1.5s` or `2s`."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise ValueError(f"{value!r} has no unit; write it with one, e.g. {value}ms or {value}s")
    match = _LATENCY.match(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"{value!r} is not a latency; write a number and ms or s, e.g. 250ms or 1.5s")
    seconds = float(match.group(1)) / (1000 if match.group(2) == "ms" else 1)
    if seconds <= 0:
        raise ValueError(f"{value!r} is not greater than zero; write a latency such as 250ms")
    return seconds


def format_latency(seconds: float) -> str:
    """`0.25` → `250ms`, `1.5` → `1.5s` (what a spec would write)."""
    if seconds < 1:
        return f"{seconds * 1000:g}ms"
    return f"{seconds:g}s"


Latency = Annotated[
    float,
    BeforeValidator(parse_latency),
    PlainSerializer(format_latency, return_type=str),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": _LATENCY.pattern,
            "description": "A latency: a number and ms or s, e.g. 250ms or 1.5s.",
        }
    ),
]


def parse_tolerance(value: object) -> str:
    """`0`, `25` (rows) or `0.5%` (of the recorded count), kept as text."""
    text = str(value) if isinstance(value, int | float) and not isinstance(value, bool) else value
    match = _TOLERANCE.match(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"{value!r} is not a tolerance; write a number of rows (e.g. 10) or a percentage (e.g. 0.5%)")
    return f"{match.group(1)}{match.group(2)}"


Tolerance = Annotated[
    str,
    BeforeValidator(parse_tolerance),
    WithJsonSchema(
        {
            "type": ["string", "integer"],
            "description": "Rows (10) or a percentage of the recorded count (0.5%).",
        }
    ),
]


Statuses = Annotated[
    list[int],
    BeforeValidator(lambda value: [value] if isinstance(value, int) and not isinstance(value, bool) else value),
    WithJsonSchema(
        {
            "anyOf": [{"type": "integer"}, {"type": "array", "items": {"type": "integer"}, "minItems": 1}],
            "description": "An HTTP status (200) or a list of them ([200, 204]).",
        }
    ),
]


class CheckModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Name = Field(description="Check name, unique within the drill or step; reports name failures by it.")


class DatabaseCheck(CheckModel):
    statement_timeout: Duration | None = Field(
        None, description="Cancel each of the check's queries after this long (default 60s)."
    )


class SqlCheck(DatabaseCheck):
    """A query returning one value, compared with `expected` or with the value recorded at backup time."""

    type: Literal["sql"] = Field("sql", description="sql (the default when `type` is left out).")
    query: str = Field(min_length=1, description="SQL returning one value, e.g. select count(*) from users.")
    expected: ExpectedValue | None = Field(
        None,
        description="Value the query must return (compared as text); when omitted, the value recorded at backup time.",
    )


class HttpAddress(BaseModel):
    """Where an HTTP check goes: an Airflow http connection (its base URL, auth and headers) or a plain URL."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    conn_id: ConnId | None = Field(None, description="Airflow http connection: base URL, login/password, headers.")
    url: Url | None = Field(None, description="A plain URL (no credentials in it: use conn_id for those).")
    endpoint: str = Field("", description="Path appended to the connection's or the URL's base, e.g. /health.")

    @model_validator(mode="after")
    def _one_address(self) -> HttpAddress:
        if (self.conn_id is None) == (self.url is None):
            raise ValueError(
                "give exactly one of conn_id (an Airflow http connection) or url (http://host/path); "
                "a check needs one address"
            )
        return self


class HttpCheck(CheckModel, HttpAddress):
    """One request: the status, optionally the body and the time it took."""

    type: Literal["http"]
    method: Literal["GET", "HEAD", "POST"] = "GET"
    expect_status: Statuses = Field([200], min_length=1, description="Statuses that pass (default 200).")
    body_contains: str | None = Field(None, min_length=1, description="Text the body must contain.")
    body_matches: str | None = Field(None, min_length=1, description="Regular expression the body must match.")
    max_latency: Latency | None = Field(None, description="The answer must come within this long, e.g. 500ms.")
    timeout: Latency = Field(10.0, description="Give up waiting after this long (default 10s).")

    @field_validator("body_matches")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                message = f"body_matches {value!r} is not a regular expression ({exc}); fix the pattern"
                raise ValueError(message) from None
        return value


class IntegrationPoint(HttpAddress):
    """A dependency of the service: an HTTP endpoint (url, or an http connection) or a TCP service (a connection)."""

    name: Name = Field(description="The dependency, e.g. payment-provider.")
    expect_status: Statuses | None = Field(
        None, description="HTTP statuses that count as reachable (default: any answer below 500)."
    )


class IntegrationCheck(CheckModel):
    """The integration points the recovered service needs answer: HTTP ones with a status, others accept TCP."""

    type: Literal["integration"]
    points: list[IntegrationPoint] = Field(min_length=1, description="The service's dependencies.")
    timeout: Latency = Field(5.0, description="Per point (default 5s).")


class ChecksumCheck(DatabaseCheck):
    """Integrity: each table's checksum (and row count) equals the one recorded at backup time."""

    type: Literal["checksum"]
    tables: list[TableName] = Field(min_length=1, description="Tables to checksum.")


class ConstraintsCheck(DatabaseCheck):
    """Consistency: no row breaks a foreign key or CHECK constraint (NOT VALID ones and disabled triggers too)."""

    type: Literal["constraints"]
    tables: list[TableName] = Field([], description="Tables whose constraints are checked (default: every table).")


class AmcheckCheck(DatabaseCheck):
    """Consistency: `bt_index_check` over every btree index of the database (amcheck)."""

    type: Literal["amcheck"]
    heapallindexed: bool = Field(False, description="Also check every heap tuple has its index entry (slower).")


class RowCountCheck(DatabaseCheck):
    """Completeness: each table's row count is within `tolerance` of the count recorded at backup time."""

    type: Literal["row-count"]
    tables: list[TableName] = Field(min_length=1, description="Tables to count.")
    tolerance: Tolerance = Field("0", description="Rows (10) or a percentage (0.5%) a count may differ by.")


class OrphansCheck(DatabaseCheck):
    """Relationships: a query listing the rows that break a relationship must list at most `max` rows."""

    type: Literal["orphans"]
    query: str = Field(
        min_length=1,
        description="A select whose rows are the orphans, e.g. payments whose invoice does not exist.",
    )
    max: int = Field(0, ge=0, description="Orphans allowed (default 0).")


class HttpLatencyCheck(CheckModel, HttpAddress):
    """Performance: N requests, their response-time percentiles against limits."""

    type: Literal["http-latency"]
    requests: int = Field(20, ge=1, le=10000, description="How many requests (one after the other).")
    percentiles: dict[str, Latency] = Field(
        min_length=1, description="Limit per percentile, e.g. {p50: 100ms, p95: 300ms, p99: 1s}."
    )
    expect_status: Statuses = Field([200], min_length=1, description="Every request must answer one of these.")
    timeout: Latency = Field(10.0, description="Per request (default 10s).")

    @field_validator("percentiles")
    @classmethod
    def _percentile_names(cls, value: dict[str, float]) -> dict[str, float]:
        for key in value:
            if not _PERCENTILE.match(key):
                raise ValueError(f"'{key}' is not a percentile; write p50, p95, p99, p99.9 or p100")
        return value


class PgbenchCheck(DatabaseCheck):
    """Performance: a short read-only pgbench run against a baseline.

    With `script` (read-only statements and pgbench `\\set` lines) the same run is recorded on the source at
    backup time, and the restored copy must reach `min_ratio` of its transactions per second. Without it,
    pgbench's built-in select-only run (`-S`) on tables pgbench creates in a scratch database of the
    restored instance, judged against `min_tps`.
    """

    type: Literal["pgbench"]
    duration: PositiveDuration = Field(timedelta(seconds=5), description="How long each run lasts (default 5s).")
    clients: int = Field(1, ge=1, le=64, description="Concurrent clients (pgbench -c).")
    script: str | None = Field(
        None,
        min_length=1,
        description="A pgbench script of read-only statements, e.g. `\\set id random(1, 5000)` and "
        "`select email from accounts where id = :id;`.",
    )
    scale: int = Field(1, ge=1, le=100, description="Built-in run only: pgbench -i scale of the scratch tables.")
    min_ratio: float = Field(
        0.5, gt=0, le=10, description="With a script: the restored copy's TPS over the source's, at least."
    )
    min_tps: float | None = Field(None, gt=0, description="Transactions per second the run must reach, at least.")

    @model_validator(mode="after")
    def _a_baseline(self) -> PgbenchCheck:
        if self.duration > timedelta(minutes=5):
            raise ValueError("a pgbench check runs a few seconds, at most 5m; shorten duration")
        if self.script is None and self.min_tps is None:
            raise ValueError(
                "the built-in select-only run has no baseline from the source; give min_tps (transactions per "
                "second it must reach), or a script of your own read-only queries to compare with the source"
            )
        return self


def _check_kind(value: object) -> str:
    if isinstance(value, dict):
        return str(value.get("type", "sql"))
    return str(getattr(value, "type", "sql"))


ValidationEntry = Annotated[
    Annotated[SqlCheck, Tag("sql")]
    | Annotated[HttpCheck, Tag("http")]
    | Annotated[IntegrationCheck, Tag("integration")]
    | Annotated[ChecksumCheck, Tag("checksum")]
    | Annotated[ConstraintsCheck, Tag("constraints")]
    | Annotated[AmcheckCheck, Tag("amcheck")]
    | Annotated[RowCountCheck, Tag("row-count")]
    | Annotated[OrphansCheck, Tag("orphans")]
    | Annotated[HttpLatencyCheck, Tag("http-latency")]
    | Annotated[PgbenchCheck, Tag("pgbench")],
    Discriminator(_check_kind),
]
"""One entry of a validation suite; `type` chooses the kind, `sql` when left out."""

CATEGORY: dict[str, Literal["functional", "data", "performance"]] = {
    "sql": "data",
    "http": "functional",
    "integration": "functional",
    "checksum": "data",
    "constraints": "data",
    "amcheck": "data",
    "row-count": "data",
    "orphans": "data",
    "http-latency": "performance",
    "pgbench": "performance",
}
DATABASE_TYPES = frozenset(kind for kind in CATEGORY if kind not in ("http", "integration", "http-latency"))
_ENTRIES: TypeAdapter[list[ValidationEntry]] = TypeAdapter(list[ValidationEntry])


def parse_checks(entries: object) -> list[ValidationEntry]:
    """Entries as a builder wrote them (``model_dump(mode="json")``), typed again; raises ValueError."""
    return _ENTRIES.validate_python(entries)


def needs_baseline(check: ValidationEntry) -> bool:
    """Typed checks that compare with values recorded on the source when the backup was taken."""
    return isinstance(check, ChecksumCheck | RowCountCheck) or (isinstance(check, PgbenchCheck) and bool(check.script))


def needs_scratch(check: ValidationEntry) -> bool:
    """Checks that write to the instance they run on (pgbench tables): only on a restored copy."""
    return isinstance(check, PgbenchCheck) and check.script is None


def qualified(table: str) -> tuple[str, str]:
    """`accounts` → (`public`, `accounts`); `billing.invoices` → (`billing`, `invoices`)."""
    schema, _, name = table.rpartition(".")
    return schema or "public", name


def pgbench_key(check: PgbenchCheck) -> str:
    """What identifies one baseline run: the same script, clients and duration give the same key."""
    import hashlib

    text = f"{check.script or '-S'}\n{check.clients}\n{int(check.duration.total_seconds())}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def describe(check: ValidationEntry) -> str:
    """One line for runbooks and docs: what the check proves."""
    what = f"`{check.name}`: "
    if isinstance(check, SqlCheck):
        return what + f"`{check.query}` = {check.expected if check.expected is not None else 'the value at backup'}"
    if isinstance(check, HttpCheck):
        statuses = " or ".join(map(str, check.expect_status))
        parts = [f"{check.method} {check.conn_id or check.url}{check.endpoint} answers {statuses}"]
        if check.body_contains:
            parts.append(f"its body contains {check.body_contains!r}")
        if check.body_matches:
            parts.append(f"matches /{check.body_matches}/")
        if check.max_latency is not None:
            parts.append(f"within {format_latency(check.max_latency)}")
        return what + ", ".join(parts)
    if isinstance(check, IntegrationCheck):
        return what + "the integration points " + ", ".join(p.name for p in check.points) + " answer"
    if isinstance(check, ChecksumCheck):
        return what + f"{', '.join(check.tables)} match their checksums at backup time"
    if isinstance(check, ConstraintsCheck):
        scope = ", ".join(check.tables) if check.tables else "any table"
        return what + f"no row of {scope} breaks a foreign key or CHECK constraint"
    if isinstance(check, AmcheckCheck):
        return (
            what
            + "every btree index passes amcheck's bt_index_check"
            + (" (heapallindexed)" if check.heapallindexed else "")
        )
    if isinstance(check, RowCountCheck):
        within = "equal to" if float(check.tolerance.rstrip("%")) == 0 else f"within {check.tolerance} of"
        return what + f"row counts of {', '.join(check.tables)} {within} the counts at backup time"
    if isinstance(check, OrphansCheck):
        return what + f"at most {check.max} rows from `{check.query}`"
    if isinstance(check, HttpLatencyCheck):
        limits = ", ".join(f"{p} ≤ {format_latency(v)}" for p, v in check.percentiles.items())
        return what + f"{limits} over {check.requests} requests to {check.conn_id or check.url}{check.endpoint}"
    seconds = int(check.duration.total_seconds())
    if check.script is not None:
        floor = f"at least {check.min_ratio:g}× the source's transactions per second at backup time"
        return what + f"a {seconds}s read-only pgbench run ({check.clients} clients) reaches {floor}"
    return what + f"a {seconds}s pgbench -S run on scratch tables reaches {check.min_tps:g} tps"
