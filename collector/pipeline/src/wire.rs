//! Counting the items of an encoded OTLP request without decoding it.
//!
//! A receiver that refuses a request before decoding it (the memory limiter is refusing, so
//! decoding would spend the memory it protects) still counts what it refused, as upstream
//! counts refused items. Walking the protobuf framing allocates nothing and touches only the
//! fields on the path to the items.

use crate::Signal;

/// Spans, data points or log records in an encoded `Export*ServiceRequest` of `signal` (what
/// [`Payload::item_count`](crate::Payload::item_count) gives after decoding); `None` when the
/// framing on the way to them is broken (decoding would fail too).
pub fn encoded_item_count(signal: Signal, buf: &[u8]) -> Option<usize> {
    // request.resource_* = 1, resource.scope_* = 2, scope.{spans,metrics,log_records} = 2
    const PATH: [u32; 3] = [1, 2, 2];
    match signal {
        Signal::Traces | Signal::Logs => count(buf, &PATH, &mut |_| Some(1)),
        Signal::Metrics => count(buf, &PATH, &mut metric_points),
    }
}

/// Items under the length-delimited fields `path` leads to, each counted by `leaf`.
fn count(buf: &[u8], path: &[u32], leaf: &mut dyn FnMut(&[u8]) -> Option<usize>) -> Option<usize> {
    let Some((field, rest)) = path.split_first() else {
        return leaf(buf);
    };
    let mut n = 0usize;
    each_field(buf, |f, value| {
        if f == *field {
            n = n.checked_add(count(value, rest, leaf)?)?;
        }
        Some(())
    })?;
    Some(n)
}

/// The data points of one encoded `Metric`: its data is a oneof (gauge 5, sum 7, histogram 9,
/// exponential_histogram 10, summary 11; data_points = 1 in each). As when decoding, a repeated
/// variant merges and another variant replaces it.
fn metric_points(buf: &[u8]) -> Option<usize> {
    let mut last: Option<(u32, usize)> = None;
    each_field(buf, |f, value| {
        if matches!(f, 5 | 7 | 9 | 10 | 11) {
            let points = count(value, &[1], &mut |_| Some(1))?;
            last = Some(match last {
                Some((prev, n)) if prev == f => (f, n + points),
                _ => (f, points),
            });
        }
        Some(())
    })?;
    Some(last.map_or(0, |(_, n)| n))
}

/// Calls `f` with the number and contents of every length-delimited field of one message, and
/// checks the framing of the others.
fn each_field<'a>(mut buf: &'a [u8], mut f: impl FnMut(u32, &'a [u8]) -> Option<()>) -> Option<()> {
    while !buf.is_empty() {
        let (field, wire_type) = key(&mut buf)?;
        if wire_type == 2 {
            let len = usize::try_from(prost::encoding::decode_varint(&mut buf).ok()?).ok()?;
            let value = buf.get(..len)?;
            buf = &buf[len..];
            f(field, value)?;
        } else {
            skip(&mut buf, field, wire_type, 0)?;
        }
    }
    Some(())
}

fn key(buf: &mut &[u8]) -> Option<(u32, u64)> {
    let key = prost::encoding::decode_varint(buf).ok()?;
    let field = u32::try_from(key >> 3).ok().filter(|f| *f > 0)?;
    Some((field, key & 7))
}

/// Groups nest no deeper than prost decodes them.
const MAX_DEPTH: u32 = 100;

