//! The receiver against a test kubelet over HTTPS: service-account bearer tokens (and their
//! rotation), client certificates, server verification, error statuses, malformed bodies,
//! timeouts, and the scrape loop carrying on after failures.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::{Reply, TestKubelet, fixture, lines_with, render};
use kotel_config::ComponentId;
use kotel_config::receivers::kubeletstats::KubeletStatsConfig;
use kotel_kubeletstats::{Environment, KubeletStatsReceiver, ScrapeError};
use kotel_pipeline::{CaptureSink, Payload, Shutdown};
use kotel_testkit::{LIVENESS, wait_until};
use prometheus_client::registry::Registry;

fn config(json: serde_json::Value) -> KubeletStatsConfig {
    serde_json::from_value(json).expect("config")
}

fn env(token_file: &Path, ca_file: &Path) -> Environment {
    Environment {
        node_name: Some("localhost".into()),
        hostname: None,
        token_file: token_file.to_path_buf(),
        service_account_ca_file: ca_file.to_path_buf(),
    }
}

struct Harness {
    kubelet: TestKubelet,
    sink: Arc<CaptureSink>,
    registry: Registry,
    token_file: std::path::PathBuf,
}

impl Harness {
    async fn start() -> Self {
        let kubelet = TestKubelet::start().await;
        kubelet.set_summary(Reply::ok(fixture("summary-1.json")));
        kubelet.set_pods(Reply::ok(fixture("pods.json")));
        let token_file = kubelet.pki.dir.path().join("token");
        std::fs::write(&token_file, "token-1\n").unwrap();
        Self {
            kubelet,
            sink: CaptureSink::new(),
            registry: Registry::default(),
            token_file,
        }
    }

    fn build(&mut self, c: serde_json::Value) -> KubeletStatsReceiver {
        self.try_build(c).expect("receiver builds")
    }

    fn try_build(
        &mut self,
        c: serde_json::Value,
    ) -> Result<KubeletStatsReceiver, kotel_kubeletstats::Error> {
        let env = env(&self.token_file, &self.kubelet.pki.ca_file);
        KubeletStatsReceiver::build_with_env(
            &ComponentId::new("kubeletstats", None),
            &config(c),
            self.sink.clone(),
            &mut self.registry,
            &env,
        )
    }

    async fn payloads(&self) -> Vec<String> {
        self.sink
            .take()
            .await
            .into_iter()
            .map(|e| match e.payload {
                Payload::Metrics(m) => render(&m),
                other => panic!("not metrics: {other:?}"),
            })
            .collect()
    }

    fn metrics_text(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry).unwrap();
        out
    }
}

#[tokio::test]
async fn service_account_token_and_ca_from_the_service_account() {
    let mut h = Harness::start().await;
    let endpoint = h.kubelet.endpoint();
    let mut r = h.build(serde_json::json!({
        "auth_type": "serviceAccount",
        "endpoint": endpoint,
        "extra_metadata_labels": ["container.id"],
    }));
    let outcome = r.scrape_once().await.expect("scrape");
    assert_eq!(outcome.resources, 5);

    let seen = h.kubelet.seen();
    let paths: Vec<&str> = seen.iter().map(|s| s.path.as_str()).collect();
    assert_eq!(paths, ["/stats/summary", "/pods"]);
    assert!(
        seen.iter()
            .all(|s| s.bearer.as_deref() == Some("token-1") && !s.client_cert)
    );
    let port = h.kubelet.addr.port();
    assert_eq!(seen[0].host.as_deref(), Some(&*format!("127.0.0.1:{port}")));

    let out = h.payloads().await;
    assert_eq!(out.len(), 1);
    assert_eq!(
        lines_with(&out[0], "k8s.container.name=app"),
        [
            "resource k8s.pod.uid=uid-web,k8s.pod.name=web-0,k8s.namespace.name=shop,k8s.container.name=app,container.id=aaa111"
        ]
    );
    assert_eq!(
        lines_with(&out[0], "k8s.node.memory.working_set"),
        ["  k8s.node.memory.working_set [By] gauge = int 3000 start=0 t=36000"]
    );

    // Second scrape: later stats, so cpu.usage appears.
    h.kubelet.set_summary(Reply::ok(fixture("summary-2.json")));
    r.scrape_once().await.expect("second scrape");
    assert_eq!(
        h.kubelet.state.lock().unwrap().connections,
        1,
        "four requests over one kept-alive connection"
    );
    let out = h.payloads().await;
    assert_eq!(
        lines_with(&out[0], "cpu.usage"),
        [
            "  k8s.node.cpu.usage [{cpu}] gauge = double 0.5 start=0 t=36010",
            "  k8s.pod.cpu.usage [{cpu}] gauge = double 0.5 start=32400 t=36010",
            "  container.cpu.usage [{cpu}] gauge = double 0.2 start=32405 t=36010",
        ]
    );
}

