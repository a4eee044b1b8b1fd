//! Load generator and sink for `collector/bench/bench-otlp.sh`.
//!
//! `loadgen send --endpoint http://127.0.0.1:4317 --signal traces --seconds 10 --concurrency 32`
//! sends one realistic request (spans or log records with typical attributes) over and over from
//! many concurrent gRPC calls; the request is encoded once, so the generator spends its CPU on
//! the wire, not on protobuf. It prints `sent items=… bytes=… refused=… seconds=…`.
//!
//! `loadgen sink --listen 127.0.0.1:4319` is an OTLP gRPC backend that decodes and counts what it
//! gets; on SIGTERM it prints `sink spans=… log_records=…`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::{Parser, Subcommand};
use kotel_pipeline::proto::collector::logs::v1::ExportLogsServiceResponse;
use kotel_pipeline::proto::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use kotel_pipeline::proto::collector::trace::v1::ExportTraceServiceResponse;
use kotel_pipeline::proto::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use kotel_pipeline::proto::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use kotel_pipeline::proto::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use kotel_pipeline::proto::resource::v1::Resource;
use kotel_pipeline::proto::trace::v1::{ResourceSpans, ScopeSpans, Span, Status, span};
use kotel_pipeline::{ExportLogsServiceRequest, ExportTraceServiceRequest, Payload, Shutdown};
use kotelcol::exporters::codec::{RawCodec, encode, path};

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    Send {
        #[arg(long)]
        endpoint: String,
        /// traces or logs
        #[arg(long, default_value = "traces")]
        signal: String,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        #[arg(long, default_value_t = 32)]
        concurrency: usize,
        /// Spans or log records per request.
        #[arg(long, default_value_t = 500)]
        items: usize,
        /// Each sender's pause after a request (0: closed loop, as fast as answers come).
        #[arg(long, default_value_t = 0)]
        interval_ms: u64,
    },
    Sink {
        #[arg(long)]
        listen: String,
        /// Answer each request only after this long (a slow backend).
        #[arg(long, default_value_t = 0)]
        delay_ms: u64,
    },
}

fn s(k: &str, v: &str) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(v.into())),
        }),
        ..Default::default()
    }
}

fn i(k: &str, v: i64) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::IntValue(v)),
        }),
        ..Default::default()
    }
}

fn resource() -> Resource {
    Resource {
        attributes: vec![
            s("service.name", "checkout"),
            s("service.version", "1.4.2"),
            s("k8s.namespace.name", "shop"),
            s("k8s.pod.name", "checkout-7d9f8b6c5-x2x9k"),
            s("k8s.node.name", "node-17"),
            s("host.name", "checkout-7d9f8b6c5-x2x9k"),
            s("telemetry.sdk.language", "go"),
            s("telemetry.sdk.name", "opentelemetry"),
        ],
        ..Default::default()
    }
}

fn scope() -> Option<InstrumentationScope> {
    Some(InstrumentationScope {
        name: "go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp".into(),
        version: "0.49.0".into(),
        ..Default::default()
    })
}

fn traces(n: usize) -> Payload {
    let spans = (0..n)
        .map(|k| {
            let start = 1_700_000_000_000_000_000u64 + k as u64 * 1_000_000;
            Span {
                trace_id: (0..16).map(|b| (b * 7 + k) as u8).collect(),
                span_id: (0..8).map(|b| (b * 13 + k) as u8).collect(),
                parent_span_id: (0..8).map(|b| (b * 5 + k) as u8).collect(),
                name: "GET /api/cart/{id}".into(),
                kind: span::SpanKind::Server as i32,
                start_time_unix_nano: start,
                end_time_unix_nano: start + 2_345_678,
                attributes: vec![
                    s("http.request.method", "GET"),
                    s("url.path", "/api/cart/8f3a2c"),
                    s("url.scheme", "https"),
                    i("http.response.status_code", 200),
                    s("server.address", "checkout.shop.svc.cluster.local"),
                    i("server.port", 8080),
                    s("network.protocol.version", "1.1"),
                    s(
                        "user_agent.original",
                        "Mozilla/5.0 (X11; Linux x86_64) Chrome/124.0",
                    ),
                ],
                status: Some(Status {
                    code: 1,
                    ..Default::default()
                }),
                ..Default::default()
            }
        })
        .collect();
    Payload::Traces(ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(resource()),
            scope_spans: vec![ScopeSpans {
                scope: scope(),
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    })
}

fn logs(n: usize) -> Payload {
    let records = (0..n)
        .map(|k| LogRecord {
            time_unix_nano: 1_700_000_000_000_000_000u64 + k as u64,
            observed_time_unix_nano: 1_700_000_000_000_000_000u64 + k as u64 + 1000,
            severity_number: 9,
            severity_text: "INFO".into(),
            body: Some(AnyValue {
                value: Some(any_value::Value::StringValue(format!(
                    "2024-05-01T12:00:00.{k:06}Z INFO request completed method=GET path=/api/cart/8f3a2c status=200 duration_ms=2.3 user=anon-{k}"
                ))),
            }),
            attributes: vec![
                s("log.iostream", "stdout"),
                s("log.file.path", "/var/log/pods/shop_checkout-7d9f8b6c5-x2x9k_0b6a/checkout/0.log"),
                s("logtag", "F"),
            ],
            trace_id: (0..16).map(|b| (b * 3 + k) as u8).collect(),
            span_id: (0..8).map(|b| (b * 11 + k) as u8).collect(),
            ..Default::default()
        })
        .collect();
    Payload::Logs(ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(resource()),
            scope_logs: vec![ScopeLogs {
                scope: scope(),
                log_records: records,
                ..Default::default()
            }],
            ..Default::default()
        }],
    })
}

