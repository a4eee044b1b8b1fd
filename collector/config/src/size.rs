//! Byte sizes as upstream writes them: an integer, or `1kb`, `16KiB`, `1MiB`, `20mb`.

use serde::{Deserialize, Deserializer};

/// Parses a size; decimal units (kb, mb, gb) are powers of 1000, binary ones (KiB…) of 1024.
pub fn parse(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let value: f64 = num.parse().map_err(|_| format!("size {s:?}: bad number"))?;
    let scale: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kb" | "k" => 1e3,
        "mb" | "m" => 1e6,
        "gb" | "g" => 1e9,
        "kib" | "ki" => 1024.0,
        "mib" | "mi" => 1024.0 * 1024.0,
        "gib" | "gi" => 1024.0 * 1024.0 * 1024.0,
        other => return Err(format!("size {s:?}: unknown unit {other:?}")),
    };
    Ok((value * scale) as u64)
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Raw {
    Int(u64),
    Text(String),
}

/// serde adapter for sizes written as numbers or strings.
pub fn de<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    match Raw::deserialize(d)? {
        Raw::Int(n) => Ok(n),
        Raw::Text(s) => parse(&s).map_err(serde::de::Error::custom),
    }
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn sizes() {
        assert_eq!(parse("1kb").unwrap(), 1000);
        assert_eq!(parse("16KiB").unwrap(), 16384);
        assert_eq!(parse("1MiB").unwrap(), 1 << 20);
        assert_eq!(parse("42").unwrap(), 42);
        assert!(parse("3 parsecs").is_err());
    }
}
