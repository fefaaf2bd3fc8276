//! Parsing dates with Joda-Time patterns (`DateTimeFormat.forPattern`), as the `regex_extractor`
//! millis serializer does in Flume (`RegexExtractorInterceptorMillisSerializer`).
//!
//! Supported pattern letters (English names, as with Flume in an English locale):
//! `y`/`Y` year (`yy`: two-digit year, pivot = this year − 30, as Joda; with more digits in the
//! input it is read as a full year), `M` month (`MM` numeric, `MMM`+ name: short or long names are
//! both accepted), `d` day of month, `H` hour 0–23, `k` hour 1–24, `h` hour 1–12, `K` hour 0–11,
//! `a` AM/PM, `m` minute, `s` second, `S` fraction of second (kept to milliseconds), `E` day
//! name (checked, then ignored), `Z` offset (`+0800`, `+08:00`, `Z`) and `ZZ` (same).
//! `'text'` is literal text, `''` a quote; other non-letters are literal (case-insensitive, as
//! Joda matches literals). Fields not in the pattern default to 1970-01-01 00:00:00.000; with no
//! offset in the pattern the time is local (the `TZ` of the process), as Joda uses the JVM zone.
//! The whole input must be consumed.
//!
//! Not supported (a config error that names the key, where Joda would accept them): `ZZZ` zone
//! ids, `z` (Joda cannot parse it either), `D` day of year, `w`/`x`/`e` week fields, `G`
//! era, `C` century. Numeric fields read up to their maximum width (year: up to 9 digits, or
//! exactly its width when a numeric field follows, as Joda does; others: 2 digits, fraction: 9).

use chrono::{Datelike, FixedOffset, Local, NaiveDate, TimeZone};

/// One element of a parsed pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Literal(String),
    /// Year with the maximum digits to read.
    Year(usize),
    /// Two-digit year; `strict` when a numeric field follows (exactly two digits).
    TwoDigitYear {
        strict: bool,
    },
    Month,
    MonthName,
    Day,
    Hour,
    ClockHour,
    HalfHour12,
    HalfHour0,
    HalfDay,
    Minute,
    Second,
    Fraction,
    DayName,
    Offset,
}

const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];
const DAYS: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

/// A compiled Joda-Time pattern.
#[derive(Debug, Clone)]
pub struct JodaPattern {
    tokens: Vec<Token>,
    pivot_year: i32,
}

