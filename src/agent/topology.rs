//! A built, not yet started, agent graph, and its printed forms (`check`, `graph`).

use serde::Serialize;

use std::sync::Arc;

use crate::channel::ChannelRef;
use crate::interceptor::Chain;
use crate::metrics::SourceCounters;
use crate::sink::processor::SinkProcessor;
use crate::sink::Sink;
use crate::source::{ChannelProcessor, Source};

/// A built source and the channels it writes to.
pub struct SourceNode {
    /// Name (`r1`).
    pub name: String,
    /// The type as written in the config.
    pub type_name: String,
    /// The source.
    pub source: Box<dyn Source>,
    /// Channel names, in order.
    pub channels: Vec<String>,
    /// Its dead-letter channel (`errorChannel`), if any.
    pub error_channel: Option<String>,
    /// Interceptors, selector and channels, ready to take batches.
    pub processor: Arc<ChannelProcessor>,
    /// The source's counters (shared with the processor).
    pub counters: SourceCounters,
    /// Selector and chain, for the start-up log.
    pub routing: String,
}

/// A built channel.
pub struct ChannelNode {
    /// Name (`c1`).
    pub name: String,
    /// The type as written in the config.
    pub type_name: String,
    /// The channel.
    pub channel: ChannelRef,
}

/// A built sink and the channel it drains.
pub struct SinkNode {
    /// Name (`k1`).
    pub name: String,
    /// The type as written in the config.
    pub type_name: String,
    /// The sink.
    pub sink: Box<dyn Sink>,
    /// The channel's name.
    pub channel: String,
    /// Flumen extension `maxEventsPerSecond` (0 = unlimited).
    pub max_events_per_second: u64,
    /// Sink-side interceptors.
    pub chain: Chain,
    /// Its dead-letter channel (`errorChannel`), if any.
    pub error_channel: Option<String>,
    /// Its counters (shared with monitoring).
    pub counters: crate::metrics::SinkCounters,
}

/// A sink group and its processor.
pub struct GroupNode {
    /// The group's name.
    pub name: String,
    /// Member sinks, in order.
    pub sinks: Vec<String>,
    /// The processor that picks among them.
    pub processor: SinkProcessor,
}

/// The agent graph.
pub struct Topology {
    /// The agent's name.
    pub agent: String,
    /// Sources.
    pub sources: Vec<SourceNode>,
    /// Channels.
    pub channels: Vec<ChannelNode>,
    /// Sinks.
    pub sinks: Vec<SinkNode>,
    /// Sink groups (sinks in no group run alone with the default processor).
    pub groups: Vec<GroupNode>,
}

/// The serializable shape of a topology (for `flumen check --json` and tests).
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Shape {
    /// The agent's name.
    pub agent: String,
    /// `(name, type, channels)` per source.
    pub sources: Vec<(String, String, Vec<String>)>,
    /// `(name, type)` per channel.
    pub channels: Vec<(String, String)>,
    /// `(name, type, channel)` per sink.
    pub sinks: Vec<(String, String, String)>,
    /// `(name, processor, sinks)` per sink group.
    pub sinkgroups: Vec<(String, String, Vec<String>)>,
    /// `(component, channel)` for each dead-letter channel.
    pub error_channels: Vec<(String, String)>,
}

impl Topology {
    /// The graph without the component objects.
    pub fn shape(&self) -> Shape {
        Shape {
            agent: self.agent.clone(),
            sources: self
                .sources
                .iter()
                .map(|s| (s.name.clone(), s.type_name.clone(), s.channels.clone()))
                .collect(),
            channels: self
                .channels
                .iter()
                .map(|c| (c.name.clone(), c.type_name.clone()))
                .collect(),
            sinks: self
                .sinks
                .iter()
                .map(|s| (s.name.clone(), s.type_name.clone(), s.channel.clone()))
                .collect(),
            sinkgroups: self
                .groups
                .iter()
                .map(|g| {
                    (
                        g.name.clone(),
                        g.processor.name().to_string(),
                        g.sinks.clone(),
                    )
                })
                .collect(),
            error_channels: self
                .sources
                .iter()
                .filter_map(|s| Some((s.name.clone(), s.error_channel.clone()?)))
                .chain(
                    self.sinks
                        .iter()
                        .filter_map(|s| Some((s.name.clone(), s.error_channel.clone()?))),
                )
                .collect(),
        }
    }
}

