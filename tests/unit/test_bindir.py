"""The PostgreSQL binaries directory: the datastore's bin_dir, else what this machine has (13 to 17)."""

from __future__ import annotations

from pathlib import Path

import pytest

from drflow.engines.postgres.basebackup import BackupError, compress_args
from drflow.engines.postgres.bindir import SUPPORTED_MAJORS, binaries_major, datastore_bin_dir, find_bin_dir
from drflow.spec.diagnostics import SpecError
from drflow.spec.load import load_spec_text


def _install(root: Path, *majors: int) -> None:
    for major in majors:
        directory = root / str(major) / "bin"
        directory.mkdir(parents=True)
        (directory / "pg_ctl").write_text("#!/bin/sh\n")
        (directory / "pg_ctl").chmod(0o755)


@pytest.fixture
def bare_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A PATH with neither pg_config nor pg_ctl, so only the directory layout under test counts."""
    empty = tmp_path / "empty-path"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    find_bin_dir.cache_clear()


def test_the_datastores_version_wins_when_installed(tmp_path: Path, bare_path: None) -> None:
    _install(tmp_path, 13, 15, 17)
    assert find_bin_dir(15, tmp_path) == tmp_path / "15" / "bin"


def test_else_the_newest_supported_major(tmp_path: Path, bare_path: None) -> None:
    _install(tmp_path, 13, 14, 16)
    assert find_bin_dir(17, tmp_path) == tmp_path / "16" / "bin"
    assert find_bin_dir(None, tmp_path) == tmp_path / "16" / "bin"
    assert SUPPORTED_MAJORS == (17, 16, 15, 14, 13)


def test_pg_config_and_path_come_before_the_newest_guess(
    tmp_path: Path, bare_path: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    _install(tmp_path, 17)
    tools = tmp_path / "tools"
    own = tmp_path / "own" / "bin"
    tools.mkdir()
    own.mkdir(parents=True)
    (own / "pg_ctl").write_text("#!/bin/sh\n")
    (own / "pg_ctl").chmod(0o755)
    (tools / "pg_config").write_text(f"#!/bin/sh\necho {own}\n")
    (tools / "pg_config").chmod(0o755)
    monkeypatch.setenv("PATH", str(tools))
    assert find_bin_dir(None, tmp_path) == own
    find_bin_dir.cache_clear()
    monkeypatch.setenv("PATH", str(own))
    (tools / "pg_config").unlink()
    assert find_bin_dir(None, tmp_path) == own


def test_nothing_installed_names_the_versions_directory(tmp_path: Path, bare_path: None) -> None:
    assert find_bin_dir(14, tmp_path) == tmp_path / "14" / "bin"


SPEC = """
version: 1
metadata: {{name: shop, owner: team}}
regions:
  - {{name: eu, role: primary}}
components:
  - name: db
    criticality: low
    rto: 1h
    rpo: 1d
    datastore:
      type: postgres
      database: shop
      {extra}
      primary: {{conn_id: pg_shop, region: eu}}
"""


def test_bin_dir_of_the_spec_is_used_and_checked() -> None:
    loaded = load_spec_text(SPEC.format(extra="bin_dir: /opt/pg/16/bin"), "shop.yaml")
    datastore = loaded.spec.components[0].postgres
    assert datastore is not None
    assert datastore_bin_dir(datastore.bin_dir, datastore.version) == Path("/opt/pg/16/bin")
    with pytest.raises(SpecError, match="bin_dir.*absolute"):
        load_spec_text(SPEC.format(extra="bin_dir: opt/pg/bin"), "shop.yaml")


@pytest.mark.parametrize("version", [12, 18])
def test_unsupported_major_versions_are_refused(version: int) -> None:
    with pytest.raises(SpecError, match="version"):
        load_spec_text(SPEC.format(extra=f"version: {version}"), "shop.yaml")


def _fake_programs(directory: Path, major: int) -> Path:
    directory.mkdir(parents=True)
    for name in ("pg_ctl", "pg_basebackup"):
        (directory / name).write_text(f"#!/bin/sh\necho '{name} (PostgreSQL) {major}.4'\n")
        (directory / name).chmod(0o755)
    return directory


def test_the_binaries_major_is_read_from_the_programs(tmp_path: Path) -> None:
    assert binaries_major(_fake_programs(tmp_path / "13" / "bin", 13)) == 13
    assert binaries_major(_fake_programs(tmp_path / "17" / "bin", 17), "pg_basebackup") == 17
    assert binaries_major(tmp_path / "none") is None


@pytest.mark.parametrize(
    ("compression", "major", "args"),
    [
        ("zstd", 15, ["--compress=client-zstd"]),
        ("gzip", 17, ["--compress=client-gzip"]),
        ("none", 16, ["--compress=none"]),
        ("gzip", 14, ["-z"]),
        ("none", 13, []),
        ("zstd", None, ["--compress=client-zstd"]),
    ],
)
def test_pg_basebackup_compression_follows_its_version(compression: str, major: int | None, args: list[str]) -> None:
    assert compress_args(compression, major, Path("/x")) == args


def test_zstd_with_pg_basebackup_before_15_says_what_to_do() -> None:
    with pytest.raises(BackupError, match="needs pg_basebackup 15 or newer.*set the policy's compression to gzip"):
        compress_args("zstd", 14, Path("/usr/lib/postgresql/14/bin"))
