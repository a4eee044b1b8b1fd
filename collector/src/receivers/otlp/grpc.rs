//! OTLP/gRPC: the `Export` services of opentelemetry-proto's generated servers, served by the
//! collector's own connection loop (see [`crate::net`]).

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;

use http::Request;
use hyper::body::Incoming;
use kotel_config::receivers::otlp::GrpcServerConfig;
use kotel_pipeline::obsreport::ReceiverCounters;
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
use kotel_pipeline::{
    BoxConsumer, ConsumeError, Envelope, ExportLogsServiceRequest, ExportMetricsServiceRequest,
    ExportTraceServiceRequest, Payload, Shutdown, Signal, wire,
};
use tonic::codec::CompressionEncoding;

use super::context;
use crate::net::{self, Listener, PeerAddr};
use crate::receivers::SignalConsumers;
use crate::rpc_status;

/// One signal's handler: pushes each request into the pipeline and maps refusals to statuses.
#[derive(Clone)]
pub struct Handler {
    consumer: BoxConsumer,
    include_metadata: bool,
}

impl Handler {
    async fn push<T>(
        &self,
        request: tonic::Request<T>,
        wrap: fn(T) -> Payload,
    ) -> Result<(), tonic::Status> {
        let peer = request.extensions().get::<PeerAddr>().map(|p| p.0);
        let headers = self
            .include_metadata
            .then(|| request.metadata().clone().into_headers());
        let ctx = context(peer, headers.as_ref());
        let payload = wrap(request.into_inner());
        if payload.item_count() == 0 {
            return Ok(());
        }
        self.consumer
            .consume(Envelope::with_context(payload, ctx))
            .await
            .map_err(|e| rpc_status::from_consume_error(&e).0.to_tonic())
    }
}

