#!/usr/bin/env bash
# Builds what a real worker node runs, from the Go module proxy, into the same cache as
# hack/kube-bins.sh (keyed by version): containerd, its runc shim and ctr; the CNI plugins a
# bridge network needs; the kubelet. runc itself is Debian's package, installed when missing.
# Incremental: a binary already built is not rebuilt.
#
#   hack/node-bins.sh [--dry-run] [containerd|cni|kubelet|runc|coredns ...]   (default: all five)
#   --dry-run (or NODE_BINS_DRY_RUN=1) prints what would be built or installed, and does nothing
#   prints on stdout: CONTAINERD_BIN=..., CNI_BIN=..., KUBELET=..., RUNC=..., COREDNS=...
# CoreDNS is the tenant's coredns addon's image on a worker: built with the plugins kubeadm's
# Corefile uses only (the full build compiles every cloud provider's SDK).
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-v1.37.2}"
# containerd 2.4.0+ is the line containerd recommends for Kubernetes 1.37 (its RELEASES.md).
CONTAINERD_VERSION="${CONTAINERD_VERSION:-v2.4.2}"
CNI_PLUGINS_VERSION="${CNI_PLUGINS_VERSION:-v1.10.0}"
DRY_RUN="${NODE_BINS_DRY_RUN:-}"
CACHE="${KAMAJI_CACHE:-$HOME/.cache/kamaji}"
CONTAINERD_DIR="$CACHE/containerd/$CONTAINERD_VERSION"
CNI_DIR="$CACHE/cni/$CNI_PLUGINS_VERSION"
# CoreDNS of kubeadm v1.37 (the coredns addon's image tag for the tenant's minor).
COREDNS_VERSION="${COREDNS_VERSION:-v1.14.6}"
KUBE_DIR="$CACHE/kube/$K8S_VERSION" # the kubelet sits beside kube-bins' binaries of its version
COREDNS_DIR="$CACHE/coredns/$COREDNS_VERSION"
export GOFLAGS=-buildvcs=false GOWORK=off CGO_ENABLED=0

containerd_bins=(containerd containerd-shim-runc-v2 ctr)
cni_plugins=(main/bridge ipam/host-local main/loopback meta/portmap)
# btrfs needs cgo (left out by CGO_ENABLED=0 anyway); devmapper and zfs are snapshotters a node
# here does not use. urfave_cli_no_docs is upstream's default (drops the man-page generator).
CONTAINERD_TAGS="urfave_cli_no_docs no_btrfs no_devmapper no_zfs"
# Upstream builds the shim with no_grpc too (it speaks ttrpc only).
SHIM_TAGS="$CONTAINERD_TAGS no_grpc"

log() { echo "node-bins: $*" >&2; }
die() { log "$*"; exit 1; }

want=()
for a in "$@"; do
  case "$a" in
    --dry-run) DRY_RUN=1 ;;
    containerd | cni | kubelet | runc | coredns) want+=("$a") ;;
    *) die "unknown argument $a (usage: hack/node-bins.sh [--dry-run] [containerd|cni|kubelet|runc|coredns ...])" ;;
  esac
