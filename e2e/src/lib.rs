//! Harness for kotel's end-to-end tests: a kubeconfig, a kube client, kubectl, polling with
//! deadlines, phase timings, and the operator run as a child process with its own
//! ServiceAccount's credentials. The tests themselves live in `tests/` behind the `e2e` feature.

pub mod backend;
pub mod kotel;

use std::fmt::Debug;
use std::future::Future;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use kube::Client;
use kube::config::{AuthInfo, KubeConfigOptions, Kubeconfig, NamedAuthInfo};

/// The repository root (the parent of this crate).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("e2e/ has a parent")
        .to_path_buf()
}

/// Where e2e state lives: `.e2e/` at the repository root (git-ignored).
pub fn state_dir() -> PathBuf {
    std::env::var_os("E2E_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".e2e"))
}

/// The cluster under test: `$KUBECONFIG`, else the one `make cluster-up` wrote.
pub fn kubeconfig_path() -> PathBuf {
    match std::env::var_os("KUBECONFIG") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => state_dir().join("kubeconfig"),
    }
}

/// The audit log of the local control plane (writes only), when the cluster is ours.
pub fn audit_log_path() -> Option<PathBuf> {
    let p = state_dir().join("logs").join("audit.log");
    let ours = kubeconfig_path() == state_dir().join("kubeconfig");
    (ours && p.exists()).then_some(p)
}

/// A client with the kubeconfig's (admin) credentials.
pub async fn admin_client() -> Result<Client> {
    client_from(&kubeconfig_path()).await
}

/// A client from a kubeconfig file.
pub async fn client_from(path: &Path) -> Result<Client> {
    let kc = Kubeconfig::read_from(path)
        .with_context(|| format!("reading kubeconfig {}", path.display()))?;
    let cfg = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default()).await?;
    Ok(Client::try_from(cfg)?)
}

/// The kubectl binary: `$E2E_KUBECTL`, else `kubectl` on PATH.
pub fn kubectl_bin() -> String {
    std::env::var("E2E_KUBECTL").unwrap_or_else(|_| "kubectl".into())
}

/// The helm binary: `$E2E_HELM`, else `helm` on PATH.
pub fn helm_bin() -> String {
    std::env::var("E2E_HELM").unwrap_or_else(|_| "helm".into())
}

