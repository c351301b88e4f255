"""Parse-time benchmark: drflow's YAML → Airflow DAGs against hand-written DAG files.

N copies of plan_specs/api-marketplace.yaml (distinct metadata.name) go into a temp dir. From their
plans, N Python DAG files are generated with literal operator instantiations (same operator classes,
dag ids, tags, doc_md, default_args, params, task arguments and wiring; for recovery plans also the
deadline alert, DAG and task notifiers built from drflow's notifier classes with literal arguments,
teardown and paused flags) — the baseline. Before any timing, one worker checks that both sides
serialize to the same DAGs and attach equal callback notifiers.

Every measurement runs in a fresh interpreter that first imports the generated DAG file of one more
copy (the same warm-up on both sides: Airflow, the operator classes and Airflow's lazily imported
parts are loaded, as in a DAG processor that has parsed a file before; drflow's own modules stay cold):

  drflow    drflow.render.airflow.render_specs([dir])      YAML load + pydantic + checks + plan + DAGs
  front     drflow.plan.compile.compile_specs([dir])       the same without Airflow objects, then
            render_dag() over those plans                  the Airflow half alone
  baseline  import the N generated files, as Airflow's DagBag does (SourceFileLoader, .pyc present)

Best of R for each, workers interleaved. Prints wall and CPU time (process_time: least disturbed by
other load on a shared machine), ms per DAG and per task, and drflow/baseline on both clocks.
Then, unless --no-scale, the scale measurements of benchmarks/parse_scale.py: one task's parse and a full
parse with 1, 100 and 1,000 specs (--scale), with the full parse's peak memory.
Usage: .venv/bin/python benchmarks/parse.py [--specs 100] [--repeat 3] [--scale 1,100,1000] [--no-scale | --scale-only]
       .venv/bin/python benchmarks/parse.py --check-only [--specs 1]   (the equivalence check alone)
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import parse_scale

REPO = Path(__file__).resolve().parent.parent
SPEC_FILE = REPO / "plan_specs" / "api-marketplace.yaml"
SPEC_NAME = "api-marketplace"
TARGET_RATIO = 1.5
WORKER_KINDS = ("drflow", "front", "baseline")
CALLBACK_KINDS = ("execute", "success", "failure", "retry", "skipped")
# Sub-directories of the temp dir: the spec copies, their generated DAG files, and the warm-up's.
SPECS, DAGS, WARM_UP_SPECS, WARM_UP = "specs", "dags", "warm-up-specs", "warm-up"


# -- inputs ---------------------------------------------------------------


def write_specs(spec_dir: Path, names: list[str]) -> None:
    """Copies of the API Marketplace spec, one per metadata.name in ``names``."""
    text = SPEC_FILE.read_text(encoding="utf-8")
    pattern = re.compile(rf"^(metadata:\n  name: ){re.escape(SPEC_NAME)}$", re.MULTILINE)
    if len(pattern.findall(text)) != 1:
        raise SystemExit(f"cannot find 'metadata:\\n  name: {SPEC_NAME}' exactly once in {SPEC_FILE}")
    for name in names:
        (spec_dir / f"{name}.yaml").write_text(pattern.sub(rf"\g<1>{name}", text), encoding="utf-8")


def _td(seconds: int) -> str:
    return f"timedelta(seconds={seconds!r})"


def _operator_paths() -> dict[str, tuple[str, str]]:
    """Plan action -> (module, class name) of its operator, from drflow's action table."""
    from drflow.render.actions import ACTIONS

    paths: dict[str, tuple[str, str]] = {}
    for action, dotted in ACTIONS.items():
        module, _, name = dotted.rpartition(".")
        paths[action] = (module, name)
    return paths


