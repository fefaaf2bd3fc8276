//! Config filters (`<agent>.configfilters`): `${f1['KEY']}` in component values.
//!
//! Flume builds each listed filter (a filter with no keys, or no `type`, is dropped), then
//! rewrites every value of every source, channel, sink and sink group of the agent: each
//! `${<filter>[KEY]}`, `${<filter>['KEY']}` or `${<filter>["KEY"]}` (KEY made of letters,
//! digits, `-` and `_`) becomes what the filter returns for KEY, or stays when it returns
//! nothing. Flumen implements the `env` filter (the environment variable KEY); `hadoop` and
//! `external` (and custom classes) are reported and their references left as written.

use super::group::{AgentConf, Section};
use super::split_names;
use crate::config::finding::{Finding, FindingKind};

const ENV_CLASS: &str = "org.apache.flume.configfilter.EnvironmentVariableConfigFilter";
const OTHER_FILTERS: [(&str, &str); 2] = [
    (
        "hadoop",
        "org.apache.flume.configfilter.HadoopCredentialStoreConfigFilter",
    ),
    (
        "external",
        "org.apache.flume.configfilter.ExternalProcessConfigFilter",
    ),
];

/// Sets up the agent's filters and rewrites component values with the `env` ones.
pub(crate) fn apply(
    conf: &mut AgentConf,
    env: &dyn Fn(&str) -> Option<String>,
    findings: &mut Vec<Finding>,
) {
    let section = conf.section(Section::ConfigFilters);
    let Some(list) = section.list.clone() else {
        return;
    };
    let mut env_filters: Vec<String> = Vec::new();
    for name in split_names(&list.value) {
        let Some(component) = section.component(&name) else {
            findings.push(
                Finding::new(
                    FindingKind::DroppedComponent,
                    Some(list.origin.clone()),
                    list.full_key.clone(),
                    format!(
                        "Config filter `{name}` is listed but has no properties; Flume drops it."
                    ),
                )
                .expected(format!("`{}.configfilters.{name}.type`", conf.name)),
            );
            continue;
        };
        let Some(type_) = component.value("type") else {
            let at = component.first().map(|p| p.origin.clone());
            findings.push(
                Finding::new(
                    FindingKind::DroppedComponent,
                    at,
                    format!("{}.configfilters.{name}", conf.name),
                    format!("Config filter `{name}` has no type; Flume drops it."),
                )
                .expected(format!("`{}.configfilters.{name}.type = env`", conf.name)),
            );
            continue;
        };
        let type_prop = component.get("type").cloned();
        let at = type_prop.as_ref().map(|p| p.origin.clone());
        let key = type_prop.map(|p| p.full_key).unwrap_or_default();
        if type_.eq_ignore_ascii_case("env") || type_ == ENV_CLASS {
            env_filters.push(name);
        } else if let Some((alias, _)) = OTHER_FILTERS
            .iter()
            .find(|(alias, class)| type_.eq_ignore_ascii_case(alias) || type_ == *class)
        {
            findings.push(Finding::new(
                FindingKind::UnsupportedType,
                at,
                key,
                format!(
                    "Config filter type `{alias}` is not implemented by Flumen; references to \
                     `{name}` are left as written."
                ),
            ));
        } else {
            findings.push(
                Finding::new(
                    FindingKind::UnknownType,
                    at,
                    key,
                    format!(
                        "Config filter type `{type_}` is not a Flume filter; Flume cannot create \
                         it and skips it, so references to `{name}` are left as written."
                    ),
                )
                .expected("`env`, `hadoop`, `external` or a filter class name"),
            );
        }
    }
    if env_filters.is_empty() {
        return;
    }
    let agent = conf.name.clone();
    for section in [
        Section::Sources,
        Section::Channels,
        Section::Sinks,
        Section::SinkGroups,
    ] {
        for component in &mut conf.section_mut(section).components {
            for (_, prop) in &mut component.props {
                for filter in &env_filters {
                    let (value, missing) = filter_value(&prop.value, filter, env);
                    prop.value = value;
                    for key in missing {
                        findings.push(Finding::new(
                            FindingKind::Substitution,
                            Some(prop.origin.clone()),
                            prop.full_key.clone(),
                            format!(
                                "Config filter `{filter}` of agent `{agent}` has no value for \
                                 `{key}` (environment variable not set); the reference is left \
                                 as written."
                            ),
                        ));
                    }
                }
            }
        }
    }
}

/// Replaces `${<filter>[KEY]}` forms in `value`; returns the new value and the keys not found.
pub(crate) fn filter_value(
    value: &str,
    filter: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> (String, Vec<String>) {
    let opener = format!("${{{filter}[");
    let mut out = String::with_capacity(value.len());
    let mut missing = Vec::new();
    let mut rest = value;
    while let Some(at) = rest.find(&opener) {
        out.push_str(&rest[..at]);
        let after = &rest[at + opener.len()..];
        match parse_reference(after) {
            Some((key, used)) => match lookup(key) {
                Some(v) => {
                    out.push_str(&v);
                    rest = &after[used..];
                }
                None => {
                    missing.push(key.to_string());
                    out.push_str(&rest[at..at + opener.len() + used]);
                    rest = &after[used..];
                }
            },
            None => {
                out.push_str(&opener);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    (out, missing)
}

/// Parses `KEY]}`, `'KEY']}` or `"KEY"]}`; returns KEY and the length consumed.
fn parse_reference(s: &str) -> Option<(&str, usize)> {
    let quote = match s.chars().next()? {
        q @ ('\'' | '"') => Some(q),
        _ => None,
    };
    let start = usize::from(quote.is_some());
    let body = &s[start..];
    let key_len = body
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
        .unwrap_or(body.len());
    if key_len == 0 {
        return None;
    }
    let mut tail = String::new();
    if let Some(q) = quote {
        tail.push(q);
    }
    tail.push_str("]}");
    body[key_len..]
        .starts_with(&tail)
        .then(|| (&body[..key_len], start + key_len + tail.len()))
}
