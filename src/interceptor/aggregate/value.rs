//! Numbers of the `aggregate` interceptor: parsing a value from a header, the body or a JSON
//! field, and the per-group accumulator that turns values into a count, sum, average, minimum
//! or maximum.
//!
//! Integers (an optional sign and decimal digits fitting `i64`) stay integers: their sum is
//! kept exactly in an `i128`, and min/max print them as written. Any other finite decimal
//! (`2.5`, `1e3`, `.5`) is an `f64`; once a window's group holds one, its sum is
//! `f64` (integer part converted once at the end, so exact up to 2^53). `NaN`, infinities,
//! empty or non-numeric text are not values.

use std::cmp::Ordering;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::Function;

/// One numeric value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Num {
    /// A whole number written without a fraction or exponent.
    Int(i64),
    /// Any other finite number.
    Float(f64),
}

impl Num {
    /// Parses decimal text (surrounding whitespace ignored); `None` when it is not a finite
    /// number.
    pub fn parse(text: &str) -> Option<Num> {
        let t = text.trim();
        if let Ok(i) = t.parse::<i64>() {
            return Some(Num::Int(i));
        }
        // Rust's float grammar also accepts `inf`/`NaN`: those are not values here.
        match t.parse::<f64>() {
            Ok(f) if f.is_finite() => Some(Num::Float(f)),
            _ => None,
        }
    }

    fn as_f64(self) -> f64 {
        match self {
            Num::Int(i) => i as f64,
            Num::Float(f) => f,
        }
    }

    /// Total order over finite values (integers compared exactly with each other).
    fn compare(self, other: Num) -> Ordering {
        match (self, other) {
            (Num::Int(a), Num::Int(b)) => a.cmp(&b),
            (a, b) => a.as_f64().total_cmp(&b.as_f64()),
        }
    }
}

impl fmt::Display for Num {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Num::Int(i) => write!(f, "{i}"),
            Num::Float(x) => write!(f, "{x}"),
        }
    }
}

/// Why an event carries no usable value.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ValueError {
    /// The value header is absent.
    #[error("header `{0}` is missing")]
    MissingHeader(String),
    /// The value header or body text is not a number.
    #[error("{place} `{text}` is not a number")]
    NotANumber {
        /// `header \`v\`` or `body`.
        place: String,
        /// The text, cut to 64 characters.
        text: String,
    },
    /// The body is not a JSON object.
    #[error("body is not a JSON object ({0})")]
    NotJsonObject(String),
    /// The JSON object has no such top-level field.
    #[error("JSON field `{0}` is missing")]
    MissingField(String),
    /// The JSON field holds something other than a number or numeric string.
    #[error("JSON field `{field}` is {what}, not a number")]
    FieldNotNumber {
        /// The field name.
        field: String,
        /// What it holds (`a boolean`, `null`, `the string "abc"`, ...).
        what: String,
    },
}

/// Text cut to 64 characters for an error reason.
pub fn excerpt(text: &str) -> String {
    text.chars().take(64).collect()
}

/// Reads the top-level `field` of a JSON object `body` as a number (a JSON number, or a string
/// holding one). Other fields are skipped without being built.
pub fn json_field(body: &[u8], field: &str) -> Result<Num, ValueError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let found = FieldSeed(field)
        .deserialize(&mut de)
        .and_then(|found| de.end().map(|()| found))
        .map_err(|e| ValueError::NotJsonObject(e.to_string()))?;
    match found {
        None => Err(ValueError::MissingField(field.to_string())),
        Some(Scalar::Num(n)) => Ok(n),
        Some(Scalar::Other(what)) => Err(ValueError::FieldNotNumber {
            field: field.to_string(),
            what,
        }),
    }
}

/// What a JSON field holds.
enum Scalar {
    Num(Num),
    Other(String),
}

struct FieldSeed<'f>(&'f str);

impl<'de> DeserializeSeed<'de> for FieldSeed<'_> {
    type Value = Option<Scalar>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for FieldSeed<'_> {
    type Value = Option<Scalar>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found = None;
        // A repeated field: the last one wins, as in most JSON readers.
        while let Some(is_field) = map.next_key_seed(KeyIs(self.0))? {
            if is_field {
                found = Some(map.next_value::<ScalarOf>()?.0);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }
}

/// Compares a key with the wanted field name without allocating.
struct KeyIs<'f>(&'f str);

impl<'de> DeserializeSeed<'de> for KeyIs<'_> {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeyIs<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a field name")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<bool, E> {
        Ok(v == self.0)
    }
}

struct ScalarOf(Scalar);

impl<'de> de::Deserialize<'de> for ScalarOf {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ScalarVisitor)
    }
}

struct ScalarVisitor;

