#!/usr/bin/env bash
# The status-only tests of the Gateway API v1.5.1 conformance suite against kongress, on a
# running local cluster: `hack/e2e.sh conformance` (make conformance) starts the cluster and
# calls this with its state folder.
#
# kongress runs as the chart's ServiceAccount with a Kong admin stand-in on every fake Kong
# pod (as in make run), serving the class `kongress` with the sample KongProxy. The suite
# binary (e2e/tools/conformance) runs the tests e2e/tools/conformance/tests.txt names, and
# each outcome is compared with the one written there: an unexpected failure fails the
# run, and so does an expected failure that passes (the list must stay true).
#
#   CONFORMANCE_OUTCOMES=pass   run only the tests expected to pass (make test does)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
STATE=${1:?usage: hack/conformance.sh <cluster state folder>}
TESTS=$ROOT/e2e/tools/conformance/tests.txt
OUT=$TARGET/conformance
OUTCOMES=${CONFORMANCE_OUTCOMES:-pass,fail}
KUBECTL="$ROOT/e2e/.bin/kubectl --kubeconfig $STATE/kubeconfig"
mkdir -p "$OUT"

log() { printf '[conformance] %s\n' "$*" >&2; }

pids=()
stop_processes() {
  local pid
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap stop_processes EXIT

$KUBECTL apply -f "$ROOT/config/samples/kongproxy.yaml" -f "$ROOT/config/samples/gatewayclass.yaml" >/dev/null

log "starting kongress and the Kong admin stand-ins (logs in $OUT/)"
KUBECONFIG=$STATE/kongress-sa.kubeconfig "$TARGET/debug/kongress" run --namespace kongress-system \
  --metrics-address 127.0.0.1:0 \
  >"$OUT/kongress.log" 2>&1 &
pids+=($!)
KUBECONFIG=$STATE/kubeconfig "$TARGET/debug/kong-standin" fleet --record-dir "$OUT/kong-standin" \
  >"$OUT/kong-standin.log" 2>&1 &
pids+=($!)
$KUBECTL wait --for=condition=Accepted gatewayclass/kongress --timeout=60s >/dev/null

# Features kongress implements that the listed tests depend on (the suite skips a test
# whose features are not all named). The static-address test needs one address kongress
# can put on the proxy Service (a documentation address, never contacted) and one it
# must refuse (link-local, which Kubernetes refuses as an external IP).
features=Gateway,GatewayPort8080,GatewayStaticAddresses,GatewayAddressEmpty,HTTPRoute
features+=,HTTPRouteDestinationPortMatching,HTTPRouteParentRefPort,ReferenceGrant,TLSRoute,TLSRouteModeTerminate

log "running the tests in ${TESTS#"$ROOT"/} (output: $OUT/suite.log)"
set +e
KUBECONFIG=$STATE/kubeconfig "$ROOT/e2e/.bin/gateway-conformance.test" -test.v -test.timeout=40m \
  -kongress-tests="$TESTS" -kongress-outcomes="$OUTCOMES" -gateway-class=kongress -supported-features="$features" \
  -usable-address=192.0.2.10 -unusable-address=169.254.0.10 \
  -report-output="" >"$OUT/suite.log" 2>&1
suite_status=$?
set -e

python3 - "$TESTS" "$OUT/suite.log" "$suite_status" "$OUTCOMES" <<'PY'
import re, sys
tests_file, log_file, suite_status = sys.argv[1], sys.argv[2], int(sys.argv[3])
run_outcomes = {o.strip() for o in sys.argv[4].split(",")}
expected = {}
for line in open(tests_file):
    fields = line.split("#", 1)[0].split()
    if fields:
        expected[fields[0]] = fields[1]
outcome, seconds = {}, {}
for line in open(log_file, errors="replace"):
    m = re.match(r"^    --- (PASS|FAIL|SKIP): TestConformance/(\w+) \(([0-9.]+)s\)", line)
    if m:
        outcome[m.group(2)] = m.group(1).lower()
        seconds[m.group(2)] = float(m.group(3))
setup_failed = not outcome and suite_status != 0
problems = []
for name, want in expected.items():
    if want not in run_outcomes:
        print(f"[conformance] --  {name:52} expected {want}, not run")
        continue
    got = outcome.get(name, "not run")
    mark = "ok " if got == want else "BAD"
    took = f" ({seconds[name]:.0f} s)" if name in seconds else ""
    print(f"[conformance] {mark} {name:52} expected {want}, got {got}{took}")
    if got != want:
        problems.append(name)
if setup_failed:
    print("[conformance] the suite's setup failed; the end of its log follows", file=sys.stderr)
    print("".join(open(log_file, errors="replace").readlines()[-60:]), file=sys.stderr)
passed = sum(1 for v in outcome.values() if v == "pass")
print(f"[conformance] {passed} passed, {len(outcome) - passed} did not, {len(problems)} not as tests.txt expects")
sys.exit(1 if problems or setup_failed else 0)
PY
