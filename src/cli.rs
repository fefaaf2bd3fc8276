//! Command-line arguments, mirroring `flume-ng agent` (`-n`, `-f`, `-c`, `-D`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::config::CONF_DIR_PROPERTY;

/// Flumen: Apache Flume's model and configuration format, rebuilt in Rust.
#[derive(Debug, Parser)]
#[command(name = "flumen", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run an agent (like `flume-ng agent`). Without -f, runs the built-in default config.
    Agent(AgentArgs),
    /// Validate a config: print the topology and every finding; exit 1 on any finding.
    Check(CheckArgs),
    /// Print the topology as a diagram.
    Graph(GraphArgs),
    /// List the component types Flumen implements.
    List,
    /// A terminal dashboard of a running agent, read from its monitoring endpoint.
    Top(TopArgs),
    /// Send lines as events to an avro source (like `flume-ng avro-client`): a file, every
    /// file of a directory, or standard input.
    #[cfg(feature = "avro-rpc")]
    AvroClient(AvroClientArgs),
}

/// `flumen avro-client` options (Flume's `AvroCLIClient`).
#[derive(Debug, Args)]
pub struct AvroClientArgs {
    /// The avro source's host.
    #[arg(short = 'H', long = "host")]
    pub host: Option<String>,
    /// The avro source's port.
    #[arg(short = 'p', long = "port")]
    pub port: Option<u16>,
    /// Send this file's lines (default: standard input).
    #[arg(short = 'F', long = "filename", conflicts_with = "dirname")]
    pub filename: Option<PathBuf>,
    /// Send the lines of every file in this directory.
    #[arg(long = "dirname")]
    pub dirname: Option<PathBuf>,
    /// Headers for every event, as a properties file.
    #[arg(short = 'R', long = "headerFile")]
    pub header_file: Option<PathBuf>,
    /// RPC client properties (`client.type`, `hosts`, `batch-size`, …) instead of -H/-p.
    #[arg(short = 'P', long = "rpcProps")]
    pub rpc_props: Option<PathBuf>,
    /// Flume's configuration directory; accepted for compatibility.
    #[arg(short = 'c', long = "conf")]
    pub conf: Option<PathBuf>,
}

/// Options shared by every command that reads a config.
#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// The agent to run (`-n/--name`, as in flume-ng).
    #[arg(short = 'n', long = "name")]
    pub name: Option<String>,
    /// Config file(s) (`-f/--conf-file`); several are merged in order.
    #[arg(short = 'f', long = "conf-file")]
    pub conf_file: Vec<PathBuf>,
    /// Config URI(s) (`-u/--conf-uri`, Flume 1.10): `http(s)://` is fetched (and polled every
    /// 300 s by default), `file:` is a file. Several are merged in order.
    #[arg(short = 'u', long = "conf-uri", value_name = "URI")]
    pub conf_uri: Vec<String>,
    /// User for HTTP basic authentication to the config URI (`--conf-user`).
    #[arg(long = "conf-user", requires = "conf_password")]
    pub conf_user: Option<String>,
    /// Password for HTTP basic authentication to the config URI (`--conf-password`).
    #[arg(long = "conf-password", requires = "conf_user")]
    pub conf_password: Option<String>,
    /// Flume's configuration directory (`-c/--conf`): where the hdfs sink finds Hadoop's
    /// `core-site.xml`, as Flume finds it on its classpath.
    #[arg(short = 'c', long = "conf")]
    pub conf: Option<PathBuf>,
    /// Java-style system properties (`-Dflume.root.logger=DEBUG,console`, ...).
    #[arg(short = 'D', value_name = "KEY=VALUE", allow_hyphen_values = true)]
    pub defines: Vec<String>,
    /// Refuse to run (exit non-zero) when the config has any finding.
    #[arg(long)]
    pub strict: bool,
    /// Start what Flumen can run when the config also needs components it does not implement
    /// (by default such a config does not start). A channel that is then fed but not drained
    /// must be durable.
    #[arg(long)]
    pub allow_partial: bool,
}

impl ConfigArgs {
    /// The `-D` pairs as a map (a bare `-Dkey` means `key=`).
    /// The conf directory (`-c`) rides along as [`CONF_DIR_PROPERTY`] (an explicit `-D` of it
    /// wins), so components that read Hadoop's `core-site.xml` from it, as Flume's classpath
    /// does, can find it.
    pub fn system_properties(&self) -> BTreeMap<String, String> {
        let mut props: BTreeMap<String, String> = self
            .defines
            .iter()
            .map(|d| match d.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => (d.clone(), String::new()),
            })
            .collect();
        if let Some(dir) = &self.conf {
            props
                .entry(CONF_DIR_PROPERTY.to_string())
                .or_insert_with(|| dir.display().to_string());
        }
        props
    }
}

/// `flumen agent`.
#[derive(Debug, Args)]
pub struct AgentArgs {
    /// Config options.
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Seconds the sinks get to drain the channels on shutdown before the rest is reported
    /// lost.
    #[arg(long, default_value_t = 5.0)]
    pub shutdown_timeout: f64,
    /// Seconds between checks of the config for changes (`-i/--poll-interval`; Flume's
    /// defaults: 30 for files, 300 for URLs). File changes are also seen within a second.
    #[arg(short = 'i', long = "poll-interval", value_name = "SECONDS")]
    pub poll_interval: Option<u64>,
    /// Do not reload the config when it changes, nor on SIGHUP (Flume's `--no-reload-conf`).
    #[arg(long = "no-reload-conf")]
    pub no_reload_conf: bool,
    /// Serve monitoring (Flume's JSON at /metrics, /prometheus, /health) on HOST:PORT; Flume's
    /// `-Dflume.monitoring.type=http -Dflume.monitoring.port=N` does the same.
    #[arg(long, value_name = "HOST:PORT")]
    pub metrics_addr: Option<String>,
}

/// `flumen check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Config options.
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Print JSON (topology and findings) instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Diagram formats.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum GraphFormat {
    /// Mermaid flowchart.
    Mermaid,
    /// Graphviz DOT.
    Dot,
}

/// `flumen graph`.
#[derive(Debug, Args)]
pub struct GraphArgs {
    /// Config options.
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Diagram format.
    #[arg(long, value_enum, default_value_t = GraphFormat::Mermaid)]
    pub format: GraphFormat,
}

/// `flumen top`.
#[derive(Debug, Args)]
pub struct TopArgs {
    /// The agent's monitoring endpoint: a URL or HOST:PORT (Flumen's `--metrics-addr`, or
    /// Apache Flume's `-Dflume.monitoring.port`).
    #[arg(value_name = "URL_OR_HOST:PORT", default_value = flumen_top::DEFAULT_ADDRESS)]
    pub address: String,
    /// Seconds between refreshes.
    #[arg(long, value_name = "SECS", default_value_t = 1.0)]
    pub interval: f64,
    /// Print one plain-text frame (rates over one interval) to stdout and exit.
    #[arg(long)]
    pub once: bool,
}
