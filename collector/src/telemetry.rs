//! The Prometheus endpoint that serves the collector's own metrics (the families themselves,
//! named after upstream's, are [`kotel_pipeline::obsreport`]).

use std::sync::Arc;

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;
use prometheus_client::registry::Registry;

use crate::net::{self, Listener};

/// Serves `GET /metrics` (any path, in fact) in the Prometheus text format.
pub async fn serve_metrics(
    listener: Listener,
    registry: Arc<Registry>,
    shutdown: kotel_pipeline::Shutdown,
) {
    let handler = move |_req: http::Request<hyper::body::Incoming>, _peer| {
        let registry = registry.clone();
        async move {
            let mut text = String::new();
            let resp = match prometheus_client::encoding::text::encode(&mut text, &registry) {
                Ok(()) => Response::builder()
                    .header(
                        http::header::CONTENT_TYPE,
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    )
                    .body(Full::new(Bytes::from(text))),
                Err(_) => Response::builder()
                    .status(StatusCode::INTERNAL_SERVER_ERROR)
                    .body(Full::new(Bytes::from_static(b"failed to encode metrics"))),
            };
            Ok::<_, std::convert::Infallible>(resp.expect("static response parts are valid"))
        }
    };
    net::serve_fn(listener, handler, shutdown).await;
}
