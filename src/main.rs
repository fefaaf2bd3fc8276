//! The `flumen` binary: argument parsing and glue; the work is in the library.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Parser;
use tokio_util::sync::CancellationToken;

use flumen::agent::watch::{Feed, LoadTemplate, Origin, Watcher};
use flumen::agent::{self, ReloadInputs, RunOptions, Topology};
use flumen::cli::{
    AgentArgs, CheckArgs, Cli, Command, ConfigArgs, GraphArgs, GraphFormat, TopArgs,
};
use flumen::config::{self, ConfigSource, Finding, LoadRequest};

/// The built-in default config (also `conf/flumen.properties`).
const DEFAULT_CONFIG: &str = include_str!("../conf/flumen.properties");
/// Agent name of the default config.
const DEFAULT_AGENT: &str = "a1";
/// Flume's switch that makes bare `${NAME}` resolve against the environment.
const ENV_VAR_RESOLVER: &str = "org.apache.flume.node.EnvVarResolverProperties";

/// Exit status: findings under --strict, or a config that cannot run.
const EXIT_CONFIG: u8 = 2;
/// Exit status: events were lost at shutdown.
const EXIT_LOST: u8 = 3;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Agent(args) => cmd_agent(args),
        Command::Check(args) => cmd_check(args),
        Command::Graph(args) => cmd_graph(args),
        Command::Top(args) => cmd_top(args),
        #[cfg(feature = "avro-rpc")]
        Command::AvroClient(args) => flumen::avro_client::run(args),
        Command::List => {
            for e in flumen::registry::ENTRIES {
                println!("{:<8} {:<10} {}", e.kind.noun(), e.alias, e.doc);
            }
            Ok(ExitCode::SUCCESS)
        }
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("flumen: error: {error:#}");
            ExitCode::from(EXIT_CONFIG)
        }
    }
}

/// What a loaded config gives: the built agent (if it runs), its spec, every finding, the
/// agent's name.
struct LoadedAgent {
    topology: Option<Topology>,
    spec: Option<config::AgentSpec>,
    findings: Vec<Finding>,
    name: String,
}

/// Where the config comes from: `-f` files and `-u` URIs, or `None` for the embedded default.
fn feed(args: &ConfigArgs) -> Option<Feed> {
    let origins: Vec<Origin> = args
        .conf_file
        .iter()
        .cloned()
        .map(Origin::File)
        .chain(args.conf_uri.iter().map(|u| Origin::from_uri(u)))
        .collect();
    if origins.is_empty() {
        return None;
    }
    let credentials = args.conf_user.clone().zip(args.conf_password.clone());
    Some(Feed {
        origins,
        credentials,
    })
}

/// Reads every part of the config once (URLs through a short-lived runtime).
fn read_config(feed: &Feed) -> Result<Vec<ConfigSource>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(feed.read()).map_err(anyhow::Error::msg)
}

/// Loads the config and builds the chosen agent.
fn load(args: &ConfigArgs, sources: Vec<ConfigSource>) -> Result<LoadedAgent> {
    let system_properties = args.system_properties();
    let env_var_resolver = system_properties
        .get("propertiesImplementation")
        .is_some_and(|v| v == ENV_VAR_RESOLVER);
    let embedded = sources.is_empty();
    let sources = if embedded {
        vec![ConfigSource::Embedded {
            name: "<embedded conf/flumen.properties>".into(),
            text: DEFAULT_CONFIG.into(),
        }]
    } else {
        sources
    };
    let mut request = LoadRequest {
        sources,
        agent: args.name.clone().unwrap_or_default(),
        system_properties,
        env_var_resolver,
    };
    if request.agent.is_empty() {
        if embedded {
            request.agent = DEFAULT_AGENT.into();
        } else {
            let probe = config::load(&request).context("reading the config")?;
            match probe.agent_names.as_slice() {
                [only] => request.agent = only.clone(),
                names => bail!(
                    "no agent name given (-n/--name); the config defines: {}",
                    names.join(", ")
                ),
            }
        }
    }
    let loaded = config::load(&request).context("reading the config")?;
    let mut findings = loaded.findings;
    let topology = match &loaded.agent {
        Some(spec) => {
            let options = agent::BuildOptions {
                allow_partial: args.allow_partial,
            };
            let (topology, more) = agent::build(spec, options);
            findings.extend(more);
            topology
        }
        None => None,
    };
    // One list in file order, whichever phase found what.
    findings.sort_by(|a, b| {
        let place = |f: &Finding| f.origin.as_ref().map(|o| (o.file.clone(), o.line));
        place(a).cmp(&place(b))
    });
    Ok(LoadedAgent {
        topology,
        spec: loaded.agent,
        findings,
        name: request.agent,
    })
}

/// Reads and loads the config of a command that needs a file (`check`, `graph`).
fn load_given(args: &ConfigArgs) -> Result<LoadedAgent> {
    let Some(feed) = feed(args) else {
        bail!("no config given (-f/--conf-file or -u/--conf-uri)");
    };
    load(args, read_config(&feed)?)
}

