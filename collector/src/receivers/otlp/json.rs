//! OTLP/JSON decoding.
//!
//! opentelemetry-proto's serde derive already follows most OTLP/JSON rules: lowerCamelCase keys,
//! hex trace and span ids (either case), 64-bit integers as strings or numbers, enums as
//! integers, unknown keys ignored. What it lacks is filled here, as protobuf's JSON mapping
//! allows and upstream accepts: `null` stands for an absent field (the derive rejects it), enum
//! values may be given by name (`"SPAN_KIND_SERVER"`), field names as in the .proto
//! (`resource_spans`, which the derive would skip as unknown: data lost with 200), and doubles
//! as strings (`"2.5"`; the derive dropped the value). `"NaN"` and `"Infinity"` are refused by
//! name rather than dropped: a JSON value cannot carry them to the derive.

use kotel_pipeline::{Payload, Signal};
use serde_json::Value;

/// Decodes an OTLP/JSON request body of `signal`.
pub fn decode(signal: Signal, body: &[u8]) -> Result<Payload, String> {
    let mut value: Value =
        serde_json::from_slice(body).map_err(|e| format!("invalid JSON: {e}"))?;
    if !value.is_object() {
        return Err("the request must be a JSON object".into());
    }
    normalize(&mut value, None)?;
    let r = match signal {
        Signal::Traces => serde_json::from_value(value).map(Payload::Traces),
        Signal::Metrics => serde_json::from_value(value).map(Payload::Metrics),
        Signal::Logs => serde_json::from_value(value).map(Payload::Logs),
    };
    r.map_err(|e| format!("invalid OTLP/JSON {} request: {e}", signal.as_str()))
}

