//! Escapes in `hdfs.path` and `hdfs.filePrefix`: Flume's `BucketPath.escapeString`.
//!
//! A [`PathTemplate`] is parsed once at configuration time and rendered per event into a
//! caller's buffer, with no regex and no allocation beyond what it appends.
//!
//! # Escapes
//!
//! The outputs shown are for the timestamp 2012-03-04 05:06:07.089 UTC (`1330837567089`)
//! rendered in `UTC`. Names are English, as a JVM in an English locale prints them.
//!
//! | escape | output | meaning |
//! |---|---|---|
//! | `%{name}` | value | the header `name` (`[A-Za-z0-9_.-]+`); an absent header gives `""` |
//! | `%[localhost]` | host name | [`HostNames::host_name`]; the name in brackets ignores case |
//! | `%[IP]` | address | [`HostNames::ip`] |
//! | `%[FQDN]` | canonical name | [`HostNames::canonical_name`] |
//! | `%t` | `1330837567089` | the `timestamp` header exactly as written, **not** rounded |
//! | `%s` | `1330837567` | seconds since the epoch of the (rounded) timestamp, truncated toward 0 |
//! | `%a` / `%A` | `Sun` / `Sunday` | weekday name, short / full |
//! | `%b` / `%B` | `Mar` / `March` | month name, short / full |
//! | `%c` | `Sun Mar 4 05:06:07 2012` | date and time (`EEE MMM d HH:mm:ss yyyy`) |
//! | `%d` / `%e` | `04` / `4` | day of month, two digits / one or two |
//! | `%D` | `03/04/12` | `MM/dd/yy` (its slashes make directories) |
//! | `%H` / `%k` | `05` / `5` | hour 0–23, two digits / one or two |
//! | `%I` / `%l` | `05` / `5` | hour 1–12, two digits / one or two |
//! | `%j` | `064` | day of year, three digits |
//! | `%m` / `%n` | `03` / `3` | month, two digits / one or two |
//! | `%M` / `%S` | `06` / `07` | minute / second, two digits |
//! | `%p` | `AM` | `AM` or `PM` |
//! | `%y` / `%Y` | `12` / `2012` | year, last two digits / at least four |
//! | `%z` | `+0000` | offset from UTC as `±HHMM` |
//! | `%%` | `%` | a percent sign |
//! | `%x`, any other `x` in `[A-Za-z0-9_]` | `""` | unknown letters render as nothing |
//!
//! Anything else is kept literally: a `%` followed by another character or at the end, and a
//! `%{` or `%[` without a valid name and closing bracket (`%{a b}`, `%{x`, `%{}`). The only
//! template error is a bracketed name other than those three, which Flume rejects on every
//! event and Flumen rejects at parse time.
//!
//! # Timestamp
//!
//! Every single-character escape, `%%` and the unknown ones included, needs the event's time,
//! as in Flume: the `timestamp` header, epoch milliseconds in decimal (an optional sign, ASCII
//! digits, nothing else), or [`RenderContext::now_millis`] when
//! [`RenderContext::use_local_timestamp`] is set (then `%t` prints that number). A missing
//! header is [`RenderError::MissingTimestamp`], an unparsable one
//! [`RenderError::BadTimestamp`]. Header and host escapes never need it.
//!
//! # Rounding (`hdfs.round`, `hdfs.roundValue`, `hdfs.roundUnit`)
//!
//! With a [`Rounding`] of `value` `unit`s, the timestamp is read as wall-clock time in the
//! configured zone, that unit's field (second, minute or hour of day) is lowered to a multiple
//! of `value` (`field - field % value`, so 7 minutes at :59 gives :56), the smaller fields are
//! zeroed (milliseconds included), and the wall time is turned back into an instant. Hour
//! rounding thus follows the zone's clock: one hour in `Asia/Kolkata` lands on :30 UTC.
//! Wall times a DST change makes ambiguous take the later instant (standard time) and skipped
//! ones the offset before the change, as `java.util.GregorianCalendar` does; so in the
//! repeated hour even a rounded time can be an hour *later* than the event. The value must be
//! 1–60 for seconds and minutes and 1–24 for hours. The timestamp must be positive, else
//! [`RenderError::TimestampNotPositive`]. `%t` is never rounded; every other time escape is.
//!
//! # Time zone (`hdfs.timeZone`)
//!
//! [`Zone::parse`] takes a Java `TimeZone` ID: an IANA name (`Europe/Paris`, `UTC`, `GMT`,
//! `Etc/GMT+8`, which is UTC-8 as in POSIX), one of Java's old three-letter IDs (`PST`, `IST`,
//! `CST` = America/Chicago, ...), or a custom `GMT` offset: `GMT+8`, `GMT+08`, `GMT-05:30`,
//! `GMT+0800`, `GMT+530`, `GMT+05:30:15` (hours 0–23, minutes and seconds 00–59). Flume turns
//! an unknown ID into GMT silently; [`Zone::parse`] refuses it, and the sink's config reports
//! it and uses GMT as Flume does. No zone is [`Zone::Local`], the
//! machine's zone. Dates before 1583 are proleptic Gregorian (Java prints them Julian).
//!
//! # Safety (a Flumen rule, not Flume's)
//!
//! A header value must not move the rendered path out of the configured root, so a
//! substituted value is refused with [`RenderError::UnsafeValue`] when it contains a NUL, starts
//! with `/`, or has a `/`-separated segment that is `.` or `..`. Other slashes are allowed and
//! make nested directories (`a/b`). On any error, `out` is left as it was.

