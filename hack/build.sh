#!/usr/bin/env bash
# Builds the pinned control plane and tools (kube-apiserver, kube-controller-manager,
# kube-scheduler, kubectl, etcd, kwok, kwokctl, helm) from the Go module proxy into bin/.
# A build runs only when a binary is missing or the pins (go.mod, go.sum, this script) changed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=${BIN_DIR:-$(cd "$here/.." && pwd)/bin}
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod

KUBE_VERSION=v1.36.3
HELM_VERSION=v3.21.4
KWOK_VERSION=v0.8.0
tools="kube-apiserver kube-controller-manager kube-scheduler kubectl etcd kwok kwokctl helm"

stamp="$bin/.hack-stamp"
want=$(cat "$here/go.mod" "$here/go.sum" "$0" | sha256sum | cut -d' ' -f1)
missing=0
for t in $tools; do [ -x "$bin/$t" ] || missing=1; done
if [ "$missing" = 0 ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
  echo "bin/ is up to date ($KUBE_VERSION, helm $HELM_VERSION, kwok $KWOK_VERSION)"
  exit 0
fi

major=${KUBE_VERSION#v}; major=${major%%.*}
minor=${KUBE_VERSION#v*.}; minor=${minor%%.*}
# Without these the servers report v0.0.0-master, which breaks version checks (helm's kubeVersion).
kv="-X k8s.io/component-base/version.gitVersion=$KUBE_VERSION -X k8s.io/component-base/version.gitMajor=$major -X k8s.io/component-base/version.gitMinor=$minor -X k8s.io/component-base/version.gitTreeState=clean"
kv="$kv -X k8s.io/client-go/pkg/version.gitVersion=$KUBE_VERSION -X k8s.io/client-go/pkg/version.gitMajor=$major -X k8s.io/client-go/pkg/version.gitMinor=$minor"
hv="-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
hv="$hv -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=$major -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$minor"
hv="$hv -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=$major -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$minor"
wv="-X sigs.k8s.io/kwok/pkg/consts.Version=${KWOK_VERSION#v} -X sigs.k8s.io/kwok/pkg/consts.KubeVersion=${KUBE_VERSION#v}"

mkdir -p "$bin"
start=$(date +%s)
echo "building $tools into $bin (a cold build takes tens of minutes on 2 cores)"
cd "$here"
# One `go build` so that the packages the tools share compile once.
go build -trimpath -ldflags "-s -w $kv $hv $wv" -o "$bin/" tool
echo "$want" > "$stamp"
echo "built in $(( $(date +%s) - start ))s"
