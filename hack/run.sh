#!/usr/bin/env bash
# `make run`: a local cluster with kongress and the sample Gateway.
#
#   hack/run.sh        start (or reuse) cluster "run", build and start kongress and a
#                      Kong admin stand-in on every (fake) Kong pod, apply config/samples/,
#                      wait until the Gateway is Programmed and the HTTPRoute Accepted
#   hack/run.sh down   stop kongress, the stand-ins and the cluster
#
# No Kong can run here (no container runtime): kwok fakes the Kong pods and gives them
# loopback IPs, and the stand-in answers Kong's admin API there, so kongress pushes the
# config over mutual TLS exactly as it would to Kong, and the stand-in records it.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CLUSTER=run
STATE=$ROOT/e2e/.clusters/$CLUSTER
KUBECONFIG_PATH=$STATE/kubeconfig
KUBECTL=$ROOT/e2e/.bin/kubectl
PID_FILE=$STATE/kongress.pid
LOG=$STATE/logs/kongress.log
STANDIN_PID_FILE=$STATE/kong-standin.pid
STANDIN_LOG=$STATE/logs/kong-standin.log
RECORD_DIR=$STATE/kong-standin

log() { printf '[run] %s\n' "$*" >&2; }
kc() { "$KUBECTL" --kubeconfig "$KUBECONFIG_PATH" "$@"; }

stop_kongress() {
  if [[ -f $PID_FILE ]] && kill -0 "$(cat "$PID_FILE")" 2>/dev/null; then
    kill "$(cat "$PID_FILE")" && log "stopped kongress"
  fi
  rm -f "$PID_FILE"
  if [[ -f $STANDIN_PID_FILE ]] && kill -0 "$(cat "$STANDIN_PID_FILE")" 2>/dev/null; then
    kill "$(cat "$STANDIN_PID_FILE")" && log "stopped the Kong admin stand-ins"
  fi
  rm -f "$STANDIN_PID_FILE"
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

log "building kongress and the Kong admin stand-in"
cargo build --quiet --bin kongress --manifest-path "$ROOT/Cargo.toml"
cargo build --quiet --bin kong-standin -p kongress-e2e --manifest-path "$ROOT/Cargo.toml"

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
log "starting a Kong admin stand-in for every Kong pod (log: $STANDIN_LOG, records: $RECORD_DIR)"
KUBECONFIG=$KUBECONFIG_PATH nohup "$ROOT/target/debug/kong-standin" fleet --record-dir "$RECORD_DIR" >>"$STANDIN_LOG" 2>&1 &
echo $! >"$STANDIN_PID_FILE"

log "applying config/samples/"
kc apply -f "$ROOT/config/samples/kongproxy.yaml" -f "$ROOT/config/samples/gatewayclass.yaml" \
  -f "$ROOT/config/samples/gateway.yaml" -f "$ROOT/config/samples/echo.yaml" \
  -f "$ROOT/hack/echo-deployment.yaml" -f "$ROOT/config/samples/httproute.yaml" >/dev/null

log "waiting for the Gateway to be Programmed"
if ! kc -n default wait --for=condition=Programmed gateway/kong --timeout=120s >/dev/null; then
  log "the Gateway did not become Programmed; its status and the kongress log follow"
  kc -n default describe gateway kong || true
  tail -n 40 "$LOG" || true
  exit 1
fi

log "waiting for the HTTPRoute to be Accepted"
route_accepted() {
  kc -n default get httproute echo -o jsonpath='{range .status.parents[*]}{.conditions[?(@.type=="Accepted")].status}{end}' 2>/dev/null | grep -q True
}
for _ in $(seq 60); do route_accepted && break; sleep 1; done
route_accepted || { log "the HTTPRoute was not Accepted"; kc -n default describe httproute echo; exit 1; }

echo
kc get gatewayclass
echo
kc -n default get gateway
echo
kc -n kongress-system get deployment,service,pods -l app.kubernetes.io/managed-by=kongress
echo
kc -n kongress-system get deployment -l app.kubernetes.io/managed-by=kongress \
  -o jsonpath='{range .items[*].spec.template.spec.containers[0].env[?(@.name=="KONG_PROXY_LISTEN")]}KONG_PROXY_LISTEN={.value}{"\n"}{end}{range .items[*].spec.template.spec.containers[0].env[?(@.name=="KONG_STREAM_LISTEN")]}KONG_STREAM_LISTEN={.value}{"\n"}{end}'
echo
kc -n default get httproute echo -o jsonpath='{range .status.parents[*]}HTTPRoute echo on Gateway {.parentRef.name}: {range .conditions[*]}{.type}={.status} ({.reason}) {end}{"\n"}{end}'
echo
latest=$(find "$RECORD_DIR" -name '*-201.json' 2>/dev/null | sort | tail -n 1)
if [[ -n $latest ]]; then
  echo "Config the Kong pods accepted (stand-in record $latest):"
  python3 - "$latest" <<'PY'
import json, sys
body = json.load(open(sys.argv[1]))
config = json.loads(body["config"]) if isinstance(body.get("config"), str) else body
for service in config.get("services", []):
    for route in service.get("routes", []):
        print(f"  route {route['name']}: {route['expression']} -> service {service['name']}")
for upstream in config.get("upstreams", []):
    targets = ", ".join(t["target"] for t in upstream.get("targets", []))
    print(f"  upstream {upstream['name']}: {targets}")
PY
fi
cat <<MSG

kongress is running (pid $(cat "$PID_FILE"), log $LOG).
Explore with:
  eval \$(e2e/cluster env $CLUSTER)     # then use e2e/.bin/kubectl
  e2e/.bin/kubectl describe gateway kong
  e2e/.bin/kubectl get gateway kong -o yaml
  e2e/.bin/kubectl get httproute echo -o yaml
  target/debug/kongress translate -f config/samples     # the same config, offline
  ls $RECORD_DIR                                          # every config the stand-ins received
Stop everything with: make run-down
MSG
