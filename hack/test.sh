#!/usr/bin/env bash
# The test phase of `make test` (after lint, kube-bins, check-generated and services): every
# module's go test, in order, stopping at the first failure.
#
# The tests mostly wait on apiservers (a warm run kept about a quarter of 2 cores busy), so the
# builds that only later modules need run in the background meanwhile, one after the other:
#   1. PREVIOUS_VERSION's control plane, kubeadm and kubelet (one go build), the worker nodes'
#      binaries (hack/node-bins.sh) and helm: core and sdk do not use them, and the script
#      waits for them before any other module;
#   2. TEST_VERSIONS' control planes: the end-to-end subtest that runs them comes late and waits
#      for the build through hack/kube-bins.sh's per-version lock, as a node building on demand
#      does.
# A failed build fails the script with its log; the build dies with the script.
#
#   MODULES="core sdk ..." STANDALONE="examples/..." TEST_VERSIONS=v1.33.13 PREVIOUS_VERSION=v1.36.3 hack/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = --build ]; then
  hack/kube-bins.sh {kube-apiserver,kube-controller-manager,kube-scheduler,kubeadm,kubelet}@"$PREVIOUS_VERSION" >/dev/null
  hack/node-bins.sh >/dev/null
  hack/helm.sh >/dev/null
  touch "$2"
  [ -z "$TEST_VERSIONS" ] || VERSIONS="$TEST_VERSIONS" hack/kube-bins.sh
  exit 0
fi

: "${MODULES:?}" "${STANDALONE=}" "${TEST_VERSIONS=}" "${PREVIOUS_VERSION:?}"
export TEST_VERSIONS PREVIOUS_VERSION
tmp=$(mktemp -d)
nodes_ready="$tmp/nodes-ready"
# Its own process group, so the trap stops every build it started.
setsid -w "$0" --build "$nodes_ready" >"$tmp/build.log" 2>&1 &
bg=$!
trap 'kill -- -$bg 2>/dev/null || true; rm -rf "$tmp"' EXIT

build_failed() {
  echo "the background build ($1) failed:"
  cat "$tmp/build.log"
  exit 1
}

wait_nodes() {
  while [ ! -e "$nodes_ready" ]; do
    if ! kill -0 "$bg" 2>/dev/null; then
      [ -e "$nodes_ready" ] || build_failed "$PREVIOUS_VERSION, node-bins, helm"
    fi
    sleep 1
  done
}

for m in $MODULES; do
  case $m in
    core | sdk) ;;
    *) wait_nodes ;;
  esac
  echo "== go test $m"
  (cd "$m" && go test -count=1 -timeout 60m ./...)
done
for m in $STANDALONE; do
  echo "== GOWORK=off go test $m"
  (cd "$m" && GOWORK=off go test -count=1 -timeout 60m ./...)
done
wait "$bg" || build_failed "TEST_VERSIONS $TEST_VERSIONS"
