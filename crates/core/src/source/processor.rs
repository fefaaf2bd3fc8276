//! The source side of the pipeline (Flume's `ChannelProcessor`): a source's batch runs
//! through its interceptor chain, bad events go to the dead-letter channel, and the selector
//! decides which channels get which events, one put transaction per channel.
//!
//! Failure semantics, as in Flume: a failure on a required channel fails the batch (channels
//! already written keep what they committed); failures on optional channels are counted and
//! ignored. With backpressure ([`ChannelProcessor::process_with_backpressure`]) a full channel
//! is retried until it takes the events or the source stops, and only the channels that have
//! not yet committed are retried, so a retry adds no duplicate. The chain runs once per batch,
//! never again on a retry.

use std::time::Duration;

use tokio::sync::Mutex;

use super::SourceContext;
use crate::channel::{ChannelError, ChannelRef};
use crate::event::Event;
use crate::interceptor::{dead_letter, BadEvent, Chain};
use crate::metrics::SourceCounters;
use crate::rate_limit::RateLimit;
use crate::selector::Selector;

/// Why a batch was not fully put.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// A required channel refused the batch (full, too large, closed).
    #[error(transparent)]
    Channel(#[from] ChannelError),
    /// Interceptors found events they cannot process and there is no `errorChannel` to take
    /// them; the batch is refused as a whole.
    #[error("{count} event(s) could not be processed and no errorChannel is configured: {reason}")]
    Rejected {
        /// How many bad events.
        count: usize,
        /// The first one's reason.
        reason: String,
    },
}

impl ProcessError {
    /// Whether retrying later may succeed (a full or closed channel).
    pub fn is_full(&self) -> bool {
        matches!(
            self,
            ProcessError::Channel(
                ChannelError::Full { .. }
                    | ChannelError::Closed { .. }
                    | ChannelError::Unavailable { .. }
            )
        )
    }
}

/// Delivers a source's batches to its channels.
pub struct ChannelProcessor {
    source: String,
    channels: Vec<ChannelRef>,
    selector: Selector,
    chain: Option<Mutex<Chain>>,
    error_channel: Option<ChannelRef>,
    max_batch: usize,
    counters: SourceCounters,
    warnings: RateLimit,
}

impl ChannelProcessor {
    /// A processor for `source` over `channels` (at least one).
    pub fn new(
        source: &str,
        channels: Vec<ChannelRef>,
        selector: Selector,
        chain: Chain,
        error_channel: Option<ChannelRef>,
        counters: SourceCounters,
    ) -> Self {
        let max_batch = channels
            .iter()
            .map(|c| c.transaction_capacity())
            .min()
            .unwrap_or(1)
            .max(1);
        ChannelProcessor {
            source: source.to_string(),
            channels,
            selector,
            chain: (!chain.is_empty()).then(|| Mutex::new(chain)),
            error_channel,
            max_batch,
            counters,
            warnings: RateLimit::new(Duration::from_secs(10)),
        }
    }

    /// The largest batch every channel accepts in one transaction.
    pub fn max_batch(&self) -> usize {
        self.max_batch
    }

    /// The channels, in configured order.
    pub fn channels(&self) -> &[ChannelRef] {
        &self.channels
    }

    /// How often the chain wants its periodic flush, if at all.
    pub async fn flush_interval(&self) -> Option<Duration> {
        match &self.chain {
            Some(chain) => chain.lock().await.flush_interval(),
            None => None,
        }
    }

    /// One attempt: intercept, dead-letter, put into every routed channel.
    ///
    /// # Cancel safety
    /// Not cancel safe: cancelling may leave the batch in some channels only.
    pub async fn process(&self, events: Vec<Event>) -> Result<(), ProcessError> {
        let (events, bad) = self.intercept(events).await;
        self.dead_letter(bad, None).await?;
        let routes = self.selector.route(events);
        for (ch, events) in routes.required {
            self.put_chunked(&self.channels[ch], events, None).await?;
        }
        self.put_optional(routes.optional).await;
        Ok(())
    }

    /// Like [`process`](Self::process), but a full channel (or bad events without an
    /// `errorChannel`) holds the batch and retries until it succeeds or the source stops:
    /// backpressure for sources that cannot answer their client with an error.
    pub async fn process_with_backpressure(
        &self,
        events: Vec<Event>,
        ctx: &SourceContext,
    ) -> Result<(), ProcessError> {
        let (events, bad) = self.intercept(events).await;
        self.deliver_retrying(events, bad, ctx).await
    }

    /// [`process_with_backpressure`](Self::process_with_backpressure) for a batch in which
    /// the source itself found `bad` input (a Kafka record that is not the event format it
    /// was told to read): those go to the dead-letter channel with the chain's bad events.
    pub async fn process_with_bad(
        &self,
        events: Vec<Event>,
        mut bad: Vec<BadEvent>,
        ctx: &SourceContext,
    ) -> Result<(), ProcessError> {
        let (events, more) = self.intercept(events).await;
        bad.extend(more);
        self.deliver_retrying(events, bad, ctx).await
    }

    /// Runs the chain's periodic flush and puts what it emits (with backpressure, unless
    /// `last`, when the source has stopped and one attempt is made).
    pub async fn flush(&self, last: bool, ctx: &SourceContext) -> Result<(), ProcessError> {
        let Some(chain) = &self.chain else {
            return Ok(());
        };
        let out = chain.lock().await.flush(last).await;
        self.counters.event_filtered.add(out.filtered);
        if out.events.is_empty() && out.bad.is_empty() {
            return Ok(());
        }
        if last {
            self.dead_letter(out.bad, None).await?;
            let routes = self.selector.route(out.events);
            for (ch, events) in routes.required {
                self.put_chunked(&self.channels[ch], events, None).await?;
            }
            self.put_optional(routes.optional).await;
            Ok(())
        } else {
            self.deliver_retrying(out.events, out.bad, ctx).await
        }
    }

