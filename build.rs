//! Links the system's OpenBLAS, whose LAPACK computes large spectra (`probe::spectrum`), when
//! the `openblas` feature is on. (The openblas-src crate's `system` mode still builds its
//! downloader, which does not compile without a TLS feature.)

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var_os("CARGO_FEATURE_OPENBLAS").is_some() {
        println!("cargo:rustc-link-lib=dylib=openblas");
    }
}