/// Output of a finished command.
#[derive(Debug)]
pub struct Output {
    pub status: std::process::ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Runs a command with optional stdin and returns its output whatever the exit status.
pub fn run(cmd: &mut Command, stdin: Option<&str>) -> Result<Output> {
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().with_context(|| format!("spawning {cmd:?}"))?;
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("piped stdin")
            .write_all(input.as_bytes())?;
    }
    let out = child.wait_with_output()?;
    Ok(Output {
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

/// `kubectl <args>` against the cluster under test; returns its output whatever the status.
pub fn kubectl_raw(args: &[&str], stdin: Option<&str>) -> Result<Output> {
    let mut cmd = Command::new(kubectl_bin());
    cmd.arg("--kubeconfig").arg(kubeconfig_path()).args(args);
    run(&mut cmd, stdin)
}

/// `kubectl <args>`; fails with its stderr unless it exits 0; returns stdout.
pub fn kubectl(args: &[&str]) -> Result<String> {
    kubectl_stdin(args, None)
}

/// `kubectl <args>` with stdin; fails with its stderr unless it exits 0; returns stdout.
pub fn kubectl_stdin(args: &[&str], stdin: Option<&str>) -> Result<String> {
    let out = kubectl_raw(args, stdin)?;
    if !out.status.success() {
        bail!(
            "kubectl {} failed ({}): {}",
            args.join(" "),
            out.status,
            out.stderr.trim()
        );
    }
    Ok(out.stdout)
}

/// Polls `f` every `every` until it yields `Some`, or fails after `timeout` with the last
/// observation (the `Err` of the last attempt, or the description of what was awaited).
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>>>,
{
    let start = Instant::now();
    let every = Duration::from_millis(250);
    loop {
        let last = match f().await {
            Ok(Some(v)) => return Ok(v),
            Ok(None) => None,
            Err(e) => Some(e),
        };
        if start.elapsed() >= timeout {
            return Err(match last {
                Some(e) => e.context(format!("timed out after {timeout:?} waiting for {what}")),
                None => anyhow!("timed out after {timeout:?} waiting for {what}"),
            });
        }
        tokio::time::sleep(every).await;
    }
}

/// Named phase timings, printed as benchmark figures (never asserted).
#[derive(Debug, Default)]
pub struct Timings {
    phases: Vec<(String, Duration)>,
}

impl Timings {
    pub fn record(&mut self, name: &str, d: Duration) {
        println!("TIMING {name}: {:.2}s", d.as_secs_f64());
        self.phases.push((name.to_owned(), d));
    }

    pub fn phases(&self) -> &[(String, Duration)] {
        &self.phases
    }
}

/// Writes a kubeconfig that talks to the same cluster as `base` but authenticates with
/// `token` (e.g. from the TokenRequest API: `kubectl create token`).
pub fn token_kubeconfig(base: &Path, token: &str, user: &str, out: &Path) -> Result<()> {
    let mut kc = Kubeconfig::read_from(base)?;
    let ctx_name = kc
        .current_context
        .clone()
        .ok_or_else(|| anyhow!("{} has no current-context", base.display()))?;
    let ctx = kc
        .contexts
        .iter_mut()
        .find(|c| c.name == ctx_name)
        .and_then(|c| c.context.as_mut())
        .ok_or_else(|| anyhow!("context {ctx_name} not found"))?;
    ctx.user = Some(user.to_owned());
    ctx.namespace = None;
    kc.auth_infos = vec![NamedAuthInfo {
        name: user.to_owned(),
        auth_info: Some(AuthInfo {
            token: Some(token.to_owned().into()),
            ..Default::default()
        }),
        ..Default::default()
    }];
    let yaml = serde_yaml_ng::to_string(&kc)?;
    std::fs::write(out, yaml).with_context(|| format!("writing {}", out.display()))?;
    Ok(())
}

/// Points every cluster of the kubeconfig `path` at 127.0.0.1:`port` (a proxy in front of the
/// API server), still verifying the server's certificate against the original host.
pub fn route_kubeconfig_through(path: &Path, port: u16) -> Result<()> {
    let mut kc = Kubeconfig::read_from(path)?;
    for named in &mut kc.clusters {
        let Some(cluster) = named.cluster.as_mut() else {
            continue;
        };
        let server = cluster
            .server
            .clone()
            .context("a cluster without a server")?;
        let url: http::Uri = server.parse().context("the cluster's server URL")?;
        let host = url.host().context("a server URL without a host")?;
        cluster
            .tls_server_name
            .get_or_insert_with(|| host.trim_matches(['[', ']']).to_owned());
        cluster.server = Some(format!("https://127.0.0.1:{port}{}", url.path()));
    }
    std::fs::write(path, serde_yaml_ng::to_string(&kc)?)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// The wall-clock time as RFC 3339 UTC, to line test output up with component logs.
pub fn utc_now() -> String {
    k8s_openapi::jiff::Timestamp::now().to_string()
}

/// The API server's socket address, from the admin kubeconfig.
pub async fn api_server_addr() -> Result<std::net::SocketAddr> {
    let config = kube::Config::infer().await?;
    let url = &config.cluster_url;
    let host = url.host().context("no host")?.trim_matches(['[', ']']);
    tokio::net::lookup_host((host, url.port_u16().unwrap_or(443)))
        .await?
        .next()
        .context("the API server's host resolves to nothing")
}

/// A kubeconfig for `namespace/service_account`, from a TokenRequest (valid `duration`).
pub fn service_account_kubeconfig(
    namespace: &str,
    service_account: &str,
    duration: &str,
    out: &Path,
) -> Result<()> {
    let token = kubectl(&[
        "-n",
        namespace,
        "create",
        "token",
        service_account,
        "--duration",
        duration,
    ])?;
    token_kubeconfig(
        &kubeconfig_path(),
        token.trim(),
        &format!("system:serviceaccount:{namespace}:{service_account}"),
        out,
    )
}

/// A child process (the operator) with its output in a log file; killed when dropped.
#[derive(Debug)]
pub struct Process {
    child: Option<Child>,
    pub log: PathBuf,
}

impl Process {
    /// Starts `program args` with `env`, stdout and stderr appended to `log`.
    pub fn spawn(
        program: &Path,
        args: &[&str],
        env: &[(&str, &str)],
        log: PathBuf,
    ) -> Result<Self> {
        if let Some(dir) = log.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)?;
        let mut cmd = Command::new(program);
        cmd.args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(file.try_clone()?)
            .stderr(file);
        let child = cmd
            .spawn()
            .with_context(|| format!("spawning {}", program.display()))?;
        Ok(Self {
            child: Some(child),
            log,
        })
    }

    pub fn id(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Still running?
    pub fn running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) -> Result<()> {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            c.wait()?;
        }
        Ok(())
    }

    /// The last `n` lines of the log, for failure messages.
    pub fn log_tail(&self, n: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.kill();
    }
}

/// Pretty form for assertion messages.
pub fn show<T: Debug>(v: &T) -> String {
    format!("{v:#?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_kubeconfig_keeps_cluster_and_replaces_user() {
        let dir = std::env::temp_dir().join(format!("kotel-e2e-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let base = dir.join("base");
        std::fs::write(
            &base,
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:6443\n    certificate-authority-data: Zm9v\nusers:\n- name: admin\n  user:\n    client-certificate-data: YQ==\n    client-key-data: Yg==\ncontexts:\n- name: x\n  context: { cluster: c, user: admin }\ncurrent-context: x\n",
        )
        .unwrap();
        let out = dir.join("sa");
        token_kubeconfig(&base, "tok", "sa-user", &out).unwrap();
        let kc = Kubeconfig::read_from(&out).unwrap();
        assert_eq!(kc.clusters.len(), 1);
        assert_eq!(kc.auth_infos.len(), 1);
        let ai = kc.auth_infos[0].auth_info.as_ref().unwrap();
        assert!(ai.client_certificate_data.is_none());
        assert_eq!(
            kc.contexts[0].context.as_ref().unwrap().user.as_deref(),
            Some("sa-user")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_kubeconfig_routed_through_a_proxy_keeps_the_servers_name_for_tls() {
        let dir = std::env::temp_dir().join(format!("kotel-e2e-route-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("kc");
        std::fs::write(
            &path,
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://api.example:6443/prefix\ncontexts: []\n",
        )
        .unwrap();
        route_kubeconfig_through(&path, 4242).unwrap();
        let kc = Kubeconfig::read_from(&path).unwrap();
        let c = kc.clusters[0].cluster.as_ref().unwrap();
        assert_eq!(c.server.as_deref(), Some("https://127.0.0.1:4242/prefix"));
        assert_eq!(c.tls_server_name.as_deref(), Some("api.example"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn wait_for_times_out_with_the_last_error() {
        let err = wait_for("never", Duration::from_millis(300), || async {
            Err::<Option<()>, _>(anyhow!("still broken"))
        })
        .await
        .unwrap_err();
        let msg = format!("{err:#}");
        assert!(
            msg.contains("never") && msg.contains("still broken"),
            "{msg}"
        );
    }
}
