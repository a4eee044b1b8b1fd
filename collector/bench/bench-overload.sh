#!/usr/bin/env bash
# Overload and outage (issue 16.4): figures, never assertions. Two scenarios, each with the
# kotelcol release binary between the loadgen example's sender and sink:
#
#   overload  closed-loop load from many senders against a slow backend (each request answered
#             after OVERLOAD_DELAY_MS, two exporter consumers), for OVERLOAD_SECONDS: offered vs
#             delivered rate, what clients were told (gRPC codes, RetryInfo), peak RSS against
#             the memory_limiter's limit, and whether accepted = delivered + dropped once drained.
#   outage    steady load while the backend is down for OUTAGE_SECONDS (its port refuses
#             connections), then back: with the in-memory queue, and with the persistent queue
#             and a collector restart (SIGTERM, as a rollout) in the middle of the outage.
#
# Every count comes from one side only: the sender's acknowledged and refused requests, the
# sink's received items, the collector's own counters (/metrics).
set -euo pipefail
cd "$(dirname "$0")/../.."
. collector/bench/lib.sh

BIN=${KOTELCOL:-target/release/kotelcol}
LOADGEN=${LOADGEN:-target/release/examples/loadgen}
OVERLOAD_SECONDS=${OVERLOAD_SECONDS:-120}
OVERLOAD_DELAY_MS=${OVERLOAD_DELAY_MS:-1000}
OVERLOAD_SENDERS=${OVERLOAD_SENDERS:-400}
OUTAGE_SECONDS=${OUTAGE_SECONDS:-120}
ITEMS=500
SCENARIOS=${BENCH_OVERLOAD_SCENARIOS:-overload outage-memory outage-persistent}
for f in "$BIN" "$LOADGEN"; do
  [ -x "$f" ] || { echo "missing $f: run 'cargo build --release -p kotelcol --bins --examples'"; exit 1; }
done

