//! `${...}` substitution in values, as Flume 1.11 does it before it looks at the agents.
//!
//! Flume (`MapResolver`) runs Apache Commons Text's `StringSubstitutor` (1.10) over the value of
//! every property of the merged files (keys are never substituted), with:
//!
//! - `${sys:NAME}` (`-D` properties, then the JVM's own: `user.home`, `user.name`, `user.dir`,
//!   `java.io.tmpdir`, `os.name`, `os.arch`, `file.separator`, `path.separator`,
//!   `line.separator`), `${env:NAME}`, `${date:PATTERN}` and `${java:...}` lookups; a prefix is
//!   matched case-insensitively. When a prefixed lookup finds nothing, or the prefix is unknown,
//!   the part after the first `:` is looked up as a bare name.
//! - a bare `${NAME}`: the value of property `NAME` of the same config; with
//!   `-DpropertiesImplementation=org.apache.flume.node.EnvVarResolverProperties`, the
//!   environment when no property has that name.
//! - `${NAME:-default}`, variables inside names (`${${sys:env}_BIND}`), substituted values
//!   substituted again, and `$${x}` for a literal `${x}`. Anything unresolved is left as written.
//!
//! Divergences, on purpose (each reported where it matters):
//! - Flume fills the property map while it substitutes, in `HashMap` order, so a bare `${NAME}`
//!   resolves only if `NAME` happened to be processed first. Flumen always resolves it (to the
//!   substituted value of `NAME`), which is what the author meant and what Flume's own tests
//!   expect.
//! - A reference cycle makes Commons Text throw and Flume then fails to load anything; Flumen
//!   leaves the variable unresolved and reports it.
//! - `${java:...}` describes a JVM; Flumen has none and leaves it unresolved, reported.
//!   `${date:...}` formats the current time in UTC (Java uses the local zone) and supports the
//!   numeric `SimpleDateFormat` letters `yMdHhmsS` and quoted text.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

/// The class name that turns on environment fallback for bare `${NAME}`.
pub const ENV_VAR_RESOLVER_CLASS: &str = "org.apache.flume.node.EnvVarResolverProperties";

/// Resolves `${...}` in values against one config's properties, `-D` properties and the
/// environment.
pub struct Substitutor<'a> {
    props: &'a BTreeMap<String, String>,
    system_properties: &'a BTreeMap<String, String>,
    env: &'a dyn Fn(&str) -> Option<String>,
    env_fallback: bool,
    resolved: RefCell<BTreeMap<String, Option<String>>>,
    in_progress: RefCell<BTreeSet<String>>,
    used_keys: RefCell<BTreeSet<String>>,
}

/// A substituted value and what could not be resolved in it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Resolved {
    /// The value after substitution.
    pub value: String,
    /// One sentence per problem (unresolved variable, cycle, unsupported lookup).
    pub problems: Vec<String>,
}

impl<'a> Substitutor<'a> {
    /// A substitutor over the raw (unsubstituted) properties `props`.
    ///
    /// `env_fallback` makes a bare `${NAME}` fall back to the environment (Flume's
    /// `EnvVarResolverProperties` mode).
    pub fn new(
        props: &'a BTreeMap<String, String>,
        system_properties: &'a BTreeMap<String, String>,
        env: &'a dyn Fn(&str) -> Option<String>,
        env_fallback: bool,
    ) -> Self {
        Substitutor {
            props,
            system_properties,
            env,
            env_fallback,
            resolved: RefCell::new(BTreeMap::new()),
            in_progress: RefCell::new(BTreeSet::new()),
            used_keys: RefCell::new(BTreeSet::new()),
        }
    }

    /// Substitutes every `${...}` in `value`.
    pub fn resolve(&self, value: &str) -> Resolved {
        let mut buf: Vec<char> = value.chars().collect();
        let len = buf.len();
        let mut problems = Vec::new();
        self.substitute(&mut buf, 0, len, &mut None, &mut problems);
        let mut seen = BTreeSet::new();
        problems.retain(|p| seen.insert(p.clone()));
        Resolved {
            value: buf.into_iter().collect(),
            problems,
        }
    }

    /// The property names that some resolved value referred to with a bare `${NAME}`.
    pub fn used_keys(&self) -> BTreeSet<String> {
        self.used_keys.borrow().clone()
    }

