"""Configuration versions (issue 9 items 2 and 5): stored after each change in every target on its own,
identical content never twice, history/diff/restore on the CLI without Airflow, the drill, the trigger."""

from __future__ import annotations

import asyncio
import json
import os
import threading
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from drflow.cli.main import app
from drflow.engines.config.source import read_directory
from drflow.jobs.config import (
    ConfigJobError,
    back_up_config,
    component_versions,
    config_drill,
    diff_versions,
    resolve_version,
    restore_version,
)
from drflow.spec.config import ConfigSource
from drflow.store.base import StoreError


def write_routes(root: Path, routes: dict[str, str]) -> None:
    for name, body in routes.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body)


@pytest.fixture
def routes(tmp_path: Path) -> Path:
    root = tmp_path / "routes"
    write_routes(root, {"gateway.yaml": "listen: 8443\n", "v1/users.yaml": "path: /v1/users\nupstream: users\n"})
    return root


def source_of(root: Path) -> ConfigSource:
    return ConfigSource(kind="directory", path=str(root))


def test_every_change_is_a_version_and_identical_content_is_never_stored_twice(
    routes: Path, local_target: dict[str, Any], s3_target: dict[str, Any]
) -> None:
    targets = [local_target, s3_target]
    first = back_up_config("api", "gateway", source_of(routes), targets, retention_days=90)
    assert set(first.stored) == {"test-local", "test-s3"} and first.blobs_uploaded == 4

    again = back_up_config("api", "gateway", source_of(routes), targets)
    assert again.stored == {} and set(again.unchanged) == {"test-local", "test-s3"} and again.blobs_uploaded == 0

    (routes / "v1" / "users.yaml").write_text("path: /v1/users\nupstream: users-v2\n")
    changed = back_up_config("api", "gateway", source_of(routes), targets)
    assert changed.blobs_uploaded == 2  # only the changed file, once per target

    # Back to the first content: a new version (the config did change), but no new blob.
    (routes / "v1" / "users.yaml").write_text("path: /v1/users\nupstream: users\n")
    reverted = back_up_config("api", "gateway", source_of(routes), targets)
    assert reverted.blobs_uploaded == 0 and reverted.sha256 == first.sha256

    for target in targets:
        versions = component_versions("api", "gateway", target)
        history = versions.versions()
        assert [v.sha256 for v in history] == [first.sha256, changed.sha256, first.sha256]
        assert all(v.size > 0 and v.taken_at for v in history)
        kept = datetime.fromisoformat(str(history[0].expires_at)) - datetime.fromisoformat(history[0].taken_at)
        assert timedelta(days=90) - timedelta(seconds=1) < kept <= timedelta(days=90)
        blobs = versions.store.list_keys(f"{versions.prefix}/blobs/")
        assert len(blobs) == 3


def test_a_failing_target_never_blocks_the_other(routes: Path, local_target: dict[str, Any], tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("x")
    broken = {"name": "broken", "type": "local", "path": str(blocker / "store")}
    with pytest.raises(ConfigJobError, match="broken") as raised:
        back_up_config("api", "gateway", source_of(routes), [broken, local_target])
    assert "test-local" in str(raised.value)
    assert len(component_versions("api", "gateway", local_target).versions()) == 1


def test_diff_and_restore_give_back_each_version(routes: Path, local_target: dict[str, Any], tmp_path: Path) -> None:
    source = source_of(routes)
    back_up_config("api", "gateway", source, [local_target])
    old_hash = read_directory(routes).sha256
    (routes / "v1" / "orders.yaml").write_text("path: /v1/orders\n")
    (routes / "gateway.yaml").write_text("listen: 9443\n")
    os.chmod(routes / "gateway.yaml", 0o600)
    back_up_config("api", "gateway", source, [local_target])
    versions = component_versions("api", "gateway", local_target)
    old, new = versions.versions()

    diff = diff_versions(versions, old, new)
    assert f"+++ {new.version_id}/v1/orders.yaml" in diff and "+path: /v1/orders" in diff
    assert "-listen: 8443" in diff and "+listen: 9443" in diff

    restored = tmp_path / "restored-old"
    digest = restore_version(versions, old, restored)
    assert digest == old.sha256 == old_hash == read_directory(restored).sha256
    assert not (restored / "v1" / "orders.yaml").exists()
    with pytest.raises(ConfigJobError, match="not an empty directory"):
        restore_version(versions, new, restored)
    assert resolve_version(versions, new.sha256[:10]) == new


def test_drill_compares_the_hash_and_fails_over_a_corrupt_copy(
    routes: Path, local_target: dict[str, Any], tmp_path: Path
) -> None:
    second = {"name": "second", "type": "local", "path": str(tmp_path / "second")}
    back_up_config("api", "gateway", source_of(routes), [local_target, second])
    seen: list[Path] = []

    def validate(restored: Path) -> dict[str, Any]:
        seen.append(restored)
        assert (restored / "gateway.yaml").read_text() == "listen: 8443\n"
        return {"ok": True}

    result = config_drill("api", "gateway", [local_target, second], validate=validate)
    assert result["passed"] and result["target"] == "test-local" and result["validation"] == {"ok": True}

    # Corrupt the first target's copy of one file: the drill says so and uses the other target.
    versions = component_versions("api", "gateway", local_target)
    blob = Path(local_target["path"]) / versions.blob_key(versions.versions()[0].files[0].sha256)
    blob.write_bytes(b"tampered\n")
    result = config_drill("api", "gateway", [local_target, second], validate=validate)
    assert result["passed"] and result["target"] == "second"
    assert "corrupt" in result["skipped_targets"][0]
    with pytest.raises(StoreError, match="corrupt"):
        versions.read_blob(versions.versions()[0].files[0])


def test_cli_history_diff_restore(routes: Path, tmp_path: Path) -> None:
    store = tmp_path / "store"
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "version: 1\nmetadata: {name: api, owner: t}\nregions: [{name: r1, role: primary}]\n"
        f"storage: [{{name: local-store, type: local, path: {store}, region: r1}}]\n"
        "components:\n  - name: gateway\n    criticality: low\n    rto: 1h\n    rpo: 1h\n"
        f"    config: {{type: directory, path: {routes}, targets: [local-store], retention: {{days: 30}}}}\n"
    )
    target = {"name": "local-store", "type": "local", "path": str(store)}
    back_up_config("api", "gateway", source_of(routes), [target])
    (routes / "gateway.yaml").write_text("listen: 9443\n")
    back_up_config("api", "gateway", source_of(routes), [target])
    runner = CliRunner()
    base = ["--spec", str(spec), "--component", "gateway"]

    listed = runner.invoke(app, ["config", "history", *base, "--json"])
    assert listed.exit_code == 0, listed.output
    history = json.loads(listed.output)
    assert len(history) == 2

    diffed = runner.invoke(app, ["config", "diff", *base])
    assert diffed.exit_code == 0 and "+listen: 9443" in diffed.output

    out = tmp_path / "restored"
    done = runner.invoke(app, ["config", "restore", *base, "--version", history[0]["version_id"], "--to", str(out)])
    assert done.exit_code == 0, done.output
    assert (out / "gateway.yaml").read_text() == "listen: 8443\n" and "hash matches" in done.output

    missing = runner.invoke(app, ["config", "restore", *base, "--version", "nope", "--to", str(tmp_path / "x")])
    assert missing.exit_code == 1 and "drflow config history" in missing.output and "Traceback" not in missing.output


