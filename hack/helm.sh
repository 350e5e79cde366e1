#!/usr/bin/env bash
# Builds the helm CLI from the Go module proxy into the version-keyed cache, like
# hack/kube-bins.sh does for Kubernetes: $KAMAJI_CACHE/helm/<version>/bin/helm. Built once; a
# second run finds it and builds nothing. Prints HELM=<path> on stdout.
#
#   hack/helm.sh [--dry-run]  (HELM_VERSION=v3.22.0 by default; --dry-run prints the plan only)
set -euo pipefail

HELM_VERSION="${HELM_VERSION:-v3.22.0}"
CACHE="${KAMAJI_CACHE:-$HOME/.cache/kamaji}"
dir="$CACHE/helm/$HELM_VERSION"
bin="$dir/bin/helm"
export GOFLAGS=-buildvcs=false GOWORK=off CGO_ENABLED=0

if [ ! -x "$bin" ] && [ "${1:-}" = --dry-run ]; then
  echo "helm: would build helm $HELM_VERSION into $dir/bin" >&2
  echo "helm: about 2 minutes on this machine's $(nproc 2>/dev/null || echo 2) cores" >&2
elif [ ! -x "$bin" ]; then
  mkdir -p "$dir"
  # One build at a time: a test and `make` may ask at once; the second waits, then finds it.
  exec {lock}>"$dir/.lock"
  flock "$lock"
  if [ ! -x "$bin" ]; then
    echo "helm: building helm $HELM_VERSION into $dir/bin" >&2
    # As helm's own Makefile does: the version, and the Kubernetes version `helm template`
    # and `helm lint` assume without a cluster, from the client-go helm is built with.
    gomod=$(go mod download -json "helm.sh/helm/v3@$HELM_VERSION" | sed -n 's/.*"GoMod": "\(.*\)",*/\1/p')
    kminor=$(sed -n 's/^\s*k8s.io\/client-go v0\.\([0-9]*\)\..*/\1/p' "$gomod" | head -n1)
    [ -n "$kminor" ] || { echo "helm: no k8s.io/client-go in $gomod" >&2; exit 1; }
    ld="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
    for pkg in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
      ld="$ld -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=$kminor"
    done
    rm -rf "$dir/tmp" && mkdir -p "$dir/tmp" "$dir/bin"
    GOBIN="$dir/tmp" go install -trimpath -ldflags "$ld" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
    mv "$dir/tmp/helm" "$bin" && rmdir "$dir/tmp"
  fi
  exec {lock}>&-
fi
echo "HELM=$bin"
