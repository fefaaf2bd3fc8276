//! Shared pieces of building: type resolution, Flume's configure-time checks of types Flumen
//! lacks, the batch-size rule, and the findings every kind uses.

use crate::config::{
    AgentSpec, ComponentKind, ComponentSpec, Finding, FindingKind, PropReader, Props,
};
use crate::interceptor::{build_chain, Chain, ChainError};
use crate::registry::builtins::{BatchSize, Builtin};
use crate::registry::{self, BuildContext, Built, Lookup};

/// Why a component was not built, when Flume would not build it either.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Dropped {
    /// Flume drops it (bad config, batch too large, no channel): the rest runs.
    Broken,
}

/// What building one component gave.
pub(super) enum Made {
    /// Flumen built it.
    Built(Built),
    /// Flume would build it (unless a later rule, the batch size, drops it), Flumen cannot:
    /// it lacks what the string names (a type, an interceptor class, TLS...). The finding
    /// about a type Flumen lacks is for the caller to report once the component is known to
    /// be lacking; other reasons are findings already.
    Lacking(String, Option<Finding>),
}

/// Resolves the type and builds one component, recording findings. `extra` reads keys every
/// component of this kind may carry (selector, interceptors, dead-letter channel); it returns
/// `Err` to drop the component. A type Flumen lacks is still checked as far as Flume's
/// `configure` would check it (its required keys, its batch key), and `extra` still runs: a
/// component Flume itself would drop is [`Dropped::Broken`], not [`Made::Lacking`].
///
/// The type must not be [`Lookup::Unknown`]; [`unloadable`] reports those first.
pub(super) fn build_one(
    spec: &AgentSpec,
    kind: ComponentKind,
    c: &ComponentSpec,
    findings: &mut Vec<Finding>,
    extra: impl FnOnce(&mut PropReader<'_>) -> Result<(), Dropped>,
) -> Result<Made, Dropped> {
    let agent = spec.name.as_str();
    let full = format!("{agent}.{}.{}", kind.key(), c.name);
    let type_name = c.type_.value.trim();
    let ctx = BuildContext {
        agent,
        name: &c.name,
        system_properties: &spec.system_properties,
    };
    let mut reader = PropReader::new(&c.props, &full).anchored(c.type_.origin.clone());
    // `unsupported`: the type is one Flumen lacks (`Some(None)`: a plugin class).
    let (built, unsupported) = match registry::lookup(kind, type_name) {
        Lookup::Found(entry) => ((entry.build)(&ctx, &mut reader), None),
        Lookup::Unsupported(builtin) => {
            flume_configure_checks(builtin, &mut reader);
            (None, Some(builtin))
        }
        Lookup::Unknown(_) => return Err(Dropped::Broken),
    };
    let judged = unsupported.is_none();
    let extra = extra(&mut reader);
    let lacking = reader.lacking().map(str::to_string);
    let fatal =
        reader.is_fatal() || extra.is_err() || (judged && built.is_none() && lacking.is_none());
    findings.extend(if judged {
        reader.finish()
    } else {
        reader.finish_unjudged()
    });
    if fatal {
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
    if let Some(builtin) = unsupported {
        let (what, finding) = lacking_type(kind, c, builtin);
        return Ok(Made::Lacking(what, Some(finding)));
    }
    match (built, lacking) {
        (Some(built), None) => Ok(Made::Built(built)),
        (_, Some(what)) => Ok(Made::Lacking(what, None)),
        (None, None) => Err(Dropped::Broken),
    }
}

/// The findings for components whose type no Flume factory can load: Flume's
/// `Class.forName` throws outside `AbstractConfigurationProvider`'s per-component error
/// handling (`loadChannels`, `loadSources`, `loadSinks` call the factories before their `try`),
/// so the whole agent does not start, even when the component is an unused channel.
pub(super) fn unloadable<'a>(
    kind: ComponentKind,
    components: impl Iterator<Item = &'a ComponentSpec>,
) -> Vec<Finding> {
    let mut out = Vec::new();
    for c in components {
        let type_name = c.type_.value.trim();
        if let Lookup::Unknown(suggestion) = registry::lookup(kind, type_name) {
            out.push(
                Finding::new(
                    FindingKind::UnknownType,
                    Some(c.type_.origin.clone()),
                    c.type_.full_key.clone(),
                    format!(
                        "`{type_name}` is neither a {} type nor a class name, so Flume cannot load it for {} `{}` and does not start the agent at all.",
                        kind.noun(),
                        kind.noun(),
                        c.name
                    ),
                )
                .expected(format!("one of {}", registry::aliases(kind).join(", ")))
                .suggest(suggestion),
            );
        }
    }
    out
}

/// What a type Flumen lacks is, for messages (Flume's built-in, one Flume 1.11 no longer
/// ships, or a plugin class), and the `unsupported-type` finding that says so.
fn lacking_type(
    kind: ComponentKind,
    c: &ComponentSpec,
    builtin: Option<&'static Builtin>,
) -> (String, Finding) {
    let type_name = c.type_.value.trim();
    let (what, detail) = match builtin {
        Some(Builtin {
            removed: Some(why), ..
        }) => (
            format!("the former Flume type `{type_name}`"),
            format!(" {why}."),
        ),
        Some(_) => (format!("the Flume type `{type_name}`"), String::new()),
        None => (
            format!("the plugin class `{type_name}`"),
            " Flumen cannot run Java plugins.".to_string(),
        ),
    };
    let finding = Finding::new(
        FindingKind::UnsupportedType,
        Some(c.type_.origin.clone()),
        c.type_.full_key.clone(),
        format!(
            "{} `{}` needs {what}, which Flumen does not implement.{detail}",
            capitalize(kind.noun()),
            c.name,
        ),
    )
    .expected(format!("one of {}", registry::aliases(kind).join(", ")));
    (what, finding)
}

/// What Flume's `configure` of a built-in Flumen lacks would refuse: a missing required key, a
/// batch size that is not a number. Reported as Flume's own failure, so that the component
/// counts as one Flume drops too.
fn flume_configure_checks(builtin: Option<&'static Builtin>, r: &mut PropReader<'_>) {
    let Some(b) = builtin else {
        return;
    };
    let name = b.name();
    for alternatives in b.required {
        let present = alternatives
            .iter()
            .any(|k| r.opt_string(k).is_some_and(|v| !v.is_empty()));
        if present {
            continue;
        }
        let keys = alternatives
            .iter()
            .map(|k| format!("`{k}`"))
            .collect::<Vec<_>>()
            .join(" or ");
        let key = r.full_key(alternatives[0]);
        r.drop_component(
            Finding::new(
                FindingKind::DroppedComponent,
                None,
                key,
                format!(
                    "Required property {keys} of {name} is missing or empty; Flume fails to configure `{}` and drops it (Flumen does not implement {name} either).",
                    r.component()
                ),
            )
            .expected(format!("{keys} set")),
        );
    }
    for (key, why) in b.configure_failures(r.props()) {
        let origin = r.raw(key).map(|p| p.origin.clone());
        let full = r.full_key(key);
        r.drop_component(Finding::new(
            FindingKind::BadValue,
            origin,
            full,
            format!("`{key}`: {why}; Flume fails to configure {name} `{}` and drops it (Flumen does not implement {name} either).", r.component()),
        ));
    }
}

/// Flume's batch-size rule (FLUME-3246, `checkSourceChannelCompatibility` /
/// `checkSinkChannelCompatibility`): a component whose class is `BatchSizeSupported` and whose
/// batch exceeds a channel's `transactionCapacity` is dropped. Types Flume does not check (the
/// logger sink, the http sink) are never dropped by it. `None` when the rule passes.
pub(super) fn batch_too_large(
    agent: &str,
    kind: ComponentKind,
    c: &ComponentSpec,
    channel: &str,
    capacity: usize,
) -> Option<Finding> {
    let builtin = builtin_of(kind, c)?;
    let BatchSize::Value(batch, key) = builtin.batch_size(&c.props)? else {
        return None;
    };
    if batch <= capacity as u64 {
        return None;
    }
    let origin = c
        .props
        .get(key)
        .map(|p| p.origin.clone())
        .unwrap_or_else(|| c.type_.origin.clone());
    let set = if c.props.get(key).is_some() {
        ""
    } else {
        " (Flume's default)"
    };
    Some(
        Finding::new(
            FindingKind::DroppedComponent,
            Some(origin),
            format!("{agent}.{}.{}.{key}", kind.key(), c.name),
            format!(
                "Batch size {batch}{set} is greater than the transactionCapacity {capacity} of channel `{channel}`; Flume drops `{}`.",
                c.name
            ),
        )
        .expected(format!("{key} <= {capacity}")),
    )
}

/// Flume's facts about a component's type, implemented or not.
pub(super) fn builtin_of(kind: ComponentKind, c: &ComponentSpec) -> Option<&'static Builtin> {
    match registry::lookup(kind, c.type_.value.trim()) {
        Lookup::Found(entry) => entry.builtin(),
        Lookup::Unsupported(builtin) => builtin,
        Lookup::Unknown(_) => None,
    }
}

/// The component's interceptor chain; `None` when Flume would refuse it (the component is
/// dropped). A chain with an interceptor Flumen lacks is recorded in the reader (the
/// component is then not run) and stands in as empty.
pub(super) fn interceptors(r: &mut PropReader<'_>, props: &Props, owner: &str) -> Option<Chain> {
    match build_chain(r, props, owner) {
        Ok(chain) => Some(chain),
        Err(ChainError::Unsupported) => Some(Chain::default()),
        Err(ChainError::Broken) => None,
    }
}

/// `source` → `Source`.
pub(super) fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}
