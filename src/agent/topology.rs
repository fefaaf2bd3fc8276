//! A built, not yet started, agent graph, and its printed forms (`check`, `graph`).

use serde::Serialize;

use crate::channel::ChannelRef;
use crate::sink::Sink;
use crate::source::Source;

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
