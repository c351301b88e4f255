"""Spec fields of file storage: the files and s3-prefix datastores, method files, preset files."""

from __future__ import annotations

import pytest

from drflow.spec.diagnostics import SpecError
from drflow.spec.load import load_spec_text
from drflow.spec.model import FilesDatastore, S3PrefixDatastore

SPEC = """\
version: 1
metadata: {{name: files-spec, owner: web}}
regions: [{{name: eu, role: primary}}]
storage: [{{name: vault, type: local, path: /var/tmp/vault}}]
components:
  - name: portal-assets
    criticality: high
    rto: 2h
    rpo: 1h
    datastore: {{type: files, path: /srv/portal/assets}}
    backups:
      - {{preset: {preset}, targets: [vault], retention: {{days: 7}}}}
  - name: media
    criticality: low
    rto: 4h
    rpo: 1d
    datastore: {{type: s3-prefix, bucket: media-bucket, prefix: img/, conn_id: aws_media}}
    backups:
      - {{name: weekly-full, type: full, method: files, schedule: "@weekly", targets: [vault], retention: {{days: 30}}}}
      - {{name: daily-diff, type: differential, method: {method}, schedule: "@daily", targets: [vault],
          retention: {{days: 30}}}}
"""


def test_files_datastores_and_the_files_preset_load() -> None:
    spec = load_spec_text(SPEC.format(preset="files", method="files"), "files.yaml").spec
    assets, media = spec.components
    assert isinstance(assets.datastore, FilesDatastore) and assets.datastore.path == "/srv/portal/assets"
    assert assets.postgres is None
    assert [(p.name, p.type, p.method, p.schedule) for p in assets.backup_policies] == [
        ("daily-full", "full", "files", "0 2 * * *"),
        ("hourly-incremental", "incremental", "files", "@hourly"),
    ]
    assert isinstance(media.datastore, S3PrefixDatastore) and media.datastore.prefix == "img/"


@pytest.mark.parametrize(
    ("preset", "method", "line", "needle"),
    [
        ("database", "files", 12, "preset 'database', which cannot back up a files datastore"),
        ("files", "pg_dump", 20, "method 'pg_dump', which cannot back up a s3-prefix datastore"),
    ],
)
def test_a_method_that_cannot_back_up_the_datastore_is_an_error_at_its_line(
    preset: str, method: str, line: int, needle: str
) -> None:
    with pytest.raises(SpecError) as caught:
        load_spec_text(SPEC.format(preset=preset, method=method), "files.yaml")
    found = [d for d in caught.value.diagnostics if needle in d.message]
    assert found, [d.message for d in caught.value.diagnostics]
    assert found[0].line == line and "use " in found[0].hint


def test_a_files_policy_with_another_compression_is_an_error() -> None:
    text = SPEC.format(preset="files", method="files").replace(
        'schedule: "@weekly",', 'schedule: "@weekly", compression: gzip,'
    )
    with pytest.raises(SpecError) as caught:
        load_spec_text(text, "files.yaml")
    [error] = [d for d in caught.value.diagnostics if d.severity == "error"]
    assert error.line == 19 and "always compressed with zstd" in error.message and "zstd" in error.hint