class Literals:
    """Python source for the callback objects drflow attaches, and the imports that source needs."""

    def __init__(self) -> None:
        self.imports: set[tuple[str, str]] = set()

    def name(self, cls: type) -> str:
        self.imports.add((cls.__module__, cls.__name__))
        return cls.__name__

    def notifier(self, notifier: Any, plan_var: str, plan: dict[str, Any]) -> str:
        """``PlanEventNotifier(event='...', plan_json='...', outcome=...)``: one event to every channel of the plan."""
        from drflow.notifiers.base import PlanEventNotifier

        if not isinstance(notifier, PlanEventNotifier):
            raise SystemExit(f"the baseline cannot write {notifier!r} as literals: update benchmarks/parse.py")
        kwargs = [f"event={notifier.event!r}", f"plan_json={notifier.plan_json!r}"]
        if notifier.outcome is not None:
            kwargs.append(f"outcome={notifier.outcome!r}")
        return f"{self.name(type(notifier))}({', '.join(kwargs)})"

    def notifiers(self, notifiers: list[Any], plan_var: str, plan: dict[str, Any]) -> str:
        return "[" + ", ".join(self.notifier(n, plan_var, plan) for n in notifiers) + "]"

    def asset(self, watch: Any) -> str:
        """``[Asset(name=..., watchers=[AssetWatcher(name=..., trigger=Trigger(**kwargs))])]``: an event schedule."""
        from airflow.sdk import Asset, AssetWatcher

        module, _, trigger = watch.trigger.rpartition(".")
        self.imports.add((module, trigger))
        watcher = f"{self.name(AssetWatcher)}(name={watch.asset + '.watcher'!r}, trigger={trigger}(**{watch.kwargs!r}))"
        return f"[{self.name(Asset)}(name={watch.asset!r}, watchers=[{watcher}])]"

    def deadline(self, alert: Any) -> str:
        """``DeadlineAlert(reference=DeadlineReference.X, interval=..., callback=AsyncCallback(...), name=...)``."""
        from airflow.sdk.definitions.deadline import DeadlineReference

        refs = [attr for attr, value in vars(DeadlineReference).items() if value is alert.reference]
        module, _, callable_name = alert.callback.path.rpartition(".")
        if len(refs) != 1 or not module:
            raise SystemExit(f"the baseline cannot write deadline {alert!r} as literals: update benchmarks/parse.py")
        self.imports.add((module, callable_name))
        callback = f"{self.name(type(alert.callback))}({callable_name}, kwargs={alert.callback.kwargs!r})"
        return (
            f"{self.name(type(alert))}(reference={self.name(DeadlineReference)}.{refs[0]}, "
            f"interval={_td(int(alert.interval.total_seconds()))}, callback={callback}, name={alert.name!r})"
        )


def dag_source(plans: list[Any]) -> str:
    """A hand-written-style DAG file for ``plans`` (DagPlans of one spec): literals only.

    Recovery plans' notifiers and deadline alert are built the way a hand-writer using drflow's
    notifier classes would: ``SlackNotifier(channel=..., plan=PLAN_0)``, ``DeadlineAlert(...)``,
    with the plan's facts (``spec``, ``plan``, ``scenario``, RTO, RPO) in one dict per DAG.
    """
    from drflow.notifiers import notifiers_for
    from drflow.notifiers.base import PLAN_KEYS
    from drflow.render.callbacks import completion_callbacks, deadline_alert, deadlines_enabled

    operators = _operator_paths()
    literals = Literals()
    body: list[str] = []
    for d, plan in enumerate(plans):
        params = ", ".join(f"{name!r}: Param(**{spec!r})" for name, spec in plan.params.items())
        every_s = getattr(plan, "schedule_every_s", None)
        schedule = _td(every_s) if every_s else repr(plan.schedule)
        if plan.watch is not None:
            schedule = literals.asset(plan.watch)
        extras = []
        if plan.paused is not None:
            extras.append(f"is_paused_upon_creation={plan.paused!r}")
        if plan.display_name:
            extras.append(f"dag_display_name={plan.display_name!r}")
        plan_var, facts = f"PLAN_{d}", {}
        if plan.notify is not None:
            facts = {key: plan.notify.get(key) for key in PLAN_KEYS}
            body += ["", f"{plan_var} = {facts!r}"]
            for when, notifiers in completion_callbacks(plan.notify).items():
                extras.append(f"{when}={literals.notifiers(notifiers, plan_var, facts)}")
            if plan.deadline_s and deadlines_enabled():
                extras.append(f"deadline={literals.deadline(deadline_alert(plan.notify, plan.deadline_s))}")
        body += [
            "",
            "with DAG(",
            f"    dag_id={plan.dag_id!r},",
            f"    schedule={schedule},",
            "    catchup=False,",
            f"    max_active_runs={plan.max_active_runs!r},",
            f"    tags={plan.tags!r},",
            f"    description={plan.description!r},",
            f"    doc_md={plan.doc_md!r},",
            f"    default_args={{'owner': {plan.owner!r}, 'retries': {plan.retries!r}, "
            f"'retry_delay': {_td(plan.retry_delay_s)}}},",
            f"    params={{{params}}},",
            *(f"    {extra}," for extra in extras),
            f") as dag_{d}:",
        ]
        names = {task.task_id: f"t{d}_{t}" for t, task in enumerate(plan.tasks)}
        for task in plan.tasks:
            kwargs = [f"task_id={task.task_id!r}", f"doc_md={task.doc!r}", f"trigger_rule={task.trigger_rule!r}"]
            if task.retries is not None:
                kwargs.append(f"retries={task.retries!r}")
            if task.retry_delay_s is not None:
                kwargs.append(f"retry_delay={_td(task.retry_delay_s)}")
            if task.timeout_s is not None:
                kwargs.append(f"execution_timeout={_td(task.timeout_s)}")
            if task.queue is not None:
                kwargs.append(f"queue={task.queue!r}")
            if task.notify_on and plan.notify is not None:
                for when, event in task.notify_on.items():
                    if notifiers := notifiers_for(plan.notify, event):
                        kwargs.append(f"on_{when}_callback={literals.notifiers(notifiers, plan_var, facts)}")
            kwargs += [f"{key}={value!r}" for key, value in task.params.items()]
            body.append(f"    {names[task.task_id]} = {operators[task.action][1]}(")
            body += [f"        {kwarg}," for kwarg in kwargs]
            body.append("    )" + (".as_teardown()" if task.teardown else ""))
        for task in plan.tasks:
            body += [f"    {names[up]} >> {names[task.task_id]}" for up in task.upstream]
    by_module: dict[str, set[str]] = {}
    for module, name in {operators[task.action] for plan in plans for task in plan.tasks} | literals.imports:
        by_module.setdefault(module, set()).add(name)
    header = [
        "from datetime import timedelta",
        "",
        "from airflow.sdk import DAG, Param",
        "",
        *(f"from {module} import {', '.join(sorted(names))}" for module, names in sorted(by_module.items())),
    ]
    return "\n".join(header + body) + "\n"


