//! What `flumen check` says of Kafka configs: deprecated keys mapped, Java-only client keys
//! named, a source-to-sink loop reported, a producer-only Kafka channel accepted, ZooKeeper
//! discovery refused. No broker needed.

use crate::common::*;

#[test]
fn kafka_config_maps_deprecated_keys_and_reports_java_only_ones() {
    let config = "a1.sources = r1\na1.channels = c1\na1.sinks = k1\n\
        a1.sources.r1.type = org.apache.flume.source.kafka.KafkaSource\n\
        a1.sources.r1.channels = c1\n\
        a1.sources.r1.kafka.bootstrap.servers = 127.0.0.1:9\n\
        a1.sources.r1.topic = old-topic\n\
        a1.sources.r1.groupId = old-group\n\
        a1.sources.r1.batchSize = 100\n\
        a1.sources.r1.kafka.consumer.max.poll.records = 10\n\
        a1.channels.c1.type = memory\n\
        a1.sinks.k1.type = org.apache.flume.sink.kafka.KafkaSink\n\
        a1.sinks.k1.channel = c1\n\
        a1.sinks.k1.brokerList = 127.0.0.1:9\n\
        a1.sinks.k1.requiredAcks = all\n\
        a1.sinks.k1.batchSize = 10\n\
        a1.sinks.k1.kafka.producer.buffer.memory = 1000\n";
    let (code, json, stderr) = check_json(config, &[]);
    let deprecated = findings_of(&json, "deprecated-key");
    let keys: Vec<&str> = deprecated
        .iter()
        .filter_map(|f| f["key"].as_str())
        .collect();
    for key in [
        "a1.sources.r1.topic",
        "a1.sources.r1.groupId",
        "a1.sinks.k1.brokerList",
        "a1.sinks.k1.requiredAcks",
        "a1.sinks.k1.batchSize",
    ] {
        assert!(keys.contains(&key), "{key} not reported: {json}");
    }
    let ignored = findings_of(&json, "ignored-key");
    let java_only: Vec<&str> = ignored.iter().filter_map(|f| f["key"].as_str()).collect();
    assert!(
        java_only.contains(&"a1.sources.r1.kafka.consumer.max.poll.records"),
        "{json}"
    );
    assert!(
        java_only.contains(&"a1.sinks.k1.kafka.producer.buffer.memory"),
        "{json}"
    );
    for f in deprecated.iter().chain(&ignored) {
        assert!(
            f["line"].as_u64().is_some() && f["file"].is_string(),
            "file and line: {f}"
        );
    }
    // Findings, not failures: the agent would start (the check exits non-zero only on them).
    assert!(findings_of(&json, "dropped-component").is_empty(), "{json}");
    let _ = (code, stderr);
    // The source sets `topic`, the sink lets it choose the topic: a loop, reported at the sink.
    let looped: Vec<String> = findings_of(&json, "bad-value")
        .iter()
        .filter_map(|f| f["message"].as_str().map(str::to_string))
        .filter(|m| m.contains("loop"))
        .collect();
    assert_eq!(looped.len(), 1, "{json}");
    let fixed = config.replace(
        "a1.sinks.k1.requiredAcks = all\n",
        "a1.sinks.k1.requiredAcks = all\na1.sinks.k1.allowTopicOverride = false\n",
    );
    let (_, json, _) = check_json(&fixed, &[]);
    assert!(!json.to_string().contains("loop"), "{json}");
    // A Kafka channel with a source and no sink feeds other programs: not a dead end.
    let producer_only = "a1.sources = r1\na1.channels = c1\n\
        a1.sources.r1.type = netcat\na1.sources.r1.bind = 127.0.0.1\na1.sources.r1.port = 0\n\
        a1.sources.r1.channels = c1\n\
        a1.channels.c1.type = org.apache.flume.channel.kafka.KafkaChannel\n\
        a1.channels.c1.kafka.bootstrap.servers = 127.0.0.1:9\n";
    let (code, json, _) = check_json(producer_only, &[]);
    assert_eq!(
        (code, json["findings"].as_array().map(Vec::len)),
        (0, Some(0)),
        "{json}"
    );
    // ZooKeeper discovery is something Flumen lacks: refused by name.
    let zk = config.replace(
        "a1.sources.r1.kafka.bootstrap.servers = 127.0.0.1:9\n",
        "a1.sources.r1.zookeeperConnect = zk:2181\n",
    );
    let (code, json, _) = check_json(&zk, &[]);
    assert_ne!(code, 0);
    assert!(json.to_string().contains("zookeeperConnect"), "{json}");
}