#[tonic::async_trait]
impl TraceService for Handler {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.push(request, Payload::Traces).await?;
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl MetricsService for Handler {
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        self.push(request, Payload::Metrics).await?;
        Ok(tonic::Response::new(ExportMetricsServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl LogsService for Handler {
    async fn export(
        &self,
        request: tonic::Request<ExportLogsServiceRequest>,
    ) -> Result<tonic::Response<ExportLogsServiceResponse>, tonic::Status> {
        self.push(request, Payload::Logs).await?;
        Ok(tonic::Response::new(ExportLogsServiceResponse::default()))
    }
}

/// The gRPC side of the receiver: the services, and what it needs to refuse a request before
/// decoding it.
pub struct GrpcServer {
    routes: tonic::service::Routes,
    consumers: SignalConsumers,
    counters: ReceiverCounters,
    max: usize,
}

/// The services for the signals that have pipelines; the others answer UNIMPLEMENTED.
pub fn server(
    cfg: &GrpcServerConfig,
    consumers: SignalConsumers,
    counters: ReceiverCounters,
) -> GrpcServer {
    let max = cfg.max_recv_msg_size();
    let handler = |c: &Option<BoxConsumer>| {
        c.clone().map(|consumer| Handler {
            consumer,
            include_metadata: cfg.include_metadata,
        })
    };
    let mut b = tonic::service::RoutesBuilder::default();
    macro_rules! add {
        ($server:ident, $signal:expr) => {
            if let Some(h) = handler(&consumers[$signal]) {
                b.add_service(
                    $server::new(h)
                        .max_decoding_message_size(max)
                        .accept_compressed(CompressionEncoding::Gzip)
                        .accept_compressed(CompressionEncoding::Zstd)
                        .send_compressed(CompressionEncoding::Gzip),
                );
            }
        };
    }
    add!(TraceServiceServer, Signal::Traces);
    add!(MetricsServiceServer, Signal::Metrics);
    add!(LogsServiceServer, Signal::Logs);
    GrpcServer {
        routes: b.routes(),
        consumers,
        counters,
        max,
    }
}

/// The signal whose `Export` method `path` names.
fn signal_of(path: &str) -> Option<Signal> {
    use tonic::server::NamedService;
    let service = path.strip_prefix('/')?.strip_suffix("/Export")?;
    [
        (TraceServiceServer::<Handler>::NAME, Signal::Traces),
        (MetricsServiceServer::<Handler>::NAME, Signal::Metrics),
        (LogsServiceServer::<Handler>::NAME, Signal::Logs),
    ]
    .into_iter()
    .find_map(|(name, signal)| (name == service).then_some(signal))
}

impl GrpcServer {
    async fn call(&self, req: Request<Incoming>) -> http::Response<tonic::body::Body> {
        if let Some(signal) = signal_of(req.uri().path())
            && let Some(consumer) = &self.consumers[signal]
            && let Err(e) = consumer.admit()
        {
            return self.refuse(signal, req, &e).await;
        }
        call_routes(self.routes.clone(), req).await
    }

    /// Answers `error` without decoding the request: its message is read (it is in the
    /// connection's buffers already) only to count the items refused, as decoding would have.
    async fn refuse(
        &self,
        signal: Signal,
        req: Request<Incoming>,
        error: &ConsumeError,
    ) -> http::Response<tonic::body::Body> {
        let encoding = req
            .headers()
            .get("grpc-encoding")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        let body = http_body_util::Limited::new(req.into_body(), self.max.saturating_add(5));
        if let Ok(body) = http_body_util::BodyExt::collect(body).await
            && let Some(n) = refused_items(signal, &body.to_bytes(), &encoding, self.max)
        {
            self.counters.refused[signal].inc_by(n as u64);
        }
        rpc_status::from_consume_error(error)
            .0
            .to_tonic()
            .into_http()
    }
}

/// The items of the first message of a gRPC request body (`encoding`: its `grpc-encoding`);
/// `None` when it cannot be read (too large, corrupt), which decoding would have refused too.
fn refused_items(signal: Signal, body: &Bytes, encoding: &str, max: usize) -> Option<usize> {
    let (&compressed, rest) = body.split_first()?;
    let len = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?) as usize;
    let message = body.slice(5..5usize.checked_add(len).filter(|end| *end <= body.len())?);
    let message = match compressed {
        0 => message,
        1 => super::http::decompress_with(encoding, message, max)?,
        _ => return None,
    };
    wire::encoded_item_count(signal, &message)
}

/// A message over `max_recv_msg_size_mib` is RESOURCE_EXHAUSTED, as upstream's gRPC server
/// answers: tonic says OUT_OF_RANGE, which OTLP clients retry, so they would resend the same
/// oversized message for ever. (The decode error is a trailers-only response: the status is in
/// the headers.)
fn too_large_is_resource_exhausted<B>(mut resp: http::Response<B>) -> http::Response<B> {
    let h = resp.headers();
    let out_of_range = h.get("grpc-status").is_some_and(|v| v == "11");
    let too_large = h
        .get("grpc-message")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|m| {
            m.contains("message%20length%20too%20large") || m.contains("message length too large")
        });
    if out_of_range && too_large {
        resp.headers_mut().insert(
            "grpc-status",
            http::HeaderValue::from_static("8"), // RESOURCE_EXHAUSTED
        );
    }
    resp
}

/// Serves the receiver until `shutdown`.
pub async fn serve_receiver(listener: Listener, server: GrpcServer, shutdown: Shutdown) {
    let server = Arc::new(server);
    serve_with(
        listener,
        move |req| {
            let server = server.clone();
            async move { server.call(req).await }
        },
        shutdown,
    )
    .await;
}

/// Serves `routes` until `shutdown`: any gRPC services on the collector's connection loop (the
/// tests' and the load generator's sinks).
pub async fn serve(listener: Listener, routes: tonic::service::Routes, shutdown: Shutdown) {
    serve_with(
        listener,
        move |req| call_routes(routes.clone(), req),
        shutdown,
    )
    .await;
}

async fn call_routes(
    mut routes: tonic::service::Routes,
    req: Request<Incoming>,
) -> http::Response<tonic::body::Body> {
    use tower::Service;
    match routes.call(req).await {
        Ok(r) => too_large_is_resource_exhausted(r),
        Err(never) => match never {},
    }
}

async fn serve_with<F, Fut>(listener: Listener, call: F, shutdown: Shutdown)
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = http::Response<tonic::body::Body>> + Send + 'static,
{
    net::serve(
        listener,
        move |peer| {
            let call = call.clone();
            hyper::service::service_fn(move |mut req: Request<Incoming>| {
                req.extensions_mut().insert(PeerAddr(peer));
                let resp = call(req);
                async move { Ok::<_, Infallible>(resp.await) }
            })
        },
        shutdown,
    )
    .await;
}