impl JodaPattern {
    /// Compiles `pattern`; `Err` says which part is not supported.
    pub fn new(pattern: &str) -> Result<Self, String> {
        let chars: Vec<char> = pattern.chars().collect();
        let mut raw: Vec<(char, usize)> = Vec::new();
        let mut lits: Vec<Option<String>> = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            if c.is_ascii_alphabetic() {
                let mut n = 1;
                while i + n < chars.len() && chars[i + n] == c {
                    n += 1;
                }
                raw.push((c, n));
                lits.push(None);
                i += n;
            } else if c == '\'' {
                let mut text = String::new();
                i += 1;
                if i < chars.len() && chars[i] == '\'' {
                    text.push('\'');
                    i += 1;
                } else {
                    loop {
                        match chars.get(i) {
                            None => return Err("unterminated quote".to_string()),
                            Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                                text.push('\'');
                                i += 2;
                            }
                            Some('\'') => {
                                i += 1;
                                break;
                            }
                            Some(&ch) => {
                                text.push(ch);
                                i += 1;
                            }
                        }
                    }
                }
                raw.push(('\'', 0));
                lits.push(Some(text));
            } else {
                raw.push(('\'', 0));
                lits.push(Some(c.to_string()));
                i += 1;
            }
        }
        let numeric = |k: usize| -> bool {
            raw.get(k).is_some_and(|&(c, n)| {
                matches!(c, 'y' | 'Y' | 'd' | 'H' | 'k' | 'h' | 'K' | 'm' | 's' | 'S')
                    || (c == 'M' && n < 3)
            })
        };
        let mut tokens = Vec::with_capacity(raw.len());
        for (k, (&(c, n), lit)) in raw.iter().zip(lits).enumerate() {
            let token = match (c, lit) {
                (_, Some(text)) => Token::Literal(text),
                ('y' | 'Y', None) if n == 2 => Token::TwoDigitYear {
                    strict: numeric(k + 1),
                },
                ('y' | 'Y', None) => Token::Year(if numeric(k + 1) { n } else { 9 }),
                ('M', None) if n >= 3 => Token::MonthName,
                ('M', None) => Token::Month,
                ('d', None) => Token::Day,
                ('H', None) => Token::Hour,
                ('k', None) => Token::ClockHour,
                ('h', None) => Token::HalfHour12,
                ('K', None) => Token::HalfHour0,
                ('a', None) => Token::HalfDay,
                ('m', None) => Token::Minute,
                ('s', None) => Token::Second,
                ('S', None) => Token::Fraction,
                ('E', None) => Token::DayName,
                ('Z', None) if n <= 2 => Token::Offset,
                ('Z', None) => return Err("`ZZZ` (zone ids) is not supported".to_string()),
                (c, None) => return Err(format!("pattern letter `{c}` is not supported")),
            };
            tokens.push(token);
        }
        // Merge adjacent literals.
        let mut merged: Vec<Token> = Vec::with_capacity(tokens.len());
        for t in tokens {
            match (merged.last_mut(), t) {
                (Some(Token::Literal(a)), Token::Literal(b)) => a.push_str(&b),
                (_, t) => merged.push(t),
            }
        }
        Ok(JodaPattern {
            tokens: merged,
            pivot_year: Local::now().year() - 30,
        })
    }

    /// Parses `text` into milliseconds since the epoch.
    pub fn parse_millis(&self, text: &str) -> Result<i64, String> {
        let mut f = Fields::default();
        let mut s = text;
        for t in &self.tokens {
            s = self.parse_token(t, s, &mut f)?;
        }
        if !s.is_empty() {
            return Err(format!("unparsed text `{s}` at the end of `{text}`"));
        }
        f.millis(text)
    }

    fn parse_token<'s>(&self, t: &Token, s: &'s str, f: &mut Fields) -> Result<&'s str, String> {
        Ok(match t {
            Token::Literal(lit) => {
                let n = lit.len();
                match s.get(..n) {
                    Some(head) if head.eq_ignore_ascii_case(lit) => &s[n..],
                    _ => return Err(format!("expected `{lit}` at `{s}`")),
                }
            }
            Token::Year(max) => {
                let (neg, rest) = match s.as_bytes().first() {
                    Some(b'-') => (true, &s[1..]),
                    Some(b'+') => (false, &s[1..]),
                    _ => (false, s),
                };
                let (v, rest) = digits(rest, 1, *max)?;
                f.year = Some(if neg { -v } else { v } as i32);
                rest
            }
            Token::TwoDigitYear { strict } => {
                let (min, max) = if *strict { (2, 2) } else { (1, 9) };
                let len = s.bytes().take(max).take_while(u8::is_ascii_digit).count();
                let (v, rest) = digits(s, min, max)?;
                f.year = Some(if len == 2 {
                    let base = self.pivot_year - 50;
                    let mut y = base - base.rem_euclid(100) + v as i32;
                    if y < base {
                        y += 100;
                    }
                    y
                } else {
                    v as i32
                });
                rest
            }
            Token::Month => set(&mut f.month, s, 2)?,
            Token::Day => set(&mut f.day, s, 2)?,
            Token::Hour => set(&mut f.hour, s, 2)?,
            Token::ClockHour => {
                let rest = set(&mut f.hour, s, 2)?;
                if f.hour == Some(24) {
                    f.hour = Some(0);
                }
                rest
            }
            Token::HalfHour12 | Token::HalfHour0 => {
                let rest = set(&mut f.half_hour, s, 2)?;
                f.half_hour = f.half_hour.map(|h| h % 12);
                rest
            }
            Token::Minute => set(&mut f.minute, s, 2)?,
            Token::Second => set(&mut f.second, s, 2)?,
            Token::Fraction => {
                let len = s.bytes().take(9).take_while(u8::is_ascii_digit).count();
                if len == 0 {
                    return Err(format!("expected a fraction of second at `{s}`"));
                }
                let ms: String = s[..len].chars().chain("00".chars()).take(3).collect();
                f.milli = ms.parse().ok();
                &s[len..]
            }
            Token::MonthName => {
                let (i, rest) = name(s, &MONTHS)?;
                f.month = Some(i as i64 + 1);
                rest
            }
            Token::DayName => name(s, &DAYS)?.1,
            Token::HalfDay => {
                let head = s.get(..2).unwrap_or("");
                f.pm = Some(if head.eq_ignore_ascii_case("pm") {
                    true
                } else if head.eq_ignore_ascii_case("am") {
                    false
                } else {
                    return Err(format!("expected AM or PM at `{s}`"));
                });
                &s[2..]
            }
            Token::Offset => {
                let (secs, rest) = offset(s)?;
                f.offset = Some(secs);
                rest
            }
        })
    }
}

