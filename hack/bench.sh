#!/usr/bin/env bash
# Benchmarks (`make bench`; not part of `make test`). Runs sections and prints, for each, a small
# table of its figures against the committed baseline bench/baseline.txt: name, baseline, now,
# delta %. Figures are informational: an aim that is missed is printed, never a failure; only a
# section that cannot run fails the script.
#
#   hack/bench.sh [--update] [section...]     default: every section, in order
#   hack/bench.sh --list
#
#   --update   write this run's figures into bench/baseline.txt (the lines of the sections run
#              are replaced, the others kept with the comments above them); commit the file
#              with the change that moved them.
#
# Adding a section: append its name to SECTIONS and write a function section_<name> that prints
# to stdout one line per figure,
#     metric <name> <value> <unit>        e.g. "metric probe.plugin.p50 245.59 us"
# and anything else as free-text notes (shown under the table). Progress and logs go to stderr.
# Baseline lines are "<section> <name> <value> <unit>"; '#' starts a comment.
#
# Environment: BENCH_PLUGINTRANSPORT_ARGS adds flags to the plugintransport program (e.g.
# "-probe-calls 1000 -ensure-calls 100" for a quick run); KAMAJI_ETCD_BIN / KAMAJI_CACHE as
# for the tests.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BASELINE="$ROOT/bench/baseline.txt"
# make's build settings (the Makefile's), when run alone too: one build cache with make test.
export GOFLAGS="${GOFLAGS:--buildvcs=false -trimpath}" CGO_ENABLED="${CGO_ENABLED:-0}"

SECTIONS=(plugintransport provisioning local localkubelet kine migration)

log() { echo "bench: $*" >&2; }

# The flags of `kamaji local up` that install the repository's charts with the cached helm.
# shellcheck disable=SC2046 # $(plane_args) is split into flags on purpose
plane_args() {
  local helm
  helm=$("$ROOT/hack/helm.sh" | sed -n 's/^HELM=//p')
  echo "--charts $ROOT/charts --helm $helm"
}

# ---- sections ---------------------------------------------------------------------------------

# plugintransport: the cost of a datastore call through the plugin transport (go-plugin, gRPC,
# AutoMTLS) versus the same etcd driver called in-process, same run, same real etcd: p50/p99 of
# Probe and of EnsureTenant on an existing tenant, and their ratio. Aim: overhead < 200 us at p50.
# Then GetUsage through the plugin on a tenant of 20,000 keys of 1 KiB (usage.*): keys counted per
# second, which the DataStore controller's usage limits (docs/operations.md, DataStores) rest on.
section_plugintransport() {
  "$ROOT/hack/kube-bins.sh" etcd >/dev/null
  log "building the etcd plugin and the plugintransport program"
  (cd "$ROOT/plugins/datastore-etcd" && GOWORK=off go build -o "$WORK/kamaji-datastore-etcd" ./cmd/kamaji-datastore-etcd)
  (cd "$ROOT/bench" && GOWORK=off go build -o "$WORK/plugintransport" ./plugintransport)
  log "measuring (a minute or so)"
  # shellcheck disable=SC2086 # word splitting of the extra flags is intended
  "$WORK/plugintransport" -plugin "$WORK/kamaji-datastore-etcd" ${BENCH_PLUGINTRANSPORT_ARGS:-}
}

