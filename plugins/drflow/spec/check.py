"""Checks across a spec that a single model cannot see: names, references, secrets, RPO feasibility.

Name, reference and secret checks read the raw YAML values, so they run even when the model
rejects other parts of the file and a reviewer sees every error at once. Feasibility checks
(warnings) need durations and schedules, so they run on the validated Spec only.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, get_args

from drflow.spec.check_helpers import choices as _choices
from drflow.spec.check_helpers import duplicates as _duplicates
from drflow.spec.check_helpers import items as _items
from drflow.spec.check_helpers import names as _names
from drflow.spec.check_snapshot import DRILLABLE_METHODS, check_snapshot_policy, takes_snapshots
from drflow.spec.check_standby import check_standby_source
from drflow.spec.diagnostics import Diagnostic, quoted
from drflow.spec.files import check_method_fits_datastore
from drflow.spec.model import BackupMethod, BackupPreset, Spec
from drflow.spec.source import Loc, Source
from drflow.spec.types import format_duration, schedule_interval

_SECRET_KEYS = (
    (re.compile(r"passw(or)?d|^pass$|pwd"), "a password"),
    (re.compile(r"private_?key"), "a private key"),
    (re.compile(r"api_?key|access_?key|secret_?key"), "an access key"),
    (re.compile(r"secret"), "a secret"),
    (re.compile(r"token"), "a token"),
    (re.compile(r"credential"), "a credential"),
    (re.compile(r"^(proxy_)?authorization$|auth_?header"), "an authorization credential"),
)
# One alternation, one search per string value: this runs on every value during DAG parsing.
# Each kind names the part to mask (`<kind>_v`); kinds without one are masked whole.
_SECRET_NAMES = (
    r"[A-Za-z0-9_]*(?:secret|token|passw(?:or)?d|pwd|api_?key|access_?key|private_?key|credential)[A-Za-z0-9_]*"
)
_SECRET_VALUES = re.compile(
    r"(?P<uri>[a-z][a-z0-9+.-]*://[^\s/:@]+:(?P<uri_v>[^\s/@]+)@)"
    rf"|(?P<assign>\b(?P<assign_name>{_SECRET_NAMES})\s*=\s*(?P<assign_v>[^\s&;,'\"{{}}]{{3,}}))"
    r"|(?P<auth>\bauthorization\s*[:=]\s*(?:(?:bearer|basic|token|digest)\s+)?(?P<auth_v>[^\s'\",;{}]{4,}))"
    r"|(?P<bearer>\bbearer\s+(?P<bearer_v>[A-Za-z0-9._~+/-]{8,}=*))"
    r"|(?P<slack>hooks\.slack\.com/(?:services|workflows|triggers)/(?P<slack_v>[A-Za-z0-9/_-]+))"
    r"|(?P<webhook>discord(?:app)?\.com/api/webhooks/(?P<webhook_v>[A-Za-z0-9/_-]+))"
    r"|(?P<slack_token>(?-i:\bxox[abposr]-[A-Za-z0-9-]{10,}))"
    r"|(?P<github>(?-i:\bgh[pousr]_[A-Za-z0-9]{30,}))"
    r"|(?P<aws>(?-i:\b(?:AKIA|ASIA)[A-Z0-9]{16}\b))"
    r"|(?P<key>(?-i:-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----))",
    re.IGNORECASE,
)
# Cheap first look: a string without any of these cannot match _SECRET_VALUES (most spec values).
_MAYBE_SECRET = re.compile(
    r"=|://|bearer|authorization|hooks\.slack|discord|xox|gh[pousr]_|akia|asia|private key", re.IGNORECASE
)
_SECRET_VALUE_REASONS = {
    "uri": "a connection URI with a password",
    "auth": "an Authorization header with its credential",
    "bearer": "a bearer token",
    "slack": "a Slack webhook URL (the URL is the secret)",
    "webhook": "a Discord webhook URL (the URL is the secret)",
    "slack_token": "a Slack token",
    "github": "a GitHub token",
    "aws": "an AWS access key id",
    "key": "a private key",
}
# `key: value` and `"key": "value"` on one line, as YAML block and flow mappings write them.
_KEY_VALUE = re.compile(r"""(["']?)([A-Za-z0-9_.-]+)\1\s*:\s+(["']?)([^\s,{}\[\]'"#]+)""")
_TEMPLATE = re.compile(r"^\s*\{\{.*\}\}\s*$", re.DOTALL)
_SECRET_HINT = (
    "store credentials in an Airflow connection and name its conn_id in the spec; "
    "remove this value and rotate the credential (it stays in the git history)"
)
MASK = "****"


@lru_cache(maxsize=1024)
def secret_key(key: str) -> str:
    """What kind of secret a key name suggests (`'a password'`), or an empty string."""
    normalized = key.lower().replace("-", "_")
    return next((reason for pattern, reason in _SECRET_KEYS if pattern.search(normalized)), "")


def secret_in(value: str) -> str:
    """What kind of secret a text holds (`'a bearer token'`), or an empty string."""
    if not _MAYBE_SECRET.search(value):
        return ""
    match = _SECRET_VALUES.search(value)
    if not match or not match.lastgroup:
        return ""
    kind = _kind(match)
    if kind == "assign":
        name = match.group("assign_name")
        return f"{secret_key(name) or 'a secret'} ({name}=…)"
    return _SECRET_VALUE_REASONS[kind]


def mask_secrets(line: str) -> str:
    """The line with every secret it holds replaced by ****, for printing source lines under errors."""
    parts, last = [], 0
    for match in _SECRET_VALUES.finditer(line):
        kind = _kind(match)
        group = f"{kind}_v" if f"{kind}_v" in _SECRET_VALUES.groupindex else kind
        start, end = match.span(group)
        parts += [line[last:start], MASK]
        last = end
    line = "".join(parts) + line[last:]

    def mask_value(match: re.Match[str]) -> str:
        if not secret_key(match.group(2)) or match.group(4) == MASK:
            return match.group(0)
        return match.group(0)[: match.start(4) - match.start(0)] + MASK

    return _KEY_VALUE.sub(mask_value, line)


def _kind(match: re.Match[str]) -> str:
    return (
        next(name for name in _SECRET_VALUE_REASONS if match.group(name)) if match.group("assign") is None else "assign"
    )


def check_secrets(source: Source) -> tuple[list[Diagnostic], list[Diagnostic]]:
    """Secrets in any string value, whatever the key: free-form maps (http_call json, SQL checks) too.

    Returns (values, keys): text that holds a secret (`token=…`, a webhook URL …) at the value, and
    text under a key named like a secret (`password:`, `X-Api-Key:`) at that key. Keys the model does
    not know get the model's own message at the same place, which should win (see load_spec_text).
    A whole `{{ … }}` template is a reference, not a secret.
    """
    values, keys = [], []
    for loc, value in _strings(source.data, ()):
        at = next((index for index in range(len(loc) - 1, -1, -1) if isinstance(loc[index], str)), -1)
        key = str(loc[at]) if at >= 0 else ""
        reason = secret_key(key) if key else ""
        if reason:
            if value.strip() and not _TEMPLATE.match(value):
                message = f"'{key}' holds {reason}, which must never be written into a spec"
                keys.append(source.diagnostic(loc[: at + 1], message, _SECRET_HINT, key=True))
            continue
        reason = secret_in(value)
        if reason:
            values.append(source.diagnostic(loc, f"this value contains {reason}", _SECRET_HINT))
    return values, list(dict.fromkeys(keys))


def check_references(source: Source) -> list[Diagnostic]:
    data = source.data
    if not isinstance(data, dict):
        return []
    found: list[Diagnostic] = []
    regions = _items(data, "regions")
    storage = _items(data, "storage")
    components = _items(data, "components")
    found += _duplicates(source, ("regions",), regions, "region", "")
    found += _duplicates(source, ("storage",), storage, "storage target", "")
    found += _duplicates(source, ("components",), components, "component", "")
    region_names, target_names = _names(data, "regions"), _names(data, "storage")

    def region_ref(loc: Loc, what: str) -> None:
        ref = source.get(loc)
        if isinstance(ref, str) and region_names is not None and ref not in region_names:
            hint = _choices(ref, region_names, "declared regions", "declare it under 'regions:'")
            found.append(source.diagnostic(loc, f"{what} is in region '{ref}', which is not declared", hint))

    for index, target in storage:
        region_ref(("storage", index, "region"), f"storage target '{target.get('name')}'")

    for index, component in components:
        base: Loc = ("components", index)
        name = component.get("name")
        within = f" in component '{name}'"
        backups, drills = _items(component, "backups"), _items(component, "drills")
        datastore = component.get("datastore")
        replicas = _items(datastore, "replicas") if isinstance(datastore, dict) else []
        found += _duplicates(source, (*base, "backups"), backups, "backup policy", within)
        found += _duplicates(source, (*base, "drills"), drills, "drill", within)
        found += _duplicates(source, (*base, "datastore", "replicas"), replicas, "replica", within)
        region_ref((*base, "datastore", "primary", "region"), f"the primary of component '{name}'")
        for replica_index, replica in replicas:
            loc = (*base, "datastore", "replicas", replica_index, "region")
            region_ref(loc, f"replica '{replica.get('name')}' of component '{name}'")
        region_ref((*base, "snapshots", "region"), f"the snapshot source of component '{name}'")
        copy_to = (
            component.get("snapshots", {}).get("copy_to") if isinstance(component.get("snapshots"), dict) else None
        )
        for copy_index, _ in enumerate(copy_to if isinstance(copy_to, list) else []):
            region_ref((*base, "snapshots", "copy_to", copy_index), f"a snapshot copy of component '{name}'")

        snapshots = component.get("snapshots")
        if datastore is None:
            for key, items in (("backups", backups), ("drills", drills)):
                # Snapshot policies (and drills of them) need no database: check_snapshot_policy checks them.
                if key == "backups":
                    items = [(i, p) for i, p in items if not takes_snapshots(p)]
                elif any(takes_snapshots(p) for _, p in backups):
                    items = []
                if items:
                    message = f"component '{name}' has {key} but no datastore to take them from"
                    hint = f"add a 'datastore:' (type: postgres, database, primary) or remove its {key}"
                    found.append(source.diagnostic((*base, key), message, hint, key=True))

        policies: dict[Any, Any] = {}  # by name; a policy without a usable name still counts
        for policy_index, policy in backups:
            policy_name = policy.get("name")  # a list or mapping here is the model's error to report
            policies.setdefault(policy_name if isinstance(policy_name, str) else None, policy)
            found += _check_pgbackrest_host(source, (*base, "backups", policy_index), policy, datastore)
            found += check_standby_source(source, (*base, "backups", policy_index), policy, datastore)
            found += check_snapshot_policy(source, (*base, "backups", policy_index), policy, snapshots)
            found += check_method_fits_datastore(source, (*base, "backups", policy_index), policy, datastore)
            targets = policy.get("targets")
            for target_index, ref in enumerate(targets if isinstance(targets, list) else []):
                if isinstance(ref, str) and target_names is not None and ref not in target_names:
                    loc = (*base, "backups", policy_index, "targets", target_index)
                    message = f"backup policy '{policy.get('name')}' sends backups to storage target '{ref}'"
                    message += ", which is not defined"
                    hint = _choices(ref, target_names, "defined storage targets", "define it under 'storage:'")
                    found.append(source.diagnostic(loc, message, hint))

        found += check_config_targets(source, base, component, target_names)

        for drill_index, drill in drills:
            loc = (*base, "drills", drill_index)
            queries, within_drill = _items(drill, "validation"), f" in drill '{drill.get('name')}'"
            found += _duplicates(source, (*loc, "validation"), queries, "validation query", within_drill)
            found += _check_drill(source, loc, drill, name, policies, target_names)
    from drflow.spec.check_plans import check_plans  # imported here: it reuses nothing of this module's state

    found += check_plans(source)
    from drflow.spec.check_statuspage import check_statuspage

    found += check_statuspage(source)
    from drflow.spec.check_storage import check_storage
    from drflow.spec.check_validation import check_validation

    found += check_storage(source) + check_validation(source)
    from drflow.spec.check_exercises import check_exercises

    found += check_exercises(source)
    from drflow.spec.check_sovereignty import check_sovereignty

    found += check_sovereignty(source)
    return found


def _check_pgbackrest_host(source: Source, loc: Loc, policy: dict[str, Any], datastore: Any) -> list[Diagnostic]:
    """pgBackRest runs on the database host and reads the data directory: the spec must say where it is."""
    if policy.get("method") != "pgbackrest" or not isinstance(datastore, dict):
        return []
    primary = datastore.get("primary")
    if not isinstance(primary, dict) or primary.get("data_directory"):
        return []
    message = (
        f"backup policy '{policy.get('name')}' uses pgBackRest, which runs on the primary's host and reads its "
        "data directory, but datastore.primary has no data_directory"
    )
    hint = "set datastore.primary.data_directory to the primary's data directory, e.g. /var/lib/postgresql/15/main"
    return [source.diagnostic((*loc, "method"), message, hint)]


_METHODS = frozenset(get_args(BackupMethod))


def _check_drill(
    source: Source, loc: Loc, drill: dict[str, Any], component: Any, policies: dict[str, Any], targets: Any
) -> list[Diagnostic]:
    drill_name = drill.get("name")
    if not policies:
        message = f"drill '{drill_name}' has nothing to restore: component '{component}' has no backup policy"
        return [source.diagnostic(loc, message, "add a backup policy under 'backups:' or remove the drill")]
    found = []
    policy_ref, target_ref = drill.get("policy"), drill.get("target")
    policy = policies.get(policy_ref) if isinstance(policy_ref, str) else None
    if isinstance(policy_ref, str) and policy is None:
        message = f"drill '{drill_name}' restores backups of policy '{policy_ref}'"
        message += f", which component '{component}' does not have"
        names = [name for name in policies if isinstance(name, str)]
        hint = _choices(
            policy_ref, names, "its backup policies", "name one of its backup policies, or remove 'policy:'"
        )
        found.append(source.diagnostic((*loc, "policy"), message, hint))
    restorable = [
        name
        for name, p in policies.items()
        if isinstance(p, dict) and ("preset" in p or p.get("method") in DRILLABLE_METHODS)
    ]
    # A method the model already refused (a typo) has its own message: no second one about drills.
    method = policy.get("method") if isinstance(policy, dict) else None
    if isinstance(policy, dict) and "preset" not in policy and method in _METHODS and method not in DRILLABLE_METHODS:
        message = (
            f"drill '{drill_name}' restores policy '{policy_ref}' (method {policy.get('method')}), but drills restore "
            "snapshots and pg_basebackup backups only"
        )
        hint = _choices(str(policy_ref), [str(n) for n in restorable], "pg_basebackup or snapshot policies", "")
        found.append(source.diagnostic((*loc, "policy"), message, hint or "add a pg_basebackup policy"))
    elif policy_ref is None and not restorable:
        message = (
            f"drill '{drill_name}' has nothing it can restore: component '{component}' has no pg_basebackup policy"
        )
        hint = "add a policy with method pg_basebackup (or the `database` preset), or remove the drill"
        found.append(source.diagnostic(loc, message, hint))
    if not isinstance(target_ref, str):
        return found
    if targets is not None and target_ref not in targets:
        message = f"drill '{drill_name}' restores from storage target '{target_ref}', which is not defined"
        hint = _choices(target_ref, targets, "defined storage targets", "define it under 'storage:'")
        found.append(source.diagnostic((*loc, "target"), message, hint))
    elif (
        isinstance(policy, dict)
        and isinstance(policy.get("targets"), list)
        and target_ref not in policy["targets"]
        # A policy target that is not defined (a typo) has its own message: no second one here.
        and (targets is None or all(ref in targets for ref in policy["targets"]))
    ):
        message = f"drill '{drill_name}' restores from '{target_ref}', but policy '{policy_ref}' never writes there"
        hint = f"use one of the policy's targets: {quoted(policy['targets'])}"
        found.append(source.diagnostic((*loc, "target"), message, hint))
    return found


def check_config_targets(source: Source, base: Loc, component: Any, target_names: Any) -> list[Diagnostic]:
    """Every target of a component's `config:` is a defined storage target."""
    config = component.get("config") if isinstance(component, dict) else None
    targets = config.get("targets") if isinstance(config, dict) else None
    found = []
    for index, ref in enumerate(targets if isinstance(targets, list) else []):
        if isinstance(ref, str) and target_names is not None and ref not in target_names:
            message = f"config of component '{component.get('name')}' is stored in '{ref}', which is not defined"
            hint = _choices(ref, target_names, "defined storage targets", "define it under 'storage:'")
            found.append(source.diagnostic((*base, "config", "targets", index), message, hint))
    return found


def check_feasibility(spec: Spec, source: Source) -> list[Diagnostic]:
    found = []
    for index, component in enumerate(spec.components):
        base: Loc = ("components", index)
        config_drill = component.config is not None and component.config.drill is not None
        if component.criticality in ("critical", "high") and not component.drills and not config_drill:
            message = f"{component.criticality} component '{component.name}' has no restore drill"
            hint = (
                "add a drill under 'drills:' (type: restore) that proves its backups restore "
                f"within the RTO of {format_duration(component.rto)}"
            )
            found.append(source.diagnostic((*base, "name"), message, hint, severity="warning"))
        for policy_index, entry in enumerate(component.backups):
            policies = entry.expand() if isinstance(entry, BackupPreset) else [entry]
            for policy in policies:
                interval = schedule_interval(policy.schedule)
                if timedelta(days=policy.retention.days) >= interval:
                    continue
                loc = (*base, "backups", policy_index, "retention", "days")
                message = (
                    f"backups of policy '{policy.name}' are kept {policy.retention.days} days but taken only "
                    f"every {format_duration(interval)}, so at times no backup of it exists"
                )
                hint = f"keep them at least {math.ceil(interval / timedelta(days=1))} days"
                found.append(source.diagnostic(loc, message, hint, severity="warning"))
        if component.datastore is not None or component.snapshots is not None:
            found += _check_rpo(spec, index, source)
    from drflow.spec.check_currency import check_currency
    from drflow.spec.check_replication import check_replication_modes
    from drflow.spec.check_storage import check_tiers

    today = datetime.now(UTC).date()
    found += check_replication_modes(spec, source) + check_currency(spec, source, today)
    return found + check_tiers(spec, source)


def _check_rpo(spec: Spec, index: int, source: Source) -> list[Diagnostic]:
    component = spec.components[index]
    loc: Loc = ("components", index, "rpo")
    rpo = format_duration(component.rpo)
    if not component.backup_policies:
        message = f"RPO of {rpo} cannot be met: component '{component.name}' has no backup policy"
        return [source.diagnostic(loc, message, "add a backup policy under 'backups:'", severity="warning")]
    # The most frequent policy bounds the gap between backups from above.
    interval, policy = min((schedule_interval(p.schedule), p.name) for p in component.backup_policies)
    if interval <= component.rpo:
        return []
    gap = f"backups are up to {format_duration(interval)} apart (policy '{policy}')"
    replicas = [replica.name for replica in component.postgres.replicas] if component.postgres else []
    if replicas:
        message = (
            f"RPO of {rpo} is met only by replication to {quoted(replicas)}: {gap}, "
            "and data that is deleted or corrupted is replicated too"
        )
        wal = [p.name for p in component.backup_policies if p.method == "pg_receivewal"]
        hint = (
            f"archive WAL at least every {rpo} (policy {quoted(wal)} runs less often), or relax it"
            if wal
            else f"back up at least every {rpo} (or archive WAL with a pg_receivewal policy that often), or relax it"
        )
    else:
        message = f"RPO of {rpo} cannot be met: {gap} and no replica holds the changes in between"
        hint = f"back up at least every {rpo}, add a replica, or relax the RPO"
    return [source.diagnostic(loc, message, hint, severity="warning")]


def _strings(value: Any, loc: Loc) -> Iterator[tuple[Loc, str]]:
    if isinstance(value, str):
        yield loc, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, (*loc, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, (*loc, index))