#[tokio::test]
async fn a_rotated_token_is_used_on_the_next_request() {
    let mut h = Harness::start().await;
    let endpoint = h.kubelet.endpoint();
    let mut r = h.build(serde_json::json!({"auth_type": "serviceAccount", "endpoint": endpoint}));
    r.scrape_once().await.expect("first scrape");
    h.kubelet.state.lock().unwrap().tokens = vec!["token-2-rotated".into()];
    std::fs::write(&h.token_file, "token-2-rotated").unwrap();
    r.scrape_once().await.expect("scrape after rotation");
    let bearers: Vec<Option<String>> = h.kubelet.seen().into_iter().map(|s| s.bearer).collect();
    assert_eq!(
        bearers,
        [Some("token-1".into()), Some("token-2-rotated".into())]
    );
}

#[tokio::test]
async fn client_certificate_auth() {
    let mut h = Harness::start().await;
    let pki = &h.kubelet.pki;
    let c = serde_json::json!({
        "auth_type": "tls",
        "endpoint": format!("localhost:{}", h.kubelet.addr.port()),
        "ca_file": pki.ca_file,
        "cert_file": pki.client_cert,
        "key_file": pki.client_key,
    });
    let mut r = h.build(c);
    r.scrape_once()
        .await
        .expect("scrape with a client certificate");
    let seen = h.kubelet.seen();
    assert_eq!(seen.len(), 1, "no /pods without extra metadata");
    assert!(seen[0].client_cert);
    assert_eq!(seen[0].bearer, None);
    assert_eq!(h.payloads().await.len(), 1);
}

#[tokio::test]
async fn an_untrusted_kubelet_certificate_fails_unless_verification_is_skipped() {
    let mut h = Harness::start().await;
    let endpoint = h.kubelet.endpoint();
    // The service account CA here is a file with some other CA: the kubelet's is not trusted.
    let other = common::pki();
    let env = env(&h.token_file, &other.ca_file);
    let mut r = KubeletStatsReceiver::build_with_env(
        &ComponentId::new("kubeletstats", None),
        &config(serde_json::json!({"auth_type": "serviceAccount", "endpoint": endpoint})),
        h.sink.clone(),
        &mut h.registry,
        &env,
    )
    .unwrap();
    let err = r.scrape_once().await.unwrap_err();
    assert_eq!(err.reason(), "tls", "{err}");
    assert!(err.to_string().contains("/stats/summary"), "{err}");

    let mut r = h.build(serde_json::json!({
        "auth_type": "serviceAccount",
        "endpoint": endpoint,
        "insecure_skip_verify": true,
        "ca_file": other.ca_file,
    }));
    r.scrape_once()
        .await
        .expect("insecure_skip_verify accepts it");
}

#[tokio::test]
async fn error_statuses_and_bad_bodies_are_errors_with_url_and_status() {
    let mut h = Harness::start().await;
    let endpoint = h.kubelet.endpoint();
    let mut r = h.build(serde_json::json!({
        "auth_type": "serviceAccount",
        "endpoint": endpoint,
        "extra_metadata_labels": ["k8s.volume.type"],
    }));

    h.kubelet
        .set_summary(Reply::status(500, "internal error: cadvisor not ready"));
    let err = r.scrape_once().await.unwrap_err();
    let ScrapeError::Fetch(f) = &err else {
        panic!("{err}")
    };
    assert_eq!(f.status(), Some(500));
    assert_eq!(err.reason(), "http_status");
    assert_eq!(
        err.to_string(),
        format!(
            "kubelet request GET {endpoint}/stats/summary failed - 500, response: \"internal error: cadvisor not ready\""
        )
    );

    // A wrong token: the kubelet says 401.
    std::fs::write(&h.token_file, "not-the-token").unwrap();
    h.kubelet.set_summary(Reply::ok(fixture("summary-1.json")));
    let err = r.scrape_once().await.unwrap_err();
    let ScrapeError::Fetch(f) = &err else {
        panic!("{err}")
    };
    assert_eq!(f.status(), Some(401));
    std::fs::write(&h.token_file, "token-1").unwrap();

    // /pods refused: the scrape fails (labels would otherwise flap).
    h.kubelet.set_pods(Reply::status(403, "Forbidden (user=system:serviceaccount:kotel:collector, verb=get, resource=nodes, subresource=pods)"));
    let err = r.scrape_once().await.unwrap_err();
    assert!(err.to_string().contains("/pods failed - 403"), "{err}");

    // A body that is not a summary.
    h.kubelet.set_pods(Reply::ok(fixture("pods.json")));
    h.kubelet.set_summary(Reply::ok("<html>proxy error</html>"));
    let err = r.scrape_once().await.unwrap_err();
    assert_eq!(err.reason(), "decode");
    assert!(err.to_string().contains("/stats/summary"), "{err}");

    // Nothing reached the pipeline; the next good scrape does.
    assert!(h.payloads().await.is_empty());
    h.kubelet.set_summary(Reply::ok(fixture("summary-1.json")));
    r.scrape_once().await.expect("recovers");
    assert_eq!(h.payloads().await.len(), 1);
}