    /// The substituted value of property `key` (memoized; `None` while it is being resolved,
    /// which is how a cycle through properties ends).
    fn property(&self, key: &str) -> Option<String> {
        let raw = self.props.get(key)?;
        self.used_keys.borrow_mut().insert(key.to_string());
        if let Some(done) = self.resolved.borrow().get(key) {
            return done.clone();
        }
        if !self.in_progress.borrow_mut().insert(key.to_string()) {
            return None;
        }
        let mut buf: Vec<char> = raw.chars().collect();
        let len = buf.len();
        self.substitute(&mut buf, 0, len, &mut None, &mut Vec::new());
        let value: String = buf.into_iter().collect();
        self.in_progress.borrow_mut().remove(key);
        self.resolved
            .borrow_mut()
            .insert(key.to_string(), Some(value.clone()));
        Some(value)
    }

    fn lookup(&self, var: &str, problems: &mut Vec<String>) -> Option<String> {
        let mut name = var;
        if let Some(colon) = var.find(':') {
            let prefix = var[..colon].to_lowercase();
            let rest = &var[colon + 1..];
            let found = match prefix.as_str() {
                "sys" => self.system_property(rest),
                "env" => (self.env)(rest),
                "date" => match format_date_now(rest) {
                    Ok(v) => Some(v),
                    Err(e) => {
                        problems.push(e);
                        None
                    }
                },
                "java" => {
                    problems.push(format!(
                        "`${{{var}}}` asks for JVM information, which Flumen does not have."
                    ));
                    None
                }
                _ => None,
            };
            if found.is_some() {
                return found;
            }
            name = rest;
        }
        if let Some(v) = self.property(name) {
            return Some(v);
        }
        if self.env_fallback {
            return (self.env)(name);
        }
        None
    }

    fn system_property(&self, name: &str) -> Option<String> {
        if let Some(v) = self.system_properties.get(name) {
            return Some(v.clone());
        }
        let env = |k: &str| (self.env)(k);
        match name {
            "user.home" => env("HOME"),
            "user.name" => env("USER").or_else(|| env("LOGNAME")),
            "user.dir" => std::env::current_dir()
                .ok()
                .map(|p| p.display().to_string()),
            "java.io.tmpdir" => Some("/tmp".to_string()),
            "os.name" => Some(
                match std::env::consts::OS {
                    "linux" => "Linux",
                    "macos" => "Mac OS X",
                    "windows" => "Windows",
                    other => other,
                }
                .to_string(),
            ),
            "os.arch" => Some(
                match std::env::consts::ARCH {
                    "x86_64" => "amd64",
                    other => other,
                }
                .to_string(),
            ),
            "file.separator" => Some(std::path::MAIN_SEPARATOR.to_string()),
            "path.separator" => Some(if cfg!(windows) { ";" } else { ":" }.to_string()),
            "line.separator" => Some("\n".to_string()),
            _ => None,
        }
    }

