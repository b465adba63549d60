#!/usr/bin/env bash
# Builds the pinned e2e tool binaries into e2e/.bin/ from Go modules only.
#
# Every tool family has its own Go module under e2e/tools/<family>/ (go.mod
# with a `tool` directive + committed go.sum), so their dependency graphs never
# have to agree with each other. Nothing is downloaded except through the Go
# module proxy.
#
# Rebuilds happen only when a pin changes: e2e/.bin/.stamp holds a hash of all
# go.mod/go.sum files, this script and the Go version. When it matches and
# every output exists, the script exits at once.
#
# Environment:
#   KONGRESS_BIN_DIR   output folder (default: e2e/.bin)
#   FORCE=1            rebuild even if the stamp matches
#   ONLY="a b"         build only these binaries (never writes the stamp)
set -euo pipefail

TOOLS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
E2E_DIR=$(dirname "$TOOLS_DIR")
BIN_DIR=${KONGRESS_BIN_DIR:-$E2E_DIR/.bin}
STAMP_FILE=$BIN_DIR/.stamp
GATEWAY_API_OUT=$BIN_DIR/gateway-api-crds
KWOK_STAGES_OUT=$BIN_DIR/kwok-stages

# name | module folder (under e2e/tools) | package to build
TARGETS=(
  "etcd|etcd|go.etcd.io/etcd/server/v3"
  "kube-apiserver|kube|k8s.io/kubernetes/cmd/kube-apiserver"
  "kube-controller-manager|kube|k8s.io/kubernetes/cmd/kube-controller-manager"
  "kube-scheduler|kube|k8s.io/kubernetes/cmd/kube-scheduler"
  "kubectl|kube|k8s.io/kubernetes/cmd/kubectl"
  "kwok|kwok|sigs.k8s.io/kwok/cmd/kwok"
  "helm|helm|helm.sh/helm/v3/cmd/helm"
  "deck|deck|github.com/kong/deck"
  "jaeger|jaeger|github.com/jaegertracing/jaeger/cmd/jaeger"
)

log() { printf '[build] %s\n' "$*" >&2; }
die() { printf '[build] ERROR: %s\n' "$*" >&2; exit 1; }

check_prereqs() {
  command -v go >/dev/null 2>&1 ||
    die "go is not on PATH; Go >= 1.26 is needed to build the e2e tools"
  # Not needed to build, but e2e/cluster needs them; fail early and clearly.
  command -v openssl >/dev/null 2>&1 ||
    die "openssl is missing (e2e/cluster makes its CA with it): apt-get install -y openssl"
  command -v python3 >/dev/null 2>&1 ||
    die "python3 is missing (e2e/cluster picks free ports with it): apt-get install -y python3"
}

# Isolated, reproducible Go settings for every go command below.
export GOWORK=off
export GOFLAGS="-mod=readonly -buildvcs=false"
export CGO_ENABLED=${CGO_ENABLED:-0}

modver() { # modver <module folder> <module path> -> version selected there
  go -C "$TOOLS_DIR/$1" list -m -f '{{if .Replace}}{{.Replace.Version}}{{else}}{{.Version}}{{end}}' "$2"
}

compute_stamp() {
  {
    go -C "$TOOLS_DIR/kube" env GOVERSION GOOS GOARCH CGO_ENABLED
    sha256sum <"${BASH_SOURCE[0]}"
    (cd "$TOOLS_DIR" && find . -name go.mod -o -name go.sum -o -name '*.go' | LC_ALL=C sort | xargs sha256sum)
  } | sha256sum | cut -d' ' -f1
}

all_outputs_exist() {
  local t name
  for t in "${TARGETS[@]}"; do
    name=${t%%|*}
    [[ -x $BIN_DIR/$name ]] || return 1
  done
  [[ -x $BIN_DIR/gateway-conformance.test ]] || return 1
  [[ -f $GATEWAY_API_OUT/VERSION && -f $KWOK_STAGES_OUT/VERSION ]]
}

