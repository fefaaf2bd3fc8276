//! The "plain upload with the same client" of `scripts/bench_hdfs.py`: puts one local file
//! into an S3-compatible bucket through OpenDAL exactly as the hdfs sink's finisher uploads a
//! staged file, or writes it to a local path with `std::fs` as the reference for local files.
//!
//! ```text
//! opendal_put s3    --endpoint http://127.0.0.1:PORT --bucket B --key dir/name
//!                   --access-key AK --secret-key SK [--region us-east-1] FILE
//! opendal_put local FILE DEST
//! ```
//!
//! - `s3`: the operator is the sink's own (`finisher::operator`: S3 service, root `/`,
//!   path-style, the timeout layer at the default `hdfs.callTimeout`); the upload is the
//!   finisher's loop: `writer_with(key).chunk(8 MiB)`, the file read in 1 MiB pieces, each
//!   handed to `write`, then `close` (multipart above 8 MiB).
//! - `local`: 1 MiB `write_all`s into a new file, then `sync_all` (as the sink's local files
//!   are fsynced at close).
//!
//! Prints one JSON line: `{"mode", "bytes", "seconds"}`, timed from opening the input to the
//! upload's completion (or the fsync's return); building the operator is left out.
//!
//! Needs the `hdfs` feature (on by default); without it, it only says so.

#[cfg(feature = "hdfs")]
mod put {
    use std::io::{Read, Write};
    use std::path::PathBuf;
    use std::time::{Duration, Instant};

    use anyhow::{Context, Result};
    use clap::{Parser, Subcommand};
    use flumen::sink::hdfs::config::DEFAULT_CALL_TIMEOUT_MS;
    use flumen::sink::hdfs::finisher;
    use flumen::sink::hdfs::target::{S3Settings, Store};
    use serde_json::json;
    use tokio::io::AsyncReadExt;

    /// Part size of multipart uploads (the finisher's `UPLOAD_CHUNK`).
    const UPLOAD_CHUNK: usize = 8 << 20;
    /// Bytes read per write (the finisher's `READ_CHUNK`; also the local writes).
    const READ_CHUNK: usize = 1 << 20;

    #[derive(Parser)]
    #[command(about = "Plain upload or write of one file (see the module doc)")]
    struct Args {
        #[command(subcommand)]
        mode: Mode,
    }

    #[derive(Subcommand)]
    enum Mode {
        /// Upload FILE to s3://BUCKET/KEY with the hdfs sink's OpenDAL operator.
        S3 {
            #[arg(long)]
            endpoint: String,
            #[arg(long)]
            bucket: String,
            #[arg(long)]
            key: String,
            #[arg(long)]
            access_key: String,
            #[arg(long)]
            secret_key: String,
            #[arg(long, default_value = "us-east-1")]
            region: String,
            file: PathBuf,
        },
        /// Copy FILE to DEST with 1 MiB writes, then fsync.
        Local { file: PathBuf, dest: PathBuf },
    }

    pub fn main() -> Result<()> {
        match Args::parse().mode {
            Mode::S3 {
                endpoint,
                bucket,
                key,
                access_key,
                secret_key,
                region,
                file,
            } => {
                let store = Store::S3(S3Settings {
                    bucket,
                    endpoint: Some(endpoint),
                    region: Some(region),
                    access_key: Some(access_key),
                    secret_key: Some(secret_key),
                    path_style: true,
                });
                let op =
                    finisher::operator(&store, "/", Duration::from_millis(DEFAULT_CALL_TIMEOUT_MS))
                        .map_err(anyhow::Error::msg)?
                        .context("an S3 store has an operator")?;
                // The agent's runtime is multi-threaded; so is this one.
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .enable_all()
                    .build()?;
                let (bytes, seconds) =
                    rt.block_on(upload(&op, &file, key.trim_start_matches('/')))?;
                report("s3", bytes, seconds);
            }
            Mode::Local { file, dest } => {
                let t0 = Instant::now();
                let mut input = std::fs::File::open(&file)
                    .with_context(|| format!("opening {}", file.display()))?;
                let mut out = std::fs::File::create(&dest)
                    .with_context(|| format!("creating {}", dest.display()))?;
                let mut buf = vec![0u8; READ_CHUNK];
                let mut bytes = 0u64;
                loop {
                    let n = read_full(&mut input, &mut buf)?;
                    if n == 0 {
                        break;
                    }
                    out.write_all(&buf[..n])?;
                    bytes += n as u64;
                }
                out.sync_all()?;
                report("local", bytes, t0.elapsed().as_secs_f64());
            }
        }
        Ok(())
    }

    /// The finisher's `upload`, without the name-collision check: one `stat` of the key is done
    /// first as the finisher does (a HEAD answered 404), then the chunked writer.
    async fn upload(op: &opendal::Operator, file: &PathBuf, key: &str) -> Result<(u64, f64)> {
        let t0 = Instant::now();
        match op.stat(key).await {
            Err(e) if e.kind() == opendal::ErrorKind::NotFound => {}
            Ok(_) => anyhow::bail!("{key} exists already"),
            Err(e) => return Err(e).context("stat"),
        }
        let mut input = tokio::fs::File::open(file)
            .await
            .with_context(|| format!("opening {}", file.display()))?;
        let length = input.metadata().await?.len();
        let mut writer = op.writer_with(key).chunk(UPLOAD_CHUNK).await?;
        let mut left = length;
        while left > 0 {
            let want = left.min(READ_CHUNK as u64) as usize;
            let mut buf = vec![0u8; want];
            input.read_exact(&mut buf).await?;
            writer.write(buf).await?;
            left -= want as u64;
        }
        writer.close().await?;
        Ok((length, t0.elapsed().as_secs_f64()))
    }

    /// Fills `buf` unless the input ends first; returns the bytes read.
    fn read_full(input: &mut std::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
        let mut n = 0;
        while n < buf.len() {
            match input.read(&mut buf[n..])? {
                0 => break,
                k => n += k,
            }
        }
        Ok(n)
    }

    fn report(mode: &str, bytes: u64, seconds: f64) {
        println!(
            "{}",
            json!({ "mode": mode, "bytes": bytes, "seconds": seconds })
        );
    }
}

#[cfg(feature = "hdfs")]
fn main() -> anyhow::Result<()> {
    put::main()
}

#[cfg(not(feature = "hdfs"))]
fn main() {
    eprintln!("opendal_put needs the hdfs feature (on by default)");
    std::process::exit(2);
}
