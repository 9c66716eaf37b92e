//! Which of OpenBLAS's kernels compute the large dense spectra.
//!
//! OpenBLAS (Debian's is built for every x86 CPU, `DYNAMIC_ARCH`) picks its kernels by CPU
//! model when it is loaded, or takes those named by the environment variable
//! `OPENBLAS_CORETYPE` (some machines set it, e.g. to `Haswell`'s AVX2 kernels where older
//! OpenBLAS builds misbehaved with AVX-512). Kernels sum in their own order, so they give their
//! own last bits: every probing trial's status.toml names them with the solver, and `ganlab
//! bench --spectrum` prints them. On a Zen 4 (AMD EPYC, 2 cores), the 2403-row reference
//! Jacobian's dgeev took 2.50-2.64 s with the Haswell kernels and 1.99-2.30 s with AVX-512
//! ones (Cooperlake, which OpenBLAS 0.3.21 chooses there by itself, or SkylakeX).

#[cfg(ganlab_lapack)]
extern "C" {
    // OpenBLAS's own entry point: the name of the kernels it loaded.
    fn openblas_get_corename() -> *const std::os::raw::c_char;
}

/// OpenBLAS's name for the kernels it runs (`Haswell`, `SkylakeX`, `Cooperlake`, ...); None
/// in a build without OpenBLAS.
pub fn kernels() -> Option<String> {
    #[cfg(ganlab_lapack)]
    {
        // SAFETY: returns a pointer to a static NUL-terminated string (or null).
        let name = unsafe { openblas_get_corename() };
        if name.is_null() {
            return None;
        }
        // SAFETY: non-null, NUL-terminated and static (above).
        let name = unsafe { std::ffi::CStr::from_ptr(name) };
        Some(name.to_string_lossy().trim().to_string())
    }
    #[cfg(not(ganlab_lapack))]
    None
}

/// The library of the large solvers with its kernels, as `probe::spectrum::large_solver`
/// names it: "OpenBLAS, Haswell kernels".
pub fn library() -> String {
    match kernels() {
        Some(k) => format!("OpenBLAS, {k} kernels"),
        None => "OpenBLAS".into(),
    }
}

#[cfg(all(test, ganlab_lapack))]
mod tests {
    use super::*;

    #[test]
    fn openblas_names_the_kernels_it_loaded() {
        let loaded = kernels().unwrap_or_default();
        assert!(
            !loaded.is_empty() && loaded.is_ascii(),
            "OpenBLAS names its kernels: {loaded:?}"
        );
        assert_eq!(library(), format!("OpenBLAS, {loaded} kernels"));
        // Where the environment names kernels, OpenBLAS loaded those (names compare without
        // case: OpenBLAS accepts "haswell" and answers "Haswell").
        if let Ok(asked) = std::env::var("OPENBLAS_CORETYPE") {
            assert!(
                asked.eq_ignore_ascii_case(&loaded),
                "{asked} asked, {loaded} loaded"
            );
        }
    }
}
