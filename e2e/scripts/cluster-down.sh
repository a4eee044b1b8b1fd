#!/usr/bin/env bash
# Stops every process cluster-up.sh started (by the pid files under .e2e/pids), newest first.
# Idempotent. Logs and PKI stay; etcd data is removed (cluster-up always starts fresh).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
PIDS=$E2E_DIR/pids

stop() {
  local name=$1 f=$PIDS/$1.pid pid
  [[ -f $f ]] || return 0
  pid=$(cat "$f")
  # Only signal the process if it is still the one we started (pids get reused).
  if kill -0 "$pid" 2>/dev/null && [[ $(readlink "/proc/$pid/exe" 2>/dev/null) == */"$name" ]]; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
    e2e_log "stopped $name (pid $pid)"
  fi
  rm -f "$f"
}

# The real node first: its kubelet needs the API server to leave cleanly.
bash "$(dirname "$0")/node-down.sh"
for c in kwok kube-scheduler kube-controller-manager kube-apiserver etcd; do stop "$c"; done
rm -rf "$E2E_DIR/etcd"
e2e_log "cluster down"
