#!/usr/bin/env bash
# Builds the e2e control plane's tools from pinned Go modules into a cache directory keyed by
# version, skipping whatever is already there:
#   $KOTEL_E2E_CACHE/k8s-v<ver>/{kube-apiserver,kube-controller-manager,kube-scheduler,kubelet[,kubectl]}
#   $KOTEL_E2E_CACHE/etcd-v<ver>/etcd   $KOTEL_E2E_CACHE/kwok-v<ver>/kwok   $KOTEL_E2E_CACHE/helm-v<ver>/helm
#   $KOTEL_E2E_CACHE/gitops-check-<hash of its sources>/gitops-check   (e2e/gitops-check)
#   $KOTEL_E2E_CACHE/gitops-crds-argocd-v<ver>-kustomize-v<ver>-source-v<ver>/*.yaml
# Needs only the Go toolchain (>= 1.26 for helm/etcd as pinned) and the Go module proxy.
# kubectl is built too when no kubectl >= 1.30 is on PATH (or E2E_BUILD_KUBECTL=1).
# `build-tools.sh gitops` makes only the last two (what the gitops suite needs, seconds).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

command -v go >/dev/null || e2e_die "the Go toolchain is required (https://go.dev/dl); 'go' is not on PATH"
# helm v3.22 and etcd v3.6.16 declare `go 1.26.0`; with GOTOOLCHAIN=local an older Go fails late.
GO_MIN=${E2E_GO_MIN:-1.26}
go_ver=$(go env GOVERSION | sed 's/^go//')
if [[ ${GOTOOLCHAIN:-local} == local ]] && [[ $(printf '%s\n%s\n' "$GO_MIN" "$go_ver" | sort -V | head -1) != "$GO_MIN" ]]; then
  e2e_die "Go $go_ver is too old: the pinned tools need Go >= $GO_MIN (or set GOTOOLCHAIN=auto to let go fetch one)"
fi
mkdir -p "$KOTEL_E2E_CACHE"
# One build at a time (cluster-up and make e2e-tools may race). The gitops tools have a lock of
# their own: they are small, and `build-tools.sh gitops` should not wait for a control-plane build.
if [[ ${1:-all} != gitops ]]; then
  exec 9>"$KOTEL_E2E_CACHE/.build.lock"
  flock 9 || true
fi
exec 8>"$KOTEL_E2E_CACHE/.build-gitops.lock"

export GOFLAGS=-mod=mod GOTOOLCHAIN=${GOTOOLCHAIN:-local} CGO_ENABLED=0
NICE=(nice -n "${E2E_NICE:-10}")
SRC=$KOTEL_E2E_CACHE/src          # wrapper modules (kept: their go.sum makes rebuilds cheap)
TIMES=$KOTEL_E2E_CACHE/build-times.log
total_start=$(date +%s)
built_any=0

# timed NAME CMD...: run a build step, log its wall time.
timed() {
  local name=$1 start; shift
  start=$(date +%s)
  e2e_log "building $name ..."
  if ! "$@"; then e2e_die "building $name failed (see the go output above)"; fi
  local secs=$(( $(date +%s) - start ))
  e2e_log "built $name in ${secs}s"
  echo "$(date -u +%FT%TZ) $name ${secs}s" >>"$TIMES"
  built_any=1
}

# wrapper DIR MODULE: a fresh wrapper module directory.
wrapper() {
  local dir=$1 mod=$2
  mkdir -p "$dir"
  if [[ ! -f $dir/go.mod ]]; then (cd "$dir" && go mod init "$mod" >/dev/null 2>&1); fi
}

want_kubectl=0
if [[ ${E2E_BUILD_KUBECTL:-0} == 1 ]]; then want_kubectl=1
elif [[ -z $(E2E_K8S_BIN=/nonexistent e2e_kubectl) ]]; then want_kubectl=1; fi

