//! `flumen agent` with no `-f` runs the embedded default config (netcat → memory → logger).

mod common;

use std::process::Command;

use common::*;

#[test]
fn the_embedded_default_config_runs_and_logs_events_in_flumes_format() {
    let dir = test_dir();
    let mut cmd = Command::new(flumen_bin());
    cmd.arg("agent");
    let mut agent = Agent::spawn(cmd, dir.path());
    let port = agent.port_of("r1");
    assert_eq!(port, 44444, "the README promises 127.0.0.1:44444");
    assert_eq!(tcp_send(port, b"hello\n"), b"OK\n");
    let line = agent.wait_for_log(&["Event: {"]);
    assert!(
        line.ends_with(
            "Event: { headers:{} body: 68 65 6C 6C 6F                                  hello }"
        ),
        "{line}"
    );
    let status = agent.terminate();
    assert!(status.success(), "log:\n{}", agent.log());
}

#[test]
fn the_shipped_conf_file_is_the_embedded_one() {
    // `conf/flumen.properties` is what `include_str!` embeds; check it is a valid, clean config.
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("conf/flumen.properties");
    let out = Command::new(flumen_bin())
        .args(["check", "-n", "a1", "-f"])
        .arg(&file)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("source  r1 (netcat) -> c1"), "{text}");
    assert!(text.contains("0 finding(s)"), "{text}");
}