#[derive(Default)]
struct Fields {
    year: Option<i32>,
    month: Option<i64>,
    day: Option<i64>,
    hour: Option<i64>,
    half_hour: Option<i64>,
    pm: Option<bool>,
    minute: Option<i64>,
    second: Option<i64>,
    milli: Option<i64>,
    offset: Option<i32>,
}

impl Fields {
    fn millis(&self, text: &str) -> Result<i64, String> {
        let hour = match (self.half_hour, self.hour) {
            (Some(h), _) => h + if self.pm == Some(true) { 12 } else { 0 },
            (None, Some(h)) => h,
            (None, None) => {
                if self.pm == Some(true) {
                    12
                } else {
                    0
                }
            }
        };
        let bad = || format!("`{text}` is not a valid date or time");
        let date = NaiveDate::from_ymd_opt(
            self.year.unwrap_or(1970),
            u32::try_from(self.month.unwrap_or(1)).map_err(|_| bad())?,
            u32::try_from(self.day.unwrap_or(1)).map_err(|_| bad())?,
        )
        .ok_or_else(bad)?;
        let u = |v: Option<i64>| u32::try_from(v.unwrap_or(0)).map_err(|_| bad());
        let dt = date
            .and_hms_milli_opt(
                u(Some(hour))?,
                u(self.minute)?,
                u(self.second)?,
                u(self.milli)?,
            )
            .ok_or_else(bad)?;
        let instant = match self.offset {
            Some(secs) => FixedOffset::east_opt(secs)
                .ok_or_else(bad)?
                .from_local_datetime(&dt)
                .single()
                .map(|t| t.timestamp_millis()),
            None => Local
                .from_local_datetime(&dt)
                .earliest()
                .map(|t| t.timestamp_millis()),
        };
        instant.ok_or_else(|| format!("`{text}` does not exist in the local time zone"))
    }
}

/// Reads `min..=max` ASCII digits.
fn digits(s: &str, min: usize, max: usize) -> Result<(i64, &str), String> {
    let len = s.bytes().take(max).take_while(u8::is_ascii_digit).count();
    if len < min {
        return Err(format!("expected a number at `{s}`"));
    }
    let v = s[..len]
        .parse::<i64>()
        .map_err(|_| format!("number too large at `{s}`"))?;
    Ok((v, &s[len..]))
}

fn set<'s>(field: &mut Option<i64>, s: &'s str, max: usize) -> Result<&'s str, String> {
    let (v, rest) = digits(s, 1, max)?;
    *field = Some(v);
    Ok(rest)
}

/// Matches a long or three-letter English name, case-insensitive.
fn name<'s>(s: &'s str, names: &[&str]) -> Result<(usize, &'s str), String> {
    for (i, n) in names.iter().enumerate() {
        for cand in [*n, &n[..3]] {
            if let Some(head) = s.get(..cand.len()) {
                if head.eq_ignore_ascii_case(cand) {
                    return Ok((i, &s[cand.len()..]));
                }
            }
        }
    }
    Err(format!("expected a month or day name at `{s}`"))
}

