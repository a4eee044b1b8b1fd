//! Go-style durations (`200ms`, `1m30s`, `1.5h`), as the upstream collector writes them; a bare
//! integer is nanoseconds, as upstream's config decoding reads one into a Go `time.Duration`.

use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// Parses a Go duration string. A bare `0` is zero; other bare numbers are rejected, as in Go.
pub fn parse(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() {
        return Err("empty duration".into());
    }
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("duration {s:?} is missing a unit (ns, us, ms, s, m, h)"))?;
        let (num, tail) = rest.split_at(num_len);
        let value: f64 = num
            .parse()
            .map_err(|_| format!("duration {s:?}: bad number {num:?}"))?;
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, next) = tail.split_at(unit_len);
        let scale = match unit {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(format!("duration {s:?}: unknown unit {unit:?}")),
        };
        total += value * scale;
        rest = next;
    }
    Duration::try_from_secs_f64(total).map_err(|e| format!("duration {s:?}: {e}"))
}

/// A duration as written: a Go duration string, or an integer of nanoseconds.
#[derive(Deserialize)]
#[serde(untagged)]
enum Written {
    Text(String),
    Nanos(u64),
}

impl Written {
    fn duration(self) -> Result<Duration, String> {
        match self {
            Self::Text(s) => parse(&s),
            Self::Nanos(n) => Ok(Duration::from_nanos(n)),
        }
    }
}

/// serde adapter for `Duration` fields.
pub fn de<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    Written::deserialize(d)
        .map_err(|_| serde::de::Error::custom("want a duration such as \"5s\" or nanoseconds"))?
        .duration()
        .map_err(serde::de::Error::custom)
}

/// serde adapter for optional durations.
pub fn de_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    Option::<Written>::deserialize(d)
        .map_err(|_| serde::de::Error::custom("want a duration such as \"5s\" or nanoseconds"))?
        .map(|w| w.duration().map_err(serde::de::Error::custom))
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(parse("200ms").unwrap(), Duration::from_millis(200));
        assert_eq!(parse("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse("1.5h").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse("0").unwrap(), Duration::ZERO);
        assert!(parse("10").is_err());
        assert!(parse("10x").is_err());
    }

    #[derive(Deserialize)]
    struct T {
        #[serde(deserialize_with = "de")]
        d: Duration,
        #[serde(default, deserialize_with = "de_opt")]
        o: Option<Duration>,
    }

    #[test]
    fn bare_integers_are_nanoseconds_as_upstream() {
        let t: T =
            serde_json::from_value(serde_json::json!({"d": 5_000_000_000u64, "o": "2s"})).unwrap();
        assert_eq!(
            (t.d, t.o),
            (Duration::from_secs(5), Some(Duration::from_secs(2)))
        );
        let t: T = serde_json::from_value(serde_json::json!({"d": "1m", "o": 7})).unwrap();
        assert_eq!(
            (t.d, t.o),
            (Duration::from_secs(60), Some(Duration::from_nanos(7)))
        );
        let e = serde_json::from_value::<T>(serde_json::json!({"d": -1}))
            .err()
            .unwrap();
        assert!(e.to_string().contains("duration"), "{e}");
        let e = serde_json::from_value::<T>(serde_json::json!({"d": "10"}))
            .err()
            .unwrap();
        assert!(e.to_string().contains("missing a unit"), "{e}");
    }
}
