#!/usr/bin/env bash
# Installs what the real node needs from Debian's packages when it is missing: containerd, runc
# and the CNI plugins (no service is started; node-up.sh runs containerd itself).
set -euo pipefail
source "$(dirname "$0")/lib.sh"
missing=()
command -v containerd >/dev/null || missing+=(containerd)
command -v runc >/dev/null || missing+=(runc)
[[ -x /usr/lib/cni/bridge ]] || missing+=(containernetworking-plugins)
command -v iptables >/dev/null || missing+=(iptables)
command -v gcc >/dev/null || missing+=(gcc libc6-dev)
if [[ ${#missing[@]} == 0 ]]; then e2e_log "node packages present"; exit 0; fi
[[ $(id -u) == 0 ]] || e2e_die "installing ${missing[*]} needs root (apt-get)"
e2e_log "installing ${missing[*]} from Debian's packages"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
e2e_log "installed ${missing[*]}"
