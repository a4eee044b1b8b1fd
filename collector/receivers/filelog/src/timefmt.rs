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
    // Beyond the year 2554 nanoseconds overflow u64: unparseable, never a wrapped time.
    (secs as u64).checked_mul(1_000_000_000)?.checked_add(nanos)
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

/// A timestamp layout of the parsers' `timestamp` block: `strptime` (default), `gotime` or
/// `epoch`. Times without a zone are UTC.
#[derive(Debug, Clone, PartialEq)]
pub enum Layout {
    Epoch(EpochUnit),
    Pattern(Vec<Item>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EpochUnit {
    S,
    Ms,
    Us,
    Ns,
    /// `s.ms`, `s.us`, `s.ns`: seconds with a fraction.
    SFrac,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Item {
    Lit(String),
    Year4,
    Year2,
    Month,
    MonthName,
    Day,
    /// Day padded with a space (`%e`, `_2`).
    DaySpace,
    DayOfYear,
    Hour24,
    Hour12,
    Minute,
    Second,
    /// Fraction digits; with `dot`, a leading `.` or `,` is part of the item.
    Frac {
        dot: bool,
    },
    AmPm,
    Weekday,
    /// `Z`, `±hh:mm`, `±hhmm`, `±hh`.
    Offset,
    /// A zone name: only `UTC`, `GMT` and `Z` mean something; others are read as UTC.
    ZoneName,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("timestamp layout {layout:?}: {reason}")]
pub struct LayoutError {
    pub layout: String,
    pub reason: String,
}

impl Layout {
    pub fn build(layout_type: Option<&str>, layout: &str) -> Result<Self, LayoutError> {
        let err = |reason: &str| LayoutError {
            layout: layout.to_string(),
            reason: reason.to_string(),
        };
        match layout_type.unwrap_or("strptime") {
            "epoch" => Ok(Self::Epoch(match layout {
                "s" => EpochUnit::S,
                "ms" => EpochUnit::Ms,
                "us" => EpochUnit::Us,
                "ns" => EpochUnit::Ns,
                "s.ms" | "s.us" | "s.ns" => EpochUnit::SFrac,
                _ => return Err(err("not an epoch layout (s, ms, us, ns, s.ms, s.us, s.ns)")),
            })),
            "strptime" => strptime_items(layout)
                .map(Self::Pattern)
                .map_err(|r| err(&r)),
            "gotime" => Ok(Self::Pattern(gotime_items(layout))),
            _ => Err(err("layout_type is not strptime, gotime or epoch")),
        }
    }

    /// Unix nanoseconds of `s`, or `None` when it does not fit the layout.
    pub fn parse(&self, s: &str) -> Option<u64> {
        match self {
            Self::Epoch(unit) => parse_epoch(*unit, s.trim()),
            Self::Pattern(items) => parse_pattern(items, s.as_bytes()),
        }
    }

    /// Unix nanoseconds of a number, for `epoch` layouts.
    pub fn parse_number(&self, n: f64) -> Option<u64> {
        let Self::Epoch(unit) = self else { return None };
        if !n.is_finite() || n < 0.0 {
            return None;
        }
        Some(match unit {
            EpochUnit::S | EpochUnit::SFrac => (n * 1e9) as u64,
            EpochUnit::Ms => (n * 1e6) as u64,
            EpochUnit::Us => (n * 1e3) as u64,
            EpochUnit::Ns => n as u64,
        })
    }
}

fn parse_epoch(unit: EpochUnit, s: &str) -> Option<u64> {
    let (int, frac) = match s.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (s, None),
    };
    let int: u64 = int.parse().ok()?;
    let mul = match unit {
        EpochUnit::S | EpochUnit::SFrac => 1_000_000_000,
        EpochUnit::Ms => 1_000_000,
        EpochUnit::Us => 1_000,
        EpochUnit::Ns => 1,
    };
    let mut nanos = int.checked_mul(mul)?;
    if let Some(f) = frac {
        if !f.bytes().all(|b| b.is_ascii_digit()) || f.is_empty() {
            return None;
        }
        let digits = f.len().min(9);
        let v: u64 = f[..digits].parse().ok()?;
        let scaled = v * 10u64.pow((9 - digits) as u32);
        nanos = nanos.checked_add(scaled * mul / 1_000_000_000)?;
    }
    Some(nanos)
}

fn strptime_items(layout: &str) -> Result<Vec<Item>, String> {
    let mut items = Vec::new();
    let mut lit = String::new();
    let mut chars = layout.chars();
    let push = |items: &mut Vec<Item>, lit: &mut String, item: Item| {
        if !lit.is_empty() {
            items.push(Item::Lit(std::mem::take(lit)));
        }
        items.push(item);
    };
    while let Some(c) = chars.next() {
        if c != '%' {
            lit.push(c);
            continue;
        }
        let d = chars.next().ok_or("ends with %")?;
        let expanded: &[Item] = &match d {
            'Y' => vec![Item::Year4],
            'y' => vec![Item::Year2],
            'm' | 'o' | 'q' => vec![Item::Month],
            'b' | 'h' | 'B' => vec![Item::MonthName],
            'd' | 'g' => vec![Item::Day],
            'e' => vec![Item::DaySpace],
            'j' => vec![Item::DayOfYear],
            'H' => vec![Item::Hour24],
            'I' | 'l' => vec![Item::Hour12],
            'M' => vec![Item::Minute],
            'S' => vec![Item::Second],
            'L' | 'f' | 's' => vec![Item::Frac { dot: false }],
            'p' => vec![Item::AmPm],
            'a' | 'A' => vec![Item::Weekday],
            'z' => vec![Item::Offset],
            'Z' => vec![Item::ZoneName],
            'T' => vec![
                Item::Hour24,
                Item::Lit(":".into()),
                Item::Minute,
                Item::Lit(":".into()),
                Item::Second,
            ],
            'F' => vec![
                Item::Year4,
                Item::Lit("-".into()),
                Item::Month,
                Item::Lit("-".into()),
                Item::Day,
            ],
            'D' => vec![
                Item::Month,
                Item::Lit("/".into()),
                Item::Day,
                Item::Lit("/".into()),
                Item::Year2,
            ],
            '%' => {
                lit.push('%');
                continue;
            }
            other => return Err(format!("directive %{other} is not supported")),
        };
        for it in expanded {
            match it {
                Item::Lit(l) => lit.push_str(l),
                it => push(&mut items, &mut lit, it.clone()),
            }
        }
    }
    if !lit.is_empty() {
        items.push(Item::Lit(lit));
    }
    Ok(items)
}

/// Go's reference-time layout (`2006-01-02T15:04:05.999999999Z07:00`) as items.
fn gotime_items(layout: &str) -> Vec<Item> {
    const TOKENS: &[(&str, Item)] = &[
        ("January", Item::MonthName),
        ("Monday", Item::Weekday),
        ("Z07:00", Item::Offset),
        ("-07:00", Item::Offset),
        ("Z0700", Item::Offset),
        ("-0700", Item::Offset),
        ("2006", Item::Year4),
        ("Jan", Item::MonthName),
        ("Mon", Item::Weekday),
        ("MST", Item::ZoneName),
        ("002", Item::DayOfYear),
        ("_2", Item::DaySpace),
        ("-07", Item::Offset),
        ("Z07", Item::Offset),
        ("15", Item::Hour24),
        ("06", Item::Year2),
        ("01", Item::Month),
        ("02", Item::Day),
        ("03", Item::Hour12),
        ("04", Item::Minute),
        ("05", Item::Second),
        ("PM", Item::AmPm),
        ("pm", Item::AmPm),
        ("1", Item::Month),
        ("2", Item::Day),
        ("3", Item::Hour12),
        ("4", Item::Minute),
        ("5", Item::Second),
    ];
    let mut items = Vec::new();
    let mut lit = String::new();
    let mut rest = layout;
    'outer: while !rest.is_empty() {
        // `.000`, `.999`, `,000`: a fraction of a second.
        let b = rest.as_bytes();
        if (b[0] == b'.' || b[0] == b',') && b.len() > 1 && (b[1] == b'0' || b[1] == b'9') {
            let n = 1 + b[1..].iter().take_while(|&&c| c == b[1]).count();
            if !b.get(n).is_some_and(u8::is_ascii_digit) {
                if !lit.is_empty() {
                    items.push(Item::Lit(std::mem::take(&mut lit)));
                }
                items.push(Item::Frac { dot: true });
                rest = &rest[n..];
                continue;
            }
        }
        for (tok, item) in TOKENS {
            if rest.starts_with(tok) {
                if !lit.is_empty() {
                    items.push(Item::Lit(std::mem::take(&mut lit)));
                }
                items.push(item.clone());
                rest = &rest[tok.len()..];
                continue 'outer;
            }
        }
        let c = rest.chars().next().expect("not empty");
        lit.push(c);
        rest = &rest[c.len_utf8()..];
    }
    if !lit.is_empty() {
        items.push(Item::Lit(lit));
    }
    items
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];

fn parse_pattern(items: &[Item], s: &[u8]) -> Option<u64> {
    let mut i = 0;
    let num = |i: &mut usize, min: usize, max: usize| -> Option<u32> {
        let start = *i;
        while *i < s.len() && *i - start < max && s[*i].is_ascii_digit() {
            *i += 1;
        }
        if *i - start < min {
            return None;
        }
        digits(&s[start..*i])
    };
    let (mut year, mut month, mut day, mut yday) = (1970i64, 1u32, 1u32, None::<u32>);
    let (mut hour, mut min, mut sec, mut nanos, mut pm, mut offset) =
        (0u32, 0u32, 0u32, 0u64, None::<bool>, 0i64);
    for item in items {
        match item {
            Item::Lit(l) => {
                let l = l.as_bytes();
                if !s[i..].starts_with(l) {
                    return None;
                }
                i += l.len();
            }
            Item::Year4 => year = i64::from(num(&mut i, 4, 4)?),
            Item::Year2 => {
                let y = i64::from(num(&mut i, 2, 2)?);
                year = if y < 69 { 2000 + y } else { 1900 + y };
            }
            Item::Month => month = num(&mut i, 1, 2)?,
            Item::Day => day = num(&mut i, 1, 2)?,
            Item::DaySpace => {
                if s.get(i) == Some(&b' ') {
                    i += 1;
                }
                day = num(&mut i, 1, 2)?;
            }
            Item::DayOfYear => yday = Some(num(&mut i, 1, 3)?),
            Item::Hour24 | Item::Hour12 => hour = num(&mut i, 1, 2)?,
            Item::Minute => min = num(&mut i, 1, 2)?,
            Item::Second => sec = num(&mut i, 1, 2)?,
            Item::Frac { dot } => {
                if *dot {
                    if !matches!(s.get(i), Some(b'.' | b',')) {
                        continue; // Go's .999 fractions are optional
                    }
                    i += 1;
                }
                let start = i;
                while i < s.len() && s[i].is_ascii_digit() {
                    i += 1;
                }
                let f = &s[start..i];
                if f.is_empty() {
                    return None;
                }
                let n = f.len().min(9);
                nanos = u64::from(digits(&f[..n])?) * 10u64.pow((9 - n) as u32);
            }
            Item::AmPm => {
                let w = s.get(i..i + 2)?.to_ascii_lowercase();
                pm = Some(match w.as_slice() {
                    b"am" => false,
                    b"pm" => true,
                    _ => return None,
                });
                i += 2;
            }
            Item::MonthName | Item::Weekday | Item::ZoneName => {
                let start = i;
                while i < s.len() && s[i].is_ascii_alphabetic() {
                    i += 1;
                }
                let word = s[start..i].to_ascii_lowercase();
                if word.is_empty() {
                    return None;
                }
                if *item == Item::MonthName {
                    month = MONTHS.iter().position(|m| word.starts_with(m.as_bytes()))? as u32 + 1;
                }
            }
            Item::Offset => match s.get(i)? {
                b'Z' | b'z' => i += 1,
                sign @ (b'+' | b'-') => {
                    let neg = *sign == b'-';
                    i += 1;
                    let h = i64::from(num(&mut i, 2, 2)?);
                    if s.get(i) == Some(&b':') {
                        i += 1;
                    }
                    let m = num(&mut i, 0, 2).map_or(0, i64::from);
                    offset = (h * 3600 + m * 60) * if neg { -1 } else { 1 };
                }
                _ => return None,
            },
        }
    }
    if i != s.len() {
        return None;
    }
    if let Some(pm) = pm {
        hour = match (hour, pm) {
            (12, false) => 0,
            (h, true) if h < 12 => h + 12,
            (h, _) => h,
        };
    }
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || min > 59 || sec > 60 {
        return None;
    }
    let days = match yday {
        Some(d) if (1..=366).contains(&d) => days_from_civil(year, 1, 1) + i64::from(d) - 1,
        Some(_) => return None,
        None => days_from_civil(year, month, day),
    };
    let secs = days * 86_400 + i64::from(hour * 3600 + min * 60 + sec) - offset;
    u64::try_from(secs)
        .ok()?
        .checked_mul(1_000_000_000)?
        .checked_add(nanos)
}

#[cfg(test)]
mod layout_tests {
    use super::*;

