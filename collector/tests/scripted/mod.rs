//! Backends that answer from a script, and an exporter harness around them: the exporter
//! tests drive a real [`QueuedExporter`] with a real OTLP sender against these.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use kotel_config::exporters::{QueueConfig, RetryConfig};
use kotel_pipeline::obsreport::SelfMetrics;
use kotel_pipeline::proto::collector::trace::v1::ExportTraceServiceResponse;
use kotel_pipeline::proto::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use kotel_pipeline::proto::common::v1::{AnyValue, KeyValue, any_value};
use kotel_pipeline::proto::trace::v1::{ResourceSpans, ScopeSpans, Span};
use kotel_pipeline::{ExportTraceServiceRequest, ExporterStages, Ledger, Payload, Shutdown};
use kotelcol::exporters::{QueuedExporter, SendPolicy, Sender, Wiring};
use kotelcol::net::{self, Protocol};
use kotelcol::rpc_status::Status;
use prometheus_client::registry::Registry;
use prost::Message;
use tokio::sync::watch;

/// What the backend does with one request.
#[derive(Clone, Debug)]
pub enum Answer {
    Ok,
    /// A gRPC error, with a RetryInfo detail when a delay is given.
    Grpc(tonic::Code, Option<Duration>),
    /// An HTTP status, with a Retry-After header when given.
    Http(u16, Option<&'static str>),
    /// No answer until [`Backend::release`], then OK.
    Hold,
}

/// One request as the backend saw it.
#[derive(Clone, Debug)]
pub struct Arrival {
    pub at: Instant,
    pub spans: usize,
    pub answer: Answer,
    /// The request as decoded (`None` if it could not be).
    pub payload: Option<Payload>,
    pub headers: http::HeaderMap,
}

struct State {
    script: VecDeque<Answer>,
    /// Used once the script is exhausted.
    then: Answer,
    arrivals: Vec<Arrival>,
    accepted_spans: usize,
}

/// A scripted OTLP trace backend (gRPC or HTTP).
#[derive(Clone)]
pub struct Backend {
    state: Arc<Mutex<State>>,
    released: watch::Sender<bool>,
}

impl Backend {
    pub fn new(script: impl IntoIterator<Item = Answer>, then: Answer) -> Self {
        Self {
            state: Arc::new(Mutex::new(State {
                script: script.into_iter().collect(),
                then,
                arrivals: Vec::new(),
                accepted_spans: 0,
            })),
            released: watch::channel(false).0,
        }
    }

    /// Lets held requests (and every later `Hold`) through.
    pub fn release(&self) {
        self.released.send_replace(true);
    }

    pub fn arrivals(&self) -> Vec<Arrival> {
        self.state.lock().unwrap().arrivals.clone()
    }

    /// Spans the backend answered OK to.
    pub fn accepted_spans(&self) -> usize {
        self.state.lock().unwrap().accepted_spans
    }

    /// Records the request and picks its answer; a `Hold` waits here and becomes `Ok`.
    async fn answer(&self, payload: Option<Payload>, headers: http::HeaderMap) -> Answer {
        let spans = payload.as_ref().map_or(0, Payload::item_count);
        let answer = {
            let mut s = self.state.lock().unwrap();
            let a = s.script.pop_front().unwrap_or_else(|| s.then.clone());
            s.arrivals.push(Arrival {
                at: Instant::now(),
                spans,
                answer: a.clone(),
                payload,
                headers,
            });
            a
        };
        let answer = if let Answer::Hold = answer {
            let mut rx = self.released.subscribe();
            let _ = rx.wait_for(|r| *r).await;
            Answer::Ok
        } else {
            answer
        };
        if let Answer::Ok = answer {
            self.state.lock().unwrap().accepted_spans += spans;
        }
        answer
    }

