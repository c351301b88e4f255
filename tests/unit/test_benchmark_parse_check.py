"""benchmarks/parse.py's baseline still writes what drflow renders: its equivalence check passes on one spec.

The benchmark stops before any timing when the generated DAG files differ from drflow's DAGs (a new DAG
argument, operator argument or notifier the generator does not write); this keeps that from rotting unseen.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # two interpreters import Airflow and build both sides: ~8 s idle

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "parse.py"


def test_the_parse_benchmark_baseline_matches_drflow() -> None:
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--check-only", "--specs", "1"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=SCRIPT.parents[1],
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "check: both sides serialize to identical DAGs" in result.stdout
