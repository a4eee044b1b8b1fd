//! The OTLP/gRPC body codec: a payload encoded once as protobuf, sent as raw bytes (retries and
//! load generators resend the same bytes), and the response fields kotelcol reads.

use bytes::{BufMut, Bytes};
use kotel_pipeline::{Payload, Signal};
use prost::Message;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};

/// The gRPC method path of a payload's Export call.
pub fn path(payload: &Payload) -> &'static str {
    signal_path(payload.signal())
}

/// The gRPC method path of a signal's Export call.
pub fn signal_path(signal: Signal) -> &'static str {
    match signal {
        Signal::Traces => "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
        Signal::Metrics => "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
        Signal::Logs => "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
    }
}

/// The protobuf encoding of a payload.
pub fn encode(payload: &Payload) -> Bytes {
    let mut buf = Vec::with_capacity(payload.encoded_len());
    match payload {
        Payload::Traces(r) => r.encode_raw(&mut buf),
        Payload::Metrics(r) => r.encode_raw(&mut buf),
        Payload::Logs(r) => r.encode_raw(&mut buf),
    }
    buf.into()
}

/// The part of every Export*ServiceResponse kotelcol reads: field 1, the partial success.
#[derive(Clone, PartialEq, prost::Message)]
pub struct ExportResponse {
    #[prost(message, optional, tag = "1")]
    pub partial_success: Option<PartialSuccess>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct PartialSuccess {
    /// rejected_spans / rejected_data_points / rejected_log_records.
    #[prost(int64, tag = "1")]
    pub rejected: i64,
    #[prost(string, tag = "2")]
    pub error_message: String,
}

impl PartialSuccess {
    /// Whether the backend said it dropped part of the request (upstream logs it).
    pub fn is_partial(&self) -> bool {
        self.rejected > 0 || !self.error_message.is_empty()
    }

    /// The partial success of an OTLP/HTTP response body, protobuf or JSON (where the count is
    /// `rejectedSpans`, `rejectedDataPoints` or `rejectedLogRecords`, a number or a string);
    /// `None` when the body says nothing of it or cannot be read.
    pub fn from_http_body(body: &[u8], json: bool) -> Option<Self> {
        if !json {
            return ExportResponse::decode(body).ok()?.partial_success;
        }
        let v: serde_json::Value = serde_json::from_slice(body).ok()?;
        let p = v
            .get("partialSuccess")
            .or_else(|| v.get("partial_success"))?;
        let rejected = [
            "rejectedSpans",
            "rejectedDataPoints",
            "rejectedLogRecords",
            "rejected_spans",
            "rejected_data_points",
            "rejected_log_records",
        ]
        .iter()
        .find_map(|k| p.get(*k))
        .and_then(|n| n.as_i64().or_else(|| n.as_str()?.parse().ok()))
        .unwrap_or(0);
        let error_message = p
            .get("errorMessage")
            .or_else(|| p.get("error_message"))
            .and_then(|m| m.as_str())
            .unwrap_or_default()
            .to_string();
        Some(Self {
            rejected,
            error_message,
        })
    }
}

/// Sends already-encoded request bytes; decodes the common response shape. Public for load
/// generators that send the same encoded request many times.
#[derive(Clone, Copy, Default)]
pub struct RawCodec;

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = ExportResponse;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> Self::Encoder {
        *self
    }

    fn decoder(&mut self) -> Self::Decoder {
        *self
    }
}

impl Encoder for RawCodec {
    type Item = Bytes;
    type Error = tonic::Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Self::Error> {
        dst.put(item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = ExportResponse;
    type Error = tonic::Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Self::Item>, Self::Error> {
        ExportResponse::decode(src)
            .map(Some)
            .map_err(|e| tonic::Status::internal(format!("bad export response: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_partial_success_from_protobuf_and_json() {
        let proto = ExportResponse {
            partial_success: Some(PartialSuccess {
                rejected: 3,
                error_message: "quota".into(),
            }),
        }
        .encode_to_vec();
        let p = PartialSuccess::from_http_body(&proto, false).unwrap();
        assert_eq!((p.rejected, p.error_message.as_str()), (3, "quota"));
        let json = br#"{"partialSuccess":{"rejectedLogRecords":"2","errorMessage":"too old"}}"#;
        let p = PartialSuccess::from_http_body(json, true).unwrap();
        assert!(p.is_partial());
        assert_eq!((p.rejected, p.error_message.as_str()), (2, "too old"));
        // A full success: an empty body, `{}`, or a partial success with nothing in it.
        assert_eq!(PartialSuccess::from_http_body(b"", false), None);
        assert_eq!(PartialSuccess::from_http_body(b"{}", true), None);
        let empty = PartialSuccess::from_http_body(br#"{"partialSuccess":{}}"#, true).unwrap();
        assert!(!empty.is_partial());
    }
}
