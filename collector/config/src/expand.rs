//! `${env:VAR}`, `${VAR}`, `${env:VAR:-default}` and `${file:/path}` expansion in string values,
//! as upstream's env and file providers (a secret mounted as a file reaches the config without
//! being written into it).
//!
//! `$$` escapes a literal `$`. A string that is exactly one reference takes the type of what it
//! expands to (`${env:PORT}` → a number), so numeric fields can come from the environment.

use serde_json::Value;

use crate::error::ConfigError;

/// How a reference to an unset variable is resolved.
pub trait Lookup {
    /// The variable's value, or `None` when it is unset.
    fn get(&self, name: &str) -> Option<String>;

    /// A file's content for `${file:…}`, or `None` where files cannot be seen (the operator,
    /// which keeps the reference for the pod to resolve).
    fn read_file(&self, _path: &str) -> Option<Result<String, String>> {
        None
    }
}

impl<F: Fn(&str) -> Option<String>> Lookup for F {
    fn get(&self, name: &str) -> Option<String> {
        self(name)
    }
}

/// Reads the process environment (the collector's case).
pub struct ProcessEnv;

impl Lookup for ProcessEnv {
    fn get(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }

    fn read_file(&self, path: &str) -> Option<Result<String, String>> {
        Some(std::fs::read_to_string(path).map_err(|e| e.to_string()))
    }
}

/// Expands every string in `value`. Unset variables without a default become empty strings, as
/// upstream does, when `keep_unset` is false; with `keep_unset` (the operator, which cannot see a
/// pod's environment) the reference is left as written.
pub fn expand(value: Value, env: &dyn Lookup, keep_unset: bool) -> Result<Value, Vec<ConfigError>> {
    let mut errors = Vec::new();
    let out = walk(value, env, keep_unset, "", &mut errors);
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

fn walk(
    v: Value,
    env: &dyn Lookup,
    keep: bool,
    path: &str,
    errors: &mut Vec<ConfigError>,
) -> Value {
    match v {
        Value::String(s) => match expand_str(&s, env, keep) {
            Ok(Expanded::Whole(text)) => scalar(&text),
            Ok(Expanded::Text(text)) => Value::String(text),
            Err(message) => {
                errors.push(ConfigError::new(path.trim_start_matches('.'), message));
                Value::String(s)
            }
        },
        Value::Array(items) => Value::Array(
            items
                .into_iter()
                .enumerate()
                .map(|(i, x)| walk(x, env, keep, &format!("{path}[{i}]"), errors))
                .collect(),
        ),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, x)| {
                    let p = format!("{path}.{k}");
                    (k, walk(x, env, keep, &p, errors))
                })
                .collect(),
        ),
        other => other,
    }
}

/// A string that was exactly one expanded reference re-reads as a YAML scalar (number, bool).
fn scalar(text: &str) -> Value {
    match serde_yaml_ng::from_str::<Value>(text) {
        Ok(v @ (Value::Number(_) | Value::Bool(_))) => v,
        _ => Value::String(text.to_string()),
    }
}

enum Expanded {
    /// The whole string was a single resolved reference.
    Whole(String),
    Text(String),
}

fn expand_str(s: &str, env: &dyn Lookup, keep: bool) -> Result<Expanded, String> {
    if !s.contains('$') {
        return Ok(Expanded::Text(s.to_string()));
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    let mut refs = 0;
    let mut resolved_whole = true;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        if let Some(after) = tail.strip_prefix("$$") {
            out.push('$');
            rest = after;
            resolved_whole = false;
        } else if let Some(body) = tail.strip_prefix("${") {
            let end = body
                .find('}')
                .ok_or_else(|| format!("unclosed reference in {s:?}"))?;
            let reference = &body[..end];
            if let Some(path) = reference.strip_prefix("file:") {
                match env.read_file(path) {
                    // A file ends with a newline that is not part of the secret.
                    Some(Ok(text)) => out.push_str(text.strip_suffix('\n').unwrap_or(&text)),
                    Some(Err(e)) => return Err(format!("reference ${{file:{path}}}: {e}")),
                    None if keep => {
                        out.push_str(&tail[..end + 3]);
                        resolved_whole = false;
                    }
                    None => {
                        return Err(format!(
                            "reference ${{file:{path}}}: files cannot be read here"
                        ));
                    }
                }
                refs += 1;
                rest = &body[end + 1..];
                continue;
            }
            let (name, default) = parse_ref(reference)?;
            match env.get(name).filter(|v| !v.is_empty() || default.is_none()) {
                Some(v) => out.push_str(&v),
                None => match default {
                    Some(d) => out.push_str(d),
                    None if keep => {
                        out.push_str(&tail[..end + 3]);
                        resolved_whole = false;
                    }
                    None => {}
                },
            }
            refs += 1;
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = &tail[1..];
            resolved_whole = false;
        }
    }
    out.push_str(rest);
    let whole = refs == 1 && resolved_whole && s.starts_with("${") && s.ends_with('}');
    Ok(if whole {
        Expanded::Whole(out)
    } else {
        Expanded::Text(out)
    })
}

