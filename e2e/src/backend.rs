//! The suite's OTLP backend: a gRPC receiver for traces, metrics and logs that keeps everything
//! it is sent, flattened to one row per span, point or record with its resource and attributes
//! as strings, so a test can ask "did every numbered line arrive exactly once, and with what".

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use anyhow::Result;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::metrics::v1::{metric, number_data_point};
use tonic::{Request, Response, Status};

/// Attributes as `key → value rendered as a string`.
pub type Attrs = BTreeMap<String, String>;

/// One received item: a log record, a span or a metric data point.
#[derive(Debug, Clone)]
pub struct Row {
    pub resource: Attrs,
    pub attributes: Attrs,
    /// Log body, span name or metric name.
    pub text: String,
    /// A metric point's value (0 for logs and spans).
    pub value: f64,
}

impl Row {
    /// An attribute of the item, else of its resource.
    pub fn attr(&self, key: &str) -> Option<&str> {
        self.attributes
            .get(key)
            .or_else(|| self.resource.get(key))
            .map(String::as_str)
    }
}

#[derive(Default)]
struct Store {
    logs: Vec<Row>,
    spans: Vec<Row>,
    points: Vec<Row>,
    /// An outage: every request is answered UNAVAILABLE (retryable) and nothing is kept.
    down: bool,
}

/// A running backend; stops when dropped.
pub struct Backend {
    addr: SocketAddr,
    store: Arc<Mutex<Store>>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Backend {
    /// Listens on `bind` (such as `127.0.0.1:0`).
    pub async fn start(bind: &str) -> Result<Self> {
        let listener = tokio::net::TcpListener::bind(bind).await?;
        let addr = listener.local_addr()?;
        let store = Arc::new(Mutex::new(Store::default()));
        let svc = Svc(store.clone());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let r = tonic::transport::Server::builder()
                .add_service(
                    TraceServiceServer::new(svc.clone())
                        .accept_compressed(tonic::codec::CompressionEncoding::Gzip)
                        .accept_compressed(tonic::codec::CompressionEncoding::Zstd)
                        .max_decoding_message_size(64 << 20),
                )
                .add_service(
                    MetricsServiceServer::new(svc.clone())
                        .accept_compressed(tonic::codec::CompressionEncoding::Gzip)
                        .accept_compressed(tonic::codec::CompressionEncoding::Zstd)
                        .max_decoding_message_size(64 << 20),
                )
                .add_service(
                    LogsServiceServer::new(svc)
                        .accept_compressed(tonic::codec::CompressionEncoding::Gzip)
                        .accept_compressed(tonic::codec::CompressionEncoding::Zstd)
                        .max_decoding_message_size(64 << 20),
                )
                .serve_with_incoming_shutdown(
                    tokio_stream::wrappers::TcpListenerStream::new(listener),
                    async {
                        let _ = stopped.await;
                    },
                )
                .await;
            if let Err(e) = r {
                eprintln!("backend on {addr}: {e}");
            }
        });
        Ok(Self {
            addr,
            store,
            _stop: stop,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn logs(&self) -> Vec<Row> {
        self.store.lock().expect("store").logs.clone()
    }

    pub fn spans(&self) -> Vec<Row> {
        self.store.lock().expect("store").spans.clone()
    }

    pub fn points(&self) -> Vec<Row> {
        self.store.lock().expect("store").points.clone()
    }

    /// How many of each arrived so far: (log records, metric points, spans).
    pub fn counts(&self) -> (usize, usize, usize) {
        let s = self.store.lock().expect("store");
        (s.logs.len(), s.points.len(), s.spans.len())
    }

    /// Forgets everything received so far.
    pub fn clear(&self) {
        let mut s = self.store.lock().expect("store");
        *s = Store {
            down: s.down,
            ..Store::default()
        };
    }

    /// Starts (`true`) or ends an outage: meanwhile every export is refused as UNAVAILABLE.
    pub fn set_down(&self, down: bool) {
        self.store.lock().expect("store").down = down;
    }
}

#[derive(Clone)]
struct Svc(Arc<Mutex<Store>>);

impl Svc {
    fn check_up(&self) -> Result<(), Status> {
        if self.0.lock().expect("store").down {
            return Err(Status::unavailable("backend outage (test)"));
        }
        Ok(())
    }
}

pub fn value_string(v: Option<&AnyValue>) -> String {
    match v.and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::BytesValue(b)) => format!("{b:?}"),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

fn attrs(kvs: &[KeyValue]) -> Attrs {
    kvs.iter()
        .map(|kv| (kv.key.clone(), value_string(kv.value.as_ref())))
        .collect()
}

#[tonic::async_trait]
impl TraceService for Svc {
    async fn export(
        &self,
        req: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        self.check_up()?;
        let mut rows = Vec::new();
        for rs in req.into_inner().resource_spans {
            let resource = attrs(&rs.resource.map(|r| r.attributes).unwrap_or_default());
            for ss in rs.scope_spans {
                for s in ss.spans {
                    rows.push(Row {
                        resource: resource.clone(),
                        attributes: attrs(&s.attributes),
                        text: s.name,
                        value: 0.0,
                    });
                }
            }
        }
        self.0.lock().expect("store").spans.extend(rows);
        Ok(Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl MetricsService for Svc {
    async fn export(
        &self,
        req: Request<ExportMetricsServiceRequest>,
    ) -> Result<Response<ExportMetricsServiceResponse>, Status> {
        self.check_up()?;
        let mut rows = Vec::new();
        for rm in req.into_inner().resource_metrics {
            let resource = attrs(&rm.resource.map(|r| r.attributes).unwrap_or_default());
            for sm in rm.scope_metrics {
                for m in sm.metrics {
                    let points = match m.data {
                        Some(metric::Data::Gauge(g)) => g.data_points,
                        Some(metric::Data::Sum(s)) => s.data_points,
                        _ => Vec::new(),
                    };
                    for p in points {
                        let value = match p.value {
                            Some(number_data_point::Value::AsInt(i)) => i as f64,
                            Some(number_data_point::Value::AsDouble(d)) => d,
                            None => f64::NAN,
                        };
                        rows.push(Row {
                            resource: resource.clone(),
                            attributes: attrs(&p.attributes),
                            text: m.name.clone(),
                            value,
                        });
                    }
                }
            }
        }
        self.0.lock().expect("store").points.extend(rows);
        Ok(Response::new(ExportMetricsServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl LogsService for Svc {
    async fn export(
        &self,
        req: Request<ExportLogsServiceRequest>,
    ) -> Result<Response<ExportLogsServiceResponse>, Status> {
        self.check_up()?;
        let mut rows = Vec::new();
        for rl in req.into_inner().resource_logs {
            let resource = attrs(&rl.resource.map(|r| r.attributes).unwrap_or_default());
            for sl in rl.scope_logs {
                for r in sl.log_records {
                    rows.push(Row {
                        resource: resource.clone(),
                        attributes: attrs(&r.attributes),
                        text: value_string(r.body.as_ref()),
                        value: 0.0,
                    });
                }
            }
        }
        self.0.lock().expect("store").logs.extend(rows);
        Ok(Response::new(ExportLogsServiceResponse::default()))
    }
}