def test_trigger_fires_on_first_sight_and_on_each_change_only(routes: Path) -> None:
    from drflow.triggers.config import ConfigChangeTrigger

    trigger = ConfigChangeTrigger(source=source_of(routes).to_params(), poll_interval_s=0.05)
    classpath, kwargs = trigger.serialize()
    assert classpath == "drflow.triggers.config.ConfigChangeTrigger"
    assert ConfigChangeTrigger(**kwargs).serialize() == (classpath, kwargs)

    async def watch() -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        stream = trigger.run()
        events.append((await anext(stream)).payload)  # first sight
        waiting = asyncio.ensure_future(anext(stream))
        await asyncio.sleep(0.4)  # eight polls, nothing changed
        assert not waiting.done()
        (routes / "v2.yaml").write_text("path: /v2\n")
        events.append((await asyncio.wait_for(waiting, 1)).payload)
        waiting.cancel()
        return events

    first, changed = asyncio.run(watch())
    assert first["previous_sha256"] is None
    assert changed["previous_sha256"] == first["sha256"] and changed["sha256"] == read_directory(routes).sha256


class _ConfigHandler(BaseHTTPRequestHandler):
    body = b'{"routes": ["/v1/users"]}'
    status = 200
    seen_auth: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        type(self).seen_auth.append(self.headers.get("Authorization", ""))
        payload = self.body if self.path == "/admin/config" else b"not here"
        self.send_response(self.status if self.path == "/admin/config" else 404)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: Any) -> None:
        pass


def test_http_source_reads_the_running_config_through_its_connection(
    local_target: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from drflow.connections import read_without_airflow, reading_without_airflow
    from drflow.engines.config.source import ConfigSourceError, read_config

    server = ThreadingHTTPServer(("127.0.0.1", 0), _ConfigHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    conn = {"conn_type": "http", "host": "127.0.0.1", "port": server.server_address[1], "login": "ops"}
    monkeypatch.setenv("AIRFLOW_CONN_GW_ADMIN", json.dumps({**conn, "password": "pw"}))
    before = reading_without_airflow()
    read_without_airflow(True)
    try:
        source = ConfigSource(kind="http", conn_id="gw_admin", endpoint="/admin/config")
        first = back_up_config("api", "catalog", source, [local_target])
        assert _ConfigHandler.seen_auth[-1].startswith("Basic ")
        _ConfigHandler.body = b'{"routes": ["/v1/users", "/v1/orders"]}'
        back_up_config("api", "catalog", source, [local_target])
        versions = component_versions("api", "catalog", local_target)
        old, new = versions.versions()
        assert old.sha256 == first.sha256 and [f.path for f in new.files] == ["config"]
        assert '+{"routes": ["/v1/users", "/v1/orders"]}' in diff_versions(versions, old, new)

        _ConfigHandler.status = 503
        with pytest.raises(ConfigSourceError, match="answered HTTP 503.*check config.endpoint"):
            read_config(source)
    finally:
        read_without_airflow(before)
        server.shutdown()
