//! A Kafka source and a Kafka sink in one agent can feed a topic back into itself: the source
//! sets the `topic` header to the topic it read, and the sink, which lets that header choose
//! the topic (`allowTopicOverride`), writes every event back where it came from, for ever.
//! Flume's user guide warns about it; Flumen reports it as a finding at the sink.

use crate::config::{AgentSpec, ComponentSpec, Finding, FindingKind};

const SOURCE: &str = "org.apache.flume.source.kafka.KafkaSource";
const SINK: &str = "org.apache.flume.sink.kafka.KafkaSink";

fn value<'a>(c: &'a ComponentSpec, key: &str) -> Option<&'a str> {
    c.props.get(key).map(|p| p.value.trim())
}

fn flag(c: &ComponentSpec, key: &str, default: bool) -> bool {
    value(c, key).map_or(default, |v| v.eq_ignore_ascii_case("true"))
}

/// One finding per Kafka sink that can write a Kafka source's events back to their topic.
pub fn loop_findings(spec: &AgentSpec) -> Vec<Finding> {
    let mut out = Vec::new();
    for source in spec
        .sources
        .iter()
        .filter(|s| s.component.type_.value.trim() == SOURCE)
    {
        let s = &source.component;
        let header =
            flag(s, "setTopicHeader", true).then(|| value(s, "topicHeader").unwrap_or("topic"));
        let topics: Vec<&str> = value(s, "kafka.topics")
            .or(value(s, "topic"))
            .map(|t| t.split(',').map(str::trim).collect())
            .unwrap_or_default();
        for sink in spec.sinks.iter().filter(|k| {
            k.component.type_.value.trim() == SINK && source.channels.contains(&k.channel)
        }) {
            let k = &sink.component;
            let overrides = flag(k, "allowTopicOverride", true);
            let sink_header = value(k, "topicHeader").unwrap_or("topic");
            let sink_topic = value(k, "kafka.topic")
                .or(value(k, "topic"))
                .unwrap_or("default-flume-topic");
            let why = if overrides && header == Some(sink_header) {
                format!("the source sets the `{sink_header}` header to the topic it read and this sink lets that header choose the topic (`allowTopicOverride`), so every event goes back to its own topic. Set `setTopicHeader = false` on `{}` or `allowTopicOverride = false` here", s.name)
            } else if topics.contains(&sink_topic) {
                format!("it writes to `{sink_topic}`, which `{}` reads", s.name)
            } else {
                continue;
            };
            out.push(Finding::new(
                FindingKind::BadValue,
                Some(k.type_.origin.clone()),
                format!("{}.sinks.{}", spec.name, k.name),
                format!("Kafka sink `{}` can loop events from Kafka source `{}` back into Kafka for ever: {why}.", k.name, s.name),
            ));
        }
    }
    out
}
