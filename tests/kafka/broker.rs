//! A real Kafka-protocol broker for the tests: tansu (Apache Kafka's wire protocol, in Rust)
//! on 127.0.0.1 with its sqlite storage in the test's directory, so a stop and a start keep
//! every acknowledged record. `scripts/test.sh` installs it; `TANSU_BIN` names another binary.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::common::{required, unused_port, wait_until};

/// The tansu binary: `TANSU_BIN`, else `tansu` on the PATH. `None` (the tests skip) when
/// absent, unless `FLUMEN_REQUIRE_KAFKA=1` or CI, where its absence fails the test.
pub fn tansu() -> Option<PathBuf> {
    let candidate = std::env::var_os("TANSU_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("tansu"));
    let found = Command::new(&candidate)
        .arg("--help")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if found {
        return Some(candidate);
    }
    assert!(
        !required("FLUMEN_REQUIRE_KAFKA"),
        "no tansu broker (cargo install tansu --locked --features libsql, or set TANSU_BIN)"
    );
    eprintln!("skipped: no tansu broker on the PATH (scripts/test.sh installs it)");
    None
}

/// A running broker.
pub struct Broker {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    child: Option<Child>,
}

impl Broker {
    /// Starts a broker keeping its data under `dir`; `None` when there is no tansu (skip).
    pub fn start(dir: &Path) -> Option<Broker> {
        let bin = tansu()?;
        std::fs::create_dir_all(dir).expect("broker dir");
        let mut broker = Broker {
            bin,
            dir: dir.to_path_buf(),
            port: unused_port(),
            child: None,
        };
        broker.run();
        Some(broker)
    }

    /// `host:port` for Kafka clients.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn url(&self) -> String {
        format!("tcp://127.0.0.1:{}", self.port)
    }

    fn run(&mut self) {
        let log = std::fs::File::create(self.dir.join("tansu.log")).expect("broker log");
        let child = Command::new(&self.bin)
            .arg("broker")
            .args(["--listener-url", &self.url()])
            .args(["--advertised-listener-url", &self.url()])
            // A path relative to the working directory: tansu's sqlite URL takes no absolute one.
            .args(["--storage-engine", "sqlite://tansu.db"])
            .current_dir(&self.dir)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting tansu");
        self.child = Some(child);
        let bin = self.bin.clone();
        let url = self.url();
        wait_until("the broker answers", Duration::from_secs(60), || {
            Command::new(&bin)
                .args(["topic", "list", "--broker", &url])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        });
    }

    /// Creates a topic with `partitions` partitions.
    pub fn create_topic(&self, name: &str, partitions: u32) {
        let status = Command::new(&self.bin)
            .args([
                "topic",
                "create",
                name,
                "--partitions",
                &partitions.to_string(),
            ])
            .args(["--broker", &self.url()])
            .stdout(Stdio::null())
            .status()
            .expect("running tansu topic create");
        assert!(status.success(), "creating topic {name}");
    }

    /// Kills the broker (SIGKILL: what it acknowledged is in its sqlite file).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port and data.
    pub fn restart(&mut self) {
        self.stop();
        self.run();
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The independent peer (`tests/interop/kafka_peer.py`).
pub fn peer() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/kafka_peer.py")
}

/// Runs the peer with `args`; returns (success, stdout, stderr).
pub fn run_peer(args: &[&str]) -> (bool, String, String) {
    let out = Command::new("python3")
        .arg(peer())
        .args(args)
        .output()
        .expect("running kafka_peer.py");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Whether python3 has confluent-kafka and avro; panics when required and missing.
pub fn python_ready() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import confluent_kafka, avro.io"])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            !required("FLUMEN_REQUIRE_PY"),
            "python3 lacks confluent-kafka or avro (python3 -m pip install confluent-kafka avro)"
        );
        eprintln!("skipped: python3 lacks confluent-kafka or avro");
    }
    ok
}
