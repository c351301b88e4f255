"""Pins: a backup kept past its retention because someone said so (who, when, why), stored in the store.

A pin is ``<spec>/<component>/pins/<backup_id>.json`` in every target that holds the backup; expiry
never deletes a pinned entry. Every pin and unpin is also written as a report
(``<spec>/<component>/reports/pins/<time>-<pin|unpin>-<backup_id>.json``), so the history stays
after an unpin.
"""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from drflow.store.base import MissingKeyError
from drflow.store.catalog import Catalog, CatalogError
from drflow.store.manifest import check_name

PINS_DIR = "pins"
PIN_REPORTS = "pins"


class Pin(BaseModel):
    """Why a backup is kept past its retention."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    backup_id: str
    component: str
    reason: str = Field(min_length=1)
    pinned_by: str
    pinned_at: AwareDatetime

    def describe(self) -> str:
        return f"pinned by {self.pinned_by} at {self.pinned_at:%Y-%m-%dT%H:%M:%SZ}: {self.reason}"


def pin_key(catalog: Catalog, component: str, backup_id: str) -> str:
    return f"{catalog.component_prefix(component)}{PINS_DIR}/{check_name(backup_id, 'backup id')}.json"


def read_pins(catalog: Catalog, component: str) -> dict[str, Pin]:
    """The pins of one component in this store, by backup id."""
    prefix = f"{catalog.component_prefix(component)}{PINS_DIR}/"
    pins: dict[str, Pin] = {}
    for key in catalog.store.list_keys(prefix):
        try:
            pin = Pin.model_validate_json(catalog.store.get_bytes(key))
        except (ValidationError, MissingKeyError) as exc:
            raise CatalogError(
                f"unreadable pin {catalog.store.url_for(key)}: {exc}; pin the backup again with "
                "`drflow backups pin ID --reason …` (it replaces the file), or delete the file"
            ) from exc
        pins[pin.backup_id] = pin
    return pins


def write_pin(catalog: Catalog, pin: Pin) -> str:
    """Record the pin (replacing an earlier one of that backup) and its history entry; returns the key."""
    catalog.get(pin.component, pin.backup_id)  # only a committed backup can be pinned (names the known ones)
    key = pin_key(catalog, pin.component, pin.backup_id)
    catalog.store.put_bytes(key, pin.model_dump_json(indent=2).encode())
    _history(catalog, "pin", pin.component, pin.backup_id, pin.pinned_by, pin.pinned_at, pin.reason)
    return key


def remove_pin(catalog: Catalog, component: str, backup_id: str, by: str, reason: str, when: datetime) -> bool:
    """Remove the pin; True if there was one. The unpin is recorded with who, when and why."""
    removed = catalog.store.delete(pin_key(catalog, component, backup_id))
    if removed:
        _history(catalog, "unpin", component, backup_id, by, when, reason)
    return removed


def _history(
    catalog: Catalog, action: str, component: str, backup_id: str, by: str, when: datetime, reason: str
) -> None:
    stamp = when.astimezone(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    catalog.write_report(
        component,
        PIN_REPORTS,
        f"{stamp}-{action}-{backup_id}",
        {"action": action, "backup_id": backup_id, "by": by, "at": when.isoformat(), "reason": reason},
    )
