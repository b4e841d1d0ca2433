#!/usr/bin/env bash
# Builds the pinned control plane and tools (kube-apiserver, kube-controller-manager,
# kube-scheduler, kubectl, etcd, kwok, kwokctl, helm) and the test tools luahealth (Argo CD's Lua
# health checks in gopher-lua) and kstatus (cli-utils) from the Go module proxy into bin/, cosign
# (sigstore) from its own module in cosign/ (its dependencies would move the Kubernetes pins), and
# registry (distribution's OCI registry, for the oci source's tests) from its own module, registry/.
# A build runs only when a binary is missing or the pins (go.mod, go.sum, this script) changed.
#
# Clusters, operators and tests of other shells run these binaries while a rebuild happens.
# `go build -o bin/` renames its output over the target only when its work dir is on the same
# filesystem; otherwise it deletes the target and copies into a new file, and a helm or kubectl
# started meanwhile finds no file or a half-written one. So go builds into bin/.build/ (kept, so
# that go relinks only the tools whose inputs changed) and each new binary is hard-linked next to
# the old one and renamed over it: a running process keeps its file, a starting one gets a whole one.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=${BIN_DIR:-$(cd "$here/.." && pwd)/bin}
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod

KUBE_VERSION=v1.36.3
HELM_VERSION=v3.21.4
KWOK_VERSION=v0.8.0
COSIGN_VERSION=v2.6.5  # must match cosign/go.mod
DISTRIBUTION_VERSION=v3.1.2  # pinned in registry/go.mod
tools="kube-apiserver kube-controller-manager kube-scheduler kubectl etcd kwok kwokctl helm luahealth kstatus cosign registry"

stamp="$bin/.hack-stamp"
stage="$bin/.build"
# The pins, this script, and our own small mains (a change to any of them rebuilds).
want=$(cat "$here/go.mod" "$here/go.sum" "$here/cosign/go.mod" "$here/cosign/go.sum" \
  "$here/registry/go.mod" "$here/registry/go.sum" "$0" \
  $(find "$here" -name '*.go' | LC_ALL=C sort) | sha256sum | cut -d' ' -f1)
up_to_date() {
  for t in $tools; do [ -x "$bin/$t" ] || return 1; done
  [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]
}
if up_to_date; then
  echo "bin/ is up to date ($KUBE_VERSION, helm $HELM_VERSION, kwok $KWOK_VERSION)"
  exit 0
fi
# One build at a time; whoever waited finds the work done.
mkdir -p "$stage"
exec 9>"$stage/lock"
flock 9
if up_to_date; then
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
cv="-X sigs.k8s.io/release-utils/version.gitVersion=$COSIGN_VERSION -X sigs.k8s.io/release-utils/version.gitTreeState=clean"

start=$(date +%s)
echo "building $tools into $bin (a cold build takes tens of minutes on 2 cores)"
# The stage starts from the binaries in use (hard links, no copies): go sees them up to date.
for t in $tools; do
  if [ -f "$bin/$t" ] && [ ! -e "$stage/$t" ]; then ln "$bin/$t" "$stage/$t" 2>/dev/null || true; fi
done
cd "$here"
# One `go build` so that the packages the tools share compile once.
go build -trimpath -ldflags "-s -w $kv $hv $wv" -o "$stage/" tool
# cosign: its own module (cosign/go.mod), so its dependency graph leaves the one above alone.
(cd "$here/cosign" && go build -trimpath -ldflags "-s -w $cv" -o "$stage/" tool)
# distribution pins otel/grpc versions that clash with the Kubernetes pins: a module of its own.
(cd "$here/registry" && go build -trimpath -ldflags "-s -w" -o "$stage/" tool)
for t in $tools; do
  [ "$stage/$t" -ef "$bin/$t" ] && continue
  ln -f "$stage/$t" "$bin/.$t.new" 2>/dev/null || cp -f "$stage/$t" "$bin/.$t.new"
  mv -f "$bin/.$t.new" "$bin/$t"
  echo "replaced bin/$t"
done
# A new file renamed over the stamp: bin/ may be hard-linked from another checkout (cp -al).
echo "$want" > "$stamp.new" && mv -f "$stamp.new" "$stamp"
echo "built in $(( $(date +%s) - start ))s"
