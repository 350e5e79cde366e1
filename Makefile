# The only entry points: build, images, helm, chart-digests, test, up, down, bench, chaos, generate, manifests, lint, kube-bins.
SHELL := /usr/bin/env bash
.SHELLFLAGS := -eu -o pipefail -c

# Static, path-free builds, as `make images` builds what ships: lint, tests, the binaries tests
# and the local plane run, and the images then share one build cache (with cgo or without
# -trimpath every package compiles again, most of a cold make test's images test, 6 minutes,
# went to the second build of the core).
export GOFLAGS := -buildvcs=false -trimpath
export CGO_ENABLED := 0
CACHE ?= $(HOME)/.cache/kamaji
export KAMAJI_CACHE := $(CACHE)
TOOLS := $(CACHE)/tools
BIN := $(CURDIR)/bin

CONTROLLER_GEN_VERSION := v0.23.0
CONTROLLER_GEN := $(TOOLS)/controller-gen-$(CONTROLLER_GEN_VERSION)
PROTOC_GEN_GO_VERSION := v1.36.11
PROTOC_GEN_GO := $(TOOLS)/protoc-gen-go-$(PROTOC_GEN_GO_VERSION)
PROTOC_GEN_GO_GRPC_VERSION := v1.6.0
PROTOC_GEN_GO_GRPC := $(TOOLS)/protoc-gen-go-grpc-$(PROTOC_GEN_GO_GRPC_VERSION)

