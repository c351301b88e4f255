"""A narrow fix for an Airflow 3.3 bug that stops ops from retrying a failed step of a recovery plan.

apache/airflow#70368: since migration 0117 (3.3.0) `deadline_alert.interval` is stored as a serde
envelope (`{"__classname__": "datetime.timedelta", "__data__": 3600.0, …}`), but
`airflow.models.taskinstance._recalculate_dagrun_queued_at_deadlines` (run by every clear) still reads it as
seconds: clearing any task of a run whose queued-at deadline is not yet missed fails (HTTP 500). drflow's
recovery plans carry such a deadline (their RTO), so "fix the cause and clear the step" failed until the RTO
had passed.

`apply()` replaces that function, on Airflow 3.3.x only and only if it is there with the signature this
was written against, with `recalculate_queued_at_deadlines`: the interval is read with Airflow's own decoder
(bare seconds of older rows, the envelope, a Variable-backed interval). A drflow RTO deadline keeps its time:
the RTO runs from the incident, and retrying a step does not restart it. Every other DAG's queued-at
deadline moves to the new queued_at + its interval, as Airflow means it to.
"""

from __future__ import annotations

import inspect
import logging
import os
import sys
from datetime import datetime, timedelta
from typing import Any

from packaging.version import Version

log = logging.getLogger(__name__)

AIRFLOW_ISSUE = "apache/airflow#70368"
TARGET_MODULE = "airflow.models.taskinstance"
TARGET = "_recalculate_dagrun_queued_at_deadlines"
AFFECTED = (Version("3.3.0"), Version("3.4.0"))
"""[from, to): the versions whose clear fails; 3.3.0 turned the interval into JSON."""
SWITCH_ENV = "DRFLOW_AIRFLOW_FIXES"
"""`off` leaves Airflow as it is (to compare with the bug, or if the fix ever misbehaves)."""
DRFLOW_CALLBACK_PREFIX = "drflow."
"""A deadline whose callback is drflow's is a recovery plan's RTO (render/callbacks.py `deadline_alert`)."""


def alert_timing(reference: Any, interval: Any, callback_def: Any) -> tuple[timedelta, bool]:
    """The interval of a stored deadline alert, and whether it is a drflow RTO, read as DagRun creation does."""
    from airflow.serialization.decoders import decode_deadline_alert
    from airflow.serialization.definitions.deadline import SerializedVariableInterval

    alert = decode_deadline_alert({"reference": reference, "interval": interval, "callback": callback_def})
    every = alert.interval.resolve() if isinstance(alert.interval, SerializedVariableInterval) else alert.interval
    path = str(getattr(alert.callback, "path", ""))
    return every, path.startswith(DRFLOW_CALLBACK_PREFIX)


def recalculate_queued_at_deadlines(dagrun: Any, new_queued_at: datetime, session: Any) -> None:
    """Move the run's not-yet-missed queued-at deadlines to `new_queued_at` + interval; drflow's RTO stays."""
    from airflow.models.deadline import Deadline, ReferenceModels
    from airflow.models.deadline_alert import DeadlineAlert
    from sqlalchemy import false, select

    rows = session.execute(
        select(Deadline, DeadlineAlert)
        .join(DeadlineAlert, Deadline.deadline_alert_id == DeadlineAlert.id)
        .where(
            Deadline.dagrun_id == dagrun.id,
            Deadline.missed == false(),
            DeadlineAlert.reference[ReferenceModels.REFERENCE_TYPE_FIELD].as_string()
            == ReferenceModels.DagRunQueuedAtDeadline.__name__,
        )
    ).all()
    for deadline, alert in rows:
        interval, is_rto = alert_timing(alert.reference, alert.interval, alert.callback_def)
        if not is_rto:
            deadline.deadline_time = new_queued_at + interval
    # No flush: the clear commits the run's new queued_at and these together.


def _affected(version: str) -> bool:
    return AFFECTED[0] <= Version(version) < AFFECTED[1]


def apply() -> bool:
    """Install the fix in this process if its Airflow needs it; True when installed (now or before).

    Only where `airflow.models.taskinstance` is already imported: the processes that clear (the api-server)
    have it by the time plugins load; a task's process, which never clears, is not made to import it.
    """
    from airflow import __version__

    module = sys.modules.get(TARGET_MODULE)
    current = getattr(module, TARGET, None)
    if current is recalculate_queued_at_deadlines:
        return True
    switched_off = os.environ.get(SWITCH_ENV, "on").strip().lower() in ("off", "0", "false", "no")
    if switched_off or module is None or current is None or not _affected(__version__):
        return False
    if list(inspect.signature(current).parameters) != ["dagrun", "new_queued_at", "session"]:
        log.warning(
            "drflow: Airflow %s changed %s.%s; left alone (%s)", __version__, TARGET_MODULE, TARGET, AIRFLOW_ISSUE
        )
        return False
    setattr(module, TARGET, recalculate_queued_at_deadlines)
    log.info(
        "drflow: replaced %s.%s of Airflow %s: clearing a task of a run with a queued-at deadline fails (%s); "
        "a drflow recovery plan's RTO deadline keeps its time on a clear",
        TARGET_MODULE,
        TARGET,
        __version__,
        AIRFLOW_ISSUE,
    )
    return True
