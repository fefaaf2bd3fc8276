//! What Flume's three Kafka components share: the broker address with its deprecated
//! spellings, the `kafka.producer.*` / `kafka.consumer.*` pass-through keys translated from the
//! Java client's names into librdkafka's, and the Java client's defaults where librdkafka's
//! differ.
//!
//! Flume embeds the Java Kafka client (2.7 in Flume 1.11); Flumen uses librdkafka through
//! `rdkafka`. Most settings have the same name in both (librdkafka keeps Java aliases such as
//! `acks`, `retries`, `linger.ms`, `delivery.timeout.ms`). A key that differs is renamed
//! ([`JAVA_RENAMES`]); a key librdkafka does not know is a Java-only setting (serializer
//! classes, `buffer.memory`, `max.poll.records`, JKS truststores): it is reported by name and
//! ignored, never a failure to start, because the component works without it.
//!
//! Java client defaults kept on purpose: the producer's partitioner is `murmur2_random`, so a
//! keyed record lands on the partition the Java client picks (librdkafka defaults to CRC32),
//! `message.timeout.ms` is 120 s (Java's `delivery.timeout.ms`; librdkafka's is 300 s), and
//! `linger.ms` is 1 ms (librdkafka's is 5 ms; Java's is 0 and Flume flushes every batch).

pub mod context;
pub mod loops;
pub mod offsets;

use rdkafka::config::ClientConfig;

use crate::config::{Finding, FindingKind, PropReader};

/// Java client keys whose librdkafka name differs.
pub const JAVA_RENAMES: &[(&str, &str)] = &[
    ("fetch.max.wait.ms", "fetch.wait.max.ms"),
    ("max.partition.fetch.bytes", "fetch.message.max.bytes"),
    ("ssl.truststore.location", "ssl.ca.location"),
];

/// Java-only keys Flume itself sets or that have no meaning for librdkafka: accepted silently
/// (Flume's own serializers are what Flumen does anyway).
const JAVA_SILENT: &[&str] = &[
    "key.serializer",
    "value.serializer",
    "key.deserializer",
    "value.deserializer",
];

/// Which side of the client a pass-through group configures.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// `kafka.producer.*`.
    Producer,
    /// `kafka.consumer.*`.
    Consumer,
}

impl Role {
    fn prefix(self) -> &'static str {
        match self {
            Role::Producer => "kafka.producer",
            Role::Consumer => "kafka.consumer",
        }
    }
}

/// librdkafka settings, in the order they are applied (later ones win).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientSettings(pub Vec<(String, String)>);

impl ClientSettings {
    /// Sets `key` (replacing an earlier value).
    pub fn set(&mut self, key: &str, value: impl Into<String>) {
        self.0.retain(|(k, _)| k != key);
        self.0.push((key.to_string(), value.into()));
    }

    /// Sets `key` unless it is set already (a default the user may override).
    pub fn set_default(&mut self, key: &str, value: &str) {
        if self.get(key).is_none() {
            self.0.push((key.to_string(), value.to_string()));
        }
    }

