#!/usr/bin/env bash
# Starts a local Kubernetes control plane for the e2e suite, all on 127.0.0.1, no Docker:
#   etcd, kube-apiserver (RBAC+Node authz, service-account tokens, audit log of writes),
#   kube-controller-manager (all default controllers), kube-scheduler, kwok (fake nodes).
# Creates E2E_NODES (default 3) fake nodes managed by kwok, writes .e2e/kubeconfig, and waits
# until /readyz is ok and every node is Ready and untainted. Idempotent: a healthy cluster is
# left alone; a half-dead one is torn down and started again.
# State: .e2e/{pki,logs,pids,etcd}; logs in .e2e/logs/<component>.log.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

E2E_NODES=${E2E_NODES:-3}
ETCD_PORT=${E2E_ETCD_PORT:-2379}
ETCD_PEER_PORT=${E2E_ETCD_PEER_PORT:-2380}
API_PORT=${E2E_APISERVER_PORT:-6443}
KCM_PORT=${E2E_KCM_PORT:-10257}
SCHED_PORT=${E2E_SCHEDULER_PORT:-10259}
KWOK_PORT=${E2E_KWOK_PORT:-10247}
TIMEOUT=${E2E_UP_TIMEOUT:-180}

PKI=$E2E_DIR/pki LOGS=$E2E_DIR/logs PIDS=$E2E_DIR/pids
KUBECONFIG_OUT=$E2E_DIR/kubeconfig
COMPONENTS=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok)
start_ts=$(date +%s)

pid_of() { cat "$PIDS/$1.pid" 2>/dev/null || true; }
alive() { local p; p=$(pid_of "$1"); [[ -n $p ]] && kill -0 "$p" 2>/dev/null; }

# A component died: say which, where its log is, and show its end.
report_dead() {
  local c=$1
  echo >&2
  e2e_log "ERROR: $c exited. Log: $LOGS/$c.log (last 25 lines):"
  tail -n 25 "$LOGS/$c.log" >&2 || true
  e2e_log "stop the rest with: make cluster-down"
  exit 1
}

# wait_until DESC COMPONENT CMD...: poll CMD until it succeeds; fail fast if COMPONENT dies.
wait_until() {
  local desc=$1 comp=$2; shift 2
  local deadline=$(( $(date +%s) + TIMEOUT ))
  until "$@" >/dev/null 2>&1; do
    for c in "${COMPONENTS[@]}"; do [[ -f $PIDS/$c.pid ]] && ! alive "$c" && report_dead "$c"; done
    [[ $(date +%s) -lt $deadline ]] || e2e_die "timed out after ${TIMEOUT}s waiting for $desc (see $LOGS/$comp.log)"
    sleep 1
  done
  e2e_log "$desc: ok"
}

port_free() {
  local port=$1 who=$2
  if ss -Hltn "sport = :$port" 2>/dev/null | grep -q .; then
    e2e_die "port 127.0.0.1:$port (for $who) is already in use: $(ss -Hltnp "sport = :$port" 2>/dev/null | sed -n 's/.*users:((\(.*\))).*/\1/p' | head -1). Stop it, or set E2E_*_PORT (see e2e/scripts/cluster-up.sh)"
  fi
}

# start NAME BINARY ARGS...: run in its own session, log and pid under .e2e/.
start() {
  local name=$1 bin=$2; shift 2
  [[ -x $bin ]] || e2e_die "$name binary missing at $bin (run: make e2e-tools)"
  setsid "$bin" "$@" >"$LOGS/$name.log" 2>&1 < /dev/null &
  echo $! >"$PIDS/$name.pid"
  e2e_log "started $name (pid $!, log $LOGS/$name.log)"
}

KUBECTL=$(e2e_kubectl)
kc() { "$KUBECTL" --kubeconfig "$KUBECONFIG_OUT" "$@"; }