/// Refusals by gRPC code, and how many of them carried a RetryInfo.
#[derive(Default)]
struct Refusals {
    by_code: std::collections::BTreeMap<String, u64>,
    with_retry_info: u64,
}

async fn send(
    endpoint: String,
    signal: String,
    seconds: u64,
    concurrency: usize,
    items: usize,
    interval: Duration,
) {
    let payload = match signal.as_str() {
        "logs" => logs(items),
        _ => traces(items),
    };
    let body: Bytes = encode(&payload);
    let method = path(&payload);
    let channel = tonic::transport::Endpoint::from_shared(endpoint)
        .expect("endpoint URL")
        .connect()
        .await
        .expect("connect to the collector");
    let sent = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let refusals = Arc::new(std::sync::Mutex::new(Refusals::default()));
    let start = Instant::now();
    let end = start + Duration::from_secs(seconds);
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let (channel, body, sent, refused, refusals) = (
                channel.clone(),
                body.clone(),
                sent.clone(),
                refused.clone(),
                refusals.clone(),
            );
            tokio::spawn(async move {
                let mut grpc = tonic::client::Grpc::new(channel);
                while Instant::now() < end {
                    grpc.ready().await.expect("channel ready");
                    let r = grpc
                        .unary(
                            tonic::Request::new(body.clone()),
                            http::uri::PathAndQuery::from_static(method),
                            RawCodec,
                        )
                        .await;
                    match r {
                        Ok(_) => {
                            sent.fetch_add(1, Ordering::Relaxed);
                            if !interval.is_zero() {
                                tokio::time::sleep(interval).await;
                            }
                        }
                        Err(status) => {
                            refused.fetch_add(1, Ordering::Relaxed);
                            let hint =
                                kotelcol::rpc_status::Status::from_tonic(&status).retry_after();
                            {
                                let mut r = refusals.lock().unwrap();
                                *r.by_code.entry(format!("{:?}", status.code())).or_default() += 1;
                                r.with_retry_info += u64::from(hint.is_some());
                            }
                            // As OTLP clients do: back off before retrying a refusal.
                            let wait = hint.unwrap_or_default().max(Duration::from_millis(100));
                            tokio::time::sleep(wait).await;
                        }
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("sender task");
    }
    let secs = start.elapsed().as_secs_f64();
    let requests = sent.load(Ordering::Relaxed);
    let refused = refused.load(Ordering::Relaxed);
    println!(
        "sent items={} bytes={} refused={refused} refused_items={} seconds={secs:.3}",
        requests * items as u64,
        requests * body.len() as u64,
        refused * items as u64,
    );
    let r = refusals.lock().unwrap();
    let codes: Vec<String> = r.by_code.iter().map(|(c, n)| format!("{c}:{n}")).collect();
    println!(
        "codes {} with_retry_info={}",
        if codes.is_empty() {
            "none".into()
        } else {
            codes.join(",")
        },
        r.with_retry_info
    );
}

#[derive(Clone, Default)]
struct Counts {
    spans: Arc<AtomicU64>,
    logs: Arc<AtomicU64>,
    delay: Duration,
}

#[tonic::async_trait]
impl TraceService for Counts {
    async fn export(
        &self,
        r: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let n = Payload::Traces(r.into_inner()).item_count();
        tokio::time::sleep(self.delay).await;
        self.spans.fetch_add(n as u64, Ordering::Relaxed);
        Ok(tonic::Response::new(Default::default()))
    }
}

#[tonic::async_trait]
impl LogsService for Counts {
    async fn export(
        &self,
        r: tonic::Request<ExportLogsServiceRequest>,
    ) -> Result<tonic::Response<ExportLogsServiceResponse>, tonic::Status> {
        let n = Payload::Logs(r.into_inner()).item_count();
        tokio::time::sleep(self.delay).await;
        self.logs.fetch_add(n as u64, Ordering::Relaxed);
        Ok(tonic::Response::new(Default::default()))
    }
}

async fn sink(listen: String, delay: Duration) {
    let counts = Counts {
        delay,
        ..Default::default()
    };
    let listener = kotelcol::net::bind(&listen, None, kotelcol::net::Protocol::Http2)
        .await
        .expect("sink listens");
    let mut b = tonic::service::RoutesBuilder::default();
    b.add_service(
        TraceServiceServer::new(counts.clone())
            .max_decoding_message_size(64 << 20)
            .accept_compressed(tonic::codec::CompressionEncoding::Gzip),
    );
    b.add_service(
        LogsServiceServer::new(counts.clone())
            .max_decoding_message_size(64 << 20)
            .accept_compressed(tonic::codec::CompressionEncoding::Gzip),
    );
    let stop = Shutdown::new();
    let server = tokio::spawn(kotelcol::receivers::otlp::grpc::serve(
        listener,
        b.routes(),
        stop.clone(),
    ));
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    term.recv().await;
    stop.cancel();
    let _ = server.await;
    println!(
        "sink spans={} log_records={}",
        counts.spans.load(Ordering::Relaxed),
        counts.logs.load(Ordering::Relaxed)
    );
}

#[tokio::main]
async fn main() {
    match Cli::parse().command {
        Cmd::Send {
            endpoint,
            signal,
            seconds,
            concurrency,
            items,
            interval_ms,
        } => {
            let interval = Duration::from_millis(interval_ms);
            send(endpoint, signal, seconds, concurrency, items, interval).await
        }
        Cmd::Sink { listen, delay_ms } => sink(listen, Duration::from_millis(delay_ms)).await,
    }
}