def write_baseline(spec_dir: Path, dag_dir: Path) -> tuple[int, int]:
    """One generated DAG file per spec in ``dag_dir``; returns (DAGs, tasks)."""
    import py_compile

    from drflow.plan.compile import compile_specs

    plans = compile_specs([spec_dir])
    errors = [p.dag_id for p in plans if p.error]
    if errors:
        raise SystemExit(f"the spec copies do not validate: {errors[:3]}")
    by_spec: dict[str, list[Any]] = {}
    for plan in plans:
        by_spec.setdefault(plan.spec, []).append(plan)
    for spec, spec_plans in by_spec.items():
        path = dag_dir / f"{spec.replace('-', '_')}.py"
        path.write_text(dag_source(spec_plans), encoding="utf-8")
        # Airflow's DagBag imports DAG files with SourceFileLoader: after the first parse the
        # bytecode comes from __pycache__, so the steady state (measured here) skips compiling.
        py_compile.compile(str(path), doraise=True)
    return len(plans), sum(len(p.tasks) for p in plans)


# -- workers (fresh interpreters) -------------------------------------------


def _warm_up(warm_dir: Path) -> None:
    """The same for every worker: import Airflow and build one spec's DAGs from a generated file.

    This loads the operator modules and Airflow's lazily imported parts (timetables, croniter,
    Param) as a DAG processor that has parsed a file before would have them; drflow's own modules
    (YAML loader, pydantic models, checks, plans) stay cold.
    """
    _import_dag_files(warm_dir)


def _import_dag_files(dag_dir: Path) -> dict[str, Any]:
    """Import every DAG file the way Airflow's DagBag does; the DAGs found in their globals."""
    import importlib.machinery
    import importlib.util

    from airflow.sdk import DAG

    dags: dict[str, Any] = {}
    for path in sorted(dag_dir.glob("*.py")):
        mod_name = f"unusual_prefix_{dag_dir.name}_{path.stem}"
        loader = importlib.machinery.SourceFileLoader(mod_name, str(path))
        spec = importlib.util.spec_from_loader(mod_name, loader)
        assert spec is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[mod_name] = module
        loader.exec_module(module)
        dags.update((v.dag_id, v) for v in vars(module).values() if isinstance(v, DAG))
    return dags


class Clock:
    """Wall and CPU time of one phase; CPU time is what other load on a shared machine disturbs least."""

    def __init__(self) -> None:
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def lap(self) -> dict[str, float]:
        wall, cpu = time.perf_counter(), time.process_time()
        elapsed = {"wall": wall - self.wall, "cpu": cpu - self.cpu}
        self.wall, self.cpu = wall, cpu
        return elapsed