use std::fmt::{self, Write};

use chrono::{DateTime, Datelike, FixedOffset, Local, MappedLocalTime, NaiveDateTime};
use chrono::{Offset, TimeZone, Timelike};
use chrono_tz::Tz;

/// A parsed `hdfs.path` or `hdfs.filePrefix`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathTemplate {
    parts: Vec<Part>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Part {
    Literal(Box<str>),
    Header(Box<str>),
    HostName,
    Ip,
    Fqdn,
    /// `%x`: the character after the `%` (ASCII word character or `%`).
    Short(u8),
}

/// The machine's names for `%[localhost]`, `%[IP]` and `%[FQDN]`, resolved by the caller.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostNames {
    /// `%[localhost]`: the host name (Java's `InetAddress.getLocalHost().getHostName()`).
    pub host_name: String,
    /// `%[IP]`: the host's address as text.
    pub ip: String,
    /// `%[FQDN]`: the canonical host name.
    pub canonical_name: String,
}

/// Everything besides the headers that rendering reads. Keep one per sink and set
/// [`now_millis`](Self::now_millis) before each render (Flume reads its clock once per call).
/// The default: local zone, no rounding, the `timestamp` header, empty host names.
#[derive(Clone, Debug, Default)]
pub struct RenderContext {
    /// The zone time escapes and rounding use (`hdfs.timeZone`).
    pub time_zone: Zone,
    /// `hdfs.round`: `None` when off.
    pub round: Option<Rounding>,
    /// `hdfs.useLocalTimeStamp`: use `now_millis` instead of the `timestamp` header.
    pub use_local_timestamp: bool,
    /// The current time in epoch milliseconds, read only with `use_local_timestamp`.
    pub now_millis: i64,
    /// Values of the `%[...]` escapes.
    pub host: HostNames,
}

/// A time zone as Java's `TimeZone.getTimeZone` understands the ID.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Zone {
    /// The machine's zone (`TimeZone.getDefault()`), used when `hdfs.timeZone` is unset.
    #[default]
    Local,
    /// A fixed offset, from a custom `GMT±hh[:mm]` ID.
    Fixed(FixedOffset),
    /// A zone of the IANA database.
    Named(Tz),
}

/// Java's three-letter IDs that are no IANA names (`EST`, `MST` and `HST` are).
#[rustfmt::skip]
const JAVA_SHORT_IDS: [(&str, &str); 25] = [
    ("ACT", "Australia/Darwin"), ("AET", "Australia/Sydney"),
    ("AGT", "America/Argentina/Buenos_Aires"), ("ART", "Africa/Cairo"),
    ("AST", "America/Anchorage"), ("BET", "America/Sao_Paulo"), ("BST", "Asia/Dhaka"),
    ("CAT", "Africa/Harare"), ("CNT", "America/St_Johns"), ("CST", "America/Chicago"),
    ("CTT", "Asia/Shanghai"), ("EAT", "Africa/Addis_Ababa"), ("ECT", "Europe/Paris"),
    ("IET", "America/Indiana/Indianapolis"), ("IST", "Asia/Kolkata"), ("JST", "Asia/Tokyo"),
    ("MIT", "Pacific/Apia"), ("NET", "Asia/Yerevan"), ("NST", "Pacific/Auckland"),
    ("PLT", "Asia/Karachi"), ("PNT", "America/Phoenix"), ("PRT", "America/Puerto_Rico"),
    ("PST", "America/Los_Angeles"), ("SST", "Pacific/Guadalcanal"), ("VST", "Asia/Ho_Chi_Minh"),
];

