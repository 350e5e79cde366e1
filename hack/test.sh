#!/usr/bin/env bash
# The test phase of `make test` (after lint, kube-bins, check-generated and services): every
# module's go test, stopping at the first failure.
#
# `make test` builds only kube-apiserver and etcd before this script: most modules' tests need
# nothing else (their test planes are a kube-apiserver on an etcd, core/testenv). The tests
# mostly wait on apiservers (a warm run kept about a quarter of 2 cores busy), so the rest builds
# in the background meanwhile, one after the other:
#   1. the plane's other binaries (kube-controller-manager, kube-scheduler, kube-proxy, kubeadm,
#      kubectl, kine, konnectivity), PREVIOUS_VERSION's control plane, kubeadm and kubelet (one go
#      build), the worker nodes' binaries (hack/node-bins.sh) and helm;
#   2. TEST_VERSIONS' control planes: the end-to-end subtest that runs them comes late and waits
#      for the build through hack/kube-bins.sh's per-version lock, as a node building on demand
#      does.
# The modules that need only kube-apiserver and etcd (apiserver_only below) test first, in
# MODULES' order, then STANDALONE's; the others wait for step 1, then test in MODULES' order.
# A failed build fails the script with its log; the build dies with the script.
#
#   MODULES="core sdk ..." STANDALONE="examples/..." TEST_VERSIONS=v1.33.13 PREVIOUS_VERSION=v1.36.3 hack/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = --build ]; then
  PREVIOUS= hack/kube-bins.sh >/dev/null
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
      [ -e "$nodes_ready" ] || build_failed "the plane's binaries, $PREVIOUS_VERSION, node-bins, helm"
    fi
    sleep 1
  done
}

# apiserver_only: the modules whose tests run nothing but kube-apiserver and etcd (and the
# machine's services): charts needs helm and kubectl, cmd every binary.
apiserver_only() {
  case $1 in
    core | sdk | cli | bench | images | plugins/* | examples/*) return 0 ;;
  esac
  return 1
}

run_module() {
  echo "== go test $1"
  (cd "$1" && go test -count=1 -timeout 60m ./...)
}

for m in $MODULES; do
  if apiserver_only "$m"; then run_module "$m"; fi
done
for m in $STANDALONE; do
  echo "== GOWORK=off go test $m"
  (cd "$m" && GOWORK=off go test -count=1 -timeout 60m ./...)
done
for m in $MODULES; do
  if ! apiserver_only "$m"; then
    wait_nodes
    run_module "$m"
  fi
done
wait "$bg" || build_failed "TEST_VERSIONS $TEST_VERSIONS"
