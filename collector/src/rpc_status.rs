//! `google.rpc.Status` and `google.rpc.RetryInfo`, the error bodies OTLP servers send, and the
//! mapping from a pipeline's [`ConsumeError`] to gRPC codes and HTTP statuses.

use std::time::Duration;

use kotel_pipeline::ConsumeError;

const RETRY_INFO_TYPE: &str = "type.googleapis.com/google.rpc.RetryInfo";

#[derive(Clone, PartialEq, prost::Message)]
pub struct Status {
    #[prost(int32, tag = "1")]
    pub code: i32,
    #[prost(string, tag = "2")]
    pub message: String,
    #[prost(message, repeated, tag = "3")]
    pub details: Vec<Any>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Any {
    #[prost(string, tag = "1")]
    pub type_url: String,
    #[prost(bytes = "vec", tag = "2")]
    pub value: Vec<u8>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct RetryInfo {
    #[prost(message, optional, tag = "1")]
    pub retry_delay: Option<ProtoDuration>,
}

#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct ProtoDuration {
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

impl Status {
    pub fn new(code: tonic::Code, message: impl Into<String>) -> Self {
        Self {
            code: code as i32,
            message: message.into(),
            details: Vec::new(),
        }
    }

    /// Adds a `RetryInfo` detail.
    pub fn with_retry_after(mut self, delay: Duration) -> Self {
        let info = RetryInfo {
            retry_delay: Some(ProtoDuration {
                seconds: delay.as_secs() as i64,
                nanos: delay.subsec_nanos() as i32,
            }),
        };
        self.details.push(Any {
            type_url: RETRY_INFO_TYPE.into(),
            value: prost::Message::encode_to_vec(&info),
        });
        self
    }

    /// The `RetryInfo` delay, if the status carries one.
    pub fn retry_after(&self) -> Option<Duration> {
        self.details
            .iter()
            .filter(|d| d.type_url == RETRY_INFO_TYPE)
            .find_map(|d| <RetryInfo as prost::Message>::decode(d.value.as_slice()).ok())
            .and_then(|i| i.retry_delay)
            .map(|d| Duration::new(d.seconds.max(0) as u64, d.nanos.max(0) as u32))
    }

    /// OTLP/JSON form (details are omitted: JSON clients do not read them).
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::json!({ "code": self.code, "message": self.message })
            .to_string()
            .into_bytes()
    }

    /// A tonic status carrying this one in `grpc-status-details-bin`.
    pub fn to_tonic(&self) -> tonic::Status {
        tonic::Status::with_details(
            tonic::Code::from_i32(self.code),
            self.message.clone(),
            prost::Message::encode_to_vec(self).into(),
        )
    }

    /// Reads the detailed status out of a tonic status.
    pub fn from_tonic(status: &tonic::Status) -> Self {
        <Status as prost::Message>::decode(status.details())
            .ok()
            .filter(|s| s.code == status.code() as i32)
            .unwrap_or_else(|| Self::new(status.code(), status.message()))
    }
}

/// How a pipeline error is answered: gRPC status and, for HTTP, the status code.
pub fn from_consume_error(err: &ConsumeError) -> (Status, http::StatusCode) {
    match err {
        ConsumeError::Refused {
            reason,
            retry_after,
        } => {
            let mut s = Status::new(tonic::Code::Unavailable, reason.clone());
            if let Some(d) = retry_after {
                s = s.with_retry_after(*d);
            }
            (s, http::StatusCode::SERVICE_UNAVAILABLE)
        }
        ConsumeError::ShuttingDown => (
            Status::new(tonic::Code::Unavailable, "collector is shutting down")
                .with_retry_after(Duration::from_secs(1)),
            http::StatusCode::SERVICE_UNAVAILABLE,
        ),
        ConsumeError::Permanent(m) => (
            Status::new(tonic::Code::InvalidArgument, m.clone()),
            http::StatusCode::BAD_REQUEST,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_info_round_trips_through_tonic() {
        let s = Status::new(tonic::Code::Unavailable, "full")
            .with_retry_after(Duration::from_millis(1500));
        let back = Status::from_tonic(&s.to_tonic());
        assert_eq!(back.retry_after(), Some(Duration::from_millis(1500)));
        assert_eq!(back.message, "full");
    }
}
