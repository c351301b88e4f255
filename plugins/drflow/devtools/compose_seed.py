"""Demo data for the Docker Compose stack, what `drflow sandbox up` seeds locally (the `drflow-seed` service).

`python -m drflow.devtools.compose_seed --spec FILE --aws-endpoint URL`: the example's tables in its databases on
the primary (libpq's PG* environment names the server and role), its config directories and assets tree, and, in
the stack's moto server, the Route53 zone and record its failover switches and the analytics EBS volume. Each part
only when missing, so restarting the service changes nothing. Never pointed at real AWS: `--aws-endpoint` is required.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from drflow.devtools.sandbox.demo_config import seed_demo_config
from drflow.devtools.sandbox.demo_data import seed_demo_data
from drflow.devtools.sandbox.demo_sources import ensure_volumes, seed_demo_files
from drflow.devtools.sandbox.dns import ensure_records, switch_dns_steps
from drflow.spec.load import load_spec


def seed(spec_path: Path, aws_endpoint: str) -> dict[str, object]:
    spec = load_spec(spec_path).spec
    return {
        "demo_data": seed_demo_data("dbname=postgres"),
        "demo_config": seed_demo_config(spec),
        "demo_files": seed_demo_files(spec),
        "route53": ensure_records(aws_endpoint, switch_dns_steps(spec)),
        "ebs_volumes": ensure_volumes(aws_endpoint, spec),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spec", type=Path, required=True, help="the API Marketplace spec")
    parser.add_argument("--aws-endpoint", required=True, help="the stack's moto server, e.g. http://moto:5000")
    args = parser.parse_args(argv)
    print(json.dumps(seed(args.spec, args.aws_endpoint), indent=2))


if __name__ == "__main__":
    main()