# ---- already up? ----------------------------------------------------------------------------
all_alive=1 any_alive=0
for c in "${COMPONENTS[@]}"; do if alive "$c"; then any_alive=1; else all_alive=0; fi; done
if [[ $all_alive == 1 && -n $KUBECTL ]] && kc get --raw /readyz >/dev/null 2>&1; then
  e2e_log "cluster already up (kubeconfig: $KUBECONFIG_OUT)"
  if [[ ${E2E_REAL_NODE:-auto} != 0 ]] && e2e_node_possible; then bash "$(dirname "$0")/node-up.sh"; fi
  exit 0
fi
if [[ $any_alive == 1 ]]; then
  e2e_log "cluster is partly running; restarting it"
  bash "$(dirname "$0")/cluster-down.sh"
fi

# ---- tools ----------------------------------------------------------------------------------
bash "$(dirname "$0")/build-tools.sh"
KUBECTL=$(e2e_kubectl)
[[ -n $KUBECTL ]] || e2e_die "no kubectl >= 1.30 found (set E2E_KUBECTL or E2E_BUILD_KUBECTL=1 make e2e-tools)"
command -v openssl >/dev/null || e2e_die "openssl is required for the cluster's PKI"

for p in "$ETCD_PORT:etcd" "$ETCD_PEER_PORT:etcd-peer" "$API_PORT:kube-apiserver" "$KCM_PORT:kube-controller-manager" \
         "$SCHED_PORT:kube-scheduler" "$KWOK_PORT:kwok"; do
  port_free "${p%%:*}" "${p#*:}"
done

mkdir -p "$PKI" "$LOGS" "$PIDS"
# Pid files of a run that died without cluster-down would read as components that just exited.
for c in "${COMPONENTS[@]}"; do rm -f "$PIDS/$c.pid"; done
rm -rf "$E2E_DIR/etcd"   # a fresh cluster every time it starts

