#!/usr/bin/env bash
# Removes everything node-up.sh made: the pods (stopped and removed through the CRI, which runs
# CNI DEL), the kubelet and containerd, their mounts, the kubepods cgroups, the bridge, the routes
# and iptables rules, the Node object, and the files and directories. Idempotent.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
PIDS=$E2E_DIR/pids NODE=$E2E_NODE_ROOT RUN=$E2E_NODE_RUN
KUBECTL=$(e2e_kubectl)

stop() { # stop NAME: TERM, then KILL after 10 s, if it is still the process we started
  local f=$PIDS/$1.pid pid
  [[ -f $f ]] || return 0
  pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null && [[ $(readlink "/proc/$pid/exe" 2>/dev/null) == */"$1" ]]; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$pid" 2>/dev/null || true
    e2e_log "stopped $1 (pid $pid)"
  fi
  rm -f "$f"
}

[[ -d $NODE || -d $RUN || -f $PIDS/kubelet.pid ]] || { e2e_log "no real node"; exit 0; }

stop kubelet
# Pods: stop and remove every sandbox through containerd's CRI (runs CNI DEL, kills shims).
if [[ -S $E2E_CONTAINERD_SOCK ]] && command -v ctr >/dev/null; then
  ctr_() { ctr --address "$E2E_CONTAINERD_SOCK" -n k8s.io "$@"; }
  for t in $(ctr_ tasks ls -q 2>/dev/null); do ctr_ tasks kill -s SIGKILL "$t" >/dev/null 2>&1 || true; done
  sleep 1
  for t in $(ctr_ tasks ls -q 2>/dev/null); do ctr_ tasks delete -f "$t" >/dev/null 2>&1 || true; done
  for c in $(ctr_ containers ls -q 2>/dev/null); do ctr_ containers delete "$c" >/dev/null 2>&1 || true; done
fi
stop containerd
# Shims that outlived containerd.
pkill -KILL -f "containerd-shim-runc-v2 -namespace k8s.io .*-address $E2E_CONTAINERD_SOCK" 2>/dev/null || true

# Network namespaces the CRI made, and mounts under the node's directories.
for ns in $(ip netns list 2>/dev/null | awk '$1 ~ /^cni-/ {print $1}'); do ip netns delete "$ns" 2>/dev/null || true; done
for root in "$NODE" "$RUN" /run/containerd /var/lib/kubelet /run/netns; do
  awk -v r="$root" '$2 == r || index($2, r "/") == 1 {print $2}' /proc/mounts | sort -r | while read -r m; do
    umount -l "$m" 2>/dev/null || true
  done
done

# Cgroups the kubelet made (every controller of cgroup v1, or the unified tree).
for base in /sys/fs/cgroup/* /sys/fs/cgroup; do
  [[ -d $base/kubepods ]] || continue
  find "$base/kubepods" -depth -type d -exec rmdir {} \; 2>/dev/null || true
done

# Network.
ip link del "$E2E_NODE_BRIDGE" 2>/dev/null || true
for cidr in "$E2E_SERVICE_CIDR" 10.244.0.0/16 "${E2E_NODE_POD_CIDR%.*}.0/16"; do
  ip route del blackhole "$cidr" 2>/dev/null || true
done
ip addr del "$E2E_KUBERNETES_SERVICE_IP/32" dev lo 2>/dev/null || true
if command -v iptables >/dev/null; then
  iptables -w -D FORWARD -j KOTEL-E2E-FWD 2>/dev/null || true
  iptables -w -F KOTEL-E2E-FWD 2>/dev/null || true; iptables -w -X KOTEL-E2E-FWD 2>/dev/null || true
  for chain in OUTPUT PREROUTING; do iptables -w -t nat -D "$chain" -j KOTEL-E2E-SVC 2>/dev/null || true; done
  iptables -w -t nat -F KOTEL-E2E-SVC 2>/dev/null || true; iptables -w -t nat -X KOTEL-E2E-SVC 2>/dev/null || true
fi
[[ -f $NODE/ip_forward.orig ]] && cat "$NODE/ip_forward.orig" >/proc/sys/net/ipv4/ip_forward 2>/dev/null || true

# The Node object, when the API server is still there.
if [[ -n $KUBECTL && -f $E2E_DIR/kubeconfig ]]; then
  "$KUBECTL" --kubeconfig "$E2E_DIR/kubeconfig" delete node "$E2E_NODE_NAME" --ignore-not-found --wait=false \
    --request-timeout=5s >/dev/null 2>&1 || true
fi

# Files: host paths this node made, then its own directories.
if [[ -f $NODE/made-paths ]]; then
  while read -r p; do [[ -n $p ]] && rm -rf "$p"; done <"$NODE/made-paths"
fi
rm -rf "$NODE" "$RUN"
e2e_log "real node down"