# Version metadata the upstream Makefiles inject with -X; without it the
# binaries report v0.0.0-master (which breaks helm's kubeVersion checks).
ldflags_for() { # ldflags_for <name> <module folder>
  local name=$1 dir=$2 v
  case $dir in
    kube)
      v=$(modver kube k8s.io/kubernetes)
      local date major minor
      date=$(go -C "$TOOLS_DIR/kube" list -m -f '{{.Time.UTC.Format "2006-01-02T15:04:05Z"}}' k8s.io/kubernetes)
      major=${v#v}; major=${major%%.*}
      minor=${v#v"$major".}; minor=${minor%%.*}
      local pkg out=""
      for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
        out+=" -X $pkg.gitVersion=$v -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
        out+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$date"
      done
      printf '%s' "$out"
      ;;
    helm)
      v=$(modver helm helm.sh/helm/v3)
      local cg cmaj cmin
      cg=$(modver helm k8s.io/client-go)   # v0.37.0 -> Kubernetes 1.37
      cmaj=1; cmin=${cg#v0.}; cmin=${cmin%%.*}
      printf ' -X helm.sh/helm/v3/internal/version.version=%s' "$v"
      printf ' -X helm.sh/helm/v3/internal/version.gitTreeState=clean'
      printf ' -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=%s -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=%s' "$cmaj" "$cmin"
      printf ' -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=%s -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=%s' "$cmaj" "$cmin"
      ;;
    deck)
      v=$(modver deck github.com/kong/deck)
      printf ' -X github.com/kong/deck/cmd.VERSION=%s' "$v"
      ;;
    jaeger)
      # The Go module is tagged v1.x.y; the jaeger binary belongs to the v2 line
      # released with it, v2.(x-63).y (CHANGELOG.md: "v1.76.0 / v2.13.0").
      v=$(modver jaeger github.com/jaegertracing/jaeger)
      local minor=${v#v1.}; minor=${minor%%.*}
      printf ' -X github.com/jaegertracing/jaeger/internal/version.latestVersion=v2.%s.%s' \
        "$((minor - 63))" "${v##*.}"
      ;;
  esac
}

build_one() { # build_one <name> <module folder> <package>
  local name=$1 dir=$2 pkg=$3 start end tmp errlog
  tmp=$BIN_DIR/.$name.tmp
  errlog=$BIN_DIR/.$name.build.log
  start=$(date +%s)
  log "building $name ($pkg @ $(modver "$dir" "$(go -C "$TOOLS_DIR/$dir" list -f '{{.Module.Path}}' "$pkg")")) ..."
  if ! go -C "$TOOLS_DIR/$dir" build -trimpath -ldflags "-s -w$(ldflags_for "$name" "$dir")" \
      -o "$tmp" "$pkg" >"$errlog" 2>&1; then
    rm -f "$tmp"
    log "FAILED to build $name from module e2e/tools/$dir ($pkg). Go said:"
    tail -n 60 "$errlog" >&2
    die "build of $name failed (full log: $errlog)"
  fi
  mv -f "$tmp" "$BIN_DIR/$name"
  rm -f "$errlog"
  end=$(date +%s)
  printf '[build] %-24s %4ds  %s\n' "$name" "$((end - start))" "$(du -h "$BIN_DIR/$name" | cut -f1)" >&2
}

# The conformance suite is a Go test package: compiled, not built, into a test binary
# that hack/conformance.sh runs.
build_conformance() {
  local start=$SECONDS errlog=$BIN_DIR/.gateway-conformance.build.log
  log "building gateway-conformance.test (sigs.k8s.io/gateway-api/conformance @ $(modver conformance sigs.k8s.io/gateway-api/conformance)) ..."
  if ! go -C "$TOOLS_DIR/conformance" test -c -trimpath -ldflags "-s -w" \
      -o "$BIN_DIR/.gateway-conformance.test.tmp" . >"$errlog" 2>&1; then
    rm -f "$BIN_DIR/.gateway-conformance.test.tmp"
    log "FAILED to build the conformance suite from e2e/tools/conformance. Go said:"
    tail -n 60 "$errlog" >&2
    die "build of gateway-conformance.test failed (full log: $errlog)"
  fi
  mv -f "$BIN_DIR/.gateway-conformance.test.tmp" "$BIN_DIR/gateway-conformance.test"
  rm -f "$errlog"
  printf '[build] %-24s %4ds  %s\n' gateway-conformance.test "$((SECONDS - start))" \
    "$(du -h "$BIN_DIR/gateway-conformance.test" | cut -f1)" >&2
}

