//! What the monitoring endpoints show of a built topology: one [`Component`] per source,
//! channel and sink, sharing their counters, and the graph's shape. The monitor itself knows
//! nothing of the agent's types.

use super::topology::{ChannelNode, SinkNode, SourceNode, Topology};
use crate::config::ComponentKind;
use crate::metrics::CounterSet;
use crate::monitor::{Component, Counters, Registry, View};
use crate::registry::{self, Lookup};

/// The counter class the registry names for a type.
fn counter_set(kind: ComponentKind, type_name: &str) -> CounterSet {
    match registry::lookup(kind, type_name) {
        Lookup::Found(entry) => entry.counters,
        _ => CounterSet::Standard,
    }
}

impl Registry {
    /// The components of `topology` (before it runs; the counters are shared).
    pub fn of(topology: &Topology) -> Registry {
        Registry::new(topology.agent.clone(), View::of(topology))
    }
}

impl View {
    /// The components of `topology`, with its shape.
    pub fn of(topology: &Topology) -> View {
        let mut components = Vec::new();
        for s in &topology.sources {
            components.push(Component::source(s));
        }
        for c in &topology.channels {
            components.push(Component::channel(c));
        }
        for k in &topology.sinks {
            components.push(Component::sink(k));
        }
        View {
            components,
            shape: topology.shape(),
        }
    }
}

impl Component {
    /// A source's entry.
    pub fn source(s: &SourceNode) -> Component {
        Component {
            name: s.name.clone(),
            type_name: s.type_name.clone(),
            counters: Counters::Source(s.counters.clone()),
            counter_set: counter_set(ComponentKind::Source, &s.type_name),
        }
    }

    /// A channel's entry.
    pub fn channel(c: &ChannelNode) -> Component {
        Component {
            name: c.name.clone(),
            type_name: c.type_name.clone(),
            counters: Counters::Channel(c.channel.clone()),
            counter_set: counter_set(ComponentKind::Channel, &c.type_name),
        }
    }

    /// A sink's entry.
    pub fn sink(k: &SinkNode) -> Component {
        Component {
            name: k.name.clone(),
            type_name: k.type_name.clone(),
            counters: Counters::Sink(k.counters.clone()),
            counter_set: counter_set(ComponentKind::Sink, &k.type_name),
        }
    }
}