impl<'de> Visitor<'de> for ScalarVisitor {
    type Value = ScalarOf;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<ScalarOf, E> {
        Ok(ScalarOf(Scalar::Num(Num::Int(v))))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<ScalarOf, E> {
        Ok(ScalarOf(Scalar::Num(match i64::try_from(v) {
            Ok(i) => Num::Int(i),
            Err(_) => Num::Float(v as f64),
        })))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<ScalarOf, E> {
        Ok(ScalarOf(if v.is_finite() {
            Scalar::Num(Num::Float(v))
        } else {
            Scalar::Other("a number out of range".into())
        }))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<ScalarOf, E> {
        Ok(ScalarOf(match Num::parse(v) {
            Some(n) => Scalar::Num(n),
            None => Scalar::Other(format!("the string \"{}\"", excerpt(v))),
        }))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<ScalarOf, E> {
        Ok(ScalarOf(Scalar::Other("a boolean".into())))
    }

    fn visit_unit<E: de::Error>(self) -> Result<ScalarOf, E> {
        Ok(ScalarOf(Scalar::Other("null".into())))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ScalarOf, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(ScalarOf(Scalar::Other("an array".into())))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ScalarOf, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(ScalarOf(Scalar::Other("an object".into())))
    }
}

/// The running aggregate of one group in one window.
#[derive(Debug, Default, Clone)]
pub struct Acc {
    count: u64,
    int_sum: i128,
    float_sum: f64,
    any_float: bool,
    min: Option<Num>,
    max: Option<Num>,
}

impl Acc {
    /// Folds one event; `value` is `None` for `count`, which reads no value.
    pub fn add(&mut self, value: Option<Num>) {
        self.count += 1;
        let Some(v) = value else {
            return;
        };
        match v {
            Num::Int(i) => self.int_sum = self.int_sum.saturating_add(i128::from(i)),
            Num::Float(f) => {
                self.float_sum += f;
                self.any_float = true;
            }
        }
        if self.min.is_none_or(|m| v.compare(m) == Ordering::Less) {
            self.min = Some(v);
        }
        if self.max.is_none_or(|m| v.compare(m) == Ordering::Greater) {
            self.max = Some(v);
        }
    }

    /// How many events were folded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The function's result as text (see the module doc for the number formats).
    pub fn result(&self, function: Function) -> String {
        match function {
            Function::Count => self.count.to_string(),
            Function::Sum => {
                if self.any_float {
                    (self.int_sum as f64 + self.float_sum).to_string()
                } else {
                    self.int_sum.to_string()
                }
            }
            Function::Avg => {
                let total = self.int_sum as f64 + self.float_sum;
                (total / self.count.max(1) as f64).to_string()
            }
            Function::Min => self.min.map(|n| n.to_string()).unwrap_or_default(),
            Function::Max => self.max.map(|n| n.to_string()).unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_stay_integers_and_other_numbers_are_floats() {
        assert_eq!(Num::parse(" 42 "), Some(Num::Int(42)));
        assert_eq!(Num::parse("-7"), Some(Num::Int(-7)));
        assert_eq!(Num::parse("+3"), Some(Num::Int(3)));
        assert_eq!(Num::parse("2.5"), Some(Num::Float(2.5)));
        assert_eq!(Num::parse("1e3"), Some(Num::Float(1000.0)));
        assert_eq!(Num::parse("99999999999999999999"), Some(Num::Float(1e20)));
        for bad in ["", "abc", "NaN", "inf", "-infinity", "1,5", "0x10", "1e999"] {
            assert_eq!(Num::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn integer_sums_are_exact_beyond_two_to_the_53() {
        let mut acc = Acc::default();
        acc.add(Some(Num::Int(i64::MAX)));
        acc.add(Some(Num::Int(i64::MAX)));
        acc.add(Some(Num::Int(1)));
        assert_eq!(acc.result(Function::Sum), "18446744073709551615");
        assert_eq!(acc.result(Function::Count), "3");
        assert_eq!(acc.result(Function::Min), "1");
        assert_eq!(acc.result(Function::Max), i64::MAX.to_string());
    }

    #[test]
    fn mixed_values_sum_as_floats_and_min_max_keep_their_spelling() {
        let mut acc = Acc::default();
        for v in ["3", "0.5", "-2", "10"] {
            acc.add(Num::parse(v));
        }
        assert_eq!(acc.result(Function::Sum), "11.5");
        assert_eq!(acc.result(Function::Avg), "2.875");
        assert_eq!(acc.result(Function::Min), "-2");
        assert_eq!(acc.result(Function::Max), "10");
    }

    #[test]
    fn json_fields_are_read_from_the_top_level_only() {
        let body = br#"{"a":{"v":1},"list":[1,2],"v":12,"s":"7.5","b":true,"n":null}"#;
        assert_eq!(json_field(body, "v"), Ok(Num::Int(12)));
        assert_eq!(json_field(body, "s"), Ok(Num::Float(7.5)));
        assert_eq!(
            json_field(body, "b"),
            Err(ValueError::FieldNotNumber {
                field: "b".into(),
                what: "a boolean".into()
            })
        );
        assert!(matches!(
            json_field(body, "n"),
            Err(ValueError::FieldNotNumber { .. })
        ));
        assert!(matches!(
            json_field(body, "a"),
            Err(ValueError::FieldNotNumber { .. })
        ));
        assert_eq!(
            json_field(body, "x"),
            Err(ValueError::MissingField("x".into()))
        );
        assert_eq!(
            json_field(br#"{"v\u0031":5}"#, "v1"),
            Ok(Num::Int(5)),
            "escaped keys"
        );
        assert_eq!(
            json_field(br#"{"v":18446744073709551615}"#, "v"),
            Ok(Num::Float(1.8446744073709552e19))
        );
        for bad in [&b"[1]"[..], b"12", b"{\"v\":1", b"{\"v\":1} x", b""] {
            assert!(
                matches!(json_field(bad, "v"), Err(ValueError::NotJsonObject(_))),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}
