//! Test harness: a kotelcol service in-process or the binary as a child process, a capture sink
//! that is a real OTLP gRPC server, helpers to read the collector's /metrics, and requests.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use kotel_config::Config;
use kotel_pipeline::proto::collector::logs::v1::ExportLogsServiceResponse;
use kotel_pipeline::proto::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use kotel_pipeline::proto::collector::metrics::v1::ExportMetricsServiceResponse;
use kotel_pipeline::proto::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use kotel_pipeline::proto::collector::trace::v1::ExportTraceServiceResponse;
use kotel_pipeline::proto::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use kotel_pipeline::proto::trace::v1::{ResourceSpans, ScopeSpans, Span};
use kotel_pipeline::{
    ExportLogsServiceRequest, ExportMetricsServiceRequest, ExportTraceServiceRequest, Payload,
    Shutdown,
};
use kotelcol::net::{self, Protocol};
use kotelcol::service::Service;
use tokio::sync::Mutex;

/// An OTLP gRPC backend that keeps what it receives, or answers UNAVAILABLE while `refusing`.
#[derive(Clone, Default)]
pub struct Sink {
    pub received: Arc<Mutex<Vec<Payload>>>,
    pub refusing: Arc<AtomicBool>,
    /// While set, requests get no answer yet (a slow backend).
    pub stalling: Arc<AtomicBool>,
}

impl Sink {
    /// Starts the sink on a free port.
    pub async fn start() -> (Self, SocketAddr, Shutdown) {
        let sink = Sink::default();
        let listener = net::bind("127.0.0.1:0", None, Protocol::Http2)
            .await
            .unwrap();
        let addr = listener.local_addr();
        let mut b = tonic::service::RoutesBuilder::default();
        b.add_service(
            TraceServiceServer::new(sink.clone())
                .accept_compressed(tonic::codec::CompressionEncoding::Gzip)
                .accept_compressed(tonic::codec::CompressionEncoding::Zstd),
        );
        b.add_service(
            MetricsServiceServer::new(sink.clone())
                .accept_compressed(tonic::codec::CompressionEncoding::Gzip),
        );
        b.add_service(
            LogsServiceServer::new(sink.clone())
                .accept_compressed(tonic::codec::CompressionEncoding::Gzip),
        );
        let routes = b.routes();
        let stop = Shutdown::new();
        tokio::spawn(kotelcol::receivers::otlp::grpc::serve(
            listener,
            routes,
            stop.clone(),
        ));
        (sink, addr, stop)
    }

    async fn keep(&self, p: Payload) -> Result<(), tonic::Status> {
        while self.stalling.load(Ordering::SeqCst) {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        if self.refusing.load(Ordering::SeqCst) {
            return Err(tonic::Status::unavailable("sink is down"));
        }
        self.received.lock().await.push(p);
        Ok(())
    }

    pub async fn items(&self, signal: kotel_pipeline::Signal) -> usize {
        self.received
            .lock()
            .await
            .iter()
            .filter(|p| p.signal() == signal)
            .map(Payload::item_count)
            .sum()
    }

    /// Waits (up to a minute, a liveness bound only) until `cond` holds on what was received.
    pub async fn wait_for(&self, what: &str, cond: impl Fn(&[Payload]) -> bool) {
        let what = format!("the sink to see {what}");
        kotel_testkit::wait_for(&what, kotel_testkit::LIVENESS, || async {
            cond(&self.received.lock().await).then_some(())
        })
        .await;
    }
}

#[tonic::async_trait]
impl TraceService for Sink {
    async fn export(
        &self,
        r: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.keep(Payload::Traces(r.into_inner())).await?;
        Ok(tonic::Response::new(Default::default()))
    }
}

#[tonic::async_trait]
impl MetricsService for Sink {
    async fn export(
        &self,
        r: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        self.keep(Payload::Metrics(r.into_inner())).await?;
        Ok(tonic::Response::new(Default::default()))
    }
}

#[tonic::async_trait]
impl LogsService for Sink {
    async fn export(
        &self,
        r: tonic::Request<ExportLogsServiceRequest>,
    ) -> Result<tonic::Response<ExportLogsServiceResponse>, tonic::Status> {
        self.keep(Payload::Logs(r.into_inner())).await?;
        Ok(tonic::Response::new(Default::default()))
    }
}

/// A running collector.
pub struct Collector {
    pub grpc: Option<SocketAddr>,
    pub http: Option<SocketAddr>,
    pub metrics: SocketAddr,
    /// The health_check extension's address, when the config enables it.
    pub health: Option<SocketAddr>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    done: Option<tokio::task::JoinHandle<()>>,
}

impl Collector {
    /// Builds and runs a collector from YAML; the receiver `otlp` and metrics use free ports.
    pub async fn start(yaml: &str) -> Self {
        let config = Config::from_yaml(yaml).expect("valid test config");
        let service = Service::build(&config).await.expect("service builds");
        let grpc = service.receiver_addr("otlp", "grpc");
        let http = service.receiver_addr("otlp", "http");
        let metrics = service.metrics_addr().expect("metrics enabled");
        let health = service.health_addr();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let done = tokio::spawn(async move {
            service
                .run(
                    async {
                        let _ = rx.await;
                    },
                    Duration::from_secs(10),
                )
                .await
                .expect("service runs");
        });
        Self {
            grpc,
            http,
            metrics,
            health,
            stop: Some(tx),
            done: Some(done),
        }
    }

