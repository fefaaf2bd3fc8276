//! The dashboard's state (what the last samples said) and its plain-text form (`--once`).
//! Pure: samples and the time they were taken come in, text goes out.

use super::fetch::{FetchError, Sample};
use super::model::{format_rate, rows, Fill, Graph, Reading, Row};

/// What the status line says.
#[derive(Clone, Debug, PartialEq)]
pub enum Status {
    /// No answer yet.
    Connecting,
    /// The last request succeeded.
    Ok,
    /// The last request failed (the table shows the last good sample).
    Error(String),
}

/// Everything one frame shows.
#[derive(Clone, Debug)]
pub struct Dashboard {
    /// The agent's base URL.
    pub url: String,
    /// The last good reading (rates of the next one are against it).
    last: Option<Reading>,
    /// The graph from the last good sample (`None`: the agent serves no `/topology`).
    pub graph: Option<Graph>,
    /// The table.
    pub rows: Vec<Row>,
    /// Wall-clock time (`HH:MM:SS`) of the last good sample.
    pub refreshed: Option<String>,
    /// The status line.
    pub status: Status,
}

impl Dashboard {
    /// An empty dashboard for the agent at `url`.
    pub fn new(url: &str) -> Dashboard {
        Dashboard {
            url: url.to_string(),
            last: None,
            graph: None,
            rows: Vec::new(),
            refreshed: None,
            status: Status::Connecting,
        }
    }

    /// Takes in one sample's outcome, taken at wall-clock `time` (`HH:MM:SS`). A failure keeps
    /// the last table on screen and forgets the last reading, so that rates after a gap are
    /// again between two consecutive samples.
    pub fn update(&mut self, outcome: Result<Sample, FetchError>, time: &str) {
        match outcome {
            Ok(sample) => {
                self.rows = rows(self.last.as_ref(), &sample.reading, sample.graph.as_ref());
                self.last = Some(sample.reading);
                self.graph = sample.graph;
                self.refreshed = Some(time.to_string());
                self.status = Status::Ok;
            }
            Err(error) => {
                self.last = None;
                self.status = Status::Error(format!("{time} {error}"));
            }
        }
    }

    /// The agent's name, when the graph gives it.
    pub fn agent(&self) -> Option<&str> {
        self.graph
            .as_ref()
            .map(|g| g.agent.as_str())
            .filter(|a| !a.is_empty())
    }

    /// The header line: URL, agent, time of the last refresh, status.
    pub fn header(&self) -> String {
        let mut h = format!("flumen top  {}", self.url);
        if let Some(agent) = self.agent() {
            h.push_str(&format!("  agent {agent}"));
        }
        if let Some(t) = &self.refreshed {
            h.push_str(&format!("  refreshed {t}"));
        }
        h
    }

    /// The status as one line of text.
    pub fn status_line(&self) -> String {
        match &self.status {
            Status::Connecting => "connecting...".to_string(),
            Status::Ok => "ok".to_string(),
            Status::Error(e) => format!("error: {e} (retrying)"),
        }
    }

    /// The topology panel's lines (a note when the agent serves no graph).
    pub fn topology_lines(&self) -> Vec<String> {
        match &self.graph {
            Some(g) => {
                let paths = g.paths();
                if paths.is_empty() {
                    vec!["(no paths)".to_string()]
                } else {
                    paths
                }
            }
            None if self.refreshed.is_some() => {
                vec!["(no /topology at this endpoint: Apache Flume serves only /metrics)".into()]
            }
            None => Vec::new(),
        }
    }

