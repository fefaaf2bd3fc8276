//! `flumen check` over every real Flume config of the shared corpus, for every agent each
//! defines: no crash, no hang, valid JSON, and every finding placed at a file and line.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

fn corpus_dir() -> PathBuf {
    shared_dir().join("corpus/flume-configs")
}

/// `(file name, agent names)` from the corpus INDEX.tsv.
fn corpus() -> Vec<(String, Vec<String>)> {
    let index = std::fs::read_to_string(corpus_dir().join("INDEX.tsv")).expect("reading INDEX.tsv");
    index
        .lines()
        .skip(1)
        .filter_map(|l| {
            let cols: Vec<&str> = l.split('\t').collect();
            let agents = cols.get(4)?.split_whitespace().map(String::from).collect();
            Some((cols[0].to_string(), agents))
        })
        .collect()
}

/// Finding kinds that concern a whole agent rather than a line of the file.
const AGENT_LEVEL: &[&str] = &["agent-not-found"];

#[test]
fn every_corpus_config_checks_without_crashing_and_places_every_finding() {
    let files = corpus();
    assert!(files.len() >= 48, "corpus has {} files", files.len());
    let mut checked = 0;
    for (file, agents) in &files {
        let path = corpus_dir().join(file);
        for agent in agents {
            let start = Instant::now();
            let out = Command::new(flumen_bin())
                .args(["check", "--json", "-n", agent, "-f"])
                .arg(&path)
                .env("FLUMEN_CORPUS_TEST", "1")
                .output()
                .expect("running flumen check");
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "{file} / {agent}: check took {:?}",
                start.elapsed()
            );
            let code = out.status.code();
            assert!(
                matches!(code, Some(0) | Some(1)),
                "{file} / {agent}: exit {code:?}, stderr: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let json: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
                panic!(
                    "{file} / {agent}: bad JSON: {e}: {}",
                    String::from_utf8_lossy(&out.stdout)
                )
            });
            for f in json["findings"].as_array().expect("findings array") {
                let kind = f["kind"].as_str().unwrap_or_default();
                if AGENT_LEVEL.contains(&kind) {
                    continue;
                }
                assert!(
                    f["file"]
                        .as_str()
                        .is_some_and(|p| p.ends_with(file.as_str()))
                        && f["line"].as_u64().is_some_and(|l| l > 0),
                    "{file} / {agent}: finding without file and line: {f}"
                );
            }
            // `check` exits 1 exactly when there are findings.
            let has_findings = !json["findings"].as_array().unwrap().is_empty();
            assert_eq!(code == Some(1), has_findings, "{file} / {agent}");
            checked += 1;
        }
    }
    assert!(checked >= 55, "checked {checked} agent configs");
}
