//! `kotel-operator run`: connect, serve the HTTP endpoints, win the leader lease, run the
//! controllers, and shut down in order on SIGTERM (stop reconciling, release the lease, stop
//! serving).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use kube::runtime::events::{Recorder, Reporter};
use kube::{Api, Client};
use tokio::sync::watch;
use tracing::{error, info, warn};

use crate::controller::{self, Context};
use crate::http::{self, Endpoints, HttpError, HttpState};
use crate::lease::{LeaderElector, LeaseError};
use crate::metrics::Metrics;
use crate::names::MANAGER;
use crate::rbac::KubeletPodsResource;
use crate::validate::OperatorDefaults;

const LEASE_DURATION: Duration = Duration::from_secs(15);
const RENEW_EVERY: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum LogFormat {
    Json,
    Text,
}

pub struct RunOptions {
    pub namespaces: Vec<String>,
    pub metrics_addr: SocketAddr,
    pub health_addr: SocketAddr,
    pub leader_election: bool,
    pub lease_namespace: String,
    pub lease_name: String,
    pub identity: Option<String>,
    pub collector_image: Option<String>,
    /// How long a rollout may take before it is reported as Stalled.
    pub progress_deadline: std::time::Duration,
    /// Whether collectors get the cluster rights their config needs (see `--collector-rbac`).
    pub collector_rbac: bool,
    /// Which of those rights may be granted (see `--collector-rbac-allow`).
    pub rbac_allow: crate::rbac::RbacAllow,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("connect to the Kubernetes API: {0}")]
    Connect(#[source] kube::Error),
    #[error("logging: {0}")]
    Logging(String),
    #[error(transparent)]
    Http(#[from] HttpError),
    #[error(transparent)]
    Lease(#[from] LeaseError),
    #[error("lost the leader lease; exiting so that only one replica reconciles")]
    LostLeadership,
}

pub fn init_logging(format: LogFormat, filter: &str) -> Result<(), RunError> {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .map_err(|e| RunError::Logging(e.to_string()))?;
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let result = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
            .try_init(),
    };
    result.map_err(|e| RunError::Logging(e.to_string()))
}

/// Resolves on SIGTERM or Ctrl-C.
async fn termination() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    warn!(error = %e, "cannot listen for SIGTERM; Ctrl-C only");
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
        tokio::select! {
            _ = term.recv() => {},
            _ = tokio::signal::ctrl_c() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

pub async fn run(opts: RunOptions) -> Result<(), RunError> {
    // Built beside kotelcol (`make build`), rustls gets both ring and aws-lc-rs and will not
    // choose; kube's client then panics at the first TLS handshake. Choose ring, once.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = Client::try_default().await.map_err(RunError::Connect)?;
    let version = client
        .apiserver_version()
        .await
        .map_err(RunError::Connect)?;
    let minor: u32 = version
        .minor
        .trim_end_matches(|c: char| !c.is_ascii_digit())
        .parse()
        .unwrap_or(0);
    info!(server = %version.git_version, "connected to the Kubernetes API");

    let mut defaults = OperatorDefaults {
        kubelet_pods: KubeletPodsResource::for_minor_version(minor),
        progress_deadline: opts.progress_deadline,
        collector_rbac: opts.collector_rbac,
        rbac_allow: opts.rbac_allow,
        ..OperatorDefaults::default()
    };
    if let Some(image) = opts.collector_image.filter(|i| !i.is_empty()) {
        defaults.image = image;
    }
    let identity = opts
        .identity
        .clone()
        .unwrap_or_else(|| format!("{MANAGER}-{}", std::process::id()));

    let metrics = Arc::new(Metrics::default());
    let ready = Arc::new(AtomicBool::new(false));
    let (stop_tx, stop_rx) = watch::channel(false);
    let stop_http = {
        let mut rx = stop_rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    let state = HttpState {
        metrics: metrics.clone(),
        ready: ready.clone(),
    };
    let http_task = if opts.metrics_addr == opts.health_addr {
        tokio::spawn(http::serve(
            opts.metrics_addr,
            state,
            Endpoints::ALL,
            stop_http,
        ))
    } else {
        let metrics_only = Endpoints {
            metrics: true,
            probes: false,
        };
        let probes_only = Endpoints {
            metrics: false,
            probes: true,
        };
        let (addr_m, addr_h, state_h) = (opts.metrics_addr, opts.health_addr, state.clone());
        let stop_m = {
            let mut rx = stop_rx.clone();
            async move {
                let _ = rx.wait_for(|s| *s).await;
            }
        };
        tokio::spawn(async move {
            let (m, h) = tokio::join!(
                http::serve(addr_m, state, metrics_only, stop_m),
                http::serve(addr_h, state_h, probes_only, stop_http),
            );
            m.and(h)
        })
    };
    {
        let stop_tx = stop_tx.clone();
        tokio::spawn(async move {
            termination().await;
            info!("termination signal: shutting down");
            let _ = stop_tx.send(true);
        });
    }
    ready.store(true, Ordering::Relaxed);

    let elector = opts.leader_election.then(|| {
        LeaderElector::new(
            Api::<Lease>::namespaced(client.clone(), &opts.lease_namespace),
            &opts.lease_name,
            &identity,
            LEASE_DURATION,
        )
    });
    let lost = Arc::new(AtomicBool::new(false));
    if let Some(elector) = &elector {
        info!(lease = %opts.lease_name, %identity, "waiting for the leader lease");
        let mut rx = stop_rx.clone();
        loop {
            match elector.try_acquire_or_renew().await {
                Ok(true) => break,
                Ok(false) => {}
                Err(e) => warn!(error = %e, "leader election"),
            }
            tokio::select! {
                _ = tokio::time::sleep(RENEW_EVERY) => {},
                _ = rx.wait_for(|s| *s) => {
                    return finish(http_task).await;
                }
            }
        }
        metrics.set_leader(true);
        info!(%identity, "leading");
    }

    // Keep the lease: a leader that cannot renew within the lease duration stops reconciling.
    let renewer = elector.map(|elector| {
        let elector = Arc::new(elector);
        let (stop_tx, lost, metrics) = (stop_tx.clone(), lost.clone(), metrics.clone());
        let mut rx = stop_rx.clone();
        let handle = {
            let elector = elector.clone();
            tokio::spawn(async move {
                let mut last_ok = tokio::time::Instant::now();
                loop {
                    tokio::select! {
                        _ = tokio::time::sleep(RENEW_EVERY) => {},
                        _ = rx.wait_for(|s| *s) => return,
                    }
                    match elector.try_acquire_or_renew().await {
                        Ok(true) => last_ok = tokio::time::Instant::now(),
                        Ok(false) => {
                            error!("another replica took the leader lease");
                            break;
                        }
                        Err(e) => {
                            warn!(error = %e, "renewing the leader lease");
                            if last_ok.elapsed() < elector.lease_duration() {
                                continue;
                            }
                            error!("could not renew the leader lease in time");
                            break;
                        }
                    }
                }
                metrics.set_leader(false);
                lost.store(true, Ordering::Relaxed);
                let _ = stop_tx.send(true);
            })
        };
        (elector, handle)
    });

    let reporter = Reporter {
        controller: MANAGER.to_string(),
        instance: Some(identity.clone()),
    };
    let ctx = Arc::new(Context::new(
        client.clone(),
        defaults,
        Recorder::new(client.clone(), reporter),
        metrics.clone(),
    ));
    info!(namespaces = ?opts.namespaces, "starting controllers");
    controller::run(ctx, opts.namespaces, stop_rx.clone()).await;
    info!("controllers stopped");
    let _ = stop_tx.send(true);

    if let Some((elector, handle)) = renewer {
        let _ = handle.await;
        if !lost.load(Ordering::Relaxed)
            && let Err(e) = elector.release().await
        {
            warn!(error = %e, "releasing the leader lease");
        }
    }
    finish(http_task).await?;
    if lost.load(Ordering::Relaxed) {
        return Err(RunError::LostLeadership);
    }
    Ok(())
}

async fn finish(http_task: tokio::task::JoinHandle<Result<(), HttpError>>) -> Result<(), RunError> {
    match http_task.await {
        Ok(result) => result.map_err(RunError::from),
        Err(e) => {
            warn!(error = %e, "http task");
            Ok(())
        }
    }
}
