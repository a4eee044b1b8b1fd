#!/usr/bin/env bash
# make fuzz: each target under libFuzzer for FUZZ_SECONDS (default 60), one after the other (two
# cores: one fuzzer at a time). New corpus entries land in fuzz/corpus/<target>/ and crashing
# inputs in fuzz/artifacts/<target>/; commit both (`make test` replays them on stable).
#   fuzz/run.sh [target...]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${FUZZ_SECONDS:-60}
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
targets=("$@")
if [[ ${#targets[@]} == 0 ]]; then
  mapfile -t targets < <(sed -n 's/^name = "\([a-z_]*\)"$/\1/p' fuzz/targets/Cargo.toml | grep -v '^kotel')
fi
for t in "${targets[@]}"; do
  mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t"
  echo "== $t: ${seconds}s"
  # A finding stops this target (its input is in fuzz/artifacts/$t); the others still run.
  cargo +nightly fuzz run --fuzz-dir fuzz/targets "$t" "fuzz/corpus/$t" -- \
    -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -max_len=65536 \
    -artifact_prefix="fuzz/artifacts/$t/" -print_final_stats=1 2>&1 \
    | grep -E '^(#[0-9]+ +DONE|stat::number_of_executed_units|stat::peak_rss_mb|==[0-9]+==|SUMMARY|.*panicked)' || true
done
