//! Names older upstream collectors accepted and later deprecated, renamed or removed. Each is
//! read as its replacement before the config is typed and reported, never refused: a config
//! written for an older upstream version keeps working, and the user learns what to change.
//! The versions are upstream's (core, or contrib for the components that live there).

use serde_json::{Map, Value};

/// Component types upstream renamed whose old name it still accepts: kotel accepts both (the
/// catalogue's aliases) and, like upstream, says the old one is deprecated.
const RENAMED_TYPES: &[(&str, &str, &str, &str)] = &[
    ("exporters", "otlp", "otlp_grpc", "v0.144.0"),
    ("exporters", "otlphttp", "otlp_http", "v0.144.0"),
    (
        "processors",
        "k8sattributes",
        "k8s_attributes",
        "contrib v0.146.0",
    ),
    ("receivers", "filelog", "file_log", "contrib v0.149.0"),
    (
        "receivers",
        "kubeletstats",
        "kubelet_stats",
        "contrib v0.152.0",
    ),
    (
        "processors",
        "k8s_tagger",
        "k8sattributes",
        "contrib v0.37.0",
    ),
];

/// Old `extract.metadata` names of k8sattributes (removed in contrib v0.74.0).
const OLD_METADATA: &[(&str, &str)] = &[
    ("podName", "k8s.pod.name"),
    ("podUID", "k8s.pod.uid"),
    ("namespace", "k8s.namespace.name"),
    ("node", "k8s.node.name"),
    ("deployment", "k8s.deployment.name"),
    ("startTime", "k8s.pod.start_time"),
];

/// kubeletstats metrics renamed in contrib v0.130.0 (same values, unit `{cpu}`).
const OLD_METRICS: &[(&str, &str)] = &[
    ("container.cpu.utilization", "container.cpu.usage"),
    ("k8s.pod.cpu.utilization", "k8s.pod.cpu.usage"),
    ("k8s.node.cpu.utilization", "k8s.node.cpu.usage"),
];

/// Rewrites deprecated names in a raw config in place; returns one message per use.
pub(crate) fn migrate(root: &mut Map<String, Value>) -> Vec<String> {
    let mut notes = Vec::new();
    for section in ["receivers", "processors", "exporters", "extensions"] {
        let Some(Value::Object(components)) = root.get_mut(section) else {
            continue;
        };
        for (id, config) in components.iter_mut() {
            let path = format!("{section}.{id}");
            let ty = type_of(id);
            if let Some((_, _, new, version)) = RENAMED_TYPES
                .iter()
                .find(|(s, old, ..)| *s == section && *old == ty)
            {
                notes.push(format!(
                    "{path}: the type {ty} is {new} since upstream {version}"
                ));
            }
            // `logging:` with no value is null: the same as `{}` (see `typed`), and its
            // defaults need somewhere to go.
            if config.is_null() {
                *config = Value::Object(Map::new());
            }
            let Value::Object(fields) = config else {
                continue;
            };
            let mut note = |what: String| notes.push(format!("{path}{what}"));
            match (section, ty) {
                ("exporters", "logging") => logging_exporter(fields, &mut note),
                ("exporters", _) => sending_queue(fields, &mut note),
                ("processors", "memory_limiter") if fields.remove("ballast_size_mib").is_some() => {
                    note(".ballast_size_mib: removed in upstream v0.39.0 (it did nothing since); ignored".into());
                }
                ("processors", "k8sattributes" | "k8s_attributes" | "k8s_tagger") => {
                    k8sattributes(fields, &mut note)
                }
                ("receivers", "otlp") => otlp_cors(fields, &mut note),
                ("receivers", "kubeletstats" | "kubelet_stats") => {
                    kubelet_metrics(fields, &mut note)
                }
                ("extensions", "health_check")
                    if fields.remove("check_collector_pipeline").is_some() =>
                {
                    note(".check_collector_pipeline: upstream removed what it did in v0.103.0; ignored".into());
                }
                _ => {}
            }
        }
    }
    memory_ballast(root, &mut notes);
    if root
        .get("service")
        .and_then(|s| s.pointer("/telemetry/metrics/address"))
        .is_some_and(|a| !a.is_null())
    {
        notes.push("service.telemetry.metrics.address: deprecated in upstream v0.111.0 and removed in v0.128.0 in favour of readers (pull, prometheus); kotel still reads it".into());
    }
    notes
}

fn type_of(id: &str) -> &str {
    id.split_once('/').map_or(id, |(ty, _)| ty)
}

