//! OTLP/gRPC: the `Export` services of opentelemetry-proto's generated servers, served by the
//! collector's own connection loop (see [`crate::net`]).

use std::convert::Infallible;

use http::Request;
use hyper::body::Incoming;
use kotel_config::receivers::otlp::GrpcServerConfig;
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
    BoxConsumer, Envelope, ExportLogsServiceRequest, ExportMetricsServiceRequest,
    ExportTraceServiceRequest, Payload, Shutdown,
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

/// The services for the signals that have pipelines; the others answer UNIMPLEMENTED.
pub fn routes(cfg: &GrpcServerConfig, consumers: SignalConsumers) -> tonic::service::Routes {
    let max = cfg.max_recv_msg_size();
    let handler = |c: BoxConsumer| Handler {
        consumer: c,
        include_metadata: cfg.include_metadata,
    };
    let mut b = tonic::service::RoutesBuilder::default();
    macro_rules! add {
        ($server:ident, $consumer:expr) => {
            if let Some(c) = $consumer {
                b.add_service(
                    $server::new(handler(c))
                        .max_decoding_message_size(max)
                        .accept_compressed(CompressionEncoding::Gzip)
                        .accept_compressed(CompressionEncoding::Zstd)
                        .send_compressed(CompressionEncoding::Gzip),
                );
            }
        };
    }
    add!(TraceServiceServer, consumers.traces);
    add!(MetricsServiceServer, consumers.metrics);
    add!(LogsServiceServer, consumers.logs);
    b.routes()
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

pub async fn serve(listener: Listener, routes: tonic::service::Routes, shutdown: Shutdown) {
    net::serve(
        listener,
        move |peer| {
            let routes = routes.clone();
            hyper::service::service_fn(move |mut req: Request<Incoming>| {
                req.extensions_mut().insert(PeerAddr(peer));
                let mut routes = routes.clone();
                async move {
                    use tower::Service;
                    let resp = routes.call(req).await;
                    Ok::<_, Infallible>(match resp {
                        Ok(r) => too_large_is_resource_exhausted(r),
                        Err(never) => match never {},
                    })
                }
            })
        },
        shutdown,
    )
    .await;
}