impl Zone {
    /// Parses a Java time-zone ID (see the module doc); IDs are case-sensitive, as in Java.
    pub fn parse(id: &str) -> Result<Zone, String> {
        let name = JAVA_SHORT_IDS
            .iter()
            .find(|(short, _)| *short == id)
            .map_or(id, |(_, long)| long);
        if let Ok(tz) = name.parse::<Tz>() {
            return Ok(Zone::Named(tz));
        }
        id.strip_prefix("GMT")
            .and_then(custom_offset)
            .map(Zone::Fixed)
            .ok_or_else(|| {
                format!(
                    "unknown time zone `{id}`: expected an IANA name such as `Europe/Paris`, \
                     or `GMT+8`, `GMT-05:30` (Flume would silently use GMT)"
                )
            })
    }

    /// The offset from UTC, in seconds, at the instant `utc`.
    fn offset_at(&self, utc: &NaiveDateTime) -> i32 {
        match self {
            Zone::Local => Local.offset_from_utc_datetime(utc).local_minus_utc(),
            Zone::Fixed(o) => o.local_minus_utc(),
            Zone::Named(tz) => tz.offset_from_utc_datetime(utc).fix().local_minus_utc(),
        }
    }

    /// The offsets (seconds) that make the wall time `wall` a real instant.
    fn offsets_of_wall(&self, wall: &NaiveDateTime) -> MappedLocalTime<i32> {
        match self {
            Zone::Local => Local
                .offset_from_local_datetime(wall)
                .map(|o| o.local_minus_utc()),
            Zone::Fixed(o) => MappedLocalTime::Single(o.local_minus_utc()),
            Zone::Named(tz) => tz
                .offset_from_local_datetime(wall)
                .map(|o| o.fix().local_minus_utc()),
        }
    }

    /// The wall time and offset (seconds) of the instant `millis`; `None` out of range.
    fn wall_at(&self, millis: i64) -> Option<(NaiveDateTime, i32)> {
        let utc = DateTime::from_timestamp_millis(millis)?.naive_utc();
        let offset = self.offset_at(&utc);
        let wall = utc.checked_add_signed(chrono::TimeDelta::seconds(offset.into()))?;
        Some((wall, offset))
    }

    /// The instant (epoch millis) of the wall time `wall`, resolved as `GregorianCalendar`
    /// does: an ambiguous time takes the later instant, a skipped one the earlier offset.
    fn instant_of_wall(&self, wall: &NaiveDateTime) -> Option<i64> {
        let wall_ms = wall.and_utc().timestamp_millis();
        let at =
            |ms: i64| DateTime::from_timestamp_millis(ms).map(|t| self.offset_at(&t.naive_utc()));
        let offset = match self.offsets_of_wall(wall) {
            MappedLocalTime::Single(o) => o,
            MappedLocalTime::Ambiguous(a, b) => a.min(b),
            MappedLocalTime::None => {
                // In a gap, one of these is the offset before the change and one after; the
                // clock jumped forward, so the one before is the smaller.
                let first = at(wall_ms)?;
                let second = at(wall_ms - i64::from(first) * 1000)?;
                first.min(second)
            }
        };
        Some(wall_ms - i64::from(offset) * 1000)
    }
}

/// The part of a custom ID after `GMT`: `±H`, `±HH`, `±HMM`, `±HHMM`, `±H[H]:MM[:SS]`.
fn custom_offset(rest: &str) -> Option<FixedOffset> {
    let (sign, digits) = match rest.as_bytes().first()? {
        b'+' => (1, &rest[1..]),
        b'-' => (-1, &rest[1..]),
        _ => return None,
    };
    let number = |s: &str, lens: std::ops::RangeInclusive<usize>| {
        let ok = lens.contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit());
        ok.then(|| s.parse::<i32>().ok()).flatten()
    };
    let mut fields = digits.split(':');
    let first = fields.next()?;
    let (h, m, s) = if first.len() > 2 {
        let n = number(first, 3..=4)?;
        (n / 100, n % 100, 0)
    } else {
        let h = number(first, 1..=2)?;
        let m = fields.next().map_or(Some(0), |f| number(f, 2..=2))?;
        let s = fields.next().map_or(Some(0), |f| number(f, 2..=2))?;
        (h, m, s)
    };
    if fields.next().is_some() || h > 23 || m > 59 || s > 59 {
        return None;
    }
    FixedOffset::east_opt(sign * (h * 3600 + m * 60 + s))
}