    /// The whole frame as plain text (what `--once` prints).
    pub fn to_text(&self) -> String {
        let mut out = format!("{}\nstatus: {}\n\n", self.header(), self.status_line());
        let mut table = vec![[
            "KIND".to_string(),
            "NAME".to_string(),
            "TYPE".to_string(),
            "IN/S".to_string(),
            "OUT/S".to_string(),
            "FILL".to_string(),
            "ERRORS".to_string(),
        ]];
        for r in &self.rows {
            table.push([
                r.kind.word().to_string(),
                r.name.clone(),
                r.type_name.clone().unwrap_or_else(|| "-".into()),
                format_rate(r.rate_in),
                format_rate(r.rate_out),
                r.fill.map(|f| text_bar(f, 20)).unwrap_or_default(),
                r.errors.to_string(),
            ]);
        }
        let widths: Vec<usize> = (0..7)
            .map(|i| {
                table
                    .iter()
                    .map(|row| row[i].chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        for row in &table {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                let pad = widths[i].saturating_sub(cell.chars().count());
                // Numbers right-aligned, text left-aligned.
                if (3..=4).contains(&i) || i == 6 {
                    line.push_str(&" ".repeat(pad));
                    line.push_str(cell);
                } else {
                    line.push_str(cell);
                    line.push_str(&" ".repeat(pad));
                }
                line.push_str("  ");
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        let topology = self.topology_lines();
        if !topology.is_empty() {
            out.push_str("\ntopology\n");
            for l in topology {
                out.push_str(&format!("  {l}\n"));
            }
        }
        out
    }
}

/// `[#####---------------]  25% 250/1000` with `width` cells inside the brackets.
pub fn text_bar(fill: Fill, width: usize) -> String {
    let full = ((fill.ratio() * width as f64).round() as usize).min(width);
    format!(
        "[{}{}] {:>3}% {}/{}",
        "#".repeat(full),
        "-".repeat(width - full),
        fill.percent(),
        fill.size,
        fill.capacity
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::parse_metrics;
    use std::time::{Duration, Instant};

    fn sample(at: Instant, received: u64, size: u64, topology: bool) -> Sample {
        let body = format!(
            r#"{{"SOURCE.r1": {{"EventReceivedCount": "{received}", "EventAcceptedCount": "{received}"}},
                "CHANNEL.c1": {{"ChannelSize": "{size}", "ChannelCapacity": "1000",
                                "EventPutSuccessCount": "{received}", "EventTakeSuccessCount": "0"}},
                "SINK.k1": {{"EventWriteFail": "3"}}}}"#
        );
        Sample {
            reading: Reading {
                at,
                components: parse_metrics(&body).unwrap(),
            },
            graph: topology.then(|| {
                Graph::parse(
                    r#"{"agent":"a1","sources":[["r1","seq",["c1"]]],"channels":[["c1","memory"]],
                        "sinks":[["k1","null","c1"]]}"#,
                )
                .unwrap()
            }),
        }
    }

    #[test]
    fn the_text_frame_lists_every_component_with_rates_fill_and_topology() {
        let t0 = Instant::now();
        let mut d = Dashboard::new("http://127.0.0.1:1");
        d.update(Ok(sample(t0, 0, 0, true)), "12:00:00");
        d.update(
            Ok(sample(t0 + Duration::from_secs(1), 500, 250, true)),
            "12:00:01",
        );
        let text = d.to_text();
        assert!(
            text.starts_with(
                "flumen top  http://127.0.0.1:1  agent a1  refreshed 12:00:01\nstatus: ok\n"
            ),
            "{text}"
        );
        let line = |prefix: &str| {
            text.lines()
                .find(|l| l.starts_with(prefix))
                .unwrap_or_else(|| panic!("no {prefix} line in\n{text}"))
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
        };
        assert_eq!(line("source"), "source r1 seq 500 500 0");
        assert_eq!(
            line("channel"),
            "channel c1 memory 500 0 [#####---------------] 25% 250/1000 0"
        );
        assert_eq!(line("sink"), "sink k1 null - - 3");
        assert!(
            text.ends_with("\ntopology\n  r1 (seq) → c1 (memory) → k1 (null)\n"),
            "{text}"
        );
    }

    #[test]
    fn a_failure_keeps_the_table_says_so_and_restarts_the_rates() {
        let t0 = Instant::now();
        let mut d = Dashboard::new("http://h:1");
        assert_eq!(d.status_line(), "connecting...");
        d.update(Ok(sample(t0, 0, 0, false)), "12:00:00");
        let refused = FetchError::Request {
            url: "http://h:1/metrics".into(),
            message: "connection refused".into(),
        };
        d.update(Err(refused), "12:00:01");
        assert_eq!(
            d.status_line(),
            "error: 12:00:01 GET http://h:1/metrics: connection refused (retrying)"
        );
        assert_eq!(d.rows.len(), 3, "the last table stays");
        d.update(
            Ok(sample(t0 + Duration::from_secs(2), 10, 0, false)),
            "12:00:02",
        );
        assert_eq!(d.status, Status::Ok);
        assert!(d.rows.iter().all(|r| r.rate_in.is_none()));
        // No /topology: no agent name, a note instead of paths, types unknown.
        assert_eq!(d.agent(), None);
        assert!(d.topology_lines()[0].contains("no /topology"));
        assert!(d.to_text().contains("source   r1    -"), "{}", d.to_text());
    }

    #[test]
    fn bars_fill_in_proportion() {
        let f = |size, capacity| text_bar(Fill { size, capacity }, 10);
        assert_eq!(f(0, 100), "[----------]   0% 0/100");
        assert_eq!(f(50, 100), "[#####-----]  50% 50/100");
        assert_eq!(f(120, 100), "[##########] 100% 120/100");
    }
}
