#!/usr/bin/env bash
# The chaos suite (`make chaos`; not part of `make test`; issue 15). Runs scenarios that inject
# faults into real processes and prints, for each, its figures and a verdict against its aim
# ("aim met" / "aim missed"). A missed aim is a finding, printed, never a failure; only a
# scenario that cannot run fails the script.
#
#   hack/chaos.sh [scenario...]     default: every scenario, in order
#   hack/chaos.sh --list
#
# Where it runs: not on the local plane. Each scenario starts its own environment with the
# provisioning bench's harness (bench/chaos): a real admin kube-apiserver and etcd, the
# DataStore's own etcd (TLS, auth on) behind a TCP relay the suite can cut, and the real
# `kamaji manager` process (4 workers), which starts the real etcd datastore plugin (and, for
# hung-addon, the test addon plugin bench/chaos/hungaddon) as processes. Faults hit those
# processes: SIGKILL to the plugin or the manager, the relay cut. No kubelet runs, so the TCPs'
# pods never start: 50 running tenants (~470 MB each) do not fit the 24 GiB machine, and the
# faults are in what the manager does, which does not need them. "Converged" therefore means: the
# latest spec observed, DataStoreReady, CertificatesReady and KubeconfigsReady True, and the
# Deployment present with the pod template of that spec (bench/chaos/tenants.go); Ready itself
# needs running pods. Why a relay rather than a firewall rule: the machine has neither iptables
# nor nft, and the DataStore's etcd listens on loopback; the relay, cut, holds every byte both
# ways and answers nothing, as a DROP rule does (bench/chaos/blackhole.go).
#
# Scenarios:
#   plugin-kill    the etcd plugin SIGKILLed every 5 s (when running: the host restarts it with
#                  a backoff) for 2 minutes while TCPs are created and some deleted: seconds until
#                  all converged after it stops, leaked users and duplicate slices (aim 0).
#   partition      the DataStore's etcd unreachable for 60 s, a Deployment-only change made to
#                  every TCP meanwhile: conditions name it, Secrets unchanged, Deployments follow,
#                  seconds until all converged after. The DataStore's condition turns within its
#                  30 s recheck and 5 s validation deadline: an outage under ~40 s may go unseen.
#   manager-kill   the manager SIGKILLed during the provisioning of the TCPs (a third have their
#                  Deployment), restarted 5 s later: converges, each CA generated exactly once.
#   hung-addon     an addon plugin whose Render never returns (and whose Probe then hangs): the
#                  other TCPs' p99 from a change to their converged Deployment against a run
#                  without it, the plugin restarted (kamaji_plugin_restarts_total).
#   delete-outage  every TCP deleted while the DataStore's etcd is unreachable for 2 minutes:
#                  finalizers held, then released after recovery, residue 0 in etcd.
#
# Environment: CHAOS_TCPS, TCPs per scenario (default 50; e.g. 5 for a quick run); CHAOS_ARGS
# adds flags to the bench/chaos program (e.g. "-kill-for 30s -partition-for 45s -delete-outage
# 30s"); KAMAJI_CACHE as for the tests. About 9 minutes with the defaults on 2 cores, under 4
# with CHAOS_TCPS=5 and those flags.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# make's build settings (the Makefile's), when run alone too: one build cache with make test.
export GOFLAGS="${GOFLAGS:--buildvcs=false -trimpath}" CGO_ENABLED="${CGO_ENABLED:-0}"

SCENARIOS=(plugin-kill partition manager-kill hung-addon delete-outage)

log() { echo "chaos: $*" >&2; }

want=()
for arg in "$@"; do
  case "$arg" in
    --list) printf '%s\n' "${SCENARIOS[@]}"; exit 0 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) echo "chaos: unknown flag $arg" >&2; exit 2 ;;
    *)
      if ! printf '%s\n' "${SCENARIOS[@]}" | grep -qx -- "$arg"; then
        echo "chaos: unknown scenario $arg (scenarios: ${SCENARIOS[*]})" >&2; exit 2
      fi
      want+=("$arg") ;;
  esac
done
[ ${#want[@]} -gt 0 ] || want=("${SCENARIOS[@]}")

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

"$ROOT/hack/kube-bins.sh" etcd kube-apiserver >/dev/null
log "building kamaji, the etcd plugin, the chaos program and its hung addon plugin"
(cd "$ROOT/cmd" && go build -o "$WORK/kamaji" ./kamaji)
(cd "$ROOT/plugins/datastore-etcd" && GOWORK=off go build -o "$WORK/kamaji-datastore-etcd" ./cmd/kamaji-datastore-etcd)
(cd "$ROOT/bench" && GOWORK=off go build -o "$WORK/chaos" ./chaos && GOWORK=off go build -o "$WORK/hung-addon" ./chaos/hungaddon)

# table FIGURES: one row per "name value unit" line.
table() {
  awk '{ name[++n] = $1; val[n] = $2 " " $3; if (length($1) > w) w = length($1) }
    END { if (w < 4) w = 4; fmt = "  %-" w "s  %14s\n"; printf fmt, "name", "value"
          for (i = 1; i <= n; i++) printf fmt, name[i], val[i] }' "$1"
}

failed=()
missed=()
start=$(date +%s)
for s in "${want[@]}"; do
  echo "== $s"
  out="$WORK/$s.out"
  t0=$(date +%s)
  set +e
  # shellcheck disable=SC2086 # word splitting of the extra flags is intended
  "$WORK/chaos" -scenario "$s" -tcps "${CHAOS_TCPS:-50}" -kamaji "$WORK/kamaji" \
    -plugin "$WORK/kamaji-datastore-etcd" -hung-plugin "$WORK/hung-addon" ${CHAOS_ARGS:-} >"$out"
  rc=$?
  set -e
  if [ $rc -ne 0 ]; then
    cat "$out"
    echo "   scenario $s failed (could not run)"
    failed+=("$s")
    continue
  fi
  sed -n 's/^metric //p' "$out" >"$WORK/$s.metrics"
  if [ -s "$WORK/$s.metrics" ]; then table "$WORK/$s.metrics"; else echo "   (no figures)"; fi
  grep -v '^metric ' "$out" | sed 's/^/  /' || true
  grep -q '^verdict: aim missed' "$out" && missed+=("$s")
  echo "  ($(( $(date +%s) - t0 )) s)"
  echo
done

echo "chaos: $(( $(date +%s) - start )) s in all; $(( ${#want[@]} - ${#failed[@]} - ${#missed[@]} )) aims met, ${#missed[@]} missed${missed:+ (${missed[*]})}"
if [ ${#failed[@]} -gt 0 ]; then
  echo "chaos: scenarios that could not run: ${failed[*]}" >&2
  exit 1
fi