# --- kube-apiserver, kube-controller-manager, kube-scheduler (+ kubectl) -----------------------
build_k8s() {
  local ver=$E2E_K8S_VERSION minor staging dir out=$E2E_K8S_BIN
  minor=$(cut -d. -f2 <<<"$ver"); staging="v0.${ver#1.}"
  dir=$SRC/k8s-v$ver; wrapper "$dir" kotel.local/e2e/k8sbins
  cd "$dir"
  local gomod
  gomod=$(go mod download -json "k8s.io/kubernetes@v$ver" | sed -n 's/.*"GoMod": "\(.*\)",*$/\1/p')
  [[ -f $gomod ]] || e2e_die "could not download k8s.io/kubernetes@v$ver from the module proxy"
  # Every staging module the real go.mod requires at the fake v0.0.0 gets its published tag.
  local m
  for m in $(awk '$1 ~ /^k8s\.io\// && $2 == "v0.0.0" {print $1}' "$gomod"); do
    go mod edit -replace="$m=$m@$staging"
  done
  go get "k8s.io/kubernetes@v$ver"
  local ld="-s -w" p date
  date=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld+=" -X $p.gitVersion=v$ver -X $p.gitMajor=1 -X $p.gitMinor=$minor -X $p.gitTreeState=clean"
    ld+=" -X $p.gitCommit=0000000000000000000000000000000000000000 -X $p.buildDate=$date"
  done
  mkdir -p "$out"
  local c bins=(kube-apiserver kube-controller-manager kube-scheduler kubelet)
  [[ $want_kubectl == 1 ]] && bins+=(kubectl)
  for c in "${bins[@]}"; do
    [[ -x $out/$c ]] && continue
    timed "$c v$ver" "${NICE[@]}" go build -trimpath -tags=selinux,notest,grpcnotrace -ldflags "$ld" \
      -o "$out/$c.tmp" "k8s.io/kubernetes/cmd/$c"
    mv "$out/$c.tmp" "$out/$c"   # only complete binaries count as built
  done
  "$out/kube-apiserver" --version
}

# --- etcd (wrapper around go.etcd.io/etcd/server/v3, whose own go.mod has replaces) -----------
build_etcd() {
  local ver=$E2E_ETCD_VERSION dir out=$E2E_ETCD_BIN
  dir=$SRC/etcd-v$ver; wrapper "$dir" kotel.local/e2e/etcd
  cd "$dir"
  go get "go.etcd.io/etcd/server/v3@v$ver"
  mkdir -p "$out"
  timed "etcd v$ver" "${NICE[@]}" go build -trimpath -ldflags "-s -w" -o "$out/etcd.tmp" go.etcd.io/etcd/server/v3
  mv "$out/etcd.tmp" "$out/etcd"
  "$out/etcd" --version
}

# --- kwok (no replace directives: go install works) -------------------------------------------
build_kwok() {
  local ver=$E2E_KWOK_VERSION out=$E2E_KWOK_BIN
  mkdir -p "$out" "$out.tmp"
  timed "kwok v$ver" env GOBIN="$out.tmp" "${NICE[@]}" go install -trimpath -ldflags "-s -w" \
    "sigs.k8s.io/kwok/cmd/kwok@v$ver"
  mv "$out.tmp/kwok" "$out/kwok"; rmdir "$out.tmp"
}

# --- helm v3 -------------------------------------------------------------------------------------
build_helm() {
  local ver=$E2E_HELM_VERSION out=$E2E_HELM_BIN
  mkdir -p "$out" "$out.tmp"
  timed "helm v$ver" env GOBIN="$out.tmp" "${NICE[@]}" go install -trimpath \
    -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=v$ver -X helm.sh/helm/v3/internal/version.gitTreeState=clean" \
    "helm.sh/helm/v3/cmd/helm@v$ver"
  mv "$out.tmp/helm" "$out/helm"; rmdir "$out.tmp"
  "$out/helm" version --short
}

# --- gitops-check: kstatus (sigs.k8s.io/cli-utils) and Argo CD's Lua health (gopher-lua) -------
build_gitops_check() {
  local out=$E2E_GITOPS_CHECK_BIN
  cd "$E2E_GITOPS_CHECK_SRC"
  mkdir -p "$out"
  # -mod=readonly: the committed go.sum decides, and the build never edits the repository.
  timed "gitops-check $E2E_GITOPS_CHECK_HASH" env GOFLAGS=-mod=readonly "${NICE[@]}" go build -trimpath \
    -ldflags "-s -w" -o "$out/gitops-check.tmp" .
  mv "$out/gitops-check.tmp" "$out/gitops-check"
}

