//! The shape of an agent's graph, without the components: what `flumen check --json` prints,
//! `/topology` serves and `flumen graph` draws (text, Mermaid, Graphviz).

use serde::Serialize;

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