# ---- PKI (kept across restarts; delete .e2e/pki to regenerate) -----------------------------
if [[ ! -f $PKI/admin.crt ]]; then
  e2e_log "generating PKI in $PKI"
  (
    cd "$PKI"
    exec 2>openssl.log
    openssl req -x509 -new -nodes -newkey rsa:2048 -keyout ca.key -out ca.crt -days 3650 -subj "/CN=kotel-e2e-ca" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature"
    sign() { # sign NAME SUBJECT EXTFILE-CONTENT
      openssl req -new -nodes -newkey rsa:2048 -keyout "$1.key" -out "$1.csr" -subj "$2"
      printf '%b' "$3" >"$1.ext"
      openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -out "$1.crt" -days 3650 -extfile "$1.ext"
    }
    sign apiserver "/CN=kube-apiserver" \
      'subjectAltName=IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n'
    sign admin "/O=system:masters/CN=kotel-e2e-admin" 'extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n'
    openssl genrsa -out sa.key 2048
    openssl rsa -in sa.key -pubout -out sa.pub
    rm -f ./*.csr ./*.ext
  ) || e2e_die "PKI generation failed; see $PKI/openssl.log"
fi

# Certificates of the real node (node-up.sh), added to an older pki/ too: the API server's client
# certificate for kubelets (logs, exec, port-forward), the kubelet's client certificate (the Node
# authorizer knows it by its group and name) and its serving certificate for 127.0.0.1.
if [[ ! -f $PKI/kubelet-serving.crt ]]; then
  (
    cd "$PKI"
    exec 2>>openssl.log
    sign() { # sign NAME SUBJECT EXTFILE-CONTENT
      openssl req -new -nodes -newkey rsa:2048 -keyout "$1.key" -out "$1.csr" -subj "$2"
      printf '%b' "$3" >"$1.ext"
      openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -out "$1.crt" -days 3650 -extfile "$1.ext"
    }
    sign apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" 'extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n'
    sign kubelet-client "/O=system:nodes/CN=system:node:$E2E_NODE_NAME" 'extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n'
    sign kubelet-serving "/CN=$E2E_NODE_NAME" "subjectAltName=IP:$E2E_NODE_IP,IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n"
    rm -f ./*.csr ./*.ext
  ) || e2e_die "kubelet PKI generation failed; see $PKI/openssl.log"
fi

b64() { base64 -w0 <"$1"; }
cat >"$KUBECONFIG_OUT.tmp" <<KC
apiVersion: v1
kind: Config
clusters:
- name: kotel-e2e
  cluster:
    server: https://127.0.0.1:$API_PORT
    certificate-authority-data: $(b64 "$PKI/ca.crt")
users:
- name: kotel-e2e-admin
  user:
    client-certificate-data: $(b64 "$PKI/admin.crt")
    client-key-data: $(b64 "$PKI/admin.key")
contexts:
- name: kotel-e2e
  context: { cluster: kotel-e2e, user: kotel-e2e-admin }
current-context: kotel-e2e
KC
chmod 600 "$KUBECONFIG_OUT.tmp"; mv "$KUBECONFIG_OUT.tmp" "$KUBECONFIG_OUT"

# Audit every write (Metadata level) so tests can count the API writes a client makes.
cat >"$E2E_DIR/audit-policy.yaml" <<'AP'
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: Metadata
  verbs: [create, update, patch, delete, deletecollection]
- level: None
AP

# kwok reads flags over this file; an explicit one keeps ~/.kwok/kwok.yaml out of the tests.
cat >"$E2E_DIR/kwok.yaml" <<'KW'
apiVersion: config.kwok.x-k8s.io/v1alpha1
kind: KwokConfiguration
options: {}
KW

# ---- etcd -----------------------------------------------------------------------------------
start etcd "$E2E_ETCD_BIN/etcd" --name=kotel-e2e --data-dir="$E2E_DIR/etcd" \
  --listen-client-urls="http://127.0.0.1:$ETCD_PORT" --advertise-client-urls="http://127.0.0.1:$ETCD_PORT" \
  --listen-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls="http://127.0.0.1:$ETCD_PEER_PORT" \
  --initial-cluster="kotel-e2e=http://127.0.0.1:$ETCD_PEER_PORT" \
  --unsafe-no-fsync=true --quota-backend-bytes=2147483648 --log-level=warn
wait_until "etcd /health" etcd curl -sf "http://127.0.0.1:$ETCD_PORT/health"

# ---- kube-apiserver -------------------------------------------------------------------------
start kube-apiserver "$E2E_K8S_BIN/kube-apiserver" \
  --etcd-servers="http://127.0.0.1:$ETCD_PORT" --bind-address=127.0.0.1 --advertise-address=127.0.0.1 \
  --secure-port="$API_PORT" --cert-dir="$PKI/apiserver-generated" \
  --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" --client-ca-file="$PKI/ca.crt" \
  --service-account-issuer=https://kubernetes.default.svc.cluster.local \
  --service-account-key-file="$PKI/sa.pub" --service-account-signing-key-file="$PKI/sa.key" \
  --service-cluster-ip-range=10.96.0.0/16 --authorization-mode=Node,RBAC --allow-privileged=true \
  --enable-admission-plugins=NodeRestriction \
  --kubelet-client-certificate="$PKI/apiserver-kubelet-client.crt" --kubelet-client-key="$PKI/apiserver-kubelet-client.key" \
  --kubelet-certificate-authority="$PKI/ca.crt" \
  --audit-policy-file="$E2E_DIR/audit-policy.yaml" --audit-log-path="$LOGS/audit.log" --audit-log-maxsize=200 \
  --profiling=false --v=1
wait_until "kube-apiserver /readyz" kube-apiserver kc get --raw /readyz

# ---- controller-manager, scheduler, kwok -----------------------------------------------------
start kube-controller-manager "$E2E_K8S_BIN/kube-controller-manager" \
  --kubeconfig="$KUBECONFIG_OUT" --authentication-kubeconfig="$KUBECONFIG_OUT" --authorization-kubeconfig="$KUBECONFIG_OUT" \
  --leader-elect=false --bind-address=127.0.0.1 --secure-port="$KCM_PORT" \
  --controllers='*' --use-service-account-credentials=true \
  --service-account-private-key-file="$PKI/sa.key" --root-ca-file="$PKI/ca.crt" \
  --cluster-signing-cert-file="$PKI/ca.crt" --cluster-signing-key-file="$PKI/ca.key" \
  --concurrent-gc-syncs=5 --v=1
start kube-scheduler "$E2E_K8S_BIN/kube-scheduler" \
  --kubeconfig="$KUBECONFIG_OUT" --authentication-kubeconfig="$KUBECONFIG_OUT" --authorization-kubeconfig="$KUBECONFIG_OUT" \
  --leader-elect=false --bind-address=127.0.0.1 --secure-port="$SCHED_PORT" --v=1
# kwok v0.7 loads its built-in node/pod stages when given none; the lease duration makes it pick
# the plain heartbeat stage plus Lease renewals (see docs). It manages nodes annotated below.
start kwok "$E2E_KWOK_BIN/kwok" \
  --kubeconfig="$KUBECONFIG_OUT" \
  --manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake \
  --node-lease-duration-seconds=40 --cidr=10.244.0.0/16 --node-ip=127.0.0.1 \
  --server-address="127.0.0.1:$KWOK_PORT" --config="$E2E_DIR/kwok.yaml"

# ---- nodes ----------------------------------------------------------------------------------
nodes_yaml() {
  local i
  for ((i = 0; i < E2E_NODES; i++)); do
    cat <<N
apiVersion: v1
kind: Node
metadata:
  name: kwok-node-$i
  annotations: { kwok.x-k8s.io/node: fake, node.alpha.kubernetes.io/ttl: "0" }
  labels: { kubernetes.io/hostname: kwok-node-$i, kubernetes.io/os: linux, kubernetes.io/arch: amd64, type: kwok }
spec: {}
status:
  allocatable: { cpu: "32", memory: 256Gi, pods: "110" }
  capacity: { cpu: "32", memory: 256Gi, pods: "110" }
---
N
  done
}
wait_until "RBAC bootstrap (admin can create nodes)" kube-apiserver kc auth can-i create nodes
nodes_yaml | kc apply -f - >/dev/null
nodes_ready() {
  local ready
  ready=$(kc get nodes -l type=kwok -o jsonpath='{range .items[*]}{.metadata.name}{" "}{.status.conditions[?(@.type=="Ready")].status}{" "}{.spec.taints}{"\n"}{end}' \
    | awk '$2 == "True" && NF == 2' | wc -l)
  [[ $ready -ge $E2E_NODES ]]
}
wait_until "$E2E_NODES kwok nodes Ready and untainted" kwok nodes_ready
wait_until "default ServiceAccount" kube-controller-manager kc -n default get serviceaccount default

# ---- the real node ----------------------------------------------------------------------------
# containerd + kubelet as node 127.0.0.1 (tainted, so only what tolerates it lands there), when the
# machine can run it; E2E_REAL_NODE=0 skips it, =1 makes its absence an error.
if [[ ${E2E_REAL_NODE:-auto} != 0 ]]; then
  if e2e_node_possible; then
    bash "$(dirname "$0")/node-up.sh"
  elif [[ ${E2E_REAL_NODE:-auto} == 1 ]]; then
    e2e_die "E2E_REAL_NODE=1 but this machine cannot run the real node (needs root, containerd, runc, CNI plugins, kubelet: make e2e-tools)"
  else
    e2e_log "no real node: containerd/runc/CNI plugins/kubelet missing or not root (make e2e-tools installs them)"
  fi
fi

secs=$(( $(date +%s) - start_ts ))
e2e_log "cluster up in ${secs}s. export KUBECONFIG=$KUBECONFIG_OUT"
echo "$(date -u +%FT%TZ) cluster-up ${secs}s" >>"$E2E_DIR/times.log"