# Every module with Go packages (plugin stubs without code yet are skipped).
MODULES := $(shell for m in core sdk cmd cli bench charts images plugins/*; do find $$m -name '*.go' -print -quit | grep -q . && echo $$m; done)
# Modules outside go.work, vetted and tested alone (GOWORK=off) as their authors would: the
# third-party datastore plugin of docs/plugins/author-guide.md.
STANDALONE := examples/datastore-plugin

.PHONY: all
all: build

##@ Build

.PHONY: build
build: ## Build kamaji, the kubectl plugin (kubectl-kamaji) and every plugin into ./bin.
	@mkdir -p $(BIN)
	cd cmd && go build -o $(BIN)/kamaji ./kamaji
	cd cli && go build -o $(BIN)/kubectl-kamaji ./cmd/kubectl-kamaji
	@for p in plugins/*; do \
	  if [ -d $$p/cmd ]; then (cd $$p && GOWORK=off go build -o $(BIN)/kamaji-$$(basename $$p) ./cmd/...); fi; \
	done

# More tenant Kubernetes versions to build the control plane of: VERSIONS="v1.33 v1.30.14" (a
# minor alone means its newest patch release); KUBE_BINS_DRY_RUN=1 prints the plan only.
VERSIONS ?=
KUBE_BINS_DRY_RUN ?=

.PHONY: kube-bins
kube-bins: ## Build kube-apiserver & co (k8s.io/kubernetes), etcd, kine and konnectivity into the version-keyed cache; VERSIONS="v1.33" adds tenant versions.
	VERSIONS="$(VERSIONS)" KUBE_BINS_DRY_RUN="$(KUBE_BINS_DRY_RUN)" hack/kube-bins.sh

# Reference prefix of the images (ghcr.io/openhcp/kamaji:<cmd/VERSION>,
# ghcr.io/openhcp/kamaji-<plugin>:<plugins/<plugin>/VERSION>); IMAGE_PLATFORMS="linux/amd64,linux/arm64"
# makes each archive a multi-platform index (default: linux/amd64 and this host's architecture).
REGISTRY ?= ghcr.io/openhcp
IMAGE_PLATFORMS ?=

.PHONY: images
images: ## OCI image archives of kamaji and every plugin, no Docker: ./bin/images/<name>-<version>.oci.tar (docs/images.md); REGISTRY=... sets the prefix.
	cd images && go run . build --root $(CURDIR) --out $(BIN)/images --registry $(REGISTRY) $(if $(IMAGE_PLATFORMS),--platforms $(IMAGE_PLATFORMS))

.PHONY: helm
helm: ## Build the helm CLI (helm.sh/helm/v3) into the version-keyed cache, once.
	hack/helm.sh

.PHONY: chart-digests
chart-digests: ## Record the sha256 of each plugin binary of bin/images (make images) in charts/kamaji/files/plugin-digests.yaml.
	cd charts && go run ./internal/chartgen digests --root .. $$(ls $(BIN)/images/kamaji-*.oci.tar)

##@ Local plane

UP_ARGS ?=
# DataStores the plane hosts besides etcd: DATASTORES=etcd,etcd-2,mysql,postgresql,nats (or all) also
# builds their plugins (kine itself is in the cache with the other binaries).
DATASTORES ?= etcd
# Worker nodes of the first sample tenant (containerd, runc, the kubelet; hack/node-bins.sh).
WORKERS ?= 1
# The admin cluster's node: process (the process node) or kubelet (containerd and the kubelet).
NODE ?= process

.PHONY: up
up: ## The local plane: admin cluster, process node, etcd DataStore, the charts installed with helm (the manager as a pod), a sample tenant with a worker node (root). UP_ARGS="--tenants 3", DATASTORES=all, WORKERS=0, NODE=kubelet.
	@# Only what the plane runs, built side by side (the plan and an estimate first).
	hack/up-bins.sh "$(DATASTORES)" "$(WORKERS)" "$(NODE)"
	$(BIN)/kamaji local up --state-dir $(CURDIR)/.local --bin-dir $(BIN) --datastores $(DATASTORES) --workers $(WORKERS) --node $(NODE) $(UP_ARGS)

.PHONY: down
down: ## Stop the local plane and remove every trace of it (processes, namespaces, links, rules, state).
	@if [ -x $(BIN)/kamaji ]; then $(BIN)/kamaji local down --state-dir $(CURDIR)/.local; \
	else cd cmd && go run ./kamaji local down --state-dir $(CURDIR)/.local; fi

##@ Generate

$(CONTROLLER_GEN):
	@mkdir -p $(TOOLS)/tmp
	GOBIN=$(TOOLS)/tmp GOWORK=off go install sigs.k8s.io/controller-tools/cmd/controller-gen@$(CONTROLLER_GEN_VERSION)
	mv $(TOOLS)/tmp/controller-gen $@

.PHONY: generate
generate: $(CONTROLLER_GEN) ## Generate deepcopy code and the plugin protocol stubs.
	cd core && $(CONTROLLER_GEN) object paths=./api/...
	@if [ -f sdk/Makefile ]; then $(MAKE) -C sdk generate TOOLS=$(TOOLS); fi

.PHONY: manifests
manifests: $(CONTROLLER_GEN) ## Generate CRDs, RBAC and webhook configuration.
	cd core && $(CONTROLLER_GEN) crd:allowDangerousTypes=false rbac:roleName=kamaji-manager webhook \
	  paths=./... output:crd:artifacts:config=config/crd output:rbac:artifacts:config=config/rbac \
	  output:webhook:artifacts:config=config/webhook
	cd core && go run ./tools/apidocs ../docs/reference/api.md
	cd charts && go run ./internal/chartgen --root .. # CRDs, RBAC, webhooks, versions and READMEs of the charts

##@ Test

.PHONY: test
# Tenant versions the end-to-end suite runs besides the plane's (cmd/internal/local): built
# while the tests run (hack/test.sh).
TEST_VERSIONS := v1.33.13
# The previous minor (hack/kube-bins.sh's PREVIOUS): the upgrade tests start tenants and a worker there.
PREVIOUS_VERSION := v1.36.3

test: lint ## Everything CI runs: lint, generated files fresh, unit + integration tests.
	@# kube-apiserver and etcd, all that most modules' tests run; the other binaries build while those test (hack/test.sh).
	hack/kube-bins.sh kube-apiserver etcd
	hack/check-generated.sh
	cd bench && GOWORK=off go build -o /dev/null ./... # hack/bench.sh builds it alone: its go.sum must be complete
	hack/services.sh
	@# Every module's tests; the plane's other binaries, PREVIOUS_VERSION's, the worker nodes', helm and TEST_VERSIONS build meanwhile (see the script).
	MODULES="$(MODULES)" STANDALONE="$(STANDALONE)" TEST_VERSIONS="$(TEST_VERSIONS)" PREVIOUS_VERSION="$(PREVIOUS_VERSION)" hack/test.sh

.PHONY: bench
bench: ## Benchmarks against bench/baseline.txt (not part of test); BENCH_ARGS="--update" rewrites it.
	hack/bench.sh $(BENCH_ARGS)

# Scenarios of make chaos (default: all; hack/chaos.sh --list), e.g. CHAOS_SCENARIOS="partition".
CHAOS_SCENARIOS ?=

.PHONY: chaos
chaos: ## The chaos suite (not part of test): faults injected into the manager, plugins and DataStore, figures and verdicts; CHAOS_TCPS=5 for a quick run.
	hack/chaos.sh $(CHAOS_SCENARIOS)

.PHONY: lint
lint: ## gofmt and go vet on every module.
	@bad=$$(gofmt -l $(MODULES) $(STANDALONE)); if [ -n "$$bad" ]; then echo "gofmt needed:"; echo "$$bad"; exit 1; fi
	@for m in $(MODULES); do (cd $$m && go vet ./...); done
	@for m in $(STANDALONE); do (cd $$m && GOWORK=off go vet ./...); done

.PHONY: help
help:
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  %-12s %s\n", $$1, $$2}'
