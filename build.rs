//! Records the git commit ganlab is built from, and links the system's OpenBLAS, whose LAPACK
//! computes large spectra (`probe::spectrum`), wherever it is installed: found by pkg-config
//! or in the usual library folders, it is used without any flag (cfg `ganlab_lapack`); the
//! `openblas` feature requires it (the link fails without it); `GANLAB_LAPACK=off` builds
//! without it (faer then). (The openblas-src crate's `system` mode still builds its
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
    println!("cargo:rustc-check-cfg=cfg(ganlab_lapack)");
    println!("cargo:rerun-if-env-changed=GANLAB_LAPACK");
    println!("cargo:rerun-if-env-changed=PKG_CONFIG_PATH");
    let required = std::env::var_os("CARGO_FEATURE_OPENBLAS").is_some();
    let off = std::env::var("GANLAB_LAPACK").is_ok_and(|v| v == "off");
    if off && !required {
        return;
    }
    match find_openblas() {
        Some(dirs) => {
            for d in dirs {
                println!("cargo:rustc-link-search=native={d}");
            }
        }
        // Required but not found: link anyway, so the linker names what is missing.
        None if required => {}
        None => return,
    }
    println!("cargo:rustc-link-lib=dylib=openblas");
    println!("cargo:rustc-cfg=ganlab_lapack");
}

/// The folders to search for libopenblas (empty: the linker's default ones), or None where it
/// is not installed.
fn find_openblas() -> Option<Vec<String>> {
    let pkg = std::process::Command::new("pkg-config")
        .args(["--libs", "openblas"])
        .output()
        .ok()
        .filter(|o| o.status.success());
    if let Some(o) = pkg {
        let text = String::from_utf8_lossy(&o.stdout).into_owned();
        return Some(
            text.split_whitespace()
                .filter_map(|f| f.strip_prefix("-L").map(str::to_string))
                .collect(),
        );
    }
    let mut dirs: Vec<String> = std::env::var("LIBRARY_PATH")
        .map(|p| p.split(':').map(str::to_string).collect())
        .unwrap_or_default();
    dirs.extend(
        [
            "/usr/lib/x86_64-linux-gnu",
            "/usr/lib/aarch64-linux-gnu",
            "/usr/lib64",
            "/usr/lib",
            "/usr/local/lib",
        ]
        .map(str::to_string),
    );
    dirs.into_iter()
        .find(|d| std::path::Path::new(d).join("libopenblas.so").exists())
        .map(|d| vec![d])
}
