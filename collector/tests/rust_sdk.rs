//! The OpenTelemetry Rust SDK's OTLP exporters (gRPC, HTTP protobuf, HTTP JSON) send traces,
//! metrics and logs through kotelcol (OTLP receiver → batch → otlp exporter) to a capture sink;
//! everything arrives intact: names, ids, attributes, resource, values.

mod common;

use common::{Collector, Sink, config};
use kotel_pipeline::Payload;
use kotel_pipeline::proto::common::v1::any_value::Value;
use kotel_pipeline::proto::metrics::v1::metric::Data;
use opentelemetry::KeyValue;
use opentelemetry::logs::{AnyValue, LogRecord as _, Logger as _, LoggerProvider as _, Severity};
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::Resource;

#[derive(Clone, Copy, Debug)]
enum Transport {
    Grpc,
    HttpProto,
    HttpJson,
}

/// Emits 5 spans, 3 log records and one counter tagged `tag`; returns the trace ids.
fn emit(transport: Transport, grpc: String, http: String, tag: &'static str) -> Vec<[u8; 16]> {
    let http_protocol = match transport {
        Transport::HttpJson => Protocol::HttpJson,
        _ => Protocol::HttpBinary,
    };
    let spans = match transport {
        Transport::Grpc => opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(grpc.clone())
            .build(),
        _ => opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(http_protocol)
            .with_endpoint(format!("{http}/v1/traces"))
            .build(),
    }
    .unwrap();
    let logs = match transport {
        Transport::Grpc => opentelemetry_otlp::LogExporter::builder()
            .with_tonic()
            .with_endpoint(grpc.clone())
            .build(),
        _ => opentelemetry_otlp::LogExporter::builder()
            .with_http()
            .with_protocol(http_protocol)
            .with_endpoint(format!("{http}/v1/logs"))
            .build(),
    }
    .unwrap();
    let metrics = match transport {
        Transport::Grpc => opentelemetry_otlp::MetricExporter::builder()
            .with_tonic()
            .with_endpoint(grpc)
            .build(),
        _ => opentelemetry_otlp::MetricExporter::builder()
            .with_http()
            .with_protocol(http_protocol)
            .with_endpoint(format!("{http}/v1/metrics"))
            .build(),
    }
    .unwrap();
    let resource = Resource::builder()
        .with_service_name(format!("svc-{tag}"))
        .build();

    let tp = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_simple_exporter(spans)
        .with_resource(resource.clone())
        .build();
    let tracer = tp.tracer("kotel-test");
    let mut ids = Vec::new();
    for i in 0..5i64 {
        let mut span = tracer.start(format!("op-{tag}-{i}"));
        span.set_attribute(KeyValue::new("i", i));
        span.set_attribute(KeyValue::new("tag", tag));
        ids.push(span.span_context().trace_id().to_bytes());
        span.end();
    }
    tp.shutdown().unwrap();

    let lp = opentelemetry_sdk::logs::SdkLoggerProvider::builder()
        .with_simple_exporter(logs)
        .with_resource(resource.clone())
        .build();
    let logger = lp.logger("kotel-test");
    for i in 0..3 {
        let mut r = logger.create_log_record();
        r.set_body(AnyValue::from(format!("log-{tag}-{i}")));
        r.set_severity_number(Severity::Warn);
        r.add_attribute("tag", tag);
        logger.emit(r);
    }
    lp.shutdown().unwrap();

    let mp = opentelemetry_sdk::metrics::SdkMeterProvider::builder()
        .with_periodic_exporter(metrics)
        .with_resource(resource)
        .build();
    let counter = mp
        .meter("kotel-test")
        .u64_counter(format!("requests_{tag}"))
        .build();
    counter.add(7, &[KeyValue::new("tag", tag)]);
    mp.shutdown().unwrap();
    ids
}

fn service_name(attrs: &[kotel_pipeline::proto::common::v1::KeyValue]) -> Option<String> {
    attrs
        .iter()
        .find(|kv| kv.key == "service.name")
        .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
            Value::StringValue(s) => Some(s.clone()),
            _ => None,
        })
}

