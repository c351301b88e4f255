"""Task log files for the tasks `dag.test()` runs in this process (`make demo`), where Airflow's UI reads them.

`dag.test()` runs each task in-process: its log goes to the process's output only, no task log file is
written, and the api-server, finding none under its log folder, asks the worker's log server on the
hostname the task instance recorded, which nobody runs ("Log file not found on worker"). A real worker's
supervisor writes every task's log, as JSON lines, to `<base_log_folder>/<log_filename_template>`; this
does the same for in-process runs: an Airflow listener opens that file when a task starts and closes it
when the task runner stops, and, in between, every log event of the process (structlog's and the
standard library's) is also written there. Events of Airflow's in-process execution API (the
server's side of the task's calls) are left out, as a real worker's log does not hold them.
"""

from __future__ import annotations

import json
import logging
import threading
import traceback
from collections.abc import MutableMapping
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import structlog
from airflow.listeners import hookimpl

SERVER_SIDE_LOGGERS = ("airflow.api_fastapi.",)
RUNNER = "python -m drflow.devtools.dag_runs"


class TaskLogFiles:
    """The listener, structlog processor and logging handler that write in-process tasks' log files."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sink: IO[bytes] | None = None
        self.written: list[Path] = []

    # -- Airflow listener hooks ----------------------------------------------------------------

    @hookimpl
    def on_task_instance_running(self, previous_state: Any, task_instance: Any) -> None:
        path = task_log_path(task_instance)
        with self._lock:
            self._close()
            self._sink = path.open("ab")
        self.written.append(path)
        # The task runner closes this group (a worker's supervisor opens it before the task starts).
        self.write({"event": "::group::Pre Execute", "logger": "drflow.devtools.task_logs"})
        self.write({"event": f"this try ran in-process under dag.test() ({RUNNER})", "logger": __name__})

    @hookimpl
    def before_stopping(self, component: Any) -> None:
        with self._lock:
            self._close()

    # -- structlog processor ---------------------------------------------------------------------

    def __call__(self, logger: Any, method_name: str, event_dict: MutableMapping[str, Any]) -> Any:
        self.write(dict(event_dict))
        return event_dict

    def write(self, event: dict[str, Any]) -> None:
        if self._sink is None or str(event.get("logger", "")).startswith(SERVER_SIDE_LOGGERS):
            return
        line = json.dumps(_as_json_event(event), default=str).encode() + b"\n"
        with self._lock:
            if self._sink is not None:
                self._sink.write(line)
                self._sink.flush()  # `make airflow` shows a running task's log as it grows

    def _close(self) -> None:
        if self._sink is not None:
            self._sink.close()
            self._sink = None


class _StdlibToTaskLog(logging.Handler):
    """Standard-library records (drflow's own modules log this way) into the current task's file."""

    def __init__(self, files: TaskLogFiles) -> None:
        super().__init__(level=logging.INFO)
        self.files = files

    def emit(self, record: logging.LogRecord) -> None:
        event: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "event": record.getMessage(),
            "logger": record.name,
        }
        if record.exc_info and record.exc_info[0] is not None:
            event["exc_info"] = record.exc_info
        self.files.write(event)


def task_log_path(task_instance: Any) -> Path:
    """Where a worker would write this try's log: the configured filename template under the log folder."""
    from airflow.sdk.log import init_log_file
    from airflow.utils.helpers import log_filename_template_renderer

    relative = log_filename_template_renderer()(ti=task_instance, try_number=task_instance.try_number)
    return init_log_file(relative)


def _as_json_event(event: dict[str, Any]) -> dict[str, Any]:
    """The fields Airflow's UI reads from a JSON log line: timestamp, level, event, logger, the rest as is."""
    exc_info = event.pop("exc_info", None)
    if exc_info:
        error = exc_info if isinstance(exc_info, tuple) else None
        text = "".join(traceback.format_exception(*error)) if error else traceback.format_exc()
        event["event"] = f"{event.get('event', '')}\n{text}".strip()
    event["event"] = str(event.get("event", ""))
    event.setdefault("timestamp", datetime.now(UTC).isoformat())
    event["level"] = str(event.get("level", "info")).lower()
    return event


def install() -> TaskLogFiles:
    """Write the log of every task this process runs in-process to its task log file, from now on."""
    from airflow.sdk.listener import get_listener_manager

    files = TaskLogFiles()
    processors = list(structlog.get_config()["processors"])
    # Before the renderer (the last processor): events then carry their timestamp, level and logger.
    structlog.configure(processors=[*processors[:-1], files, processors[-1]])
    logging.getLogger().addHandler(_StdlibToTaskLog(files))
    get_listener_manager().add_listener(files)
    return files
