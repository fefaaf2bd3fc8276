//! Interceptors: per-batch processing between a source and its channels, or between a channel
//! and its sink. The interface and the chain are in [`flumen_core::interceptor`]; the
//! interceptors and the chain builder are here.
//!
//! A chain (`<src>.interceptors = i1 i2`, or `<sink>.interceptors = ...`) runs its
//! interceptors in order over a whole batch. An interceptor may change events, drop them on
//! purpose (a filter: counted as *filtered*, never as lost), report *bad* events (undecryptable,
//! undecompressable, unparsable: they go to the dead-letter channel named by `errorChannel`, or
//! fail the batch when there is none), or add events of its own from its periodic
//! [`Interceptor::flush`] (windowed aggregation), which the runtime calls on a timer and once
//! more at shutdown. Events a flush emits go through the interceptors after the one that
//! emitted them.

pub mod aggregate;
pub mod codec;
pub mod compress;
pub mod crypto;
pub mod decompress;
pub mod decrypt;
pub mod encrypt;
pub mod host;
pub(crate) mod java_regex;
pub mod joda;
pub mod regex_extractor;
pub mod regex_filter;
pub mod registry;
pub mod remove_header;
pub mod search_replace;
pub mod snappy_frame;
pub mod static_header;
#[cfg(test)]
mod test_support;
#[cfg(test)]
mod testkit;
pub mod throttle;
pub mod timestamp;
pub mod uuid;

pub use flumen_core::interceptor::*;

use crate::config::{Finding, FindingKind, PropReader, Props};

/// Builds the chain named by `interceptors` in `r` (keys `interceptors.<name>.*`). `Err` when
/// the chain cannot be built (Flume then drops the owning component); the findings are pushed
/// into `r`, and the caller drops the owner.
pub fn build_chain(
    r: &mut PropReader<'_>,
    props: &Props,
    owner: &str,
) -> Result<Chain, ChainError> {
    let Some(list) = r.opt_string("interceptors") else {
        r.mark_prefix_used("interceptors");
        return Ok(Chain::default());
    };
    r.mark_prefix_used("interceptors");
    let mut stages = Vec::new();
    let mut error = None;
    for name in list.split_whitespace() {
        let sub = props.sub(&format!("interceptors.{name}"));
        let prefix = format!("{owner}.interceptors.{name}");
        let Some(type_) = sub.get("type") else {
            r.push(Finding::new(
                FindingKind::DroppedComponent,
                props.get("interceptors").map(|p| p.origin.clone()),
                format!("{prefix}.type"),
                format!("Interceptor `{name}` has no type; Flume refuses the chain and drops `{owner}`."),
            ));
            error = Some(ChainError::Broken);
            continue;
        };
        let mut reader = PropReader::new(&sub, &prefix).anchored(type_.origin.clone());
        reader.mark_used("type");
        match registry::build(type_, &mut reader) {
            Ok(interceptor) => {
                let fatal = reader.is_fatal();
                for f in reader.finish() {
                    r.push(f);
                }
                if fatal {
                    r.push(Finding::new(
                        FindingKind::DroppedComponent,
                        Some(type_.origin.clone()),
                        type_.full_key.clone(),
                        format!("Interceptor `{name}` is misconfigured; Flume drops `{owner}`."),
                    ));
                    error = Some(ChainError::Broken);
                } else {
                    stages.push((name.to_string(), interceptor));
                }
            }
            Err(e) if e.kind == ChainError::Unsupported => {
                // Flume hands every `interceptors.<name>.*` key to the builder class: they are
                // its to read, not ignored.
                for f in reader.finish_unjudged() {
                    r.push(f);
                }
                r.unsupported(
                    format!("interceptor `{name}` of class `{}`", type_.value.trim()),
                    *e.finding,
                );
                error.get_or_insert(ChainError::Unsupported);
            }
            Err(e) => {
                for f in reader.finish() {
                    r.push(f);
                }
                r.push(*e.finding);
                error = Some(ChainError::Broken);
            }
        }
    }
    match error {
        Some(e) => Err(e),
        None => Ok(Chain::new(stages)),
    }
}

/// Why a chain could not be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChainError {
    /// An interceptor type Flumen does not implement (a custom Java class, morphline).
    Unsupported,
    /// A config Flume would refuse too.
    Broken,
}