async fn check(sink: &Sink, tag: &str, trace_ids: &[[u8; 16]]) {
    let svc = format!("svc-{tag}");
    let spans_of = |ps: &[Payload]| -> Vec<kotel_pipeline::proto::trace::v1::Span> {
        ps.iter()
            .filter_map(|p| match p {
                Payload::Traces(r) => Some(r),
                _ => None,
            })
            .flat_map(|r| &r.resource_spans)
            .filter(|rs| {
                service_name(&rs.resource.as_ref().unwrap().attributes).as_deref()
                    == Some(svc.as_str())
            })
            .flat_map(|rs| &rs.scope_spans)
            .flat_map(|ss| ss.spans.clone())
            .collect()
    };
    sink.wait_for(&format!("5 spans of {tag}"), |ps| spans_of(ps).len() >= 5)
        .await;
    let spans = spans_of(&sink.received.lock().await);
    assert_eq!(spans.len(), 5, "no duplicates");
    for (i, id) in trace_ids.iter().enumerate() {
        let span = spans
            .iter()
            .find(|s| s.name == format!("op-{tag}-{i}"))
            .unwrap_or_else(|| panic!("span op-{tag}-{i}"));
        assert_eq!(span.trace_id, id.to_vec());
        assert_eq!(span.span_id.len(), 8);
        assert!(span.end_time_unix_nano >= span.start_time_unix_nano);
        let int_attr = span.attributes.iter().find(|kv| kv.key == "i").unwrap();
        assert_eq!(
            int_attr.value.as_ref().unwrap().value,
            Some(Value::IntValue(i as i64))
        );
    }

    let bodies_of = |ps: &[Payload]| -> Vec<String> {
        ps.iter()
            .filter_map(|p| match p {
                Payload::Logs(r) => Some(r),
                _ => None,
            })
            .flat_map(|r| &r.resource_logs)
            .flat_map(|rl| &rl.scope_logs)
            .flat_map(|sl| &sl.log_records)
            .filter(|l| l.severity_number == 13)
            .filter_map(|l| match l.body.as_ref()?.value.as_ref()? {
                Value::StringValue(s) if s.starts_with(&format!("log-{tag}-")) => Some(s.clone()),
                _ => None,
            })
            .collect()
    };
    sink.wait_for(&format!("3 logs of {tag}"), |ps| bodies_of(ps).len() >= 3)
        .await;
    let mut bodies = bodies_of(&sink.received.lock().await);
    bodies.sort();
    assert_eq!(
        bodies,
        (0..3).map(|i| format!("log-{tag}-{i}")).collect::<Vec<_>>()
    );

    let metric = format!("requests_{tag}");
    let sum_of = |ps: &[Payload]| -> Option<i64> {
        ps.iter()
            .filter_map(|p| match p {
                Payload::Metrics(r) => Some(r),
                _ => None,
            })
            .flat_map(|r| &r.resource_metrics)
            .flat_map(|rm| &rm.scope_metrics)
            .flat_map(|sm| &sm.metrics)
            .filter(|m| m.name == metric)
            .find_map(|m| match &m.data {
                Some(Data::Sum(s)) => s.data_points.first().and_then(|p| match p.value {
                    Some(kotel_pipeline::proto::metrics::v1::number_data_point::Value::AsInt(
                        v,
                    )) => Some(v),
                    _ => None,
                }),
                _ => None,
            })
    };
    sink.wait_for(&format!("counter {metric}"), |ps| sum_of(ps).is_some())
        .await;
    assert_eq!(sum_of(&sink.received.lock().await), Some(7));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_sdk_over_grpc_http_proto_and_http_json() {
    let (sink, sink_addr, _stop_sink) = Sink::start().await;
    let collector = Collector::start(&config(sink_addr, "batch", "")).await;
    let grpc = format!("http://{}", collector.grpc.unwrap());
    let http = format!("http://{}", collector.http.unwrap());

    for (transport, tag) in [
        (Transport::Grpc, "grpc"),
        (Transport::HttpProto, "httpproto"),
        (Transport::HttpJson, "httpjson"),
    ] {
        let (g, h) = (grpc.clone(), http.clone());
        let ids = tokio::task::spawn_blocking(move || emit(transport, g, h, tag))
            .await
            .unwrap();
        check(&sink, tag, &ids).await;
    }

    let accepted = collector
        .metric(
            "otelcol_receiver_accepted_spans",
            &[("receiver", "otlp"), ("transport", "http")],
        )
        .await;
    assert_eq!(accepted, 10.0);
    let sent = collector
        .metric("otelcol_exporter_sent_spans", &[("exporter", "otlp")])
        .await;
    assert_eq!(sent, 15.0);
    collector.stop().await;
}
