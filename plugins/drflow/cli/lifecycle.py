"""`drflow lifecycle`: the bucket lifecycle rules the spec's `transition:` settings render, shown or applied."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from drflow.cli.common import fail, friendly_errors, load_one, out


@friendly_errors
def lifecycle(
    spec: Annotated[Path, typer.Option("--spec", help="Spec file.")],
    apply: Annotated[
        bool, typer.Option("--apply", help="Put the rules on the buckets (replaces each bucket's lifecycle).")
    ] = False,
) -> None:
    """Print, per S3 target with a `transition:`, the bucket lifecycle rule that moves its backup data to a colder
    class; with --apply, put it on the bucket through the target's Airflow connection."""
    from drflow.store.factory import open_store
    from drflow.store.tiers import lifecycle_rule

    loaded = load_one(spec)
    rules: list[tuple[Any, dict[str, Any]]] = []
    for target in loaded.spec.storage:
        transition = getattr(target, "transition", None)
        if transition is not None:
            rule = lifecycle_rule(target.name, target.prefix, transition.after_days, transition.storage_class)
            rules.append((target, rule))
    if not rules:
        raise fail(f"no storage target of {spec} has a transition; add `transition: {{after: 30d, storage_class: …}}`")
    for target, rule in rules:
        out.print_json(json.dumps({"target": target.name, "bucket": target.bucket, "rule": rule}))
        if apply:
            store: Any = open_store(target.model_dump(mode="json"))
            s3 = getattr(store, "inner", store)  # under client-side encryption, the S3 store itself
            with s3._errors("put the lifecycle rule on", ""):
                s3.client.put_bucket_lifecycle_configuration(
                    Bucket=target.bucket, LifecycleConfiguration={"Rules": [rule]}
                )
            out.print(f"applied to bucket {target.bucket}", highlight=False, markup=False)
