//! The Prometheus text exposition format (version 0.0.4) of every component's counters.
//!
//! Each Flume counter `EventPutSuccessCount` of a channel becomes
//! `flumen_channel_event_put_success_count{agent="a1",component="c1",type="memory"} 42`.
//! Counts are `counter`s, sizes and times `gauge`s. Every metric family is written once with its
//! `# HELP` and `# TYPE`, then one sample per component.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::flume_json::pairs;
use super::View;

/// The exposition.
pub fn render(agent: &str, view: &View) -> String {
    // family name -> (is_counter, samples)
    let mut families: BTreeMap<String, (bool, Vec<String>)> = BTreeMap::new();
    for c in view.components.iter() {
        let labels = format!(
            "agent=\"{}\",component=\"{}\",type=\"{}\"",
            escape(agent),
            escape(&c.name),
            escape(&c.type_name)
        );
        for (key, value) in pairs(c) {
            if key == "Type" {
                continue;
            }
            let value = match key {
                "Open" => if value == "true" { "1" } else { "0" }.to_string(),
                "ChannelFillPercentage" if value.contains('E') => "+Inf".to_string(),
                _ => value,
            };
            let name = format!("flumen_{}_{}", c.kind().to_ascii_lowercase(), snake(key));
            let counter = key.ends_with("Count") || key.ends_with("Fail");
            let entry = families
                .entry(name.clone())
                .or_insert((counter, Vec::new()));
            entry.1.push(format!("{name}{{{labels}}} {value}"));
        }
    }
    let mut out = String::new();
    for (name, (counter, samples)) in &families {
        let kind = if *counter { "counter" } else { "gauge" };
        let _ = writeln!(
            out,
            "# HELP {name} Flume's {} for this component.",
            flume_name(name)
        );
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for s in samples {
            out.push_str(s);
            out.push('\n');
        }
    }
    process_metrics(&mut out);
    out
}

/// `EventPutSuccessCount` → `event_put_success_count`.
fn snake(key: &str) -> String {
    let mut out = String::with_capacity(key.len() + 4);
    for (i, ch) in key.chars().enumerate() {
        if ch.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(ch.to_ascii_lowercase());
        } else {
            out.push(ch);
        }
    }
    out
}

fn flume_name(family: &str) -> String {
    family
        .split('_')
        .skip(2)
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Resident memory, CPU time and start time of this process, from `/proc/self`.
fn process_metrics(out: &mut String) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let rss_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok());
    if let Some(kib) = rss_kib {
        let _ = writeln!(
            out,
            "# HELP process_resident_memory_bytes Resident memory size in bytes."
        );
        let _ = writeln!(out, "# TYPE process_resident_memory_bytes gauge");
        let _ = writeln!(out, "process_resident_memory_bytes {}", kib * 1024);
    }
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = clock_ticks_per_second();
    if let (Some(utime), Some(stime)) = (
        fields.get(11).and_then(|v| v.parse::<u64>().ok()),
        fields.get(12).and_then(|v| v.parse::<u64>().ok()),
    ) {
        let secs = (utime + stime) as f64 / ticks;
        let _ = writeln!(
            out,
            "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds."
        );
        let _ = writeln!(out, "# TYPE process_cpu_seconds_total counter");
        let _ = writeln!(out, "process_cpu_seconds_total {secs}");
    }
}

/// `USER_HZ`, the unit of `/proc` CPU times: 100 on every Linux architecture Flumen builds for.
fn clock_ticks_per_second() -> f64 {
    100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_snake_case() {
        assert_eq!(snake("EventPutSuccessCount"), "event_put_success_count");
        assert_eq!(
            flume_name("flumen_channel_event_put_success_count"),
            "EventPutSuccessCount"
        );
    }
}
