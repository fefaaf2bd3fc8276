//! Flume's validation of one agent (`AgentConfiguration.isValid` and what it calls), plus the
//! removal of channels nothing is connected to (`AbstractConfigurationProvider`).

use super::group::{AgentConf, Component, Section};
use super::{near_name, split_names};
use crate::config::finding::{did_you_mean, Finding, FindingKind, Origin};
use crate::config::props::{Prop, Props};
use crate::config::spec::{AgentSpec, ComponentSpec, SinkGroupSpec, SinkSpec, SourceSpec};

/// Flume's known source aliases and classes (`SourceType`).
#[rustfmt::skip]
const SOURCE_TYPES: &[&str] = &[
    "other", "seq", "netcat", "exec", "avro", "syslogtcp", "multiport_syslogtcp", "syslogudp",
    "spooldir", "http", "thrift", "jms", "taildir", "netcatudp",
    "org.apache.flume.source.SequenceGeneratorSource", "org.apache.flume.source.NetcatSource",
    "org.apache.flume.source.ExecSource", "org.apache.flume.source.AvroSource",
    "org.apache.flume.source.SyslogTcpSource", "org.apache.flume.source.MultiportSyslogTCPSource",
    "org.apache.flume.source.SyslogUDPSource", "org.apache.flume.source.SpoolDirectorySource",
    "org.apache.flume.source.http.HTTPSource", "org.apache.flume.source.ThriftSource",
    "org.apache.flume.source.jms.JMSSource", "org.apache.flume.source.taildir.TaildirSource",
    "org.apache.flume.source.NetcatUdpSource",
];
/// Flume's known channel aliases and classes (`ChannelType`).
#[rustfmt::skip]
const CHANNEL_TYPES: &[&str] = &[
    "other", "file", "memory", "jdbc", "spillablememory",
    "org.apache.flume.channel.file.FileChannel", "org.apache.flume.channel.MemoryChannel",
    "org.apache.flume.channel.jdbc.JdbcChannel", "org.apache.flume.channel.SpillableMemoryChannel",
];
/// Flume's known sink aliases and classes (`SinkType`).
#[rustfmt::skip]
const SINK_TYPES: &[&str] = &[
    "other", "null", "logger", "file_roll", "hdfs", "irc", "avro", "thrift", "elasticsearch",
    "hbase", "asynchbase", "hbase2", "morphline_solr", "hive", "http",
    "org.apache.flume.sink.NullSink", "org.apache.flume.sink.LoggerSink",
    "org.apache.flume.sink.RollingFileSink", "org.apache.flume.sink.hdfs.HDFSEventSink",
    "org.apache.flume.sink.irc.IRCSink", "org.apache.flume.sink.AvroSink",
    "org.apache.flume.sink.ThriftSink", "org.apache.flume.sink.elasticsearch.ElasticSearchSink",
    "org.apache.flume.sink.hbase.HBaseSink", "org.apache.flume.sink.hbase.AsyncHBaseSink",
    "org.apache.flume.sink.hbase2.HBase2Sink",
    "org.apache.flume.sink.solr.morphline.MorphlineSolrSink",
    "org.apache.flume.sink.hive.HiveSink", "org.apache.flume.sink.http.HttpSink",
];
/// Names Flume accepts in a component's `config` key, per kind (its `*ConfigurationType` enums).
#[rustfmt::skip]
const SOURCE_CONFIGS: &[&str] = &[
    "OTHER", "SEQ", "NETCAT", "EXEC", "AVRO", "SYSLOGTCP", "SYSLOGUDP", "MULTIPORT_SYSLOGTCP",
    "SPOOLDIR", "HTTP", "THRIFT", "JMS", "TAILDIR", "NETCATUDP",
];
#[rustfmt::skip]
const CHANNEL_CONFIGS: &[&str] = &["OTHER", "MEMORY", "FILE", "JDBC", "SPILLABLEMEMORY"];
#[rustfmt::skip]
const SINK_CONFIGS: &[&str] = &[
    "OTHER", "NULL", "LOGGER", "FILE_ROLL", "HDFS", "IRC", "AVRO", "THRIFT", "ELASTICSEARCH",
    "HBASE", "ASYNCHBASE", "HBASE2", "MORPHLINE_SOLR", "HIVE", "HTTP",
];

struct Ctx<'a> {
    agent: &'a str,
    findings: &'a mut Vec<Finding>,
}

