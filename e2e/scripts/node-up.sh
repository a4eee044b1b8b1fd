#!/usr/bin/env bash
# Starts the real node beside the kwok nodes: Debian's containerd and runc, and a kubelet built
# from the pinned Kubernetes module, registered as a node with webhook authentication and
# authorization as real clusters run it. Images come only from local archives (images.sh); any
# pull fails on the machine. Idempotent: a Ready node is left alone. The node is named by its
# address, the host side of the pod bridge (10.245.0.1 unless E2E_NODE_IP says otherwise).
#
# The node is tainted kotel.dev/real-node=true:NoSchedule and labelled kotel.dev/real-node=true,
# so the kwok suites never see it (their DaemonSets do not tolerate it) and the real-node suite
# picks it by label. Network, all of it on this machine:
#   - pods on the bridge kotel-cni0 (10.245.0.0/24, host side .1, no masquerade); forwarding from
#     or to the bridge other than between its pods is dropped, so nothing leaves the machine;
#   - blackhole routes for the service and pod ranges;
#   - the `kubernetes` Service (10.96.0.1:443) is DNATed to the API server on 127.0.0.1:6443, as
#     kube-proxy would, for host-network pods (OUTPUT) and bridge pods (PREROUTING, route_localnet).
# Everything made here is listed in node-down.sh, which removes it.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

TIMEOUT=${E2E_UP_TIMEOUT:-180}
API_PORT=${E2E_APISERVER_PORT:-6443}
PKI=$E2E_DIR/pki LOGS=$E2E_DIR/logs PIDS=$E2E_DIR/pids
KUBECONFIG_ADMIN=$E2E_DIR/kubeconfig
NODE=$E2E_NODE_ROOT RUN=$E2E_NODE_RUN
KUBECTL=$(e2e_kubectl)
kc() { "$KUBECTL" --kubeconfig "$KUBECONFIG_ADMIN" "$@"; }
start_ts=$(date +%s)

e2e_node_possible || e2e_die "the real node needs root, containerd, runc, /usr/lib/cni and $E2E_K8S_BIN/kubelet (make e2e-tools)"
[[ -f $PKI/kubelet-serving.crt ]] || e2e_die "no kubelet certificates in $PKI (make cluster-up makes them)"
kc get --raw /readyz >/dev/null 2>&1 || e2e_die "the control plane is not up (make cluster-up)"