/// `Z`, `+HH`, `+HHmm` or `+HH:mm` → seconds east of UTC.
fn offset(s: &str) -> Result<(i32, &str), String> {
    let sign = match s.as_bytes().first() {
        Some(b'Z' | b'z') => return Ok((0, &s[1..])),
        Some(b'+') => 1,
        Some(b'-') => -1,
        _ => return Err(format!("expected an offset at `{s}`")),
    };
    let (h, mut rest) = digits(&s[1..], 2, 2)?;
    let mut m = 0;
    let after_colon = rest.strip_prefix(':').unwrap_or(rest);
    if after_colon
        .bytes()
        .take(2)
        .filter(u8::is_ascii_digit)
        .count()
        == 2
    {
        let (v, r) = digits(after_colon, 2, 2)?;
        m = v;
        rest = r;
    }
    if h > 23 || m > 59 {
        return Err(format!("offset out of range at `{s}`"));
    }
    Ok((sign * (h * 3600 + m * 60) as i32, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(p: &str, s: &str) -> i64 {
        JodaPattern::new(p)
            .expect("pattern")
            .parse_millis(s)
            .expect("parse")
    }

    #[test]
    fn common_patterns_parse_to_epoch_millis() {
        assert_eq!(
            utc("yyyy-MM-dd HH:mm:ss.SSS Z", "2012-10-17 14:34:44.123 +0000"),
            1_350_484_484_123
        );
        assert_eq!(
            utc("yyyy-MM-dd'T'HH:mm:ssZZ", "2012-10-17T16:34:44+02:00"),
            1_350_484_484_000
        );
        assert_eq!(
            utc("dd/MMM/yyyy:HH:mm:ss Z", "17/Oct/2012:14:34:44 -0000"),
            1_350_484_484_000
        );
        assert_eq!(
            utc(
                "EEE, d MMMM yyyy hh:mm a Z",
                "Wed, 17 october 2012 02:34 PM Z"
            ),
            1_350_484_440_000
        );
        assert_eq!(
            utc("yyyyMMddHHmmssZ", "20121017143444+0000"),
            1_350_484_484_000
        );
        assert_eq!(utc("ss.SZ", "01.5Z"), 1_500);
    }

    #[test]
    fn two_digit_years_pivot_around_thirty_years_ago() {
        let p = JodaPattern::new("yy Z").expect("pattern");
        let this_year = Local::now().year();
        let y = |s: &str| {
            let ms = p.parse_millis(s).expect("parse");
            chrono::DateTime::from_timestamp_millis(ms).map(|t| t.year())
        };
        assert_eq!(y("00 Z"), Some(2000));
        let ninety = if 1990 >= this_year - 80 { 1990 } else { 2090 };
        assert_eq!(y("90 Z"), Some(ninety));
        assert_eq!(y("1850 Z"), Some(1850));
    }

    #[test]
    fn patterns_without_offset_use_local_time() {
        let p = JodaPattern::new("yyyy-MM-dd HH:mm").expect("pattern");
        let want = Local
            .with_ymd_and_hms(2020, 2, 29, 23, 5, 0)
            .earliest()
            .map(|t| t.timestamp_millis());
        assert_eq!(p.parse_millis("2020-02-29 23:05").ok(), want);
    }

    #[test]
    fn bad_input_and_unsupported_letters_are_errors() {
        let p = JodaPattern::new("yyyy-MM-dd Z").expect("pattern");
        assert!(p.parse_millis("2012-13-01 Z").is_err());
        assert!(p.parse_millis("2012-02-30 Z").is_err());
        assert!(p.parse_millis("2012-02-03 Z trailing").is_err());
        assert!(p.parse_millis("x").is_err());
        assert!(JodaPattern::new("yyyy-DDD").is_err());
        assert!(JodaPattern::new("HH:mm z").is_err());
        assert!(JodaPattern::new("ZZZ").is_err());
        assert!(JodaPattern::new("'open").is_err());
    }
}