WORK=$(mktemp -d)
KPID= SPID= HPID=
cleanup() {
  for p in $KPID $SPID $HPID; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

# config <in> <out> <metrics> <queue settings (YAML lines, indented 6)> <extensions YAML> <service extensions>
config() {
  cat > "$WORK/config.yaml" <<YAML
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:$1
        max_recv_msg_size_mib: 16
processors:
  memory_limiter:
    check_interval: 1s
    limit_mib: 128
    spike_limit_mib: 32
  batch:
    send_batch_size: 8192
    timeout: 200ms
exporters:
  otlp:
    endpoint: 127.0.0.1:$2
    compression: none
    tls:
      insecure: true
    sending_queue:
$4
$5
service:
  extensions: [$6]
  telemetry:
    logs:
      level: warn
    metrics:
      readers:
        - pull:
            exporter:
              prometheus:
                host: 127.0.0.1
                port: $3
  pipelines:
    traces:
      receivers: [otlp]
      processors: [memory_limiter, batch]
      exporters: [otlp]
YAML
}

start_collector() {
  "$BIN" --config "$WORK/config.yaml" 2>> "$WORK/kotelcol.err" &
  KPID=$!
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$IN") 2>/dev/null && return
    sleep 0.1
  done
  echo "kotelcol did not listen"; tail "$WORK/kotelcol.err"; exit 1
}
stop_collector() { kill -TERM "$KPID" 2>/dev/null || true; wait "$KPID" 2>/dev/null || true; KPID=; }
start_sink() { "$LOADGEN" sink --listen "127.0.0.1:$OUT" --delay-ms "${1:-0}" > "$WORK/sink.out" & SPID=$!; }
# Sets DELIVERED to what the sink counted (in this shell: only it can wait for the sink).
stop_sink() {
  kill -TERM "$SPID"; wait "$SPID" || true; SPID=
  DELIVERED=$(sed -n 's/.*spans=\([0-9]*\).*/\1/p' "$WORK/sink.out")
}

# Sum of a metric family's samples on kotelcol's /metrics (0 when absent).
metric() { curl -s "http://127.0.0.1:$METRICS/metrics" | awk -v m="$1" 'index($1, m) == 1 && $1 !~ /^#/ {s += $2} END {printf "%d", s}'; }
# Accumulates a metric across collector restarts (each process starts its counters at 0).
declare -A TOTAL
bank() { for m in "$@"; do TOTAL[$m]=$(( ${TOTAL[$m]:-0} + $(metric "$m") )); done; }
COUNTERS=(otelcol_receiver_accepted_spans otelcol_receiver_refused_spans otelcol_exporter_sent_spans
          otelcol_exporter_send_failed_spans otelcol_exporter_enqueue_failed_spans)
mib() { awk -v k="$1" 'BEGIN{printf "%.1f", k/1024}'; }

# Waits until the collector holds nothing (queue and batch empty), at most $1 seconds.
drain() {
  local limit=$1 t=0
  while (( t < limit * 2 )); do
    [[ $(metric otelcol_exporter_queue_size) == 0 && $(metric kotelcol_held_bytes) == 0 ]] && return 0
    sleep 0.5; t=$(( t + 1 ))
  done
  echo "  (not drained after ${limit}s)"
}

# field <name> <loadgen output>
field() { grep -oE "(^| )$1=[0-9.]+" <<<"$2" | head -1 | cut -d= -f2; }

report() { # <acked items> <refused items> <codes line> <delivered> <seconds>
  local acked=$1 refused=$2 codes=$3 delivered=$4 secs=$5
  local dropped=${TOTAL[otelcol_exporter_send_failed_spans]:-0}
  echo "  sender:    acknowledged $acked spans, refused $refused ($codes)"
  echo "  collector: accepted ${TOTAL[otelcol_receiver_accepted_spans]:-0}, refused ${TOTAL[otelcol_receiver_refused_spans]:-0}, sent ${TOTAL[otelcol_exporter_sent_spans]:-0}, dropped (send_failed) $dropped, exporter queue full (enqueue_failed, retried by batch) ${TOTAL[otelcol_exporter_enqueue_failed_spans]:-0}"
  echo "  sink:      received $delivered spans"
  echo "  accounting: acknowledged - received - dropped = $(( acked - delivered - dropped )) (0: nothing acknowledged was lost; negative: duplicates)"
  awk -v a="$acked" -v d="$delivered" -v s="$secs" 'BEGIN{printf "  delivered %.0f spans/s over %.0f s\n", d / s, s}'
}

overload() {
  IN=$(free_port); OUT=$(free_port); METRICS=$(free_port); TOTAL=()
  config "$IN" "$OUT" "$METRICS" "      num_consumers: 2
      queue_size: 100" "" ""
  start_sink "$OVERLOAD_DELAY_MS"
  start_collector
  echo "=== overload: $OVERLOAD_SENDERS closed-loop senders x $ITEMS spans against a backend answering after ${OVERLOAD_DELAY_MS} ms (2 consumers), ${OVERLOAD_SECONDS}s; memory_limiter limit 128 MiB"
  local idle; idle=$(status_kib VmRSS)
  # Samples: seconds since start, held bytes, resident KiB.
  local start=$SECONDS
  ( while sleep 0.2; do echo "$(( SECONDS - start )) $(metric kotelcol_held_bytes) $(status_kib VmRSS)"; done > "$WORK/held" ) & HPID=$!
  local out; out=$("$LOADGEN" send --endpoint "http://127.0.0.1:$IN" --signal traces \
      --seconds "$OVERLOAD_SECONDS" --concurrency "$OVERLOAD_SENDERS" --items "$ITEMS")
  local peak; peak=$(status_kib VmHWM)
  kill "$HPID"; wait "$HPID" 2>/dev/null || true; HPID=
  drain 600
  bank "${COUNTERS[@]}"
  stop_collector
  stop_sink; local delivered=$DELIVERED
  local acked refused secs attempts
  acked=$(field items "$out"); refused=$(field refused_items "$out"); secs=$(field seconds "$out")
  attempts=$(( acked + refused ))
  echo "  offered: $attempts spans in ${secs}s ($(awk -v a="$attempts" -v d="$delivered" -v s="$secs" 'BEGIN{printf "%.0f spans/s, %.1fx what was delivered", a/s, a/d}')); senders back off as told (RetryInfo), so this is what they were willing to send"
  report "$acked" "$refused" "$(tail -1 <<<"$out")" "$delivered" "$secs"
  echo "  RSS: idle $(mib "$idle") MiB, peak $(mib "$peak") MiB (memory_limiter limit 128 MiB); held telemetry max $(sort -k2 -n "$WORK/held" | tail -1 | awk '{printf "%.1f", $2/1048576}') MiB"
  echo "  at the highest resident sample: $(sort -k3 -n "$WORK/held" | tail -1 | awk '{printf "%.1f MiB resident, %.1f MiB held, %d s in", $3/1024, $2/1048576, $1}')"
  echo "  kotelcol still running at the end: yes (it was stopped by SIGTERM after draining)"
}

# outage <label> <queue settings> <extensions> <service extensions> <restart mid-outage: 0|1>
outage() {
  local label=$1 restart=$5
  IN=$(free_port); OUT=$(free_port); METRICS=$(free_port); TOTAL=()
  config "$IN" "$OUT" "$METRICS" "$2" "$3" "$4"
  start_collector
  echo "=== outage ($label): 4 senders x $ITEMS spans every 50 ms; the backend is down for ${OUTAGE_SECONDS}s, then back for 30 s"
  local t0; t0=$(date +%s.%N)
  "$LOADGEN" send --endpoint "http://127.0.0.1:$IN" --signal traces --seconds $(( OUTAGE_SECONDS + 30 )) \
      --concurrency 4 --items "$ITEMS" --interval-ms 50 > "$WORK/load.out" &
  local lpid=$! peak=0
  if [[ $restart == 1 ]]; then
    sleep $(( OUTAGE_SECONDS / 2 ))
    peak=$(status_kib VmHWM)
    bank "${COUNTERS[@]}"
    local queued; queued=$(metric otelcol_exporter_queue_size)
    stop_collector
    start_collector
    echo "  restarted the collector (SIGTERM, as a rollout) halfway through the outage; $queued requests were queued"
    sleep $(( OUTAGE_SECONDS - OUTAGE_SECONDS / 2 ))
  else
    sleep "$OUTAGE_SECONDS"
  fi
  start_sink 0
  local back; back=$(date +%s.%N)
  wait "$lpid"
  local out; out=$(cat "$WORK/load.out")
  drain 600
  local drained; drained=$(date +%s.%N)
  local p; p=$(status_kib VmHWM); (( p > peak )) && peak=$p
  bank "${COUNTERS[@]}"
  stop_collector
  stop_sink; local delivered=$DELIVERED
  report "$(field items "$out")" "$(field refused_items "$out")" "$(tail -1 <<<"$out")" "$delivered" "$(field seconds "$out")"
  awk -v b="$back" -v d="$drained" 'BEGIN{printf "  queue empty %.1f s after the backend came back (the load still running for 30 s of it)\n", d - b}'
  echo "  peak RSS $(mib "$peak") MiB"
}

for s in $SCENARIOS; do
  case $s in
    overload) overload ;;
    outage-memory) outage "in-memory queue of 200 requests, retry until the default 5 min" \
        "      queue_size: 200" "" "" 0 ;;
    outage-persistent) outage "persistent queue of 2000 requests, restarted mid-outage" \
        "      queue_size: 2000
      storage: file_storage" "extensions:
  file_storage:
    directory: $WORK/storage
    create_directory: true" "file_storage" 1 ;;
  esac
done
if grep -qiE 'panic' "$WORK/kotelcol.err"; then
  echo "kotelcol panicked:"; grep -i -m5 panic "$WORK/kotelcol.err"
fi
