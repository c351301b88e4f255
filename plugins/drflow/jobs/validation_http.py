"""Functional and performance checks over the network: `http`, `integration` and `http-latency`."""

from __future__ import annotations

from drflow.engines.http.probe import (
    connection_endpoint,
    request,
    requests_in_a_row,
    resolve,
    tcp_connect,
)
from drflow.jobs.validation_results import (
    CheckResult,
    Measure,
    body_contains,
    body_matches,
    latency_at_most,
    percentile,
    status_in,
)
from drflow.spec.validation import CATEGORY, HttpCheck, HttpLatencyCheck, IntegrationCheck, format_latency

REACHABLE_BELOW = 500
"""An integration point that answers with a status below this is up (a 401 to an anonymous probe is an answer)."""


def run_http(check: HttpCheck) -> CheckResult:
    target = resolve(check.conn_id, check.url, check.endpoint)
    answer = request(target, method=check.method, timeout_s=check.timeout)
    measures = [status_in("status", check.expect_status, answer.status, answer.error)]
    if answer.status is not None:
        if check.body_contains is not None:
            measures.append(body_contains("body", check.body_contains, answer.body))
        if check.body_matches is not None:
            measures.append(body_matches("body", check.body_matches, answer.body))
        if check.max_latency is not None:
            measures.append(latency_at_most("latency", check.max_latency, answer.elapsed_s))
    return CheckResult(
        check.name,
        check.type,
        CATEGORY[check.type],
        tuple(measures),
        detail={"url": answer.url, "status": answer.status, "elapsed_s": round(answer.elapsed_s, 4)},
    )


def run_integration(check: IntegrationCheck) -> CheckResult:
    measures = []
    detail: dict[str, object] = {}
    for point in check.points:
        kind, host, port = ("http", "", None) if point.url else connection_endpoint(str(point.conn_id))
        if point.url or kind in ("http", "https"):
            answer = request(resolve(point.conn_id, point.url, point.endpoint), timeout_s=check.timeout)
            allowed = point.expect_status
            if allowed is None:
                passed = answer.status is not None and answer.status < REACHABLE_BELOW
                got = f"{answer.status}" if answer.status is not None else f"no answer ({answer.error})"
                measure = Measure(
                    point.name, f"an answer below {REACHABLE_BELOW}", got, passed, None if passed else "down"
                )
            else:
                measure = status_in(point.name, allowed, answer.status, answer.error)
            detail[point.name] = {"url": answer.url, "status": answer.status, "elapsed_s": round(answer.elapsed_s, 4)}
        else:
            if not host or port is None:
                raise ValueError(
                    f"connection {point.conn_id!r} of integration point {point.name!r} names no host and port; set "
                    "them in the connection (or give the point a url)"
                )
            tcp = tcp_connect(host, port, timeout_s=check.timeout)
            where = f"{host}:{port}"
            got = f"connected in {format_latency(round(tcp.elapsed_s, 4))}" if tcp.error is None else tcp.error
            measure = Measure(
                point.name,
                f"a TCP connection to {where}",
                got,
                tcp.error is None,
                None if tcp.error is None else "unreachable",
            )
            detail[point.name] = {"address": where, "elapsed_s": round(tcp.elapsed_s, 4), "error": tcp.error}
        measures.append(measure)
    return CheckResult(check.name, check.type, CATEGORY[check.type], tuple(measures), detail=detail)


def run_http_latency(check: HttpLatencyCheck) -> CheckResult:
    target = resolve(check.conn_id, check.url, check.endpoint)
    answers = requests_in_a_row(target, check.requests, timeout_s=check.timeout)
    wrong = [a for a in answers if a.status not in check.expect_status]
    statuses = " or ".join(map(str, check.expect_status))
    sample = wrong[0] if wrong else None
    got = f"{len(answers) - len(wrong)} of {len(answers)} answered {statuses}"
    if sample is not None:
        got += f" (e.g. {sample.status if sample.status is not None else sample.error})"
    measures = [
        Measure(
            "status",
            f"all {len(answers)} answer {statuses}",
            got,
            not wrong,
            f"{len(wrong)} did not" if wrong else None,
        )
    ]
    latencies = [a.elapsed_s for a in answers]
    for name, limit in sorted(check.percentiles.items(), key=lambda item: float(item[0][1:])):
        measures.append(latency_at_most(name, limit, percentile(latencies, float(name[1:]))))
    detail = {
        "url": target.url,
        "requests": len(answers),
        "min_s": round(min(latencies), 4),
        "max_s": round(max(latencies), 4),
        "mean_s": round(sum(latencies) / len(latencies), 4),
    }
    return CheckResult(check.name, check.type, CATEGORY[check.type], tuple(measures), detail=detail)
