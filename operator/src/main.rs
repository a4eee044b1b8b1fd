//! `kotel-operator crd` prints the CustomResourceDefinition; `kotel-operator run` runs the
//! controller. Only wiring lives here.

use clap::{Parser, Subcommand};
use kotel_operator::run::{LogFormat, RunOptions};

#[derive(Parser)]
#[command(
    version,
    about = "Kubernetes operator for OpenTelemetryCollector resources (kotelcol DaemonSets)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the OpenTelemetryCollector CustomResourceDefinition as YAML.
    Crd,
    /// Run the controller until SIGTERM.
    Run(Box<RunArgs>),
}

#[derive(clap::Args)]
struct RunArgs {
    /// Namespaces to watch (comma-separated); all namespaces when empty.
    #[arg(long, env = "WATCH_NAMESPACES", value_delimiter = ',')]
    namespaces: Vec<String>,
    /// One address for /metrics, /healthz and /readyz (overrides the two below).
    #[arg(long, env = "HTTP_ADDR")]
    http_addr: Option<std::net::SocketAddr>,
    /// Address of /metrics.
    #[arg(long, env = "METRICS_ADDR", default_value = "0.0.0.0:8080")]
    metrics_addr: std::net::SocketAddr,
    /// Address of /healthz and /readyz (may equal the metrics address).
    #[arg(long, env = "HEALTH_ADDR", default_value = "0.0.0.0:8081")]
    health_addr: std::net::SocketAddr,
    /// Elect a leader through a Lease so several replicas are safe.
    #[arg(long, env = "LEADER_ELECTION", default_value_t = true, action = clap::ArgAction::Set)]
    leader_election: bool,
    /// Namespace of the leader Lease (the operator's own).
    #[arg(long, env = "POD_NAMESPACE", default_value = "kotel-system")]
    lease_namespace: String,
    /// Name of the leader Lease.
    #[arg(long, env = "LEASE_NAME", default_value = "kotel-operator-leader")]
    lease_name: String,
    /// This replica's identity in the Lease (the pod name).
    #[arg(long, env = "POD_NAME")]
    identity: Option<String>,
    /// Collector image for resources without spec.image.
    #[arg(long, env = "COLLECTOR_IMAGE")]
    collector_image: Option<String>,
    /// `auto`: each collector's ServiceAccount gets exactly the cluster rights its config needs
    /// (a ClusterRole and binding per resource); `off`: the operator grants nothing, and platform
    /// teams bind roles to the collectors' ServiceAccounts themselves.
    #[arg(long, env = "COLLECTOR_RBAC", default_value = "auto", value_parser = ["auto", "off"])]
    collector_rbac: String,
    /// With `auto`: the only rights auto-RBAC may grant, as a comma-separated list of resources
    /// as kubectl names them (`pods,namespaces,replicasets.apps,nodes/stats,nodes/pods`); a right
    /// a config needs beyond it is not granted and the resource says so
    /// (CollectorRBACWithheld). Empty: no limit.
    #[arg(long, env = "COLLECTOR_RBAC_ALLOW", default_value = "")]
    collector_rbac_allow: String,
    /// Seconds a collector rollout may take before its resource is reported Stalled
    /// (ProgressDeadlineExceeded); a Deployment's default.
    #[arg(long, env = "PROGRESS_DEADLINE_SECONDS", default_value_t = 600)]
    progress_deadline_seconds: u64,
    /// Log format.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value = "json")]
    log_format: LogFormat,
    /// Log filter (tracing EnvFilter syntax).
    #[arg(long, env = "RUST_LOG", default_value = "info")]
    log_level: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Crd => {
            print!("{}", kotel_operator::crd::crd_yaml());
            Ok(())
        }
        Command::Run(a) => {
            kotel_operator::run::init_logging(a.log_format, &a.log_level)?;
            kotel_operator::run::run(RunOptions {
                namespaces: a.namespaces.into_iter().filter(|n| !n.is_empty()).collect(),
                metrics_addr: a.http_addr.unwrap_or(a.metrics_addr),
                health_addr: a.http_addr.unwrap_or(a.health_addr),
                leader_election: a.leader_election,
                lease_namespace: a.lease_namespace,
                lease_name: a.lease_name,
                identity: a.identity,
                collector_image: a.collector_image,
                progress_deadline: std::time::Duration::from_secs(a.progress_deadline_seconds),
                collector_rbac: a.collector_rbac == "auto",
                rbac_allow: kotel_operator::rbac::RbacAllow::parse(&a.collector_rbac_allow),
            })
            .await?;
            Ok(())
        }
    }
}
