//! Reading and writing OTLP resource attributes without ever overwriting a value that is there.

use kotel_pipeline::proto::common::v1::{AnyValue, ArrayValue, KeyValue, any_value};

pub const K8S_NAMESPACE_NAME: &str = "k8s.namespace.name";
pub const K8S_POD_NAME: &str = "k8s.pod.name";
pub const K8S_POD_UID: &str = "k8s.pod.uid";
pub const K8S_POD_IP: &str = "k8s.pod.ip";
pub const K8S_POD_START_TIME: &str = "k8s.pod.start_time";
pub const K8S_POD_HOSTNAME: &str = "k8s.pod.hostname";
pub const K8S_NODE_NAME: &str = "k8s.node.name";
pub const K8S_NODE_UID: &str = "k8s.node.uid";
pub const K8S_CLUSTER_UID: &str = "k8s.cluster.uid";
pub const K8S_DEPLOYMENT_NAME: &str = "k8s.deployment.name";
pub const K8S_DEPLOYMENT_UID: &str = "k8s.deployment.uid";
pub const K8S_REPLICASET_NAME: &str = "k8s.replicaset.name";
pub const K8S_REPLICASET_UID: &str = "k8s.replicaset.uid";
pub const K8S_DAEMONSET_NAME: &str = "k8s.daemonset.name";
pub const K8S_DAEMONSET_UID: &str = "k8s.daemonset.uid";
pub const K8S_STATEFULSET_NAME: &str = "k8s.statefulset.name";
pub const K8S_STATEFULSET_UID: &str = "k8s.statefulset.uid";
pub const K8S_JOB_NAME: &str = "k8s.job.name";
pub const K8S_JOB_UID: &str = "k8s.job.uid";
pub const K8S_CRONJOB_NAME: &str = "k8s.cronjob.name";
pub const K8S_CONTAINER_NAME: &str = "k8s.container.name";
pub const K8S_CONTAINER_RESTART_COUNT: &str = "k8s.container.restart_count";
pub const CONTAINER_ID: &str = "container.id";
pub const CONTAINER_IMAGE_NAME: &str = "container.image.name";
pub const CONTAINER_IMAGE_TAG: &str = "container.image.tag";
pub const CONTAINER_IMAGE_REPO_DIGESTS: &str = "container.image.repo_digests";
pub const SERVICE_NAMESPACE: &str = "service.namespace";
pub const SERVICE_NAME: &str = "service.name";
pub const SERVICE_VERSION: &str = "service.version";
pub const SERVICE_INSTANCE_ID: &str = "service.instance.id";
pub const HOST_NAME: &str = "host.name";

/// The value of `key` as text: strings as they are, integers printed (a restart count may be
/// either). Empty strings count as absent, as upstream treats them.
pub fn get<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a str> {
    match attrs
        .iter()
        .find(|kv| kv.key == key)?
        .value
        .as_ref()?
        .value
        .as_ref()?
    {
        any_value::Value::StringValue(s) if !s.is_empty() => Some(s),
        _ => None,
    }
}

/// An integer attribute, written as an int or as a decimal string.
pub fn get_int(attrs: &[KeyValue], key: &str) -> Option<i64> {
    match attrs
        .iter()
        .find(|kv| kv.key == key)?
        .value
        .as_ref()?
        .value
        .as_ref()?
    {
        any_value::Value::IntValue(i) => Some(*i),
        any_value::Value::StringValue(s) => s.parse().ok(),
        _ => None,
    }
}

/// Whether `key` may be written: absent, or present with an empty string (as upstream).
fn writable(attrs: &[KeyValue], key: &str) -> Option<Option<usize>> {
    match attrs.iter().position(|kv| kv.key == key) {
        None => Some(None),
        Some(i) => match attrs[i].value.as_ref().and_then(|v| v.value.as_ref()) {
            None => Some(Some(i)),
            Some(any_value::Value::StringValue(s)) if s.is_empty() => Some(Some(i)),
            Some(_) => None,
        },
    }
}

fn put(attrs: &mut Vec<KeyValue>, key: &str, value: impl FnOnce() -> any_value::Value) -> bool {
    let Some(slot) = writable(attrs, key) else {
        return false;
    };
    let value = Some(AnyValue {
        value: Some(value()),
    });
    match slot {
        Some(i) => attrs[i].value = value,
        None => attrs.push(KeyValue {
            key: key.to_string(),
            value,
            ..Default::default()
        }),
    }
    true
}

/// Sets a string attribute unless a non-empty value is there. Returns whether it wrote.
pub fn set(attrs: &mut Vec<KeyValue>, key: &str, value: &str) -> bool {
    put(attrs, key, || {
        any_value::Value::StringValue(value.to_string())
    })
}

/// Sets a string-array attribute unless a value is there.
pub fn set_array(attrs: &mut Vec<KeyValue>, key: &str, values: &[&str]) -> bool {
    put(attrs, key, || {
        any_value::Value::ArrayValue(ArrayValue {
            values: values
                .iter()
                .map(|v| AnyValue {
                    value: Some(any_value::Value::StringValue(v.to_string())),
                })
                .collect(),
        })
    })
}

/// Builds a string attribute, for tests and benches.
pub fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.to_string())),
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn existing_values_are_never_overwritten() {
        let mut a = vec![kv("k8s.pod.name", "mine")];
        assert!(!set(&mut a, "k8s.pod.name", "theirs"));
        assert_eq!(get(&a, "k8s.pod.name"), Some("mine"));
        assert!(set(&mut a, "k8s.pod.uid", "u"));
        assert_eq!(get(&a, "k8s.pod.uid"), Some("u"));
    }

    #[test]
    fn an_empty_string_counts_as_absent() {
        let mut a = vec![kv("k8s.pod.name", "")];
        assert_eq!(get(&a, "k8s.pod.name"), None);
        assert!(set(&mut a, "k8s.pod.name", "p"));
        assert_eq!(a.len(), 1);
        assert_eq!(get(&a, "k8s.pod.name"), Some("p"));
    }

    #[test]
    fn integers_read_from_ints_or_strings() {
        let mut a = vec![kv("n", "3")];
        a.push(KeyValue {
            key: "m".into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::IntValue(4)),
            }),
            ..Default::default()
        });
        assert_eq!(get_int(&a, "n"), Some(3));
        assert_eq!(get_int(&a, "m"), Some(4));
    }
}