/// `logging` became `debug` (deprecated in v0.86.0, removed in v0.111.0), with its own
/// defaults (verbosity normal, every 500th item after the first 2), kept here. `loglevel` is
/// `verbosity`: debug → detailed, info → normal, the rest → basic. Both at once stay an error.
fn logging_exporter(fields: &mut Map<String, Value>, note: &mut impl FnMut(String)) {
    note(
        ": the logging exporter is the debug exporter since upstream v0.86.0 (removed in v0.111.0)"
            .into(),
    );
    if !fields.contains_key("verbosity")
        && let Some(level) = fields.remove("loglevel")
    {
        let verbosity = match level.as_str().map(str::to_ascii_lowercase).as_deref() {
            Some("debug") => Some("detailed"),
            Some("info") => Some("normal"),
            Some("warn" | "error" | "dpanic" | "panic" | "fatal") => Some("basic"),
            _ => None,
        };
        match verbosity {
            Some(v) => {
                note(format!(".loglevel: is verbosity ({level} → {v})"));
                fields.insert("verbosity".into(), v.into());
            }
            // Left for the typed check to refuse, under the name it has now.
            None => {
                fields.insert("verbosity".into(), level);
            }
        }
    }
    fields.entry("verbosity").or_insert_with(|| "normal".into());
    fields
        .entry("sampling_thereafter")
        .or_insert_with(|| 500.into());
}

/// `sending_queue.blocking` is `block_on_overflow` (deprecated in v0.123.0, removed in v0.129.0).
fn sending_queue(fields: &mut Map<String, Value>, note: &mut impl FnMut(String)) {
    let Some(Value::Object(queue)) = fields.get_mut("sending_queue") else {
        return;
    };
    if let Some(blocking) = queue.remove("blocking") {
        note(".sending_queue.blocking: is block_on_overflow since upstream v0.123.0".into());
        queue.entry("block_on_overflow").or_insert(blocking);
    }
}

/// The old flat `pod_association` items (`from`, `name`) are one-source rules, and the old
/// `extract.metadata` names are the semantic-convention ones (both removed in contrib v0.74.0).
fn k8sattributes(fields: &mut Map<String, Value>, note: &mut impl FnMut(String)) {
    if let Some(Value::Array(rules)) = fields.get_mut("pod_association") {
        for (i, rule) in rules.iter_mut().enumerate() {
            if let Value::Object(r) = rule
                && !r.contains_key("sources")
                && r.contains_key("from")
            {
                note(format!(
                    ".pod_association[{i}]: from/name are a sources list since contrib v0.56.0"
                ));
                let source = std::mem::take(r);
                r.insert("sources".into(), Value::Array(vec![Value::Object(source)]));
            }
        }
    }
    if let Some(Value::Object(extract)) = fields.get_mut("extract") {
        if let Some(Value::Array(keys)) = extract.get_mut("metadata") {
            for key in keys.iter_mut() {
                let Some(old) = key.as_str() else { continue };
                if let Some((_, new)) = OLD_METADATA.iter().find(|(o, _)| *o == old) {
                    note(format!(".extract.metadata: {old} is {new}"));
                    *key = (*new).into();
                }
            }
        }
        if extract.contains_key("deployment_name_from_replicaset") {
            note(".extract.deployment_name_from_replicaset: deprecated in contrib v0.153.0 (removed in v0.160.0)".into());
        }
    }
}

/// `protocols.http.cors_allowed_origins` and `…_headers` moved under `cors` in v0.41.0.
fn otlp_cors(fields: &mut Map<String, Value>, note: &mut impl FnMut(String)) {
    let http = fields.get_mut("protocols").and_then(|p| p.get_mut("http"));
    let Some(Value::Object(http)) = http else {
        return;
    };
    for (old, new) in [
        ("cors_allowed_origins", "allowed_origins"),
        ("cors_allowed_headers", "allowed_headers"),
    ] {
        let Some(v) = http.remove(old) else { continue };
        note(format!(
            ".protocols.http.{old}: is cors.{new} since upstream v0.41.0"
        ));
        let cors = http
            .entry("cors")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(cors) = cors {
            cors.entry(new).or_insert(v);
        }
    }
}

/// The `*.cpu.utilization` metrics are `*.cpu.usage` since contrib v0.130.0.
fn kubelet_metrics(fields: &mut Map<String, Value>, note: &mut impl FnMut(String)) {
    let Some(Value::Object(metrics)) = fields.get_mut("metrics") else {
        return;
    };
    for (old, new) in OLD_METRICS {
        if let Some(v) = metrics.remove(*old) {
            note(format!(".metrics.{old}: is {new} since contrib v0.130.0"));
            metrics.entry(*new).or_insert(v);
        }
    }
}

