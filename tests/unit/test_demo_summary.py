"""The table ending `make demo`'s report is read back from the store: the newest report of each drill since the
demo began, in any target of the component; a missing or older one is a failed row, never a passing one."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

from rich.console import Console

from drflow.devtools.demo_summary import DrillRef, read_rows, table
from drflow.spec.load import load_spec_text
from drflow.store.factory import target_catalogs

SPEC = """version: 1
metadata: {{name: demo, owner: t}}
regions: [{{name: r1, role: primary}}]
storage:
  - {{name: one, type: local, path: {root}/one, region: r1}}
  - {{name: two, type: local, path: {root}/two, region: r1}}
components:
  - name: portal
    criticality: high
    rto: 30m
    rpo: 1h
    datastore: {{type: postgres, database: portal, primary: {{conn_id: pg, region: r1}}}}
    backups: [{{name: full, type: full, method: pg_basebackup, schedule: "@daily", targets: [one, two],
               retention: {{days: 7}}}}]
    drills: [{{name: weekly, type: restore, schedule: "@weekly"}}]
  - name: assets
    criticality: high
    rto: 30m
    rpo: 1h
    datastore: {{type: files, path: /srv/assets}}
    backups: [{{preset: files, targets: [two], retention: {{days: 7}}}}]
    drills: [{{name: tree, type: restore, schedule: "@weekly"}}]
"""


def _report(drill: str, finished: datetime, *, passed: bool, restore_s: float = 2.5) -> dict[str, object]:
    return {
        "drill": drill,
        "finished_at": finished.isoformat(),
        "restore_s": restore_s,
        "backup_age_s": 42.0,
        "rto_met": True,
        "rpo_met": True,
        "passed": passed,
    }


def test_rows_are_the_newest_reports_since_the_start_and_a_missing_one_fails(tmp_path: Path) -> None:
    spec = load_spec_text(SPEC.format(root=tmp_path), tmp_path / "spec.yaml").spec
    catalogs = dict(target_catalogs("demo", [spec.target(n).model_dump(mode="json") for n in ("one", "two")]))
    since = datetime.now(UTC)
    later = since + timedelta(seconds=5)
    catalogs["one"].write_report("portal", "drill", "a", _report("weekly", since + timedelta(seconds=1), passed=False))
    # A later report in the other target wins; a report of an earlier demo is never counted.
    catalogs["two"].write_report("portal", "drill", "b", _report("weekly", later, passed=True))
    catalogs["two"].write_report("assets", "drill", "c", _report("tree", since - timedelta(days=1), passed=True))
    refs = [DrillRef("portal", "weekly", "database", "portal"), DrillRef("assets", "tree", "files", "portal")]

    rows = read_rows(spec, refs, since)
    assert [(row.ref.drill, row.passed) for row in rows] == [("weekly", True), ("tree", False)]
    assert rows[0].report is not None and rows[0].report["finished_at"] == later.isoformat()
    assert rows[1].report is None

    out = io.StringIO()
    Console(file=out, width=200, color_system=None).print(table(spec, rows))
    text = out.getvalue()
    assert "1 components, 1/2 drills passed" in text
    assert "2.5s / 30m ✔" in text and "42s / 1h ✔" in text and "no report of this run ✘" in text
    assert text.count("portal") == 1 and "assets: tree (files)" in text  # one row group per service