def worker(kind: str, root: Path) -> dict[str, Any]:
    """One measurement in this fresh interpreter: phase -> {"wall": s, "cpu": s}, plus the DAG count."""
    spec_dir, dag_dir = root / SPECS, root / DAGS
    _warm_up(root / WARM_UP)
    clock = Clock()
    if kind == "baseline":
        dags = _import_dag_files(dag_dir)
        return {"total": clock.lap(), "dags": len(dags)}
    import drflow.render.airflow as render  # pydantic models, YAML loader, checks, plan builders

    imported = clock.lap()
    if kind == "drflow":
        rendered = render.render_specs([spec_dir])
        return {"total": clock.lap(), "import": imported, "dags": len(rendered)}
    from drflow.plan.compile import compile_specs

    clock.lap()
    plans = compile_specs([spec_dir])
    compiled = clock.lap()
    rendered_dags = [render.render_dag(plan) for plan in plans]
    return {"total": compiled, "render": clock.lap(), "dags": len(rendered_dags)}


def check_equivalent(root: Path) -> list[str]:
    """Both sides serialize (as the DAG processor stores them) to the same DAGs, file paths aside."""
    from airflow.serialization.serialized_objects import DagSerialization

    from drflow.render.airflow import render_specs

    _warm_up(root / WARM_UP)
    ours = render_specs([root / SPECS])
    theirs = _import_dag_files(root / DAGS)
    if ours.keys() != theirs.keys():
        return [f"dag ids differ: {sorted(ours.keys() ^ theirs.keys())[:5]}"]

    def normal(dag: Any) -> Any:
        data = DagSerialization.to_dict(dag)["dag"]
        for key in ("fileloc", "relative_fileloc"):
            data.pop(key, None)
        return json.loads(json.dumps(data, sort_keys=True, default=str))

    def arguments(task: Any) -> dict[str, Any]:
        # The operators' own arguments are not all serialized: compare what their __init__ stored.
        names = inspect.signature(type(task).__init__).parameters
        return {"class": type(task).__name__, **{k: v for k, v in vars(task).items() if k in names}}

    def callbacks(obj: Any) -> dict[str, Any]:
        # Serialization keeps only has_on_*_callback flags: compare each notifier's class and state.
        found = {}
        for when in CALLBACK_KINDS:
            value = getattr(obj, f"on_{when}_callback", None)
            items = value if isinstance(value, list) else [] if value is None else [value]
            found[when] = [{"class": f"{type(n).__module__}.{type(n).__qualname__}", **vars(n)} for n in items]
        return json.loads(json.dumps(found, sort_keys=True, default=str))

    problems = []
    for dag_id in sorted(ours):
        a, b = normal(ours[dag_id]), normal(theirs[dag_id])
        if a != b:
            keys = sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))
            problems.append(f"{dag_id}: serialized DAGs differ in {keys}")
        if callbacks(ours[dag_id]) != callbacks(theirs[dag_id]):
            problems.append(f"{dag_id}: DAG callbacks differ")
        for task_id, task in ours[dag_id].task_dict.items():
            if arguments(task) != arguments(theirs[dag_id].task_dict[task_id]):
                problems.append(f"{dag_id}.{task_id}: operator arguments differ")
            if callbacks(task) != callbacks(theirs[dag_id].task_dict[task_id]):
                problems.append(f"{dag_id}.{task_id}: task callbacks differ")
    return problems


