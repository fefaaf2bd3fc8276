//! Test helpers for interceptors: build one from `(key, value)` pairs through the registry and
//! run a batch through it.

use std::path::Path;
use std::sync::Arc;

use super::{registry, InterceptCtx, Interceptor};
use crate::config::{Finding, Origin, Prop, PropReader, Props};
use crate::event::Event;

/// The component prefix the test keys live under.
pub(crate) const PREFIX: &str = "a1.sources.r1.interceptors.i1";

fn prop(key: &str, value: &str, line: u32) -> Prop {
    let file: Arc<Path> = Arc::from(Path::new("test.properties"));
    Prop {
        value: value.to_string(),
        full_key: format!("{PREFIX}.{key}"),
        origin: Origin { file, line },
    }
}

/// Builds interceptor `type_` from `entries`; returns it (when valid) and every finding.
pub(crate) fn build(
    type_: &str,
    entries: &[(&str, &str)],
) -> (Option<Box<dyn Interceptor>>, Vec<Finding>) {
    let mut props = Props::new();
    for (i, (k, v)) in entries.iter().enumerate() {
        props.insert(*k, prop(k, v, i as u32 + 2));
    }
    let type_prop = prop("type", type_, 1);
    let mut r = PropReader::new(&props, PREFIX);
    let built = registry::build(&type_prop, &mut r);
    let fatal = r.is_fatal();
    let mut findings = r.finish();
    match built {
        Ok(i) if !fatal => (Some(i), findings),
        Ok(_) => (None, findings),
        Err(e) => {
            findings.push(*e.finding);
            (None, findings)
        }
    }
}

/// Builds a valid interceptor or panics with its findings.
pub(crate) fn build_ok(type_: &str, entries: &[(&str, &str)]) -> Box<dyn Interceptor> {
    let (i, findings) = build(type_, entries);
    assert!(findings.is_empty(), "unexpected findings: {findings:?}");
    i.expect("interceptor")
}

/// Asserts that building fails with a finding on `key` (relative), and returns that finding.
pub(crate) fn build_err(type_: &str, entries: &[(&str, &str)], key: &str) -> Finding {
    let (i, findings) = build(type_, entries);
    assert!(i.is_none(), "expected the build to fail");
    let full = format!("{PREFIX}.{key}");
    findings
        .into_iter()
        .find(|f| f.key == full)
        .unwrap_or_else(|| panic!("no finding naming {full}"))
}

/// An event with a body and headers.
pub(crate) fn event(body: &str, headers: &[(&str, &str)]) -> Event {
    let mut e = Event::new(body.as_bytes().to_vec());
    for (k, v) in headers {
        e.headers.insert((*k).into(), (*v).into());
    }
    e
}

/// Runs one batch; returns the events that went on and the context.
pub(crate) async fn run(
    i: &mut Box<dyn Interceptor>,
    events: Vec<Event>,
) -> (Vec<Event>, InterceptCtx) {
    let mut ctx = InterceptCtx::default();
    let out = i.intercept(events, &mut ctx).await;
    (out, ctx)
}

/// The filtered count of a context.
pub(crate) fn filtered(ctx: &InterceptCtx) -> u64 {
    ctx.filtered_count()
}

/// The reasons of the bad events of a context.
pub(crate) fn bad_reasons(ctx: &InterceptCtx) -> Vec<String> {
    ctx.bad_events().iter().map(|b| b.reason.clone()).collect()
}
