//! Summary → OTLP without a network: every metric's name, unit, type, value, attributes and
//! timestamps, checked exactly against the fixtures (tests/fixtures/*.json).

mod common;

use common::{BASE, SECOND, fixture, lines_with, render};
use kotel_config::receivers::kubeletstats::KubeletStatsConfig;
use kotel_kubeletstats::convert::Converter;
use kotel_kubeletstats::pods::PodMetadata;
use kotel_kubeletstats::summary::Summary;

/// Configs are written as JSON, which is YAML too.
fn config(json: &str) -> KubeletStatsConfig {
    serde_json::from_str(json).expect("config")
}

fn summaries() -> (Summary, Summary) {
    (
        Summary::from_slice(fixture("summary-1.json").as_bytes()).unwrap(),
        Summary::from_slice(fixture("summary-2.json").as_bytes()).unwrap(),
    )
}

fn pods() -> PodMetadata {
    PodMetadata::from_slice(fixture("pods.json").as_bytes()).unwrap()
}

const T0: u64 = BASE + 36_000 * SECOND;
const T1: u64 = BASE + 36_010 * SECOND;

const FULL_CONFIG: &str = r#"{
    "metric_groups": ["node", "pod", "container", "volume"],
    "extra_metadata_labels": ["container.id", "k8s.volume.type"],
    "metrics": {
        "k8s.node.uptime": {"enabled": true},
        "k8s.container.cpu_limit_utilization": {"enabled": true},
        "k8s.container.memory_limit_utilization": {"enabled": true},
        "k8s.pod.cpu_limit_utilization": {"enabled": true},
        "k8s.pod.memory_limit_utilization": {"enabled": true},
        "k8s.pod.memory_request_utilization": {"enabled": true}
    }
}"#;

const FIRST_SCRAPE: &str = "\
resource k8s.node.name=node-1
  k8s.node.cpu.time [s] sum(monotonic) = double 3600 start=0 t=36000
  k8s.node.memory.available [By] gauge = int 6000 start=0 t=36000
  k8s.node.memory.usage [By] gauge = int 4000 start=0 t=36000
  k8s.node.memory.rss [By] gauge = int 2000 start=0 t=36000
  k8s.node.memory.working_set [By] gauge = int 3000 start=0 t=36000
  k8s.node.memory.page_faults [1] gauge = int 100 start=0 t=36000
  k8s.node.memory.major_page_faults [1] gauge = int 1 start=0 t=36000
  k8s.node.filesystem.available [By] gauge = int 70000 start=0 t=36000
  k8s.node.filesystem.capacity [By] gauge = int 100000 start=0 t=36000
  k8s.node.filesystem.usage [By] gauge = int 30000 start=0 t=36000
  k8s.node.network.io [By] sum(monotonic) {interface=eth0,direction=receive} = int 1000 start=0 t=36000
  k8s.node.network.io [By] sum(monotonic) {interface=eth0,direction=transmit} = int 2000 start=0 t=36000
  k8s.node.network.errors [1] sum(monotonic) {interface=eth0,direction=receive} = int 1 start=0 t=36000
  k8s.node.network.errors [1] sum(monotonic) {interface=eth0,direction=transmit} = int 2 start=0 t=36000
  k8s.node.uptime [s] sum(monotonic) = int 36000 start=0 t=36000
resource k8s.pod.uid=uid-web,k8s.pod.name=web-0,k8s.namespace.name=shop
  k8s.pod.cpu.time [s] sum(monotonic) = double 150 start=32400 t=36000
  k8s.pod.memory.usage [By] gauge = int 700 start=32400 t=36000
  k8s.pod.memory.rss [By] gauge = int 400 start=32400 t=36000
  k8s.pod.memory.working_set [By] gauge = int 600 start=32400 t=36000
  k8s.pod.memory.page_faults [1] gauge = int 12 start=32400 t=36000
  k8s.pod.memory.major_page_faults [1] gauge = int 0 start=32400 t=36000
  k8s.pod.filesystem.available [By] gauge = int 7000 start=32400 t=36000
  k8s.pod.filesystem.capacity [By] gauge = int 10000 start=32400 t=36000
  k8s.pod.filesystem.usage [By] gauge = int 3500 start=32400 t=36000
  k8s.pod.network.io [By] sum(monotonic) {interface=eth0,direction=receive} = int 300 start=32400 t=36000
  k8s.pod.network.io [By] sum(monotonic) {interface=eth0,direction=transmit} = int 400 start=32400 t=36000
  k8s.pod.network.errors [1] sum(monotonic) {interface=eth0,direction=receive} = int 0 start=32400 t=36000
  k8s.pod.network.errors [1] sum(monotonic) {interface=eth0,direction=transmit} = int 0 start=32400 t=36000
  k8s.pod.memory_limit_utilization [1] gauge = double 0.5 start=32400 t=36000
