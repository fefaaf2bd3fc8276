//! `seq` source (`org.apache.flume.source.SequenceGeneratorSource`): counts 0, 1, 2, ...
//!
//! Each event's body is the decimal counter, as in Flume. Batches of `batchSize` are put with
//! backpressure; the source stops after `totalEvents`.

use async_trait::async_trait;
use bytes::BytesMut;

use super::{Source, SourceContext, SourceError};
use crate::config::PropReader;
use crate::event::Event;

/// The resolved configuration.
#[derive(Clone, Debug)]
pub struct SeqConfig {
    /// `batchSize` (Flume default 1).
    pub batch_size: usize,
    /// `totalEvents` (Flume default Long.MAX_VALUE).
    pub total_events: u64,
}

impl SeqConfig {
    /// Reads Flume's seq keys.
    pub fn from_props(r: &mut PropReader<'_>) -> Option<Self> {
        let batch_size = r.number("batchSize", 1usize, 1, 1 << 24);
        let total_events = r.number("totalEvents", i64::MAX as u64, 0, i64::MAX as u64);
        Some(SeqConfig {
            batch_size: batch_size?,
            total_events: total_events?,
        })
    }
}

/// The sequence generator.
pub struct SeqSource {
    config: SeqConfig,
}

impl SeqSource {
    /// A source with `config`.
    pub fn new(config: SeqConfig) -> Self {
        SeqSource { config }
    }
}

#[async_trait]
impl Source for SeqSource {
    fn type_name(&self) -> &'static str {
        "seq"
    }

    fn describe(&self) -> String {
        format!(
            "batchSize={} totalEvents={}",
            self.config.batch_size, self.config.total_events
        )
    }

    async fn run(self: Box<Self>, ctx: SourceContext) -> Result<(), SourceError> {
        let mut next: u64 = 0;
        let total = self.config.total_events;
        let mut text = BytesMut::new();
        while next < total && !ctx.shutdown.is_cancelled() {
            let n = (total - next).min(self.config.batch_size as u64);
            // One buffer per batch; each body is a slice of it.
            text.reserve(n as usize * 20);
            let mut ends = Vec::with_capacity(n as usize);
            for i in next..next + n {
                let mut itoa = itoa_buf(i);
                text.extend_from_slice(itoa.as_bytes_mut());
                ends.push(text.len());
            }
            let block = text.split().freeze();
            let mut start = 0;
            let events: Vec<Event> = ends
                .into_iter()
                .map(|end| {
                    let e = Event::new(block.slice(start..end));
                    start = end;
                    e
                })
                .collect();
            ctx.counters.event_received.add(n);
            ctx.counters.append_batch_received.inc();
            if ctx
                .processor
                .process_with_backpressure(events, &ctx)
                .await
                .is_err()
            {
                break;
            }
            ctx.counters.event_accepted.add(n);
            ctx.counters.append_batch_accepted.inc();
            next += n;
        }
        tracing::info!(source = %ctx.name, events = next, "Sequence source finished.");
        Ok(())
    }
}

/// Decimal digits of `n` in a small stack buffer.
struct Digits {
    buf: [u8; 20],
    start: usize,
}

impl Digits {
    fn as_bytes_mut(&mut self) -> &[u8] {
        &self.buf[self.start..]
    }
}

fn itoa_buf(mut n: u64) -> Digits {
    let mut buf = [0u8; 20];
    let mut i = 20;
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    Digits { buf, start: i }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_are_decimal() {
        for n in [0u64, 7, 10, 12345, u64::MAX] {
            assert_eq!(itoa_buf(n).as_bytes_mut(), n.to_string().as_bytes());
        }
    }
}
