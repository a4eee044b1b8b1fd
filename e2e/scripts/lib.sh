# Shared settings for the e2e scripts: pinned tool versions and where things live.
# Sourced, not executed. Every value can be overridden from the environment.

E2E_K8S_VERSION=${E2E_K8S_VERSION:-1.33.13}   # matches k8s-openapi feature v1_33
E2E_ETCD_VERSION=${E2E_ETCD_VERSION:-3.6.16}
E2E_KWOK_VERSION=${E2E_KWOK_VERSION:-0.7.0}   # 0.7 has built-in node/pod stages; 0.8 needs stage configs
E2E_HELM_VERSION=${E2E_HELM_VERSION:-3.22.0}
# GitOps CRDs (Application, GitRepository, Kustomization) for the gitops suite's dry run, taken
# from these Go modules. Argo CD 3.6 and Flux's controllers 1.10 declare `go 1.27`.
E2E_ARGOCD_VERSION=${E2E_ARGOCD_VERSION:-3.5.7}
E2E_FLUX_KUSTOMIZE_VERSION=${E2E_FLUX_KUSTOMIZE_VERSION:-1.9.6}
E2E_FLUX_SOURCE_VERSION=${E2E_FLUX_SOURCE_VERSION:-1.9.6}

KOTEL_E2E_CACHE=${KOTEL_E2E_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kotel-e2e}
E2E_REPO_ROOT=${E2E_REPO_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
E2E_DIR=${E2E_DIR:-$E2E_REPO_ROOT/.e2e}

E2E_K8S_BIN=$KOTEL_E2E_CACHE/k8s-v$E2E_K8S_VERSION
E2E_ETCD_BIN=$KOTEL_E2E_CACHE/etcd-v$E2E_ETCD_VERSION
E2E_KWOK_BIN=$KOTEL_E2E_CACHE/kwok-v$E2E_KWOK_VERSION
E2E_HELM_BIN=$KOTEL_E2E_CACHE/helm-v$E2E_HELM_VERSION
E2E_GITOPS_CRDS_DIR=$KOTEL_E2E_CACHE/gitops-crds-argocd-v$E2E_ARGOCD_VERSION-kustomize-v$E2E_FLUX_KUSTOMIZE_VERSION-source-v$E2E_FLUX_SOURCE_VERSION
# gitops-check (kstatus and Argo CD's Lua health) is built from this repository, so it is keyed
# by its sources rather than a version: an edit builds a new one, a checkout of old sources finds
# its binary again.
E2E_GITOPS_CHECK_SRC=$E2E_REPO_ROOT/e2e/gitops-check
E2E_GITOPS_CHECK_HASH=$(cat "$E2E_GITOPS_CHECK_SRC/go.mod" "$E2E_GITOPS_CHECK_SRC/go.sum" "$E2E_GITOPS_CHECK_SRC/main.go" 2>/dev/null \
  | sha256sum | cut -c1-16)
E2E_GITOPS_CHECK_BIN=$KOTEL_E2E_CACHE/gitops-check-$E2E_GITOPS_CHECK_HASH

e2e_log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
e2e_die() { printf '[%s] ERROR: %s\n' "$(date +%H:%M:%S)" "$*" >&2; exit 1; }

# kubectl: the one on PATH when it is new enough (>= 1.30), else the one build-tools.sh built.
e2e_kubectl() {
  if [[ -n ${E2E_KUBECTL:-} ]]; then echo "$E2E_KUBECTL"; return; fi
  local k
  k=$(command -v kubectl 2>/dev/null || true)
  if [[ -n $k ]]; then
    local minor
    minor=$("$k" version --client -o json 2>/dev/null | sed -n 's/.*"minor": *"\([0-9]*\).*/\1/p' | head -1)
    if [[ -n $minor && $minor -ge 30 ]]; then echo "$k"; return; fi
  fi
  if [[ -x $E2E_K8S_BIN/kubectl ]]; then echo "$E2E_K8S_BIN/kubectl"; return; fi
  echo ""
}

# ---- the real node (node-up.sh / node-down.sh) ------------------------------------------------
# One kubelet plus Debian's containerd and runc, registered as a node beside kwok's.
E2E_NODE_ROOT=${E2E_NODE_ROOT:-/var/lib/kotel-e2e-node}    # containerd and kubelet state
E2E_NODE_RUN=${E2E_NODE_RUN:-/run/kotel-e2e-node}          # sockets, runc state
E2E_NODE_BRIDGE=${E2E_NODE_BRIDGE:-kotel-cni0}
E2E_NODE_POD_CIDR=${E2E_NODE_POD_CIDR:-10.245.0.0/24}     # real pods; the bridge holds .1
E2E_NODE_GATEWAY=${E2E_NODE_GATEWAY:-10.245.0.1}
# The node's address is the bridge's host side: local to this machine, yet reachable from pods,
# so `status.hostIP` works for pod-network pods as on a real cluster (the kubelet at
# ${K8S_NODE_IP}:10250, host ports) and the API server's node proxy accepts it (not loopback).
E2E_NODE_IP=${E2E_NODE_IP:-$E2E_NODE_GATEWAY}
E2E_NODE_NAME=${E2E_NODE_NAME:-$E2E_NODE_IP}   # an IP: a name would be looked up in DNS
E2E_SERVICE_CIDR=${E2E_SERVICE_CIDR:-10.96.0.0/16}
E2E_KUBERNETES_SERVICE_IP=${E2E_KUBERNETES_SERVICE_IP:-10.96.0.1}
E2E_NODE_TAINT=kotel.dev/real-node
E2E_CONTAINERD_SOCK=$E2E_NODE_RUN/containerd/containerd.sock
E2E_IMAGES_DIR=${E2E_IMAGES_DIR:-$E2E_REPO_ROOT/target/images}

# Whether this machine can run the real node: containerd, runc, the CNI plugins and the kubelet.
e2e_node_possible() {
  command -v containerd >/dev/null && command -v runc >/dev/null && [[ -x /usr/lib/cni/bridge ]] \
    && [[ -x $E2E_K8S_BIN/kubelet ]] && [[ $(id -u) == 0 ]]
}