    /// Serves OTLP/gRPC traces on a free port.
    pub async fn serve_grpc(&self) -> (SocketAddr, Shutdown) {
        let listener = net::bind("127.0.0.1:0", None, Protocol::Http2)
            .await
            .unwrap();
        let addr = listener.local_addr();
        let mut routes = tonic::service::RoutesBuilder::default();
        routes.add_service(
            TraceServiceServer::new(self.clone())
                .accept_compressed(tonic::codec::CompressionEncoding::Gzip)
                .accept_compressed(tonic::codec::CompressionEncoding::Zstd),
        );
        let stop = Shutdown::new();
        tokio::spawn(kotelcol::receivers::otlp::grpc::serve(
            listener,
            routes.routes(),
            stop.clone(),
        ));
        (addr, stop)
    }

    /// Serves OTLP/HTTP protobuf traces (uncompressed) on a free port.
    pub async fn serve_http(&self) -> (SocketAddr, Shutdown) {
        let listener = net::bind("127.0.0.1:0", None, Protocol::Auto)
            .await
            .unwrap();
        let addr = listener.local_addr();
        let stop = Shutdown::new();
        let backend = self.clone();
        let handler = move |req: http::Request<hyper::body::Incoming>, _peer| {
            let backend = backend.clone();
            async move {
                let (parts, body) = req.into_parts();
                let body = body.collect().await.unwrap().to_bytes();
                let payload = decode_http(&parts.headers, &body);
                let mut resp = http::Response::builder();
                let status = match backend.answer(payload, parts.headers).await {
                    Answer::Http(code, retry_after) => {
                        if let Some(v) = retry_after {
                            resp = resp.header(http::header::RETRY_AFTER, v);
                        }
                        code
                    }
                    _ => 200,
                };
                let body = if status == 200 {
                    ExportTraceServiceResponse::default().encode_to_vec()
                } else {
                    b"scripted failure".to_vec()
                };
                Ok::<_, std::convert::Infallible>(
                    resp.status(status)
                        .header(http::header::CONTENT_TYPE, "application/x-protobuf")
                        .body(Full::new(Bytes::from(body)))
                        .unwrap(),
                )
            }
        };
        tokio::spawn(net::serve_fn(listener, handler, stop.clone()));
        (addr, stop)
    }
}

#[tonic::async_trait]
impl TraceService for Backend {
    async fn export(
        &self,
        r: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let (metadata, _, request) = r.into_parts();
        let payload = Some(Payload::Traces(request));
        match self.answer(payload, metadata.into_headers()).await {
            Answer::Grpc(code, delay) => {
                let mut s = Status::new(code, "scripted failure");
                if let Some(d) = delay {
                    s = s.with_retry_after(d);
                }
                Err(s.to_tonic())
            }
            _ => Ok(tonic::Response::new(Default::default())),
        }
    }
}

/// An OTLP/HTTP trace body by its content type and encoding.
fn decode_http(headers: &http::HeaderMap, body: &[u8]) -> Option<Payload> {
    use std::io::Read;
    let header = |name| headers.get(name).and_then(|v| v.to_str().ok());
    let raw = match header(http::header::CONTENT_ENCODING) {
        Some("gzip") => {
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(body)
                .read_to_end(&mut out)
                .ok()?;
            out
        }
        Some("zstd") => zstd::stream::decode_all(body).ok()?,
        _ => body.to_vec(),
    };
    if header(http::header::CONTENT_TYPE) == Some("application/json") {
        return kotelcol::receivers::otlp::json::decode(kotel_pipeline::Signal::Traces, &raw).ok();
    }
    ExportTraceServiceRequest::decode(raw.as_slice())
        .ok()
        .map(Payload::Traces)
}

/// A trace request of `n` spans.
pub fn spans(n: usize) -> Payload {
    Payload::Traces(ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans: (0..n)
                    .map(|i| Span {
                        trace_id: vec![3; 16],
                        span_id: vec![i as u8 + 1; 8],
                        name: format!("span-{i}"),
                        // Past 2^53: JSON must carry it as a string to keep it exact.
                        start_time_unix_nano: 1_700_000_000_123_456_789 + i as u64,
                        attributes: vec![KeyValue {
                            key: "i".into(),
                            value: Some(AnyValue {
                                value: Some(any_value::Value::IntValue(i as i64)),
                            }),
                            ..Default::default()
                        }],
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        }],
    })
}