/// The `memory_ballast` extension did nothing from v0.106.0 and was removed in v0.109.0 (Go's
/// memory limit replaced it); kotel has no ballast to keep, so it is dropped with its uses.
fn memory_ballast(root: &mut Map<String, Value>, notes: &mut Vec<String>) {
    let Some(Value::Object(extensions)) = root.get_mut("extensions") else {
        return;
    };
    let ballasts: Vec<String> = extensions
        .keys()
        .filter(|id| type_of(id) == "memory_ballast")
        .cloned()
        .collect();
    for id in &ballasts {
        extensions.remove(id);
        notes.push(format!(
            "extensions.{id}: the memory_ballast extension was removed in upstream v0.109.0 (it did nothing since v0.106.0); ignored"
        ));
    }
    if let Some(Value::Array(used)) = root
        .get_mut("service")
        .and_then(|s| s.get_mut("extensions"))
    {
        used.retain(|e| e.as_str().is_none_or(|e| !ballasts.iter().any(|b| b == e)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn migrated(config: Value) -> (Value, Vec<String>) {
        let Value::Object(mut root) = config else {
            panic!("a map")
        };
        let notes = migrate(&mut root);
        (Value::Object(root), notes)
    }

    #[test]
    fn logging_becomes_debug_with_its_own_defaults() {
        let (c, notes) = migrated(json!({"exporters": {
            "logging": {"loglevel": "debug"},
            "logging/quiet": null,
        }}));
        assert_eq!(
            c["exporters"]["logging"],
            json!({"verbosity": "detailed", "sampling_thereafter": 500})
        );
        assert_eq!(
            c["exporters"]["logging/quiet"],
            json!({"verbosity": "normal", "sampling_thereafter": 500})
        );
        assert_eq!(notes.len(), 3, "{notes:?}");
        assert!(
            notes[1].contains("loglevel: is verbosity (\"debug\" → detailed)"),
            "{notes:?}"
        );
    }

    #[test]
    fn old_k8sattributes_forms_are_read_as_new() {
        let (c, notes) = migrated(json!({"processors": {"k8s_tagger": {
            "pod_association": [{"from": "resource_attribute", "name": "k8s.pod.ip"},
                                {"sources": [{"from": "connection"}]}],
            "extract": {"metadata": ["podName", "k8s.pod.uid", "namespace"]},
        }}}));
        let p = &c["processors"]["k8s_tagger"];
        assert_eq!(
            p["pod_association"],
            json!([{"sources": [{"from": "resource_attribute", "name": "k8s.pod.ip"}]},
                   {"sources": [{"from": "connection"}]}])
        );
        assert_eq!(
            p["extract"]["metadata"],
            json!(["k8s.pod.name", "k8s.pod.uid", "k8s.namespace.name"])
        );
        assert_eq!(notes.len(), 4, "type, one rule, two keys: {notes:?}");
    }

    #[test]
    fn removed_no_ops_are_dropped_and_renamed_fields_moved() {
        let (c, notes) = migrated(json!({
            "receivers": {"otlp": {"protocols": {"http": {"cors_allowed_origins": ["https://*"]}}},
                          "kubeletstats": {"metrics": {"k8s.pod.cpu.utilization": {"enabled": true}}}},
            "processors": {"memory_limiter": {"ballast_size_mib": 64, "limit_mib": 400}},
            "exporters": {"otlp_grpc": {"sending_queue": {"blocking": true}}},
            "extensions": {"memory_ballast": {"size_mib": 64}, "health_check": {"check_collector_pipeline": {"enabled": false}}},
            "service": {"extensions": ["memory_ballast", "health_check"],
                        "telemetry": {"metrics": {"address": ":8888"}}},
        }));
        assert_eq!(
            c["receivers"]["otlp"]["protocols"]["http"],
            json!({"cors": {"allowed_origins": ["https://*"]}})
        );
        assert_eq!(
            c["receivers"]["kubeletstats"]["metrics"],
            json!({"k8s.pod.cpu.usage": {"enabled": true}})
        );
        assert_eq!(c["processors"]["memory_limiter"], json!({"limit_mib": 400}));
        assert_eq!(
            c["exporters"]["otlp_grpc"]["sending_queue"],
            json!({"block_on_overflow": true})
        );
        assert_eq!(c["extensions"], json!({"health_check": {}}));
        assert_eq!(c["service"]["extensions"], json!(["health_check"]));
        // otlp cors, kubeletstats (type, metric), ballast field, blocking, check_collector_pipeline,
        // memory_ballast, metrics.address
        assert_eq!(notes.len(), 8, "{notes:#?}");
    }

    #[test]
    fn a_current_config_has_no_notes() {
        let (_, notes) = migrated(json!({
            "receivers": {"otlp": {"protocols": {"grpc": {}}}, "file_log": {"include": ["/x"]}},
            "processors": {"batch": {}, "k8s_attributes": {"extract": {"metadata": ["k8s.pod.name"]}}},
            "exporters": {"otlp_grpc": {"endpoint": "x:4317"}, "debug": {}},
        }));
        assert!(notes.is_empty(), "{notes:?}");
    }
}
