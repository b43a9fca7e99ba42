#!/usr/bin/env bash
# Build the test control plane (kube-apiserver, kube-controller-manager, kube-scheduler, etcd,
# kwok) and the kubelet of the real-pod mode from the pinned tool modules beside this script, into
#   ${K8STARS_CACHE:-~/.cache/k8stars}/k8s/<k8s version>/bin/
# A warm cache (all binaries present, stamp matching versions.env and go.sum) builds nothing.
#
# Usage: tools/k8s/build.sh [--force] [--print-bin-dir]
# Env:   K8STARS_CACHE      cache root (default ~/.cache/k8stars)
#        K8STARS_BUILD_P    go build -p (default 2: the machine has 2 cores, and other work runs)
#        GOMODCACHE/GOCACHE respected when set; else kept under the cache root (go/mod, go/build),
#                           so this build neither fills nor depends on other projects' Go caches
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
. "$HERE/versions.env"

CACHE=${K8STARS_CACHE:-$HOME/.cache/k8stars}
ROOT=$CACHE/k8s/$K8S_VERSION
BIN=$ROOT/bin
STAMP=$ROOT/stamp
FORCE=0
for arg in "$@"; do
  case $arg in
    --force) FORCE=1 ;;
    --print-bin-dir) echo "$BIN"; exit 0 ;;
    *) echo "usage: $0 [--force] [--print-bin-dir]" >&2; exit 2 ;;
  esac
done

# GOTOOLCHAIN=local: fail loudly instead of fetching a toolchain. CGO_ENABLED=0: static binaries
# with no C toolchain needed. -mod=readonly: build exactly what go.mod/go.sum pin.
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS="-mod=readonly -buildvcs=false"
export GOMODCACHE=${GOMODCACHE:-$CACHE/go/mod} GOCACHE=${GOCACHE:-$CACHE/go/build}
P=${K8STARS_BUILD_P:-2}
NAMES=(kube-apiserver kube-controller-manager kube-scheduler kubelet etcd kwok)

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

# The stamp ties the binaries to the exact pins; editing versions.env or a go.sum rebuilds.
want_stamp() {
  cat "$HERE/versions.env" "$HERE"/kubernetes/go.sum "$HERE"/etcd/go.sum "$HERE"/kwok/go.sum \
    | sha256sum | cut -d' ' -f1
}

all_present() {
  local n
  for n in "${NAMES[@]}"; do [ -x "$BIN/$n" ] || return 1; done
}

# k8s reads its version from these variables (as upstream's hack/lib/version.sh sets them);
# without them /version says v0.0.0-master and skew checks get confused.
k8s_ldflags() {
  local minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
  local p=k8s.io/component-base/version c=k8s.io/client-go/pkg/version v
  v="-s -w"
  for pkg in $p $c; do
    v="$v -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    v="$v -X $pkg.gitTreeState=clean -X $pkg.buildDate=2026-01-01T00:00:00Z"
  done
  echo "$v"
}

# build NAME MODULE-DIR PACKAGE LDFLAGS: into a temp file, then rename, so an interrupted build
# never leaves a half-written binary that looks warm.
build_one() {
  local name=$1 dir=$2 pkg=$3 ldflags=$4 t0 tmp
  t0=$(now)
  tmp=$(mktemp "$BIN/.$name.XXXXXX")
  (cd "$dir" && nice -n 10 go build -p "$P" -trimpath -ldflags "$ldflags" -o "$tmp" "$pkg")
  chmod 0755 "$tmp"
  mv -f "$tmp" "$BIN/$name"
  echo "build.sh: $name built in $(secs "$t0" "$(now)") s"
}

main() {
  local t0 stamp
  t0=$(now)
  mkdir -p "$BIN"
  # One build at a time per cache (CI script and a pytest fixture may both call us).
  exec 9>"$ROOT/.lock"
  flock 9
  stamp=$(want_stamp)
  if [ "$FORCE" = 0 ] && all_present && [ "$(cat "$STAMP" 2>/dev/null)" = "$stamp" ]; then
    echo "build.sh: warm cache, nothing to build ($BIN) in $(secs "$t0" "$(now)") s"
    return 0
  fi
  command -v go >/dev/null || { echo "build.sh: go not found on PATH" >&2; exit 1; }
  rm -f "$STAMP" "$BIN"/.*.?????? 2>/dev/null || true
  echo "build.sh: $(go version), GOMODCACHE=$GOMODCACHE GOCACHE=$GOCACHE"
  echo "build.sh: building k8s $K8S_VERSION, etcd $ETCD_VERSION, kwok $KWOK_VERSION into $BIN (-p $P)"
  local lk
  lk=$(k8s_ldflags)
  build_one kube-apiserver "$HERE/kubernetes" k8s.io/kubernetes/cmd/kube-apiserver "$lk"
  build_one kube-controller-manager "$HERE/kubernetes" k8s.io/kubernetes/cmd/kube-controller-manager "$lk"
  build_one kube-scheduler "$HERE/kubernetes" k8s.io/kubernetes/cmd/kube-scheduler "$lk"
  build_one kubelet "$HERE/kubernetes" k8s.io/kubernetes/cmd/kubelet "$lk"
  build_one etcd "$HERE/etcd" go.etcd.io/etcd/server/v3 "-s -w"
  build_one kwok "$HERE/kwok" sigs.k8s.io/kwok/cmd/kwok "-s -w"
  echo "$stamp" >"$STAMP"
  echo "build.sh: all built in $(secs "$t0" "$(now)") s"
}

main
