#!/usr/bin/env bash
# Builds everything `make up` runs, in jobs side by side (a build is not CPU-bound all the way:
# downloads and links leave cores idle): the control plane's Kubernetes binaries with etcd (and
# kine, konnectivity) from hack/kube-bins.sh; helm (hack/helm.sh); kamaji, its plugins and the
# kubectl plugin (kubectl-kamaji) into ./bin. It prints the plan and an estimate first, each job's time as it ends, and a failed job's
# log. What only a worker node runs (kubeadm, the kubelet, containerd, the CNI plugins, CoreDNS;
# hack/node-bins.sh) builds on after this script returns, so the plane starts meanwhile: the job
# holds $CACHE/logs/up-worker.lock, which the plane's worker stage waits for.
#
#   hack/up-bins.sh [--dry-run] DATASTORES WORKERS [NODE]   (as make up's: etcd,mysql,... or all; a
#   number; process or kubelet, whose containerd, CNI plugins, CoreDNS and kubelet build before the plane starts)
#   --dry-run prints the plan only
set -euo pipefail

DRY_RUN=
[ "${1:-}" = --dry-run ] && { DRY_RUN=1; shift; }

ROOT=$(cd "$(dirname "$0")/.." && pwd)
DATASTORES=${1:-etcd}
WORKERS=${2:-1}
NODE=${3:-process}
CACHE="${KAMAJI_CACHE:-$HOME/.cache/kamaji}"
BIN="$ROOT/bin"
LOGS="$CACHE/logs"
mkdir -p "$LOGS" "$BIN"

log() { echo "up-bins: $*" >&2; }

# Only what the plane runs: kine when a kine DataStore is asked for, kubeadm, the kubelet and
# konnectivity for a worker node; older tenant versions are built when a tenant asks for them.
kube=(kube-apiserver kube-controller-manager kube-scheduler kube-proxy kubectl etcd)
plugins=(datastore-etcd addon-coredns addon-kubeproxy addon-konnectivity)
for d in $(echo "$DATASTORES" | tr ',' ' ' | sed 's/\ball\b/mysql postgresql nats/'); do
  case $d in
    mysql) plugins+=(datastore-mysql) ;;
    postgresql) plugins+=(datastore-postgres) ;;
    nats) plugins+=(datastore-nats) ;;
    *) continue ;;
  esac
  [[ " ${kube[*]} " == *" kine "* ]] || kube+=(kine)
done
node=()
if [ "$WORKERS" != 0 ]; then
  kube+=(konnectivity) # the tenant's konnectivity server, beside its apiserver
  node=(runc containerd cni coredns)
fi

admin_node=()
if [ "$NODE" = kubelet ]; then
  admin_node=(runc containerd cni coredns)
fi

# The plan: each script's own dry run, and the sum of their estimates (measured cold, each alone;
# side by side they take less than the sum).
plan=$( { "$ROOT/hack/kube-bins.sh" --dry-run "${kube[@]}" ${node:+kubeadm} ${node:+kubelet} ${admin_node:+kubelet} >/dev/null
  [ ${#node[@]} -eq 0 ] && [ ${#admin_node[@]} -eq 0 ] || "$ROOT/hack/node-bins.sh" --dry-run "${node[@]}" "${admin_node[@]}" >/dev/null
  "$ROOT/hack/helm.sh" --dry-run >/dev/null; } 2>&1)
minutes=0
for m in $(echo "$plan" | sed -n 's/.*about \([0-9]*\) minutes.*/\1/p'); do minutes=$((minutes + m)); done
if [ "$minutes" -gt 0 ]; then
  echo "$plan" | grep -E ': (would|to build)' | sed 's/^/  /' >&2
  # Side by side, the jobs took 35% (13 minutes, a fast day) to 86% (30 minutes, 2026-12-05, a
  # slow one) of the sum on this project's 2-core machine, a whole first `make up` with its worker
  # node.
  log "first build: about $(( (minutes * 35 + 99) / 100 ))-$(( (minutes * 90 + 99) / 100 )) minutes, by the machine's speed; later runs reuse the cache (logs in $LOGS)"
fi
[ -z "$DRY_RUN" ] || exit 0

kamaji_bins() {
  cd "$ROOT/cmd"
  go build -o "$BIN/kamaji" ./kamaji
  CGO_ENABLED=0 go build -ldflags "-s -w" -o "$BIN/kamaji-pause" ./pause
  (cd "$ROOT/cli" && go build -o "$BIN/kubectl-kamaji" ./cmd/kubectl-kamaji)
  local p
  for p in "$@"; do
    (cd "$ROOT/plugins/$p" && GOWORK=off go build -o "$BIN/kamaji-$p" ./cmd/...)
  done
}

# job name command...: runs in the background, its output in $LOGS/up-<name>.log.
declare -A names=()
start=$(date +%s)
job() {
  local name=$1
  shift
  ("$@") >"$LOGS/up-$name.log" 2>&1 &
  names[$!]=$name
}
job kubernetes "$ROOT/hack/kube-bins.sh" "${kube[@]}"
job helm "$ROOT/hack/helm.sh"
job kamaji kamaji_bins "${plugins[@]}"
if [ ${#admin_node[@]} -gt 0 ]; then
  # The admin cluster's kubelet node runs before anything else of the plane: built now.
  job admin-node bash -c '"$0/hack/node-bins.sh" "${@}" && "$0/hack/kube-bins.sh" kubelet' "$ROOT" "${admin_node[@]}"
fi

if [ ${#node[@]} -gt 0 ]; then
  # Locked here, before this script returns, so the plane cannot miss it; the job inherits the
  # lock and releases it when it ends. kubeadm and the kubelet wait for the control plane's build
  # of their version (its lock), then reuse its compiled packages.
  exec {lock}>"$LOGS/up-worker.lock"
  flock "$lock"
  (
    echo "started $(date -u +%FT%TZ)"
    if "$ROOT/hack/node-bins.sh" "${node[@]}" && "$ROOT/hack/kube-bins.sh" kubeadm kubelet; then
      echo "done in $(( $(date +%s) - start )) s"
    else
      echo "FAILED: a worker cannot join until this builds; run make up again"
      exit 1
    fi
  ) >"$LOGS/up-worker.log" 2>&1 &
  exec {lock}>&-
  [ "$minutes" -eq 0 ] || log "worker: kubeadm, kubelet, containerd, CNI plugins, CoreDNS build on beside the plane's start (log: $LOGS/up-worker.log)"
fi

failed=0
while [ ${#names[@]} -gt 0 ]; do
  rc=0
  wait -n -p pid "${!names[@]}" || rc=$?
  name=${names[$pid]}
  unset "names[$pid]"
  if [ $rc -eq 0 ]; then
    [ "$minutes" -eq 0 ] || log "$name: done at $(( $(date +%s) - start )) s"
  else
    failed=1
    log "$name failed; the end of $LOGS/up-$name.log:"
    tail -n 20 "$LOGS/up-$name.log" >&2
  fi
done
exit $failed
