#!/usr/bin/env bash
# Reviewed validation command of the config drills: checks a restored routes directory before anyone
# would put it back. Every *.yaml file must name an absolute `path:` and an `upstream:`; the directory
# must hold at least one route. Read-only: it never changes the files.
#
#   check-routes.sh DIR
set -euo pipefail

dir="${1:?usage: check-routes.sh DIR (the restored config directory)}"
if [[ ! -d "$dir" ]]; then
  echo "$dir is not a directory: give the restored config directory" >&2
  exit 2
fi
routes=0
bad=0
while IFS= read -r -d '' file; do
  [[ "$(basename "$file")" == gateway.yaml ]] && continue
  routes=$((routes + 1))
  if ! grep -Eq '^path: /' "$file" || ! grep -Eq '^upstream: .+' "$file"; then
    echo "invalid route ${file#"$dir"/}: it needs 'path: /…' and 'upstream: …' lines" >&2
    bad=$((bad + 1))
  fi
done < <(find "$dir" -type f -name '*.yaml' -print0)
if ((routes == 0)); then
  echo "no route file (*.yaml) under $dir: the restored config is empty" >&2
  exit 1
fi
if ((bad > 0)); then
  echo "$bad of $routes routes invalid" >&2
  exit 1
fi
echo "$routes routes valid"