impl Ctx<'_> {
    fn push(&mut self, finding: Finding) {
        self.findings.push(finding);
    }

    fn key(&self, section: Section, name: &str) -> String {
        format!("{}.{}.{name}", self.agent, section.key())
    }

    /// A listed component with no properties at all.
    fn not_configured(&mut self, section: Section, name: &str, list: &Prop, unlisted: &[&str]) {
        let suggestion = near_name(name, unlisted.iter().copied());
        self.push(
            Finding::new(
                FindingKind::DroppedComponent,
                Some(list.origin.clone()),
                list.full_key.clone(),
                format!(
                    "{} `{name}` is listed in `{}` but has no properties; Flume drops it.",
                    capital(section.noun()),
                    list.full_key
                ),
            )
            .expected(format!("`{}.type`", self.key(section, name)))
            .suggest(suggestion),
        );
    }

    /// Checks `type` (and Flume's `config` key quirk); returns the type when the component
    /// survives.
    fn typed(&mut self, section: Section, c: &Component) -> Option<Prop> {
        let key = self.key(section, &c.name);
        let Some(type_) = c.get("type").filter(|p| !p.value.is_empty()) else {
            let typo = c
                .props
                .iter()
                .find(|(k, _)| did_you_mean(k, ["type"]).is_some())
                .map(|(_, p)| p.full_key.clone());
            self.push(
                Finding::new(
                    FindingKind::DroppedComponent,
                    c.first().map(|p| p.origin.clone()),
                    key.clone(),
                    format!(
                        "{} `{}` has no `type`; Flume drops it.",
                        capital(section.noun()),
                        c.name
                    ),
                )
                .expected(format!("`{key}.type`"))
                .suggest(typo.map(|_| format!("{key}.type"))),
            );
            return None;
        };
        let (known, configs) = match section {
            Section::Sources => (SOURCE_TYPES, SOURCE_CONFIGS),
            Section::Channels => (CHANNEL_TYPES, CHANNEL_CONFIGS),
            Section::Sinks => (SINK_TYPES, SINK_CONFIGS),
            _ => return Some(type_.clone()),
        };
        let is_known = known.iter().any(|k| k.eq_ignore_ascii_case(&type_.value));
        if let (false, Some(config)) = (is_known, c.get("config").filter(|p| !p.value.is_empty())) {
            let upper = config.value.to_uppercase();
            if !configs.contains(&upper.as_str()) {
                self.push(
                    Finding::new(
                        FindingKind::DroppedComponent,
                        Some(config.origin.clone()),
                        config.full_key.clone(),
                        format!(
                            "{} `{}` has type `{}` and `config = {}`, which names no Flume \
                             configuration class; Flume fails to configure it and drops it.",
                            capital(section.noun()),
                            c.name,
                            type_.value,
                            config.value
                        ),
                    )
                    .expected(format!("no `config` key, or one of {}", configs.join(", "))),
                );
                return None;
            }
        }
        Some(type_.clone())
    }
}

