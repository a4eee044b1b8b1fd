#!/usr/bin/env bash
# kotelcol against the upstream Go OpenTelemetry Collector (built by go-reference.sh), same load,
# same config, same machine, one after the other:
#   1. OTLP pass-through: bench-otlp.sh run twice, KOTELCOL=kotelcol then KOTELCOL=<Go otelcol>
#      (loadgen → collector → batch → OTLP gRPC → loadgen sink), parsed into one table.
#   2. filelog: a generated pods tree of containerd lines, read from the beginning through the
#      container parser → batch → OTLP gRPC → loadgen sink, until every record is delivered.
# Prints items per CPU-second of the collector process, its RSS, and the ratios kotel/Go (for
# throughput per CPU-second > 1 means kotel does more with the same CPU; for RSS < 1 means
# kotel uses less memory). Figures are printed, never asserted.
# When the Go reference cannot be built, prints "Go reference unavailable: <reason>" and exits 0.
#
# Knobs: KOTELCOL, LOADGEN, BENCH_VS_GO_ROUNDS (OTLP rounds per collector, medians are
# compared; default 1), BENCH_FILELOG_LINES (default 1000000 100-byte lines; a tenth as many
# 1000-byte lines), BENCH_VS_GO_SECTIONS (default "otlp filelog"), and those of bench-otlp.sh
# (BENCH_SECONDS, BENCH_CONCURRENCY, BENCH_ITEMS_PER_REQUEST) and go-reference.sh.
set -uo pipefail
cd "$(dirname "$0")/../.."
. collector/bench/lib.sh

KBIN=${KOTELCOL:-target/release/kotelcol}
LOADGEN=${LOADGEN:-target/release/examples/loadgen}
ROUNDS=${BENCH_VS_GO_ROUNDS:-1}
SECTIONS=${BENCH_VS_GO_SECTIONS:-otlp filelog}
FL_LINES=${BENCH_FILELOG_LINES:-1000000}
for f in "$KBIN" "$LOADGEN"; do
  [ -x "$f" ] || { echo "missing $f: run 'cargo build --release -p kotelcol --bins --examples'"; exit 1; }
done

WORK=$(mktemp -d)
cleanup() {
  for p in ${CPID:-} ${SPID:-}; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

# --- the Go reference -------------------------------------------------------------------------
if ! GOBIN_REF=$(bash collector/bench/go-reference.sh 2> >(tee "$WORK/goref.err" >&2)); then
  sleep 0.2  # let tee finish
  reason=$(sed -n 's/^unavailable: //p' "$WORK/goref.err" | tail -1)
  echo "Go reference unavailable: ${reason:-go-reference.sh failed (see above)}"
  exit 0
fi
sleep 0.2
GOVERSION_REF=$(basename "$(dirname "$GOBIN_REF")")
echo "Go reference: $GOBIN_REF ($GOVERSION_REF; $(sed -n 's/^go-reference: cached (\(.*\))/\1/p;s/^go-reference: built .*: \(.*\)/\1/p' "$WORK/goref.err" | tail -1))"

mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b + 0 == 0) print "n/a"; else printf "%.2f", a / b }'; }
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print ""; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
row() { printf '  %-34s %14s %14s %12s\n' "$@"; }

# --- 1. OTLP pass-through ---------------------------------------------------------------------
# Pulls the figures out of one bench-otlp.sh output into shell variables prefixed with $2.
parse_otlp() {
  local out=$1 p=$2
  eval "${p}_SPANS_CPU+=' $(sed -n 's/^spans .*=> *\([0-9.]*\) spans per CPU-second.*/\1/p' <<<"$out")'"
  eval "${p}_LOGS_CPU+=' $(sed -n 's/^log_records .*=> *\([0-9.]*\) log_records per CPU-second.*/\1/p' <<<"$out")'"
  eval "${p}_SPANS_S+=' $(sed -n 's/^spans .* \([0-9.]*\) spans\/s .*/\1/p' <<<"$out")'"
  eval "${p}_LOGS_S+=' $(sed -n 's/^log_records .* \([0-9.]*\) log_records\/s .*/\1/p' <<<"$out")'"
  eval "${p}_SPANS_PCT+=' $(sed -n 's/^spans .*(\s*\([0-9.]*\)% of a core).*/\1/p' <<<"$out")'"
  eval "${p}_LOGS_PCT+=' $(sed -n 's/^log_records .*(\s*\([0-9.]*\)% of a core).*/\1/p' <<<"$out")'"
  eval "${p}_IDLE+=' $(sed -n 's/^RSS: idle \([0-9.]*\) MiB.*/\1/p' <<<"$out")'"
  eval "${p}_PEAK+=' $(sed -n 's/^RSS: .*peak \([0-9.]*\) MiB.*/\1/p' <<<"$out")'"
}

