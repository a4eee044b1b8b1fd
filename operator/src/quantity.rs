//! Resource quantities (`500m`, `1Gi`, `1e3`) reduced to their exact value, so two spellings of
//! one amount compare equal, as they do for the API server (which stores `0.5` as `500m` and
//! `1024Mi` as `1Gi`).

use serde_json::Value;

/// The exact value of a Kubernetes quantity as `<mantissa>e<exponent>` with no trailing zero in
/// the mantissa (`"0.5"` and `"500m"` both give `5e-1`; zero gives `0e0`). Suffixes: binary `Ki`
/// to `Ei`, decimal `n u m k M G T P E`, or an exponent `e<int>`/`E<int>`. Like the API server,
/// precision below `1n` is rounded up, away from zero. `None` when `s` does not parse or does not
/// fit in 128 bits.
pub fn canonical(s: &str) -> Option<String> {
    let (negative, rest) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    let (number, suffix) = rest.split_at(end);
    let (int, frac) = number.split_once('.').unwrap_or((number, ""));
    if int.is_empty() && frac.is_empty() {
        return None;
    }
    let mut mantissa: i128 = 0;
    for c in int.chars().chain(frac.chars()) {
        mantissa = mantissa
            .checked_mul(10)?
            .checked_add(c.to_digit(10)?.into())?;
    }
    let (exp10, pow1024): (i32, u32) = match suffix {
        "" => (0, 0),
        "n" => (-9, 0),
        "u" => (-6, 0),
        "m" => (-3, 0),
        "k" => (3, 0),
        "M" => (6, 0),
        "G" => (9, 0),
        "T" => (12, 0),
        "P" => (15, 0),
        "E" => (18, 0),
        "Ki" => (0, 1),
        "Mi" => (0, 2),
        "Gi" => (0, 3),
        "Ti" => (0, 4),
        "Pi" => (0, 5),
        "Ei" => (0, 6),
        _ => (suffix.strip_prefix(['e', 'E'])?.parse().ok()?, 0),
    };
    mantissa = mantissa.checked_mul(1024i128.checked_pow(pow1024)?)?;
    if negative {
        mantissa = -mantissa;
    }
    let mut exponent = exp10.checked_sub(i32::try_from(frac.len()).ok()?)?;
    if exponent < -9 {
        // A divisor too large to hold leaves less than 1n: round it up to 1n.
        mantissa = match 10i128.checked_pow((-9 - exponent).unsigned_abs()) {
            Some(d) => mantissa / d + (mantissa % d).signum(),
            None => mantissa.signum(),
        };
        exponent = -9;
    }
    if mantissa == 0 {
        exponent = 0;
    }
    while mantissa != 0 && mantissa % 10 == 0 {
        mantissa /= 10;
        exponent = exponent.checked_add(1)?;
    }
    Some(format!("{mantissa}e{exponent}"))
}

/// Rewrites, in a serialized object, every quantity the API server canonicalises to its
/// [`canonical`] value: the values of `resources.limits` and `resources.requests` (containers,
/// pod, volume claim templates), `emptyDir.sizeLimit` and `resourceFieldRef.divisor`. A value that
/// does not parse is left as it is.
pub fn canonicalize_in(v: &mut Value) {
    walk(v, "");
}

fn walk(v: &mut Value, parent: &str) {
    match v {
        Value::Object(fields) => {
            for (key, child) in fields.iter_mut() {
                match (parent, key.as_str(), child) {
                    ("resources", "limits" | "requests", Value::Object(amounts)) => {
                        amounts.values_mut().for_each(rewrite);
                    }
                    ("emptyDir", "sizeLimit", child) | ("resourceFieldRef", "divisor", child) => {
                        rewrite(child);
                    }
                    (_, key, child) => walk(child, key),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|item| walk(item, parent)),
        _ => {}
    }
}

fn rewrite(v: &mut Value) {
    if let Some(c) = v.as_str().and_then(canonical) {
        *v = Value::String(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn same(a: &str, b: &str) -> bool {
        let (ca, cb) = (canonical(a), canonical(b));
        assert!(ca.is_some() && cb.is_some(), "{a} → {ca:?}, {b} → {cb:?}");
        ca == cb
    }

    #[test]
    fn spellings_the_api_server_rewrites_are_the_same_value() {
        // Each pair: what a user writes, what a v1.33 API server stores.
        for (written, stored) in [
            ("0.5", "500m"),
            ("100.0m", "100m"),
            ("1000m", "1"),
            ("0.5Gi", "512Mi"),
            ("1024Mi", "1Gi"),
            ("1000", "1k"),
            ("1e3", "1k"),
            ("1E3", "1k"),
            ("1.5Gi", "1536Mi"),
            ("1073741824", "1073741824"),
            ("+2", "2"),
            ("0.0000000001", "1n"),
            ("-0.0000000001", "-1n"),
            ("1.0000000001", "1000000001n"),
            ("0", "0m"),
            (".5", "500m"),
            ("5.", "5"),
        ] {
            assert!(same(written, stored), "{written} vs {stored}");
        }
        assert!(same("1Gi", "1073741824"), "binary and decimal spellings");
        assert_eq!(canonical("0.5").as_deref(), Some("5e-1"));
        assert_eq!(canonical("1Ki").as_deref(), Some("1024e0"));
        assert_eq!(canonical("-0").as_deref(), Some("0e0"));
    }

    #[test]
    fn different_amounts_differ() {
        for (a, b) in [
            ("1G", "1Gi"),
            ("500m", "501m"),
            ("1", "-1"),
            ("1k", "1Ki"),
            ("1M", "1m"),
        ] {
            assert!(!same(a, b), "{a} vs {b}");
        }
    }

    #[test]
    fn not_a_quantity() {
        for s in [
            "", "-", ".", "abc", "1.2.3", "1Ki2", "1e", "1X", "0x10", "1 Gi",
        ] {
            assert_eq!(canonical(s), None, "{s:?}");
        }
        assert_eq!(canonical(&"9".repeat(40)), None, "does not fit");
        assert_eq!(canonical("1e99999999999"), None, "exponent does not fit");
    }

    #[test]
    fn only_quantity_fields_are_rewritten() {
        let mut v = json!({"spec": {"template": {"spec": {
            "containers": [{
                "resources": {"limits": {"cpu": "0.5"}, "requests": {"memory": "1Gi"}},
                "env": [{"name": "N", "value": "0.5",
                         "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu", "divisor": "1m"}}}],
                "args": ["0.5"]
            }],
            "volumes": [{"emptyDir": {"sizeLimit": "1000Mi", "medium": "0.5"}}],
            "nodeSelector": {"sizeLimit": "0.5", "limits": "0.5"}
        }}}});
        canonicalize_in(&mut v);
        let pod = &v["spec"]["template"]["spec"];
        let c = &pod["containers"][0];
        assert_eq!(c["resources"]["limits"]["cpu"], "5e-1");
        assert_eq!(c["resources"]["requests"]["memory"], "1073741824e0");
        assert_eq!(
            c["env"][0]["valueFrom"]["resourceFieldRef"]["divisor"],
            "1e-3"
        );
        assert_eq!(c["env"][0]["value"], "0.5");
        assert_eq!(c["args"][0], "0.5");
        assert_eq!(pod["volumes"][0]["emptyDir"]["sizeLimit"], "1048576e3");
        assert_eq!(pod["volumes"][0]["emptyDir"]["medium"], "0.5");
        assert_eq!(
            pod["nodeSelector"],
            json!({"sizeLimit": "0.5", "limits": "0.5"})
        );
    }
}
