"""Every benchmark script starts: its imports still resolve after the code moved (mypy does not read them)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = sorted(
    script
    for script in (Path(__file__).resolve().parents[2] / "benchmarks").glob("*.py")
    if 'if __name__ == "__main__":' in script.read_text()  # scripts, not the helpers they import
)


@pytest.mark.parametrize("script", BENCHMARKS, ids=lambda p: p.name)
def test_the_benchmark_starts(script: Path) -> None:
    result = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "usage:" in result.stdout