otlp_section() {
  echo
  echo "--- OTLP pass-through (bench-otlp.sh, identical config and load for both; $ROUNDS round(s) each)"
  local r out
  for r in $(seq "$ROUNDS"); do
    for who in K G; do
      local bin=$KBIN; [ "$who" = G ] && bin=$GOBIN_REF
      if ! out=$(KOTELCOL=$bin LOADGEN=$LOADGEN bash collector/bench/bench-otlp.sh 2>&1); then
        echo "bench-otlp.sh failed for $bin:"; sed 's/^/    /' <<<"$out"; return 1
      fi
      echo "  [$([ "$who" = K ] && echo kotelcol || echo "Go otelcol") round $r]"
      # bench-otlp.sh names the collector under test kotelcol whatever KOTELCOL is.
      [ "$who" = G ] && out=$(sed 's/^kotelcol OTLP gRPC/Go otelcol OTLP gRPC/' <<<"$out")
      sed 's/^/    /' <<<"$out"
      parse_otlp "$out" "$who"
    done
  done
  local k g
  echo
  row "" "kotelcol" "Go otelcol" "kotel/Go"
  for m in SPANS_CPU:"spans per CPU-second" LOGS_CPU:"log records per CPU-second" \
           SPANS_S:"spans/s (wall)" LOGS_S:"log records/s (wall)" \
           SPANS_PCT:"CPU % of a core (spans)" LOGS_PCT:"CPU % of a core (logs)" \
           IDLE:"idle RSS MiB" PEAK:"peak RSS MiB"; do
    local key=${m%%:*} label=${m#*:}
    eval "k=\$(median <<<\"\${K_$key:-}\"); g=\$(median <<<\"\${G_$key:-}\")"
    row "$label" "${k:-?}" "${g:-?}" "$(ratio "$k" "$g")"
  done
  echo "  (throughput per CPU-second: kotel/Go > 1 is better for kotel; RSS: < 1 is better for kotel."
  echo "   Closed-loop load: each collector is driven as fast as it accepts, so wall rates differ.)"
}

# --- 2. filelog -------------------------------------------------------------------------------

# Same layout and line format as the filelog crate's bench example: 4 pods, containerd lines of
# exactly $2 bytes (newline included), each file different from its first byte.
generate_pods() {
  python3 - "$1" "$2" "$3" <<'PY'
import os, sys
root, size, lines = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
files = 4
filler = "abcdefghijklmnopqrstuvwxyz0123456789 " * (size // 37 + 1)
for f in range(files):
    d = os.path.join(root, f"bench_pod-{f}_{f:08x}-0000-0000-0000-000000000000", "app")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "0.log"), "w") as w:
        out = []
        for i in range(lines // files):
            head = f"2024-01-01T00:00:{i % 60:02}.{f * 1000 + i % 1000:09}Z stdout F {i} "
            out.append(head + filler[: max(0, size - len(head) - 1)] + "\n")
            if len(out) >= 10000:
                w.write("".join(out)); out = []
        w.write("".join(out))
PY
}

filelog_config() { # <pods root> <sink port> <telemetry port>
  cat <<YAML
receivers:
  filelog:
    include: [$1/*/*/*.log]
    start_at: beginning
    include_file_path: true
    include_file_name: false
    operators:
      - type: container
        id: container-parser
        max_log_size: 102400
processors:
  batch:
    send_batch_size: 8192
    timeout: 200ms
exporters:
  otlp:
    endpoint: 127.0.0.1:$2
    compression: none
    tls:
      insecure: true
service:
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
    logs:
      receivers: [filelog]
      processors: [batch]
      exporters: [otlp]
YAML
}

# Runs one collector over the tree until it has gone idle (no CPU used for 2 s: everything read
# and exported), then stops the sink and checks that every record arrived.
# Prints: records cpu_seconds wall_seconds peak_kib after_kib delivered
filelog_run() {
  local bin=$1 root=$2 want=$3 sink_port tel_port
  sink_port=$(free_port); tel_port=$(free_port)
  filelog_config "$root" "$sink_port" "$tel_port" > "$WORK/filelog.yaml"
  "$LOADGEN" sink --listen "127.0.0.1:$sink_port" > "$WORK/fsink.out" &
  SPID=$!
  for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$sink_port") 2>/dev/null && break; sleep 0.1; done
  local hz t0 t1 last busy_at now quiet=0
  hz=$(getconf CLK_TCK)
  t0=$(date +%s.%N)
  "$bin" --config "$WORK/filelog.yaml" 2> "$WORK/filelog.err" &
  CPID=$!
  last=0; busy_at=0; t1=$t0
  while :; do
    sleep 0.25
    if [ ! -r "/proc/$CPID/stat" ]; then
      wait "$CPID" 2>/dev/null; CPID=
      kill -TERM "$SPID"; wait "$SPID" 2>/dev/null; SPID=
      echo "FAILED exited: $(grep -v '^\s*$' "$WORK/filelog.err" | tail -1)"
      return 0
    fi
    now=$(awk '{print $14 + $15}' "/proc/$CPID/stat")
    if [ $((now - last)) -gt 0 ]; then quiet=0; busy_at=$now; t1=$(date +%s.%N); else quiet=$((quiet + 1)); fi
    last=$now
    # 2 s without a tick, after some work was done (or 300 s in all)
    [ "$quiet" -ge 8 ] && [ "$busy_at" -gt 5 ] && break
    awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { exit !(b - a > 300) }' && { echo "  timed out after 300 s" >&2; break; }
  done
  local peak after
  peak=$(awk '$1 == "VmHWM:" {print $2}' "/proc/$CPID/status")
  after=$(awk '$1 == "VmRSS:" {print $2}' "/proc/$CPID/status")
  kill -TERM "$CPID"; wait "$CPID" 2>/dev/null; CPID=
  kill -TERM "$SPID"; wait "$SPID" 2>/dev/null; SPID=
  local got
  got=$(sed -n 's/.*log_records=\([0-9]*\).*/\1/p' "$WORK/fsink.out")
  if grep -qiE 'error|panic' "$WORK/filelog.err"; then
    echo "  $(basename "$bin") logged errors:" >&2; head -5 "$WORK/filelog.err" | sed 's/^/    /' >&2
  fi
  awk -v w="$want" -v c="$busy_at" -v hz="$hz" -v a="$t0" -v b="$t1" -v p="$peak" -v r="$after" -v g="${got:-0}" \
    'BEGIN { printf "%d %.2f %.2f %d %d %d\n", w, c / hz, b - a, p, r, g }'
}

filelog_section() {
  echo
  echo "--- filelog: pods tree of containerd lines, start_at: beginning, container parser -> batch -> OTLP gRPC -> sink"
  local size lines root k g
  for size in 100 1000; do
    lines=$FL_LINES; [ "$size" = 1000 ] && lines=$((FL_LINES / 10))
    lines=$((lines / 4 * 4))
    root=$WORK/pods-$size
    generate_pods "$root" "$size" "$lines"
    k=$(filelog_run "$KBIN" "$root" "$lines") || return 1
    g=$(filelog_run "$GOBIN_REF" "$root" "$lines") || return 1
    rm -rf "$root"
    echo
    echo "  $size-byte lines, $lines records in 4 files ($(awk -v n="$lines" -v s="$size" 'BEGIN{printf "%.0f", n*s/1048576}') MiB)"
    case "$k$g" in *FAILED*)
      [[ $k == FAILED* ]] && echo "  kotelcol: ${k#FAILED }" || echo "  kotelcol: $k (records cpu_s wall_s peak_kib rss_kib delivered)"
      [[ $g == FAILED* ]] && echo "  Go otelcol: ${g#FAILED }" || echo "  Go otelcol: $g (records cpu_s wall_s peak_kib rss_kib delivered)"
      status=1; continue ;;
    esac
    read -r _ kc kw kp ka kg <<<"$k"
    read -r _ gc gw gp ga gg <<<"$g"
    local krate grate
    krate=$(awk -v n="$kg" -v c="$kc" 'BEGIN { printf "%.0f", (c > 0 ? n / c : 0) }')
    grate=$(awk -v n="$gg" -v c="$gc" 'BEGIN { printf "%.0f", (c > 0 ? n / c : 0) }')
    row "" "kotelcol" "Go otelcol" "kotel/Go"
    row "records delivered (of $lines)" "$kg" "$gg" ""
    row "log records per CPU-second" "$krate" "$grate" "$(ratio "$krate" "$grate")"
    row "collector CPU seconds" "$kc" "$gc" "$(ratio "$kc" "$gc")"
    row "wall seconds to deliver all" "$kw" "$gw" "$(ratio "$kw" "$gw")"
    row "peak RSS MiB" "$(mib "$kp")" "$(mib "$gp")" "$(ratio "$kp" "$gp")"
    row "RSS MiB when done" "$(mib "$ka")" "$(mib "$ga")" "$(ratio "$ka" "$ga")"
    [ "$kg" = "$lines" ] && [ "$gg" = "$lines" ] || echo "  !!! not every record was delivered: figures are not comparable"
  done
}

echo "kotelcol ($KBIN) vs Go otelcol; $(nproc) CPUs (shared), load $(cut -d' ' -f1-3 /proc/loadavg)"
status=0
for s in $SECTIONS; do
  "${s}_section" || status=1
done
exit $status