resource k8s.pod.uid=uid-web,k8s.pod.name=web-0,k8s.namespace.name=shop,k8s.container.name=app,container.id=aaa111
  container.cpu.time [s] sum(monotonic) = double 120 start=32405 t=36000
  container.memory.available [By] gauge = int 500 start=32405 t=36000
  container.memory.usage [By] gauge = int 600 start=32405 t=36000
  container.memory.rss [By] gauge = int 400 start=32405 t=36000
  container.memory.working_set [By] gauge = int 500 start=32405 t=36000
  container.memory.page_faults [1] gauge = int 10 start=32405 t=36000
  container.memory.major_page_faults [1] gauge = int 0 start=32405 t=36000
  container.filesystem.available [By] gauge = int 7000 start=32405 t=36000
  container.filesystem.capacity [By] gauge = int 10000 start=32405 t=36000
  container.filesystem.usage [By] gauge = int 3000 start=32405 t=36000
  k8s.container.memory_limit_utilization [1] gauge = double 0.5 start=32405 t=36000
resource k8s.pod.uid=uid-web,k8s.pod.name=web-0,k8s.namespace.name=shop,k8s.container.name=sidecar
  container.cpu.time [s] sum(monotonic) = double 30 start=32406 t=36000
  container.memory.working_set [By] gauge = int 50 start=32406 t=36000
  k8s.container.memory_limit_utilization [1] gauge = double 0.25 start=32406 t=36000
resource k8s.pod.uid=uid-web,k8s.pod.name=web-0,k8s.namespace.name=shop,k8s.volume.name=data,k8s.volume.type=persistentVolumeClaim,k8s.persistentvolumeclaim.name=data-web-0
  k8s.volume.available [By] gauge = int 800 start=32400 t=36000
  k8s.volume.capacity [By] gauge = int 1000 start=32400 t=36000
  k8s.volume.inodes [1] gauge = int 60 start=32400 t=36000
  k8s.volume.inodes.free [1] gauge = int 50 start=32400 t=36000
  k8s.volume.inodes.used [1] gauge = int 10 start=32400 t=36000
resource k8s.pod.uid=uid-web,k8s.pod.name=web-0,k8s.namespace.name=shop,k8s.volume.name=cache,k8s.volume.type=emptyDir
  k8s.volume.available [By] gauge = int 64 start=32400 t=36000
resource k8s.pod.uid=uid-pending,k8s.pod.name=pending-1,k8s.namespace.name=shop
  k8s.pod.memory.usage [By] gauge = int 0 start=35940 t=36000
";

#[test]
fn first_scrape_maps_every_field_exactly() {
    let (s1, _) = summaries();
    let mut c = Converter::from_config(&config(FULL_CONFIG));
    let out = render(&c.convert(&s1, Some(&pods()), T0));
    // The node started at BASE (start=0); its uptime is measured against `now`.
    pretty_eq(&out, FIRST_SCRAPE);
}

#[test]
fn cpu_usage_comes_from_the_second_scrape_and_skips_resets() {
    let (s1, s2) = summaries();
    let mut c = Converter::from_config(&config(FULL_CONFIG));
    let first = render(&c.convert(&s1, Some(&pods()), T0));
    assert!(lines_with(&first, "cpu.usage").is_empty(), "{first}");
    assert!(lines_with(&first, "cpu_limit_utilization").is_empty());

    let second = render(&c.convert(&s2, Some(&pods()), T1));
    let cpu: Vec<String> = second
        .lines()
        .filter(|l| l.starts_with("resource") || l.contains("cpu"))
        .map(str::to_string)
        .collect();
    let expected = [
        "resource k8s.node.name=node-1",
        "  k8s.node.cpu.time [s] sum(monotonic) = double 3605 start=0 t=36010",
        "  k8s.node.cpu.usage [{cpu}] gauge = double 0.5 start=0 t=36010",
        "resource k8s.pod.uid=uid-web,k8s.pod.name=web-0,k8s.namespace.name=shop",
        "  k8s.pod.cpu.time [s] sum(monotonic) = double 155 start=32400 t=36010",
        "  k8s.pod.cpu.usage [{cpu}] gauge = double 0.5 start=32400 t=36010",
        // 0.5 cores over the containers' limits of 1 + 1 cores.
        "  k8s.pod.cpu_limit_utilization [1] gauge = double 0.25 start=32400 t=36010",
        "resource k8s.pod.uid=uid-web,k8s.pod.name=web-0,k8s.namespace.name=shop,k8s.container.name=app,container.id=aaa111",
        "  container.cpu.time [s] sum(monotonic) = double 122 start=32405 t=36010",
        "  container.cpu.usage [{cpu}] gauge = double 0.2 start=32405 t=36010",
        "  k8s.container.cpu_limit_utilization [1] gauge = double 0.2 start=32405 t=36010",
        // The sidecar's counter went backwards (a restart): cpu.time, but no usage.
        "resource k8s.pod.uid=uid-web,k8s.pod.name=web-0,k8s.namespace.name=shop,k8s.container.name=sidecar",
        "  container.cpu.time [s] sum(monotonic) = double 1 start=32406 t=36010",
        "resource k8s.pod.uid=uid-web,k8s.pod.name=web-0,k8s.namespace.name=shop,k8s.volume.name=data,k8s.volume.type=persistentVolumeClaim,k8s.persistentvolumeclaim.name=data-web-0",
        "resource k8s.pod.uid=uid-web,k8s.pod.name=web-0,k8s.namespace.name=shop,k8s.volume.name=cache,k8s.volume.type=emptyDir",
        "resource k8s.pod.uid=uid-pending,k8s.pod.name=pending-1,k8s.namespace.name=shop",
    ];
    assert_eq!(cpu, expected, "{second}");

    // The same sample served again: no time passed, no usage.
    let third = render(&c.convert(&s2, Some(&pods()), T1 + 10 * SECOND));
    assert!(lines_with(&third, "cpu.usage").is_empty(), "{third}");
}

