//! RFC 3339 timestamps as written by containerd, CRI-O and Docker, to Unix nanoseconds.

/// Parses `2023-06-22T10:27:25.813799277Z` or `2024-04-13T07:59:37.505201169-05:00` (fraction
/// optional, any length up to nanoseconds) into nanoseconds since the Unix epoch (UTC).
pub fn parse_rfc3339_nanos(s: &[u8]) -> Option<u64> {
    if s.len() < 20 || s[4] != b'-' || s[7] != b'-' || !matches!(s[10], b'T' | b't' | b' ') {
        return None;
    }
    if s[13] != b':' || s[16] != b':' {
        return None;
    }
    let year = digits(&s[0..4])? as i64;
    let month = digits(&s[5..7])?;
    let day = digits(&s[8..10])?;
    let hour = digits(&s[11..13])?;
    let min = digits(&s[14..16])?;
    let sec = digits(&s[17..19])?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || min > 59 || sec > 60 {
        return None;
    }
    let mut i = 19;
    let mut nanos: u64 = 0;
    if s.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < s.len() && s[i].is_ascii_digit() {
            if i - start < 9 {
                nanos = nanos * 10 + u64::from(s[i] - b'0');
            }
            i += 1;
        }
        let n = i - start;
        if n == 0 {
            return None;
        }
        for _ in n.min(9)..9 {
            nanos *= 10;
        }
    }
    let offset_secs: i64 = match s.get(i)? {
        b'Z' | b'z' if i + 1 == s.len() => 0,
        sign @ (b'+' | b'-') if i + 6 == s.len() && s[i + 3] == b':' => {
            let h = digits(&s[i + 1..i + 3])? as i64;
            let m = digits(&s[i + 4..i + 6])? as i64;
            let off = h * 3600 + m * 60;
            if *sign == b'+' { off } else { -off }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + i64::from(hour * 3600 + min * 60 + sec) - offset_secs;
    if secs < 0 {
        return None;
    }
    Some(secs as u64 * 1_000_000_000 + nanos)
}

fn digits(b: &[u8]) -> Option<u32> {
    let mut v = 0u32;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u32::from(c - b'0');
    }
    Some(v)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn containerd_crio_and_docker_times() {
        assert_eq!(
            parse_rfc3339_nanos(b"2023-06-22T10:27:25.813799277Z"),
            Some(1_687_429_645_813_799_277)
        );
        // CRI-O writes the local offset: 07:59:37-05:00 is 12:59:37Z.
        assert_eq!(
            parse_rfc3339_nanos(b"2024-04-13T07:59:37.505201169-05:00"),
            parse_rfc3339_nanos(b"2024-04-13T12:59:37.505201169Z")
        );
        assert_eq!(
            parse_rfc3339_nanos(b"1970-01-01T00:00:01.5Z"),
            Some(1_500_000_000)
        );
        assert_eq!(parse_rfc3339_nanos(b"1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_rfc3339_nanos(b"2024-03-30T08:31:20.545192187123Z"),
            parse_rfc3339_nanos(b"2024-03-30T08:31:20.545192187Z")
        );
    }

    #[test]
    fn garbage_is_rejected() {
        for s in [
            "",
            "not a time",
            "2023-06-22T10:27:25.Z",
            "2023-13-22T10:27:25Z",
            "2023-06-22T10:27:25",
            "2023-06-22T10:27:25Zjunk",
            "2023-06-22T10:27:25+0100",
        ] {
            assert_eq!(parse_rfc3339_nanos(s.as_bytes()), None, "{s}");
        }
    }
}
