#!/usr/bin/env bash
# Example reviewed command for `run_command` plan steps: flush a CDN cache after traffic moved.
# It only prints what it would do, so it is safe anywhere (drills, tests, the sandbox). A real one
# would call the CDN's API here; keep it idempotent: Airflow retries a failed step.
#
#   flush-cdn-cache.sh --distribution ID [--path /api/*]...
set -euo pipefail

distribution=""
paths=()
while (($#)); do
  case "$1" in
    --distribution) distribution="${2:?--distribution needs an id}"; shift 2 ;;
    --path) paths+=("${2:?--path needs a path}"); shift 2 ;;
    *) echo "unknown argument: $1 (use --distribution ID [--path P]...)" >&2; exit 2 ;;
  esac
done
if [[ -z "$distribution" ]]; then
  echo "missing --distribution ID: name the CDN distribution to flush" >&2
  exit 2
fi
((${#paths[@]})) || paths=("/*")

echo "plan ${DRFLOW_PLAN:-?} run ${DRFLOW_RUN_ID:-?}: would flush distribution ${distribution}"
for path in "${paths[@]}"; do
  echo "would invalidate ${path}"
done
