#!/usr/bin/env bash
# Regenerate the committed go.mod/go.sum of the three tool modules (maintenance only;
# build.sh never runs this). Usage: tools/k8s/pin.sh  (versions come from versions.env)
#
# k8s, etcd and kwok live in separate modules so that one's dependency versions (grpc,
# otel, client-go ...) can never move another's.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.env
. "$HERE/versions.env"
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod

fresh_module() { # dir module-path
  rm -f "$1/go.mod" "$1/go.sum"
  # Lowest go line that works for the dependencies, so any go1.26.x toolchain can build.
  (cd "$1" && go mod init "$2" >/dev/null 2>&1 && go mod edit -go=1.26.0)
}

pin_kubernetes() {
  local dir=$HERE/kubernetes staging=v0.${K8S_VERSION#v1.} mod m
  fresh_module "$dir" k8stars.invalid/tools/k8s/kubernetes
  cd "$dir"
  # k8s.io/kubernetes requires its staging modules at v0.0.0 plus a local replace; a consumer
  # must replace each with the published v0.X.Y tag. The list grows between minors, so read it
  # from the release's own go.mod instead of hard-coding it.
  mod=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  for m in $(sed -n 's#^[[:space:]]*\(k8s\.io/[a-z0-9-]*\) => \./staging/.*#\1#p' "$mod"); do
    go mod edit -replace="$m=$m@$staging"
  done
  go get -tool "k8s.io/kubernetes/cmd/kube-apiserver@$K8S_VERSION" \
    "k8s.io/kubernetes/cmd/kube-controller-manager@$K8S_VERSION" \
    "k8s.io/kubernetes/cmd/kube-scheduler@$K8S_VERSION" \
    "k8s.io/kubernetes/cmd/kubelet@$K8S_VERSION"
  go mod tidy
}

pin_etcd() {
  fresh_module "$HERE/etcd" k8stars.invalid/tools/k8s/etcd
  cd "$HERE/etcd"
  # The etcd server's main package is the module root itself.
  go get -tool "go.etcd.io/etcd/server/v3@$ETCD_VERSION"
  go mod tidy
}

pin_kwok() {
  fresh_module "$HERE/kwok" k8stars.invalid/tools/k8s/kwok
  cd "$HERE/kwok"
  go get -tool "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
  go mod tidy
}

(pin_kubernetes)
(pin_etcd)
(pin_kwok)
echo "pinned: k8s $K8S_VERSION, etcd $ETCD_VERSION, kwok $KWOK_VERSION"
