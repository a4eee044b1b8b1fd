//! Merging several `--config` files, as upstream: maps merge key by key, the later file wins for
//! scalars and lists.

use serde_json::Value;

/// Merges `over` into `base`.
pub fn merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(slot) if slot.is_object() && v.is_object() => merge(slot, v),
                    _ => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (slot, v) => *slot = v,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn later_files_win() {
        let mut a = json!({"receivers": {"otlp": {"protocols": {"grpc": {}}}}, "service": {"pipelines": {"traces": {"receivers": ["otlp"]}}}});
        merge(
            &mut a,
            json!({"receivers": {"otlp": {"protocols": {"http": {}}}}, "service": {"pipelines": {"traces": {"receivers": ["x"]}}}}),
        );
        assert_eq!(
            a,
            json!({"receivers": {"otlp": {"protocols": {"grpc": {}, "http": {}}}}, "service": {"pipelines": {"traces": {"receivers": ["x"]}}}})
        );
    }
}
