//! `flumen avro-client`, like `flume-ng avro-client`: sends the lines of a file, of every file
//! in a directory, or of standard input to an avro source, one event per line (without its
//! line end), `batch-size` events per call, with the same headers on every event (`-R`, a
//! properties file). `-P` names RPC client properties (`client.type`, `hosts`, …; see
//! [`flumen_avro_rpc::client`]) instead of `-H`/`-p`.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use flumen_avro_rpc::client::{ClientConfig, RpcClient};

use crate::cli::AvroClientArgs;
use crate::event::{Event, Headers};

/// Runs the client; exit 0 once every event got `OK`.
pub fn run(args: AvroClientArgs) -> Result<ExitCode> {
    let config = client_config(&args)?;
    let headers = match &args.header_file {
        Some(path) => read_headers(path)?,
        None => Headers::new(),
    };
    let inputs = inputs(&args)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let sent = runtime.block_on(async {
        let mut client = RpcClient::new(config);
        let mut sent = 0usize;
        for input in inputs {
            let bytes = input.read()?;
            let events: Vec<Event> = lines(&bytes)
                .map(|line| Event::with_headers(headers.clone(), line.to_vec()))
                .collect();
            client
                .append_batch(&events)
                .await
                .with_context(|| format!("sending {}", input.name()))?;
            sent += events.len();
        }
        anyhow::Ok(sent)
    })?;
    eprintln!("flumen avro-client: sent {sent} event(s)");
    Ok(ExitCode::SUCCESS)
}

fn client_config(args: &AvroClientArgs) -> Result<ClientConfig> {
    if let Some(path) = &args.rpc_props {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let props = crate::config::properties::parse_map(&text);
        return ClientConfig::from_properties(&props)
            .with_context(|| format!("RPC properties in {}", path.display()));
    }
    match (&args.host, args.port) {
        (Some(host), Some(port)) => Ok(ClientConfig::single(&format!("{host}:{port}"))),
        _ => bail!("give -H HOST and -p PORT, or -P RPC_PROPERTIES"),
    }
}

/// The headers file: Java properties, one header per key.
fn read_headers(path: &Path) -> Result<Headers> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let map: BTreeMap<String, String> = crate::config::properties::parse_map(&text);
    Ok(map.into_iter().map(|(k, v)| (k.into(), v.into())).collect())
}

/// Where lines come from.
enum Input {
    File(PathBuf),
    Stdin,
}

impl Input {
    fn read(&self) -> Result<Vec<u8>> {
        match self {
            Input::File(path) => {
                std::fs::read(path).with_context(|| format!("reading {}", path.display()))
            }
            Input::Stdin => {
                let mut bytes = Vec::new();
                std::io::stdin()
                    .read_to_end(&mut bytes)
                    .context("reading standard input")?;
                Ok(bytes)
            }
        }
    }

    fn name(&self) -> String {
        match self {
            Input::File(path) => path.display().to_string(),
            Input::Stdin => "standard input".into(),
        }
    }
}

fn inputs(args: &AvroClientArgs) -> Result<Vec<Input>> {
    if let Some(file) = &args.filename {
        return Ok(vec![Input::File(file.clone())]);
    }
    if let Some(dir) = &args.dirname {
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .with_context(|| format!("listing {}", dir.display()))?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        return Ok(files.into_iter().map(Input::File).collect());
    }
    Ok(vec![Input::Stdin])
}

/// The lines of `bytes` without their `\n` or `\r\n`, as Java's `readLine` gives them.
fn lines(bytes: &[u8]) -> impl Iterator<Item = &[u8]> {
    let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    body.split(|&b| b == b'\n')
        .filter(move |_| !bytes.is_empty())
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_lose_their_ends_as_with_read_line() {
        let got: Vec<&[u8]> = lines(b"a\r\nb\n\nc").collect();
        assert_eq!(got, [&b"a"[..], b"b", b"", b"c"]);
        assert_eq!(lines(b"").count(), 0);
        assert_eq!(lines(b"x\n").count(), 1);
    }
}