    /// Commons Text's substitution loop over `buf[offset..offset + length]`; returns the change
    /// in length.
    fn substitute(
        &self,
        buf: &mut Vec<char>,
        offset: usize,
        length: usize,
        prior: &mut Option<Vec<String>>,
        problems: &mut Vec<String>,
    ) -> isize {
        let is_prefix = |buf: &[char], pos: usize, end: usize| {
            pos + 1 < end && buf[pos] == '$' && buf[pos + 1] == '{'
        };
        let mut length_change: isize = 0;
        let mut buf_end = offset + length;
        let mut pos = offset;
        let mut esc_pos: Option<usize> = None;
        'outer: while pos < buf_end {
            if !is_prefix(buf, pos, buf_end) {
                pos += 1;
                continue;
            }
            if pos > offset && buf[pos - 1] == '$' {
                esc_pos = Some(pos - 1);
            }
            let start_pos = pos;
            pos += 2;
            let mut nested = 0usize;
            while pos < buf_end {
                if is_prefix(buf, pos, buf_end) {
                    nested += 1;
                    pos += 2;
                    continue;
                }
                if buf[pos] != '}' {
                    pos += 1;
                    continue;
                }
                if nested > 0 {
                    nested -= 1;
                    pos += 1;
                    continue;
                }
                if let Some(esc) = esc_pos.take() {
                    // `$${x}`: drop one `$` and scan on inside the braces.
                    buf.remove(esc);
                    length_change -= 1;
                    buf_end -= 1;
                    pos = start_pos + 1;
                    continue 'outer;
                }
                let mut name_buf: Vec<char> = buf[start_pos + 2..pos].to_vec();
                let name_len = name_buf.len();
                self.substitute(&mut name_buf, 0, name_len, &mut None, problems);
                let name_expr: String = name_buf.into_iter().collect();
                pos += 1;
                let end_pos = pos;
                let (var_name, default) = match name_expr.find(":-") {
                    Some(i) => (&name_expr[..i], Some(&name_expr[i + 2..])),
                    None => (name_expr.as_str(), None),
                };
                let stack = prior.get_or_insert_with(|| {
                    vec![buf[offset..offset + length].iter().collect::<String>()]
                });
                if stack.iter().any(|p| p == var_name) {
                    problems.push(format!(
                        "`${{{var_name}}}` refers back to itself; Flume would fail to load the \
                         configuration, Flumen leaves it unresolved."
                    ));
                    break;
                }
                stack.push(var_name.to_string());
                let value = self
                    .lookup(var_name, problems)
                    .or_else(|| default.map(str::to_string));
                match value {
                    Some(value) => {
                        let value_len = value.chars().count();
                        buf.splice(start_pos..end_pos, value.chars());
                        let inner = self.substitute(buf, start_pos, value_len, prior, problems);
                        let change = inner + value_len as isize - (end_pos - start_pos) as isize;
                        pos = pos.saturating_add_signed(change);
                        buf_end = buf_end.saturating_add_signed(change);
                        length_change += change;
                    }
                    None => problems.push(unresolved_message(var_name)),
                }
                if let Some(stack) = prior.as_mut() {
                    stack.pop();
                }
                break;
            }
        }
        length_change
    }
}

fn unresolved_message(var_name: &str) -> String {
    if var_name.contains("${") {
        return format!(
            "`${{{var_name}}}` cannot be resolved because a reference inside its name cannot; \
             it is left as written."
        );
    }
    if let Some((prefix, _)) = var_name.split_once(':') {
        let known = ["sys", "env", "date", "java"];
        if !known.contains(&prefix.to_lowercase().as_str()) {
            return format!(
                "`${{{var_name}}}` cannot be resolved: `{prefix}` is not one of Flume's lookups \
                 (sys, env, date, java), so it was looked up as a bare name; it is left as written."
            );
        }
    }
    format!("`${{{var_name}}}` cannot be resolved; it is left as written.")
}

/// Formats the current UTC time with the numeric subset of `SimpleDateFormat`.
fn format_date_now(pattern: &str) -> Result<String, String> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|_| "The system clock is before 1970.".to_string())?;
    format_date(now.as_millis() as i64, pattern)
}

fn format_date(millis: i64, pattern: &str) -> Result<String, String> {
    let days = millis.div_euclid(86_400_000);
    let ms_of_day = millis.rem_euclid(86_400_000);
    // Civil date from days since 1970-01-01 (proleptic Gregorian).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let hour = ms_of_day / 3_600_000;
    let minute = ms_of_day / 60_000 % 60;
    let second = ms_of_day / 1000 % 60;
    let milli = ms_of_day % 1000;
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let mut run = 1;
        while i + run < chars.len() && chars[i + run] == c {
            run += 1;
        }
        let number = match c {
            'y' if run == 2 => Some(year.rem_euclid(100)),
            'y' => Some(year),
            'M' if run <= 2 => Some(month),
            'd' => Some(day),
            'H' => Some(hour),
            'h' => Some(if hour % 12 == 0 { 12 } else { hour % 12 }),
            'm' => Some(minute),
            's' => Some(second),
            'S' => Some(milli),
            _ => None,
        };
        if let Some(n) = number {
            out.push_str(&format!("{n:0run$}"));
            i += run;
        } else if c == '\'' {
            let close = chars[i + 1..].iter().position(|&q| q == '\'');
            match close {
                Some(0) => out.push('\''),
                Some(n) => out.extend(&chars[i + 1..i + 1 + n]),
                None => return Err(format!("Date pattern `{pattern}` has an unclosed quote.")),
            }
            i += close.unwrap_or(0) + 2;
        } else if c.is_ascii_alphabetic() {
            return Err(format!(
                "Date pattern letter `{c}` in `{pattern}` is not supported by Flumen."
            ));
        } else {
            out.push(c);
            i += 1;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