#[test]
fn defaults_are_upstreams_default_metrics_without_pods() {
    let (s1, s2) = summaries();
    let mut c = Converter::from_config(&config("{}"));
    c.convert(&s1, None, T0);
    let out = render(&c.convert(&s2, None, T1));
    let mut names: Vec<&str> = out
        .lines()
        .filter(|l| !l.starts_with("resource"))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    names.sort_unstable();
    names.dedup();
    let expected = [
        "container.cpu.time",
        "container.cpu.usage",
        "container.filesystem.available",
        "container.filesystem.capacity",
        "container.filesystem.usage",
        "container.memory.available",
        "container.memory.major_page_faults",
        "container.memory.page_faults",
        "container.memory.rss",
        "container.memory.usage",
        "container.memory.working_set",
        "k8s.node.cpu.time",
        "k8s.node.cpu.usage",
        "k8s.node.filesystem.available",
        "k8s.node.filesystem.capacity",
        "k8s.node.filesystem.usage",
        "k8s.node.memory.available",
        "k8s.node.memory.major_page_faults",
        "k8s.node.memory.page_faults",
        "k8s.node.memory.rss",
        "k8s.node.memory.usage",
        "k8s.node.memory.working_set",
        "k8s.node.network.errors",
        "k8s.node.network.io",
        "k8s.pod.cpu.time",
        "k8s.pod.cpu.usage",
        "k8s.pod.filesystem.available",
        "k8s.pod.filesystem.capacity",
        "k8s.pod.filesystem.usage",
        "k8s.pod.memory.major_page_faults",
        "k8s.pod.memory.page_faults",
        "k8s.pod.memory.rss",
        "k8s.pod.memory.usage",
        "k8s.pod.memory.working_set",
        "k8s.pod.network.errors",
        "k8s.pod.network.io",
    ];
    assert_eq!(names, expected, "{out}");
    // Without extra_metadata_labels there is no container.id and no volume type.
    assert!(!out.contains("container.id"), "{out}");
    assert!(!out.contains("k8s.volume"), "{out}");
    let resources = lines_with(&out, "resource ");
    assert_eq!(
        resources,
        [
            "resource k8s.node.name=node-1",
            "resource k8s.pod.uid=uid-web,k8s.pod.name=web-0,k8s.namespace.name=shop",
            "resource k8s.pod.uid=uid-web,k8s.pod.name=web-0,k8s.namespace.name=shop,k8s.container.name=app",
            "resource k8s.pod.uid=uid-web,k8s.pod.name=web-0,k8s.namespace.name=shop,k8s.container.name=sidecar",
            "resource k8s.pod.uid=uid-pending,k8s.pod.name=pending-1,k8s.namespace.name=shop",
        ]
    );
}

