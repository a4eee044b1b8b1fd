#!/usr/bin/env bash
# OTLP pass-through benchmark: loadgen (many concurrent gRPC exports of realistic spans, then of
# log records) → kotelcol (OTLP gRPC in → memory_limiter → batch → OTLP gRPC out, no compression)
# → loadgen sink.
# Prints, per phase, items per CPU-second of the kotelcol process (utime+stime from
# /proc/<pid>/stat), request bytes per second, and kotelcol's idle and peak RSS.
# Expects release builds of kotelcol and the loadgen example (collector/bench/run.sh makes them).
set -euo pipefail
cd "$(dirname "$0")/../.."
. collector/bench/lib.sh

BIN=${KOTELCOL:-target/release/kotelcol}
LOADGEN=${LOADGEN:-target/release/examples/loadgen}
SECONDS_PER_PHASE=${BENCH_SECONDS:-12}
CONCURRENCY=${BENCH_CONCURRENCY:-32}
ITEMS=${BENCH_ITEMS_PER_REQUEST:-500}
for f in "$BIN" "$LOADGEN"; do
  [ -x "$f" ] || { echo "missing $f: run 'cargo build --release -p kotelcol --bins --examples'"; exit 1; }
done

IN=$(free_port); OUT=$(free_port); METRICS=$(free_port)
WORK=$(mktemp -d)
cleanup() {
  [ -n "${KPID:-}" ] && kill "$KPID" 2>/dev/null || true
  [ -n "${SPID:-}" ] && kill "$SPID" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

cat > "$WORK/config.yaml" <<YAML
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:$IN
        max_recv_msg_size_mib: 16
processors:
  # As a DaemonSet config would: refuse intake once 96 MiB (limit - spike) of telemetry is held,
  # so a sink slower than the load generator bounds memory instead of filling the queue.
  memory_limiter:
    check_interval: 1s
    limit_mib: 128
    spike_limit_mib: 32
  batch:
    send_batch_size: 8192
    timeout: 200ms
exporters:
  otlp:
    endpoint: 127.0.0.1:$OUT
    compression: none
    tls:
      insecure: true
service:
  telemetry:
    logs:
      level: warn
    metrics:
      readers:   # not the legacy 'address', which the Go collector no longer accepts
        - pull:
            exporter:
              prometheus:
                host: 127.0.0.1
                port: $METRICS
  pipelines:
    traces:
      receivers: [otlp]
      processors: [memory_limiter, batch]
      exporters: [otlp]
    logs:
      receivers: [otlp]
      processors: [memory_limiter, batch]
      exporters: [otlp]
YAML

"$LOADGEN" sink --listen "127.0.0.1:$OUT" > "$WORK/sink.out" &
SPID=$!
"$BIN" --config "$WORK/config.yaml" 2> "$WORK/kotelcol.err" &
KPID=$!
for _ in $(seq 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$IN") 2>/dev/null && break
  sleep 0.1
done

TCK=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$KPID/stat"; }

sleep 1
IDLE_KIB=$(status_kib VmRSS)

phase() {
  local signal=$1 word=$2
  local before after out items bytes secs
  before=$(cpu_ticks)
  out=$("$LOADGEN" send --endpoint "http://127.0.0.1:$IN" --signal "$signal" \
        --seconds "$SECONDS_PER_PHASE" --concurrency "$CONCURRENCY" --items "$ITEMS")
  sleep 0.5   # let the last batch leave
  after=$(cpu_ticks)
  items=$(sed -n 's/.*sent items=\([0-9]*\).*/\1/p' <<<"$out")   # not refused_items=
  bytes=$(sed -n 's/.*bytes=\([0-9]*\).*/\1/p' <<<"$out")
  secs=$(sed -n 's/.*seconds=\([0-9.]*\).*/\1/p' <<<"$out")
  awk -v w="$word" -v i="$items" -v b="$bytes" -v s="$secs" -v t0="$before" -v t1="$after" -v hz="$TCK" 'BEGIN {
    cpu = (t1 - t0) / hz;
    printf "%-12s %12d items in %5.1fs  %10.0f %s/s  %8.1f MiB/s in  collector CPU %6.2fs (%3.0f%% of a core)  => %10.0f %s per CPU-second\n",
      w, i, s, i / s, w, b / s / 1048576, cpu, 100 * cpu / s, (cpu > 0 ? i / cpu : 0), w
  }'
  echo "  loadgen: $out"
}

# Samples what the collector holds (encoded bytes in batch buffers and exporter queues).
( while sleep 0.5; do
    curl -s "http://127.0.0.1:$METRICS/metrics" | awk '$1 == "kotelcol_held_bytes" {print $2}'
  done > "$WORK/held" ) &
HPID=$!

echo "kotelcol OTLP gRPC -> memory_limiter -> batch -> OTLP gRPC; $CONCURRENCY concurrent exports of $ITEMS items; $(nproc) CPUs on this machine (shared)"
phase traces spans
phase logs log_records
PEAK_KIB=$(status_kib VmHWM)
kill "$HPID" 2>/dev/null || true
MAX_HELD=$(sort -n "$WORK/held" | tail -n 1)
sleep 1
AFTER_KIB=$(status_kib VmRSS)
kill -TERM "$KPID"; wait "$KPID" || true; KPID=
kill -TERM "$SPID"; wait "$SPID" || true; SPID=
echo "RSS: idle $(awk -v k="$IDLE_KIB" 'BEGIN{printf "%.1f", k/1024}') MiB, peak $(awk -v k="$PEAK_KIB" 'BEGIN{printf "%.1f", k/1024}') MiB, after load $(awk -v k="$AFTER_KIB" 'BEGIN{printf "%.1f", k/1024}') MiB"
echo "held telemetry (batch buffers + exporter queues, encoded): max $(awk -v b="${MAX_HELD:-0}" 'BEGIN{printf "%.1f", b/1048576}') MiB"
echo "$(cat "$WORK/sink.out") (delivered to the sink)"
if grep -qiE 'error|panic' "$WORK/kotelcol.err"; then
  echo "kotelcol logged errors:"; head -20 "$WORK/kotelcol.err"
fi