/// Skips the value of a field that is not on the way to the items.
fn skip(buf: &mut &[u8], field: u32, wire_type: u64, depth: u32) -> Option<()> {
    match wire_type {
        0 => {
            prost::encoding::decode_varint(buf).ok()?;
        }
        1 => *buf = buf.get(8..)?,
        2 => {
            let len = usize::try_from(prost::encoding::decode_varint(buf).ok()?).ok()?;
            *buf = buf.get(len..)?;
        }
        3 if depth < MAX_DEPTH => loop {
            // A (deprecated) group: its fields up to the end-group key of the same number.
            let (inner, inner_type) = key(buf)?;
            if inner_type == 4 {
                return (inner == field).then_some(());
            }
            skip(buf, inner, inner_type, depth + 1)?;
        },
        5 => *buf = buf.get(4..)?,
        _ => return None,
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Payload;
    use crate::proto::collector::logs::v1::ExportLogsServiceRequest;
    use crate::proto::collector::metrics::v1::ExportMetricsServiceRequest;
    use crate::proto::collector::trace::v1::ExportTraceServiceRequest;
    use crate::proto::common::v1::{AnyValue, KeyValue, any_value};
    use crate::proto::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
    use crate::proto::metrics::v1::{
        Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics,
        ScopeMetrics, Sum, metric::Data,
    };
    use crate::proto::resource::v1::Resource;
    use crate::proto::trace::v1::{ResourceSpans, ScopeSpans, Span};
    use prost::Message;

    fn attr() -> Vec<KeyValue> {
        vec![KeyValue {
            key: "k8s.pod.name".into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue("p".into())),
            }),
            ..Default::default()
        }]
    }

    fn traces(shape: &[&[usize]]) -> ExportTraceServiceRequest {
        ExportTraceServiceRequest {
            resource_spans: shape
                .iter()
                .map(|scopes| ResourceSpans {
                    resource: Some(Resource {
                        attributes: attr(),
                        ..Default::default()
                    }),
                    scope_spans: scopes
                        .iter()
                        .map(|n| ScopeSpans {
                            spans: (0..*n)
                                .map(|i| Span {
                                    name: format!("s{i}"),
                                    attributes: attr(),
                                    start_time_unix_nano: 7,
                                    ..Default::default()
                                })
                                .collect(),
                            ..Default::default()
                        })
                        .collect(),
                    schema_url: "x".into(),
                })
                .collect(),
        }
    }

    #[test]
    fn counts_spans_and_log_records_as_decoding_does() {
        for shape in [&[][..], &[&[][..]], &[&[3, 0, 2][..], &[5]]] {
            let req = traces(shape);
            let want = Payload::Traces(req.clone()).item_count();
            assert_eq!(
                encoded_item_count(Signal::Traces, &req.encode_to_vec()),
                Some(want)
            );
        }
        let logs = ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                scope_logs: vec![
                    ScopeLogs {
                        log_records: vec![LogRecord::default(); 4],
                        ..Default::default()
                    };
                    3
                ],
                ..Default::default()
            }],
        };
        assert_eq!(
            encoded_item_count(Signal::Logs, &logs.encode_to_vec()),
            Some(12)
        );
    }

    #[test]
    fn counts_data_points_of_every_metric_kind() {
        let gauge = |n| {
            Data::Gauge(Gauge {
                data_points: vec![NumberDataPoint::default(); n],
            })
        };
        let metrics = |data: Vec<Data>| ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                scope_metrics: vec![ScopeMetrics {
                    metrics: data
                        .into_iter()
                        .map(|d| Metric {
                            name: "m".into(),
                            data: Some(d),
                            ..Default::default()
                        })
                        .chain([Metric::default()])
                        .collect(),
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        let req = metrics(vec![
            gauge(2),
            Data::Sum(Sum {
                data_points: vec![NumberDataPoint::default(); 3],
                aggregation_temporality: 2,
                is_monotonic: true,
            }),
            Data::Histogram(Histogram {
                data_points: vec![HistogramDataPoint::default(); 4],
                aggregation_temporality: 1,
            }),
        ]);
        assert_eq!(
            encoded_item_count(Signal::Metrics, &req.encode_to_vec()),
            Some(9)
        );

        // The oneof on the wire twice: the same variant merges, another replaces.
        let mut metric = Metric {
            data: Some(gauge(2)),
            ..Default::default()
        }
        .encode_to_vec();
        metric.extend(
            Metric {
                data: Some(gauge(3)),
                ..Default::default()
            }
            .encode_to_vec(),
        );
        let mut replaced = metric.clone();
        replaced.extend(
            Metric {
                data: Some(Data::Sum(Sum {
                    data_points: vec![NumberDataPoint::default(); 1],
                    ..Default::default()
                })),
                ..Default::default()
            }
            .encode_to_vec(),
        );
        for (m, want) in [(metric, 5), (replaced, 1)] {
            assert_eq!(metric_points(&m), Some(want));
            let decoded = Metric::decode(m.as_slice()).unwrap();
            let req = ExportMetricsServiceRequest {
                resource_metrics: vec![ResourceMetrics {
                    scope_metrics: vec![ScopeMetrics {
                        metrics: vec![decoded],
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
            };
            assert_eq!(Payload::Metrics(req).item_count(), want);
        }
    }

    #[test]
    fn broken_framing_is_none_and_decoding_fails_too() {
        let good = traces(&[&[3]]).encode_to_vec();
        for cut in [1, good.len() / 2, good.len() - 1] {
            let bad = &good[..cut];
            if encoded_item_count(Signal::Traces, bad).is_none() {
                assert!(ExportTraceServiceRequest::decode(bad).is_err());
            }
        }
        // A length past the end; an unterminated group; a stray end-group.
        assert_eq!(
            encoded_item_count(Signal::Traces, &[0x0a, 0x05, 0x00]),
            None
        );
        assert_eq!(encoded_item_count(Signal::Logs, &[0x1b]), None);
        assert_eq!(encoded_item_count(Signal::Logs, &[0x1c]), None);
        // An unknown group field is skipped, as decoding skips it.
        let mut grouped = vec![0x1b, 0x08, 0x01, 0x1c]; // field 3: { field 1 = 1 }
        grouped.extend(traces(&[&[2]]).encode_to_vec());
        assert_eq!(encoded_item_count(Signal::Traces, &grouped), Some(2));
        assert!(ExportTraceServiceRequest::decode(grouped.as_slice()).is_ok());
        assert_eq!(encoded_item_count(Signal::Metrics, &[]), Some(0));
    }
}
