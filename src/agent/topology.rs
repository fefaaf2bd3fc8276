//! A built, not yet started, agent graph, and its printed forms (`check`, `graph`).

use std::sync::Arc;

use crate::channel::ChannelRef;
use crate::interceptor::Chain;
use crate::metrics::SourceCounters;
use crate::sink::processor::SinkProcessor;
use crate::sink::Sink;
use crate::source::{ChannelProcessor, Source};

pub use crate::shape::Shape;

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
