#!/usr/bin/env bash
# The end-to-end suite. Against $KUBECONFIG when it is set (any cluster: kind, a real one);
# otherwise starts the local control plane (cluster-up.sh) and uses .e2e/kubeconfig.
# E2E_KEEP_CLUSTER=0 stops a cluster this script started when the suite ends (default: keep it,
# so reruns are fast; `make cluster-down` stops it).
# Extra arguments go to the test binary, e.g. `run-e2e.sh daemonset` to run matching tests.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$E2E_REPO_ROOT"

started=0
if [[ -z ${KUBECONFIG:-} ]]; then
  bash e2e/scripts/cluster-up.sh
  export KUBECONFIG=$E2E_DIR/kubeconfig
  started=1
  if [[ ${E2E_KEEP_CLUSTER:-1} == 0 ]]; then trap 'bash e2e/scripts/cluster-down.sh' EXIT; fi
fi
# Tools the tests shell out to: kubectl (PATH or built) and helm (built).
E2E_KUBECTL=${E2E_KUBECTL:-$(e2e_kubectl)}
[[ -n $E2E_KUBECTL ]] || e2e_die "no kubectl >= 1.30 (run: E2E_BUILD_KUBECTL=1 make e2e-tools)"
export E2E_KUBECTL
if [[ -z ${E2E_HELM:-} ]]; then
  if [[ ! -x $E2E_HELM_BIN/helm ]] && ! command -v helm >/dev/null; then bash e2e/scripts/build-tools.sh; fi
  if [[ -x $E2E_HELM_BIN/helm ]]; then E2E_HELM=$E2E_HELM_BIN/helm; else E2E_HELM=$(command -v helm); fi
fi
export E2E_HELM
# The gitops suite: gitops-check (kstatus, Argo CD's Lua health) and the Argo CD and Flux CRDs,
# both from build-tools.sh (seconds; the binary is keyed by its sources, so an edit rebuilds it).
if [[ -z ${E2E_GITOPS_CHECK:-} || -z ${E2E_GITOPS_CRDS:-} ]]; then
  if [[ ! -x $E2E_GITOPS_CHECK_BIN/gitops-check || ! -d $E2E_GITOPS_CRDS_DIR ]]; then
    bash e2e/scripts/build-tools.sh gitops
  fi
fi
export E2E_GITOPS_CHECK=${E2E_GITOPS_CHECK:-$E2E_GITOPS_CHECK_BIN/gitops-check}
export E2E_GITOPS_CRDS=${E2E_GITOPS_CRDS:-$E2E_GITOPS_CRDS_DIR}

e2e_log "e2e against $KUBECONFIG ($("$E2E_KUBECTL" version 2>/dev/null | grep -i server || echo 'server version unknown'))"
# The suite runs the operator binary from target/; build it first so its build time is not
# charged to the first test's deadline.
cargo build -p kotel-operator
export E2E_OPERATOR_BIN=${E2E_OPERATOR_BIN:-${CARGO_TARGET_DIR:-$E2E_REPO_ROOT/target}/debug/kotel-operator}
export RUST_LIB_BACKTRACE=${RUST_LIB_BACKTRACE:-0}   # anyhow errors print their context chain, not a backtrace
start=$(date +%s)
mkdir -p "$E2E_DIR/logs"
suite_log=$E2E_DIR/logs/e2e-suite.log
rc=0
# The kwok suites run the operator as a local process; an in-cluster one (left by an interrupted
# real-node run) would reconcile their resources too.
remove_cluster_operator() {
  "$E2E_KUBECTL" -n kotel-system delete deployment kotel-operator --ignore-not-found --wait=true >/dev/null 2>&1 || true
  "$E2E_KUBECTL" -n kotel-system delete lease kotel-operator-leader --ignore-not-found >/dev/null 2>&1 || true
}
remove_cluster_operator
cargo test -p kotel-e2e --features e2e --test operator -- --test-threads=1 --nocapture "$@" 2>&1 | tee "$suite_log" || rc=$?
# GitOps (issue 14): the examples in manifests/examples/gitops pass a server-side dry run against
# the Argo CD and Flux CRDs; kstatus and the Argo CD health check follow a collector's life.
cargo test -p kotel-e2e --features e2e --test gitops -- --test-threads=1 --nocapture "$@" 2>&1 | tee -a "$suite_log" || rc=$?
# The k8sattributes processor against the same API server (pods on one node enrich data, pods
# on another never enter its cache, an API outage), then inside kotelcol (OTLP in, enriched
# OTLP out). Skipped when a test filter was given.
if [[ $# == 0 ]]; then
  cargo test -p kotel-k8sattributes --features e2e --test api_server -- --test-threads=1 --nocapture 2>&1 \
    | tee -a "$suite_log" || rc=$?
  cargo test -p kotelcol --features e2e --test k8s_e2e -- --test-threads=1 2>&1 \
    | tee -a "$suite_log" || rc=$?
fi
# Tier 4: the real node (node-up.sh, started by cluster-up.sh where the machine can run it). The
# operator runs in the cluster from manifests/base; the suite removes it when done.
real_node=$("$E2E_KUBECTL" get nodes -l kotel.dev/real-node=true -o name 2>/dev/null | head -1)
if [[ -n $real_node ]]; then
  export E2E_CONTAINERD_SOCK
  cargo test -p kotel-e2e --features e2e --test real_node -- --test-threads=1 --nocapture "$@" 2>&1 \
    | tee -a "$suite_log" || rc=$?
  if [[ $rc != 0 ]]; then
    echo "--- operator pod logs ---"; "$E2E_KUBECTL" -n kotel-system logs deployment/kotel-operator --tail=40 2>&1 || true
  fi
  remove_cluster_operator
elif [[ ${E2E_REAL_NODE:-auto} == 1 ]]; then
  e2e_log "E2E_REAL_NODE=1 but the cluster has no real node (label kotel.dev/real-node=true)"
  rc=1
else
  e2e_log "no real node in this cluster: the real-node suite is skipped (make node-up)"
fi
secs=$(( $(date +%s) - start ))
echo "--- phase timings (benchmark figures, not assertions) ---"
grep '^TIMING' "$suite_log" | sed 's/^TIMING /  /' || true
if [[ $rc != 0 ]]; then
  e2e_log "e2e suite FAILED after ${secs}s (output: $suite_log). Control-plane logs: $E2E_DIR/logs/"
  for f in $(ls -t "$E2E_DIR"/logs/operator-*.log "$E2E_DIR"/logs/e2e-*-[ab].log 2>/dev/null | head -2); do
    echo "--- last lines of $f ---"; tail -n 40 "$f"
  done
  exit "$rc"
fi
e2e_log "e2e suite passed in ${secs}s (cluster started by this run: $([[ $started == 1 ]] && echo yes || echo no))"
