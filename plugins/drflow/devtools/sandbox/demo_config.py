"""Demo configuration of the API Marketplace: the directories the spec's `config:` sections name.

Seeded only when a directory is missing or empty, so changes made while trying drflow out are kept
(and backed up after each change by the config DAGs).
"""

from __future__ import annotations

from pathlib import Path

from drflow.spec.model import Spec

SERVICES = ("users", "orders", "billing", "catalog", "portal", "analytics", "search", "auth")


def demo_files(component: str) -> dict[str, str]:
    """Route files of a gateway-like config: one per service and version, plus a main file."""
    files = {"gateway.yaml": f"# {component}\nlisten: 8443\ntls: true\ntimeout: 30s\n"}
    for version in ("v1", "v2"):
        for service in SERVICES:
            files[f"{version}/{service}.yaml"] = (
                f"path: /{version}/{service}\nupstream: {service}.internal:8080\nrate_limit: 100/s\nauth: jwt\n"
            )
    return files


def seed_demo_config(spec: Spec) -> dict[str, int]:
    """Write the demo files into each directory config source that is missing or empty; file counts."""
    seeded: dict[str, int] = {}
    for component in spec.components:
        config = component.config
        if config is None or config.type != "directory" or config.path is None:
            continue
        root = Path(config.path)
        if not root.is_dir() or not any(root.iterdir()):
            for name, body in demo_files(component.name).items():
                path = root / name
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(body)
        seeded[component.name] = sum(1 for p in root.rglob("*") if p.is_file())
    return seeded