fn cmd_agent(args: AgentArgs) -> Result<ExitCode> {
    // Before any thread starts (see `allocator`).
    let one_arena = flumen::allocator::limit_malloc_arenas();
    init_logging(&args.config);
    tracing::debug!(one_arena, "Allocator set up.");
    raise_open_files_limit();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    // Take SIGHUP first: its default action would end the agent while it loads.
    let hangup = {
        let _entered = runtime.enter();
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
    };
    let feed = feed(&args.config);
    let read = match &feed {
        Some(feed) => read_config(feed)?,
        None => Vec::new(),
    };
    let LoadedAgent {
        topology,
        spec,
        findings,
        name,
    } = load(&args.config, read.clone())?;
    tracing::debug!(agent = %name, files = ?args.config.conf_file, uris = ?args.config.conf_uri, findings = findings.len(), "Configuration loaded.");
    for f in &findings {
        // What keeps the agent from starting is an error; the rest are warnings.
        if topology.is_none() && refuses_start(f) {
            tracing::error!("{f}");
        } else {
            tracing::warn!("{f}");
        }
    }
    if args.config.strict && !findings.is_empty() {
        tracing::error!(
            findings = findings.len(),
            "Refusing to start: --strict and the config has findings."
        );
        return Ok(ExitCode::from(EXIT_CONFIG));
    }
    let (Some(topology), Some(spec)) = (topology, spec) else {
        tracing::error!(agent = %name, "Agent not started: see the findings above.");
        return Ok(ExitCode::from(EXIT_CONFIG));
    };
    // Clamped to a day: `inf` or 1e20 would overflow a deadline.
    let Ok(shutdown_timeout) =
        Duration::try_from_secs_f64(args.shutdown_timeout.clamp(0.0, 86_400.0))
    else {
        bail!("--shutdown-timeout must be a number of seconds");
    };
    let options = RunOptions {
        shutdown_timeout,
        build: agent::BuildOptions {
            allow_partial: args.config.allow_partial,
        },
    };
    let monitoring = match flumen::monitor::address(
        args.metrics_addr.as_deref(),
        &args.config.system_properties(),
    ) {
        Ok(addr) => addr.map(|a| (a, flumen::monitor::Registry::of(&topology))),
        Err(message) => {
            tracing::error!(%message, "Monitoring not started.");
            return Ok(ExitCode::from(EXIT_CONFIG));
        }
    };
    let reloading = match (&feed, args.no_reload_conf) {
        (Some(feed), false) => Some(feed.clone()),
        (Some(_), true) => {
            tracing::info!("Config reloading is off (--no-reload-conf).");
            None
        }
        (None, _) => None,
    };
    let template = LoadTemplate {
        agent: name.clone(),
        system_properties: args.config.system_properties(),
        env_var_resolver: args
            .config
            .system_properties()
            .get("propertiesImplementation")
            .is_some_and(|v| v == ENV_VAR_RESOLVER),
    };
    let poll = args
        .poll_interval
        .filter(|&s| s > 0)
        .map(Duration::from_secs);
    let outcome = runtime.block_on(async move {
        let stop = CancellationToken::new();
        let signals = stop.clone();
        // Registered here, before the pipeline starts: a SIGTERM that arrives while the
        // spawned task has not run yet must stop the agent gracefully, not kill it.
        let stop_signals = stop_signals();
        tokio::spawn(async move {
            wait_for_signal(stop_signals).await;
            signals.cancel();
        });
        let registry = monitoring.as_ref().map(|(_, r)| r.clone());
        if let Some((addr, registry)) = monitoring {
            if let Err(error) = flumen::monitor::serve(&addr, registry, stop.child_token()).await {
                tracing::error!(address = %addr, %error, "Cannot serve monitoring; running without it.");
            }
        }
        let hangups = forward_hangups(hangup, reloading.is_some());
        let reload = reloading.map(|feed| {
            let (tx, rx) = tokio::sync::mpsc::channel(1);
            let poll_interval = poll.unwrap_or_else(|| feed.default_poll_interval());
            let watcher = Watcher {
                feed,
                template,
                poll_interval,
                baseline: read,
                hangups,
            };
            tokio::spawn(watcher.run(tx, stop.child_token()));
            ReloadInputs {
                requests: rx,
                spec,
                registry,
            }
        });
        agent::run_with(topology, options, stop, reload).await
    });
    if !outcome.lost.is_empty() {
        let total: usize = outcome.lost.iter().map(|(_, n)| n).sum();
        tracing::error!(
            events = total,
            "Shutdown lost events held in memory channels."
        );
        return Ok(ExitCode::from(EXIT_LOST));
    }
    if !outcome.failed.is_empty() {
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// Lets the agent hold as many sockets and files as the hard limit allows: the soft limit
/// (often 1024) would refuse connections long before a source's `maxConnections`.
fn raise_open_files_limit() {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let limit = getrlimit(Resource::Nofile);
    if let (Some(current), Some(maximum)) = (limit.current, limit.maximum) {
        if current >= maximum {
            return;
        }
        let raised = Rlimit {
            current: Some(maximum),
            maximum: Some(maximum),
        };
        if let Err(error) = setrlimit(Resource::Nofile, raised) {
            tracing::debug!(%error, "Cannot raise the open-files limit.");
        }
    }
}

/// Whether a finding is one that stops the whole agent.
fn refuses_start(f: &Finding) -> bool {
    use flumen::config::FindingKind;
    matches!(
        f.kind,
        FindingKind::AgentNotStarted
            | FindingKind::AgentNotFound
            | FindingKind::PartialTopology
            | FindingKind::NoConsumer
            | FindingKind::UnknownType
    )
}

/// Forwards each SIGHUP to the config watcher when reloading is on; otherwise logs and ignores
/// it (the default action of SIGHUP would end the agent).
fn forward_hangups(
    hangup: std::io::Result<tokio::signal::unix::Signal>,
    reloading: bool,
) -> tokio::sync::mpsc::Receiver<()> {
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    match hangup {
        Ok(mut hup) => {
            tokio::spawn(async move {
                while hup.recv().await.is_some() {
                    if reloading {
                        tracing::info!("SIGHUP received: reloading the config.");
                        let _ = tx.try_send(());
                    } else {
                        tracing::warn!("SIGHUP ignored: config reloading is off (--no-reload-conf, or the embedded config).");
                    }
                }
            });
        }
        Err(error) => tracing::warn!(%error, "Cannot handle SIGHUP."),
    }
    rx
}

/// SIGTERM and SIGINT, registered now (`None` when they cannot be).
fn stop_signals() -> Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)> {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(term), Ok(int)) => Some((term, int)),
        _ => None,
    }
}