#[test]
fn all_network_interfaces_on_request() {
    let (s1, _) = summaries();
    let mut c = Converter::from_config(&config(
        r#"{"metric_groups": ["node", "pod"], "collect_all_network_interfaces": {"node": true, "pod": true}}"#,
    ));
    let out = render(&c.convert(&s1, None, T0));
    assert_eq!(
        lines_with(&out, "network"),
        [
            "  k8s.node.network.io [By] sum(monotonic) {interface=eth0,direction=receive} = int 1000 start=0 t=36000",
            "  k8s.node.network.io [By] sum(monotonic) {interface=eth0,direction=transmit} = int 2000 start=0 t=36000",
            "  k8s.node.network.io [By] sum(monotonic) {interface=cni0,direction=receive} = int 10 start=0 t=36000",
            "  k8s.node.network.io [By] sum(monotonic) {interface=cni0,direction=transmit} = int 20 start=0 t=36000",
            // cni0 reports no error counters: no points, never zeros.
            "  k8s.node.network.errors [1] sum(monotonic) {interface=eth0,direction=receive} = int 1 start=0 t=36000",
            "  k8s.node.network.errors [1] sum(monotonic) {interface=eth0,direction=transmit} = int 2 start=0 t=36000",
            "  k8s.pod.network.io [By] sum(monotonic) {interface=eth0,direction=receive} = int 300 start=32400 t=36000",
            "  k8s.pod.network.io [By] sum(monotonic) {interface=eth0,direction=transmit} = int 400 start=32400 t=36000",
            "  k8s.pod.network.io [By] sum(monotonic) {interface=net1,direction=receive} = int 5 start=32400 t=36000",
            "  k8s.pod.network.io [By] sum(monotonic) {interface=net1,direction=transmit} = int 6 start=32400 t=36000",
            "  k8s.pod.network.errors [1] sum(monotonic) {interface=eth0,direction=receive} = int 0 start=32400 t=36000",
            "  k8s.pod.network.errors [1] sum(monotonic) {interface=eth0,direction=transmit} = int 0 start=32400 t=36000",
        ]
    );
    assert!(!out.contains("container."), "container group is off: {out}");
}

#[test]
fn metric_and_resource_attribute_switches() {
    let (s1, _) = summaries();
    let mut c = Converter::from_config(&config(
        r#"{"metric_groups": ["node", "pod"],
            "metrics": {"k8s.node.cpu.time": {"enabled": false}, "k8s.pod.uptime": {"enabled": true}},
            "resource_attributes": {"k8s.pod.uid": {"enabled": false}, "k8s.node.name": {"enabled": false}}}"#,
    ));
    let out = render(&c.convert(&s1, None, T0));
    assert!(!out.contains("k8s.node.cpu.time"), "{out}");
    assert!(out.contains("k8s.pod.cpu.time"), "{out}");
    assert_eq!(
        lines_with(&out, "uptime"),
        [
            "  k8s.pod.uptime [s] sum(monotonic) = int 3600 start=32400 t=36000",
            "  k8s.pod.uptime [s] sum(monotonic) = int 60 start=35940 t=36000",
        ]
    );
    assert_eq!(
        lines_with(&out, "resource"),
        [
            "resource ",
            "resource k8s.pod.name=web-0,k8s.namespace.name=shop",
            "resource k8s.pod.name=pending-1,k8s.namespace.name=shop",
        ]
    );
}

#[test]
fn system_containers_when_enabled() {
    let (s1, s2) = summaries();
    let mut c = Converter::from_config(&config(
        r#"{"metric_groups": ["node"], "metrics": {
            "k8s.node.system_container.cpu.time": {"enabled": true},
            "k8s.node.system_container.cpu.usage": {"enabled": true},
            "k8s.node.system_container.memory.usage": {"enabled": true},
            "k8s.node.system_container.memory.working_set": {"enabled": true}}}"#,
    ));
    c.convert(&s1, None, T0);
    let out = render(&c.convert(&s2, None, T1));
    let system: Vec<&str> = out
        .lines()
        .skip_while(|l| !l.contains("system_container.name"))
        .collect();
    assert_eq!(
        system,
        [
            "resource k8s.node.name=node-1,k8s.node.system_container.name=kubelet",
            "  k8s.node.system_container.cpu.time [s] sum(monotonic) = double 1 start=0 t=36010",
            // The kubelet used no CPU between the two samples.
            "  k8s.node.system_container.cpu.usage [{cpu}] gauge = double 0 start=0 t=36010",
            "  k8s.node.system_container.memory.usage [By] gauge = int 50000000 start=0 t=36010",
            "  k8s.node.system_container.memory.working_set [By] gauge = int 40000000 start=0 t=36010",
        ],
        "{out}"
    );
}

#[test]
fn scope_is_upstreams() {
    let (s1, _) = summaries();
    let mut c = Converter::from_config(&config("{}"));
    let out = c.convert(&s1, None, T0);
    for rm in &out.resource_metrics {
        let scope = rm.scope_metrics[0].scope.as_ref().unwrap();
        assert_eq!(
            scope.name,
            "github.com/open-telemetry/opentelemetry-collector-contrib/receiver/kubeletstatsreceiver"
        );
    }
}

fn pretty_eq(got: &str, want: &str) {
    if got != want {
        let g: Vec<&str> = got.lines().collect();
        let w: Vec<&str> = want.lines().collect();
        for i in 0..g.len().max(w.len()) {
            let (a, b) = (g.get(i).copied(), w.get(i).copied());
            if a != b {
                panic!("line {i} differs\n got: {a:?}\nwant: {b:?}\n\nfull output:\n{got}");
            }
        }
    }
}
