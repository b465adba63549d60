#!/usr/bin/env bash
# `make e2e`: a throwaway cluster, the e2e suite against it, and teardown even on failure.
# `hack/e2e.sh bench`: the same cluster, running the push benchmark (e2e/tests/push_bench.rs)
# against a release kongress instead of the suite.
# `hack/e2e.sh conformance`: the same cluster, running the status-only tests of the Gateway
# API conformance suite (e2e/tools/conformance/tests.txt) against kongress.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
CLUSTER=e2e-$$
# Where cargo puts binaries (CARGO_TARGET_DIR when set).
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
STATE=$ROOT/e2e/.clusters/$CLUSTER

cleanup() {
  local status=$?
  if [[ $status -ne 0 && -d $STATE/logs ]]; then
    echo "[e2e] failed; last lines of each component log:" >&2
    for f in "$STATE"/logs/*.log; do echo "--- $f" >&2; tail -n 15 "$f" >&2; done
  fi
  "$ROOT/e2e/cluster" down "$CLUSTER" || true
  exit $status
}
trap cleanup EXIT

"$ROOT/e2e/cluster" up "$CLUSTER"
KUBECTL="$ROOT/e2e/.bin/kubectl --kubeconfig $STATE/kubeconfig"
$KUBECTL apply --server-side -f "$ROOT/crds/" >/dev/null
$KUBECTL wait --for=condition=Established crd/kongproxies.kongress.dev --timeout=60s >/dev/null

HELM=$ROOT/e2e/.bin/helm
# kongress runs as the chart's ServiceAccount, so the e2e suite also proves its RBAC.
$KUBECTL create namespace kongress-system --dry-run=client -o yaml | $KUBECTL apply -f - >/dev/null
"$HELM" template kongress "$ROOT/charts/kongress" --namespace kongress-system \
  --show-only templates/serviceaccount.yaml --show-only templates/rbac.yaml \
  --show-only templates/leader-election-rbac.yaml | $KUBECTL apply -f - >/dev/null
token=$($KUBECTL -n kongress-system create token kongress --duration=3h)
server=$($KUBECTL config view --raw --minify -o jsonpath='{.clusters[0].cluster.server}')
ca=$($KUBECTL config view --raw --minify -o jsonpath='{.clusters[0].cluster.certificate-authority-data}')
cat >"$STATE/kongress-sa.kubeconfig" <<CONFIG
apiVersion: v1
kind: Config
clusters: [{name: e2e, cluster: {server: "$server", certificate-authority-data: "$ca"}}]
users: [{name: kongress, user: {token: "$token"}}]
contexts: [{name: kongress, context: {cluster: e2e, user: kongress}}]
current-context: kongress
CONFIG

if [[ ${1:-} == bench ]]; then
  cargo build --quiet --release --bin kongress --manifest-path "$ROOT/Cargo.toml"
  KUBECONFIG=$STATE/kubeconfig KONGRESS_KUBECONFIG=$STATE/kongress-sa.kubeconfig \
    KONGRESS_BIN=$TARGET/release/kongress \
    cargo test --release --manifest-path "$ROOT/Cargo.toml" -p kongress-e2e --test push_bench -- --ignored --nocapture
  exit 0
fi

if [[ ${1:-} == conformance ]]; then
  cargo build --quiet --bin kongress --bin kong-standin --manifest-path "$ROOT/Cargo.toml" --workspace
  "$ROOT/hack/conformance.sh" "$STATE"
  exit 0
fi

cargo build --quiet --bin kongress --manifest-path "$ROOT/Cargo.toml"
# The push tests run a Kong admin stand-in on each Kong pod's loopback IP (the kwok stage
# in e2e/kwok-stages/ gives Kong pods 127.244.x.y addresses).
# One kongress per test, and they must not overlap: tests run one at a time.
KUBECONFIG=$STATE/kubeconfig KONGRESS_KUBECONFIG=$STATE/kongress-sa.kubeconfig \
  KONGRESS_BIN=$TARGET/debug/kongress \
  cargo test --manifest-path "$ROOT/Cargo.toml" -p kongress-e2e ${E2E_TESTS:---test provisioning --test push --test routes --test deck --test metrics --test failover --test traces --test chart} -- --test-threads=1
