"""What every contract shares: the error a missing key raises, and reading params."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


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
