#!/usr/bin/env bash
# k8sattributes: enrichment CPU cost per span relative to pass-through, and memory per cached pod
# with 110 pods on the node and 10,000 in the cluster. No cluster needed: the pods are generated
# as the API server would send them and fed through the same conversion the watch uses.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo run --release --locked -q -p kotel-k8sattributes --example k8sattributes_bench
