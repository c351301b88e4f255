"""What pg_basebackup and pg_receivewal tell a user when the primary refuses their replication connection."""

from __future__ import annotations

from drflow.engines.postgres.conninfo import replication_hint


def test_each_refusal_names_its_fix() -> None:
    role = replication_hint("FATAL:  must be superuser or replication role to start walsender")
    assert role is not None and "ALTER ROLE ... REPLICATION" in role
    hba = replication_hint('FATAL:  no pg_hba.conf entry for replication connection from host "10.0.0.5", user "bk"')
    assert hba is not None and "'replication' line" in hba
    senders = replication_hint("FATAL:  number of requested standby connections exceeds max_wal_senders (currently 2)")
    assert senders is not None and "raise max_wal_senders" in senders


def test_other_failures_are_left_to_the_caller() -> None:
    assert replication_hint("pg_basebackup: error: could not connect to server: Connection refused") is None
