#!/usr/bin/env bash
# `make demo`: the whole path on this machine. Brings up the local cluster with the real node (or
# uses $KUBECONFIG when it names a cluster that has the images, such as `make kind-up`'s),
# installs the operator in the cluster, applies the examples, starts two workloads, and prints a
# live summary of what reaches the backend. Ctrl-C removes everything it made.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$E2E_REPO_ROOT"

NS=${DEMO_NAMESPACE:-kotel-demo}
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
started_cluster=0
if [[ -z ${KUBECONFIG:-} ]]; then
  bash e2e/scripts/node-deps.sh
  bash e2e/scripts/build-tools.sh
  E2E_REAL_NODE=1 bash e2e/scripts/cluster-up.sh
  export KUBECONFIG=$E2E_DIR/kubeconfig
  started_cluster=1
  overlay=e2e/overlays/real-node
  node_ip=$E2E_NODE_IP
  # The real node is tainted so the test suites choose what lands there; here, everything does.
  placement='{"nodeSelector": {"kotel.dev/real-node": "true"}, "tolerations": [{"key": "kotel.dev/real-node", "operator": "Exists", "effect": "NoSchedule"}]}'
else
  overlay=manifests/base
  node_ip=${DEMO_BACKEND_IP:?set DEMO_BACKEND_IP to an address of this machine the cluster nodes reach}
  placement='{}'
fi
KUBECTL=$(e2e_kubectl); [[ -n $KUBECTL ]] || e2e_die "no kubectl"
kc() { "$KUBECTL" "$@"; }
backend_addr=$node_ip:${DEMO_BACKEND_PORT:-14317}

cleanup() {
  trap - EXIT INT TERM
  e2e_log "cleaning up"
  kc delete namespace "$NS" --ignore-not-found --wait=true >/dev/null 2>&1 || true
  kc -n kotel-system delete deployment kotel-operator --ignore-not-found >/dev/null 2>&1 || true
  [[ -n ${backend_pid:-} ]] && kill "$backend_pid" 2>/dev/null || true
  if [[ $started_cluster == 1 && ${DEMO_KEEP_CLUSTER:-0} != 1 ]]; then bash e2e/scripts/cluster-down.sh; fi
}
trap cleanup EXIT INT TERM

t0=$(date +%s)
cargo build --release --locked -p kotel-e2e --bin kotel-demo-backend
target=${CARGO_TARGET_DIR:-$E2E_REPO_ROOT/target}
"$target/release/kotel-demo-backend" "$backend_addr" "${DEMO_INTERVAL:-5}" &
backend_pid=$!

e2e_log "installing the operator ($overlay)"
kc apply --server-side --force-conflicts -k "$overlay" >/dev/null
kc -n kotel-system rollout status deployment/kotel-operator --timeout=180s
kc create namespace "$NS" --dry-run=client -o yaml | kc apply -f - >/dev/null

# The examples as they are, with the backend as their exporter (no cluster DNS here) and the
# placement above; k8s-attributes uses the host network so apps reach it on their node's address.
for f in manifests/examples/*.yaml; do
  kc create --dry-run=client -o json -f "$f" | python3 -c '
import json, sys
ns, backend, placement = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
doc = json.load(sys.stdin)
doc["metadata"]["namespace"] = ns
exp = doc["spec"]["config"].get("exporters", {})
if "otlp" in exp:
    exp["otlp"]["endpoint"] = backend
for k, v in placement.items():
    if k == "tolerations" and "tolerations" in doc["spec"]:
        continue
    doc["spec"][k] = v
if doc["metadata"]["name"] == "k8s-attributes":
    doc["spec"]["hostNetwork"] = True
json.dump(doc, sys.stdout)
' "$NS" "$backend_addr" "$placement" | kc apply --server-side -f - >/dev/null
  e2e_log "applied $f"
done

for app in demo-a demo-b; do
  python3 - "$NS" "$app" "$version" "$placement" <<'PY' | kc apply -f - >/dev/null
import json, sys
ns, app, version, placement = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
spec = {
    "terminationGracePeriodSeconds": 2,
    "containers": [{
        "name": "app",
        "image": f"kotel.local/e2e-workload:{version}",
        "imagePullPolicy": "IfNotPresent",
        "env": [
            {"name": "NODE_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}},
            {"name": "POD_UID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.uid"}}},
            {"name": "WORKLOAD_RUN", "value": app},
            {"name": "WORKLOAD_LINES", "value": "1000000000"},
            {"name": "WORKLOAD_RATE", "value": "20"},
            {"name": "WORKLOAD_OTLP_ITEMS", "value": "1000000000"},
            {"name": "WORKLOAD_OTLP_RATE", "value": "10"},
            {"name": "OTEL_EXPORTER_OTLP_ENDPOINT", "value": "http://$(NODE_IP):4317"},
        ],
    }],
}
spec.update(placement)
print(json.dumps({
    "apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": app, "namespace": ns},
    "spec": {"replicas": 1, "selector": {"matchLabels": {"app": app}},
             "template": {"metadata": {"labels": {"app": app, "team": "demo"}}, "spec": spec}},
}))
PY
done
kc -n "$NS" wait --for=condition=Ready otelcol --all --timeout=180s || kc -n "$NS" get otelcol,pods -o wide
kc -n "$NS" get otelcol
e2e_log "demo up in $(( $(date +%s) - t0 ))s; the summary follows (Ctrl-C stops and cleans up)"
wait "$backend_pid"