impl Shape {
    /// A plain-text listing for `flumen check`.
    pub fn to_text(&self) -> String {
        let mut out = format!("agent {}\n", self.agent);
        for (name, t, channels) in &self.sources {
            out.push_str(&format!(
                "  source  {name} ({t}) -> {}\n",
                channels.join(", ")
            ));
        }
        for (name, t) in &self.channels {
            out.push_str(&format!("  channel {name} ({t})\n"));
        }
        for (name, t, channel) in &self.sinks {
            out.push_str(&format!("  sink    {name} ({t}) <- {channel}\n"));
        }
        for (name, processor, sinks) in &self.sinkgroups {
            out.push_str(&format!(
                "  group   {name} ({processor}): {}\n",
                sinks.join(", ")
            ));
        }
        for (component, channel) in &self.error_channels {
            out.push_str(&format!("  errors  {component} -> {channel}\n"));
        }
        out
    }

    /// A Mermaid flowchart.
    pub fn to_mermaid(&self) -> String {
        let mut out = String::from("flowchart LR\n");
        for (name, t, _) in &self.sources {
            out.push_str(&format!("  src_{}[\"{name} ({t})\"]\n", id(name)));
        }
        for (name, t) in &self.channels {
            out.push_str(&format!("  ch_{}[(\"{name} ({t})\")]\n", id(name)));
        }
        for (name, t, _) in &self.sinks {
            out.push_str(&format!("  sink_{}[/\"{name} ({t})\"/]\n", id(name)));
        }
        for (name, _, channels) in &self.sources {
            for c in channels {
                out.push_str(&format!("  src_{} --> ch_{}\n", id(name), id(c)));
            }
        }
        for (name, _, channel) in &self.sinks {
            out.push_str(&format!("  ch_{} --> sink_{}\n", id(channel), id(name)));
        }
        for (component, channel) in &self.error_channels {
            let node = if self.sources.iter().any(|s| &s.0 == component) {
                format!("src_{}", id(component))
            } else {
                format!("sink_{}", id(component))
            };
            out.push_str(&format!("  {node} -. errors .-> ch_{}\n", id(channel)));
        }
        for (name, processor, sinks) in &self.sinkgroups {
            out.push_str(&format!(
                "  subgraph group_{}[\"{name} ({processor})\"]\n",
                id(name)
            ));
            for s in sinks {
                out.push_str(&format!("    sink_{}\n", id(s)));
            }
            out.push_str("  end\n");
        }
        out
    }

    /// A Graphviz digraph.
    pub fn to_dot(&self) -> String {
        let mut out = format!("digraph \"{}\" {{\n  rankdir=LR;\n", esc(&self.agent));
        for (name, t, _) in &self.sources {
            out.push_str(&format!(
                "  \"source:{0}\" [label=\"{0}\\n({1})\", shape=box];\n",
                esc(name),
                esc(t)
            ));
        }
        for (name, t) in &self.channels {
            out.push_str(&format!(
                "  \"channel:{0}\" [label=\"{0}\\n({1})\", shape=cylinder];\n",
                esc(name),
                esc(t)
            ));
        }
        for (name, t, _) in &self.sinks {
            out.push_str(&format!(
                "  \"sink:{0}\" [label=\"{0}\\n({1})\", shape=parallelogram];\n",
                esc(name),
                esc(t)
            ));
        }
        for (name, _, channels) in &self.sources {
            for c in channels {
                out.push_str(&format!(
                    "  \"source:{}\" -> \"channel:{}\";\n",
                    esc(name),
                    esc(c)
                ));
            }
        }
        for (name, _, channel) in &self.sinks {
            out.push_str(&format!(
                "  \"channel:{}\" -> \"sink:{}\";\n",
                esc(channel),
                esc(name)
            ));
        }
        for (component, channel) in &self.error_channels {
            let kind = if self.sources.iter().any(|s| &s.0 == component) {
                "source"
            } else {
                "sink"
            };
            out.push_str(&format!(
                "  \"{kind}:{}\" -> \"channel:{}\" [style=dashed, label=\"errors\"];\n",
                esc(component),
                esc(channel)
            ));
        }
        for (name, processor, sinks) in &self.sinkgroups {
            out.push_str(&format!(
                "  subgraph \"cluster_{0}\" {{ label=\"{0} ({1})\";",
                esc(name),
                esc(processor)
            ));
            for s in sinks {
                out.push_str(&format!(" \"sink:{}\";", esc(s)));
            }
            out.push_str(" }\n");
        }
        out.push_str("}\n");
        out
    }
}

/// A Mermaid-safe node id.
fn id(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

/// Escapes a DOT string.
fn esc(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}
