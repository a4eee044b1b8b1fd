#!/usr/bin/env bash
# filelog receiver: records per CPU-second through the container parser into a counting sink
# (100- and 1000-byte containerd lines), and peak RSS with 1000 files open. Prints figures.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release --locked -p kotel-filelog --example filelog_bench
bin=target/release/examples/filelog_bench
"$bin" throughput 100 2000000
"$bin" throughput 1000 300000
"$bin" rss 1000
