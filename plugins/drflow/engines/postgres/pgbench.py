"""Short read-only pgbench runs: the baseline on a source at backup time and the same run on a restored copy.

A run never writes: every session starts with ``default_transaction_read_only=on`` and the statement
timeout (``PGOPTIONS``), a spec's script may hold only queries a check allows and ``\\set``/``\\sleep``
(checked again here), and pgbench does not vacuum (``-n``). :func:`init_select_only` (``pgbench -i``, a
write) is for a scratch database on a restored instance only: the built-in select-only run needs its tables.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from drflow import process
from drflow.engines.postgres.conninfo import PgConnInfo
from drflow.spec.statement import script_refusal

SCRATCH_DATABASE = "drflow_pgbench"
"""Where the built-in run's tables go on a restored instance, apart from the application's data."""
_TPS = re.compile(r"^tps = ([\d.]+)", re.MULTILINE)
_LATENCY = re.compile(r"^latency average = ([\d.]+) ms", re.MULTILINE)
_PROCESSED = re.compile(r"^number of transactions actually processed: (\d+)", re.MULTILINE)
_FAILED = re.compile(r"^number of failed transactions: (\d+)", re.MULTILINE)


class PgbenchError(RuntimeError):
    """pgbench could not run or did not finish; the message says why and what to do."""


@dataclass(frozen=True)
class PgbenchRun:
    tps: float
    """Transactions per second, without the initial connection time (pgbench's own figure)."""
    latency_ms: float | None
    transactions: int
    failed: int
    clients: int
    duration_s: int


def run_read_only(
    conn: PgConnInfo,
    bin_dir: Path,
    *,
    duration_s: int,
    clients: int,
    script: str | None,
    statement_timeout_s: float,
) -> PgbenchRun:
    """``pgbench -n -T duration -c clients`` with the script (or ``-S``), every session read-only."""
    if script is not None and (why := script_refusal(script)):
        raise PgbenchError(f"refused: {why}")
    env = {
        **conn.env(),
        "PGOPTIONS": f"-c default_transaction_read_only=on -c statement_timeout={int(statement_timeout_s * 1000)}",
    }
    argv = [str(bin_dir / "pgbench"), "-n", "-T", str(duration_s), "-c", str(clients), "-j", str(min(clients, 4))]
    with tempfile.TemporaryDirectory(prefix="drflow-pgbench-") as scratch:
        if script is None:
            argv.append("-S")
        else:
            path = Path(scratch) / "check.sql"
            path.write_text(script if script.endswith("\n") else script + "\n")
            argv += ["-f", str(path)]
        result = _run(argv, env, timeout=duration_s + 60, what=f"pgbench on {conn.describe()}")
    tps, processed = _TPS.search(result.stdout), _PROCESSED.search(result.stdout)
    if tps is None or processed is None:
        raise PgbenchError(f"pgbench on {conn.describe()} printed no result:\n{_tail(result.stdout + result.stderr)}")
    latency, failed = _LATENCY.search(result.stdout), _FAILED.search(result.stdout)
    return PgbenchRun(
        tps=float(tps.group(1)),
        latency_ms=float(latency.group(1)) if latency else None,
        transactions=int(processed.group(1)),
        failed=int(failed.group(1)) if failed else 0,
        clients=clients,
        duration_s=duration_s,
    )


def init_select_only(conn: PgConnInfo, bin_dir: Path, *, scale: int, timeout_s: float = 600) -> None:
    """``pgbench -i -s scale`` into ``conn``'s database (a scratch database on a restored instance only)."""
    argv = [str(bin_dir / "pgbench"), "-i", "-q", "-s", str(scale), "-I", "dtgp"]
    _run(argv, conn.env(), timeout=timeout_s, what=f"pgbench -i on {conn.describe()}")


def _run(argv: list[str], env: dict[str, str], *, timeout: float, what: str) -> subprocess.CompletedProcess[str]:
    try:
        result = process.run(argv, env=env, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise PgbenchError(f"{what} did not finish within {exc.timeout:.0f}s and was stopped") from None
    except FileNotFoundError as exc:
        raise PgbenchError(
            f"cannot run {argv[0]}: {exc.strerror}; install pgbench or set the datastore's bin_dir"
        ) from exc
    if result.returncode != 0:
        raise PgbenchError(f"{what} failed (exit {result.returncode}):\n{_tail(result.stderr or result.stdout)}")
    return result


def _tail(text: str, lines: int = 10) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])
