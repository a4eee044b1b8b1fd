#!/usr/bin/env bash
# Builds the upstream Go OpenTelemetry Collector, the reference kotelcol is measured against, with
# the OpenTelemetry Collector Builder (ocb) from a manifest generated here, and prints the path of
# the binary on stdout (and nothing else there). Everything else goes to stderr.
#
# The binary is cached at ${KOTEL_BENCH_CACHE:-$HOME/.cache/kotel-bench}/otelcol-<version>/otelcol
# and not rebuilt while it is there. The cold build time is printed and kept beside it.
# Components: otlp receiver, batch, memory_limiter, otlp/otlphttp/debug exporters, filelog
# receiver, health_check and file_storage extensions; with KOTEL_BENCH_GO_K8S=1 also
# k8sattributes and kubeletstats (the binary then goes to otelcol-<version>-k8s/). Off by
# default: client-go lengthens the cold build, no bench-vs-go scenario needs them, and the module
# proxy reachable here refuses k8sattributesprocessor v0.165.0 (403), so that build fails.
#
# When the collector cannot be built here this exits non-zero and its last stderr line is
#   unavailable: <reason>
# which bench-vs-go.sh shows as "Go reference unavailable: <reason>".
#
# Knobs: OTELCOL_VERSION (core components and ocb, default v0.165.0), OTELCOL_CONTRIB_VERSION
# (contrib components, default the same), KOTEL_BENCH_CACHE, GO (default go).
set -euo pipefail

CORE=${OTELCOL_VERSION:-v0.165.0}
CONTRIB=${OTELCOL_CONTRIB_VERSION:-$CORE}
K8S=${KOTEL_BENCH_GO_K8S:-0}
CACHE=${KOTEL_BENCH_CACHE:-$HOME/.cache/kotel-bench}
GO=${GO:-go}
NAME=otelcol-$CORE
[ "$CONTRIB" = "$CORE" ] || NAME=$NAME-contrib-$CONTRIB
[ "$K8S" = 1 ] && NAME=$NAME-k8s
DIR=$CACHE/$NAME
OUT=$DIR/otelcol

log() { echo "go-reference: $*" >&2; }
unavailable() { echo "unavailable: $*" >&2; exit 1; }

if [ -x "$OUT" ]; then
  [ -f "$DIR/build-time.txt" ] && log "cached ($(cat "$DIR/build-time.txt"))"
  echo "$OUT"
  exit 0
fi

command -v "$GO" >/dev/null 2>&1 || unavailable "no Go toolchain ('$GO' not on PATH); install Go >= 1.24"
GOVER=$("$GO" env GOVERSION 2>/dev/null) || unavailable "'$GO env GOVERSION' failed"
case "$GOVER" in
  go1.2[4-9]*|go1.[3-9][0-9]*|go[2-9]*) ;;
  *) unavailable "Go $GOVER is too old for collector $CORE (needs >= go1.24)" ;;
esac

mkdir -p "$DIR"
WORK=$(mktemp -d "$DIR/build.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
# The toolchain on the machine builds everything; never fetch another one.
export GOTOOLCHAIN=local GOFLAGS="${GOFLAGS:--buildvcs=false}"

START=$(date +%s)
BUILDER=$CACHE/ocb-$CORE/builder
if [ ! -x "$BUILDER" ]; then
  log "building the collector builder $CORE"
  mkdir -p "$CACHE/ocb-$CORE"
  if ! (cd "$WORK" && GOBIN="$WORK/bin" exec nice -n 10 "$GO" install "go.opentelemetry.io/collector/cmd/builder@$CORE" \
       ) > "$WORK/ocb-install.log" 2>&1; then
    tail -15 "$WORK/ocb-install.log" >&2
    reason=$(grep -m1 -iE 'dial|timeout|refused|not found|unknown revision|403|404|410' "$WORK/ocb-install.log" || true)
    unavailable "could not install go.opentelemetry.io/collector/cmd/builder@$CORE${reason:+: $reason}"
  fi
  mv "$WORK/bin/builder" "$BUILDER"
fi

core() { echo "  - gomod: go.opentelemetry.io/collector/$1 $CORE"; }
contrib() { echo "  - gomod: github.com/open-telemetry/opentelemetry-collector-contrib/$1 $CONTRIB"; }
# No providers: section, so ocb adds its default confmap providers (env, file, http(s), yaml) at
# the versions that go with it.
{
  cat <<YAML
dist:
  name: otelcol
  description: Go OpenTelemetry Collector, reference for kotel benchmarks
  output_path: $WORK/dist
receivers:
YAML
  core receiver/otlpreceiver
  contrib receiver/filelogreceiver
  [ "$K8S" != 1 ] || contrib receiver/kubeletstatsreceiver
  echo "processors:"
  core processor/batchprocessor
  core processor/memorylimiterprocessor
  [ "$K8S" != 1 ] || contrib processor/k8sattributesprocessor
  echo "exporters:"
  core exporter/otlpexporter
  core exporter/otlphttpexporter
  core exporter/debugexporter
  echo "extensions:"
  contrib extension/healthcheckextension
  contrib extension/storage/filestorage
} > "$WORK/manifest.yaml"
cp "$WORK/manifest.yaml" "$DIR/manifest.yaml"
log "manifest: $DIR/manifest.yaml (core $CORE, contrib $CONTRIB, k8s=$K8S)"
log "building with $("$GO" version) under nice -n 10; log: $DIR/build.log (a cold build takes many minutes on 2 cores)"

if ! nice -n 10 "$BUILDER" --config "$WORK/manifest.yaml" > "$DIR/build.log" 2>&1; then
  tail -25 "$DIR/build.log" >&2
  reason=$(grep -m1 -E 'no space left|signal: killed|dial tcp|403 Forbidden|410 Gone|404 Not Found|unknown revision|requires go >=|cannot find module' "$DIR/build.log" \
    | sed -E 's/^(go: )?([^ :]+@v[^: ]+): reading [^ ]+: (40[34] [A-Za-z ]+|410 Gone)$/\2 is not served by the Go module proxy (\3)/' || true)
  unavailable "the collector builder failed${reason:+: $reason} (full log: $DIR/build.log)"
fi
[ -x "$WORK/dist/otelcol" ] || unavailable "the collector builder reported success but produced no binary (log: $DIR/build.log)"
"$WORK/dist/otelcol" components > "$WORK/components.txt" 2>&1 \
  || unavailable "the built collector does not run: $(head -1 "$WORK/components.txt")"
mv "$WORK/dist/otelcol" "$OUT"
SECS=$(( $(date +%s) - START ))
echo "cold build ${SECS}s on $(date -u +%Y-%m-%d), $("$GO" env GOVERSION), $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg)" \
  > "$DIR/build-time.txt"
log "built $OUT: $(cat "$DIR/build-time.txt")"
echo "$OUT"
