"""drflow installs into an existing Airflow: a version range, plain psycopg, the sandbox's needs in an extra."""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from drflow.devtools.sandbox.s3 import MotoError, require_moto

PROJECT = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())["project"]


def requirements(names: list[str]) -> dict[str, Requirement]:
    return {Requirement(line).name: Requirement(line) for line in names}


def test_airflow_is_a_range_of_3_and_psycopg_brings_no_binary() -> None:
    deps = requirements(PROJECT["dependencies"])
    airflow = deps["apache-airflow"].specifier
    assert all(Version(v) in airflow for v in ("3.3.0", "3.3.2", "3.9.1"))
    assert not any(Version(v) in airflow for v in ("3.2.9", "4.0.0"))
    assert deps["psycopg"].extras == set()
    extras = PROJECT["optional-dependencies"]
    assert requirements(extras["binary"])["psycopg"].extras == {"binary"}
    assert "moto" in requirements(extras["sandbox"]) and "moto" not in deps
    assert requirements(extras["test"])["drflow"].extras == {"sandbox"}


def test_the_sandbox_without_moto_says_which_extra_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "moto", None)  # how Python marks a module that cannot be imported
    with pytest.raises(MotoError, match=r"pip install 'drflow\[sandbox\]'"):
        require_moto()
