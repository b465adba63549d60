// Pins the Gateway API release whose CRDs (config/crd/experimental, a superset
// of the standard channel) e2e/cluster installs. Nothing here is compiled:
// build.sh asks `go mod download -json` for the module's folder.
module kongress/e2e/tools/crds

go 1.26.0

require sigs.k8s.io/gateway-api v1.5.1
