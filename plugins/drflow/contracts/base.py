"""What every contract shares: the error a missing key raises, and reading params."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from drflow.retention import RETENTION_POLICIES, RetentionPolicy


class ContractError(ValueError):
    """Params that do not hold what the operator needs: a drflow defect between a builder and an operator."""


def need(params: Mapping[str, Any], key: str, what: str) -> Any:
    try:
        return params[key]
    except KeyError:
        raise ContractError(
            f"{what}: the plan gave no {key!r} (it has {', '.join(sorted(params)) or 'nothing'}); "
            "this is a drflow defect: rebuild the DAG with this drflow version, or report it"
        ) from None


def optional_str(value: Any) -> str | None:
    return None if value is None else str(value)


def retention_policy(params: Mapping[str, Any], what: str) -> RetentionPolicy:
    """The run's ``retention_policy``, refused unless drflow knows it."""
    policy = str(need(params, "retention_policy", what))
    if policy not in RETENTION_POLICIES:
        raise ContractError(f"{what}: retention_policy {policy!r} is not one of {', '.join(RETENTION_POLICIES)}")
    return cast(RetentionPolicy, policy)
