"""The sandbox's demo config and the reviewed check-routes.sh the example spec's config drill runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from drflow.actions.command import CommandError, run_reviewed_command
from drflow.devtools.sandbox.demo_config import seed_demo_config
from drflow.spec.load import load_spec


def spec_with_config(tmp_path: Path, routes: Path) -> Path:
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "version: 1\nmetadata: {name: demo, owner: t}\nregions: [{name: r1, role: primary}]\n"
        f"storage: [{{name: local-store, type: local, path: {tmp_path / 'store'}, region: r1}}]\n"
        "components:\n  - name: api-gateway\n    criticality: low\n    rto: 1h\n    rpo: 1h\n"
        f"    config: {{type: directory, path: {routes}, targets: [local-store], retention: {{days: 30}}}}\n"
    )
    return spec


def test_demo_routes_are_seeded_once_and_pass_check_routes(tmp_path: Path) -> None:
    routes = tmp_path / "routes"
    spec = load_spec(spec_with_config(tmp_path, routes)).spec
    assert seed_demo_config(spec) == {"api-gateway": 17}
    (routes / "v1" / "users.yaml").write_text("path: /v1/users\nupstream: users-canary:8080\n")
    assert seed_demo_config(spec) == {"api-gateway": 17}  # changes are kept, nothing rewritten
    assert "upstream: users-canary" in (routes / "v1" / "users.yaml").read_text()

    result = run_reviewed_command(["check-routes.sh", str(routes)], timeout_s=30)
    assert result.stdout.strip() == "16 routes valid"

    (routes / "v2" / "broken.yaml").write_text("upstream: nowhere\n")
    with pytest.raises(CommandError, match="invalid route v2/broken.yaml"):
        run_reviewed_command(["check-routes.sh", str(routes)], timeout_s=30)


def test_check_routes_refuses_an_empty_restore(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(CommandError, match="no route file"):
        run_reviewed_command(["check-routes.sh", str(tmp_path / "empty")], timeout_s=30)