alive() { local p; p=$(cat "$PIDS/$1.pid" 2>/dev/null || true); [[ -n $p ]] && kill -0 "$p" 2>/dev/null; }
node_ready() {
  [[ $(kc get node "$E2E_NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null) == True ]]
}
if alive containerd && alive kubelet && node_ready; then
  e2e_log "real node $E2E_NODE_NAME already up"
  exit 0
fi
if alive containerd || alive kubelet; then
  e2e_log "real node partly running; restarting it"
  bash "$(dirname "$0")/node-down.sh"
fi
# A pid file left by a machine that stopped without node-down names no live process: forget it,
# or the waits below would report that process as having just exited.
for c in containerd kubelet; do alive "$c" || rm -f "$PIDS/$c.pid"; done

report_dead() {
  e2e_log "ERROR: $1 exited. Log: $LOGS/$1.log (last 30 lines):"
  tail -n 30 "$LOGS/$1.log" >&2 || true
  bash "$(dirname "$0")/node-down.sh" || true
  exit 1
}
wait_until() {
  local desc=$1; shift
  local deadline=$(( $(date +%s) + TIMEOUT ))
  until "$@" >/dev/null 2>&1; do
    for c in containerd kubelet; do [[ -f $PIDS/$c.pid ]] && ! alive "$c" && report_dead "$c"; done
    [[ $(date +%s) -lt $deadline ]] || e2e_die "timed out after ${TIMEOUT}s waiting for $desc (logs: $LOGS/containerd.log, $LOGS/kubelet.log)"
    sleep 1
  done
  e2e_log "$desc: ok"
}
for port in 10250 10248; do
  if ss -Hltn "sport = :$port" | grep -q .; then e2e_die "port $port (kubelet) is in use"; fi
done

mkdir -p "$NODE"/{containerd,opt,cni/net.d,cni/ipam,kubelet,volume-plugins} "$RUN"/{containerd,runc} "$LOGS" "$PIDS"
# Host paths the kubelet and runtime use outside their roots: note which existed, so node-down
# removes only what this node made.
: >"$NODE/made-paths"
for p in /var/log/pods /var/log/containers /var/lib/kubelet /run/containerd /run/netns /var/lib/otelcol; do
  [[ -e $p ]] || echo "$p" >>"$NODE/made-paths"
done

# ---- network (before any pod) ------------------------------------------------------------------
for cidr in "$E2E_SERVICE_CIDR" 10.244.0.0/16 "${E2E_NODE_POD_CIDR%.*}.0/16"; do
  ip route replace blackhole "$cidr"
done
ip addr replace "$E2E_KUBERNETES_SERVICE_IP/32" dev lo
if ! ip link show "$E2E_NODE_BRIDGE" >/dev/null 2>&1; then
  ip link add "$E2E_NODE_BRIDGE" type bridge
fi
ip addr replace "$E2E_NODE_GATEWAY/${E2E_NODE_POD_CIDR#*/}" dev "$E2E_NODE_BRIDGE"
ip link set "$E2E_NODE_BRIDGE" up
sysctl -qw "net.ipv4.conf.$E2E_NODE_BRIDGE.route_localnet=1"
cat /proc/sys/net/ipv4/ip_forward >"$NODE/ip_forward.orig"
iptables -w -N KOTEL-E2E-FWD 2>/dev/null || iptables -w -F KOTEL-E2E-FWD
iptables -w -A KOTEL-E2E-FWD -i "$E2E_NODE_BRIDGE" -o "$E2E_NODE_BRIDGE" -j ACCEPT
iptables -w -A KOTEL-E2E-FWD -i "$E2E_NODE_BRIDGE" -j DROP
iptables -w -A KOTEL-E2E-FWD -o "$E2E_NODE_BRIDGE" -j DROP
iptables -w -C FORWARD -j KOTEL-E2E-FWD 2>/dev/null || iptables -w -I FORWARD 1 -j KOTEL-E2E-FWD
iptables -w -t nat -N KOTEL-E2E-SVC 2>/dev/null || iptables -w -t nat -F KOTEL-E2E-SVC
iptables -w -t nat -A KOTEL-E2E-SVC -d "$E2E_KUBERNETES_SERVICE_IP/32" -p tcp --dport 443 \
  -j DNAT --to-destination "127.0.0.1:$API_PORT"
for chain in OUTPUT PREROUTING; do
  iptables -w -t nat -C "$chain" -j KOTEL-E2E-SVC 2>/dev/null || iptables -w -t nat -I "$chain" 1 -j KOTEL-E2E-SVC
done

# ---- containerd --------------------------------------------------------------------------------
cat >"$NODE/cni/net.d/10-kotel-e2e.conflist" <<CNI
{
  "cniVersion": "0.4.0",
  "name": "kotel-e2e",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$E2E_NODE_BRIDGE",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": "$E2E_NODE_POD_CIDR", "gateway": "$E2E_NODE_GATEWAY"}]],
        "routes": [{"dst": "0.0.0.0/0"}],
        "dataDir": "$NODE/cni/ipam"
      }
    }
  ]
}
CNI
cat >"$NODE/containerd.toml" <<TOML
version = 2
root = "$NODE/containerd"
state = "$RUN/containerd"
[grpc]
  address = "$E2E_CONTAINERD_SOCK"
[ttrpc]
  address = "$RUN/containerd/containerd.sock.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "$NODE/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "kotel.local/pause:1"
  # root here lacks CAP_SYS_RESOURCE: a negative oom_score_adj fails every sandbox.
  restrict_oom_score_adj = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "$RUN/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$NODE/cni/net.d"
    max_conf_num = 1
