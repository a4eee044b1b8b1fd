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
