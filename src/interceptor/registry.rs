//! Interceptor types: Flume aliases (case-insensitive) and builder class names → builders.

use super::aggregate::AggregateInterceptor;
use super::compress::CompressInterceptor;
use super::decompress::DecompressInterceptor;
use super::decrypt::DecryptInterceptor;
use super::encrypt::EncryptInterceptor;
use super::host::HostInterceptor;
use super::regex_extractor::RegexExtractorInterceptor;
use super::regex_filter::RegexFilterInterceptor;
use super::remove_header::RemoveHeaderInterceptor;
use super::search_replace::SearchReplaceInterceptor;
use super::static_header::StaticInterceptor;
use super::throttle::ThrottleInterceptor;
use super::timestamp::TimestampInterceptor;
use super::uuid::UuidInterceptor;
use super::{ChainError, Interceptor};
use crate::config::{did_you_mean, Finding, FindingKind, Prop, PropReader};

/// Builds an interceptor; `None` when its config is invalid (findings are in the reader).
pub type BuildFn = fn(&mut PropReader<'_>) -> Option<Box<dyn Interceptor>>;

/// One implemented interceptor type.
pub struct Entry {
    /// Flume's short name (or Flumen's, for Flumen's own interceptors).
    pub alias: &'static str,
    /// Flume's builder class names for this type.
    pub classes: &'static [&'static str],
    /// One line of documentation.
    pub doc: &'static str,
    /// The builder.
    pub build: BuildFn,
}

/// Every interceptor Flumen implements.
pub static ENTRIES: &[Entry] = &[
    Entry {
        alias: "static",
        classes: &["org.apache.flume.interceptor.StaticInterceptor$Builder"],
        doc: "Sets one fixed header on every event.",
        build: |r| Some(Box::new(StaticInterceptor::from_props(r)?)),
    },
    Entry {
        alias: "timestamp",
        classes: &["org.apache.flume.interceptor.TimestampInterceptor$Builder"],
        doc: "Sets a header to the current time in epoch milliseconds.",
        build: |r| Some(Box::new(TimestampInterceptor::from_props(r)?)),
    },
    Entry {
        alias: "host",
        classes: &["org.apache.flume.interceptor.HostInterceptor$Builder"],
        doc: "Sets a header to this host's IP address or name.",
        build: |r| Some(Box::new(HostInterceptor::from_props(r)?)),
    },
    Entry {
        alias: "remove_header",
        classes: &["org.apache.flume.interceptor.RemoveHeaderInterceptor$Builder"],
        doc: "Removes headers by name, list or regex.",
        build: |r| Some(Box::new(RemoveHeaderInterceptor::from_props(r)?)),
    },
    Entry {
        alias: "uuid",
        classes: &["org.apache.flume.sink.solr.morphline.UUIDInterceptor$Builder"],
        doc: "Sets a header to a random UUID.",
        build: |r| Some(Box::new(UuidInterceptor::from_props(r)?)),
    },
    Entry {
        alias: "search_replace",
        classes: &["org.apache.flume.interceptor.SearchAndReplaceInterceptor$Builder"],
        doc: "Replaces every regex match in the body.",
        build: |r| Some(Box::new(SearchReplaceInterceptor::from_props(r)?)),
    },
    Entry {
        alias: "regex_filter",
        classes: &["org.apache.flume.interceptor.RegexFilteringInterceptor$Builder"],
        doc: "Keeps or removes events whose body matches a regex.",
        build: |r| Some(Box::new(RegexFilterInterceptor::from_props(r)?)),
    },
    Entry {
        alias: "regex_extractor",
        classes: &["org.apache.flume.interceptor.RegexExtractorInterceptor$Builder"],
        doc: "Copies regex groups of the body into headers.",
        build: |r| Some(Box::new(RegexExtractorInterceptor::from_props(r)?)),
    },
    Entry {
        alias: "throttle",
        classes: &[],
        doc: "Limits events per period, by waiting (block) or dropping (drop).",
        build: |r| Some(Box::new(ThrottleInterceptor::from_props(r)?)),
    },
    Entry {
        alias: "aggregate",
        classes: &[],
        doc: "Tumbling-window count, sum, avg, min or max per group, emitted as summary events.",
        build: |r| Some(Box::new(AggregateInterceptor::from_props(r)?)),
    },
    Entry {
        alias: "compress",
        classes: &[],
        doc: "Compresses bodies (gzip, zstd, snappy, lz4) and names the codec in flumen.codec.",
        build: |r| Some(Box::new(CompressInterceptor::from_props(r)?)),
    },
    Entry {
        alias: "decompress",
        classes: &[],
        doc: "Decompresses bodies named by flumen.codec, with an output limit.",
        build: |r| Some(Box::new(DecompressInterceptor::from_props(r)?)),
    },
    Entry {
        alias: "encrypt",
        classes: &[],
        doc: "Encrypts bodies with AES-256-GCM; nonce and key id go in headers.",
        build: |r| Some(Box::new(EncryptInterceptor::from_props(r)?)),
    },
    Entry {
        alias: "decrypt",
        classes: &[],
        doc: "Decrypts and authenticates AES-256-GCM bodies, choosing the key by flumen.key.id.",
        build: |r| Some(Box::new(DecryptInterceptor::from_props(r)?)),
    },
];

/// Flume's interceptor aliases that Flumen does not implement.
const FLUME_ONLY: &[&str] = &[];

/// Why an interceptor could not be built.
pub struct BuildError {
    /// Unsupported or broken.
    pub kind: ChainError,
    /// What to tell the user.
    pub finding: Box<Finding>,
}

/// Resolves `type_` and builds the interceptor.
pub fn build(type_: &Prop, r: &mut PropReader<'_>) -> Result<Box<dyn Interceptor>, BuildError> {
    let t = type_.value.trim();
    let entry = ENTRIES
        .iter()
        .find(|e| e.alias.eq_ignore_ascii_case(t) || e.classes.contains(&t));
    let Some(entry) = entry else {
        let known: Vec<&str> = ENTRIES.iter().map(|e| e.alias).collect();
        let flume_only = FLUME_ONLY.iter().any(|a| a.eq_ignore_ascii_case(t));
        let (kind, finding_kind, message) = if flume_only || t.contains('.') {
            (
                ChainError::Unsupported,
                FindingKind::UnsupportedType,
                format!("Interceptor class `{t}` is not implemented by Flumen (it cannot run Java plugins); Flume would hand it this interceptor's keys."),
            )
        } else {
            (
                ChainError::Broken,
                FindingKind::UnknownType,
                format!("`{t}` is not an interceptor type or builder class Flume knows."),
            )
        };
        let suggestion = if kind == ChainError::Broken {
            did_you_mean(t, known.iter().copied())
        } else {
            None
        };
        return Err(BuildError {
            kind,
            finding: Box::new(
                Finding::new(
                    finding_kind,
                    Some(type_.origin.clone()),
                    type_.full_key.clone(),
                    message,
                )
                .expected(format!("one of {}", known.join(", ")))
                .suggest(suggestion),
            ),
        });
    };
    (entry.build)(r).ok_or_else(|| BuildError {
        kind: ChainError::Broken,
        finding: Box::new(Finding::new(
            FindingKind::DroppedComponent,
            Some(type_.origin.clone()),
            type_.full_key.clone(),
            format!("Interceptor `{t}` could not be configured (see the findings on its keys)."),
        )),
    })
}