# module_dir MODULE VERSION: the module's directory in the module cache, downloaded if needed.
module_dir() {
  local json dir
  json=$(cd / && GOFLAGS= go mod download -json "$1@v$2" 2>&1) || true
  dir=$(sed -n 's/.*"Dir": "\(.*\)",*$/\1/p' <<<"$json")
  [[ -n $dir && -d $dir ]] || e2e_die "could not download $1@v$2 from the module proxy: $json"
  echo "$dir"
}

# --- the CRDs of Argo CD's Application and Flux's GitRepository and Kustomization -----------------
fetch_gitops_crds() {
  local out=$E2E_GITOPS_CRDS_DIR start dir
  start=$(date +%s)
  rm -rf "$out.tmp"; mkdir -p "$out.tmp"
  dir=$(module_dir github.com/argoproj/argo-cd/v3 "$E2E_ARGOCD_VERSION")
  cp "$dir/manifests/crds/application-crd.yaml" "$out.tmp/"
  dir=$(module_dir github.com/fluxcd/source-controller "$E2E_FLUX_SOURCE_VERSION")
  cp "$dir/config/crd/bases/source.toolkit.fluxcd.io_gitrepositories.yaml" "$out.tmp/"
  dir=$(module_dir github.com/fluxcd/kustomize-controller "$E2E_FLUX_KUSTOMIZE_VERSION")
  cp "$dir/config/crd/bases/kustomize.toolkit.fluxcd.io_kustomizations.yaml" "$out.tmp/"
  chmod u+w "$out.tmp"/*.yaml   # the module cache is read-only
  rm -rf "$out"; mv "$out.tmp" "$out"
  local secs=$(( $(date +%s) - start ))
  e2e_log "gitops CRDs in $out (${secs}s)"
  echo "$(date -u +%FT%TZ) gitops-crds argocd-v$E2E_ARGOCD_VERSION kustomize-v$E2E_FLUX_KUSTOMIZE_VERSION source-v$E2E_FLUX_SOURCE_VERSION ${secs}s" >>"$TIMES"
}

gitops_crds_done() {
  [[ -f $E2E_GITOPS_CRDS_DIR/application-crd.yaml \
     && -f $E2E_GITOPS_CRDS_DIR/source.toolkit.fluxcd.io_gitrepositories.yaml \
     && -f $E2E_GITOPS_CRDS_DIR/kustomize.toolkit.fluxcd.io_kustomizations.yaml ]]
}

k8s_done() {
  [[ -x $E2E_K8S_BIN/kube-apiserver && -x $E2E_K8S_BIN/kube-controller-manager && -x $E2E_K8S_BIN/kube-scheduler \
     && -x $E2E_K8S_BIN/kubelet ]] \
    && { [[ $want_kubectl == 0 ]] || [[ -x $E2E_K8S_BIN/kubectl ]]; }
}

# Sequential on purpose: these builds are memory- and CPU-heavy, and others share the cores.
if [[ ${1:-all} != gitops ]]; then
  k8s_done                     || (build_k8s)
  [[ -x $E2E_ETCD_BIN/etcd ]]  || (build_etcd)
  [[ -x $E2E_KWOK_BIN/kwok ]]  || (build_kwok)
  [[ -x $E2E_HELM_BIN/helm ]]  || (build_helm)
fi
flock 8 || true
[[ -x $E2E_GITOPS_CHECK_BIN/gitops-check ]] || (build_gitops_check)
gitops_crds_done                            || (fetch_gitops_crds)

secs=$(( $(date +%s) - total_start ))
e2e_log "tools ready in $KOTEL_E2E_CACHE (${secs}s)"
echo "$(date -u +%FT%TZ) build-tools total ${secs}s" >>"$TIMES"