TOML
# Any pull goes to a closed loopback port and fails on this machine.
setsid env HTTP_PROXY=http://127.0.0.1:9 HTTPS_PROXY=http://127.0.0.1:9 NO_PROXY= \
  containerd --config "$NODE/containerd.toml" >"$LOGS/containerd.log" 2>&1 </dev/null &
echo $! >"$PIDS/containerd.pid"
e2e_log "started containerd (pid $!, log $LOGS/containerd.log)"
wait_until "containerd socket" test -S "$E2E_CONTAINERD_SOCK"
wait_until "containerd answers" ctr --address "$E2E_CONTAINERD_SOCK" version

# ---- images --------------------------------------------------------------------------------
if [[ ${E2E_SKIP_IMAGES:-0} != 1 ]]; then
  bash "$(dirname "$0")/images.sh" --import
fi

# ---- kubelet -------------------------------------------------------------------------------------
b64() { base64 -w0 <"$1"; }
cat >"$NODE/kubelet.kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters:
- name: kotel-e2e
  cluster: { server: "https://127.0.0.1:$API_PORT", certificate-authority-data: $(b64 "$PKI/ca.crt") }
users:
- name: kubelet
  user: { client-certificate-data: $(b64 "$PKI/kubelet-client.crt"), client-key-data: $(b64 "$PKI/kubelet-client.key") }
contexts:
- name: kubelet
  context: { cluster: kotel-e2e, user: kubelet }
current-context: kubelet
KC
chmod 600 "$NODE/kubelet.kubeconfig"
cat >"$NODE/kubelet.yaml" <<KCFG
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $E2E_NODE_IP
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
tlsCertFile: $PKI/kubelet-serving.crt
tlsPrivateKeyFile: $PKI/kubelet-serving.key
authentication:
  anonymous: { enabled: false }
  webhook: { enabled: true, cacheTTL: 10s }
  x509: { clientCAFile: $PKI/ca.crt }
authorization:
  mode: Webhook
  webhook: { cacheAuthorizedTTL: 10s, cacheUnauthorizedTTL: 5s }
containerRuntimeEndpoint: unix://$E2E_CONTAINERD_SOCK
cgroupDriver: cgroupfs
cgroupsPerQOS: true
# No CAP_SYS_RESOURCE here: negative oom_score_adj values are refused.
oomScoreAdj: 0
failSwapOn: false
# Pods never get this machine's resolver.
resolvConf: ""
clusterDomain: cluster.local
volumePluginDir: $NODE/volume-plugins
# Small files, so the suite sees the kubelet rotate container logs.
containerLogMaxSize: ${E2E_NODE_LOG_MAX_SIZE:-1Mi}
containerLogMaxFiles: 3
containerLogMonitorInterval: 10s
# A busy shared disk must not evict the suite's pods or collect its images.
evictionHard: { memory.available: "50Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%" }
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
registerWithTaints:
- { key: $E2E_NODE_TAINT, value: "true", effect: NoSchedule }
serializeImagePulls: false
KCFG
# --containerd: cAdvisor finds container memory stats only through containerd's socket.
setsid "$E2E_K8S_BIN/kubelet" --config="$NODE/kubelet.yaml" --kubeconfig="$NODE/kubelet.kubeconfig" \
  --root-dir="$NODE/kubelet" --hostname-override="$E2E_NODE_NAME" --node-ip="$E2E_NODE_IP" \
  --node-labels="$E2E_NODE_TAINT=true,type=real" --containerd="$E2E_CONTAINERD_SOCK" \
  --v="${E2E_KUBELET_V:-1}" >"$LOGS/kubelet.log" 2>&1 </dev/null &
echo $! >"$PIDS/kubelet.pid"
e2e_log "started kubelet (pid $!, log $LOGS/kubelet.log)"
wait_until "node $E2E_NODE_NAME Ready" node_ready
secs=$(( $(date +%s) - start_ts ))
e2e_log "real node up in ${secs}s"
echo "$(date -u +%FT%TZ) node-up ${secs}s" >>"$E2E_DIR/times.log"
