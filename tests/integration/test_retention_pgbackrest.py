"""The retention task on a pgBackRest component: `pgbackrest expire` per repository, then the drflow records of
backups pgBackRest no longer holds go, in that repository's target only. Real pgBackRest, real PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest

from drflow.hosts import Host
from drflow.jobs.pgbackrest import check_stanza, open_stanza, take_pgbackrest_backup
from drflow.operators.retention import ExpireOperator
from drflow.plan.retention import retention_run
from drflow.spec.load import load_spec_text
from drflow.store.factory import target_catalogs
from tests.fixtures.pg import airflow_conn_env
from tests.integration.test_pgbackrest import (  # noqa: F401 (archived_primary is a fixture)
    SPEC,
    Archived,
    _request,
    archived_primary,
)

pytestmark = pytest.mark.slow


def test_retention_task_runs_pgbackrest_expire_and_drops_the_records_of_what_it_expired(
    archived_primary: Archived,  # noqa: F811 (the fixture imported above)
    pg_host: Host,
    pg_workdir: Path,
) -> None:
    a = archived_primary
    check_stanza(a.access, host=pg_host)
    first = take_pgbackrest_backup(_request(a, "weekly-full", "full", "b1-full"), host=pg_host)
    take_pgbackrest_backup(_request(a, "weekly-full", "full", "b2-full"), host=pg_host)
    label = first[0].extra["label"]
    assert "repo1-retention-full-type=time" in a.access.config_text()
    assert "repo1-retention-full=14" in a.access.config_text()  # the longest days of the policies on repo-east
    # pgBackRest itself expires the first full in repo 1 only (as its time retention would, days later).
    with open_stanza(a.access, host=pg_host) as pgbackrest:
        pgbackrest.run("expire", f"--set={label}", repo=1)

    spec = load_spec_text(SPEC.format(name=a.spec_name, root=pg_workdir), pg_workdir / "spec.yaml").spec
    run = retention_run(spec, spec.component("orders"))
    assert run.pgbackrest is not None and [p.name for p in run.policies] == ["weekly-full", "daily-diff", "hourly-incr"]
    with airflow_conn_env("test_pg_primary", a.cluster):
        result = ExpireOperator(task_id="expire_orders", retention=run.to_params()).execute({})
    east, west = result["targets"]
    assert [row["backup_id"] for row in east["deleted"]] == ["b1-full"]
    assert f"pgBackRest expired {label}" in east["delete"][0]["reason"]
    assert west["deleted"] == [] and {row["backup_id"] for row in west["keep"]} == {"b1-full", "b2-full"}
    ids = {name: [m.backup_id for m in c.list_backups("orders")] for name, c in target_catalogs(a.spec_name, a.targets)}
    assert ids == {"repo-east": ["b2-full"], "repo-west": ["b1-full", "b2-full"]}
