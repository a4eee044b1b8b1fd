#!/usr/bin/env bash
# kubeletstats: CPU time and allocations per scrape (parse /stats/summary + convert to OTLP) for a
# node with 110 pods x 3 containers. Figures are printed, never asserted.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo run --release --locked -q -p kotel-kubeletstats --example kubeletstats_bench
