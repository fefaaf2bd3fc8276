//! Shared pieces of building: type resolution and the findings every kind uses.

use crate::config::{ComponentKind, ComponentSpec, Finding, FindingKind, PropReader};
use crate::registry::{self, Built, Lookup};

/// Why a component was not built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Dropped {
    /// A type Flume has (or a custom class) that Flumen does not implement.
    Unsupported,
    /// A config Flume itself would refuse.
    Broken,
}

/// Resolves the type and builds one component, recording findings. `extra` reads keys every
/// component of this kind may carry; it returns `Err` to drop the component.
pub(super) fn build_one(
    agent: &str,
    kind: ComponentKind,
    c: &ComponentSpec,
    findings: &mut Vec<Finding>,
    extra: impl FnOnce(&mut PropReader<'_>) -> Result<(), Dropped>,
) -> Result<Built, Dropped> {
    let full = format!("{agent}.{}.{}", kind.key(), c.name);
    let type_name = c.type_.value.trim();
    let entry = match registry::lookup(kind, type_name) {
        Lookup::Found(entry) => entry,
        Lookup::Unsupported => {
            findings.push(
                Finding::new(
                    FindingKind::UnsupportedType,
                    Some(c.type_.origin.clone()),
                    c.type_.full_key.clone(),
                    format!(
                        "{} type `{type_name}` is not implemented by Flumen; {} `{}` is dropped.",
                        capitalize(kind.noun()),
                        kind.noun(),
                        c.name
                    ),
                )
                .expected(format!("one of {}", registry::aliases(kind).join(", "))),
            );
            return Err(Dropped::Unsupported);
        }
        Lookup::Unknown(suggestion) => {
            findings.push(
                Finding::new(
                    FindingKind::UnknownType,
                    Some(c.type_.origin.clone()),
                    c.type_.full_key.clone(),
                    format!(
                        "`{type_name}` is not a {} type or class Flume knows; {} `{}` is dropped.",
                        kind.noun(),
                        kind.noun(),
                        c.name
                    ),
                )
                .expected(format!("one of {}", registry::aliases(kind).join(", ")))
                .suggest(suggestion),
            );
            return Err(Dropped::Broken);
        }
    };
    let mut reader = PropReader::new(&c.props, &full);
    let built = (entry.build)(&c.name, &mut reader);
    let extra = extra(&mut reader);
    let fatal = reader.is_fatal();
    findings.extend(reader.finish());
    if extra == Err(Dropped::Unsupported) {
        return Err(Dropped::Unsupported);
    }
    if fatal || built.is_none() || extra.is_err() {
        findings.push(Finding::new(
            FindingKind::DroppedComponent,
            Some(c.type_.origin.clone()),
            full,
            format!(
                "{} `{}` is dropped because of the error(s) in its configuration, as Flume does.",
                capitalize(kind.noun()),
                c.name
            ),
        ));
        return Err(Dropped::Broken);
    }
    built.ok_or(Dropped::Broken)
}

pub(super) fn incompatible_batch(
    agent: &str,
    kind_key: &str,
    c: &ComponentSpec,
    batch_key: &str,
    batch: usize,
    channel: &str,
    capacity: usize,
) -> Finding {
    let origin = c
        .props
        .get(batch_key)
        .map(|p| p.origin.clone())
        .unwrap_or_else(|| c.type_.origin.clone());
    Finding::new(
        FindingKind::DroppedComponent,
        Some(origin),
        format!("{agent}.{kind_key}.{}.{batch_key}", c.name),
        format!(
            "Batch size {batch} is greater than the transactionCapacity {capacity} of channel `{channel}`; Flume drops `{}`.",
            c.name
        ),
    )
    .expected(format!("{batch_key} <= {capacity}"))
}

/// The batch-size key of a sink type, for messages.
pub(super) fn batch_key(type_name: &str) -> &'static str {
    match type_name {
        "file_roll" => "sink.batchSize",
        _ => "batchSize",
    }
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}
