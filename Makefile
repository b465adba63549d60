# kongress developer entry points.
#
# Local cluster tooling (see e2e/README.md): everything is built from pinned Go
# modules into e2e/.bin/ and clusters live in e2e/.clusters/NAME/.

SHELL := /usr/bin/env bash
NAME ?= default

.PHONY: help run run-down test lint unit e2e conformance conformance-pass image bench bench-push crds tools cluster-up cluster-down cluster-env cluster-status cluster-smoke cluster-list

help:
	@echo "make run                     local cluster + kongress + the sample Gateway (config/samples/)"
	@echo "make run-down                stop what make run started"
	@echo "make test                    lint, unit tests, e2e tests, conformance (expected passes) and the image (builds the cluster tools on first use)"
	@echo "make lint | unit | e2e | conformance-pass | image  the parts of make test"
	@echo "make conformance             Gateway API v1.5.1 conformance, the status-only tests (e2e/tools/conformance/tests.txt)"
	@echo "make image                   static release build → OCI image layout with umoci, checked (target/image/)"
	@echo "make bench                   criterion benchmarks of the core and of route translation (BENCHMARKS.md)"
	@echo "make bench-push              push latency on the local cluster (route write → config on every stand-in)"
	@echo "make crds                    regenerate crds/ from the Rust types"
	@echo "make tools                   build etcd, kube-*, kubectl, kwok, helm, deck into e2e/.bin/"
	@echo "make cluster-up   [NAME=x]   start local cluster NAME (default: default)"
	@echo "make cluster-down [NAME=x]   stop it and delete its state (KEEP_LOGS=1 keeps logs)"
	@echo "make cluster-env  [NAME=x]   print 'export KUBECONFIG=...'"
	@echo "make cluster-status [NAME=x] | cluster-smoke [NAME=x] | cluster-list"

tools:
	e2e/tools/build.sh

cluster-up:
	e2e/cluster up $(NAME)

cluster-down:
	e2e/cluster down $(NAME)

cluster-env:
	@e2e/cluster env $(NAME)

cluster-status:
	e2e/cluster status $(NAME)

cluster-smoke:
	e2e/cluster smoke $(NAME)

cluster-list:
	@e2e/cluster list

run:
	hack/run.sh

run-down:
	hack/run.sh down

test: lint unit e2e conformance-pass image

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

unit:
	cargo test --workspace --exclude kongress-e2e
	# The e2e crate's own unit tests (the strict OpenMetrics parser, the stand-in's checks) need no cluster.
	cargo test -p kongress-e2e --lib

e2e: tools
	hack/e2e.sh

conformance: tools
	hack/e2e.sh conformance

# The conformance tests expected to pass (the expected failures wait minutes each for a status that cannot come).
conformance-pass: tools
	CONFORMANCE_OUTCOMES=pass hack/e2e.sh conformance

image:
	hack/image.sh

bench:
	cargo bench --bench core --bench translate

bench-push: tools
	hack/e2e.sh bench

crds:
	cargo run --quiet --bin kongress -- crds > crds/kongproxies.kongress.dev.yaml
	cp crds/kongproxies.kongress.dev.yaml charts/kongress/crds/
