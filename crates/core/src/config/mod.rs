//! Flume-format configuration: reading, substitution, Flume's validation rules, findings.
//!
//! Loading runs in the same phases as Flume: the properties files are read exactly as
//! `java.util.Properties` reads them ([`properties`]) and merged (a later file's key wins),
//! values are substituted as Flume 1.11 does ([`substitute`]), then Flume's structural rules
//! (`FlumeConfiguration`, config filters, and the provider's removal of unconnected channels)
//! decide which components of the chosen agent stand ([`spec::AgentSpec`]). Every key ignored and
//! every component dropped is a [`Finding`] with file and line; findings come sorted by file and
//! line. Findings are reported for the chosen agent's keys and for keys of no agent, not for
//! other agents' keys.
//!
//! Typed reading of each component happens when the registry builds it, and may drop more
//! components (as Flume's `AbstractConfigurationProvider` does); the builder must then remove
//! channels left with no source and no sink, as this phase does.

pub mod finding;
mod flume;
mod loader;
pub mod properties;
pub mod props;
pub mod spec;
pub mod substitute;

use std::collections::BTreeMap;
use std::path::PathBuf;

/// The system property that carries the `-c` conf directory to components.
pub const CONF_DIR_PROPERTY: &str = "flumen.conf.dir";

pub use finding::{did_you_mean, Finding, FindingKind, Origin};
pub use props::{Prop, PropReader, Props};
pub use spec::{AgentSpec, ComponentKind, ComponentSpec, SinkGroupSpec, SinkSpec, SourceSpec};

/// Where configuration text comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigSource {
    /// A file given with `-f/--conf-file`.
    File(PathBuf),
    /// Contents already read (a file snapshot taken for hot reload, or a `--conf-uri` body),
    /// shown under `name` in findings.
    Read {
        /// The file or URL, as findings name it.
        name: PathBuf,
        /// The raw bytes (decoded as Flume decodes a properties file).
        bytes: Vec<u8>,
    },
    /// Text built into the binary (the default config), shown under `name` in findings.
    Embedded {
        /// Name used as the "file" in findings.
        name: String,
        /// The properties text.
        text: String,
    },
}

/// What to load and how to resolve it.
#[derive(Clone, Debug, Default)]
pub struct LoadRequest {
    /// Config sources, merged in order (a later file's key wins, as Flume merges `-f` files).
    pub sources: Vec<ConfigSource>,
    /// The agent to build (`-n`).
    pub agent: String,
    /// `-Dname=value` pairs given on the command line, seen by `${sys:name}`.
    pub system_properties: BTreeMap<String, String>,
    /// `-DpropertiesImplementation=org.apache.flume.node.EnvVarResolverProperties`: a bare
    /// `${NAME}` also resolves against the environment.
    pub env_var_resolver: bool,
}

/// The result of loading: the chosen agent as Flume would keep it, and every finding.
#[derive(Clone, Debug, Default)]
pub struct Loaded {
    /// The agent, or `None` when it is not in the config or does not start.
    pub agent: Option<AgentSpec>,
    /// Every problem seen, in file order where possible.
    pub findings: Vec<Finding>,
    /// Every agent name the config defines (for messages and `flumen check`).
    pub agent_names: Vec<String>,
}

/// A config that cannot be read at all.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A config file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Reads, substitutes and validates the configuration for one agent, with the process
/// environment behind `${env:NAME}` and the `env` config filter.
pub fn load(request: &LoadRequest) -> Result<Loaded, ConfigError> {
    loader::load(request, &|name| std::env::var(name).ok())
}

/// [`load`] with an explicit environment (tests, and callers that sandbox the environment).
pub fn load_with_env(
    request: &LoadRequest,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Loaded, ConfigError> {
    loader::load(request, env)
}