/// The field `hdfs.roundUnit` rounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RoundUnit {
    /// `second`
    Second,
    /// `minute`
    Minute,
    /// `hour` (hour of day)
    Hour,
}

impl RoundUnit {
    /// Parses `second`, `minute` or `hour`, ignoring case. Flume logs a warning for anything
    /// else and turns rounding off; the caller decides.
    pub fn parse(s: &str) -> Result<RoundUnit, String> {
        match s.to_ascii_lowercase().as_str() {
            "second" => Ok(RoundUnit::Second),
            "minute" => Ok(RoundUnit::Minute),
            "hour" => Ok(RoundUnit::Hour),
            _ => Err(format!("round unit `{s}` is not second, minute or hour")),
        }
    }
}

/// Rounding down to a multiple of `value` `unit`s (`hdfs.roundValue`, `hdfs.roundUnit`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rounding {
    unit: RoundUnit,
    value: u32,
}

impl Rounding {
    /// Checks `value` as Flume does: 1–60 for seconds and minutes, 1–24 for hours.
    pub fn new(unit: RoundUnit, value: i64) -> Result<Rounding, String> {
        let max = if unit == RoundUnit::Hour { 24 } else { 60 };
        match u32::try_from(value) {
            Ok(v) if (1..=max).contains(&v) => Ok(Rounding { unit, value: v }),
            _ => Err(format!("round value {value} must be > 0 and <= {max}")),
        }
    }

    /// `millis` rounded down in `zone`'s wall-clock time (see the module doc).
    fn apply(&self, millis: i64, zone: &Zone) -> Result<i64, RenderError> {
        if millis <= 0 {
            return Err(RenderError::TimestampNotPositive { millis });
        }
        let bad = || RenderError::BadTimestamp {
            value: millis.to_string(),
        };
        let (wall, _) = zone.wall_at(millis).ok_or_else(bad)?;
        let (h, m, s, v) = (wall.hour(), wall.minute(), wall.second(), self.value);
        let (h, m, s) = match self.unit {
            RoundUnit::Second => (h, m, s - s % v),
            RoundUnit::Minute => (h, m - m % v, 0),
            RoundUnit::Hour => (h - h % v, 0, 0),
        };
        let rounded = wall.date().and_hms_opt(h, m, s).ok_or_else(bad)?;
        zone.instant_of_wall(&rounded).ok_or_else(bad)
    }
}

/// A template that cannot be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TemplateError {
    /// `%[name]` with a name other than `localhost`, `IP` or `FQDN`.
    UnknownHostEscape {
        /// The name between the brackets.
        name: String,
    },
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TemplateError::UnknownHostEscape { name } => write!(
                f,
                "the escape `%[{name}]` is none of `%[localhost]`, `%[IP]`, `%[FQDN]`"
            ),
        }
    }
}

impl std::error::Error for TemplateError {}

/// Why an event's path could not be rendered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RenderError {
    /// A time escape needs the `timestamp` header and the event has none.
    MissingTimestamp,
    /// The timestamp is not a decimal `i64`, or is outside the dates that can be formatted.
    BadTimestamp {
        /// The timestamp as found.
        value: String,
    },
    /// Rounding needs a timestamp after the epoch, as in Flume.
    TimestampNotPositive {
        /// The timestamp.
        millis: i64,
    },
    /// A header value that would leave the configured directory (see the module doc).
    UnsafeValue {
        /// The header name.
        header: String,
        /// Its value.
        value: String,
        /// What is wrong with it.
        why: &'static str,
    },
}

impl fmt::Display for RenderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RenderError::MissingTimestamp => f.write_str(
                "the path has time escapes but the event has no `timestamp` header \
                 (add a timestamp interceptor or set hdfs.useLocalTimeStamp)",
            ),
            RenderError::BadTimestamp { value } => write!(
                f,
                "the `timestamp` header {value:?} is not a usable time in epoch milliseconds"
            ),
            RenderError::TimestampNotPositive { millis } => {
                write!(f, "cannot round the timestamp {millis}: it is not positive")
            }
            RenderError::UnsafeValue { header, value, why } => {
                write!(
                    f,
                    "header `{header}` = {value:?} is unsafe in a path: {why}"
                )
            }
        }
    }
}

