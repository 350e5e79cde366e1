#!/usr/bin/env bash
# Fails when `make generate manifests` changes any generated file: what is in the tree (and so
# what gets committed) must be exactly what the generators produce. Also fails when a module's
# go.mod or go.sum is not what `go mod tidy` makes of it outside the workspace: each module is
# built on its own too (make bench, `go install` of the CLI, a plugin author's copy).
set -euo pipefail
cd "$(dirname "$0")/.."
paths=(core/api core/config sdk/internal docs/reference charts/kamaji charts/kamaji-crds)
snapshot() { find "${paths[@]}" -type f 2>/dev/null | LC_ALL=C sort | xargs sha256sum; }
before=$(snapshot)
make -s generate manifests >/dev/null
after=$(snapshot)
if [ "$before" != "$after" ]; then
  echo "generated files were stale; 'make generate manifests' changed:" >&2
  diff <(echo "$before") <(echo "$after") | sed -n 's/^> [0-9a-f]*  /  /p' >&2
  echo "commit the regenerated files" >&2
  exit 1
fi
echo "generated files are fresh"
untidy=()
while read -r mod; do
  dir=$(dirname "$mod")
  (cd "$dir" && GOWORK=off go mod tidy -diff >/dev/null 2>&1) || untidy+=("$dir")
done < <(git ls-files '*/go.mod')
if [ ${#untidy[@]} -gt 0 ]; then
  echo "go.mod or go.sum not tidy in: ${untidy[*]} (run 'GOWORK=off go mod tidy' there and commit)" >&2
  exit 1
fi
echo "every module's go.mod and go.sum are tidy"