/// `env:NAME`, `env:NAME:-default` or `NAME`.
fn parse_ref(r: &str) -> Result<(&str, Option<&str>), String> {
    let r = match r.split_once(':') {
        Some(("env", rest)) => rest,
        Some((scheme, _)) if !scheme.is_empty() && !r.contains(":-") => {
            return Err(format!(
                "reference ${{{r}}}: only the env and file providers are supported (got {scheme:?})"
            ));
        }
        _ => r,
    };
    let (name, default) = match r.split_once(":-") {
        Some((n, d)) => (n, Some(d)),
        None => (r, None),
    };
    let valid = !name.is_empty()
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit());
    if !valid {
        return Err(format!(
            "reference ${{{r}}}: {name:?} is not a valid variable name"
        ));
    }
    Ok((name, default))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn env(name: &str) -> Option<String> {
        match name {
            "NODE" => Some("node-1".into()),
            "PORT" => Some("4317".into()),
            _ => None,
        }
    }

    #[test]
    fn expands_references() {
        let v = json!({
            "a": "${env:NODE}:10250",
            "b": "${PORT}",
            "c": "${env:MISSING:-fallback}",
            "d": "$${env:NODE}",
            "e": ["${env:MISSING}"],
        });
        let out = expand(v, &env, false).unwrap();
        assert_eq!(
            out,
            json!({"a": "node-1:10250", "b": 4317, "c": "fallback", "d": "${env:NODE}", "e": [""]})
        );
    }

    #[test]
    fn keeps_unset_for_the_operator() {
        let out = expand(json!({"a": "${env:K8S_NODE_NAME}:10250"}), &env, true).unwrap();
        assert_eq!(out, json!({"a": "${env:K8S_NODE_NAME}:10250"}));
    }

    #[test]
    fn bad_references_name_their_path() {
        let errs = expand(json!({"x": {"y": "${vault:/etc/x}"}}), &env, false).unwrap_err();
        assert_eq!(errs[0].path, "x.y");
        let errs = expand(json!({"x": "${env:NODE"}), &env, false).unwrap_err();
        assert!(errs[0].message.contains("unclosed"));
    }

    /// `${file:…}` (issue 16): the collector reads the file (a mounted secret), without its final
    /// newline; the operator keeps the reference for the pod; a missing file is an error naming
    /// the path.
    #[test]
    fn file_references_read_the_file_in_the_collector_only() {
        let dir = std::env::temp_dir().join(format!("kotel-expand-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let token = dir.join("token");
        std::fs::write(&token, "s3cret\n").unwrap();
        let v =
            json!({"headers": {"authorization": format!("Bearer ${{file:{}}}", token.display())}});
        let out = expand(v.clone(), &ProcessEnv, false).unwrap();
        assert_eq!(out["headers"]["authorization"], "Bearer s3cret");
        assert_eq!(
            expand(v.clone(), &env, true).unwrap(),
            v,
            "the operator keeps it"
        );
        let missing = json!({"x": format!("${{file:{}}}", dir.join("nope").display())});
        let errs = expand(missing, &ProcessEnv, false).unwrap_err();
        assert!(errs[0].message.contains("nope"), "{}", errs[0].message);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