    async fn intercept(&self, events: Vec<Event>) -> (Vec<Event>, Vec<BadEvent>) {
        let Some(chain) = &self.chain else {
            return (events, Vec::new());
        };
        let out = chain.lock().await.apply(events).await;
        self.counters.event_filtered.add(out.filtered);
        (out.events, out.bad)
    }

    async fn deliver_retrying(
        &self,
        events: Vec<Event>,
        bad: Vec<BadEvent>,
        ctx: &SourceContext,
    ) -> Result<(), ProcessError> {
        if !bad.is_empty() {
            self.dead_letter_retrying(bad, ctx).await?;
        }
        let routes = self.selector.route(events);
        for (ch, events) in routes.required {
            self.put_chunked(&self.channels[ch], events, Some(ctx))
                .await?;
        }
        self.put_optional(routes.optional).await;
        Ok(())
    }

    /// Bad events go to the error channel; without one, the batch is refused.
    async fn dead_letter(
        &self,
        bad: Vec<BadEvent>,
        ctx: Option<&SourceContext>,
    ) -> Result<(), ProcessError> {
        if bad.is_empty() {
            return Ok(());
        }
        let Some(error_channel) = &self.error_channel else {
            return Err(ProcessError::Rejected {
                count: bad.len(),
                reason: bad[0].reason.clone(),
            });
        };
        let n = bad.len() as u64;
        if let Some(suppressed) = self.warnings.check() {
            tracing::warn!(source = %self.source, events = n, reason = %bad[0].reason, interceptor = %bad[0].stage, channel = %error_channel.name(), suppressed, "Bad events sent to the dead-letter channel.");
        }
        let letters: Vec<Event> = bad
            .into_iter()
            .map(|b| dead_letter(b, &self.source))
            .collect();
        self.put_chunked(error_channel, letters, ctx).await?;
        self.counters.event_dead_lettered.add(n);
        Ok(())
    }

    /// Dead-letters with backpressure; without an error channel, holds the batch (logging,
    /// rate-limited) until the source stops: a bad event never passes and is never dropped.
    async fn dead_letter_retrying(
        &self,
        bad: Vec<BadEvent>,
        ctx: &SourceContext,
    ) -> Result<(), ProcessError> {
        if self.error_channel.is_some() {
            return self.dead_letter(bad, Some(ctx)).await;
        }
        let mut pause = Duration::from_millis(100);
        loop {
            if let Some(suppressed) = self.warnings.check() {
                tracing::error!(source = %self.source, events = bad.len(), reason = %bad[0].reason, interceptor = %bad[0].stage, suppressed, "A batch holds events no interceptor can process and there is no errorChannel; the source is held until it stops. Configure `errorChannel` to keep data flowing.");
            }
            if ctx.shutdown.is_cancelled() {
                return Err(ProcessError::Rejected {
                    count: bad.len(),
                    reason: bad[0].reason.clone(),
                });
            }
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = ctx.shutdown.cancelled() => {}
            }
            pause = (pause * 2).min(Duration::from_secs(5));
        }
    }

    /// Puts events in chunks of the channel's transactionCapacity; with a context, a full
    /// channel is retried until the source stops.
    async fn put_chunked(
        &self,
        channel: &ChannelRef,
        mut events: Vec<Event>,
        ctx: Option<&SourceContext>,
    ) -> Result<(), ProcessError> {
        let cap = channel.transaction_capacity().max(1);
        while !events.is_empty() {
            let rest = if events.len() > cap {
                events.split_off(cap)
            } else {
                Vec::new()
            };
            match ctx {
                None => {
                    if let Err(e) = channel.put(events).await {
                        self.counters.channel_write_fail.inc();
                        return Err(e.into());
                    }
                }
                Some(ctx) => put_retrying(channel, events, ctx).await?,
            }
            events = rest;
        }
        Ok(())
    }

    async fn put_optional(&self, optional: Vec<(usize, Vec<Event>)>) {
        for (ch, events) in optional {
            let channel = &self.channels[ch];
            if let Err(error) = self.put_chunked(channel, events, None).await {
                tracing::debug!(source = %self.source, channel = %channel.name(), %error, "Put to an optional channel failed; ignored.");
            }
        }
    }
}

/// Puts one batch, retrying while the channel is full, until the source stops.
async fn put_retrying(
    channel: &ChannelRef,
    mut events: Vec<Event>,
    ctx: &SourceContext,
) -> Result<(), ProcessError> {
    let mut pause = Duration::from_millis(10);
    loop {
        match channel.put(events).await {
            Ok(()) => return Ok(()),
            Err(err @ (ChannelError::Full { .. } | ChannelError::Unavailable { .. })) => {
                ctx.counters.channel_write_fail.inc();
                tracing::debug!(source = %ctx.name, error = %err, "Channel cannot take the batch now; holding input back.");
                if ctx.shutdown.is_cancelled() {
                    return Err(err.into());
                }
                events = err.into_events().unwrap_or_default();
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {}
                    _ = ctx.shutdown.cancelled() => {}
                }
                pause = (pause * 2).min(Duration::from_millis(500));
            }
            Err(other) => {
                ctx.counters.channel_write_fail.inc();
                return Err(other.into());
            }
        }
    }
}