# provisioning: 300 TCPs created at once against the admin apiserver (pods do not run), written as
# Kamaji users write them: the CoreDNS and kube-proxy addons, one replica, an etcd DataStore with
# TLS client certificates and auth enabled; the manager with 10 workers. Seconds until every TCP
# has its datastore slice, Secrets, Service and Deployment, TCPs per second, the manager's peak
# RSS and CPU seconds; where the machine's CPU went, per TCP and by process (cpu.*: the admin
# apiserver and etcd, the DataStore's etcd, the manager, its plugins, the bench) and the rate that
# CPU allows on this machine; where the time went: passes per TCP, worker-seconds per reconcile step and
# plugin RPC (step.*, rpc.*), the admin apiserver's requests per TCP by verb and resource
# (requests.*) and its calls to the manager's webhooks per TCP (webhook-calls.*), and what a
# /metrics scrape costs once it has settled: series, MB allocated and ms of CPU per scrape, peak
# RSS once served (scrape.*). Aim: >= 20 TCP/s, < 150 MB RSS at 1,000
# ("-tcps 1000"). Then the same manager at rest for 10 minutes: reconciles per TCP per minute,
# datastore plugin RPCs (and EnsureTenant calls) per minute, the admin apiserver's writes per
# minute (TCP status writes apart), RSS at the end and its peak (idle.*; aim: close to zero).
# BENCH_PROVISIONING_ARGS adds flags (e.g. "-tcps 50 -idle 1m"; "-idle 0" skips the rest phase;
# "-pprof 127.0.0.1:6060" serves the manager's pprof meanwhile; "-apiserver-profile FILE" writes a
# CPU profile of the admin apiserver over the provisioning's first 20 s).
section_provisioning() {
  "$ROOT/hack/kube-bins.sh" etcd kube-apiserver >/dev/null
  log "building kamaji, the etcd, coredns and kube-proxy plugins and the provisioning program"
  (cd "$ROOT/cmd" && go build -o "$WORK/kamaji" ./kamaji)
  local p
  for p in datastore-etcd addon-coredns addon-kubeproxy; do
    (cd "$ROOT/plugins/$p" && GOWORK=off go build -o "$WORK/kamaji-$p" ./cmd/kamaji-$p)
  done
  (cd "$ROOT/bench" && GOWORK=off go build -o "$WORK/provisioning" ./provisioning)
  log "provisioning (a minute or so), then at rest (-idle, 10 minutes by default)"
  # shellcheck disable=SC2086
  "$WORK/provisioning" -kamaji "$WORK/kamaji" -plugin "$WORK/kamaji-datastore-etcd" \
    -coredns "$WORK/kamaji-addon-coredns" -kubeproxy "$WORK/kamaji-addon-kubeproxy" ${BENCH_PROVISIONING_ARGS:-}
}

# local: on a local plane of its own (root; skipped while `make up`'s plane runs), (a) a bare
# kube-apiserver start to /readyz on the plane's etcd (p50 of 3), (b) TCP apply to the tenant's
# /readyz answering through its Service's ClusterIP, for N TCPs one after another and N at once
# (p50, p95), the ratio (b)/(a) and the plane's memory per running TCP, the sleep figures, and a
# worker node's (join, pod start p50, kubelet + containerd memory, memory per pod). Aims: TCP
# p50 < 3 s, ratio < 3. BENCH_LOCAL_TCPS sets N (10).
section_local() {
  if [ "$(id -u)" != 0 ]; then echo "skipped: the local plane needs root"; return 0; fi
  if [ -s /run/kamaji-local.state ] && [ -d "$(cat /run/kamaji-local.state)" ]; then
    echo "skipped: a local plane runs (state in $(cat /run/kamaji-local.state)); make down first"; return 0
  fi
  "$ROOT/hack/kube-bins.sh" >/dev/null
  "$ROOT/hack/node-bins.sh" >/dev/null # the worker figures
  log "building kamaji, kamaji-pause and the etcd plugin"
  (cd "$ROOT/cmd" && go build -o "$WORK/kamaji" ./kamaji)
  (cd "$ROOT/cmd" && CGO_ENABLED=0 go build -ldflags "-s -w" -o "$WORK/kamaji-pause" ./pause)
  (cd "$ROOT/plugins/datastore-etcd" && GOWORK=off go build -o "$WORK/kamaji-datastore-etcd" ./cmd/kamaji-datastore-etcd)
  local state="$WORK/local-state"
  trap '"$WORK/kamaji" local down --state-dir "'"$state"'" >&2 || true' EXIT # the section runs in a subshell
  log "starting a local plane (admin node: ${LOCAL_NODE:-process})"
  "$WORK/kamaji" local up --state-dir "$state" --bin-dir "$WORK" $(plane_args) --tenants 0 --node "${LOCAL_NODE:-process}" >&2
  log "measuring (a few minutes)"
  "$WORK/kamaji" local bench --state-dir "$state" --tcps "${BENCH_LOCAL_TCPS:-10}"
}

# localkubelet: the local section's figures on a plane whose admin node is a kubelet with
# containerd (kamaji local up --node kubelet; docs/workers.md compares the two).
section_localkubelet() {
  LOCAL_NODE=kubelet section_local
}

