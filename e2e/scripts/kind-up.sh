#!/usr/bin/env bash
# Laptop path (needs Docker and kind): a kind cluster with the kotel images loaded and the
# operator installed from manifests/base, running the local images. Then
# `KUBECONFIG=.e2e/kind-kubeconfig E2E_COLLECTOR_IMAGE=kotelcol:dev make e2e` runs the same suite
# against it (the suite scales the in-cluster operator to 0 and runs its own).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$E2E_REPO_ROOT"

CLUSTER=${KIND_CLUSTER:-kotel}
NODE_IMAGE=${KIND_NODE_IMAGE:-kindest/node:v${E2E_K8S_VERSION%.*}.0}   # k8s minor the suite targets
command -v docker >/dev/null || e2e_die "kind needs Docker; without it use: make cluster-up"
command -v kind >/dev/null || e2e_die "kind not found (https://kind.sigs.k8s.io/docs/user/quick-start/#installation)"
KUBECTL=$(e2e_kubectl); [[ -n $KUBECTL ]] || e2e_die "kubectl >= 1.30 is required"

mkdir -p "$E2E_DIR"
if ! kind get clusters | grep -qx "$CLUSTER"; then
  kind create cluster --name "$CLUSTER" --image "$NODE_IMAGE" --wait 120s
fi
kind get kubeconfig --name "$CLUSTER" >"$E2E_DIR/kind-kubeconfig"
export KUBECONFIG=$E2E_DIR/kind-kubeconfig

make images
kind load docker-image --name "$CLUSTER" kotel-operator:dev kotelcol:dev
"$KUBECTL" apply --server-side -k manifests/base
"$KUBECTL" -n kotel-system set image deployment/kotel-operator '*=kotel-operator:dev'
"$KUBECTL" -n kotel-system set env deployment/kotel-operator COLLECTOR_IMAGE=kotelcol:dev
"$KUBECTL" -n kotel-system rollout status deployment/kotel-operator --timeout=120s
e2e_log "kind cluster '$CLUSTER' ready: export KUBECONFIG=$KUBECONFIG E2E_COLLECTOR_IMAGE=kotelcol:dev; make e2e"
