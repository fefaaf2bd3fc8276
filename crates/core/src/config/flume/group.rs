//! Filing properties under agents and components (Flume's `addRawProperty` / `addProperty`).

use super::{java_trim, Inputs};
use crate::config::finding::{did_you_mean, Finding, FindingKind, Origin};
use crate::config::props::Prop;

/// The five sections of an agent, in Flume's order of precedence for prefixed keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Section {
    /// `<agent>.sources`
    Sources,
    /// `<agent>.channels`
    Channels,
    /// `<agent>.sinks`
    Sinks,
    /// `<agent>.sinkgroups`
    SinkGroups,
    /// `<agent>.configfilters`
    ConfigFilters,
}

impl Section {
    pub(crate) const ALL: [Section; 5] = [
        Section::Sources,
        Section::Channels,
        Section::Sinks,
        Section::SinkGroups,
        Section::ConfigFilters,
    ];

    /// The key segment.
    pub(crate) fn key(self) -> &'static str {
        match self {
            Section::Sources => "sources",
            Section::Channels => "channels",
            Section::Sinks => "sinks",
            Section::SinkGroups => "sinkgroups",
            Section::ConfigFilters => "configfilters",
        }
    }

    /// Singular noun for messages.
    pub(crate) fn noun(self) -> &'static str {
        match self {
            Section::Sources => "source",
            Section::Channels => "channel",
            Section::Sinks => "sink",
            Section::SinkGroups => "sink group",
            Section::ConfigFilters => "config filter",
        }
    }
}

/// The keys of one component, relative to `<agent>.<section>.<name>.`, in the order written.
#[derive(Clone, Debug, Default)]
pub(crate) struct Component {
    pub name: String,
    pub props: Vec<(String, Prop)>,
}

impl Component {
    pub(crate) fn get(&self, key: &str) -> Option<&Prop> {
        self.props.iter().find(|(k, _)| k == key).map(|(_, p)| p)
    }

    /// A non-empty value of `key` (Flume's `context.getString` then an emptiness check).
    pub(crate) fn value(&self, key: &str) -> Option<&str> {
        self.get(key)
            .map(|p| p.value.as_str())
            .filter(|v| !v.is_empty())
    }

    /// Where the component was first written.
    pub(crate) fn first(&self) -> Option<&Prop> {
        self.props
            .iter()
            .map(|(_, p)| p)
            .min_by_key(|p| p.origin.line)
    }
}

/// One section: its list key and the components configured under it.
#[derive(Clone, Debug, Default)]
pub(crate) struct SectionConf {
    pub list: Option<Prop>,
    /// The list key when it was written with an empty value (Flume ignores it).
    pub empty_list: Option<Prop>,
    pub components: Vec<Component>,
}

impl SectionConf {
    pub(crate) fn component(&self, name: &str) -> Option<&Component> {
        self.components.iter().find(|c| c.name == name)
    }
}

/// One agent's properties, filed.
#[derive(Clone, Debug, Default)]
pub(crate) struct AgentConf {
    pub name: String,
    pub sections: [SectionConf; 5],
}

impl AgentConf {
    pub(crate) fn section(&self, s: Section) -> &SectionConf {
        &self.sections[s as usize]
    }

    pub(crate) fn section_mut(&mut self, s: Section) -> &mut SectionConf {
        &mut self.sections[s as usize]
    }

    /// The first line that mentions the agent: where a reader starts looking when the whole
    /// agent is refused.
    pub(crate) fn first_origin(&self) -> Option<Origin> {
        self.sections
            .iter()
            .flat_map(|s| {
                s.list
                    .iter()
                    .chain(s.components.iter().filter_map(|c| c.first()))
            })
            .map(|p| p.origin.clone())
            .min_by_key(|o| o.line)
    }
}

/// Every agent name the properties define, in the order first seen.
pub(crate) fn agent_names(props: &[Prop]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for p in props {
        if java_trim(&p.value).is_empty() {
            continue;
        }
        if let Some((agent, rest)) = p.full_key.split_once('.') {
            if !agent.is_empty() && !rest.is_empty() && !names.iter().any(|n| n == agent) {
                names.push(agent.to_string());
            }
        }
    }
    names
}

fn ignored(prop: &Prop, message: String) -> Finding {
    Finding::new(
        FindingKind::IgnoredKey,
        Some(prop.origin.clone()),
        prop.full_key.clone(),
        message,
    )
}

