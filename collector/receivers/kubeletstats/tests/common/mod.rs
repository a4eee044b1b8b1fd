//! Shared by the integration tests: fixtures, a text rendering of OTLP metrics that shows name,
//! unit, type, value, attributes and timestamps, and a test kubelet (HTTPS, with a CA, server and
//! client certificates made by rcgen at test time).

#![allow(dead_code)]

use std::convert::Infallible;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use kotel_pipeline::ExportMetricsServiceRequest;
use kotel_pipeline::proto::common::v1::{KeyValue, any_value};
use kotel_pipeline::proto::metrics::v1::{metric, number_data_point};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// 2024-05-01T00:00:00Z, the base the fixtures' times are rendered against.
pub const BASE: u64 = 1_714_521_600 * 1_000_000_000;
pub const SECOND: u64 = 1_000_000_000;

pub fn fixture(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn attrs(kvs: &[KeyValue]) -> String {
    kvs.iter()
        .map(|kv| {
            let v = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                Some(any_value::Value::StringValue(s)) => s.clone(),
                other => format!("{other:?}"),
            };
            format!("{}={v}", kv.key)
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn secs(t: u64) -> String {
    if t == 0 {
        "-".into()
    } else {
        format!("{}", (t as i128 - BASE as i128) / SECOND as i128)
    }
}

/// One line per resource and per data point:
/// `  name [unit] type {point attrs} = value start=<s> t=<s>` with times in seconds after [`BASE`].
pub fn render(req: &ExportMetricsServiceRequest) -> String {
    let mut out = String::new();
    for rm in &req.resource_metrics {
        let res = rm
            .resource
            .as_ref()
            .map(|r| attrs(&r.attributes))
            .unwrap_or_default();
        writeln!(out, "resource {res}").unwrap();
        for sm in &rm.scope_metrics {
            for m in &sm.metrics {
                assert!(!m.description.is_empty(), "{} has no description", m.name);
                let (ty, points) = match m.data.as_ref().expect("metric data") {
                    metric::Data::Gauge(g) => ("gauge".to_string(), &g.data_points),
                    metric::Data::Sum(s) => {
                        assert_eq!(s.aggregation_temporality, 2, "{} is cumulative", m.name);
                        (
                            if s.is_monotonic {
                                "sum(monotonic)".to_string()
                            } else {
                                "sum".to_string()
                            },
                            &s.data_points,
                        )
                    }
                    other => panic!("unexpected data {other:?}"),
                };
                for p in points {
                    let value = match p.value.expect("a value") {
                        number_data_point::Value::AsInt(i) => format!("int {i}"),
                        number_data_point::Value::AsDouble(d) => format!("double {d}"),
                    };
                    let pa = if p.attributes.is_empty() {
                        String::new()
                    } else {
                        format!(" {{{}}}", attrs(&p.attributes))
                    };
                    writeln!(
                        out,
                        "  {} [{}] {ty}{pa} = {value} start={} t={}",
                        m.name,
                        m.unit,
                        secs(p.start_time_unix_nano),
                        secs(p.time_unix_nano)
                    )
                    .unwrap();
                }
            }
        }
    }
    out
}

/// Lines of `render` that contain `needle`.
pub fn lines_with(rendered: &str, needle: &str) -> Vec<String> {
    rendered
        .lines()
        .filter(|l| l.contains(needle))
        .map(str::to_string)
        .collect()
}

/// A CA, a server certificate for localhost/127.0.0.1, and a client certificate, on disk.
pub struct Pki {
    pub dir: tempfile::TempDir,
    pub ca_file: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    pub server_chain: Vec<CertificateDer<'static>>,
    pub server_key: PrivateKeyDer<'static>,
    pub ca_der: CertificateDer<'static>,
}

pub fn pki() -> Pki {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "kotel test kubelet CA");
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();

    let server_key = KeyPair::generate().unwrap();
    let mut sp =
        CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    sp.distinguished_name.push(DnType::CommonName, "node-1");
    sp.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let server_cert = sp.signed_by(&server_key, &ca).unwrap();

    let client_key = KeyPair::generate().unwrap();
    let mut cp = CertificateParams::new(Vec::<String>::new()).unwrap();
    cp.distinguished_name
        .push(DnType::CommonName, "system:serviceaccount:kotel:collector");
    cp.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let client_cert = cp.signed_by(&client_key, &ca).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: String| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let ca_file = write("ca.crt", ca.pem());
    let client_cert_file = write("client.crt", client_cert.pem());
    let client_key_file = write("client.key", client_key.serialize_pem());
    Pki {
        ca_file,
        client_cert: client_cert_file,
        client_key: client_key_file,
        server_chain: vec![server_cert.der().clone(), ca.der().clone()],
        server_key: PrivateKeyDer::from_pem_slice(server_key.serialize_pem().as_bytes()).unwrap(),
        ca_der: ca.der().clone(),
        dir,
    }
}

/// What the test kubelet answers on one path.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: String,
    /// Never answer (for timeouts).
    pub hang: bool,
}

impl Reply {
    pub fn ok(body: impl Into<String>) -> Self {
        Self {
            status: 200,
            body: body.into(),
            hang: false,
        }
    }

    pub fn status(status: u16, body: &str) -> Self {
        Self {
            status,
            body: body.into(),
            hang: false,
        }
    }

    pub fn hang() -> Self {
        Self {
            status: 200,
            body: String::new(),
            hang: true,
        }
    }
}

/// A request as the test kubelet saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub path: String,
    pub bearer: Option<String>,
    pub client_cert: bool,
    pub host: Option<String>,
}

