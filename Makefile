# kotel: every target says what it does after `##`; `make help` lists them.
SHELL := /bin/bash
CARGO ?= cargo
KUBECONFIG_E2E ?= $(CURDIR)/.e2e/kubeconfig

.DEFAULT_GOAL := help

.PHONY: help
help: ## List every target with what it does
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  %-14s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: build
build: ## Build kotel-operator and kotelcol (release)
	$(CARGO) build --release -p kotel-operator -p kotelcol

.PHONY: run
run: ## Run kotelcol with its embedded default config (OTLP on localhost:4317/4318 -> debug)
	$(CARGO) run --release -p kotelcol

.PHONY: test
test: ## Unit and component tests of the whole workspace (no cluster needed)
	$(CARGO) test --workspace --locked
	cd e2e/gitops-check && go test ./...

.PHONY: gitops-check
gitops-check: ## Test the Argo CD health check (manifests/argocd) and the kstatus contract (needs Go)
	cd e2e/gitops-check && go test ./...

.PHONY: fuzz
fuzz: ## Fuzz every parser of untrusted input, FUZZ_SECONDS (60) each (cargo-fuzz, nightly); commit fuzz/corpus and fuzz/artifacts
	bash fuzz/run.sh

.PHONY: lint
lint: ## rustfmt check and clippy with warnings as errors
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings
	# The end-to-end tests compile only with their feature.
	$(CARGO) clippy -p kotel-e2e -p kotelcol -p kotel-k8sattributes --features kotel-e2e/e2e,kotelcol/e2e,kotel-k8sattributes/e2e --all-targets --locked -- -D warnings

.PHONY: fmt
fmt: ## Format the workspace
	$(CARGO) fmt --all

.PHONY: crds
crds: ## Regenerate crds/ from the Rust types (a test fails when it is stale)
	$(CARGO) run -q -p kotel-operator -- crd > crds/opentelemetry.io_opentelemetrycollectors.yaml
	cp crds/opentelemetry.io_opentelemetrycollectors.yaml manifests/base/crd.yaml
	cp crds/opentelemetry.io_opentelemetrycollectors.yaml manifests/helm/kotel-operator/crds/opentelemetry.io_opentelemetrycollectors.yaml

.PHONY: images
images: ## Build the container images (needs Docker)
	docker build -f operator/Dockerfile -t kotel-operator:dev .
	docker build -f collector/Dockerfile -t kotelcol:dev .

.PHONY: e2e-tools
e2e-tools: ## Build the e2e control plane and kubelet (and etcd, kwok, helm) into the cache; install containerd, runc, CNI plugins
	bash e2e/scripts/node-deps.sh
	bash e2e/scripts/build-tools.sh

.PHONY: cluster-up
cluster-up: ## Start a local control plane with fake nodes and the real node; kubeconfig at .e2e/kubeconfig
	bash e2e/scripts/cluster-up.sh

.PHONY: cluster-down
cluster-down: ## Stop everything cluster-up started, the real node included
	bash e2e/scripts/cluster-down.sh

.PHONY: node-up
node-up: ## Start the real node (containerd + kubelet as node 127.0.0.1) in the running local cluster
	bash e2e/scripts/node-up.sh

.PHONY: node-down
node-down: ## Remove the real node: pods, processes, mounts, cgroups, network, files
	bash e2e/scripts/node-down.sh

.PHONY: image-archives
image-archives: ## Pack the release binaries into image archives (target/images/*.tar), no Docker needed
	bash e2e/scripts/images.sh

.PHONY: demo
demo: ## The whole path live: cluster with a real node, operator, examples, workloads, a summary of what arrives; Ctrl-C cleans up
	bash e2e/scripts/demo.sh

.PHONY: e2e
e2e: ## End-to-end suite against KUBECONFIG (starts the local control plane when KUBECONFIG is unset)
	bash e2e/scripts/run-e2e.sh

.PHONY: kind-up
kind-up: ## Laptop path: a kind cluster with the kotel images loaded (needs Docker and kind)
	bash e2e/scripts/kind-up.sh

.PHONY: bench
bench: ## Benchmarks: throughput per CPU-second and memory, against the Go collector where one exists
	bash collector/bench/run.sh