    fn p(ty: &str, layout: &str, s: &str) -> Option<u64> {
        Layout::build(Some(ty), layout).unwrap().parse(s)
    }

    #[test]
    fn strptime_gotime_and_epoch() {
        let want = parse_rfc3339_nanos(b"2024-03-30T08:31:20.545Z");
        assert_eq!(
            p(
                "strptime",
                "%Y-%m-%dT%H:%M:%S.%LZ",
                "2024-03-30T08:31:20.545Z"
            ),
            want
        );
        assert_eq!(
            p(
                "strptime",
                "%Y-%m-%d %H:%M:%S.%f %z",
                "2024-03-30 10:31:20.545000 +0200"
            ),
            want
        );
        assert_eq!(
            p(
                "strptime",
                "%d/%b/%Y:%H:%M:%S %z",
                "30/Mar/2024:08:31:20 +0000"
            ),
            parse_rfc3339_nanos(b"2024-03-30T08:31:20Z")
        );
        assert_eq!(
            p(
                "gotime",
                "2006-01-02T15:04:05.999999999Z07:00",
                "2024-03-30T08:31:20.545Z"
            ),
            want
        );
        assert_eq!(
            p(
                "gotime",
                "2006-01-02T15:04:05.999999999Z07:00",
                "2024-03-30T08:31:20Z"
            ),
            parse_rfc3339_nanos(b"2024-03-30T08:31:20Z")
        );
        assert_eq!(
            p("gotime", "Jan _2 03:04:05PM 2006", "Mar 30 08:31:20PM 2024"),
            parse_rfc3339_nanos(b"2024-03-30T20:31:20Z")
        );
        assert_eq!(
            p("epoch", "s", "1711787480"),
            parse_rfc3339_nanos(b"2024-03-30T08:31:20Z")
        );
        assert_eq!(p("epoch", "s.ms", "1711787480.545"), want);
        assert_eq!(p("epoch", "ms", "1711787480545"), want);
        assert_eq!(p("strptime", "%Y-%m-%d", "2024-03-30 trailing"), None);
        assert!(Layout::build(Some("strptime"), "%Q").is_err());
        assert!(Layout::build(Some("epoch"), "minutes").is_err());
    }

    /// Found by fuzzing (issue 16): a year past 2554 overflowed the nanoseconds (a panic in
    /// debug builds, a wrapped, wrong time in release); such a time is now unparseable.
    #[test]
    fn times_past_what_nanoseconds_hold_are_refused_not_wrapped() {
        assert_eq!(parse_rfc3339_nanos(b"3881-05-01T10:00:00+02:00"), None);
        assert_eq!(parse_rfc3339_nanos(b"9999-12-31T23:59:59.999999999Z"), None);
        assert!(parse_rfc3339_nanos(b"2554-01-01T00:00:00Z").is_some());
        assert_eq!(
            p(
                "gotime",
                "2006-01-02T15:04:05Z07:00",
                "3881-05-01T10:00:00+02:00"
            ),
            None
        );
        assert_eq!(p("epoch", "s.ns", "18446744073.999999999"), None);
    }
}
