"""Spec fields of the vault (encryption, object lock): where each mistake is reported and what it says."""

from __future__ import annotations

from pathlib import Path

from tests.unit.test_spec_load import VALID, only_error

LOCAL = "    type: local\n    path: backups\n"
S3 = "    type: s3\n    bucket: shop-backups\n    conn_id: aws_s3\n    region: us-east-1\n"


def test_a_client_key_needs_exactly_one_source(tmp_path: Path) -> None:
    both = LOCAL + "    client_encryption: {key_conn_id: k, key_variable: v}\n"
    error = only_error(VALID.replace(LOCAL, both), tmp_path)
    assert (error.line, error.path) == (12, "storage[local-store].client_encryption")
    assert "exactly one of key_conn_id" in error.message
    neither = LOCAL + "    client_encryption: {}\n"
    error = only_error(VALID.replace(LOCAL, neither), tmp_path)
    assert error.line == 12 and "exactly one of key_conn_id" in error.message


def test_the_key_itself_is_not_a_spec_field(tmp_path: Path) -> None:
    error = only_error(VALID.replace(LOCAL, LOCAL + "    client_encryption: {key: c2VjcmV0}\n"), tmp_path)
    assert "unknown key 'key'" in error.message


def test_a_kms_key_without_sse_kms_says_what_to_set(tmp_path: Path) -> None:
    text = VALID.replace(LOCAL, S3 + "    server_side_encryption: AES256\n    kms_key_id: alias/backups\n")
    error = only_error(text, tmp_path)
    assert (error.line, error.path) == (15, "storage[local-store].kms_key_id")
    assert "server_side_encryption: aws:kms" in error.message


def test_compliance_retention_on_a_local_target_is_refused_at_the_target(tmp_path: Path) -> None:
    text = VALID.replace(
        "        retention:\n          days: 7\n",
        "        retention:\n          days: 7\n          policy: compliance\n",
    )
    error = only_error(text, tmp_path)
    assert error.path == "components[orders].backups[daily-full].targets[0]"
    assert "cannot lock" in error.message and "Object Lock enabled" in error.hint
    governance = text.replace("policy: compliance", "policy: governance")
    from drflow.spec.load import load_spec_text

    load_spec_text(governance, tmp_path / "spec.yaml")  # drflow's own approval guards governance deletes


COPY = "        targets: [local-store]\n"


def test_copy_to_must_name_a_defined_target_not_already_written(tmp_path: Path) -> None:
    error = only_error(VALID.replace(COPY, COPY + "        copy_to: [local-stor]\n"), tmp_path)
    assert error.path == "components[orders].backups[daily-full].copy_to[0]" and "not defined" in error.message
    assert "did you mean 'local-store'?" in error.hint
    error = only_error(VALID.replace(COPY, COPY + "        copy_to: [local-store]\n"), tmp_path)
    assert "both written by backup policy 'daily-full' and a copy target" in error.message


def test_a_copy_task_follows_verify_in_the_backup_dag(tmp_path: Path) -> None:
    from drflow.contracts import CopyRun
    from drflow.plan.backup import backup_plan
    from drflow.spec.load import load_spec_text

    text = VALID.replace(
        "    path: backups\n", "    path: backups\n  - name: west\n    type: local\n    path: west\n"
    ).replace(COPY, COPY + "        copy_to: [west]\n")
    spec = load_spec_text(text, tmp_path / "spec.yaml").spec
    component = spec.component("orders")
    plan = backup_plan(spec, component, component.backup_policies[0], "spec.yaml")
    copy = plan.tasks[-1]
    assert (copy.task_id, copy.action, copy.upstream) == ("copy_backup", "store.copy_backup", ("verify_backup",))
    run = CopyRun.from_params(copy.params["copy"])
    assert [t["name"] for t in run.sources] == ["local-store"] and [t["name"] for t in run.destinations] == ["west"]
    take = next(t for t in plan.tasks if t.task_id == "take_backup")
    assert [t["name"] for t in take.params["run"]["targets"]] == ["local-store"]  # the backup never writes west


def test_an_rto_shorter_than_the_retrieval_of_every_copy_is_a_warning(tmp_path: Path) -> None:
    from drflow.spec.load import load_spec_text

    cold = VALID.replace(LOCAL, S3 + "    storage_class: GLACIER\n")
    loaded = load_spec_text(cold, tmp_path / "spec.yaml")
    [warning] = [d for d in loaded.warnings if "archive storage class" in d.message]
    assert warning.path == "components[orders].rto" and not warning.is_error
    assert "up to 5h" in warning.message and "RTO of 1h" in warning.message and "transition" in warning.hint
    warm = cold.replace("storage_class: GLACIER", "storage_class: GLACIER_IR")
    assert not [d for d in load_spec_text(warm, tmp_path / "spec.yaml").warnings if "archive" in d.message]
    error = only_error(cold.replace("storage_class: GLACIER", "storage_class: GLACER"), tmp_path)
    assert "GLACIER" in error.message + error.hint
