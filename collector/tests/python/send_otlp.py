"""Sends traces, logs and metrics with the OpenTelemetry Python SDK's OTLP exporters.

Usage: send_otlp.py GRPC_HOST:PORT HTTP_BASE_URL
Each transport tags its data: service.name py-grpc / py-http, span names span-<tag>-<i>,
log bodies log-<tag>-<i>, counter requests_<tag> = 7.
"""

import logging
import sys

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpans
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GrpcLogs
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter as GrpcMetrics
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpans
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as HttpLogs
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter as HttpMetrics


def send(tag, spans, logs, metrics):
    resource = Resource.create({"service.name": f"py-{tag}"})

    tp = TracerProvider(resource=resource)
    tp.add_span_processor(SimpleSpanProcessor(spans))
    tracer = tp.get_tracer("kotel-python-test")
    for i in range(5):
        with tracer.start_as_current_span(f"span-{tag}-{i}") as span:
            span.set_attribute("i", i)
            span.set_attribute("tag", tag)
    tp.shutdown()

    lp = LoggerProvider(resource=resource)
    lp.add_log_record_processor(SimpleLogRecordProcessor(logs))
    logger = logging.getLogger(f"kotel-{tag}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.addHandler(LoggingHandler(level=logging.INFO, logger_provider=lp))
    for i in range(3):
        logger.warning("log-%s-%d", tag, i)
    lp.shutdown()

    mp = MeterProvider(
        resource=resource,
        metric_readers=[PeriodicExportingMetricReader(metrics, export_interval_millis=600000)],
    )
    mp.get_meter("kotel-python-test").create_counter(f"requests_{tag}").add(7, {"tag": tag})
    mp.shutdown()


def main():
    grpc, http = sys.argv[1], sys.argv[2]
    send("grpc", GrpcSpans(endpoint=grpc, insecure=True), GrpcLogs(endpoint=grpc, insecure=True),
         GrpcMetrics(endpoint=grpc, insecure=True))
    send("http", HttpSpans(endpoint=f"{http}/v1/traces"), HttpLogs(endpoint=f"{http}/v1/logs"),
         HttpMetrics(endpoint=f"{http}/v1/metrics"))


if __name__ == "__main__":
    main()
