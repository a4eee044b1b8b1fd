//! The record operators work on: an OTLP `LogRecord` plus the resource it belongs to, and the
//! field paths (`body.a`, `attributes["k8s.x"]`, `resource.y`) operators address it with.

use std::sync::Arc;

use kotel_pipeline::proto::common::v1::{AnyValue, KeyValue, KeyValueList, any_value};
use kotel_pipeline::proto::logs::v1::LogRecord;

/// One log record on its way through the operators.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Entry {
    pub record: LogRecord,
    /// Shared by every record of a file until an operator changes it (copy on write).
    pub resource: Arc<Vec<KeyValue>>,
}

pub fn string_value(s: impl Into<String>) -> AnyValue {
    AnyValue {
        value: Some(any_value::Value::StringValue(s.into())),
    }
}

pub fn kv(key: impl Into<String>, value: AnyValue) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(value),
        ..Default::default()
    }
}

/// Converts a JSON value (config `value`s, json_parser output) to an OTLP value.
pub fn from_json(v: &serde_json::Value) -> AnyValue {
    use serde_json::Value as J;
    let value = match v {
        J::Null => None,
        J::Bool(b) => Some(any_value::Value::BoolValue(*b)),
        J::Number(n) => Some(match n.as_i64() {
            Some(i) => any_value::Value::IntValue(i),
            None => any_value::Value::DoubleValue(n.as_f64().unwrap_or(f64::NAN)),
        }),
        J::String(s) => Some(any_value::Value::StringValue(s.clone())),
        J::Array(a) => Some(any_value::Value::ArrayValue(
            kotel_pipeline::proto::common::v1::ArrayValue {
                values: a.iter().map(from_json).collect(),
            },
        )),
        J::Object(m) => Some(any_value::Value::KvlistValue(KeyValueList {
            values: m.iter().map(|(k, v)| kv(k.clone(), from_json(v))).collect(),
        })),
    };
    AnyValue { value }
}

/// The text of a value, for parsers that read strings.
pub fn as_text(v: &AnyValue) -> Option<std::borrow::Cow<'_, str>> {
    match &v.value {
        Some(any_value::Value::StringValue(s)) => Some(s.as_str().into()),
        Some(any_value::Value::BytesValue(b)) => Some(String::from_utf8_lossy(b)),
        Some(any_value::Value::IntValue(i)) => Some(i.to_string().into()),
        Some(any_value::Value::DoubleValue(d)) => Some(d.to_string().into()),
        Some(any_value::Value::BoolValue(b)) => Some(b.to_string().into()),
        _ => None,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Root {
    Body,
    Attributes,
    Resource,
}

/// A parsed field path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub root: Root,
    pub keys: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
#[error(
    "invalid field {field:?}: {reason} (write body, body.key, attributes.key, attributes[\"dotted.key\"] or resource.key)"
)]
pub struct FieldError {
    pub field: String,
    pub reason: &'static str,
}

impl Field {
    pub fn parse(s: &str) -> Result<Self, FieldError> {
        let err = |reason| FieldError {
            field: s.to_string(),
            reason,
        };
        let s = s.trim();
        let root_len = s.find(['.', '[']).unwrap_or(s.len());
        let root = match &s[..root_len] {
            "body" | "$body" => Root::Body,
            "attributes" | "$attributes" => Root::Attributes,
            "resource" | "$resource" => Root::Resource,
            _ => return Err(err("it must start with body, attributes or resource")),
        };
        let mut keys = Vec::new();
        let mut rest = &s[root_len..];
        while !rest.is_empty() {
            if let Some(r) = rest.strip_prefix('.') {
                let end = r.find(['.', '[']).unwrap_or(r.len());
                if end == 0 {
                    return Err(err("empty key"));
                }
                keys.push(r[..end].to_string());
                rest = &r[end..];
            } else if let Some(r) = rest.strip_prefix('[') {
                let quote = r.chars().next().ok_or_else(|| err("unclosed ["))?;
                if quote != '"' && quote != '\'' {
                    return Err(err("bracket keys must be quoted"));
                }
                let r = &r[1..];
                let end = r.find(quote).ok_or_else(|| err("unclosed quote"))?;
                keys.push(r[..end].to_string());
                rest = r[end + 1..]
                    .strip_prefix(']')
                    .ok_or_else(|| err("missing ]"))?;
            } else {
                return Err(err("unexpected character"));
            }
        }
        Ok(Self { root, keys })
    }

    pub fn body() -> Self {
        Self {
            root: Root::Body,
            keys: Vec::new(),
        }
    }

    pub fn attributes() -> Self {
        Self {
            root: Root::Attributes,
            keys: Vec::new(),
        }
    }
}

fn list_get<'a>(list: &'a [KeyValue], key: &str) -> Option<&'a AnyValue> {
    list.iter()
        .rev()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
}

fn nested_get<'a>(mut list: &'a [KeyValue], keys: &[String]) -> Option<&'a AnyValue> {
    let (last, path) = keys.split_last()?;
    for k in path {
        match &list_get(list, k)?.value {
            Some(any_value::Value::KvlistValue(m)) => list = &m.values,
            _ => return None,
        }
    }
    list_get(list, last)
}

