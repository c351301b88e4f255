"""Client-side encryption keys: where the spec says a key lives, and the key itself, never in the spec.

A spec names a key by reference only: an Airflow connection (the key in its password) or an Airflow
variable (the key as its value). The key is 32 random bytes written as base64 or as 64 hex digits
(``openssl rand -base64 32``). In Airflow it is read through Airflow (any secrets backend); on the
incident CLI from ``AIRFLOW_CONN_<ID>`` / ``AIRFLOW_VAR_<NAME>``, the way Airflow reads them.

A key is identified in manifests and object headers by its reference (``variable:NAME``) and a
fingerprint (an HMAC of a fixed label under the key), so a wrong key is named before any data is read;
the fingerprint reveals nothing of the key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from drflow.connections import ConnectionDefinitionError, get_connection, reading_without_airflow
from drflow.store.base import StoreError

KEY_BYTES = 32
_FINGERPRINT_LABEL = b"drflow client-side encryption key fingerprint v1"


class EncryptionKeyError(StoreError):
    """An encryption key cannot be found or is not a 256-bit key; the message says what to do."""


@dataclass(frozen=True)
class KeyRef:
    """Where a target's key lives: exactly one of an Airflow connection or an Airflow variable."""

    conn_id: str | None = None
    variable: str | None = None

    def __post_init__(self) -> None:
        if (self.conn_id is None) == (self.variable is None):
            raise EncryptionKeyError("a client-side encryption key needs exactly one of key_conn_id or key_variable")

    @property
    def ref(self) -> str:
        return f"connection:{self.conn_id}" if self.conn_id is not None else f"variable:{self.variable}"

    @classmethod
    def from_target(cls, target: Mapping[str, Any]) -> KeyRef | None:
        """The key reference of a spec target's ``client_encryption``, or None when it has none."""
        config = target.get("client_encryption")
        if not config:
            return None
        return cls(conn_id=config.get("key_conn_id"), variable=config.get("key_variable"))


@dataclass(frozen=True)
class EncryptionKey:
    """A 256-bit key and its identity; the key bytes never appear in repr or messages."""

    ref: str
    key: bytes = field(repr=False)

    @property
    def fingerprint(self) -> str:
        return hmac.new(self.key, _FINGERPRINT_LABEL, hashlib.sha256).hexdigest()[:16]

    @property
    def key_id(self) -> str:
        """What manifests and object headers record: the reference and the fingerprint."""
        return f"{self.ref}#{self.fingerprint}"

    @property
    def passphrase(self) -> str:
        """The key as text, for tools that take a passphrase (pgBackRest's repo cipher pass)."""
        return base64.b64encode(self.key).decode()


def parse_key(text: str, ref: str) -> EncryptionKey:
    """A key written as base64 or 64 hex digits; anything else is refused with how to make one."""
    value = text.strip()
    raw: bytes | None = None
    if len(value) == 2 * KEY_BYTES:
        try:
            raw = bytes.fromhex(value)
        except ValueError:
            raw = None
    if raw is None:
        try:
            raw = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raw = None
    if raw is None or len(raw) != KEY_BYTES:
        raise EncryptionKeyError(
            f"the encryption key in {ref} is not a 256-bit key; store 32 random bytes as base64 "
            f"(`openssl rand -base64 32`) or as 64 hex digits there"
        )
    return EncryptionKey(ref, raw)


def load_key(ref: KeyRef) -> EncryptionKey:
    """The key ``ref`` names, read through Airflow (or the environment on the incident CLI)."""
    if ref.conn_id is not None:
        try:
            conn = get_connection(ref.conn_id)
        except ConnectionDefinitionError as exc:
            raise EncryptionKeyError(f"cannot read the encryption key: {exc}") from exc
        except Exception as exc:  # Airflow's own not-found error
            raise EncryptionKeyError(
                f"cannot read the encryption key from Airflow connection {ref.conn_id!r} ({exc}); define it "
                f"with the key as its password, or export AIRFLOW_CONN_{ref.conn_id.upper()}"
            ) from exc
        if not conn.password:
            raise EncryptionKeyError(
                f"Airflow connection {ref.conn_id!r} has no password; put the encryption key (base64) in its password"
            )
        return parse_key(conn.password, ref.ref)
    assert ref.variable is not None
    return parse_key(_variable(ref.variable), ref.ref)


def _variable(name: str) -> str:
    env = f"AIRFLOW_VAR_{name.upper()}"
    if reading_without_airflow():
        value = os.environ.get(env)
        if value is None:
            raise EncryptionKeyError(
                f"Airflow variable {name!r} (the encryption key) is not defined; export {env} with the key, "
                f"or set the variable in Airflow"
            )
        return value
    from airflow.sdk import Variable

    try:
        return str(Variable.get(name))
    except Exception as exc:  # the SDK raises its own not-found type
        raise EncryptionKeyError(
            f"cannot read Airflow variable {name!r} (the encryption key): {exc}; set it in Airflow "
            f"(Admin → Variables or a secrets backend) or export {env}"
        ) from exc