    /// Staged shutdown; resolves when it is complete.
    pub async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.done.take().unwrap().await.unwrap();
    }

    pub async fn metrics_text(&self) -> String {
        reqwest::get(format!("http://{}/metrics", self.metrics))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// The value of the sample whose line starts with `prefix` (name plus labels).
    pub async fn metric(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let text = self.metrics_text().await;
        text.lines()
            .filter(|l| l.starts_with(name) && !l.starts_with('#'))
            .filter(|l| {
                labels
                    .iter()
                    .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }
}

/// The kotelcol binary as a child process, its stderr read line by line; killed when dropped
/// unless stopped with [`Process::sigterm`].
pub struct Process {
    child: Option<std::process::Child>,
    listening: std::sync::mpsc::Receiver<String>,
    log: Option<std::thread::JoinHandle<Vec<String>>>,
}

impl Process {
    /// Runs `kotelcol --config <config>` with `env` added to its environment.
    pub fn spawn(config: &Path, env: &[(&str, &OsStr)]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_kotelcol"))
            .arg("--config")
            .arg(config)
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (addr_tx, listening) = std::sync::mpsc::channel();
        let log = std::thread::spawn(move || {
            let mut lines = Vec::new();
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("listening")
                    && let Some(a) = line.split("addr=").nth(1)
                {
                    let _ = addr_tx.send(a.split_whitespace().next().unwrap().to_string());
                }
                lines.push(line);
            }
            lines
        });
        Self {
            child: Some(child),
            listening,
            log: Some(log),
        }
    }

    /// The address of the first receiver kotelcol logs as listening. Panics with the end of its
    /// log if it exits first, or after a minute (a liveness bound only).
    pub fn listening_addr(&mut self) -> String {
        // The channel closes when kotelcol exits (its stderr ends) without having listened.
        if let Ok(addr) = self.listening.recv_timeout(Duration::from_secs(60)) {
            return addr;
        }
        let _ = self.child.as_mut().unwrap().kill();
        let lines = self.log.take().unwrap().join().unwrap();
        panic!(
            "kotelcol never listened; its log ends:\n{}",
            lines[lines.len().saturating_sub(20)..].join("\n")
        );
    }

    pub fn is_running(&mut self) -> bool {
        self.child.as_mut().unwrap().try_wait().unwrap().is_none()
    }

    /// Sends SIGTERM and waits for the exit: its status, and every line kotelcol logged.
    pub async fn sigterm(mut self) -> (ExitStatus, Vec<String>) {
        let pid = self.child.as_ref().unwrap().id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(sent.success());
        let (mut child, log) = (self.child.take().unwrap(), self.log.take().unwrap());
        tokio::task::spawn_blocking(move || (child.wait().unwrap(), log.join().unwrap()))
            .await
            .unwrap()
    }
}

impl Process {
    /// SIGKILL, as the kernel's OOM killer or a node losing power to the process would: no
    /// shutdown runs. Returns every line kotelcol logged.
    pub fn sigkill(mut self) -> Vec<String> {
        let mut child = self.child.take().unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
        self.log.take().unwrap().join().unwrap()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A trace request of one resource and one scope holding `spans`.
pub fn trace_request(spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// Every span in the trace payloads of `payloads`.
pub fn spans_in(payloads: &[Payload]) -> impl Iterator<Item = &Span> {
    payloads
        .iter()
        .filter_map(|p| match p {
            Payload::Traces(r) => Some(r),
            _ => None,
        })
        .flat_map(|r| &r.resource_spans)
        .flat_map(|r| &r.scope_spans)
        .flat_map(|s| &s.spans)
}

/// A config: OTLP in (gRPC and HTTP on free ports) → `processors` → otlp exporter to `sink`.
pub fn config(sink: SocketAddr, processors: &str, exporter_extra: &str) -> String {
    format!(
        r#"
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:0
      http:
        endpoint: 127.0.0.1:0
processors:
  batch:
    timeout: 50ms
    send_batch_size: 100
exporters:
  otlp:
    endpoint: {sink}
    tls:
      insecure: true
{exporter_extra}
service:
  telemetry:
    logs:
      level: warn
    metrics:
      address: 127.0.0.1:0
  pipelines:
    traces:
      receivers: [otlp]
      processors: [{processors}]
      exporters: [otlp]
    metrics:
      receivers: [otlp]
      processors: [{processors}]
      exporters: [otlp]
    logs:
      receivers: [otlp]
      processors: [{processors}]
      exporters: [otlp]
"#
    )
}

/// An OTLP receiver on its own, its logs captured: what the receiver tests drive with real
/// clients.
pub struct LogsReceiver {
    pub sink: Arc<kotel_pipeline::CaptureSink>,
    /// Listening address per protocol (`grpc`, `http`).
    pub addrs: std::collections::BTreeMap<&'static str, SocketAddr>,
    /// The receiver's counters per transport (`grpc`, `http`).
    pub counters:
        std::collections::BTreeMap<&'static str, kotel_pipeline::obsreport::ReceiverCounters>,
    pub stop: Shutdown,
    pub run: tokio::task::JoinHandle<()>,
}

impl LogsReceiver {
    pub async fn start(cfg: &kotel_config::receivers::otlp::OtlpReceiverConfig) -> Self {
        let sink = kotel_pipeline::CaptureSink::new();
        let consumers = kotelcol::receivers::SignalConsumers {
            logs: Some(sink.clone() as Arc<dyn kotel_pipeline::Consumer>),
            ..Default::default()
        };
        Self::with_consumers(cfg, consumers, sink).await
    }

    /// The receiver pushing to `consumers` instead (`sink` stays empty unless among them).
    pub async fn with_consumers(
        cfg: &kotel_config::receivers::otlp::OtlpReceiverConfig,
        consumers: kotelcol::receivers::SignalConsumers,
        sink: Arc<kotel_pipeline::CaptureSink>,
    ) -> Self {
        use kotelcol::receivers::otlp::{OtlpReceiver, Wiring};
        let mut registry = prometheus_client::registry::Registry::default();
        let metrics = kotel_pipeline::obsreport::SelfMetrics::register(&mut registry);
        let counters = std::collections::BTreeMap::from([
            ("grpc", metrics.receiver("otlp", "grpc")),
            ("http", metrics.receiver("otlp", "http")),
        ]);
        let id: kotel_config::ComponentId = "otlp".parse().unwrap();
        let receiver = OtlpReceiver::build(
            &id,
            cfg,
            Wiring {
                grpc: (consumers.clone(), counters["grpc"].clone()),
                http: (consumers, counters["http"].clone()),
            },
        )
        .await
        .unwrap();
        let addrs = receiver.local_addrs().into_iter().collect();
        let stop = Shutdown::new();
        let run = tokio::spawn(receiver.run(stop.clone()));
        Self {
            sink,
            addrs,
            counters,
            stop,
            run,
        }
    }

    pub async fn stop(self) {
        self.stop.cancel();
        self.run.await.unwrap();
    }
}