#[tokio::test]
async fn a_kubelet_that_never_answers_times_out() {
    let mut h = Harness::start().await;
    let endpoint = h.kubelet.endpoint();
    let mut r = h.build(serde_json::json!({
        "auth_type": "serviceAccount",
        "endpoint": endpoint,
        "timeout": "200ms",
    }));
    h.kubelet.set_summary(Reply::hang());
    let err = r.scrape_once().await.unwrap_err();
    assert_eq!(err.reason(), "timeout", "{err}");
    h.kubelet.set_summary(Reply::ok(fixture("summary-1.json")));
    r.scrape_once()
        .await
        .expect("a new connection after the timeout");
}

#[tokio::test]
async fn the_loop_counts_failures_and_keeps_scraping() {
    let mut h = Harness::start().await;
    let endpoint = h.kubelet.endpoint();
    h.kubelet.set_summary(Reply::status(503, "overloaded"));
    let r = h.build(serde_json::json!({
        "auth_type": "serviceAccount",
        "endpoint": endpoint,
        "collection_interval": "20ms",
        // The timeout defaults to the interval; a loaded test machine needs longer.
        "timeout": "10s",
        "initial_delay": "0s",
    }));
    let health = kotel_pipeline::Health::default();
    let r = r.with_health(health.reporter("kubeletstats"));
    let shutdown = Shutdown::new();
    let task = tokio::spawn(r.run(shutdown.clone()));

    // Wait (no timing assertion: only a generous bound) for failures, then recovery.
    wait_until("two scrapes", LIVENESS, || h.kubelet.seen().len() >= 2).await;
    let failing = health.failing_for(Duration::ZERO, std::time::Instant::now());
    assert_eq!(failing.len(), 1, "{failing:?}");
    assert!(
        failing[0]
            .1
            .contains(&format!("{endpoint}/stats/summary failed - 503")),
        "the health names the URL and the status: {failing:?}"
    );
    h.kubelet.set_summary(Reply::ok(fixture("summary-1.json")));
    let sink = h.sink.clone();
    let mut got = 0;
    for _ in 0..1000 {
        got = sink.len().await;
        if got > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(got > 0, "a scrape after the failures delivered metrics");
    wait_until("the health to recover", LIVENESS, || {
        health
            .failing_for(Duration::ZERO, std::time::Instant::now())
            .is_empty()
    })
    .await;
    shutdown.cancel();
    task.await.unwrap().unwrap();

    let text = h.metrics_text();
    let errors = counter(
        &text,
        "otelcol_kubeletstats_scrape_errors_total{receiver=\"kubeletstats\",reason=\"http_status\"}",
    );
    let scrapes = counter(
        &text,
        "otelcol_kubeletstats_scrapes_total{receiver=\"kubeletstats\"}",
    );
    assert!(errors >= 2.0, "{text}");
    assert!(scrapes > errors, "{text}");
    assert!(
        counter(
            &text,
            "otelcol_kubeletstats_metric_points_total{receiver=\"kubeletstats\"}"
        ) > 0.0
    );
}

#[tokio::test]
async fn shutdown_during_the_initial_delay_returns() {
    let mut h = Harness::start().await;
    let endpoint = h.kubelet.endpoint();
    let r = h.build(serde_json::json!({
        "auth_type": "serviceAccount",
        "endpoint": endpoint,
        "initial_delay": "1h",
    }));
    let shutdown = Shutdown::new();
    shutdown.cancel();
    r.run(shutdown).await.unwrap();
    assert!(h.kubelet.seen().is_empty());
}

#[tokio::test]
async fn unusable_configs_fail_at_build() {
    let mut h = Harness::start().await;
    let err = h
        .try_build(serde_json::json!({"auth_type": "tls"}))
        .err()
        .expect("tls without a certificate");
    assert!(err.to_string().contains("cert_file"), "{err}");
    let err = h
        .try_build(serde_json::json!({"auth_type": "tls", "cert_file": "/nonexistent/c.crt", "key_file": "/nonexistent/c.key"}))
        .err()
        .expect("missing certificate files");
    assert!(err.to_string().contains("/nonexistent/c.crt"), "{err}");
}

fn counter(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0)
}
