//! Interim loader: simple `key = value` lines, no validation. Being replaced by the full
//! `java.util.Properties` reader and Flume's rules.

use std::path::Path;
use std::sync::Arc;

use super::*;

pub(crate) fn load(request: &LoadRequest) -> Result<Loaded, ConfigError> {
    let mut entries: Vec<(String, String, Origin)> = Vec::new();
    for source in &request.sources {
        let (name, text): (Arc<Path>, String) = match source {
            ConfigSource::File(p) => (
                Arc::from(p.as_path()),
                std::fs::read_to_string(p).map_err(|e| ConfigError::Read {
                    path: p.clone(),
                    source: e,
                })?,
            ),
            ConfigSource::Embedded { name, text } => (Arc::from(Path::new(name)), text.clone()),
        };
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
                continue;
            }
            if let Some((k, v)) = line.split_once('=') {
                let origin = Origin {
                    file: name.clone(),
                    line: i as u32 + 1,
                };
                entries.push((k.trim().to_string(), v.trim().to_string(), origin));
            }
        }
    }
    let agent = &request.agent;
    let get = |key: &str| {
        entries
            .iter()
            .rev()
            .find(|(k, _, _)| k == key)
            .map(|(_, v, o)| Prop {
                value: v.clone(),
                full_key: key.to_string(),
                origin: o.clone(),
            })
    };
    let list = |key: &str| -> Vec<String> {
        get(key)
            .map(|p| p.value.split_whitespace().map(String::from).collect())
            .unwrap_or_default()
    };
    let component = |kind: &str, name: &str, skip: &str| -> Option<ComponentSpec> {
        let prefix = format!("{agent}.{kind}.{name}.");
        let type_ = get(&format!("{prefix}type"))?;
        let mut props = Props::new();
        for (k, _, _) in &entries {
            if let Some(rel) = k.strip_prefix(&prefix) {
                if rel != "type" && rel != skip {
                    if let Some(p) = get(k) {
                        props.insert(rel, p);
                    }
                }
            }
        }
        Some(ComponentSpec {
            name: name.to_string(),
            type_,
            props,
        })
    };
    let mut spec = AgentSpec {
        name: agent.clone(),
        ..AgentSpec::default()
    };
    for c in list(&format!("{agent}.channels")) {
        if let Some(cs) = component("channels", &c, "") {
            spec.channels.push(cs);
        }
    }
    for s in list(&format!("{agent}.sources")) {
        if let Some(cs) = component("sources", &s, "channels") {
            let channels = list(&format!("{agent}.sources.{s}.channels"));
            spec.sources.push(SourceSpec {
                component: cs,
                channels,
            });
        }
    }
    for s in list(&format!("{agent}.sinks")) {
        if let Some(cs) = component("sinks", &s, "channel") {
            let channel = get(&format!("{agent}.sinks.{s}.channel"))
                .map(|p| p.value)
                .unwrap_or_default();
            spec.sinks.push(SinkSpec {
                component: cs,
                channel,
            });
        }
    }
    Ok(Loaded {
        agent: Some(spec),
        findings: Vec::new(),
        agent_names: vec![agent.clone()],
    })
}
