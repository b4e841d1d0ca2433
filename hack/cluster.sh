#!/usr/bin/env bash
# The local control plane: a kwok cluster with the binary runtime, every component taken from bin/
# (nothing is downloaded). Usage: cluster.sh up | down | status | dry-run
# Services get a /16 (kube-apiserver's default /24 holds 254, fewer than the scale tests create). kwokctl
# 0.8 files a component's extra args under the position of its first one: keep the components' first
# args in the order kube-apiserver, kube-controller-manager, kube-scheduler, later ones after them.
# There is one of each component and nothing restarts them, so leader election is off: with it, the
# controller manager and scheduler exit for good when the API server is away for a few seconds.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
name=${KUBEMART_CLUSTER_NAME:-kubemart}
# KUBEMART_CLUSTER_DIR lets several clusters live side by side (one per worktree or parallel session).
state="${KUBEMART_CLUSTER_DIR:-$root/.cluster}"
kubeconfig="$state/kubeconfig"
nodes=${KUBEMART_CLUSTER_NODES:-2}
export KWOK_WORKDIR="$state/kwok"
# kwokctl finds kubectl on PATH; bin/ first so that it never looks for a download.
export PATH="$root/bin:$PATH"

create_args() {
  echo --name "$name" --runtime binary \
    --kube-apiserver-binary "$root/bin/kube-apiserver" \
    --kube-controller-manager-binary "$root/bin/kube-controller-manager" \
    --kube-scheduler-binary "$root/bin/kube-scheduler" \
    --kwok-controller-binary "$root/bin/kwok" \
    --etcd-binary "$root/bin/etcd" \
    --extra-args kube-apiserver=bind-address=127.0.0.1 \
    --extra-args kube-controller-manager=bind-address=127.0.0.1 \
    --extra-args kube-scheduler=bind-address=127.0.0.1 \
    --extra-args kube-controller-manager=leader-elect=false \
    --extra-args kube-scheduler=leader-elect=false \
    --extra-args kube-apiserver=service-cluster-ip-range=10.96.0.0/16 \
    --kubeconfig "$kubeconfig"
}

healthy() {
  [ -s "$kubeconfig" ] && kubectl --kubeconfig "$kubeconfig" --request-timeout=5s get --raw /readyz >/dev/null 2>&1
}

wait_nodes() {
  local deadline=$((SECONDS + 120))
  until [ "$(kubectl --kubeconfig "$kubeconfig" get nodes --no-headers 2>/dev/null | grep -c ' Ready ')" -ge "$nodes" ]; do
    if [ $SECONDS -ge $deadline ]; then
      echo "nodes did not become Ready within 120s" >&2
      kubectl --kubeconfig "$kubeconfig" get nodes >&2 || true
      return 1
    fi
    sleep 1
  done
  # Pods are admitted only once the default ServiceAccount exists.
  until kubectl --kubeconfig "$kubeconfig" -n default get serviceaccount default >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || { echo "default ServiceAccount did not appear" >&2; return 1; }
    sleep 1
  done
}

up() {
  if healthy; then
    echo "cluster $name is already running (kubeconfig: $kubeconfig)"
    return 0
  fi
  "$root/hack/build.sh"
  mkdir -p "$state"
  local start=$SECONDS
  if [ -d "$KWOK_WORKDIR/clusters/$name" ]; then
    # Left over from a stopped machine: restart it, or start again from nothing.
    kwokctl start cluster --name "$name" --wait 2m >/dev/null 2>&1 || {
      kwokctl delete cluster --name "$name" >/dev/null 2>&1 || true
      rm -rf "$KWOK_WORKDIR/clusters/$name" "$kubeconfig"
    }
  fi
  if ! healthy; then
    # shellcheck disable=SC2046
    kwokctl create cluster $(create_args) --wait 2m
  fi
  kwokctl scale node --name "$name" --replicas "$nodes"
  wait_nodes
  echo "cluster $name is up in $((SECONDS - start))s (kubeconfig: $kubeconfig)"
}

down() {
  # The demo chart repository of `make run`, if it is being served.
  if [ -f "$state/demo-repo.pid" ]; then
    kill "$(cat "$state/demo-repo.pid")" 2>/dev/null || true
  fi
  if [ -d "$KWOK_WORKDIR/clusters/$name" ]; then
    kwokctl delete cluster --name "$name" || true
  fi
  rm -rf "$state"
  echo "cluster $name is gone"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) if healthy; then echo running; else echo stopped; exit 1; fi ;;
  # Prints what `up` would run, for checking that nothing is downloaded.
  # shellcheck disable=SC2046
  dry-run) KWOK_WORKDIR=$(mktemp -d) kwokctl create cluster $(create_args) --dry-run ;;
  *) echo "usage: $0 up|down|status|dry-run" >&2; exit 2 ;;
esac
