//! `otlp` receiver: OTLP over gRPC and HTTP (protobuf and JSON), one listener per protocol
//! shared by every pipeline that names the receiver.

pub mod grpc;
pub mod http;
pub mod json;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use kotel_config::ComponentId;
use kotel_config::receivers::otlp::OtlpReceiverConfig;
use kotel_pipeline::obsreport::ReceiverCounters;
use kotel_pipeline::{BuildContext, Built, ReceiverOutputs, RequestContext, Shutdown};

use super::SignalConsumers;
use crate::net::{self, Listener, NetError, Protocol};

/// The component contract's build: binds the listeners (a port in use fails the start).
pub async fn build(
    cx: BuildContext<'_>,
    cfg: &OtlpReceiverConfig,
    out: ReceiverOutputs,
) -> Result<Built, OtlpReceiverError> {
    let wiring = Wiring {
        grpc: out.transport("grpc"),
        http: out.transport("http"),
    };
    let receiver = OtlpReceiver::build(cx.id, cfg, wiring).await?;
    let addresses = receiver
        .local_addrs()
        .into_iter()
        .map(|(proto, addr)| (proto.to_string(), addr))
        .collect();
    let shutdown = cx.stages.receivers.clone();
    Ok(Built {
        addresses,
        ..Built::task(async move {
            receiver.run(shutdown).await;
            Ok::<(), std::convert::Infallible>(())
        })
    })
}

#[derive(Debug, thiserror::Error)]
pub enum OtlpReceiverError {
    #[error("receivers.{id}.protocols.{protocol}: {source}")]
    Listen {
        id: ComponentId,
        protocol: &'static str,
        source: NetError,
    },
}

/// What the receiver pushes to and counts with, per transport.
pub struct Wiring {
    pub grpc: (SignalConsumers, ReceiverCounters),
    pub http: (SignalConsumers, ReceiverCounters),
}

pub struct OtlpReceiver {
    grpc: Option<(Listener, grpc::GrpcServer)>,
    http: Option<(Listener, Arc<http::HttpState>)>,
}

impl OtlpReceiver {
    /// Binds the listeners, so a port in use fails the start.
    pub async fn build(
        id: &ComponentId,
        cfg: &OtlpReceiverConfig,
        wiring: Wiring,
    ) -> Result<Self, OtlpReceiverError> {
        let grpc = match &cfg.protocols.grpc {
            None => None,
            Some(g) => {
                let listener = net::bind(&g.endpoint, g.tls.as_ref(), Protocol::Http2)
                    .await
                    .map_err(|source| OtlpReceiverError::Listen {
                        id: id.clone(),
                        protocol: "grpc",
                        source,
                    })?
                    .with_max_concurrent_streams(g.max_concurrent_streams);
                let (consumers, counters) = wiring.grpc;
                Some((listener, grpc::server(g, consumers, counters)))
            }
        };
        let http = match &cfg.protocols.http {
            None => None,
            Some(h) => {
                let listener = net::bind(&h.endpoint, h.tls.as_ref(), Protocol::Auto)
                    .await
                    .map_err(|source| OtlpReceiverError::Listen {
                        id: id.clone(),
                        protocol: "http",
                        source,
                    })?;
                let (consumers, counters) = wiring.http;
                Some((
                    listener,
                    Arc::new(http::HttpState::new(h, consumers, counters)),
                ))
            }
        };
        Ok(Self { grpc, http })
    }

    /// The bound addresses, by protocol (`grpc`, `http`).
    pub fn local_addrs(&self) -> Vec<(&'static str, SocketAddr)> {
        let mut out = Vec::new();
        if let Some((l, _)) = &self.grpc {
            out.push(("grpc", l.local_addr()));
        }
        if let Some((l, _)) = &self.http {
            out.push(("http", l.local_addr()));
        }
        out
    }

    /// Serves until `shutdown`, then lets open requests finish.
    pub async fn run(self, shutdown: Shutdown) {
        let grpc = self
            .grpc
            .map(|(listener, server)| grpc::serve_receiver(listener, server, shutdown.clone()));
        let http = self.http.map(|(listener, state)| {
            net::serve_fn(
                listener,
                move |req, peer| http::handle(state.clone(), req, peer),
                shutdown.clone(),
            )
        });
        match (grpc, http) {
            (Some(g), Some(h)) => {
                tokio::join!(g, h);
            }
            (Some(g), None) => g.await,
            (None, Some(h)) => h.await,
            (None, None) => {}
        }
    }
}

/// The request context: the peer always, headers when `include_metadata` is on.
pub(crate) fn context(
    peer: Option<SocketAddr>,
    headers: Option<&::http::HeaderMap>,
) -> RequestContext {
    let metadata = headers.map(|h| {
        let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (k, v) in h {
            if let Ok(v) = v.to_str() {
                map.entry(k.as_str().to_string())
                    .or_default()
                    .push(v.to_string());
            }
        }
        Arc::new(map)
    });
    RequestContext { peer, metadata }
}
