#!/usr/bin/env bash
# Builds the Kubernetes and etcd binaries the tests and the local plane run, from the Go module
# proxy, into a cache keyed by version. Incremental: a binary already built is not rebuilt, and the
# Go build cache makes a rebuild after a partial run cheap.
#
#   hack/kube-bins.sh [binary...]      default: every binary below
#   prints the bin folder on stdout (last line)
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-v1.37.2}"
ETCD_VERSION="${ETCD_VERSION:-v3.6.16}"
CACHE="${KAMAJI_CACHE:-$HOME/.cache/kamaji}"
K8S_DIR="$CACHE/kube/$K8S_VERSION"
ETCD_DIR="$CACHE/etcd/$ETCD_VERSION"
export GOFLAGS=-buildvcs=false GOWORK=off CGO_ENABLED=0

all_k8s=(kube-apiserver kube-controller-manager kube-scheduler kube-proxy kubeadm kubectl)
want=("$@")
[ ${#want[@]} -gt 0 ] || want=("${all_k8s[@]}" etcd)

log() { echo "kube-bins: $*" >&2; }

k8s_src() {
  # A throwaway module that requires k8s.io/kubernetes and pins every staging module it replaces
  # with a local path to the matching v0.x release.
  local src="$K8S_DIR/src"
  [ -f "$src/.ready" ] && { echo "$src"; return; }
  mkdir -p "$src"
  local gomod
  gomod=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)",*/\1/p')
  local staging="v0${K8S_VERSION#v1}"
  {
    echo "module kamaji.local/kubebins"
    echo
    echo "go $(go env GOVERSION | sed 's/^go//; s/\([0-9]*\.[0-9]*\).*/\1/')"
    echo
    echo "require k8s.io/kubernetes $K8S_VERSION"
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
	_ "k8s.io/kubectl/pkg/cmd"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GO
  (cd "$src" && go mod tidy -e >&2)
  touch "$src/.ready"
  echo "$src"
}

build_k8s() {
  local name=$1 src
  [ -x "$K8S_DIR/bin/$name" ] && return
  src=$(k8s_src)
  log "building $name $K8S_VERSION (first time takes minutes)"
  mkdir -p "$K8S_DIR/bin"
  local ver="-X k8s.io/component-base/version.gitVersion=$K8S_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$(echo "$K8S_VERSION" | cut -d. -f2)"
  ver="$ver -X k8s.io/client-go/pkg/version.gitVersion=$K8S_VERSION"
  (cd "$src" && go build -trimpath -ldflags "-s -w $ver" -o "$K8S_DIR/bin/$name.tmp" "k8s.io/kubernetes/cmd/$name")
  mv "$K8S_DIR/bin/$name.tmp" "$K8S_DIR/bin/$name"
}

build_etcd() {
  [ -x "$ETCD_DIR/bin/etcd" ] && return
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
  (cd "$src" && go build -trimpath -ldflags "-s -w" -o "$ETCD_DIR/bin/etcd.tmp" .)
  mv "$ETCD_DIR/bin/etcd.tmp" "$ETCD_DIR/bin/etcd"
}

for b in "${want[@]}"; do
  case "$b" in
    etcd) build_etcd ;;
    *) build_k8s "$b" ;;
  esac
done
echo "K8S_BIN=$K8S_DIR/bin"
echo "ETCD_BIN=$ETCD_DIR/bin"
