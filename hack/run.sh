#!/usr/bin/env bash
# `make run`: a local cluster with kongress and the sample Gateway.
#
#   hack/run.sh        start (or reuse) cluster "run", build and start kongress,
#                      apply config/samples/, wait until the Gateway is Programmed
#   hack/run.sh down   stop kongress and the cluster
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CLUSTER=run
STATE=$ROOT/e2e/.clusters/$CLUSTER
KUBECONFIG_PATH=$STATE/kubeconfig
KUBECTL=$ROOT/e2e/.bin/kubectl
PID_FILE=$STATE/kongress.pid
LOG=$STATE/logs/kongress.log

log() { printf '[run] %s\n' "$*" >&2; }
kc() { "$KUBECTL" --kubeconfig "$KUBECONFIG_PATH" "$@"; }

stop_kongress() {
  if [[ -f $PID_FILE ]] && kill -0 "$(cat "$PID_FILE")" 2>/dev/null; then
    kill "$(cat "$PID_FILE")" && log "stopped kongress"
  fi
  rm -f "$PID_FILE"
}

if [[ ${1:-up} == down ]]; then
  stop_kongress
  "$ROOT/e2e/cluster" down "$CLUSTER"
  exit 0
fi

if [[ -f $KUBECONFIG_PATH ]] && kc get --raw /readyz >/dev/null 2>&1; then
  log "reusing running cluster '$CLUSTER'"
else
  SMOKE=0 "$ROOT/e2e/cluster" up "$CLUSTER"
fi

log "building kongress"
cargo build --quiet --bin kongress --manifest-path "$ROOT/Cargo.toml"

log "installing the KongProxy CRD"
kc apply --server-side -f "$ROOT/crds/"
kc wait --for=condition=Established crd/kongproxies.kongress.dev --timeout=60s >/dev/null
kc create namespace kongress-system --dry-run=client -o yaml | kc apply -f - >/dev/null

if ! kc -n default get secret example-tls >/dev/null 2>&1; then
  log "creating a self-signed certificate for the HTTPS listener (Secret default/example-tls)"
  tmp=$(mktemp -d)
  openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=example.com" \
    -addext "subjectAltName=DNS:example.com" -keyout "$tmp/tls.key" -out "$tmp/tls.crt" 2>/dev/null
  kc -n default create secret tls example-tls --cert "$tmp/tls.crt" --key "$tmp/tls.key" >/dev/null
  rm -rf "$tmp"
fi

stop_kongress
log "starting kongress (log: $LOG)"
KUBECONFIG=$KUBECONFIG_PATH nohup "$ROOT/target/debug/kongress" run --namespace kongress-system >>"$LOG" 2>&1 &
echo $! >"$PID_FILE"

log "applying config/samples/"
kc apply -f "$ROOT/config/samples/kongproxy.yaml" -f "$ROOT/config/samples/gatewayclass.yaml" -f "$ROOT/config/samples/gateway.yaml" >/dev/null

log "waiting for the Gateway to be Programmed"
if ! kc -n default wait --for=condition=Programmed gateway/kong --timeout=120s >/dev/null; then
  log "the Gateway did not become Programmed; its status and the kongress log follow"
  kc -n default describe gateway kong || true
  tail -n 40 "$LOG" || true
  exit 1
fi

echo
kc get gatewayclass
echo
kc -n default get gateway
echo
kc -n kongress-system get deployment,service,pods -l app.kubernetes.io/managed-by=kongress
echo
kc -n kongress-system get deployment -l app.kubernetes.io/managed-by=kongress \
  -o jsonpath='{range .items[*].spec.template.spec.containers[0].env[?(@.name=="KONG_PROXY_LISTEN")]}KONG_PROXY_LISTEN={.value}{"\n"}{end}{range .items[*].spec.template.spec.containers[0].env[?(@.name=="KONG_STREAM_LISTEN")]}KONG_STREAM_LISTEN={.value}{"\n"}{end}'
cat <<MSG

kongress is running (pid $(cat "$PID_FILE"), log $LOG).
Explore with:
  eval \$(e2e/cluster env $CLUSTER)     # then use e2e/.bin/kubectl
  e2e/.bin/kubectl describe gateway kong
  e2e/.bin/kubectl get gateway kong -o yaml
Stop everything with: make run-down
MSG