    /// The value of `key`, if set.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// An rdkafka client config with these settings.
    pub fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        for (k, v) in &self.0 {
            config.set(k, v);
        }
        config
    }

    /// The settings for the start-up log, secrets masked.
    pub fn describe(&self) -> String {
        self.0
            .iter()
            .map(|(k, v)| {
                if k.contains("password") || k.contains("secret") || k.contains("jaas") {
                    format!("{k}=***")
                } else {
                    format!("{k}={v}")
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Reads `kafka.bootstrap.servers`, else the first deprecated key of `old` that is set (with
/// a finding, as Flume warns). `None` (and a finding that drops the component, as Flume's
/// `configure` throws) when neither is set.
pub fn bootstrap_servers(r: &mut PropReader<'_>, old: &[&str]) -> Option<String> {
    if let Some(servers) = r
        .opt_string("kafka.bootstrap.servers")
        .filter(|s| !s.is_empty())
    {
        for key in old {
            r.mark_used(key);
        }
        return Some(servers);
    }
    for key in old {
        if let Some(value) = deprecated(r, key, "kafka.bootstrap.servers") {
            return Some(value);
        }
    }
    r.required_string("kafka.bootstrap.servers")
}

/// A deprecated key's value, with a finding that names its replacement; `None` when absent
/// or empty.
pub fn deprecated(r: &mut PropReader<'_>, key: &str, replacement: &str) -> Option<String> {
    let prop = r.raw(key)?;
    let value = prop.value.trim().to_string();
    if value.is_empty() {
        return None;
    }
    r.push(Finding::new(
        FindingKind::Deprecated,
        Some(prop.origin.clone()),
        prop.full_key.clone(),
        format!(
            "`{key}` is deprecated; Flume (and Flumen) reads it as `{replacement}`. Rename it."
        ),
    ));
    Some(value)
}

/// The `kafka.producer.*` or `kafka.consumer.*` keys as librdkafka settings: Java names
/// renamed, Java-only keys reported and left out, values librdkafka refuses reported and left
/// out. Later settings (the component's own) override these.
pub fn pass_through(r: &mut PropReader<'_>, role: Role) -> ClientSettings {
    let prefix = role.prefix();
    r.mark_prefix_used(prefix);
    let mut settings = ClientSettings::default();
    for (key, prop) in r.sub_entries(prefix) {
        let value = prop.value.trim().to_string();
        if JAVA_SILENT.contains(&key.as_str()) {
            continue;
        }
        let name = JAVA_RENAMES
            .iter()
            .find(|(java, _)| *java == key)
            .map_or(key.as_str(), |(_, ours)| ours);
        let value = translate_value(name, &value);
        let mut probe = ClientConfig::new();
        probe.set(name, &value);
        match probe.create_native_config() {
            Ok(_) => settings.set(name, value),
            Err(error) => r.push(Finding::new(
                FindingKind::IgnoredKey,
                Some(prop.origin.clone()),
                prop.full_key.clone(),
                format!(
                    "`{prefix}.{key}` is a setting of Flume's Java Kafka client that librdkafka, Flumen's client, does not take ({}); it is ignored.",
                    rdkafka_reason(&error)
                ),
            )),
        }
    }
    settings
}

/// Java class names of consumer assignors → librdkafka's strategy names; anything else as
/// written.
fn translate_value(name: &str, value: &str) -> String {
    if name != "partition.assignment.strategy" {
        return value.to_string();
    }
    value
        .split(',')
        .map(
            |class| match class.trim().rsplit('.').next().unwrap_or("") {
                "RangeAssignor" => "range",
                "RoundRobinAssignor" => "roundrobin",
                "CooperativeStickyAssignor" | "StickyAssignor" => "cooperative-sticky",
                other => other,
            },
        )
        .collect::<Vec<_>>()
        .join(",")
}

fn rdkafka_reason(error: &rdkafka::error::KafkaError) -> String {
    match error {
        rdkafka::error::KafkaError::ClientConfig(_, description, _, _) => description.clone(),
        other => other.to_string(),
    }
}

/// The Java producer's defaults where librdkafka's differ.
pub fn java_producer_defaults(settings: &mut ClientSettings) {
    settings.set_default("partitioner", "murmur2_random");
    // Flume flushes each batch (Java's linger.ms is 0): a take waits for its acks, so a
    // linger is latency on every transaction. librdkafka has no "send now" short of a
    // blocking flush, and with 0 it sends the first records of a take alone; 1 ms sends a
    // take in few requests, just after it is queued (measured: BENCHMARKS.md, Kafka).
    settings.set_default("linger.ms", "1");
    settings.set_default("message.timeout.ms", "120000");
}

/// `kafka.topic`, else the deprecated `topic` (with a finding), else `default`.
pub fn topic(r: &mut PropReader<'_>, default: &str) -> String {
    r.opt_string("kafka.topic")
        .filter(|t| !t.is_empty())
        .or_else(|| deprecated(r, "topic", "kafka.topic"))
        .unwrap_or_else(|| default.to_string())
}

/// `defaultPartitionId` and `partitionIdHeader` (a producer's fixed partition and the header
/// that overrides it); `None` when the id is not a partition number.
pub fn partition_keys(r: &mut PropReader<'_>) -> Option<(Option<i32>, Option<String>)> {
    let default_partition = match r.raw("defaultPartitionId") {
        Some(_) => Some(r.number("defaultPartitionId", 0, 0, i32::MAX)?),
        None => None,
    };
    Some((default_partition, r.opt_string("partitionIdHeader")))
}

/// `header.<flume header> = <kafka header>`: event headers and record headers mapped.
pub fn header_map(r: &mut PropReader<'_>) -> Vec<(String, String)> {
    r.mark_prefix_used("header");
    r.sub_entries("header")
        .into_iter()
        .map(|(k, p)| (k, p.value.trim().to_string()))
        .collect()
}

/// A topic name with Flume's `%{header}` substitution (`BucketPath.escapeString` for the
/// header form only): an absent header becomes the empty string, as in Flume.
pub fn substitute_headers(template: &str, headers: &crate::event::Headers) -> String {
    if !template.contains("%{") {
        return template.to_string();
    }
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("%{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find('}') {
            Some(end) => {
                if let Some(v) = headers.get(&after[..end]) {
                    out.push_str(v);
                }
                rest = &after[end + 1..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Props;

    #[test]
    fn java_keys_are_renamed_and_java_only_keys_reported() {
        let props = Props::from_pairs(
            "a.properties",
            "a1.sinks.k1",
            &[
                ("kafka.producer.linger.ms", "7"),
                ("kafka.producer.acks", "all"),
                ("kafka.producer.buffer.memory", "33554432"),
                ("kafka.producer.key.serializer", "x.Y"),
                ("kafka.consumer.fetch.max.wait.ms", "50"),
            ],
        );
        let mut r = PropReader::new(&props, "a1.sinks.k1");
        let producer = pass_through(&mut r, Role::Producer);
        let consumer = pass_through(&mut r, Role::Consumer);
        assert_eq!(producer.get("linger.ms"), Some("7"));
        assert_eq!(producer.get("acks"), Some("all"));
        assert_eq!(producer.get("buffer.memory"), None);
        assert_eq!(producer.get("key.serializer"), None);
        assert_eq!(consumer.get("fetch.wait.max.ms"), Some("50"));
        let findings = r.finish();
        assert_eq!(findings.len(), 1, "{findings:?}");
        assert_eq!(findings[0].key, "a1.sinks.k1.kafka.producer.buffer.memory");
        assert_eq!(findings[0].origin.as_ref().map(|o| o.line), Some(3));
    }

    #[test]
    fn deprecated_broker_list_is_read_with_a_finding() {
        let props = Props::from_pairs("a.properties", "a1.sinks.k1", &[("brokerList", "h:9092")]);
        let mut r = PropReader::new(&props, "a1.sinks.k1");
        assert_eq!(
            bootstrap_servers(&mut r, &["brokerList"]).as_deref(),
            Some("h:9092")
        );
        let findings = r.finish();
        assert_eq!(findings.len(), 1);
        assert_eq!(findings[0].kind, FindingKind::Deprecated);
    }

    #[test]
    fn topics_take_header_values() {
        let mut headers = crate::event::Headers::new();
        headers.insert("app".into(), "web".into());
        assert_eq!(
            substitute_headers("logs-%{app}-%{none}", &headers),
            "logs-web-"
        );
        assert_eq!(substitute_headers("plain", &headers), "plain");
        assert_eq!(substitute_headers("open-%{app", &headers), "open-%{app");
    }
}
