//! A real S3-compatible server for the tests: `s3s-fs`, which keeps each bucket as a directory
//! and each object as a file in it, so a stop and restart keeps the data and the tests can read
//! objects straight from disk (no S3 client of ours in the checks).
//!
//! The binary is `$S3S_FS_BIN`, else `s3s-fs` on the `PATH` or in `~/.cargo/bin`
//! (`cargo install s3s-fs@0.14.1 --locked --features binary`; `scripts/test.sh` installs it).
//! Without it the tests skip, unless `FLUMEN_REQUIRE_S3=1` or CI says it is required.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::common::{required, unused_port, wait_until, DEADLINE};

/// The access key the server accepts.
pub const ACCESS_KEY: &str = "flumen-test";
/// The secret key the server accepts.
pub const SECRET_KEY: &str = "flumen-test-secret";

/// A running (or stopped) s3s-fs.
pub struct S3Server {
    bin: PathBuf,
    child: Option<Child>,
    /// The data directory: `<data>/<bucket>/<key>`.
    pub data: PathBuf,
    /// The port it listens on (kept across restarts).
    pub port: u16,
}

fn binary() -> Option<PathBuf> {
    if let Some(b) = std::env::var_os("S3S_FS_BIN") {
        return Some(PathBuf::from(b));
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("s3s-fs"))
            .find(|p| p.is_file())
    });
    on_path.or_else(|| {
        let home = PathBuf::from(std::env::var_os("HOME")?);
        let p = home.join(".cargo/bin/s3s-fs");
        p.is_file().then_some(p)
    })
}

impl S3Server {
    /// Starts a server over `data` with the bucket `bucket`; `None` (the test skips) when
    /// the binary is missing and not required.
    pub fn start(data: &Path, bucket: &str) -> Option<S3Server> {
        let Some(bin) = binary() else {
            assert!(
                !required("FLUMEN_REQUIRE_S3"),
                "s3s-fs is required (FLUMEN_REQUIRE_S3=1 or CI) but was not found"
            );
            eprintln!("skipping: s3s-fs not installed (cargo install s3s-fs@0.14.1 --locked --features binary)");
            return None;
        };
        std::fs::create_dir_all(data.join(bucket)).expect("creating the bucket directory");
        let mut server = S3Server {
            bin,
            child: None,
            data: data.to_path_buf(),
            port: unused_port(),
        };
        server.restart();
        Some(server)
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Stops the server (SIGKILL: it keeps nothing in memory that matters).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port and data, and waits until it accepts connections.
    pub fn restart(&mut self) {
        self.stop();
        let child = Command::new(&self.bin)
            .args(["--host", "127.0.0.1", "--port", &self.port.to_string()])
            .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
            .arg(&self.data)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting s3s-fs");
        self.child = Some(child);
        let port = self.port;
        wait_until("s3s-fs accepting connections", DEADLINE, || {
            std::net::TcpStream::connect_timeout(
                &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
                Duration::from_millis(200),
            )
            .is_ok()
        });
    }

    /// The sink keys that point an hdfs sink at this server.
    pub fn sink_keys(&self) -> Vec<(&'static str, String)> {
        vec![
            ("hdfs.fs.s3a.endpoint", self.endpoint()),
            ("hdfs.fs.s3a.access.key", ACCESS_KEY.to_string()),
            ("hdfs.fs.s3a.secret.key", SECRET_KEY.to_string()),
            ("hdfs.fs.s3a.path.style.access", "true".to_string()),
            ("hdfs.fs.s3a.endpoint.region", "us-east-1".to_string()),
        ]
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.stop();
    }
}
