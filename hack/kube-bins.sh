#!/usr/bin/env bash
# Builds the Kubernetes and etcd binaries the tests and the local plane run, from the Go module
# proxy, into a cache keyed by version. Incremental: a binary already built is not rebuilt, and the
# Go build cache makes a rebuild after a partial run cheap.
#
#   hack/kube-bins.sh [--dry-run] [binary[@version]...]
#       default: every binary below for K8S_VERSION, etcd, and the control-plane binaries of each
#       PREVIOUS version (older tenant versions, so upgrades can be exercised) and of each VERSIONS
#       one (the tenant versions asked for: `make kube-bins VERSIONS="v1.33 v1.30.14"`; a minor
#       alone means its newest patch release, asked of the Go module proxy)
#   --dry-run (or KUBE_BINS_DRY_RUN=1) prints what would be built, and builds nothing
#   prints the bin folders on stdout: K8S_BIN_<version>=... for each older version, then
#   K8S_BIN=..., ETCD_BIN=... and KONNECTIVITY_BIN=...
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-v1.37.2}"
# Older Kubernetes versions a tenant can run (space-separated); only the control plane is built.
PREVIOUS="${PREVIOUS-v1.36.3}"
# More tenant versions to build the control plane of (space- or comma-separated, v1.N or v1.N.P).
VERSIONS="${VERSIONS:-}"
DRY_RUN="${KUBE_BINS_DRY_RUN:-}"
ETCD_VERSION="${ETCD_VERSION:-v3.6.16}"
CACHE="${KAMAJI_CACHE:-$HOME/.cache/kamaji}"
ETCD_DIR="$CACHE/etcd/$ETCD_VERSION"
# kine (the SQL/NATS datastores' sidecar, image rancher/kine:<version>-amd64 on the local plane):
# into $CACHE/kine/$KINE_VERSION/bin/kine.
KINE_VERSION="${KINE_VERSION:-v0.17.5}"
# konnectivity (the konnectivity addon's proxy-server sidecar and proxy-agent, images
# registry.k8s.io/kas-network-proxy/proxy-{server,agent}:<version> on the local plane), from
# sigs.k8s.io/apiserver-network-proxy, into $CACHE/konnectivity/$KONNECTIVITY_VERSION/bin.
KONNECTIVITY_VERSION="${KONNECTIVITY_VERSION:-v0.34.0}"
export GOFLAGS=-buildvcs=false GOWORK=off CGO_ENABLED=0

all_k8s=(kube-apiserver kube-controller-manager kube-scheduler kube-proxy kubeadm kubectl)
# Also built on request (a worker node's, hack/node-bins.sh asks): kubelet.
previous_k8s=(kube-apiserver kube-controller-manager kube-scheduler)

log() { echo "kube-bins: $*" >&2; }
die() { log "$*"; exit 1; }

want=()
for a in "$@"; do
  case "$a" in
    --dry-run) DRY_RUN=1 ;;
    -*) die "unknown flag $a (usage: hack/kube-bins.sh [--dry-run] [binary[@version]...])" ;;
    *) want+=("$a") ;;
  esac
done

