#!/usr/bin/env bash
# Container images without Docker: builds the release binaries and packs each, with the shared
# libraries it links, into an image archive (OCI layout plus docker manifest.json) under
# target/images/. The same archives load into kind (`kind load image-archive`) or Docker.
#   images.sh            build and pack
#   images.sh --import   also import them into the real node's containerd (node-up.sh does this)
# The names are the ones the manifests already use, so nothing is rewritten and nothing pulled:
#   ghcr.io/kotel-dev/kotel-operator:<version>, ghcr.io/kotel-dev/kotelcol:<version>,
#   kotel.local/e2e-workload:<version> and kotel.local/pause:1 (the pod sandbox).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$E2E_REPO_ROOT"

version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
out=$E2E_IMAGES_DIR
mkdir -p "$out"
target=${CARGO_TARGET_DIR:-$E2E_REPO_ROOT/target}

# E2E_IMAGE_PROFILE=dev packs the dev binaries instead (CI: their build reuses most of what
# `make test` compiled, where a release build with LTO costs ~12 cold minutes on 2 cores; the
# suites test behaviour, not speed).
profile=${E2E_IMAGE_PROFILE:-release}
case $profile in
  release) build_flags=(--release); bin_dir=$target/release ;;
  dev) build_flags=(); bin_dir=$target/debug ;;
  *) e2e_die "E2E_IMAGE_PROFILE must be release or dev, not $profile" ;;
esac

start=$(date +%s)
cargo build "${build_flags[@]}" --locked -p kotelcol -p kotel-operator -p kotel-e2e-workload
gcc -static -O2 -o "$out/pause" e2e/images/pause.c
# Images carry the binaries without their line tables (the release profile keeps them for
# backtraces on developer machines); a third of the size.
for b in kotel-operator kotelcol kotel-e2e-workload; do
  objcopy --strip-debug "$bin_dir/$b" "$out/$b"
done

pack=(python3 e2e/images/oci-pack.py)
"${pack[@]}" "$out/kotel-operator.tar" "ghcr.io/kotel-dev/kotel-operator:$version" "$out/kotel-operator" \
  --user 65532:65532 --cmd run
"${pack[@]}" "$out/kotelcol.tar" "ghcr.io/kotel-dev/kotelcol:$version" "$out/kotelcol" \
  --user 65532:65532 --cmd=--config=/conf/collector.yaml
"${pack[@]}" "$out/e2e-workload.tar" "kotel.local/e2e-workload:$version" "$out/kotel-e2e-workload" \
  --user 65532:65532
"${pack[@]}" "$out/pause.tar" "kotel.local/pause:1" "$out/pause" --user 65535:65535
e2e_log "images ($profile binaries) packed in $out in $(( $(date +%s) - start ))s"

if [[ ${1:-} == --import ]]; then
  [[ -S $E2E_CONTAINERD_SOCK ]] || e2e_die "no containerd at $E2E_CONTAINERD_SOCK (make node-up)"
  for f in "$out"/*.tar; do
    ctr --address "$E2E_CONTAINERD_SOCK" -n k8s.io images import --platform linux/amd64 "$f" >/dev/null
  done
  ctr --address "$E2E_CONTAINERD_SOCK" -n k8s.io images ls -q | grep -v '^sha256:' >&2
  e2e_log "images imported into the node's containerd"
fi