async fn wait_for_signal(
    signals: Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>,
) {
    match signals {
        Some((mut term, mut int)) => {
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM received."),
                _ = int.recv() => tracing::info!("SIGINT received."),
            }
        }
        None => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

fn cmd_check(args: CheckArgs) -> Result<ExitCode> {
    let LoadedAgent {
        topology,
        findings,
        name,
        ..
    } = load_given(&args.config)?;
    let shape = topology.as_ref().map(|t| t.shape());
    if args.json {
        let findings_json: Vec<serde_json::Value> = findings
            .iter()
            .map(|f| {
                serde_json::json!({
                    "kind": f.kind.code(),
                    "file": f.origin.as_ref().map(|o| o.file.display().to_string()),
                    "line": f.origin.as_ref().map(|o| o.line),
                    "key": f.key,
                    "message": f.message,
                    "expected": f.expected,
                    "suggestion": f.suggestion,
                })
            })
            .collect();
        let out = serde_json::json!({
            "agent": name,
            "topology": shape,
            "findings": findings_json,
        });
        println!("{out}");
    } else {
        match &shape {
            Some(shape) => print!("{}", shape.to_text()),
            None => println!("agent {name}: nothing would run"),
        }
        for f in &findings {
            println!("{f}");
        }
        println!("{} finding(s)", findings.len());
    }
    Ok(if findings.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn cmd_graph(args: GraphArgs) -> Result<ExitCode> {
    let LoadedAgent {
        topology,
        findings,
        name,
        ..
    } = load_given(&args.config)?;
    for f in &findings {
        eprintln!("{f}");
    }
    if args.config.strict && !findings.is_empty() {
        return Ok(ExitCode::from(EXIT_CONFIG));
    }
    let Some(topology) = topology else {
        bail!("agent {name} has nothing to run");
    };
    let shape = topology.shape();
    match args.format {
        GraphFormat::Mermaid => print!("{}", shape.to_mermaid()),
        GraphFormat::Dot => print!("{}", shape.to_dot()),
    }
    Ok(ExitCode::SUCCESS)
}

fn cmd_top(args: TopArgs) -> Result<ExitCode> {
    let options = flumen_top::Options {
        address: args.address,
        interval_secs: args.interval,
        once: args.once,
    };
    match flumen_top::run(&options) {
        Ok(()) => Ok(ExitCode::SUCCESS),
        Err(error) => {
            eprintln!("flumen top: {error}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// Logging to stderr; `-Dflume.root.logger=LEVEL,appender` sets the level, as in Flume, and
/// `RUST_LOG` overrides it.
fn init_logging(args: &ConfigArgs) {
    let props = args.system_properties();
    let level = props
        .get("flume.root.logger")
        .and_then(|v| v.split(',').next())
        .map(|l| l.trim().to_ascii_lowercase())
        .map(|l| match l.as_str() {
            "all" | "trace" => "trace".to_string(),
            "fatal" => "error".to_string(),
            "off" => "off".to_string(),
            other => other.to_string(),
        })
        .unwrap_or_else(|| "info".into());
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(&level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
}