done
[ ${#want[@]} -gt 0 ] || want=(runc containerd cni kubelet coredns)

runc_path() { command -v runc 2>/dev/null || { [ -x /usr/sbin/runc ] && echo /usr/sbin/runc; } || true; }

ensure_runc() {
  # Debian's runc (1.1.x on bookworm), installed like the local plane installs iptables:
  # install, and on failure refresh the package lists once and try again.
  [ -n "$(runc_path)" ] && return
  [ -n "$DRY_RUN" ] && { echo "would apt-get install runc" >&2; return; }
  log "installing runc (apt-get)"
  local apt=(apt-get install -y --no-install-recommends runc)
  DEBIAN_FRONTEND=noninteractive "${apt[@]}" >&2 ||
    { apt-get update >&2 && DEBIAN_FRONTEND=noninteractive "${apt[@]}" >&2; } ||
    die "apt-get install runc failed"
  [ -n "$(runc_path)" ] || die "runc installed but not found in PATH nor at /usr/sbin/runc"
}

have_all() { # dir names...: every one built
  local dir=$1 n
  shift
  for n in "$@"; do [ -x "$dir/bin/$n" ] || return 1; done
}

build_containerd() {
  # containerd's go.mod has no replace directives, so `go install @version` builds with
  # upstream's own go.mod (as kube-bins does for kine); the shim gets its own tags.
  have_all "$CONTAINERD_DIR" "${containerd_bins[@]}" && return
  [ -n "$DRY_RUN" ] && { echo "would build ${containerd_bins[*]} $CONTAINERD_VERSION into $CONTAINERD_DIR/bin" >&2; return; }
  log "building containerd, containerd-shim-runc-v2 and ctr $CONTAINERD_VERSION"
  local mod=github.com/containerd/containerd/v2
  local ver="-X $mod/version.Version=$CONTAINERD_VERSION -X $mod/version.Package=$mod"
  local tmp="$CONTAINERD_DIR/tmp.$$" # per run: two runs at once must not share it
  rm -rf "$tmp" && mkdir -p "$CONTAINERD_DIR/bin" "$tmp"
  GOBIN="$tmp" go install -trimpath -tags "$CONTAINERD_TAGS" -ldflags "-s -w $ver" \
    "$mod/cmd/containerd@$CONTAINERD_VERSION" "$mod/cmd/ctr@$CONTAINERD_VERSION"
  GOBIN="$tmp" go install -trimpath -tags "$SHIM_TAGS" -ldflags "-s -w $ver" \
    "$mod/cmd/containerd-shim-runc-v2@$CONTAINERD_VERSION"
  local b
  for b in "${containerd_bins[@]}"; do mv "$tmp/$b" "$CONTAINERD_DIR/bin/$b"; done
  rmdir "$tmp"
}

build_cni() {
  # Same as containerd: no replace directives upstream, one go install for the four plugins.
  local names=() p
  for p in "${cni_plugins[@]}"; do names+=("${p#*/}"); done
  have_all "$CNI_DIR" "${names[@]}" && return
  [ -n "$DRY_RUN" ] && { echo "would build CNI plugins ${names[*]} $CNI_PLUGINS_VERSION into $CNI_DIR/bin" >&2; return; }
  log "building CNI plugins ${names[*]} $CNI_PLUGINS_VERSION"
  local mod=github.com/containernetworking/plugins pkgs=()
  for p in "${cni_plugins[@]}"; do pkgs+=("$mod/plugins/$p@$CNI_PLUGINS_VERSION"); done
  local tmp="$CNI_DIR/tmp.$$"
  rm -rf "$tmp" && mkdir -p "$CNI_DIR/bin" "$tmp"
  GOBIN="$tmp" go install -trimpath \
    -ldflags "-s -w -X $mod/pkg/utils/buildversion.BuildVersion=$CNI_PLUGINS_VERSION" "${pkgs[@]}"
  for p in "${names[@]}"; do mv "$tmp/$p" "$CNI_DIR/bin/$p"; done
  rmdir "$tmp"
}

build_kubelet() {
  # kube-bins builds it, from the same module as the version's control plane (one go.sum, one
  # build cache, its lock).
  [ -x "$KUBE_DIR/bin/kubelet" ] && return
  [ -n "$DRY_RUN" ] && { echo "would build kubelet $K8S_VERSION into $KUBE_DIR/bin (from k8s.io/kubernetes@$K8S_VERSION)" >&2; return; }
  K8S_VERSION="$K8S_VERSION" PREVIOUS="" "$(dirname "$0")/kube-bins.sh" kubelet >/dev/null
}

build_coredns() {
  [ -x "$COREDNS_DIR/bin/coredns" ] && return
  [ -n "$DRY_RUN" ] && { echo "would build coredns $COREDNS_VERSION into $COREDNS_DIR/bin" >&2; return; }
  log "building coredns $COREDNS_VERSION (the plugins of kubeadm's Corefile)"
  local src="$COREDNS_DIR/src"
  mkdir -p "$src" "$COREDNS_DIR/bin"
  if [ ! -f "$src/.ready" ]; then
    cat > "$src/go.mod" <<MOD
module kamaji.local/corednsbin

go 1.25

require github.com/coredns/coredns $COREDNS_VERSION
MOD
    # coremain runs the server; each imported plugin registers itself. The Corefile's order is
    # dnsserver.Directives', which names every plugin, built in or not.
    cat > "$src/main.go" <<'GO'
package main

import (
	_ "github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/coremain"
	_ "github.com/coredns/coredns/plugin/cache"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/forward"
	_ "github.com/coredns/coredns/plugin/health"
	_ "github.com/coredns/coredns/plugin/kubernetes"
	_ "github.com/coredns/coredns/plugin/loadbalance"
	_ "github.com/coredns/coredns/plugin/log"
	_ "github.com/coredns/coredns/plugin/loop"
	_ "github.com/coredns/coredns/plugin/metrics"
	_ "github.com/coredns/coredns/plugin/ready"
	_ "github.com/coredns/coredns/plugin/reload"
	_ "github.com/coredns/coredns/plugin/whoami"
)

func main() { coremain.Run() }
GO
    (cd "$src" && go mod tidy -e >&2)
    grep -q "^github.com/coredns/coredns $COREDNS_VERSION " "$src/go.sum" 2>/dev/null || die "coredns $COREDNS_VERSION: go mod tidy left no go.sum entry for it in $src (network?); run again"
    touch "$src/.ready"
  fi
  (cd "$src" && go build -trimpath -ldflags "-s -w -X github.com/coredns/coredns/coremain.GitCommit=$COREDNS_VERSION" -o "$COREDNS_DIR/bin/coredns.tmp.$$" .)
  mv "$COREDNS_DIR/bin/coredns.tmp.$$" "$COREDNS_DIR/bin/coredns"
}

# The plan first: what is missing and about how long it takes, scaled by the cores here. All
# three took 2.5 minutes together on a 2-core machine whose Go build cache already held
# kube-bins' v1.37.2 (docs/dev/worker-node-notes.md); rounded up for a colder cache.
missing=() minutes=0
for w in "${want[@]}"; do
  case "$w" in
    containerd) have_all "$CONTAINERD_DIR" "${containerd_bins[@]}" || { missing+=("containerd $CONTAINERD_VERSION"); minutes=$((minutes + 2)); } ;;
    cni) have_all "$CNI_DIR" bridge host-local loopback portmap || { missing+=("CNI plugins $CNI_PLUGINS_VERSION"); minutes=$((minutes + 1)); } ;;
    kubelet) [ -x "$KUBE_DIR/bin/kubelet" ] || { missing+=("kubelet $K8S_VERSION"); minutes=$((minutes + 3)); } ;;
    coredns) [ -x "$COREDNS_DIR/bin/coredns" ] || { missing+=("coredns $COREDNS_VERSION"); minutes=$((minutes + 3)); } ;;
  esac
done
if [ ${#missing[@]} -gt 0 ]; then
  cores=$(nproc 2>/dev/null || echo 2)
  log "to build into $CACHE (once; later runs reuse it): $(IFS=,; list="${missing[*]}"; echo "${list//,/, }")"
  log "about $(( (minutes * 2 + cores - 1) / cores )) minutes on this machine's $cores cores"
fi

for w in "${want[@]}"; do
  case "$w" in
    runc) ensure_runc ;;
    containerd) build_containerd ;;
    cni) build_cni ;;
    kubelet) build_kubelet ;;
    coredns) build_coredns ;;
  esac
done
echo "CONTAINERD_BIN=$CONTAINERD_DIR/bin"
echo "CNI_BIN=$CNI_DIR/bin"
echo "KUBELET=$KUBE_DIR/bin/kubelet"
echo "RUNC=$(runc_path)"
echo "COREDNS=$COREDNS_DIR/bin/coredns"
