//! Records the git commit ganlab is built from, and links the system's OpenBLAS (whose LAPACK
//! computes large spectra, `probe::spectrum`) when the `openblas` feature is on. (The openblas-src crate's `system` mode still builds its
//! downloader, which does not compile without a TLS feature.)

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    // The commit ganlab is built from, for every trial's status.toml (empty outside a git
    // checkout). HEAD moves with commits and checkouts.
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/refs/heads");
    let commit = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    println!("cargo:rustc-env=GANLAB_GIT_COMMIT={commit}");
    if std::env::var_os("CARGO_FEATURE_OPENBLAS").is_some() {
        println!("cargo:rustc-link-lib=dylib=openblas");
    }
}
