#!/usr/bin/env bash
# `make bench`: builds kotelcol in release mode and runs every benchmark script beside this one
# (bench-*.sh), each printing its own figures. Figures are printed, never asserted.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release --locked -p kotelcol --bins --examples
status=0
for b in collector/bench/bench-*.sh; do
  [ -e "$b" ] || continue
  echo "=== $(basename "$b" .sh)"
  bash "$b" || { echo "!!! $b failed"; status=1; }
done
exit $status
