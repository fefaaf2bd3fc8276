//! The structural view of one agent after Flume's configuration rules have run.
//!
//! This is what `FlumeConfiguration` leaves standing: the components Flume keeps, their raw
//! properties (relative keys, with origins) and their wiring. Typed reading of each component's
//! properties happens later, when the registry builds it (as in Flume's
//! `AbstractConfigurationProvider`), and may drop more components.

use super::finding::Origin;
use super::props::{Prop, Props};

/// The kind of a component, as in Flume's key `<agent>.<kind>.<name>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ComponentKind {
    /// `<agent>.sources.<name>`
    Source,
    /// `<agent>.channels.<name>`
    Channel,
    /// `<agent>.sinks.<name>`
    Sink,
    /// `<agent>.sinkgroups.<name>`
    SinkGroup,
}

impl ComponentKind {
    /// Flume's plural key segment (`sources`, `channels`, `sinks`, `sinkgroups`).
    pub fn key(self) -> &'static str {
        match self {
            ComponentKind::Source => "sources",
            ComponentKind::Channel => "channels",
            ComponentKind::Sink => "sinks",
            ComponentKind::SinkGroup => "sinkgroups",
        }
    }

    /// Singular name for messages (`source`, `channel`, `sink`, `sink group`).
    pub fn noun(self) -> &'static str {
        match self {
            ComponentKind::Source => "source",
            ComponentKind::Channel => "channel",
            ComponentKind::Sink => "sink",
            ComponentKind::SinkGroup => "sink group",
        }
    }
}

/// One configured component that Flume's structural validation kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ComponentSpec {
    /// The component's name (`r1`).
    pub name: String,
    /// The `type` value as written (alias or Java class name), with its origin.
    pub type_: Prop,
    /// Every other key under `<agent>.<kind>.<name>.`, relative (`port`, `selector.type`,
    /// `sink.directory`), excluding `type`, `channels` (sources) and `channel` (sinks).
    pub props: Props,
}

/// A source and the channels it writes to (in the order written, unknown ones removed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceSpec {
    /// Name, type and properties.
    pub component: ComponentSpec,
    /// Channel names from `<src>.channels`, each an existing channel of the agent.
    pub channels: Vec<String>,
    /// Where `<src>.channels` was written (findings about a lost channel point there).
    pub channels_origin: Origin,
}

/// A sink and the one channel it drains.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SinkSpec {
    /// Name, type and properties.
    pub component: ComponentSpec,
    /// The channel from `<sink>.channel`, an existing channel of the agent.
    pub channel: String,
    /// Where `<sink>.channel` was written (findings about a lost channel point there).
    pub channel_origin: Origin,
}

/// A sink group: several sinks driven by one processor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SinkGroupSpec {
    /// The group's name.
    pub name: String,
    /// Member sinks in the order written (each exists and is in no other group).
    pub sinks: Vec<String>,
    /// Every key under `<agent>.sinkgroups.<name>.` except `sinks`, relative (`processor.type`).
    pub props: Props,
    /// Where the group's `sinks` key was written.
    pub origin: Option<Origin>,
}

/// One agent as Flume's configuration rules leave it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AgentSpec {
    /// The agent name (the first key segment).
    pub name: String,
    /// Surviving sources, in the order of `<agent>.sources`.
    pub sources: Vec<SourceSpec>,
    /// Surviving channels, in the order of `<agent>.channels`.
    pub channels: Vec<ComponentSpec>,
    /// Surviving sinks, in the order of `<agent>.sinks`.
    pub sinks: Vec<SinkSpec>,
    /// Surviving sink groups, in the order of `<agent>.sinkgroups`.
    pub sinkgroups: Vec<SinkGroupSpec>,
    /// Valid channels no source or sink uses. Flume removes them, but only after its factory
    /// has loaded their type: an unloadable type there still stops the whole agent.
    pub unused_channels: Vec<ComponentSpec>,
    /// The `-D` system properties the config was loaded with (builders may read them).
    pub system_properties: std::collections::BTreeMap<String, String>,
}