def run_worker(kind: str, root: Path) -> dict[str, Any]:
    argv = [sys.executable, __file__, "--worker", kind, str(root)]
    proc = subprocess.run(argv, capture_output=True, text=True, check=False, cwd=REPO)
    if proc.returncode != 0:
        raise SystemExit(f"{kind} worker failed:\n{proc.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


# -- driver ----------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--specs", type=int, default=100, help="copies of the API Marketplace spec (100)")
    parser.add_argument("--repeat", type=int, default=3, help="fresh-interpreter runs per side; best is kept (3)")
    parser.add_argument("--scale", default="1,100,1000", help="spec counts of the scale measurements (1,100,1000)")
    parser.add_argument("--scale-repeat", type=int, default=5, help="task parses per count; best is kept (5)")
    parser.add_argument("--no-scale", action="store_true", help="only the comparison with hand-written DAG files")
    parser.add_argument("--scale-only", action="store_true", help="only the scale measurements")
    parser.add_argument(
        "--check-only", action="store_true", help="only build both sides and compare them (no timing, no scale)"
    )
    parser.add_argument("--worker", nargs=2, metavar=("KIND", "ROOT"), help=argparse.SUPPRESS)
    parser.add_argument("--scale-worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.scale_worker:
        print(json.dumps(parse_scale.worker()))
        return 0
    if args.worker:
        kind, root_dir = args.worker
        if kind == "check":
            print(json.dumps({"problems": check_equivalent(Path(root_dir))}))
        else:
            print(json.dumps(worker(kind, Path(root_dir))))
        return 0
    if args.specs < 1 or args.repeat < 1 or args.scale_repeat < 1:
        parser.error("--specs, --repeat and --scale-repeat must be at least 1")
    try:
        counts = sorted({int(count) for count in args.scale.split(",")})
    except ValueError:
        parser.error(f"--scale takes spec counts separated by commas (1,100,1000), not {args.scale!r}")
    if counts[0] < 1:
        parser.error("--scale counts must be at least 1")
    if args.scale_only:
        parse_scale.measure(counts, args.scale_repeat)
        return 0
    status = compare(args)
    if not args.no_scale and not args.check_only:
        parse_scale.measure(counts, args.scale_repeat)
    return status


def compare(args: argparse.Namespace) -> int:
    """drflow's full parse against hand-written DAG files (the figures above)."""
    root = Path(tempfile.mkdtemp(prefix="drflow-bench-parse-"))
    try:
        for name in (SPECS, DAGS, WARM_UP_SPECS, WARM_UP):
            (root / name).mkdir()
        write_specs(root / SPECS, [f"{SPEC_NAME}-{i:04d}" for i in range(args.specs)])
        n_dags, n_tasks = write_baseline(root / SPECS, root / DAGS)
        write_specs(root / WARM_UP_SPECS, [f"{SPEC_NAME}-warm-up"])
        write_baseline(root / WARM_UP_SPECS, root / WARM_UP)
        print(f"{args.specs} specs -> {n_dags} DAGs, {n_tasks} tasks; best of {args.repeat} fresh interpreters")
        check = run_worker("check", root)
        if check["problems"]:
            print("baseline is not equivalent to drflow's DAGs:\n  " + "\n  ".join(check["problems"][:10]))
            return 1
        print("check: both sides serialize to identical DAGs")
        if args.check_only:
            return 0

        runs: dict[str, list[dict[str, Any]]] = {kind: [] for kind in WORKER_KINDS}
        for r in range(args.repeat):
            order = WORKER_KINDS[r % 3 :] + WORKER_KINDS[: r % 3]  # rotate, so no side always goes first
            for kind in order:
                result = run_worker(kind, root)
                if result["dags"] != n_dags:
                    raise SystemExit(f"{kind} built {result['dags']} DAGs, expected {n_dags}")
                runs[kind].append(result)
    finally:
        shutil.rmtree(root, ignore_errors=True)

    def best(kind: str, phase: str = "total") -> dict[str, float]:
        return {clock: min(r[phase][clock] for r in runs[kind]) for clock in ("wall", "cpu")}

    def row(label: str, times: dict[str, float]) -> str:
        wall, cpu = times["wall"] * 1000, times["cpu"] * 1000
        return (
            f"{label:<44} {wall:7.0f} ms wall {cpu:7.0f} ms CPU  "
            f"{cpu / n_dags:6.3f} ms/DAG {cpu / n_tasks:6.3f} ms/task (CPU)"
        )

    print(row("baseline: import generated DAG files", best("baseline")))
    print(row("drflow: render_specs (load+check+plan+DAGs)", best("drflow")))
    print(row("  front half: compile_specs (load+plan)", best("front")))
    print(row("  back half: render_dag over those plans", best("front", "render")))
    imported = best("drflow", "import")
    print(
        f"drflow's one-off import of its spec/plan modules: {imported['wall'] * 1000:.0f} ms wall, "
        f"{imported['cpu'] * 1000:.0f} ms CPU (not in the figures above)"
    )
    for kind in WORKER_KINDS:
        walls = ", ".join(f"{r['total']['wall'] * 1000:.0f}" for r in runs[kind])
        print(f"every run, wall ms, {kind}: {walls}")
    for clock in ("cpu", "wall"):
        ratio = best("drflow")[clock] / best("baseline")[clock]
        paired = statistics.median(
            d["total"][clock] / b["total"][clock] for d, b in zip(runs["drflow"], runs["baseline"], strict=True)
        )
        verdict = "OK" if ratio <= TARGET_RATIO else "ABOVE TARGET"
        print(
            f"ratio drflow/baseline ({clock}): {ratio:.2f} best of each, {paired:.2f} median of paired runs "
            f"(target <= {TARGET_RATIO}: {verdict})"
        )
    return 0


if __name__ == "__main__":
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    sys.exit(main())
