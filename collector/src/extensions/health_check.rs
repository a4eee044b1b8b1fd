//! `health_check`: answers 200 on its path once every pipeline runs, 503 before and during
//! shutdown.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;
use kotel_pipeline::Shutdown;

use crate::net::{self, Listener};

/// Whether the collector is ready, shared by the service and the health endpoint.
#[derive(Clone, Default)]
pub struct Readiness(Arc<AtomicBool>);

impl Readiness {
    pub fn set(&self, ready: bool) {
        self.0.store(ready, Ordering::Release);
    }

    pub fn get(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

pub async fn serve(listener: Listener, path: String, ready: Readiness, shutdown: Shutdown) {
    let path = Arc::new(path);
    net::serve_fn(
        listener,
        move |req, _peer| {
            let path = path.clone();
            let ready = ready.clone();
            async move {
                let (status, body): (StatusCode, &'static [u8]) = if req.uri().path() != *path {
                    (StatusCode::NOT_FOUND, b"")
                } else if ready.get() {
                    (StatusCode::OK, br#"{"status":"Server available"}"#)
                } else {
                    (
                        StatusCode::SERVICE_UNAVAILABLE,
                        br#"{"status":"Server not available"}"#,
                    )
                };
                Ok(Response::builder()
                    .status(status)
                    .header(http::header::CONTENT_TYPE, "application/json")
                    .body(Full::new(Bytes::from_static(body)))
                    .expect("static response parts are valid"))
            }
        },
        shutdown,
    )
    .await;
}