# resolve_version turns v1.N.P (or 1.N.P) into itself and v1.N (or 1.N) into the newest v1.N.P
# release of k8s.io/kubernetes on the module proxy; anything else is an error.
resolve_version() {
  local v=${1#v}
  if [[ $v =~ ^1\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$ ]]; then
    echo "v$v"
  elif [[ $v =~ ^1\.[0-9]+$ ]]; then
    local newest
    newest=$(go list -m -versions "k8s.io/kubernetes" | tr ' ' '\n' | grep -E "^v${v//./\\.}\.[0-9]+$" | sort -t. -k3,3n | tail -n1)
    [ -n "$newest" ] || die "no release of Kubernetes v$v on the module proxy"
    echo "$newest"
  else
    die "not a Kubernetes version: $1 (want v1.N.P, or v1.N for its newest patch)"
  fi
}

older=()
for v in $PREVIOUS ${VERSIONS//,/ }; do
  v=$(resolve_version "$v")
  [ "$v" = "$K8S_VERSION" ] && continue # built in full below
  [[ " ${older[*]} " == *" $v "* ]] || older+=("$v")
done

if [ ${#want[@]} -eq 0 ]; then
  want=("${all_k8s[@]}" etcd konnectivity kine)
  for v in "${older[@]}"; do
    for b in "${previous_k8s[@]}"; do want+=("$b@$v"); done
  done
else
  # Explicit binaries: their versions are resolved the same way.
  for i in "${!want[@]}"; do
    case "${want[$i]}" in
      *@*) want[i]="${want[$i]%@*}@$(resolve_version "${want[$i]#*@}")" ;;
    esac
  done
fi

k8s_dir() { echo "$CACHE/kube/$1"; }

k8s_src() {
  # A throwaway module that requires k8s.io/kubernetes $1 and pins every staging module it
  # replaces with a local path to the matching v0.x release.
  local version=$1
  local src
  src="$(k8s_dir "$version")/src"
  # .ready-2: the module covers the kubelet too (a .ready folder of an earlier layout is redone).
  [ -f "$src/.ready-2" ] && { echo "$src"; return; }
  mkdir -p "$src"
  local gomod
  gomod=$(go mod download -json "k8s.io/kubernetes@$version" | sed -n 's/.*"GoMod": "\(.*\)",*/\1/p')
  local staging="v0${version#v1}"
  {
    echo "module kamaji.local/kubebins"
    echo
    echo "go $(go env GOVERSION | sed 's/^go//; s/\([0-9]*\.[0-9]*\).*/\1/')"
    echo
    echo "require k8s.io/kubernetes $version"
    echo
    grep -E '^\s*k8s.io/[a-z0-9-]+ => \./staging' "$gomod" | awk -v v="$staging" '{print "replace " $1 " => " $1 " " v}'
  } > "$src/go.mod"
  cat > "$src/tools.go" <<'GO'
//go:build tools

package kubebins

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-proxy"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubeadm"
	_ "k8s.io/kubernetes/cmd/kubelet"
	_ "k8s.io/kubectl/pkg/cmd"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GO
  (cd "$src" && go mod tidy -e >&2)
  # tidy -e can end well with a go.sum missing what an interrupted download left out: the
  # folder is marked ready only when it can build.
  grep -q "^k8s.io/kubernetes $version " "$src/go.sum" 2>/dev/null || die "k8s.io/kubernetes $version: go mod tidy left no go.sum entry for it in $src (network?); run again"
  touch "$src/.ready-2"
  echo "$src"
}

build_k8s() {
  # version name...: every missing one in a single go build, which compiles the shared packages
  # once and links the binaries side by side.
  local version=$1 src dir lock name todo=() pkgs=()
  shift
  dir=$(k8s_dir "$version")
  for name in "$@"; do [ -x "$dir/bin/$name" ] || todo+=("$name"); done
  [ ${#todo[@]} -gt 0 ] || return 0
  if [ -n "$DRY_RUN" ]; then
    echo "would build ${todo[*]} $version into $dir/bin (from k8s.io/kubernetes@$version)" >&2
    return
  fi
  # One build of a version at a time: the local plane may build one on demand while `make`
  # runs; the second waits, then finds the binaries.
  mkdir -p "$dir"
  exec {lock}>"$dir/.lock"
  flock "$lock"
  todo=()
  for name in "$@"; do [ -x "$dir/bin/$name" ] || todo+=("$name"); done
  if [ ${#todo[@]} -eq 0 ]; then exec {lock}>&-; return; fi
  src=$(k8s_src "$version")
  log "building ${todo[*]} $version (first time takes minutes)"
  for name in "${todo[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$name"); done
  local ver="-X k8s.io/component-base/version.gitVersion=$version -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$(echo "$version" | cut -d. -f2)"
  ver="$ver -X k8s.io/client-go/pkg/version.gitVersion=$version"
  local tmp="$dir/tmp.$$"
  # Under the lock: what a build stopped half-way left (the local plane stops builds no tenant
  # waits for any more).
  rm -rf "$dir"/tmp.* && mkdir -p "$tmp" "$dir/bin"
  (cd "$src" && go build -trimpath -ldflags "-s -w $ver" -o "$tmp/" "${pkgs[@]}")
  for name in "${todo[@]}"; do mv "$tmp/$name" "$dir/bin/$name"; done
  rmdir "$tmp"
  exec {lock}>&-
}

build_etcd() {
  [ -x "$ETCD_DIR/bin/etcd" ] && return
  [ -n "$DRY_RUN" ] && { echo "would build etcd $ETCD_VERSION into $ETCD_DIR/bin" >&2; return; }
  local src="$ETCD_DIR/src"
  mkdir -p "$src" "$ETCD_DIR/bin"
  log "building etcd $ETCD_VERSION"
  if [ ! -f "$src/.ready" ]; then
    cat > "$src/go.mod" <<MOD
module kamaji.local/etcdbin

go 1.25

require go.etcd.io/etcd/server/v3 $ETCD_VERSION
MOD
    cat > "$src/main.go" <<'GO'
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
    (cd "$src" && go mod tidy -e >&2)
    touch "$src/.ready"
  fi
  (cd "$src" && go build -trimpath -ldflags "-s -w" -o "$ETCD_DIR/bin/etcd.tmp.$$" .)
  mv "$ETCD_DIR/bin/etcd.tmp.$$" "$ETCD_DIR/bin/etcd"
}

build_kine() {
  # kine's main package is its module root. Built as upstream's -nocgo variant, with its nats
  # tag (an embedded NATS server, which the plugins' noEmbed endpoints leave off).
  local dir="$CACHE/kine/$KINE_VERSION"
  [ -x "$dir/bin/kine" ] && return
  [ -n "$DRY_RUN" ] && { echo "would build kine $KINE_VERSION into $dir/bin" >&2; return; }
  log "building kine $KINE_VERSION"
  local tmp="$dir/tmp.$$" # per run: two runs at once must not share it
  rm -rf "$tmp" && mkdir -p "$dir/bin" "$tmp"
  GOBIN="$tmp" go install -trimpath -tags nats \
    -ldflags "-s -w -X github.com/k3s-io/kine/pkg/version.Version=$KINE_VERSION" "github.com/k3s-io/kine@$KINE_VERSION"
  mv "$tmp/kine" "$dir/bin/kine" && rmdir "$tmp"
}

build_konnectivity() {
  # Upstream's go.mod replaces its konnectivity-client with a local path, so `go install @version`
  # refuses it: a throwaway module requires both at the same version instead.
  local dir="$CACHE/konnectivity/$KONNECTIVITY_VERSION"
  [ -x "$dir/bin/proxy-server" ] && [ -x "$dir/bin/proxy-agent" ] && return
  [ -n "$DRY_RUN" ] && { echo "would build konnectivity $KONNECTIVITY_VERSION into $dir/bin" >&2; return; }
  local src="$dir/src"
  mkdir -p "$src" "$dir/bin"
  log "building konnectivity proxy-server and proxy-agent $KONNECTIVITY_VERSION"
  if [ ! -f "$src/.ready" ]; then
    cat > "$src/go.mod" <<MOD
module kamaji.local/konnectivitybins

go 1.25

require (
	sigs.k8s.io/apiserver-network-proxy $KONNECTIVITY_VERSION
	sigs.k8s.io/apiserver-network-proxy/konnectivity-client $KONNECTIVITY_VERSION
)
MOD
    cat > "$src/tools.go" <<'GO'
//go:build tools

package konnectivitybins

import (
	_ "sigs.k8s.io/apiserver-network-proxy/cmd/agent"
	_ "sigs.k8s.io/apiserver-network-proxy/cmd/server"
)
GO
    (cd "$src" && go mod tidy -e >&2)
    touch "$src/.ready"
  fi
  local name pkg
  for name in proxy-server proxy-agent; do
    pkg=sigs.k8s.io/apiserver-network-proxy/cmd/${name#proxy-}
    (cd "$src" && go build -trimpath -ldflags "-s -w" -o "$dir/bin/$name.tmp.$$" "$pkg")
    mv "$dir/bin/$name.tmp.$$" "$dir/bin/$name"
  done
}

# The plan, before anything is built: what is missing and about how long it takes. Minutes are
# measured cold on a 2-core machine (the first binary of a Kubernetes version compiles most of
# the shared code; the next ones mostly link), scaled by the cores here.
missing=() minutes=0 first_of=" "
for b in "${want[@]}"; do
  case "$b" in
    kine) [ -x "$CACHE/kine/$KINE_VERSION/bin/kine" ] || { missing+=("kine $KINE_VERSION"); minutes=$((minutes + 4)); } ;;
    konnectivity) [ -x "$CACHE/konnectivity/$KONNECTIVITY_VERSION/bin/proxy-agent" ] || { missing+=("konnectivity $KONNECTIVITY_VERSION"); minutes=$((minutes + 3)); } ;;
    etcd) [ -x "$ETCD_DIR/bin/etcd" ] || { missing+=("etcd $ETCD_VERSION"); minutes=$((minutes + 3)); } ;;
    *)
      name=${b%@*} version=$K8S_VERSION
      [[ $b == *@* ]] && version=${b#*@}
      [ -x "$(k8s_dir "$version")/bin/$name" ] && continue
      missing+=("$name $version")
      if [[ $first_of != *" $version "* ]] && [ ! -x "$(k8s_dir "$version")/bin/kube-apiserver" ]; then
        first_of+="$version " minutes=$((minutes + 10))
      else
        minutes=$((minutes + 2))
      fi ;;
  esac
done
if [ ${#missing[@]} -gt 0 ]; then
  cores=$(nproc 2>/dev/null || echo 2)
  log "to build into $CACHE (once; later runs reuse it): $(IFS=,; echo "${missing[*]}" | sed 's/,/, /g')"
  log "about $(( (minutes * 2 + cores - 1) / cores )) minutes on this machine's $cores cores"
fi

# The Kubernetes binaries, one build per version, and the other modules' in a second job beside
# them: a build is not CPU-bound all the way (downloads, links), so two at once finish sooner.
others=() versions=()
for b in "${want[@]}"; do
  case "$b" in
    kine | konnectivity | etcd) others+=("$b") ;;
    *)
      version=$K8S_VERSION
      [[ $b == *@* ]] && version=${b#*@}
      [[ " ${versions[*]} " == *" $version "* ]] || versions+=("$version") ;;
  esac
done
build_others() {
  local b
  for b in "$@"; do
    case "$b" in
      kine) build_kine ;;
      konnectivity) build_konnectivity ;;
      etcd) build_etcd ;;
    esac
  done
}
others_pid=
if [ ${#others[@]} -gt 0 ]; then
  build_others "${others[@]}" &
  others_pid=$!
fi
for v in "${versions[@]}"; do
  names=()
  for b in "${want[@]}"; do
    case "$b" in
      kine | konnectivity | etcd) ;;
      *@*) [ "${b#*@}" = "$v" ] && names+=("${b%@*}") ;;
      *) [ "$K8S_VERSION" = "$v" ] && names+=("$b") ;;
    esac
  done
  build_k8s "$v" "${names[@]}"
done
[ -z "$others_pid" ] || wait "$others_pid" || die "building ${others[*]} failed (see above)"
for v in "${older[@]}"; do v=${v#v}; echo "K8S_BIN_${v//./_}=$(k8s_dir "v$v")/bin"; done
echo "K8S_BIN=$(k8s_dir "$K8S_VERSION")/bin"
echo "ETCD_BIN=$ETCD_DIR/bin"
echo "KONNECTIVITY_BIN=$CACHE/konnectivity/$KONNECTIVITY_VERSION/bin"