/// Removes `null` members, names fields in lowerCamelCase, turns enum names into their numbers
/// and doubles written as strings into numbers, recursively. (Every object key in OTLP/JSON is
/// a field name: attribute keys are values.)
fn normalize(v: &mut Value, key: Option<&str>) -> Result<(), String> {
    match v {
        Value::Object(map) if !map.keys().any(|k| k.contains('_')) => {
            // The usual case: lowerCamel keys, normalized in place.
            map.retain(|_, v| !v.is_null());
            for (k, v) in map.iter_mut() {
                normalize(v, Some(k))?;
            }
        }
        Value::Object(map) => {
            let fields = std::mem::take(map);
            for (k, mut v) in fields {
                if v.is_null() {
                    continue;
                }
                let k = if k.contains('_') { camel(&k) } else { k };
                normalize(&mut v, Some(&k))?;
                // The lowerCamel spelling wins when both are given.
                if !map.contains_key(&k) {
                    map.insert(k, v);
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                normalize(item, key)?;
            }
        }
        Value::String(s) => {
            if let Some(k) = key {
                if let Some(n) = enum_number(k, s) {
                    *v = Value::from(n);
                } else if DOUBLE_FIELDS.contains(&k) {
                    *v = double(k, s)?;
                }
            }
        }
        _ => {}
    }
    Ok(())
}

/// OTLP fields of type double (`explicitBounds` holds a list of them).
const DOUBLE_FIELDS: &[&str] = &[
    "asDouble",
    "doubleValue",
    "sum",
    "min",
    "max",
    "value",
    "quantile",
    "zeroThreshold",
    "explicitBounds",
];

fn double(key: &str, s: &str) -> Result<Value, String> {
    match s.trim() {
        "NaN" | "Infinity" | "-Infinity" => Err(format!(
            "{key}: {s:?} is not supported by kotel in OTLP/JSON (send OTLP/protobuf)"
        )),
        t => t
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .ok_or_else(|| format!("{key}: {s:?} is not a number")),
    }
}

/// `resource_spans` → `resourceSpans`.
fn camel(snake: &str) -> String {
    let mut out = String::with_capacity(snake.len());
    let mut upper = false;
    for c in snake.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

fn enum_number(key: &str, name: &str) -> Option<i64> {
    const SPAN_KIND: &[&str] = &[
        "SPAN_KIND_UNSPECIFIED",
        "SPAN_KIND_INTERNAL",
        "SPAN_KIND_SERVER",
        "SPAN_KIND_CLIENT",
        "SPAN_KIND_PRODUCER",
        "SPAN_KIND_CONSUMER",
    ];
    const STATUS: &[&str] = &["STATUS_CODE_UNSET", "STATUS_CODE_OK", "STATUS_CODE_ERROR"];
    const TEMPORALITY: &[&str] = &[
        "AGGREGATION_TEMPORALITY_UNSPECIFIED",
        "AGGREGATION_TEMPORALITY_DELTA",
        "AGGREGATION_TEMPORALITY_CUMULATIVE",
    ];
    let pos = |names: &[&str]| names.iter().position(|n| *n == name).map(|p| p as i64);
    match key {
        "kind" => pos(SPAN_KIND),
        "code" => pos(STATUS),
        "aggregationTemporality" => pos(TEMPORALITY),
        "severityNumber" => name
            .strip_prefix("SEVERITY_NUMBER_")
            .and_then(severity_number),
        _ => None,
    }
}

fn severity_number(s: &str) -> Option<i64> {
    if s == "UNSPECIFIED" {
        return Some(0);
    }
    let (level, n) = match s.find(|c: char| c.is_ascii_digit()) {
        Some(i) => (&s[..i], s[i..].parse::<i64>().ok()?),
        None => (s, 1),
    };
    let base = match level {
        "TRACE" => 0,
        "DEBUG" => 4,
        "INFO" => 8,
        "WARN" => 12,
        "ERROR" => 16,
        "FATAL" => 20,
        _ => return None,
    };
    (1..=4).contains(&n).then_some(base + n)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRACES: &str = r#"{
      "resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "svc"}}], "unknownField": 1},
        "scopeSpans": [{
          "scope": {"name": "lib", "version": null},
          "spans": [{
            "traceId": "5B8EFFF798038103D269B633813FC60C",
            "spanId": "eee19b7ec3c1b174",
            "parentSpanId": "",
            "name": "op",
            "kind": "SPAN_KIND_SERVER",
            "startTimeUnixNano": "1544712660000000000",
            "endTimeUnixNano": 1544712661000000000,
            "attributes": [
              {"key": "n", "value": {"intValue": "42"}},
              {"key": "m", "value": {"intValue": 7}},
              {"key": "d", "value": {"doubleValue": 1.5}}
            ],
            "status": {"code": 2, "message": "boom"},
            "somethingNew": {"x": [1, 2]}
          }]
        }]
      }]
    }"#;

    #[test]
    fn otlp_json_rules() {
        let Payload::Traces(r) = decode(Signal::Traces, TRACES.as_bytes()).unwrap() else {
            panic!("not traces")
        };
        let span = &r.resource_spans[0].scope_spans[0].spans[0];
        assert_eq!(span.trace_id[0], 0x5b);
        assert_eq!(span.trace_id.len(), 16);
        assert_eq!(span.span_id.len(), 8);
        assert_eq!(span.kind, 2);
        assert_eq!(span.start_time_unix_nano, 1544712660000000000);
        assert_eq!(span.end_time_unix_nano, 1544712661000000000);
        assert_eq!(span.status.as_ref().unwrap().code, 2);
        assert_eq!(span.attributes.len(), 3);
    }

    #[test]
    fn metrics_and_logs() {
        let metrics = r#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[
          {"name":"c","sum":{"aggregationTemporality":2,"isMonotonic":true,
            "dataPoints":[{"asInt":"5","timeUnixNano":"1"}]}},
          {"name":"g","gauge":{"dataPoints":[{"asDouble":0.5}]}},
          {"name":"h","histogram":{"aggregationTemporality":"AGGREGATION_TEMPORALITY_DELTA",
            "dataPoints":[{"count":"3","sum":1.0,"bucketCounts":["1",2],"explicitBounds":[1.0]}]}}
        ]}]}]}"#;
        let p = decode(Signal::Metrics, metrics.as_bytes()).unwrap();
        assert_eq!(p.item_count(), 3);
        let logs = r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[
          {"timeUnixNano":"1","severityNumber":"SEVERITY_NUMBER_WARN","body":{"stringValue":"hi"},
           "traceId":"","spanId":""}]}]}]}"#;
        let Payload::Logs(l) = decode(Signal::Logs, logs.as_bytes()).unwrap() else {
            panic!("not logs")
        };
        assert_eq!(
            l.resource_logs[0].scope_logs[0].log_records[0].severity_number,
            13
        );
    }

    #[test]
    fn proto_field_names_and_doubles_as_strings() {
        let snake = r#"{"resource_spans":[{"scope_spans":[{"spans":[{"name":"x",
          "trace_id":"5b8efff798038103d269b633813fc60c","span_id":"eee19b7ec3c1b174",
          "start_time_unix_nano":"7","kind":"SPAN_KIND_CLIENT"}]}]}]}"#;
        let Payload::Traces(r) = decode(Signal::Traces, snake.as_bytes()).unwrap() else {
            panic!("not traces")
        };
        let span = &r.resource_spans[0].scope_spans[0].spans[0];
        assert_eq!(
            (span.name.as_str(), span.start_time_unix_nano, span.kind),
            ("x", 7, 3)
        );
        assert_eq!(span.trace_id.len(), 16);

        let m = r#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[
          {"name":"g","gauge":{"dataPoints":[{"asDouble":"2.5"}]}},
          {"name":"h","histogram":{"dataPoints":[{"count":"1","sum":"1.5","explicitBounds":["1","2.5"]}]}}
        ]}]}]}"#;
        let Payload::Metrics(r) = decode(Signal::Metrics, m.as_bytes()).unwrap() else {
            panic!("not metrics")
        };
        use kotel_pipeline::proto::metrics::v1::{metric::Data, number_data_point::Value as V};
        let metrics = &r.resource_metrics[0].scope_metrics[0].metrics;
        let Some(Data::Gauge(g)) = &metrics[0].data else {
            panic!("gauge")
        };
        assert_eq!(g.data_points[0].value, Some(V::AsDouble(2.5)));
        let Some(Data::Histogram(h)) = &metrics[1].data else {
            panic!("histogram")
        };
        assert_eq!(
            (
                h.data_points[0].sum,
                h.data_points[0].explicit_bounds.clone()
            ),
            (Some(1.5), vec![1.0, 2.5])
        );

        // Never accepted and dropped: refused by name.
        let nan = r#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[
          {"name":"g","gauge":{"dataPoints":[{"asDouble":"NaN"}]}}]}]}]}"#;
        let e = decode(Signal::Metrics, nan.as_bytes()).unwrap_err();
        assert!(e.contains("asDouble") && e.contains("NaN"), "{e}");
    }

    #[test]
    fn rejects_garbage() {
        assert!(decode(Signal::Logs, b"{not json").is_err());
        assert!(decode(Signal::Logs, b"[1]").is_err());
        assert!(
            decode(
                Signal::Traces,
                br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"zz"}]}]}]}"#
            )
            .is_err()
        );
    }
}
