#!/usr/bin/env bash
# The test phase of `make test` (after lint, kube-bins, check-generated and services): every
# module's go test, stopping at the first failure.
#
# `make test` builds only kube-apiserver and etcd before this script: most modules' tests need
# nothing else (their test planes are a kube-apiserver on an etcd, core/testenv). The tests
# mostly wait on apiservers (a warm run kept about a quarter of 2 cores busy), so the rest builds
# in the background meanwhile, one after the other, in the order the tests need it:
#   1. the plane's other binaries (kube-controller-manager, kube-scheduler, kube-proxy, kubeadm,
#      kubectl, kine, konnectivity) and helm: charts' tests wait for these;
#   2. the worker nodes' binaries (hack/node-bins.sh) and PREVIOUS_VERSION's control plane: cmd's
#      tests wait for these too;
#   3. PREVIOUS_VERSION's kubeadm and kubelet, then TEST_VERSIONS' control planes: the
#      end-to-end subtests that run them come late and wait for the build through
#      hack/kube-bins.sh's per-version lock, as a node building on demand does.
# The modules that need only kube-apiserver and etcd (apiserver_only below) test first, in
# MODULES' order, then STANDALONE's; then charts, then the others in MODULES' order. On a cold
# machine the build is the longer of the two (a cold run of 2026-12-07: the tests waited 4
# minutes for it, 44m46s in all; 41m18s and 43m22s in this order, cmd waiting 145 and 160 s),
# hence the order: what the next module needs is built first.
# A failed build fails the script with its log; the build dies with the script.
#
#   MODULES="core sdk ..." STANDALONE="examples/..." TEST_VERSIONS=v1.33.13 PREVIOUS_VERSION=v1.36.3 hack/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = --build ]; then
  ready=$2
  stamp() { echo "$(date +%T) $*"; }
  stamp "building the plane's binaries and helm"
  PREVIOUS= hack/kube-bins.sh >/dev/null
  hack/helm.sh >/dev/null
  touch "$ready.plane"
  stamp "building the worker nodes' binaries and the control plane of $PREVIOUS_VERSION"
  hack/node-bins.sh >/dev/null
  hack/kube-bins.sh {kube-apiserver,kube-controller-manager,kube-scheduler}@"$PREVIOUS_VERSION" >/dev/null
  touch "$ready.nodes"
  # These build while cmd's end-to-end suite runs, whose subtests that need them come late and
  # wait on kube-bins.sh's lock: at a low priority, they take the CPU the suite leaves idle rather
  # than slow the rest of it down (on a cold run of 2026-12-07, beside them at the same priority
  # and a measurement of ours, the suite took 32 minutes instead of 19-20; at this priority, in a
  # cold run on another machine, 17). PREVIOUS_VERSION's control plane is needed by the suite's
  # first subtests: built here too, at this priority, it saved cmd's wait (39 s instead of 204 in
  # two cold runs on like machines, 2026-12-07 and 08) but the suite took 1331 s instead of 1015.
  stamp "building kubeadm and the kubelet of $PREVIOUS_VERSION"
  nice -n 10 hack/kube-bins.sh {kubeadm,kubelet}@"$PREVIOUS_VERSION" >/dev/null
  stamp "building the control planes of ${TEST_VERSIONS:-no other version}"
  [ -z "$TEST_VERSIONS" ] || VERSIONS="$TEST_VERSIONS" nice -n 10 hack/kube-bins.sh
  stamp "done"
  exit 0
fi

: "${MODULES:?}" "${STANDALONE=}" "${TEST_VERSIONS=}" "${PREVIOUS_VERSION:?}"
export TEST_VERSIONS PREVIOUS_VERSION
tmp=$(mktemp -d)
ready="$tmp/ready"
# Its own process group, so the trap stops every build it started.
setsid -w "$0" --build "$ready" >"$tmp/build.log" 2>&1 &
bg=$!
trap 'kill -- -$bg 2>/dev/null || true; rm -rf "$tmp"' EXIT

build_failed() {
  echo "the background build ($1) failed:"
  cat "$tmp/build.log"
  exit 1
}

# wait_for MARKER WHAT: waits until the background build has made WHAT, and says how long the
# tests waited for it.
wait_for() {
  local start=$SECONDS
  while [ ! -e "$ready.$1" ]; do
    if ! kill -0 "$bg" 2>/dev/null; then
      [ -e "$ready.$1" ] || build_failed "$2"
    fi
    sleep 1
  done
  echo "== waited $((SECONDS - start))s for $2"
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
# Then the others, charts first: it needs only the plane's binaries and helm, built before the
# nodes' binaries that cmd needs.
rest=()
for m in $MODULES; do
  if [ "$m" = charts ]; then rest=(charts "${rest[@]}"); elif ! apiserver_only "$m"; then rest+=("$m"); fi
done
for m in "${rest[@]}"; do
  case $m in
    charts) wait_for plane "the plane's binaries and helm" ;;
    *) wait_for nodes "the worker nodes' binaries and $PREVIOUS_VERSION's control plane" ;;
  esac
  run_module "$m"
done
wait "$bg" || build_failed "$PREVIOUS_VERSION's kubeadm and kubelet, TEST_VERSIONS $TEST_VERSIONS"
echo "== the background build:"
grep -E '^[0-9]{2}:[0-9]{2}:[0-9]{2} ' "$tmp/build.log" || true
