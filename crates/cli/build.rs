//! Link flags for the `berth` binary only.
//!
//! `berth` is a PIE whose ~13 000 relative relocations (a 300 KB `.rela.dyn`) the dynamic
//! loader reads and applies at every start, and every container start runs it twice (the
//! command, then the container's monitor). Packed relative relocations (RELR, glibc >= 2.36,
//! as berth-runtime is linked: `.cargo/config.toml`) make that table a few KB.
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let target = std::env::var("TARGET").unwrap_or_default();
    if target.contains("linux") && target.contains("gnu") {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
}