/// Files the properties of `inputs.agent`; `None` when the agent has no property at all.
pub(crate) fn group(inputs: &Inputs<'_>, findings: &mut Vec<Finding>) -> Option<AgentConf> {
    let agent = inputs.agent;
    let mut conf = AgentConf {
        name: agent.to_string(),
        ..AgentConf::default()
    };
    let mut found = false;
    for prop in inputs.props {
        let key = prop.full_key.as_str();
        let Some((agent_part, config_key)) = key.split_once('.') else {
            if !inputs.used_as_variables.contains(key) {
                findings.push(ignored(
                    prop,
                    format!(
                        "`{key}` names no agent (an agent key looks like `<agent>.sources`); \
                         Flume ignores it."
                    ),
                ));
            }
            continue;
        };
        if agent_part != agent && !agent_part.is_empty() {
            continue;
        }
        if java_trim(&prop.value).is_empty() {
            let list = Section::ALL.into_iter().find(|s| s.key() == config_key);
            let message = match list {
                Some(section) => {
                    conf.section_mut(section).empty_list = Some(prop.clone());
                    format!(
                        "The {} list `{key}` is empty; Flume ignores the key, so agent `{agent}` \
                         lists no {}s.",
                        section.noun(),
                        section.noun()
                    )
                }
                None => format!("`{key}` has an empty value; Flume ignores the key."),
            };
            findings.push(ignored(prop, message).expected("a value after the separator"));
            continue;
        }
        if agent_part.is_empty() || config_key.is_empty() {
            findings.push(ignored(
                prop,
                format!("`{key}` has an empty agent or property name; Flume ignores it."),
            ));
            continue;
        }
        found = true;
        add_property(&mut conf, config_key, prop, findings);
    }
    found.then_some(conf)
}

/// Flume's `AgentConfiguration.addProperty` for one key (relative to the agent).
fn add_property(conf: &mut AgentConf, key: &str, prop: &Prop, findings: &mut Vec<Finding>) {
    for section in Section::ALL {
        if key == section.key() {
            let slot = &mut conf.section_mut(section).list;
            if let Some(old) = slot.replace(prop.clone()) {
                findings.push(ignored(
                    &old,
                    format!(
                        "The {} list is given twice for agent `{}` (also at {}); the later one \
                         is used.",
                        section.noun(),
                        conf.name,
                        prop.origin
                    ),
                ));
            }
            return;
        }
    }
    for section in Section::ALL {
        let prefix_len = section.key().len() + 1;
        let Some(rest) = key
            .strip_prefix(section.key())
            .and_then(|r| r.strip_prefix('.'))
        else {
            continue;
        };
        // Flume looks for the dot after the name from one past the prefix, so a name has at
        // least one character; the name is trimmed.
        let Some(start) = rest.char_indices().nth(1).map(|(i, _)| i) else {
            continue;
        };
        let Some(dot) = rest[start..].find('.').map(|d| d + start) else {
            continue;
        };
        let name = java_trim(&rest[..dot]).to_string();
        let sub_key = &key[prefix_len + dot + 1..];
        if rest[..dot].is_empty() || sub_key.is_empty() {
            continue;
        }
        let sec = conf.section_mut(section);
        let idx = match sec.components.iter().position(|c| c.name == name) {
            Some(i) => i,
            None => {
                sec.components.push(Component {
                    name,
                    props: Vec::new(),
                });
                sec.components.len() - 1
            }
        };
        let comp = &mut sec.components[idx];
        if let Some(slot) = comp.props.iter_mut().find(|(k, _)| k == sub_key) {
            let old = std::mem::replace(&mut slot.1, prop.clone());
            findings.push(ignored(
                &old,
                format!(
                    "`{}` and `{}` name the same property; the one at {} is used.",
                    old.full_key, prop.full_key, prop.origin
                ),
            ));
        } else {
            comp.props.push((sub_key.to_string(), prop.clone()));
        }
        return;
    }
    let first = key.split('.').next().unwrap_or(key);
    let kinds = Section::ALL.map(Section::key);
    let suggestion = did_you_mean(first, kinds).map(|k| {
        let rest = &key[first.len()..];
        format!("{}.{k}{rest}", conf.name)
    });
    findings.push(
        ignored(
            prop,
            format!(
                "`{}` is not a property Flume knows for agent `{}`; it is ignored.",
                prop.full_key, conf.name
            ),
        )
        .expected(format!(
            "`{0}.sources`, `{0}.channels`, `{0}.sinks`, `{0}.sinkgroups`, \
             `{0}.configfilters` or `{0}.<kind>.<name>.<property>`",
            conf.name
        ))
        .suggest(suggestion),
    );
}
