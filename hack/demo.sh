#!/usr/bin/env bash
# The demo of `make run`: serve examples/catalog as a chart repository on 127.0.0.1, register it as
# the MarketSource `demo`, install `hello-web`, and run the operator in the foreground.
#   demo.sh prepare   serve the repository and apply the demo objects (idempotent)
#   demo.sh run       prepare, then run the operator; prints `kubectl get kubemart -A` once the app is Ready
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
export PATH="$root/bin:$root/.venv/bin:$PATH"
export KUBECONFIG=${KUBECONFIG:-$root/.cluster/kubeconfig}
port=${KUBEMART_DEMO_PORT:-8879}
repo="$root/.cluster/demo-repo"

serve() {
  mkdir -p "$repo"
  for chart in "$root"/examples/catalog/*/; do
    helm package "$chart" -d "$repo" >/dev/null
  done
  helm repo index "$repo" --url "http://127.0.0.1:$port"
  if ! curl -fsS "http://127.0.0.1:$port/index.yaml" >/dev/null 2>&1; then
    # Detached, so that it outlives this script; `make cluster-down` removes .cluster/ and it with it.
    nohup python3 -m http.server "$port" --bind 127.0.0.1 --directory "$repo" >"$root/.cluster/demo-repo.log" 2>&1 &
    echo $! >"$root/.cluster/demo-repo.pid"
    for _ in $(seq 50); do curl -fsS "http://127.0.0.1:$port/index.yaml" >/dev/null 2>&1 && break; sleep 0.1; done
  fi
  echo "demo catalog served at http://127.0.0.1:$port"
}

prepare() {
  serve
  kubectl apply --server-side --force-conflicts -f "$root/crds" >/dev/null
  kubectl wait --for=condition=Established --timeout=60s -f "$root/crds" >/dev/null
  sed "s|http://127.0.0.1:8879|http://127.0.0.1:$port|" "$root/examples/demo/marketsource.yaml" | kubectl apply -f -
  kubectl apply -f "$root/examples/demo/appinstall.yaml"
}

case "${1:-run}" in
  prepare) prepare ;;
  run)
    prepare
    (
      if kubectl wait --for=condition=Ready appinstall/hello -n demo --timeout=5m >/dev/null; then
        echo; echo "The demo app is installed:"; kubectl get kubemart -A; echo
      else
        echo "The demo app is not Ready yet: kubectl describe appinstall hello -n demo" >&2
      fi
    ) &
    exec kubemart run
    ;;
  *) echo "usage: $0 prepare|run" >&2; exit 2 ;;
esac
