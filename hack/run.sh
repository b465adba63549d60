#!/usr/bin/env bash
# `make run`: a local cluster with kongress and the sample Gateway.
#
#   hack/run.sh        start (or reuse) cluster "run" and a Jaeger on loopback, build and
#                      start kongress (exporting traces to that Jaeger) and a Kong admin
#                      stand-in on every (fake) Kong pod, apply config/samples/, wait until
#                      the Gateway is Programmed and the HTTPRoute Accepted
#   hack/run.sh down   stop kongress, the stand-ins, Jaeger and the cluster
#
# No Kong can run here (no container runtime): kwok fakes the Kong pods and gives them
# loopback IPs, and the stand-in answers Kong's admin API there, so kongress pushes the
# config over mutual TLS exactly as it would to Kong, and the stand-in records it.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
CLUSTER=run
STATE=$ROOT/e2e/.clusters/$CLUSTER
KUBECONFIG_PATH=$STATE/kubeconfig
KUBECTL=$ROOT/e2e/.bin/kubectl
PID_FILE=$STATE/kongress.pid
LOG=$STATE/logs/kongress.log
STANDIN_PID_FILE=$STATE/kong-standin.pid
STANDIN_LOG=$STATE/logs/kong-standin.log
RECORD_DIR=$STATE/kong-standin
JAEGER_PID_FILE=$STATE/jaeger.pid
JAEGER_LOG=$STATE/logs/jaeger.log
JAEGER_ENV=$STATE/jaeger.env

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

stop_jaeger() {
  if [[ -f $JAEGER_PID_FILE ]] && kill -0 "$(cat "$JAEGER_PID_FILE")" 2>/dev/null; then
    kill "$(cat "$JAEGER_PID_FILE")" && log "stopped Jaeger"
  fi
  rm -f "$JAEGER_PID_FILE" "$JAEGER_ENV"
}

# Jaeger (built by the e2e tooling) on free loopback ports, spans in memory; kept running
# across `make run`s so earlier traces stay. Its ports are written to jaeger.env.
start_jaeger() {
  if [[ -f $JAEGER_PID_FILE && -f $JAEGER_ENV ]] && kill -0 "$(cat "$JAEGER_PID_FILE")" 2>/dev/null; then
    log "reusing Jaeger (pid $(cat "$JAEGER_PID_FILE"))"
    return
  fi
  stop_jaeger
  local ports grpc http query query_grpc
  ports=$(python3 -c '
import socket
held = [socket.socket() for _ in range(4)]
for s in held: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in held))')
  read -r grpc http query query_grpc <<<"$ports"
  mkdir -p "$STATE/logs"
  log "starting Jaeger (OTLP gRPC 127.0.0.1:$grpc, HTTP 127.0.0.1:$http, query API 127.0.0.1:$query; log: $JAEGER_LOG)"
  JAEGER_OTLP_GRPC_PORT=$grpc JAEGER_OTLP_HTTP_PORT=$http JAEGER_QUERY_PORT=$query JAEGER_QUERY_GRPC_PORT=$query_grpc \
    nohup "$ROOT/e2e/.bin/jaeger" --config "$ROOT/e2e/jaeger/config.yaml" >>"$JAEGER_LOG" 2>&1 &
  echo $! >"$JAEGER_PID_FILE"
  cat >"$JAEGER_ENV" <<ENV
JAEGER_OTLP_GRPC=http://127.0.0.1:$grpc
JAEGER_OTLP_HTTP=http://127.0.0.1:$http
JAEGER_QUERY=http://127.0.0.1:$query
ENV
  for _ in $(seq 50); do
    curl -sf "http://127.0.0.1:$query/api/services" >/dev/null && return
    sleep 0.2
  done
  log "Jaeger did not answer; its log follows"
  tail -n 20 "$JAEGER_LOG"
  exit 1
}

if [[ ${1:-up} == down ]]; then
  stop_kongress
  stop_jaeger
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
"$ROOT/e2e/tools/build.sh"   # Jaeger too, when the cluster was started before it was a tool
start_jaeger
# shellcheck disable=SC1090
source "$JAEGER_ENV"
log "starting kongress, traces to Jaeger over OTLP/gRPC (log: $LOG)"
KUBECONFIG=$KUBECONFIG_PATH OTEL_EXPORTER_OTLP_ENDPOINT=$JAEGER_OTLP_GRPC OTEL_EXPORTER_OTLP_PROTOCOL=grpc \
  OTEL_SERVICE_NAME=kongress nohup "$TARGET/debug/kongress" run --namespace kongress-system >>"$LOG" 2>&1 &
echo $! >"$PID_FILE"
log "starting a Kong admin stand-in for every Kong pod (log: $STANDIN_LOG, records: $RECORD_DIR)"
KUBECONFIG=$KUBECONFIG_PATH nohup "$TARGET/debug/kong-standin" fleet --record-dir "$RECORD_DIR" >>"$STANDIN_LOG" 2>&1 &
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
echo
trace=$(kc -n default get events.events.k8s.io --sort-by=.metadata.creationTimestamp \
  --field-selector regarding.kind=Gateway,regarding.name=kong,reportingController=kongress \
  -o jsonpath='{range .items[*]}{.note}{"\n"}{end}' | sed -n 's/.*(trace \([0-9a-f]\{32\}\))$/\1/p' | tail -n 1)
if [[ -n $trace ]]; then
  echo "The trace of the reconcile behind the Gateway's latest Event ($JAEGER_QUERY/api/traces/$trace):"
  "$ROOT/hack/trace.sh" "$trace" | sed 's/^/  /' || true
fi
cat <<MSG

kongress is running (pid $(cat "$PID_FILE"), log $LOG); Jaeger's query API is $JAEGER_QUERY.
Explore with:
  eval \$(e2e/cluster env $CLUSTER)     # then use e2e/.bin/kubectl
  e2e/.bin/kubectl describe gateway kong
  e2e/.bin/kubectl get gateway kong -o yaml
  e2e/.bin/kubectl get httproute echo -o yaml
  target/debug/kongress translate -f config/samples     # the same config, offline
  ls $RECORD_DIR                                          # every config the stand-ins received
  hack/trace.sh --gateway kong                            # the trace behind the Gateway's latest Event
  curl -s "$JAEGER_QUERY/api/traces?service=kongress&operation=push&limit=5"   # the latest pushes
Stop everything with: make run-down
MSG