impl std::error::Error for RenderError {}

/// The event's time, worked out once per render.
struct Stamp<'h> {
    /// The `timestamp` header as written; `None` with the local clock.
    raw: Option<&'h str>,
    /// The (rounded) instant, epoch millis.
    millis: i64,
    wall: NaiveDateTime,
    offset: i32,
}

#[rustfmt::skip]
const WEEKDAYS: [&str; 7] =
    ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];
#[rustfmt::skip]
const MONTHS: [&str; 12] = ["January", "February", "March", "April", "May", "June", "July",
    "August", "September", "October", "November", "December"];

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

fn is_header_char(b: u8) -> bool {
    is_word(b) || b == b'.' || b == b'-'
}

/// The index of `close` after a non-empty run of `ok` bytes starting at `from`.
fn bracketed(b: &[u8], from: usize, ok: fn(u8) -> bool, close: u8) -> Option<usize> {
    let end = from + b.get(from..)?.iter().take_while(|&&c| ok(c)).count();
    (end > from && b.get(end) == Some(&close)).then_some(end)
}

impl PathTemplate {
    /// Parses a template; fails only on an unknown `%[name]` (see the module doc).
    pub fn parse(template: &str) -> Result<PathTemplate, TemplateError> {
        let b = template.as_bytes();
        let (mut parts, mut literal_from, mut i) = (Vec::new(), 0, 0);
        while i < b.len() {
            if b[i] != b'%' {
                i += 1;
                continue;
            }
            let found = match b.get(i + 1) {
                Some(&c) if c == b'%' || is_word(c) => Some((Part::Short(c), i + 2)),
                Some(b'{') => bracketed(b, i + 2, is_header_char, b'}')
                    .map(|end| (Part::Header(template[i + 2..end].into()), end + 1)),
                Some(b'[') => match bracketed(b, i + 2, is_word, b']') {
                    Some(end) => Some((host(&template[i + 2..end])?, end + 1)),
                    None => None,
                },
                _ => None,
            };
            let Some((part, next)) = found else {
                i += 1;
                continue;
            };
            if literal_from < i {
                parts.push(Part::Literal(template[literal_from..i].into()));
            }
            parts.push(part);
            (i, literal_from) = (next, next);
        }
        if literal_from < b.len() {
            parts.push(Part::Literal(template[literal_from..].into()));
        }
        Ok(PathTemplate { parts })
    }

    /// Whether rendering reads the event's time: any `%x` escape, `%%` included.
    pub fn needs_timestamp(&self) -> bool {
        self.parts.iter().any(|p| matches!(p, Part::Short(_)))
    }

    /// Whether the template has no escapes: it renders to itself for every event.
    pub fn is_constant(&self) -> bool {
        self.parts.iter().all(|p| matches!(p, Part::Literal(_)))
    }

    /// Appends the template rendered for one event to `out`. `header` looks a header up by
    /// name (for example `|k| headers.get(k).map(|v| v.as_str())`). On error `out` is left as
    /// it was.
    pub fn render<'h>(
        &self,
        header: impl Fn(&str) -> Option<&'h str>,
        ctx: &RenderContext,
        out: &mut String,
    ) -> Result<(), RenderError> {
        let start = out.len();
        let result = self.render_parts(&header, ctx, out);
        if result.is_err() {
            out.truncate(start);
        }
        result
    }

    fn render_parts<'h>(
        &self,
        header: &impl Fn(&str) -> Option<&'h str>,
        ctx: &RenderContext,
        out: &mut String,
    ) -> Result<(), RenderError> {
        let mut stamp = None;
        for part in &self.parts {
            match part {
                Part::Literal(text) => out.push_str(text),
                Part::Header(name) => {
                    if let Some(value) = header(name) {
                        check_safe(name, value)?;
                        out.push_str(value);
                    }
                }
                Part::HostName => out.push_str(&ctx.host.host_name),
                Part::Ip => out.push_str(&ctx.host.ip),
                Part::Fqdn => out.push_str(&ctx.host.canonical_name),
                Part::Short(c) => {
                    let st = match &stamp {
                        Some(st) => st,
                        None => stamp.insert(event_time(header, ctx)?),
                    };
                    // Writing to a `String` cannot fail.
                    let _ = short(*c, st, ctx, out);
                }
            }
        }
        Ok(())
    }
}

