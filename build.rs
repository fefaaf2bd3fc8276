//! Link options for the `flumen` binary.
//!
//! On glibc Linux the binary is linked with packed relative relocations (`DT_RELR`: binutils
//! 2.38+ to link, glibc 2.36+ to run; the Debian 12 toolchain we build on has both). The binary stays
//! position-independent (ASLR), but its 1.8 MB table of relocations, which the loader read
//! whole at every start, shrinks to 30 KB: 2.1 MiB less resident memory for an idle agent
//! (BENCHMARKS.md, issue 17). A non-PIE link would save 2 MiB more (no relocated data at all),
//! at the price of a fixed address layout; a network-facing daemon keeps ASLR.
//!
//! Where the linker is rustc's own LLD (its default on x86_64 Linux since 1.90), the functions
//! an agent runs to start, to move a few events and to idle (`link/symbol-order.txt`, made by
//! `scripts/symbol_order.sh`) are placed first and together: the kernel maps the 64 KiB around
//! each code page touched, and that code was scattered over 17 MB of text (BENCHMARKS.md,
//! issue 17 part 3). Names in the file that the code no longer has are skipped, so a stale file
//! costs nothing but part of the gain.

use std::path::Path;
use std::process::Command;

const SYMBOL_ORDER: &str = "link/symbol-order.txt";

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed={SYMBOL_ORDER}");
    if var("CARGO_CFG_TARGET_OS") == "linux" && var("CARGO_CFG_TARGET_ENV") == "gnu" {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
    let order = Path::new(&var("CARGO_MANIFEST_DIR")).join(SYMBOL_ORDER);
    if links_with_rust_lld() && order.is_file() {
        println!(
            "cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={}",
            order.display()
        );
        println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
    }
}

/// A build-script environment variable, empty when unset.
fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_default()
}

/// Whether rustc links this target with its own LLD: x86_64 Linux with glibc, rustc 1.90 or
/// newer, and no linker chosen in RUSTFLAGS (another linker may not know the options).
fn links_with_rust_lld() -> bool {
    if var("TARGET") != "x86_64-unknown-linux-gnu"
        || var("CARGO_ENCODED_RUSTFLAGS").contains("link")
    {
        return false;
    }
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let Ok(out) = Command::new(rustc).arg("--version").output() else {
        return false;
    };
    // "rustc 1.95.0 (59807616e 2026-04-14)"
    let version = String::from_utf8_lossy(&out.stdout);
    let minor = version
        .strip_prefix("rustc 1.")
        .and_then(|rest| rest.split('.').next())
        .and_then(|m| m.parse::<u32>().ok());
    minor.is_some_and(|m| m >= 90)
}
