#!/usr/bin/env bash
# Prints a kongress trace from Jaeger's query API as an indented span tree.
#
#   hack/trace.sh TRACE_ID                 the trace an Event names ("... (trace ID)")
#   hack/trace.sh --gateway NAME [-n NS]   the trace of the Gateway's latest Event
#
# JAEGER_QUERY is the query API (default: the one `make run` started, from
# e2e/.clusters/run/jaeger.env). KUBECONFIG selects the cluster for --gateway (default:
# the `make run` cluster).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUN_STATE=$ROOT/e2e/.clusters/run

if [[ -z ${JAEGER_QUERY:-} && -f $RUN_STATE/jaeger.env ]]; then
  # shellcheck disable=SC1091
  source "$RUN_STATE/jaeger.env"
fi
[[ -n ${JAEGER_QUERY:-} ]] || { echo "trace.sh: set JAEGER_QUERY (e.g. http://127.0.0.1:16686) or run make run" >&2; exit 2; }

trace_id=
case ${1:-} in
  --gateway)
    name=${2:?--gateway needs a name}
    namespace=default
    [[ ${3:-} == -n ]] && namespace=${4:?-n needs a namespace}
    kubeconfig=${KUBECONFIG:-$RUN_STATE/kubeconfig}
    notes=$("$ROOT/e2e/.bin/kubectl" --kubeconfig "$kubeconfig" -n "$namespace" get events.events.k8s.io \
      --field-selector "regarding.kind=Gateway,regarding.name=$name,reportingController=kongress" \
      --sort-by=.metadata.creationTimestamp -o jsonpath='{range .items[*]}{.note}{"\n"}{end}')
    trace_id=$(sed -n 's/.*(trace \([0-9a-f]\{32\}\))$/\1/p' <<<"$notes" | tail -n 1)
    [[ -n $trace_id ]] || { echo "trace.sh: no Event of Gateway $namespace/$name names a trace" >&2; exit 1; }
    ;;
  '' | -h | --help) sed -n '2,9p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) trace_id=$1 ;;
esac

echo "trace $trace_id ($JAEGER_QUERY/api/traces/$trace_id)"
# kongress exports in batches (every 5 s by default): wait for a trace that just ended.
answer=
for _ in $(seq 30); do
  answer=$(curl -sf "$JAEGER_QUERY/api/traces/$trace_id") && break
  sleep 0.5
done
[[ -n $answer ]] || { echo "trace.sh: Jaeger at $JAEGER_QUERY has no trace $trace_id" >&2; exit 1; }
python3 -c '
import json, sys
trace = json.load(sys.stdin)["data"][0]
spans = {s["spanID"]: s for s in trace["spans"]}
children = {}
for s in trace["spans"]:
    parent = next((r["spanID"] for r in s.get("references", []) if r["refType"] == "CHILD_OF"), None)
    children.setdefault(parent if parent in spans else None, []).append(s)
hidden = {"otel.scope.name", "otel.scope.version", "span.kind", "internal.span.format", "level", "target"}
def show(span, depth):
    tags = {t["key"]: t["value"] for t in span.get("tags", []) if t["key"] not in hidden}
    text = " ".join(f"{k}={v}" for k, v in sorted(tags.items()))
    links = [r for r in span.get("references", []) if r["refType"] == "FOLLOWS_FROM"]
    more = f" [follows {len(links)} linked span(s)]" if links else ""
    indent = "  " * depth
    name, took = span["operationName"], span["duration"] / 1000
    print(f"{indent}{name} {took:.1f}ms {text}{more}")
    for child in sorted(children.get(span["spanID"], []), key=lambda s: s["startTime"]):
        show(child, depth + 1)
for root in sorted(children.get(None, []), key=lambda s: s["startTime"]):
    show(root, 0)
' <<<"$answer"
