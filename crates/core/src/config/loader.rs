//! Loading: read every source, merge, substitute, then apply Flume's structural rules.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

use super::flume::{self, java_trim, Inputs};
use super::properties;
use super::substitute::{Substitutor, ENV_VAR_RESOLVER_CLASS};
use super::*;

/// One entry as read, before merging.
struct Raw {
    key: String,
    value: String,
    origin: Origin,
}

/// Whether a (raw) key is reported on when loading `agent`: keys of that agent and keys of no
/// agent. Keys of other agents are those agents' business.
fn concerns(key: &str, agent: &str) -> bool {
    let key = java_trim(key);
    match key.split_once('.') {
        Some((a, _)) => a == agent || a.is_empty(),
        None => true,
    }
}

fn read_source(
    source: &ConfigSource,
    findings: &mut Vec<Finding>,
) -> Result<(Arc<Path>, String), ConfigError> {
    match source {
        ConfigSource::File(path) => {
            let bytes = std::fs::read(path).map_err(|e| ConfigError::Read {
                path: path.clone(),
                source: e,
            })?;
            Ok(decode(path, &bytes, findings))
        }
        ConfigSource::Read { name, bytes } => Ok(decode(name, bytes, findings)),
        ConfigSource::Embedded { name, text } => Ok((Arc::from(Path::new(name)), text.clone())),
    }
}

/// Decodes a properties file's bytes as Flume does (UTF-8, else ISO-8859-1 with a finding).
fn decode(path: &Path, bytes: &[u8], findings: &mut Vec<Finding>) -> (Arc<Path>, String) {
    let file: Arc<Path> = Arc::from(path);
    let (text, warning) = properties::decode(bytes);
    if let Some(message) = warning {
        let bad = std::str::from_utf8(bytes)
            .err()
            .map_or(0, |e| e.valid_up_to());
        let line = bytes[..bad].iter().filter(|&&b| b == b'\n').count() as u32 + 1;
        findings.push(Finding::new(
            FindingKind::Syntax,
            Some(Origin {
                file: file.clone(),
                line,
            }),
            path.display().to_string(),
            message,
        ));
    }
    (file, text)
}

pub(crate) fn load(
    request: &LoadRequest,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Loaded, ConfigError> {
    let agent = request.agent.as_str();
    let mut findings = Vec::new();
    let mut raws: Vec<Raw> = Vec::new();
    for source in &request.sources {
        let (file, text) = read_source(source, &mut findings)?;
        let parsed = properties::parse(&text);
        for e in parsed.errors {
            findings.push(Finding::new(
                FindingKind::Syntax,
                Some(Origin {
                    file: file.clone(),
                    line: e.line,
                }),
                file.display().to_string(),
                e.message,
            ));
        }
        if let Some(first) = parsed
            .entries
            .first()
            .filter(|e| e.key.starts_with('\u{feff}'))
        {
            findings.push(Finding::new(
                FindingKind::Syntax,
                Some(Origin {
                    file: file.clone(),
                    line: first.line,
                }),
                first.key.clone(),
                format!(
                    "The file starts with a byte order mark, which Java (and so Flume) reads as \
                     part of the first key, `{}`; that key then belongs to no agent you meant.",
                    first.key.escape_debug()
                ),
            ));
        }
        raws.extend(parsed.entries.into_iter().map(|e| Raw {
            key: e.key,
            value: e.value,
            origin: Origin {
                file: file.clone(),
                line: e.line,
            },
        }));
    }

    // Merge as one java.util.Properties: the last occurrence of a key wins.
    let mut last: HashMap<&str, usize> = HashMap::new();
    for (i, r) in raws.iter().enumerate() {
        last.insert(r.key.as_str(), i);
    }
    let mut winners: Vec<&Raw> = Vec::new();
    for (i, r) in raws.iter().enumerate() {
        let win = last.get(r.key.as_str()).copied().unwrap_or(i);
        if win == i {
            winners.push(r);
        } else if concerns(&r.key, agent) {
            let by = &raws[win].origin;
            let by = if by.file == r.origin.file {
                format!("line {}", by.line)
            } else {
                by.to_string()
            };
            findings.push(Finding::new(
                FindingKind::IgnoredKey,
                Some(r.origin.clone()),
                r.key.clone(),
                format!(
                    "`{}` is set again at {by}; as in Java properties the later value wins and \
                     this one is ignored.",
                    r.key
                ),
            ));
        }
    }

    // Substitute every value (Flume does it for all agents, before splitting them).
    let raw_map: BTreeMap<String, String> = winners
        .iter()
        .map(|r| (r.key.clone(), r.value.clone()))
        .collect();
    let env_fallback = request.env_var_resolver
        || request
            .system_properties
            .get("propertiesImplementation")
            .is_some_and(|v| v == ENV_VAR_RESOLVER_CLASS);
    let substitutor = Substitutor::new(&raw_map, &request.system_properties, env, env_fallback);
    let mut props: Vec<Prop> = Vec::with_capacity(winners.len());
    for r in &winners {
        let resolved = substitutor.resolve(&r.value);
        if concerns(&r.key, agent) {
            for problem in resolved.problems {
                findings.push(Finding::new(
                    FindingKind::Substitution,
                    Some(r.origin.clone()),
                    r.key.clone(),
                    problem,
                ));
            }
        }
        props.push(Prop {
            value: java_trim(&resolved.value).to_string(),
            full_key: java_trim(&r.key).to_string(),
            origin: r.origin.clone(),
        });
    }
    let used = substitutor.used_keys();
    let structured = flume::structure(&Inputs {
        props: &props,
        agent,
        env,
        used_as_variables: &used,
    });
    findings.extend(structured.findings);
    sort_findings(&mut findings, &request.sources);
    Ok(Loaded {
        agent: structured.agent.map(|mut a| {
            a.system_properties = request.system_properties.clone();
            a
        }),
        findings,
        agent_names: flume::agent_names(&props),
    })
}

/// Orders findings by source (in the order given), then line; findings with no place last.
fn sort_findings(findings: &mut [Finding], sources: &[ConfigSource]) {
    let rank = |f: &Finding| -> (usize, u32) {
        let Some(origin) = &f.origin else {
            return (usize::MAX, 0);
        };
        let idx = sources
            .iter()
            .position(|s| match s {
                ConfigSource::File(p) | ConfigSource::Read { name: p, .. } => {
                    p.as_path() == &*origin.file
                }
                ConfigSource::Embedded { name, .. } => Path::new(name) == &*origin.file,
            })
            .unwrap_or(usize::MAX - 1);
        (idx, origin.line)
    };
    findings.sort_by_key(rank);
}
