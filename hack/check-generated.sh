#!/usr/bin/env bash
# Fails when `make generate manifests` changes any generated file: what is in the tree (and so
# what gets committed) must be exactly what the generators produce.
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
