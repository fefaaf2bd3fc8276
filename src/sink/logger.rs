//! `logger` sink (`org.apache.flume.sink.LoggerSink`): logs each event at INFO in Flume's
//! format, `Event: { headers:{k=v} body: 48 65 6C 6C 6F   Hello }`, with at most
//! `maxBytesToLog` bytes of the body shown as a hex dump.

use async_trait::async_trait;

use super::{Sink, SinkError};
use crate::config::PropReader;
use crate::event::{headers_to_java_string, Event};

/// Flume's default `maxBytesToLog`.
pub const DEFAULT_MAX_BYTES_TO_LOG: usize = 16;
/// The logger sink takes Flume's default sink batch of 100 events per transaction.
const BATCH_SIZE: usize = 100;

/// The logger sink.
pub struct LoggerSink {
    max_bytes_to_log: usize,
}

impl LoggerSink {
    /// Reads `maxBytesToLog`.
    pub fn from_props(r: &mut PropReader<'_>) -> Option<Self> {
        Some(LoggerSink {
            max_bytes_to_log: r.number("maxBytesToLog", DEFAULT_MAX_BYTES_TO_LOG, 0, 1 << 20)?,
        })
    }
}

#[async_trait]
impl Sink for LoggerSink {
    fn type_name(&self) -> &'static str {
        "logger"
    }

    fn batch_size(&self) -> usize {
        BATCH_SIZE
    }

    fn describe(&self) -> String {
        format!("maxBytesToLog={}", self.max_bytes_to_log)
    }

    async fn deliver(&mut self, events: &[Event]) -> Result<(), SinkError> {
        for event in events {
            tracing::info!(target: "flumen::sink::logger", "Event: {}", dump_event(event, self.max_bytes_to_log));
        }
        Ok(())
    }
}

/// Flume's `EventHelper.dumpEvent`: headers as a Java map, the body as a hex dump of at most
/// `max_bytes` bytes (16 per row, with the first row's offset removed).
pub fn dump_event(event: &Event, max_bytes: usize) -> String {
    let mut head = Vec::new();
    headers_to_java_string(&event.headers, &mut head);
    let data = &event.body[..event.body.len().min(max_bytes)];
    let mut body = String::new();
    for (row, chunk) in data.chunks(16).enumerate() {
        if row > 0 {
            body.push('\n');
            body.push_str(&format!("{:08X}", row * 16));
        }
        body.push(' ');
        for i in 0..16 {
            match chunk.get(i) {
                Some(b) => body.push_str(&format!("{b:02X} ")),
                None => body.push_str("   "),
            }
        }
        for &b in chunk {
            body.push(if (b' '..127).contains(&b) {
                b as char
            } else {
                '.'
            });
        }
    }
    format!(
        "{{ headers:{} body:{} }}",
        String::from_utf8_lossy(&head),
        body
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dumps_like_flume_event_helper() {
        let e = Event::new("Hello\r");
        assert_eq!(
            dump_event(&e, 16),
            "{ headers:{} body: 48 65 6C 6C 6F 0D                               Hello. }"
        );
        let long = Event::new("0123456789abcdefXYZ");
        assert_eq!(
            dump_event(&long, 16),
            "{ headers:{} body: 30 31 32 33 34 35 36 37 38 39 61 62 63 64 65 66 0123456789abcdef }"
        );
        assert_eq!(dump_event(&Event::new(""), 16), "{ headers:{} body: }");
    }
}