/// Fast, deterministic retries: `initial` then doubling, no jitter.
pub fn retry(initial: Duration, max_elapsed: Duration) -> RetryConfig {
    RetryConfig {
        enabled: true,
        initial_interval: initial,
        max_interval: initial * 4,
        max_elapsed_time: max_elapsed,
        multiplier: 2.0,
        randomization_factor: 0.0,
    }
}

pub fn no_queue() -> QueueConfig {
    QueueConfig {
        enabled: false,
        ..QueueConfig::default()
    }
}

pub fn queue(size: usize, items: bool, block: bool) -> QueueConfig {
    QueueConfig {
        num_consumers: 1,
        queue_size: size,
        sizer: if items {
            kotel_config::exporters::QueueSizer::Items
        } else {
            kotel_config::exporters::QueueSizer::Requests
        },
        block_on_overflow: block,
        ..QueueConfig::default()
    }
}

/// A [`QueuedExporter`] named `otlp` with its own registry; its workers run on a task.
pub struct Harness {
    pub exporter: Arc<QueuedExporter>,
    pub stages: ExporterStages,
    pub workers: tokio::task::JoinHandle<()>,
    registry: Registry,
}

impl Harness {
    pub fn new(sender: Arc<dyn Sender>, policy: SendPolicy, queue: &QueueConfig) -> Self {
        let mut registry = Registry::default();
        let metrics = SelfMetrics::register(&mut registry);
        let ledger = Ledger::new(metrics.held_bytes.clone());
        let stages = ExporterStages::default();
        let wiring = Wiring {
            counters: metrics.exporter("otlp"),
            ledger,
            stages: stages.clone(),
        };
        let (exporter, task) =
            QueuedExporter::new("otlp".into(), sender, policy, queue, None, wiring);
        Self {
            exporter,
            stages,
            workers: tokio::spawn(task.run()),
            registry,
        }
    }

    /// A sample's value from the Prometheus text, by metric name (labels ignored: one exporter).
    pub fn metric(&self, name: &str) -> f64 {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry).unwrap();
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .filter(|l| l.split(['{', ' ']).next() == Some(name))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    /// Polls `cond` (a liveness bound of a minute, not a timing assertion).
    pub async fn wait_for(&self, what: &str, cond: impl Fn(&Self) -> bool) {
        kotel_testkit::wait_until(what, kotel_testkit::LIVENESS, || cond(self)).await;
    }
}

/// Waits until the backend has seen `n` requests.
pub async fn arrivals(backend: &Backend, n: usize) -> Vec<Arrival> {
    for _ in 0..1200 {
        let a = backend.arrivals();
        if a.len() >= n {
            return a;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("backend never saw {n} requests");
}

/// Warnings and errors logged by this test binary, for asserting that a drop was logged.
#[derive(Clone, Default)]
pub struct Logs(Arc<Mutex<Vec<u8>>>);

static LOGS: std::sync::OnceLock<Logs> = std::sync::OnceLock::new();

impl Logs {
    /// The binary-wide capture. Global, not per thread: tracing caches whether a callsite is
    /// enabled, so a per-thread subscriber misses events another test's thread hit first.
    /// Tests sharing a binary share it; look for what only your test logs.
    pub fn global() -> Logs {
        LOGS.get_or_init(|| {
            let logs = Logs::default();
            let writer = logs.clone();
            let subscriber = tracing_subscriber::fmt()
                .with_writer(move || writer.clone())
                .with_ansi(false)
                .with_max_level(tracing::Level::WARN)
                .finish();
            tracing::subscriber::set_global_default(subscriber).expect("first subscriber");
            logs
        })
        .clone()
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
