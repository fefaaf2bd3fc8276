//! Test support: external decoders and Hadoop's own reader (`tests/interop/hadoop_read.sh`).
//!
//! A test that needs a tool which is absent prints `SKIP: ...` and passes, unless
//! `HADOOP_INTEROP_REQUIRED=1` is set, which turns a missing Hadoop reader into a failure.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// Whether an executable named `name` is on `PATH`.
pub fn on_path(name: &str) -> bool {
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(name).is_file()))
        .unwrap_or(false)
}

/// Whether `name` is on `PATH`; prints a skip notice for `what` when it is not.
pub fn tool(name: &str, what: &str) -> bool {
    let found = on_path(name);
    if !found {
        println!("SKIP: {what}: `{name}` is not installed");
    }
    found
}

/// Runs `program` with `args`, feeding `stdin`; panics with its stderr when it fails.
pub fn run(program: &str, args: &[&str], stdin: &[u8]) -> Vec<u8> {
    let output = run_output(program, args, stdin);
    assert!(
        output.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// Runs `program` with `args`, feeding `stdin`, and returns whatever happened.
pub fn run_output(program: &str, args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {program}: {e}"));
    let mut input = child.stdin.take().expect("stdin");
    let data = stdin.to_vec();
    let feeder = std::thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    let output = child.wait_with_output().expect("wait");
    feeder.join().expect("feeder");
    output
}

/// A fresh directory for one test's files.
pub fn temp_dir(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("hadoopfmt-{}-{test}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// The Hadoop reader script, if java, javac and the Hadoop jars are there.
pub fn hadoop(what: &str) -> Option<PathBuf> {
    let script = std::env::var_os("HADOOP_READ")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/hadoop_read.sh")
        });
    let ok = script.is_file()
        && Command::new("bash")
            .arg(&script)
            .arg("check")
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
    if ok {
        return Some(script);
    }
    let required = std::env::var("HADOOP_INTEROP_REQUIRED").is_ok_and(|v| v == "1");
    assert!(
        !required,
        "{what}: the Hadoop reader is required but missing ({} install)",
        script.display()
    );
    println!(
        "SKIP: {what}: no Hadoop reader (run `{} install`)",
        script.display()
    );
    None
}

/// Runs the Hadoop reader script with `args`; panics with its stderr when it fails.
pub fn hadoop_run(script: &Path, args: &[&str]) -> Vec<u8> {
    let output = hadoop_output(script, args);
    assert!(
        output.status.success(),
        "hadoop_read.sh {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// Runs the Hadoop reader script with `args` and returns whatever happened.
pub fn hadoop_output(script: &Path, args: &[&str]) -> Output {
    let script = script.to_string_lossy().into_owned();
    let mut all = vec![script.as_str()];
    all.extend_from_slice(args);
    run_output("bash", &all, &[])
}

/// Writes `data` to `dir/name` and returns the path as a string.
pub fn write_file(dir: &Path, name: &str, data: &[u8]) -> String {
    let path = dir.join(name);
    std::fs::write(&path, data).expect("write test file");
    path.to_string_lossy().into_owned()
}

/// Lower-case hex of `data`.
pub fn hex(data: &[u8]) -> String {
    data.iter().map(|b| format!("{b:02x}")).collect()
}

/// Deterministic test bytes: compressible text with some variety, `len` long.
pub fn text_bytes(seed: u64, len: usize) -> Vec<u8> {
    const WORDS: [&str; 8] = [
        "flume ", "hadoop ", "event ", "sink ", "batch ", "123 ", "zeta\t", "q ",
    ];
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        out.extend_from_slice(WORDS[(state >> 61) as usize].as_bytes());
    }
    out.truncate(len);
    out
}