fn capital(noun: &str) -> String {
    let mut chars = noun.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// The relative properties of a component, without the keys the spec holds elsewhere.
fn props_of(c: &Component, skip: &[&str]) -> Props {
    let mut props = Props::new();
    for (k, p) in &c.props {
        if !skip.contains(&k.as_str()) {
            props.insert(k.clone(), p.clone());
        }
    }
    props
}

/// Runs Flume's rules; `None` when the agent would not start.
pub(crate) fn validate(conf: AgentConf, findings: &mut Vec<Finding>) -> Option<AgentSpec> {
    let mut ctx = Ctx {
        agent: &conf.name,
        findings,
    };
    let agent = conf.name.as_str();
    let listed = |s: Section| -> Vec<String> {
        let Some(list) = &conf.section(s).list else {
            return Vec::new();
        };
        if s == Section::SinkGroups {
            // Flume splits this one list with a StringTokenizer on spaces only.
            let mut out: Vec<String> = Vec::new();
            for n in list.value.split(' ').filter(|n| !n.is_empty()) {
                if !out.iter().any(|o| o == n) {
                    out.push(n.to_string());
                }
            }
            out
        } else {
            split_names(&list.value)
        }
    };
    let unlisted = |s: Section| -> Vec<&str> {
        let names = listed(s);
        conf.section(s)
            .components
            .iter()
            .map(|c| c.name.as_str())
            .filter(|n| !names.iter().any(|l| l == n))
            .collect()
    };
    report_unlisted(&conf, &listed, ctx.findings);

    // Channels: without at least one valid channel the agent is invalid.
    let Some(channel_list) = conf.section(Section::Channels).list.clone() else {
        ctx.push(agent_not_started(
            agent,
            conf.first_origin(),
            format!("Agent `{agent}` lists no channels (`{agent}.channels`); Flume marks the agent invalid and starts nothing."),
        ));
        return None;
    };
    let mut channels: Vec<ComponentSpec> = Vec::new();
    for name in listed(Section::Channels) {
        let Some(c) = conf.section(Section::Channels).component(&name) else {
            ctx.not_configured(
                Section::Channels,
                &name,
                &channel_list,
                &unlisted(Section::Channels),
            );
            continue;
        };
        if let Some(type_) = ctx.typed(Section::Channels, c) {
            channels.push(ComponentSpec {
                name,
                type_,
                props: props_of(c, &["type"]),
            });
        }
    }
    if channels.is_empty() {
        ctx.push(agent_not_started(
            agent,
            Some(channel_list.origin.clone()),
            format!("Agent `{agent}` has no valid channel; Flume marks the agent invalid and starts nothing."),
        ));
        return None;
    }
    let active: Vec<&str> = channels.iter().map(|c| c.name.as_str()).collect();

    // Sources: each needs a type and at least one active channel.
    let mut sources: Vec<SourceSpec> = Vec::new();
    let source_list = conf.section(Section::Sources).list.clone();
    for name in listed(Section::Sources) {
        let key = ctx.key(Section::Sources, &name);
        let Some(c) = conf.section(Section::Sources).component(&name) else {
            if let Some(list) = &source_list {
                ctx.not_configured(Section::Sources, &name, list, &unlisted(Section::Sources));
            }
            continue;
        };
        let Some(type_) = ctx.typed(Section::Sources, c) else {
            continue;
        };
        let Some(list) = c.get("channels").filter(|p| !p.value.is_empty()) else {
            let near = c.get("channel").map(|_| format!("{key}.channels"));
            ctx.push(
                Finding::new(
                    FindingKind::DroppedComponent,
                    c.first().map(|p| p.origin.clone()),
                    key.clone(),
                    format!("Source `{name}` has no `channels`; Flume drops it."),
                )
                .expected(format!("`{key}.channels = <channel> ...`"))
                .suggest(near),
            );
            continue;
        };
        let mut kept = Vec::new();
        for ch in split_names(&list.value) {
            if active.contains(&ch.as_str()) {
                kept.push(ch);
            } else {
                ctx.push(
                    Finding::new(
                        FindingKind::BadValue,
                        Some(list.origin.clone()),
                        list.full_key.clone(),
                        format!(
                            "Channel `{ch}` of source `{name}` is not an active channel of agent \
                             `{agent}`; Flume removes it from the source's channels."
                        ),
                    )
                    .expected(format!("one of {}", active.join(", ")))
                    .suggest(near_name(&ch, active.iter().copied())),
                );
            }
        }
        if kept.is_empty() {
            ctx.push(Finding::new(
                FindingKind::DroppedComponent,
                Some(list.origin.clone()),
                key,
                format!("Source `{name}` has no active channel left; Flume drops it."),
            ));
            continue;
        }
        sources.push(SourceSpec {
            component: ComponentSpec {
                name,
                type_,
                props: props_of(c, &["type", "channels"]),
            },
            channels: kept,
            channels_origin: list.origin.clone(),
        });
    }

    // Sinks: each needs a type and an active channel.
    let mut sinks: Vec<SinkSpec> = Vec::new();
    let sink_list = conf.section(Section::Sinks).list.clone();
    for name in listed(Section::Sinks) {
        let key = ctx.key(Section::Sinks, &name);
        let Some(c) = conf.section(Section::Sinks).component(&name) else {
            if let Some(list) = &sink_list {
                ctx.not_configured(Section::Sinks, &name, list, &unlisted(Section::Sinks));
            }
            continue;
        };
        let Some(type_) = ctx.typed(Section::Sinks, c) else {
            continue;
        };
        let Some(channel) = c.get("channel").filter(|p| !p.value.is_empty()) else {
            let near = c.get("channels").map(|_| format!("{key}.channel"));
            ctx.push(
                Finding::new(
                    FindingKind::DroppedComponent,
                    c.first().map(|p| p.origin.clone()),
                    key.clone(),
                    format!("Sink `{name}` has no `channel`; Flume drops it."),
                )
                .expected(format!("`{key}.channel = <channel>`"))
                .suggest(near),
            );
            continue;
        };
        if !active.contains(&channel.value.as_str()) {
            ctx.push(
                Finding::new(
                    FindingKind::DroppedComponent,
                    Some(channel.origin.clone()),
                    channel.full_key.clone(),
                    format!(
                        "Sink `{name}` reads channel `{}`, which is not an active channel of \
                         agent `{agent}`; Flume drops the sink.",
                        channel.value
                    ),
                )
                .expected(format!("one of {}", active.join(", ")))
                .suggest(near_name(&channel.value, active.iter().copied())),
            );
            continue;
        }
        sinks.push(SinkSpec {
            component: ComponentSpec {
                name,
                type_,
                props: props_of(c, &["type", "channel"]),
            },
            channel: channel.value.clone(),
            channel_origin: channel.origin.clone(),
        });
    }

    let sinkgroups = validate_groups(&conf, &mut ctx, &listed(Section::SinkGroups), &sinks);

    if sources.is_empty() && sinks.is_empty() {
        ctx.push(agent_not_started(
            agent,
            conf.first_origin(),
            format!("Agent `{agent}` has no valid source and no valid sink; Flume marks the agent invalid and starts nothing."),
        ));
        return None;
    }

    // AbstractConfigurationProvider: a channel no source or sink uses is removed. Flumen's
    // `errorChannel` (dead-letter channel) of a source or sink counts as a use.
    let error_channel = |props: &crate::config::Props| {
        props
            .get("errorChannel")
            .map(|p| p.value.trim().to_string())
    };
    let mut unused_channels = Vec::new();
    channels.retain(|c| {
        let used = sources.iter().any(|s| {
            s.channels.contains(&c.name)
                || error_channel(&s.component.props).as_deref() == Some(c.name.as_str())
        }) || sinks.iter().any(|k| {
            k.channel == c.name
                || error_channel(&k.component.props).as_deref() == Some(c.name.as_str())
        });
        if !used {
            ctx.findings.push(Finding::new(
                FindingKind::DroppedComponent,
                Some(c.type_.origin.clone()),
                format!("{agent}.channels.{}", c.name),
                format!(
                    "Channel `{}` is used by no source and no sink; Flume removes it.",
                    c.name
                ),
            ));
            unused_channels.push(c.clone());
        }
        used
    });

    Some(AgentSpec {
        name: agent.to_string(),
        sources,
        channels,
        sinks,
        sinkgroups,
        unused_channels,
        system_properties: Default::default(),
    })
}

fn validate_groups(
    conf: &AgentConf,
    ctx: &mut Ctx<'_>,
    names: &[String],
    sinks: &[SinkSpec],
) -> Vec<SinkGroupSpec> {
    let agent = conf.name.as_str();
    let section = conf.section(Section::SinkGroups);
    let active: Vec<&str> = sinks.iter().map(|s| s.component.name.as_str()).collect();
    let mut used: Vec<(String, String)> = Vec::new();
    let mut groups = Vec::new();
    for name in names {
        let key = ctx.key(Section::SinkGroups, name);
        let Some(c) = section.component(name) else {
            if let Some(list) = &section.list {
                let unlisted: Vec<&str> = section
                    .components
                    .iter()
                    .map(|c| c.name.as_str())
                    .filter(|n| !names.iter().any(|l| l == n))
                    .collect();
                ctx.not_configured(Section::SinkGroups, name, list, &unlisted);
            }
            continue;
        };
        let Some(members) = c.get("sinks").filter(|p| !p.value.is_empty()) else {
            ctx.push(
                Finding::new(
                    FindingKind::DroppedComponent,
                    c.first().map(|p| p.origin.clone()),
                    key.clone(),
                    format!(
                        "Sink group `{name}` has no `sinks`; Flume fails on it (a \
                         NullPointerException that stops the whole configuration), Flumen drops \
                         the group."
                    ),
                )
                .expected(format!("`{key}.sinks = <sink> <sink> ...`")),
            );
            continue;
        };
        if let Some(p) = c
            .get("processor.type")
            .filter(|p| p.value.eq_ignore_ascii_case("other"))
        {
            ctx.push(
                Finding::new(
                    FindingKind::DroppedComponent,
                    Some(p.origin.clone()),
                    p.full_key.clone(),
                    format!(
                        "Sink group `{name}` has processor type `other`, for which Flume has no \
                         processor configuration; Flume drops the group."
                    ),
                )
                .expected("`default`, `failover`, `load_balance` or a class name"),
            );
            continue;
        }
        let mut kept: Vec<String> = Vec::new();
        for sink in split_names(&members.value) {
            if let Some((_, owner)) = used.iter().find(|(s, _)| *s == sink) {
                ctx.push(Finding::new(
                    FindingKind::BadValue,
                    Some(members.origin.clone()),
                    members.full_key.clone(),
                    format!(
                        "Sink `{sink}` is already in sink group `{owner}`; Flume leaves it out \
                         of group `{name}` (which group keeps it depends on hashing in Flume; \
                         Flumen keeps the first group listed)."
                    ),
                ));
            } else if !active.contains(&sink.as_str()) {
                ctx.push(
                    Finding::new(
                        FindingKind::BadValue,
                        Some(members.origin.clone()),
                        members.full_key.clone(),
                        format!(
                            "Sink `{sink}` of sink group `{name}` is not an active sink of agent \
                             `{agent}`; Flume leaves it out of the group."
                        ),
                    )
                    .expected(format!("one of {}", active.join(", ")))
                    .suggest(near_name(&sink, active.iter().copied())),
                );
            } else {
                used.push((sink.clone(), name.clone()));
                kept.push(sink);
            }
        }
        if kept.is_empty() {
            ctx.push(Finding::new(
                FindingKind::DroppedComponent,
                Some(members.origin.clone()),
                key,
                format!("Sink group `{name}` has no available sink left; Flume drops it."),
            ));
            continue;
        }
        groups.push(SinkGroupSpec {
            name: name.clone(),
            sinks: kept,
            props: props_of(c, &["sinks"]),
            origin: Some(members.origin.clone()),
        });
    }
    groups
}

fn agent_not_started(agent: &str, origin: Option<Origin>, message: String) -> Finding {
    Finding::new(FindingKind::AgentNotStarted, origin, agent, message)
}

/// A component its section's list does not name: Flume never looks at its keys. One finding
/// per component, at its first key.
fn report_unlisted(
    conf: &AgentConf,
    listed: &dyn Fn(Section) -> Vec<String>,
    findings: &mut Vec<Finding>,
) {
    let agent = conf.name.as_str();
    for section in Section::ALL {
        let names = listed(section);
        let sec = conf.section(section);
        for c in &sec.components {
            if names.contains(&c.name) {
                continue;
            }
            let Some(first) = c.first() else {
                continue;
            };
            // The name is listed in another section (`a1.sources.k1.x` for sink `k1`): suggest
            // that section. Else a close listed name that is itself configured (a close name
            // that is not configured is a typo in the list, reported on the list).
            let other = Section::ALL
                .into_iter()
                .find(|o| *o != section && listed(*o).contains(&c.name));
            let near = match other {
                Some(o) => Some((o, c.name.clone())),
                None => near_name(&c.name, names.iter().map(String::as_str))
                    .filter(|n| sec.component(n).is_some())
                    .map(|n| (section, n)),
            };
            let list_key = format!("{agent}.{}", section.key());
            let why = match (&sec.list, &sec.empty_list) {
                (Some(list), _) => format!("`{}` does not list it", list.full_key),
                (None, Some(empty)) => format!(
                    "`{list_key}` is empty (line {}), so it lists nothing",
                    empty.origin.line
                ),
                (None, None) => format!("there is no `{list_key}` list"),
            };
            let why = match other {
                Some(o) => format!("{why} (`{}` is a {} of `{agent}`)", c.name, o.noun()),
                None => why,
            };
            let keys = match c.props.len() {
                1 => "its key".to_string(),
                n => format!("its {n} keys"),
            };
            findings.push(
                Finding::new(
                    FindingKind::IgnoredKey,
                    Some(first.origin.clone()),
                    format!("{list_key}.{}", c.name),
                    format!(
                        "{} `{}` is configured but {why}; Flume ignores {keys}.",
                        capital(section.noun()),
                        c.name
                    ),
                )
                .expected(format!("`{}` in `{list_key}`", c.name))
                .suggest(near.map(|(o, n)| format!("{agent}.{}.{n}", o.key()))),
            );
        }
    }
}
