//! OTLP/HTTP: `POST /v1/{traces,metrics,logs}` with protobuf or JSON bodies.
//!
//! Answers as the OTLP spec names them: 404 unknown path (or a signal without a pipeline), 405
//! not POST, 415 unsupported Content-Type, 400 unreadable or undecodable body or unsupported
//! Content-Encoding, 413 body over `max_request_body_size` (before or after decompression), 503
//! with Retry-After when the pipeline refuses, 200 with an empty Export*ServiceResponse. Error
//! bodies are a `google.rpc.Status` in the request's encoding (JSON when it is unknown).

use std::convert::Infallible;
use std::io::Read;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use kotel_config::receivers::otlp::{CorsConfig, HttpServerConfig};
use kotel_pipeline::{Envelope, Payload, Signal, wire};
use prost::Message;

use super::{context, json};
use crate::receivers::SignalConsumers;
use crate::rpc_status::{self, Status};
use kotel_pipeline::obsreport::ReceiverCounters;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Proto,
    Json,
}

impl Encoding {
    fn content_type(self) -> &'static str {
        match self {
            Self::Proto => "application/x-protobuf",
            Self::Json => "application/json",
        }
    }
}

pub struct HttpState {
    paths: Vec<(String, Signal)>,
    consumers: SignalConsumers,
    max_body: usize,
    include_metadata: bool,
    compression: Option<Vec<String>>,
    response_headers: Vec<(header::HeaderName, HeaderValue)>,
    cors: Option<CorsConfig>,
    counters: ReceiverCounters,
}

impl HttpState {
    pub fn new(
        cfg: &HttpServerConfig,
        consumers: SignalConsumers,
        counters: ReceiverCounters,
    ) -> Self {
        let slash = |p: &str| {
            if p.starts_with('/') {
                p.to_string()
            } else {
                format!("/{p}")
            }
        };
        Self {
            paths: vec![
                (slash(&cfg.traces_url_path), Signal::Traces),
                (slash(&cfg.metrics_url_path), Signal::Metrics),
                (slash(&cfg.logs_url_path), Signal::Logs),
            ],
            consumers,
            max_body: cfg.max_request_body_size as usize,
            include_metadata: cfg.include_metadata,
            compression: cfg.compression_algorithms.clone(),
            response_headers: cfg
                .response_headers
                .iter()
                .filter_map(|(k, v)| {
                    Some((
                        header::HeaderName::from_bytes(k.as_bytes()).ok()?,
                        HeaderValue::from_str(v).ok()?,
                    ))
                })
                .collect(),
            cors: cfg.cors.clone().filter(|c| !c.allowed_origins.is_empty()),
            counters,
        }
    }

    fn allowed_origin(&self, req: &Request<Incoming>) -> Option<HeaderValue> {
        let cors = self.cors.as_ref()?;
        let origin = req.headers().get(header::ORIGIN)?;
        let o = origin.to_str().ok()?;
        cors.allowed_origins
            .iter()
            .any(|pattern| wildcard_match(pattern, o))
            .then(|| origin.clone())
    }
}

