//! Interceptors: per-batch processing between a source and its channels, or between a channel
//! and its sink.
//!
//! A chain (`<src>.interceptors = i1 i2`, or `<sink>.interceptors = ...`) runs its
//! interceptors in order over a whole batch. An interceptor may change events, drop them on
//! purpose (a filter: counted as *filtered*, never as lost), report *bad* events (undecryptable,
//! undecompressable, unparsable: they go to the dead-letter channel named by `errorChannel`, or
//! fail the batch when there is none), or add events of its own from its periodic
//! [`Interceptor::flush`] (windowed aggregation), which the runtime calls on a timer and once
//! more at shutdown. Events a flush emits go through the interceptors after the one that
//! emitted them.

use std::time::Duration;

use async_trait::async_trait;

use crate::event::Event;

/// Header naming why an event was dead-lettered.
pub const ERROR_REASON_HEADER: &str = "flumen.error.reason";
/// Header naming the source or sink whose chain rejected the event.
pub const ERROR_COMPONENT_HEADER: &str = "flumen.error.component";
/// Header naming the interceptor that rejected the event.
pub const ERROR_STAGE_HEADER: &str = "flumen.error.interceptor";

/// An event an interceptor could not process, and why.
#[derive(Debug, Clone)]
pub struct BadEvent {
    /// The event as it reached the interceptor.
    pub event: Event,
    /// Why it is bad, as a sentence.
    pub reason: String,
    /// The interceptor's name in the chain (`i1`).
    pub stage: String,
}

/// What an interceptor reports besides the events it returns.
#[derive(Debug, Default)]
pub struct InterceptCtx {
    stage: String,
    filtered: u64,
    bad: Vec<BadEvent>,
}

impl InterceptCtx {
    /// A context for the stage named `stage` (what bad events are marked with).
    pub fn for_stage(stage: impl Into<String>) -> Self {
        InterceptCtx {
            stage: stage.into(),
            ..InterceptCtx::default()
        }
    }

    /// Events removed on purpose so far.
    pub fn filtered_count(&self) -> u64 {
        self.filtered
    }

    /// Events reported bad so far.
    pub fn bad_events(&self) -> &[BadEvent] {
        &self.bad
    }

    /// The events reported bad, taken out of the context.
    pub fn into_bad(self) -> Vec<BadEvent> {
        self.bad
    }

    /// Counts `n` events removed on purpose (filters, throttle `drop`).
    pub fn filtered(&mut self, n: u64) {
        self.filtered += n;
    }

    /// Reports an event that cannot be processed; it leaves the batch.
    pub fn bad(&mut self, event: Event, reason: impl Into<String>) {
        self.bad.push(BadEvent {
            event,
            reason: reason.into(),
            stage: self.stage.clone(),
        });
    }
}

/// One processing stage.
#[async_trait]
pub trait Interceptor: Send + 'static {
    /// The type name (`static`, `timestamp`, ...).
    fn type_name(&self) -> &'static str;

    /// A one-line summary of the resolved configuration, for the start-up log.
    fn describe(&self) -> String;

    /// Processes a batch: returns the events that go on, reports the rest through `ctx`.
    async fn intercept(&mut self, events: Vec<Event>, ctx: &mut InterceptCtx) -> Vec<Event>;

    /// How often [`Interceptor::flush`] wants to run; `None` when it keeps no state.
    fn flush_interval(&self) -> Option<Duration> {
        None
    }

    /// Emits what is due (closed windows). `last` is true at shutdown: emit everything.
    async fn flush(&mut self, _last: bool, _ctx: &mut InterceptCtx) -> Vec<Event> {
        Vec::new()
    }
}

/// The result of running a chain.
#[derive(Debug, Default)]
pub struct ChainOutput {
    /// The events that go on.
    pub events: Vec<Event>,
    /// Events removed on purpose.
    pub filtered: u64,
    /// Events no interceptor could process.
    pub bad: Vec<BadEvent>,
}

/// An ordered chain of named interceptors.
#[derive(Default)]
pub struct Chain {
    stages: Vec<(String, Box<dyn Interceptor>)>,
}

impl Chain {
    /// A chain of `(name, interceptor)` in order.
    pub fn new(stages: Vec<(String, Box<dyn Interceptor>)>) -> Self {
        Chain { stages }
    }

    /// Whether the chain has no interceptor.
    pub fn is_empty(&self) -> bool {
        self.stages.is_empty()
    }

    /// `name (type: config)` per stage, for the start-up log.
    pub fn describe(&self) -> String {
        self.stages
            .iter()
            .map(|(n, i)| format!("{n} ({}: {})", i.type_name(), i.describe()))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The shortest flush interval of any stage.
    pub fn flush_interval(&self) -> Option<Duration> {
        self.stages
            .iter()
            .filter_map(|(_, i)| i.flush_interval())
            .min()
    }

    /// Runs the batch through every stage.
    pub async fn apply(&mut self, events: Vec<Event>) -> ChainOutput {
        let mut out = ChainOutput::default();
        out.events = self.run_from(0, events, &mut out).await;
        out
    }

    /// Flushes every stage in order; what stage k emits goes through stages k+1.. .
    pub async fn flush(&mut self, last: bool) -> ChainOutput {
        let mut out = ChainOutput::default();
        for k in 0..self.stages.len() {
            let (name, stage) = &mut self.stages[k];
            let mut ctx = InterceptCtx {
                stage: name.clone(),
                ..InterceptCtx::default()
            };
            let emitted = stage.flush(last, &mut ctx).await;
            absorb(&mut out, ctx);
            if !emitted.is_empty() {
                let passed = self.run_from(k + 1, emitted, &mut out).await;
                out.events.extend(passed);
            }
        }
        out
    }

    async fn run_from(
        &mut self,
        first: usize,
        mut events: Vec<Event>,
        out: &mut ChainOutput,
    ) -> Vec<Event> {
        for (name, stage) in self.stages.iter_mut().skip(first) {
            if events.is_empty() {
                break;
            }
            let mut ctx = InterceptCtx {
                stage: name.clone(),
                ..InterceptCtx::default()
            };
            events = stage.intercept(events, &mut ctx).await;
            absorb(out, ctx);
        }
        events
    }
}

fn absorb(out: &mut ChainOutput, ctx: InterceptCtx) {
    out.filtered += ctx.filtered;
    out.bad.extend(ctx.bad);
}

/// Marks a bad event with why and where it was rejected, for the dead-letter channel.
pub fn dead_letter(bad: BadEvent, component: &str) -> Event {
    let mut event = bad.event;
    event
        .headers
        .insert(ERROR_REASON_HEADER.into(), bad.reason.into());
    event
        .headers
        .insert(ERROR_COMPONENT_HEADER.into(), component.into());
    event
        .headers
        .insert(ERROR_STAGE_HEADER.into(), bad.stage.into());
    event
}