fetch_gateway_api_crds() {
  local v dir
  v=$(modver crds sigs.k8s.io/gateway-api)
  dir=$(go -C "$TOOLS_DIR/crds" mod download -json "sigs.k8s.io/gateway-api@$v" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
  [[ -d $dir/config/crd/experimental ]] || die "no config/crd/experimental in $dir"
  rm -rf "$GATEWAY_API_OUT"
  mkdir -p "$GATEWAY_API_OUT"
  # experimental is a superset of standard; kustomization.yaml is not a manifest.
  find "$dir/config/crd/experimental" -maxdepth 1 -name '*.yaml' ! -name kustomization.yaml \
    -exec install -m 0644 -t "$GATEWAY_API_OUT" {} +
  echo "$v" >"$GATEWAY_API_OUT/VERSION"
  log "gateway-api $v experimental CRDs -> $GATEWAY_API_OUT ($(find "$GATEWAY_API_OUT" -name '*.yaml' | wc -l) files)"
}

# The kwok binary ships no Stages of its own (kwokctl embeds and passes them);
# copy the upstream default ones from the pinned module: node-initialize, the
# lease-based node heartbeat and the "fast" pod lifecycle (ready, complete,
# delete). e2e/cluster hands each to kwok with --config.
fetch_kwok_stages() {
  local v dir f
  v=$(modver kwok sigs.k8s.io/kwok)
  dir=$(go -C "$TOOLS_DIR/kwok" list -m -f '{{.Dir}}' sigs.k8s.io/kwok)
  rm -rf "$KWOK_STAGES_OUT"
  mkdir -p "$KWOK_STAGES_OUT"
  for f in node/fast/node-initialize.yaml \
           node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
           pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml; do
    [[ -f $dir/kustomize/stage/$f ]] || die "kwok $v has no kustomize/stage/$f"
    install -m 0644 "$dir/kustomize/stage/$f" "$KWOK_STAGES_OUT/"
  done
  echo "$v" >"$KWOK_STAGES_OUT/VERSION"
  log "kwok $v default stages -> $KWOK_STAGES_OUT"
}

main() {
  check_prereqs
  mkdir -p "$BIN_DIR"
  # Two `e2e/cluster up` at once must not build into the same folder together.
  exec 9>"$BIN_DIR/.lock"
  flock 9
  local stamp
  stamp=$(compute_stamp)
  if [[ -z ${ONLY:-} && -z ${FORCE:-} && -f $STAMP_FILE && $(cat "$STAMP_FILE") == "$stamp" ]] && all_outputs_exist; then
    log "tools up to date in $BIN_DIR"
    return 0
  fi

  local t name dir pkg total_start=$SECONDS
  log "building into $BIN_DIR with $(go -C "$TOOLS_DIR/kube" env GOVERSION), $(nproc) cores"
  for t in "${TARGETS[@]}"; do
    IFS='|' read -r name dir pkg <<<"$t"
    if [[ -n ${ONLY:-} && " $ONLY " != *" $name "* ]]; then continue; fi
    build_one "$name" "$dir" "$pkg"
  done
  if [[ -z ${ONLY:-} || " $ONLY " == *" gateway-conformance.test "* ]]; then build_conformance; fi
  fetch_gateway_api_crds
  fetch_kwok_stages
  log "all done in $((SECONDS - total_start))s"
  if [[ -z ${ONLY:-} ]]; then
    echo "$stamp" >"$STAMP_FILE"
  fi
}

main "$@"