# kine: the SQL and NATS DataStores through kine against the etcd DataStore, on a local plane of
# its own with every DataStore (root; skipped while `make up`'s plane runs): per driver, same run,
# EnsureTenant p50 through the driver's plugin binary (new tenants, and the same call again),
# the time from applying a TCP to Ready, and p50/p99 of ConfigMap creates one after another
# through the tenant apiserver, with the ratio to etcd. Needs the machine's MariaDB and
# PostgreSQL (hack/services.sh) and nats-server. BENCH_KINE_ARGS adds flags (e.g. "--creates 200").
section_kine() {
  if [ "$(id -u)" != 0 ]; then echo "skipped: the local plane needs root"; return 0; fi
  if [ -s /run/kamaji-local.state ] && [ -d "$(cat /run/kamaji-local.state)" ]; then
    echo "skipped: a local plane runs (state in $(cat /run/kamaji-local.state)); make down first"; return 0
  fi
  "$ROOT/hack/kube-bins.sh" etcd kube-apiserver kube-controller-manager kube-scheduler kube-proxy kubectl kine >/dev/null
  "$ROOT/hack/services.sh" >&2
  log "building kamaji and the etcd, MySQL, PostgreSQL and NATS plugins"
  (cd "$ROOT/cmd" && go build -o "$WORK/kamaji" ./kamaji)
  local p
  for p in datastore-etcd datastore-mysql datastore-postgres datastore-nats; do
    (cd "$ROOT/plugins/$p" && GOWORK=off go build -o "$WORK/kamaji-$p" ./cmd/...)
  done
  local state="$WORK/kine-state"
  trap '"$WORK/kamaji" local down --state-dir "'"$state"'" >&2 || true' EXIT # the section runs in a subshell
  log "starting a local plane with every DataStore"
  if ! "$WORK/kamaji" local up --state-dir "$state" --bin-dir "$WORK" $(plane_args) --tenants 0 --datastores all >"$WORK/kine-up.log" 2>&1; then
    cat "$WORK/kine-up.log" >&2
    if grep -q "another local plane runs" "$WORK/kine-up.log"; then echo "skipped: a local plane started meanwhile"; return 0; fi
    return 1
  fi
  cat "$WORK/kine-up.log" >&2
  log "measuring (several minutes)"
  # shellcheck disable=SC2086
  "$WORK/kamaji" local bench-kine --state-dir "$state" ${BENCH_KINE_ARGS:-}
}

# migration: on a local plane of its own with the DataStores etcd-2 and postgresql (root; skipped
# while `make up`'s plane runs), a running tenant holding 1,000 and then 10,000 ConfigMaps moved
# etcd -> etcd and etcd -> PostgreSQL: seconds in all, seconds of copy (with its verification),
# objects per second of the copy, and seconds of write freeze. Aim: freeze < 5 s for 1,000 objects
# etcd -> etcd. BENCH_MIGRATION_ARGS adds flags (e.g. "--objects 1000").
section_migration() {
  if [ "$(id -u)" != 0 ]; then echo "skipped: the local plane needs root"; return 0; fi
  if [ -s /run/kamaji-local.state ] && [ -d "$(cat /run/kamaji-local.state)" ]; then
    echo "skipped: a local plane runs (state in $(cat /run/kamaji-local.state)); make down first"; return 0
  fi
  "$ROOT/hack/kube-bins.sh" etcd kube-apiserver kube-controller-manager kube-scheduler kube-proxy kubectl kine >/dev/null
  "$ROOT/hack/services.sh" >&2
  log "building kamaji and the etcd and PostgreSQL plugins"
  (cd "$ROOT/cmd" && go build -o "$WORK/kamaji" ./kamaji)
  local p
  for p in datastore-etcd datastore-postgres; do
    (cd "$ROOT/plugins/$p" && GOWORK=off go build -o "$WORK/kamaji-$p" ./cmd/...)
  done
  local state="$WORK/migration-state"
  trap '"$WORK/kamaji" local down --state-dir "'"$state"'" >&2 || true' EXIT # the section runs in a subshell
  log "starting a local plane with the DataStores etcd-2 and postgresql"
  if ! "$WORK/kamaji" local up --state-dir "$state" --bin-dir "$WORK" $(plane_args) --tenants 0 --datastores etcd-2,postgresql >"$WORK/migration-up.log" 2>&1; then
    cat "$WORK/migration-up.log" >&2
    if grep -q "another local plane runs" "$WORK/migration-up.log"; then echo "skipped: a local plane started meanwhile"; return 0; fi
    return 1
  fi
  log "measuring (10 minutes or so)"
  # shellcheck disable=SC2086
  "$WORK/kamaji" local bench-migration --state-dir "$state" ${BENCH_MIGRATION_ARGS:-}
}