fn host(name: &str) -> Result<Part, TemplateError> {
    match name.to_ascii_lowercase().as_str() {
        "localhost" => Ok(Part::HostName),
        "ip" => Ok(Part::Ip),
        "fqdn" => Ok(Part::Fqdn),
        _ => Err(TemplateError::UnknownHostEscape { name: name.into() }),
    }
}

fn check_safe(name: &str, value: &str) -> Result<(), RenderError> {
    let why = if value.contains('\0') {
        "it contains a NUL character"
    } else if value.starts_with('/') {
        "it starts with `/`"
    } else if value.split('/').any(|s| s == "." || s == "..") {
        "it has a `.` or `..` path segment"
    } else {
        return Ok(());
    };
    Err(RenderError::UnsafeValue {
        header: name.into(),
        value: value.into(),
        why,
    })
}

fn event_time<'h>(
    header: &impl Fn(&str) -> Option<&'h str>,
    ctx: &RenderContext,
) -> Result<Stamp<'h>, RenderError> {
    let (raw, millis) = if ctx.use_local_timestamp {
        (None, ctx.now_millis)
    } else {
        let value = header("timestamp").ok_or(RenderError::MissingTimestamp)?;
        let millis = value
            .parse::<i64>()
            .map_err(|_| RenderError::BadTimestamp {
                value: value.into(),
            })?;
        (Some(value), millis)
    };
    let millis = match &ctx.round {
        Some(round) => round.apply(millis, &ctx.time_zone)?,
        None => millis,
    };
    let bad = || RenderError::BadTimestamp {
        value: raw.map_or_else(|| millis.to_string(), str::to_string),
    };
    let (wall, offset) = ctx.time_zone.wall_at(millis).ok_or_else(bad)?;
    Ok(Stamp {
        raw,
        millis,
        wall,
        offset,
    })
}

/// Appends what the escape `%` followed by `c` gives (see the table in the module doc).
fn short(c: u8, st: &Stamp<'_>, ctx: &RenderContext, out: &mut String) -> fmt::Result {
    let w = &st.wall;
    let weekday = WEEKDAYS[w.weekday().num_days_from_sunday() as usize];
    let month = MONTHS[w.month0() as usize];
    let year = w.year_ce().1; // Java prints the year of the era: 1 BC is year 1.
    let hour12 = w.hour12().1;
    match c {
        b'%' => out.push('%'),
        b'a' => out.push_str(&weekday[..3]),
        b'A' => out.push_str(weekday),
        b'b' => out.push_str(&month[..3]),
        b'B' => out.push_str(month),
        b'c' => write!(
            out,
            "{} {} {} {:02}:{:02}:{:02} {year:04}",
            &weekday[..3],
            &month[..3],
            w.day(),
            w.hour(),
            w.minute(),
            w.second()
        )?,
        b'd' => write!(out, "{:02}", w.day())?,
        b'e' => write!(out, "{}", w.day())?,
        b'D' => write!(out, "{:02}/{:02}/{:02}", w.month(), w.day(), year % 100)?,
        b'H' => write!(out, "{:02}", w.hour())?,
        b'I' => write!(out, "{hour12:02}")?,
        b'j' => write!(out, "{:03}", w.ordinal())?,
        b'k' => write!(out, "{}", w.hour())?,
        b'l' => write!(out, "{hour12}")?,
        b'm' => write!(out, "{:02}", w.month())?,
        b'n' => write!(out, "{}", w.month())?,
        b'M' => write!(out, "{:02}", w.minute())?,
        b'p' => out.push_str(if w.hour12().0 { "PM" } else { "AM" }),
        b's' => write!(out, "{}", st.millis / 1000)?,
        b'S' => write!(out, "{:02}", w.second())?,
        b't' => match st.raw {
            Some(raw) => out.push_str(raw),
            None => write!(out, "{}", ctx.now_millis)?,
        },
        b'y' => write!(out, "{:02}", year % 100)?,
        b'Y' => write!(out, "{year:04}")?,
        b'z' => {
            let minutes = st.offset / 60;
            let sign = if minutes < 0 { '-' } else { '+' };
            let m = minutes.abs();
            write!(out, "{sign}{:02}{:02}", m / 60, m % 60)?
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
#[path = "escape_tests.rs"]
mod tests;