/// `*` matches any run of characters.
fn wildcard_match(pattern: &str, s: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or_default();
    let Some(mut rest) = s.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for p in middle {
        match rest.find(p) {
            Some(i) => rest = &rest[i + p.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

type Resp = Response<Full<Bytes>>;

struct Reply {
    status: StatusCode,
    body: Bytes,
    content_type: &'static str,
    retry_after: Option<u64>,
}

fn status_reply(code: StatusCode, status: &Status, enc: Encoding) -> Reply {
    let body = match enc {
        Encoding::Proto => status.encode_to_vec(),
        Encoding::Json => status.to_json(),
    };
    Reply {
        status: code,
        body: body.into(),
        content_type: enc.content_type(),
        retry_after: None,
    }
}

fn bad(code: StatusCode, grpc: tonic::Code, message: impl Into<String>, enc: Encoding) -> Reply {
    status_reply(code, &Status::new(grpc, message), enc)
}

pub async fn handle(
    state: Arc<HttpState>,
    req: Request<Incoming>,
    peer: SocketAddr,
) -> Result<Resp, Infallible> {
    let origin = state.allowed_origin(&req);
    if req.method() == Method::OPTIONS
        && req
            .headers()
            .contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
    {
        return Ok(preflight(&state, origin));
    }
    let reply = process(&state, req, peer).await;
    let mut resp = Response::builder()
        .status(reply.status)
        .header(header::CONTENT_TYPE, reply.content_type);
    if let Some(secs) = reply.retry_after {
        resp = resp.header(header::RETRY_AFTER, secs);
    }
    if reply.status == StatusCode::METHOD_NOT_ALLOWED {
        resp = resp.header(header::ALLOW, "POST");
    }
    for (k, v) in &state.response_headers {
        resp = resp.header(k, v);
    }
    if let (Some(o), Some(cors)) = (origin, &state.cors) {
        resp = resp
            .header(header::ACCESS_CONTROL_ALLOW_ORIGIN, o)
            .header(header::ACCESS_CONTROL_ALLOW_CREDENTIALS, "true")
            .header(header::VARY, "Origin");
        if !cors.exposed_headers.is_empty() {
            resp = resp.header(
                header::ACCESS_CONTROL_EXPOSE_HEADERS,
                cors.exposed_headers.join(", "),
            );
        }
    }
    Ok(resp
        .body(Full::new(reply.body))
        .expect("response parts are valid"))
}

fn preflight(state: &HttpState, origin: Option<HeaderValue>) -> Resp {
    let mut resp = Response::builder().status(StatusCode::NO_CONTENT);
    if let (Some(o), Some(cors)) = (origin, &state.cors) {
        let headers = if cors.allowed_headers.iter().any(|h| h == "*") {
            "*".to_string()
        } else {
            let mut h = vec!["Content-Type", "Content-Encoding", "X-Requested-With"];
            h.extend(cors.allowed_headers.iter().map(String::as_str));
            h.join(", ")
        };
        resp = resp
            .header(header::ACCESS_CONTROL_ALLOW_ORIGIN, o)
            .header(header::ACCESS_CONTROL_ALLOW_CREDENTIALS, "true")
            .header(header::ACCESS_CONTROL_ALLOW_METHODS, "POST")
            .header(header::ACCESS_CONTROL_ALLOW_HEADERS, headers)
            .header(header::VARY, "Origin");
        if cors.max_age > 0 {
            resp = resp.header(header::ACCESS_CONTROL_MAX_AGE, cors.max_age);
        }
    }
    resp.body(Full::new(Bytes::new()))
        .expect("response parts are valid")
}

async fn process(state: &HttpState, req: Request<Incoming>, peer: SocketAddr) -> Reply {
    let counters = &state.counters;
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        });
    let enc = match content_type.as_deref() {
        Some("application/x-protobuf") => Some(Encoding::Proto),
        Some("application/json") => Some(Encoding::Json),
        _ => None,
    };
    let reply_enc = enc.unwrap_or(Encoding::Json);

    let signal = state
        .paths
        .iter()
        .find(|(p, _)| p == req.uri().path())
        .map(|(_, s)| *s);
    let Some(consumer) = signal.and_then(|s| state.consumers[s].as_ref()) else {
        counters.failed_request("not_found");
        return bad(
            StatusCode::NOT_FOUND,
            tonic::Code::Unimplemented,
            format!("{} is not an OTLP path of this receiver", req.uri().path()),
            reply_enc,
        );
    };
    let signal = signal.expect("a consumer implies a signal");
    if req.method() != Method::POST {
        counters.failed_request("method_not_allowed");
        return bad(
            StatusCode::METHOD_NOT_ALLOWED,
            tonic::Code::Unimplemented,
            "405 method not allowed, supported: [POST]",
            reply_enc,
        );
    }
    let Some(enc) = enc else {
        counters.failed_request("unsupported_media_type");
        return bad(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            tonic::Code::InvalidArgument,
            "415 unsupported media type, supported: [application/json, application/x-protobuf]",
            reply_enc,
        );
    };
    let content_encoding = req
        .headers()
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let allowed = state
        .compression
        .as_ref()
        .is_none_or(|list| content_encoding.is_empty() || list.contains(&content_encoding));
    let codec = codec_of(&content_encoding);
    if codec == Codec::Unsupported || !allowed {
        counters.failed_request("unsupported_encoding");
        return bad(
            StatusCode::BAD_REQUEST,
            tonic::Code::InvalidArgument,
            format!("unsupported Content-Encoding: {content_encoding}"),
            enc,
        );
    }
    let too_large = || {
        counters.failed_request("too_large");
        bad(
            StatusCode::PAYLOAD_TOO_LARGE,
            tonic::Code::ResourceExhausted,
            format!(
                "request body larger than max_request_body_size ({} bytes)",
                state.max_body
            ),
            enc,
        )
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > state.max_body.saturating_add(DRAIN_LIMIT)) {
        return too_large();
    }
    let headers = state.include_metadata.then(|| req.headers().clone());
    let raw = match read_body(req.into_body(), state.max_body, declared).await {
        Ok(b) => b,
        Err(ReadError::TooLarge) => return too_large(),
        Err(ReadError::Io(e)) => {
            counters.failed_request("bad_payload");
            return bad(
                StatusCode::BAD_REQUEST,
                tonic::Code::InvalidArgument,
                format!("cannot read the request body: {e}"),
                enc,
            );
        }
    };
    let body = match decompress(codec, raw, state.max_body) {
        Ok(b) => b,
        Err(Decompress::TooLarge) => return too_large(),
        Err(Decompress::Corrupt(e)) => {
            counters.failed_request("bad_encoding");
            return bad(
                StatusCode::BAD_REQUEST,
                tonic::Code::InvalidArgument,
                format!("cannot decompress the {content_encoding} body: {e}"),
                enc,
            );
        }
    };
    // Refused before decoding while the pipeline refuses every request (the memory limiter):
    // the decoded form is memory it protects. Protobuf items are counted from the encoding;
    // JSON has no cheap count, so it is decoded and refused by the pipeline as before.
    if enc == Encoding::Proto
        && let Err(e) = consumer.admit()
        && let Some(n) = wire::encoded_item_count(signal, &body)
    {
        counters.refused[signal].inc_by(n as u64);
        return refusal_reply(&e, enc);
    }
    let decoded = match enc {
        Encoding::Proto => decode_proto(signal, &body),
        Encoding::Json => json::decode(signal, &body),
    };
    let payload = match decoded {
        Ok(p) => p,
        Err(e) => {
            counters.failed_request("bad_payload");
            return bad(
                StatusCode::BAD_REQUEST,
                tonic::Code::InvalidArgument,
                e,
                enc,
            );
        }
    };
    if payload.item_count() > 0 {
        let ctx = context(Some(peer), headers.as_ref());
        if let Err(e) = consumer.consume(Envelope::with_context(payload, ctx)).await {
            return refusal_reply(&e, enc);
        }
    }
    Reply {
        status: StatusCode::OK,
        body: match enc {
            // Every Export*ServiceResponse without partial success encodes to nothing.
            Encoding::Proto => Bytes::new(),
            Encoding::Json => Bytes::from_static(b"{}"),
        },
        content_type: enc.content_type(),
        retry_after: None,
    }
}

/// The answer to what the pipeline did not accept, with Retry-After where it may be retried.
fn refusal_reply(e: &kotel_pipeline::ConsumeError, enc: Encoding) -> Reply {
    let (status, code) = rpc_status::from_consume_error(e);
    let mut reply = status_reply(code, &status, enc);
    if matches!(
        code,
        StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
    ) {
        reply.retry_after = status.retry_after().map(|d| d.as_secs().max(1));
    }
    reply
}

/// A body this much over the limit is still read (and discarded) so the client gets to read the
/// 413 instead of a reset connection; beyond it the connection is dropped.
const DRAIN_LIMIT: usize = 8 << 20;

enum ReadError {
    TooLarge,
    Io(hyper::Error),
}

async fn read_body(
    mut body: Incoming,
    max: usize,
    declared: Option<usize>,
) -> Result<Bytes, ReadError> {
    let mut buf = Vec::with_capacity(declared.unwrap_or(0).min(max));
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame.map_err(ReadError::Io)?.into_data() else {
            continue;
        };
        seen += data.len();
        if seen <= max {
            if buf.is_empty() && seen == declared.unwrap_or(usize::MAX) {
                // The whole body in one frame: no copy.
                return Ok(data);
            }
            buf.extend_from_slice(&data);
        } else if seen > max.saturating_add(DRAIN_LIMIT) {
            return Err(ReadError::TooLarge);
        }
    }
    if seen > max {
        return Err(ReadError::TooLarge);
    }
    Ok(buf.into())
}

/// One request body as the server decodes it, for the fuzz targets: the same decompression
/// (under the `max` limit) and decoding as [`handle`], without the transport. `content_encoding`
/// is the header's value, lower case.
pub fn decode_request(
    signal: Signal,
    content_encoding: &str,
    json: bool,
    raw: Bytes,
    max: usize,
) -> Result<Payload, String> {
    let body = decompress(codec_of(content_encoding), raw, max).map_err(|e| match e {
        Decompress::TooLarge => "too large".to_string(),
        Decompress::Corrupt(e) => e.to_string(),
    })?;
    if json {
        json::decode(signal, &body)
    } else {
        decode_proto(signal, &body)
    }
}

fn codec_of(content_encoding: &str) -> Codec {
    match content_encoding {
        "" | "identity" => Codec::Identity,
        "gzip" | "x-gzip" => Codec::Gzip,
        "zstd" => Codec::Zstd,
        "deflate" | "zlib" => Codec::Zlib,
        _ => Codec::Unsupported,
    }
}

fn decode_proto(signal: Signal, body: &[u8]) -> Result<Payload, String> {
    let r = match signal {
        Signal::Traces => Message::decode(body).map(Payload::Traces),
        Signal::Metrics => Message::decode(body).map(Payload::Metrics),
        Signal::Logs => Message::decode(body).map(Payload::Logs),
    };
    r.map_err(|e| format!("invalid protobuf {} request: {e}", signal.as_str()))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Codec {
    Identity,
    Gzip,
    Zstd,
    Zlib,
    Unsupported,
}

enum Decompress {
    TooLarge,
    Corrupt(std::io::Error),
}

/// Decompresses with the body limit applied to the output (a decompression bomb stops at
/// `max + 1` bytes).
/// `raw` decompressed as the `Content-Encoding` / `grpc-encoding` value `encoding` (lower case)
/// says, within `max` bytes; `None` when that fails.
pub(super) fn decompress_with(encoding: &str, raw: Bytes, max: usize) -> Option<Bytes> {
    match codec_of(encoding) {
        Codec::Identity | Codec::Unsupported => None,
        codec => decompress(codec, raw, max).ok(),
    }
}

fn decompress(codec: Codec, raw: Bytes, max: usize) -> Result<Bytes, Decompress> {
    let reader: Box<dyn Read + '_> = match codec {
        Codec::Identity | Codec::Unsupported => return Ok(raw),
        Codec::Gzip => Box::new(flate2::read::MultiGzDecoder::new(&raw[..])),
        Codec::Zlib => Box::new(flate2::read::ZlibDecoder::new(&raw[..])),
        Codec::Zstd => {
            Box::new(zstd::stream::read::Decoder::new(&raw[..]).map_err(Decompress::Corrupt)?)
        }
    };
    let mut out = Vec::with_capacity(raw.len().saturating_mul(4).min(max));
    reader
        .take(max as u64 + 1)
        .read_to_end(&mut out)
        .map_err(Decompress::Corrupt)?;
    if out.len() > max {
        return Err(Decompress::TooLarge);
    }
    Ok(out.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_origins() {
        assert!(wildcard_match(
            "https://*.example.com",
            "https://a.example.com"
        ));
        assert!(!wildcard_match(
            "https://*.example.com",
            "https://example.org"
        ));
        assert!(wildcard_match(
            "http://localhost:3000",
            "http://localhost:3000"
        ));
        assert!(!wildcard_match(
            "http://localhost:3000",
            "http://localhost:30001"
        ));
    }

    #[test]
    fn bombs_stop_at_the_limit() {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        enc.write_all(&vec![0u8; 1 << 20]).unwrap();
        let gz = Bytes::from(enc.finish().unwrap());
        assert!(matches!(
            decompress(Codec::Gzip, gz.clone(), 1000),
            Err(Decompress::TooLarge)
        ));
        assert_eq!(
            decompress(Codec::Gzip, gz, 2 << 20).ok().unwrap().len(),
            1 << 20
        );
        assert!(matches!(
            decompress(Codec::Gzip, Bytes::from_static(b"\x1f\x8bnot gzip"), 1000),
            Err(Decompress::Corrupt(_))
        ));
    }
}