# ---- driver -----------------------------------------------------------------------------------

update=false
want=()
for arg in "$@"; do
  case "$arg" in
    --update) update=true ;;
    --list) printf '%s\n' "${SECTIONS[@]}"; exit 0 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) echo "bench: unknown flag $arg" >&2; exit 2 ;;
    *)
      if ! declare -F "section_$arg" >/dev/null; then
        echo "bench: unknown section $arg (sections: ${SECTIONS[*]})" >&2; exit 2
      fi
      want+=("$arg") ;;
  esac
done
[ ${#want[@]} -gt 0 ] || want=("${SECTIONS[@]}")

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
[ -f "$BASELINE" ] || : >"$BASELINE"

# table SECTION RESULTS: one row per figure of RESULTS ("name value unit" lines) with the
# section's baseline value, if any, and the change in percent.
table() {
  awk -v section="$1" '
    FILENAME == ARGV[1] { if ($0 !~ /^[[:space:]]*#/ && $1 == section) base[$2] = $3; next }
    { name[++n] = $1; now[n] = $2; unit[n] = $3; if (length($1) > w) w = length($1) }
    END {
      if (w < 4) w = 4
      fmt = "  %-" w "s  %14s  %14s  %8s\n"
      printf fmt, "name", "baseline", "now", "delta"
      for (i = 1; i <= n; i++) {
        b = "-"; d = "new"
        if (name[i] in base) {
          b = base[name[i]] " " unit[i]
          if (base[name[i]] + 0 != 0) d = sprintf("%+.1f%%", (now[i] - base[name[i]]) * 100 / base[name[i]])
          else d = "n/a"
        }
        printf fmt, name[i], b, now[i] " " unit[i], d
      }
    }' "$BASELINE" "$2"
}

failed=()
for s in "${want[@]}"; do
  echo "== $s"
  out="$WORK/$s.out"
  # A subshell with errexit of its own: any failing step fails the section, not the script.
  set +e
  (set -e; "section_$s") >"$out"
  rc=$?
  set -e
  if [ $rc -ne 0 ]; then
    cat "$out"
    echo "   section $s failed"
    failed+=("$s")
    continue
  fi
  sed -n 's/^metric //p' "$out" >"$WORK/$s.metrics"
  if [ -s "$WORK/$s.metrics" ]; then
    table "$s" "$WORK/$s.metrics"
  else
    echo "   (no figures)"
  fi
  grep -v '^metric ' "$out" | sed 's/^/  /' || true
  echo
done

if $update; then
  {
    echo "# bench/baseline.txt: figures of hack/bench.sh (make bench), the reference each run is compared to."
    echo "# Lines: <section> <name> <value> <unit>. Rewrite with: hack/bench.sh --update [section...]"
    echo "# Last written $(date -u +%Y-%m-%d) on $(uname -m), $(nproc) cores, $(go env GOVERSION)."
    # The other sections' lines are kept with the comments above them (notes on how and when
    # they were measured); a rewritten section's comments go with its old figures.
    awk -v run=" ${want[*]} " '
      /^# (bench\/baseline\.txt:|Lines:|Last written)/ { next }
      /^[[:space:]]*#/ { notes = notes $0 "\n"; next }
      !NF { next }
      { if (index(run, " " $1 " ") == 0) { printf "%s", notes; print }; notes = "" }
    ' "$BASELINE"
    for s in "${want[@]}"; do
      if [ -s "$WORK/$s.metrics" ]; then sed "s/^/$s /" "$WORK/$s.metrics"; fi
    done
  } >"$WORK/baseline.new"
  mv "$WORK/baseline.new" "$BASELINE"
  echo "bench: wrote $BASELINE"
fi

if [ ${#failed[@]} -gt 0 ]; then
  echo "bench: sections failed: ${failed[*]}" >&2
  exit 1
fi
