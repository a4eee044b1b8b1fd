#!/usr/bin/env bash
# Laptop path (needs Docker and kind): a kind cluster with the kotel images loaded from the image
# archives `make image-archives` packs (no Dockerfile build, nothing pulled), and the operator
# installed from manifests/base unchanged: the archives carry the names the manifests use
# (ghcr.io/kotel-dev/kotel-operator:<version>, ghcr.io/kotel-dev/kotelcol:<version>). Then
# `KUBECONFIG=.e2e/kind-kubeconfig make e2e` runs the same suite against it.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$E2E_REPO_ROOT"

CLUSTER=${KIND_CLUSTER:-kotel}
NODE_IMAGE=${KIND_NODE_IMAGE:-kindest/node:v${E2E_K8S_VERSION%.*}.0}   # k8s minor the suite targets
command -v docker >/dev/null || e2e_die "kind needs Docker; without it use: make cluster-up (a real node without Docker)"
command -v kind >/dev/null || e2e_die "kind not found (https://kind.sigs.k8s.io/docs/user/quick-start/#installation)"
KUBECTL=$(e2e_kubectl); [[ -n $KUBECTL ]] || e2e_die "kubectl >= 1.30 is required"

mkdir -p "$E2E_DIR"
if ! kind get clusters | grep -qx "$CLUSTER"; then
  kind create cluster --name "$CLUSTER" --image "$NODE_IMAGE" --wait 120s
fi
kind get kubeconfig --name "$CLUSTER" >"$E2E_DIR/kind-kubeconfig"
export KUBECONFIG=$E2E_DIR/kind-kubeconfig

bash e2e/scripts/images.sh    # E2E_IMAGE_PROFILE=dev packs the debug binaries (faster to build)
for archive in kotel-operator kotelcol e2e-workload; do
  kind load image-archive --name "$CLUSTER" "$E2E_IMAGES_DIR/$archive.tar"
done
"$KUBECTL" apply --server-side -k manifests/base
"$KUBECTL" -n kotel-system rollout status deployment/kotel-operator --timeout=120s
e2e_log "kind cluster '$CLUSTER' ready: export KUBECONFIG=$KUBECONFIG; kubectl apply -f manifests/examples/otlp.yaml; make e2e"
