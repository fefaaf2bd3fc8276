//! Link options for the `flumen` binary.
//!
//! On glibc Linux the binary is linked with packed relative relocations (`DT_RELR`: binutils
//! 2.38+ to link, glibc 2.36+ to run; the Debian 12 toolchain we build on has both). The binary stays
//! position-independent (ASLR), but its 1.8 MB table of relocations, which the loader read
//! whole at every start, shrinks to 30 KB: 2.1 MiB less resident memory for an idle agent
//! (BENCHMARKS.md, issue 17). A non-PIE link would save 2 MiB more (no relocated data at all),
//! at the price of a fixed address layout; a network-facing daemon keeps ASLR.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let var = |name: &str| std::env::var(name).unwrap_or_default();
    if var("CARGO_CFG_TARGET_OS") == "linux" && var("CARGO_CFG_TARGET_ENV") == "gnu" {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}