#[derive(Default)]
pub struct KubeletState {
    pub summary: Option<Reply>,
    pub pods: Option<Reply>,
    /// Bearer tokens the kubelet accepts; a verified client certificate is accepted too.
    pub tokens: Vec<String>,
    pub seen: Vec<Seen>,
    /// TLS connections accepted.
    pub connections: usize,
}

/// An HTTPS kubelet on 127.0.0.1 serving `/stats/summary` and `/pods` as told.
pub struct TestKubelet {
    pub addr: SocketAddr,
    pub state: Arc<Mutex<KubeletState>>,
    pub pki: Pki,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TestKubelet {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestKubelet {
    pub async fn start() -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let pki = pki();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        roots.add(pki.ca_der.clone()).unwrap();
        let verifier =
            WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .allow_unauthenticated()
                .build()
                .unwrap();
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_client_cert_verifier(verifier)
            .with_single_cert(pki.server_chain.clone(), pki.server_key.clone_key())
            .unwrap();
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(KubeletState {
            tokens: vec!["token-1".into()],
            ..Default::default()
        }));
        let st = state.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let acceptor = acceptor.clone();
                let st = st.clone();
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    st.lock().unwrap().connections += 1;
                    let client_cert = tls.get_ref().1.peer_certificates().is_some();
                    let svc = service_fn(move |req| handle(req, st.clone(), client_cert));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), svc)
                        .await;
                });
            }
        });
        Self {
            addr,
            state,
            pki,
            task,
        }
    }

    pub fn endpoint(&self) -> String {
        format!("https://127.0.0.1:{}", self.addr.port())
    }

    pub fn set_summary(&self, r: Reply) {
        self.state.lock().unwrap().summary = Some(r);
    }

    pub fn set_pods(&self, r: Reply) {
        self.state.lock().unwrap().pods = Some(r);
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
    }
}

async fn handle(
    req: Request<Incoming>,
    state: Arc<Mutex<KubeletState>>,
    client_cert: bool,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let bearer = req
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_string);
    let host = req
        .headers()
        .get(http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let path = req.uri().path().to_string();
    let reply = {
        let mut s = state.lock().unwrap();
        s.seen.push(Seen {
            path: path.clone(),
            bearer: bearer.clone(),
            client_cert,
            host,
        });
        let authorized = client_cert || bearer.as_ref().is_some_and(|b| s.tokens.contains(b));
        if !authorized {
            Reply::status(401, "Unauthorized")
        } else {
            match path.as_str() {
                "/stats/summary" => s.summary.clone(),
                "/pods" => s.pods.clone(),
                _ => None,
            }
            .unwrap_or_else(|| Reply::status(404, "404 page not found"))
        }
    };
    if reply.hang {
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
    Ok(Response::builder()
        .status(StatusCode::from_u16(reply.status).unwrap())
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(reply.body)))
        .unwrap())
}