fn nested_take(list: &mut Vec<KeyValue>, keys: &[String]) -> Option<AnyValue> {
    let (first, rest) = keys.split_first()?;
    let pos = list.iter().rposition(|kv| &kv.key == first)?;
    if rest.is_empty() {
        return list.remove(pos).value.or(Some(AnyValue::default()));
    }
    match &mut list[pos].value {
        Some(AnyValue {
            value: Some(any_value::Value::KvlistValue(m)),
        }) => nested_take(&mut m.values, rest),
        _ => None,
    }
}

/// Sets `keys` in `list`, creating maps on the way; a map value set at the root merges.
fn nested_set(list: &mut Vec<KeyValue>, keys: &[String], value: AnyValue) {
    let Some((first, rest)) = keys.split_first() else {
        if let Some(any_value::Value::KvlistValue(m)) = value.value {
            for item in m.values {
                let v = item.value.unwrap_or_default();
                nested_set(list, std::slice::from_ref(&item.key), v);
            }
        }
        return;
    };
    let pos = match list.iter().rposition(|kv| &kv.key == first) {
        Some(p) => p,
        None => {
            list.push(kv(first.clone(), AnyValue::default()));
            list.len() - 1
        }
    };
    let slot = list[pos].value.get_or_insert_with(AnyValue::default);
    if rest.is_empty() {
        *slot = value;
        return;
    }
    if !matches!(slot.value, Some(any_value::Value::KvlistValue(_))) {
        slot.value = Some(any_value::Value::KvlistValue(KeyValueList::default()));
    }
    if let Some(any_value::Value::KvlistValue(m)) = &mut slot.value {
        nested_set(&mut m.values, rest, value);
    }
}

impl Entry {
    pub fn get(&self, f: &Field) -> Option<&AnyValue> {
        match f.root {
            Root::Body => {
                let body = self.record.body.as_ref()?;
                if f.keys.is_empty() {
                    return Some(body);
                }
                match &body.value {
                    Some(any_value::Value::KvlistValue(m)) => nested_get(&m.values, &f.keys),
                    _ => None,
                }
            }
            Root::Attributes => nested_get(&self.record.attributes, &f.keys),
            Root::Resource => nested_get(&self.resource, &f.keys),
        }
    }

    pub fn take(&mut self, f: &Field) -> Option<AnyValue> {
        match f.root {
            Root::Body => {
                if f.keys.is_empty() {
                    return self.record.body.take();
                }
                match &mut self.record.body {
                    Some(AnyValue {
                        value: Some(any_value::Value::KvlistValue(m)),
                    }) => nested_take(&mut m.values, &f.keys),
                    _ => None,
                }
            }
            Root::Attributes if f.keys.is_empty() => Some(AnyValue {
                value: Some(any_value::Value::KvlistValue(KeyValueList {
                    values: std::mem::take(&mut self.record.attributes),
                })),
            }),
            Root::Attributes => nested_take(&mut self.record.attributes, &f.keys),
            Root::Resource => {
                if nested_get(&self.resource, &f.keys).is_none() && !f.keys.is_empty() {
                    return None;
                }
                let res = Arc::make_mut(&mut self.resource);
                if f.keys.is_empty() {
                    return Some(AnyValue {
                        value: Some(any_value::Value::KvlistValue(KeyValueList {
                            values: std::mem::take(res),
                        })),
                    });
                }
                nested_take(res, &f.keys)
            }
        }
    }

    pub fn set(&mut self, f: &Field, value: AnyValue) {
        match f.root {
            Root::Body => {
                if f.keys.is_empty() {
                    self.record.body = Some(value);
                    return;
                }
                let body = self.record.body.get_or_insert_with(AnyValue::default);
                if !matches!(body.value, Some(any_value::Value::KvlistValue(_))) {
                    body.value = Some(any_value::Value::KvlistValue(KeyValueList::default()));
                }
                if let Some(any_value::Value::KvlistValue(m)) = &mut body.value {
                    nested_set(&mut m.values, &f.keys, value);
                }
            }
            Root::Attributes => nested_set(&mut self.record.attributes, &f.keys, value),
            Root::Resource => nested_set(Arc::make_mut(&mut self.resource), &f.keys, value),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_paths_parse() {
        let f = Field::parse("attributes[\"k8s.pod.name\"]").unwrap();
        assert_eq!(f.root, Root::Attributes);
        assert_eq!(f.keys, vec!["k8s.pod.name"]);
        let f = Field::parse("body.a.b").unwrap();
        assert_eq!((f.root, f.keys.len()), (Root::Body, 2));
        let f = Field::parse("resource['x'].y").unwrap();
        assert_eq!(f.keys, vec!["x", "y"]);
        assert!(Field::parse("foo.bar").is_err());
        assert!(Field::parse("body.").is_err());
        assert!(Field::parse("body[x]").is_err());
    }

    #[test]
    fn set_get_take_nested() {
        let mut e = Entry::default();
        let f = Field::parse("attributes.a.b").unwrap();
        e.set(&f, string_value("x"));
        assert_eq!(as_text(e.get(&f).unwrap()).unwrap(), "x");
        assert_eq!(as_text(&e.take(&f).unwrap()).unwrap(), "x");
        assert!(e.get(&f).is_none());
        let r = Field::parse("resource.ns").unwrap();
        e.set(&r, string_value("default"));
        assert_eq!(e.resource.len(), 1);
        let moved = e.take(&r).unwrap();
        e.set(&Field::parse("attributes.ns").unwrap(), moved);
        assert!(e.resource.is_empty());
        assert_eq!(e.record.attributes.len(), 2);
    }
}
