//! Eigenvalues of the game Jacobian and the figures derived from them.
//!
//! Convention (SPEC section 2): the eigenvalues are those of J = dv/d(theta, phi) for the
//! field v = (grad_theta L_G, grad_phi L_D) of two minimising players. The gradient flow
//! d(theta, phi)/dt = -v is locally stable where every eigenvalue has a positive real part;
//! simultaneous gradient descent with step sizes H = diag(eta_G.., eta_D..) converges locally
//! where the spectral radius of I - H J is below 1.

use nalgebra::DMatrix;

/// One eigenvalue.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Eigenvalue {
    pub re: f64,
    pub im: f64,
}

/// From this size on, dense eigenvalues come from the large-matrix solver (LAPACK's dgeev with
/// OpenBLAS where the build found it, faer without it) rather than nalgebra: nalgebra's Schur took 22 s
/// at n = 2000 on the reference machine, faer 1.5 s.
pub const LARGE_FROM: usize = 200;

/// OpenBLAS threads for the large-matrix solver: a constant, not the machine's core count, so
/// the bits do not depend on the cores (OpenBLAS's results change in the last bits with its
/// thread count, and are the same run after run at a fixed one; they also depend on its
/// kernels, which status.toml names: see [`super::openblas`]). Measured on a 2403-row game
/// Jacobian (ring-8 MLP 2x32, 2 cores): 2.0 s with 2 threads against 4.4-4.7 s with 1, the
/// eigenvalues apart by at most 5e-15 of the spectral radius. `probe.eigen_threads` sets
/// another count for a trial ([`with_threads`]).
pub const LAPACK_THREADS: i32 = 2;

/// One large dense solve at a time in the process: the thread count is OpenBLAS's (and
/// faer's) global setting, and trials probe in parallel.
static SOLVER_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

thread_local! {
    /// `probe.eigen_threads` of the probe running on this thread (see [`with_threads`]).
    static THREADS: std::cell::Cell<Option<usize>> = const { std::cell::Cell::new(None) };
}

/// Runs `f` with the large solvers on `threads` threads (`probe.eigen_threads`; None: the
/// default, whose bits are the same on every machine with the same kernels). A setting of the
/// calling thread rather than an argument: every spectrum a probe takes (J's, the Hessians',
/// the scheme's matrices') should use it, through a dozen pure functions that otherwise need
/// no such argument.
pub fn with_threads<T>(threads: Option<usize>, f: impl FnOnce() -> T) -> T {
    let before = THREADS.with(|t| t.replace(threads));
    let out = f();
    THREADS.with(|t| t.set(before));
    out
}

/// The large solvers' thread count when `probe.eigen_threads` is unset: OpenBLAS's fixed
/// [`LAPACK_THREADS`], faer sequential.
pub const DEFAULT_EIGEN_THREADS: usize = if cfg!(ganlab_lapack) {
    LAPACK_THREADS as usize
} else {
    1
};

/// `probe.eigen_threads` where it asks for another count than [`DEFAULT_EIGEN_THREADS`]
/// (whose numbers are the default's).
pub fn other_eigen_threads(threads: Option<usize>) -> Option<usize> {
    threads.filter(|&t| t != DEFAULT_EIGEN_THREADS)
}

/// What computes dense spectra of [`LARGE_FROM`] rows and more with `threads`
/// (`probe.eigen_threads`), as a trial's status.toml records it.
pub fn large_solver(threads: Option<usize>) -> String {
    let name = match cfg!(ganlab_lapack) {
        true => format!("LAPACK dgeev and dsyev ({})", super::openblas::library()),
        false => "faer".into(),
    };
    // A count other than the default is also said in the trial's notes (`TrialStatus`).
    match other_eigen_threads(threads) {
        None => format!("{name}, {DEFAULT_EIGEN_THREADS} thread(s)"),
        Some(t) => format!("{name}, {t} thread(s) (probe.eigen_threads)"),
    }
}

/// All eigenvalues of a dense row-major `n x n` matrix, sorted by real part then imaginary
/// part. A diverged (non-finite) matrix, or one on which the QR iteration does not converge,
/// gives NaN eigenvalues: that is data about the trial, not an error.
pub fn dense_eigenvalues(matrix: &[f64], n: usize) -> Vec<Eigenvalue> {
    if n == 0 {
        return Vec::new();
    }
    let nan = || {
        vec![
            Eigenvalue {
                re: f64::NAN,
                im: f64::NAN
            };
            n
        ]
    };
    // The eigensolvers need not terminate on NaN input.
    if matrix.iter().any(|x| !x.is_finite()) {
        return nan();
    }
    let eig = if n < LARGE_FROM {
        Some(nalgebra_eigenvalues(matrix, n))
    } else {
        large_eigenvalues(matrix, n)
    };
    let mut eig = eig.unwrap_or_else(nan);
    sort(&mut eig);
    eig
}

/// The order `dense_eigenvalues` returns: by real part, then imaginary part.
fn sort(eig: &mut [Eigenvalue]) {
    eig.sort_by(|a, b| a.re.total_cmp(&b.re).then(a.im.total_cmp(&b.im)));
}

/// All eigenvalues of a symmetric matrix, ascending; only its lower triangle is read. Below
/// [`LARGE_FROM`] rows from nalgebra, above from LAPACK's dsyev or dsyev_2stage (OpenBLAS)
/// where the build found it, else from faer, on the threads of [`with_threads`]. A
/// dense probe takes three of these (both players' Hessians and the symmetric part of J):
/// with nalgebra's unblocked solver (and its eigenvectors, which nothing read) they were half
/// of a probe's time at 2403 parameters. A non-finite matrix gives NaN eigenvalues.
pub fn symmetric_eigenvalues(sym: DMatrix<f64>) -> Vec<f64> {
    let n = sym.nrows();
    if sym.iter().any(|x| !x.is_finite()) {
        return vec![f64::NAN; n];
    }
    let mut e: Vec<f64> = if n < LARGE_FROM {
        sym.symmetric_eigenvalues().iter().copied().collect()
    } else {
        large_symmetric_eigenvalues(sym).unwrap_or_else(|| vec![f64::NAN; n])
    };
    e.sort_by(f64::total_cmp);
    e
}

#[cfg(ganlab_lapack)]
fn large_symmetric_eigenvalues(sym: DMatrix<f64>) -> Option<Vec<f64>> {
    lapack_symmetric_eigenvalues(sym)
}

#[cfg(not(ganlab_lapack))]
fn large_symmetric_eigenvalues(sym: DMatrix<f64>) -> Option<Vec<f64>> {
    faer_symmetric_eigenvalues(&sym)
}

/// faer's self-adjoint solver (threads as in [`faer_eigenvalues`]).
#[cfg_attr(ganlab_lapack, allow(dead_code))]
fn faer_symmetric_eigenvalues(sym: &DMatrix<f64>) -> Option<Vec<f64>> {
    let n = sym.nrows();
    let m = faer::Mat::<f64>::from_fn(n, n, |i, j| sym[(i, j)]);
    on_faer_threads(|| m.self_adjoint_eigenvalues(faer::Side::Lower).ok())
}

/// Runs `call` with faer sequential (its numbers then do not depend on the machine), or on
/// `probe.eigen_threads` threads where the probe set it; one call at a time.
#[cfg_attr(ganlab_lapack, allow(dead_code))]
fn on_faer_threads<T>(call: impl FnOnce() -> T) -> T {
    let par = match other_eigen_threads(THREADS.with(|t| t.get())) {
        None => faer::Par::Seq,
        Some(t) => faer::Par::rayon(t),
    };
    // A poisoned lock only means another probe panicked; the setting it guards is still sound.
    let _one_at_a_time = SOLVER_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    faer::set_global_parallelism(par);
    call()
}

#[cfg(ganlab_lapack)]
fn large_eigenvalues(matrix: &[f64], n: usize) -> Option<Vec<Eigenvalue>> {
    lapack_eigenvalues(matrix, n)
}

#[cfg(not(ganlab_lapack))]
fn large_eigenvalues(matrix: &[f64], n: usize) -> Option<Vec<Eigenvalue>> {
    faer_eigenvalues(matrix, n)
}

fn nalgebra_eigenvalues(matrix: &[f64], n: usize) -> Vec<Eigenvalue> {
    let mut balanced = matrix.to_vec();
    balance(&mut balanced, n);
    DMatrix::from_row_slice(n, n, &balanced)
        .complex_eigenvalues()
        .iter()
        .map(|c| Eigenvalue { re: c.re, im: c.im })
        .collect()
}

/// faer, sequential unless `probe.eigen_threads` says otherwise (see [`on_faer_threads`]).
/// `None` where the QR iteration did not converge.
#[cfg_attr(ganlab_lapack, allow(dead_code))]
fn faer_eigenvalues(matrix: &[f64], n: usize) -> Option<Vec<Eigenvalue>> {
    let mut balanced = matrix.to_vec();
    balance(&mut balanced, n);
    let m = faer::Mat::<f64>::from_fn(n, n, |i, j| balanced[i * n + j]);
    let eig = on_faer_threads(|| m.eigenvalues().ok())?;
    Some(
        eig.iter()
            .map(|c| Eigenvalue { re: c.re, im: c.im })
            .collect(),
    )
}

#[cfg(ganlab_lapack)]
extern "C" {
    // OpenBLAS's own entry point (not LAPACK's): the number of threads its kernels use.
    fn openblas_set_num_threads(threads: std::os::raw::c_int);
}

/// LAPACK's dgeev (OpenBLAS's build), eigenvalues only; dgeev balances (dgebal) itself, on
/// [`LAPACK_THREADS`] threads. `None` where the QR iteration did not converge.
#[cfg(ganlab_lapack)]
fn lapack_eigenvalues(matrix: &[f64], n: usize) -> Option<Vec<Eigenvalue>> {
    // LAPACK reads column-major, so it sees the transpose: the same eigenvalues.
    let mut a = matrix.to_vec();
    let n32 = i32::try_from(n).ok()?;
    let (mut wr, mut wi) = (vec![0.0; n], vec![0.0; n]);
    let mut no_vectors = [0.0; 1];
    // One call shape for the workspace-size query (lwork = -1) and the computation.
    let dgeev = |work: &mut [f64], lwork: i32| {
        let mut info = 0;
        // SAFETY: every slice has the length dgeev reads or writes for jobvl = jobvr = 'N'
        // (a: n x n, wr/wi: n, vl/vr: 1 with ld 1, work: lwork, or 1 for the query).
        unsafe {
            lapack::dgeev(
                b'N',
                b'N',
                n32,
                &mut a,
                n32,
                &mut wr,
                &mut wi,
                &mut no_vectors,
                1,
                &mut [0.0; 1],
                1,
                work,
                lwork,
                &mut info,
            );
        }
        info
    };
    let info = with_workspace(dgeev);
    (info == 0).then(|| {
        wr.iter()
            .zip(&wi)
            .map(|(&re, &im)| Eigenvalue { re, im })
            .collect()
    })
}

/// Calls a LAPACK routine twice on the threads of [`on_lapack_threads`]: with lwork = -1 for
/// its workspace size, then with that workspace. `call(work, lwork)` returns LAPACK's info.
#[cfg(ganlab_lapack)]
fn with_workspace(mut call: impl FnMut(&mut [f64], i32) -> i32) -> i32 {
    on_lapack_threads(|| {
        let mut query = [0.0; 1];
        if call(&mut query, -1) != 0 {
            return -1;
        }
        let lwork = query[0] as i32;
        call(&mut vec![0.0; lwork.max(1) as usize], lwork)
    })
}

/// Runs `call` with OpenBLAS on [`LAPACK_THREADS`] threads, or on `probe.eigen_threads` where
/// the probe set it; one call at a time in the process.
#[cfg(ganlab_lapack)]
fn on_lapack_threads<T>(call: impl FnOnce() -> T) -> T {
    let threads = THREADS
        .with(|t| t.get())
        .map_or(LAPACK_THREADS, |t| i32::try_from(t).unwrap_or(i32::MAX));
    // A poisoned lock only means another probe panicked; the setting it guards is still sound.
    let _one_at_a_time = SOLVER_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    // SAFETY: sets OpenBLAS's global thread count; no other call is in flight (the lock).
    unsafe { openblas_set_num_threads(threads) };
    call()
}

/// From this size on, dsyev_2stage (a banded reduction by blocked products first, then the
/// band to tridiagonal) instead of dsyev, whose one-stage reduction is half matrix-vector
/// products. Measured on random symmetric matrices, 2 threads (dsyev vs 2-stage): n = 2400
/// 0.59 vs 0.66 s, 3200 1.29 vs 1.30 s, 4450 3.3 vs 2.9-3.0 s, 6000 8.8-9.2 vs 6.7 s; the three
/// symmetric spectra of a dense probe at 8899 parameters 45.8 s vs 26.7 s.
#[cfg(ganlab_lapack)]
const TWO_STAGE_FROM: usize = 3500;

/// LAPACK's dsyev or dsyev_2stage (OpenBLAS's build; see [`TWO_STAGE_FROM`]), eigenvalues
/// only (tridiagonal reduction, then the root-free QR of dsterf), ascending. `None` where it
/// did not converge.
#[cfg(ganlab_lapack)]
fn lapack_symmetric_eigenvalues(mut sym: DMatrix<f64>) -> Option<Vec<f64>> {
    let n = sym.nrows();
    let n32 = i32::try_from(n).ok()?;
    let mut w = vec![0.0; n];
    // nalgebra stores columns one after another, as LAPACK reads them; 'L': the lower
    // triangle.
    let a = sym.as_mut_slice();
    let dsyev = |work: &mut [f64], lwork: i32| {
        let mut info = 0;
        // SAFETY: a is n x n with leading dimension n, w has n entries, work has lwork
        // entries (1 for the query); jobz = 'N' reads and writes nothing else.
        unsafe {
            match n >= TWO_STAGE_FROM {
                true => {
                    lapack::dsyev_2stage(b'N', b'L', n32, a, n32, &mut w, work, lwork, &mut info)
                }
                false => lapack::dsyev(b'N', b'L', n32, a, n32, &mut w, work, lwork, &mut info),
            }
        }
        info
    };
    let info = with_workspace(dsyev);
    (info == 0).then_some(w)
}

/// Balances a row-major `n x n` matrix in place by a diagonal similarity D^-1 A D with powers
/// of two on D (Parlett and Reinsch; LAPACK's dgebal without permutations), so that every row
/// and its column have about the same 1-norm. The eigenvalues are unchanged and exactly so
/// (scaling by 2^k rounds nothing), but the QR iteration converges in fewer sweeps: a game
/// Jacobian's rows span orders of magnitude, and balancing cut faer's time on one by a
/// quarter.
pub fn balance(a: &mut [f64], n: usize) {
    const SWEEPS: usize = 100;
    for _ in 0..SWEEPS {
        let mut done = true;
        for i in 0..n {
            let (mut c, mut r) = (0.0, 0.0);
            for j in (0..n).filter(|&j| j != i) {
                c += a[j * n + i].abs();
                r += a[i * n + j].abs();
            }
            if c == 0.0 || r == 0.0 {
                continue;
            }
            let s = c + r;
            let mut f = 1.0;
            while c < r / 2.0 && f < 1e150 {
                f *= 2.0;
                c *= 4.0;
            }
            while c > r * 2.0 && f > 1e-150 {
                f /= 2.0;
                c /= 4.0;
            }
            if (c + r) / f < 0.95 * s {
                done = false;
                for j in 0..n {
                    a[i * n + j] /= f;
                    a[j * n + i] *= f;
                }
            }
        }
        if done {
            break;
        }
    }
}

/// Figures derived from a spectrum, per SPEC section 3.5.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpectrumFigures {
    pub max_re: f64,
    pub min_re: f64,
    /// max |im| / |re| over the eigenvalues; infinite for a purely imaginary pair.
    pub max_im_over_re: f64,
    /// Fraction of eigenvalues with a negative real part (unstable for the gradient flow).
    pub unstable_fraction: f64,
}

/// The figures of a spectrum (NaN where the spectrum is empty).
pub fn figures(eig: &[Eigenvalue]) -> SpectrumFigures {
    if eig.is_empty() {
        return SpectrumFigures {
            max_re: f64::NAN,
            min_re: f64::NAN,
            max_im_over_re: f64::NAN,
            unstable_fraction: f64::NAN,
        };
    }
    let ratio = |e: &Eigenvalue| {
        if e.im == 0.0 {
            0.0
        } else {
            e.im.abs() / e.re.abs()
        }
    };
    SpectrumFigures {
        max_re: eig.iter().map(|e| e.re).fold(f64::NEG_INFINITY, f64::max),
        min_re: eig.iter().map(|e| e.re).fold(f64::INFINITY, f64::min),
        max_im_over_re: eig.iter().map(ratio).fold(0.0, f64::max),
        unstable_fraction: eig.iter().filter(|e| e.re < 0.0).count() as f64 / eig.len() as f64,
    }
}

/// Spectral radius of I - H J for simultaneous gradient descent, where the first `n_theta`
/// coordinates step with `eta_g` and the rest with `eta_d`; `jacobian` is row-major `n x n`.
pub fn simultaneous_gd_radius(
    jacobian: &[f64],
    n: usize,
    n_theta: usize,
    eta_g: f64,
    eta_d: f64,
) -> f64 {
    let etas: Vec<f64> = (0..n)
        .map(|i| if i < n_theta { eta_g } else { eta_d })
        .collect();
    gd_radius_per_coordinate(jacobian, n, &etas)
}

/// The spectral radius of I - diag(etas) J: gradient descent with a step size per coordinate.
///
/// Taken as max |1 - mu| over the eigenvalues mu of diag(etas) J, not from I - diag(etas) J
/// itself: with small step sizes that matrix is nearly the identity, its eigenvalues cluster
/// at 1, and nalgebra's Schur iteration was seen to take many seconds on a 108 x 108 one.
/// diag(etas) J is scaled by the largest step first, so its eigenvalues are of J's size.
pub fn gd_radius_per_coordinate(jacobian: &[f64], n: usize, etas: &[f64]) -> f64 {
    largest_modulus(&gd_step_eigenvalues(jacobian, n, etas, None))
}

/// The eigenvalues of I - diag(etas) J, the step map of plain simultaneous gradient descent:
/// 1 - eta lambda from J's eigenvalues `game` where every coordinate has the same step eta
/// and they are given, else 1 - top mu over the eigenvalues mu of diag(etas / top) J (see
/// [`gd_radius_per_coordinate`]). A dense probe takes them once for both its
/// `gd_spectral_radius` and the simultaneous scheme's step map.
pub fn gd_step_eigenvalues(
    jacobian: &[f64],
    n: usize,
    etas: &[f64],
    game: Option<&[Eigenvalue]>,
) -> Vec<Eigenvalue> {
    let top = etas.iter().copied().fold(0.0f64, f64::max);
    if top <= 0.0 {
        return vec![Eigenvalue { re: 1.0, im: 0.0 }; n];
    }
    let step = |e: &Eigenvalue| Eigenvalue {
        re: 1.0 - top * e.re,
        im: -top * e.im,
    };
    if let Some(game) = game.filter(|_| etas.iter().all(|&e| e == top)) {
        return game.iter().map(step).collect();
    }
    let mut m = vec![0.0; n * n];
    for i in 0..n {
        let scale = etas[i] / top;
        for j in 0..n {
            m[i * n + j] = scale * jacobian[i * n + j];
        }
    }
    dense_eigenvalues(&m, n).iter().map(step).collect()
}

/// The largest modulus of a step map's eigenvalues (0 for none; NaN values are passed over,
/// as the radii always did).
pub fn largest_modulus(eig: &[Eigenvalue]) -> f64 {
    eig.iter().map(|e| e.re.hypot(e.im)).fold(0.0, f64::max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_has_imaginary_pair_and_known_radius() {
        // The bilinear game f = x y: v = (y, -x) for a minimising x and a maximising y,
        // written as two minimisers: J = [[0, 1], [-1, 0]].
        let j = [0.0, 1.0, -1.0, 0.0];
        let e = dense_eigenvalues(&j, 2);
        assert!(e
            .iter()
            .all(|e| e.re.abs() < 1e-14 && (e.im.abs() - 1.0).abs() < 1e-14));
        let eta = 0.3;
        let r = simultaneous_gd_radius(&j, 2, 1, eta, eta);
        assert!((r - (1.0f64 + eta * eta).sqrt()).abs() < 1e-14);
        let f = figures(&e);
        assert!(f.max_im_over_re.is_infinite());
        assert_eq!(f.unstable_fraction, 0.0);
    }

    /// Trials probe in parallel: the large solver's bits must not depend on who else calls it.
    #[cfg(ganlab_lapack)]
    #[test]
    fn lapack_gives_the_same_bits_alone_and_beside_other_callers() {
        use rand::Rng;
        let n = LARGE_FROM + 57;
        let mut rng = crate::rng::stream(9, crate::rng::Stream::Eval);
        let a: Vec<f64> = (0..n * n).map(|_| rng.random_range(-1.0..1.0)).collect();
        let bits = |e: Vec<Eigenvalue>| -> Vec<(u64, u64)> {
            e.iter().map(|x| (x.re.to_bits(), x.im.to_bits())).collect()
        };
        let alone = bits(lapack_eigenvalues(&a, n).unwrap());
        let together: Vec<Vec<(u64, u64)>> = std::thread::scope(|s| {
            let calls: Vec<_> = (0..3)
                .map(|_| s.spawn(|| bits(lapack_eigenvalues(&a, n).unwrap())))
                .collect();
            calls.into_iter().map(|c| c.join().unwrap()).collect()
        });
        for t in together {
            assert!(t == alone, "a concurrent call gave other bits");
        }
        // The symmetric solver shares the lock and the thread count.
        let (sym, _) = symmetric_with_eigenvalues(n, 9);
        let sym_bits = |e: Vec<f64>| -> Vec<u64> { e.iter().map(|x| x.to_bits()).collect() };
        let alone = sym_bits(converged(lapack_symmetric_eigenvalues(sym.clone())));
        std::thread::scope(|s| {
            let calls: Vec<_> = (0..3)
                .map(|_| s.spawn(|| sym_bits(converged(lapack_symmetric_eigenvalues(sym.clone())))))
                .collect();
            for c in calls {
                assert!(
                    c.join().is_ok_and(|bits| bits == alone),
                    "a concurrent dsyev gave other bits"
                );
            }
        });
    }

    #[test]
    fn every_solver_agrees_on_a_random_matrix() {
        use rand::Rng;
        let n = LARGE_FROM + 13;
        let mut rng = crate::rng::stream(5, crate::rng::Stream::Eval);
        let a: Vec<f64> = (0..n * n).map(|_| rng.random_range(-1.0..1.0)).collect();
        let sorted = |mut e: Vec<Eigenvalue>| {
            sort(&mut e);
            e
        };
        let want = sorted(nalgebra_eigenvalues(&a, n));
        #[allow(unused_mut)] // pushed to only where OpenBLAS is linked
        let mut solvers = vec![
            ("dense_eigenvalues", dense_eigenvalues(&a, n)),
            ("faer", sorted(faer_eigenvalues(&a, n).unwrap())),
        ];
        #[cfg(ganlab_lapack)]
        solvers.push(("lapack", sorted(lapack_eigenvalues(&a, n).unwrap())));
        let trace: f64 = (0..n).map(|i| a[i * n + i]).sum();
        for (name, got) in solvers {
            assert_eq!(got.len(), n, "{name}");
            for (x, y) in got.iter().zip(&want) {
                assert!(
                    (x.re - y.re).abs() < 1e-8 && (x.im - y.im).abs() < 1e-8,
                    "{name}: {x:?} vs nalgebra's {y:?}"
                );
            }
            assert!(
                (got.iter().map(|e| e.re).sum::<f64>() - trace).abs() < 1e-8,
                "{name}"
            );
        }
    }

    /// A symmetric solver's values, which these well-conditioned matrices must give.
    fn converged(values: Option<Vec<f64>>) -> Vec<f64> {
        values.unwrap_or_else(|| panic!("the symmetric solver did not converge"))
    }

    /// Q diag(want) Q^T for a random orthogonal Q (from a QR factorisation), with `want`
    /// spread over [-3, 5] and one value repeated.
    fn symmetric_with_eigenvalues(n: usize, seed: u64) -> (DMatrix<f64>, Vec<f64>) {
        use rand::Rng;
        let mut rng = crate::rng::stream(seed, crate::rng::Stream::Eval);
        let r = DMatrix::from_fn(n, n, |_, _| rng.random_range(-1.0..1.0));
        let q = r.qr().q();
        let mut want: Vec<f64> = (0..n).map(|i| -3.0 + 8.0 * i as f64 / n as f64).collect();
        want[1] = want[0];
        let sym =
            &q * DMatrix::from_diagonal(&nalgebra::DVector::from_vec(want.clone())) * q.transpose();
        // Exactly symmetric, as the probes pass it.
        ((&sym + sym.transpose()) * 0.5, want)
    }

    #[test]
    fn every_symmetric_solver_finds_the_eigenvalues_a_matrix_was_built_with() {
        for n in [LARGE_FROM / 4, LARGE_FROM + 13] {
            let (sym, want) = symmetric_with_eigenvalues(n, 3);
            #[allow(unused_mut)] // pushed to only where OpenBLAS is linked
            let mut solvers = vec![
                ("symmetric_eigenvalues", symmetric_eigenvalues(sym.clone())),
                ("faer", converged(faer_symmetric_eigenvalues(&sym))),
            ];
            #[cfg(ganlab_lapack)]
            solvers.push((
                "lapack",
                converged(lapack_symmetric_eigenvalues(sym.clone())),
            ));
            for (name, mut got) in solvers {
                got.sort_by(f64::total_cmp);
                assert_eq!(got.len(), n, "{name}");
                for (x, y) in got.iter().zip(&want) {
                    assert!((x - y).abs() < 1e-12 * 5.0, "{name} at n = {n}: {x} vs {y}");
                }
            }
        }
        // dsyev_2stage's range, on Q D Q^T with Q a Householder reflection (O(n^2) to build).
        #[cfg(ganlab_lapack)]
        {
            let n = TWO_STAGE_FROM + 1;
            let want: Vec<f64> = (0..n).map(|i| -3.0 + 8.0 * i as f64 / n as f64).collect();
            let v: Vec<f64> = (0..n).map(|i| ((i * 7919) % 101) as f64 - 50.0).collect();
            let vv: f64 = v.iter().map(|x| x * x).sum();
            let vdv: f64 = v.iter().zip(&want).map(|(x, d)| x * x * d).sum();
            // (I - 2 v v^T / vv) D (I - 2 v v^T / vv)
            let sym = DMatrix::from_fn(n, n, |i, j| {
                let d = if i == j { want[i] } else { 0.0 };
                d - 2.0 * v[i] * v[j] * (want[i] + want[j]) / vv
                    + 4.0 * v[i] * v[j] * vdv / (vv * vv)
            });
            let got = converged(lapack_symmetric_eigenvalues(sym));
            for (x, y) in got.iter().zip(&want) {
                assert!((x - y).abs() < 1e-11 * 5.0, "dsyev_2stage: {x} vs {y}");
            }
        }
        let mut broken = symmetric_with_eigenvalues(LARGE_FROM, 4).0;
        broken[(7, 3)] = f64::INFINITY;
        assert!(symmetric_eigenvalues(broken).iter().all(|x| x.is_nan()));
    }

    /// probe.eigen_threads: another thread count gives the same spectrum to rounding, the
    /// same bits run after run at that count, and the default again once the probe is over.
    #[test]
    fn another_thread_count_moves_only_the_last_bits_and_ends_with_the_probe() {
        use rand::Rng;
        let n = LARGE_FROM + 41;
        let mut rng = crate::rng::stream(11, crate::rng::Stream::Eval);
        let a: Vec<f64> = (0..n * n).map(|_| rng.random_range(-1.0..1.0)).collect();
        let (sym, want) = symmetric_with_eigenvalues(n, 12);
        let spectra = || (dense_eigenvalues(&a, n), symmetric_eigenvalues(sym.clone()));
        let default = spectra();
        let radius = default
            .0
            .iter()
            .map(|e| e.re.hypot(e.im))
            .fold(0.0, f64::max);
        for threads in [1, 3] {
            let other = with_threads(Some(threads), spectra);
            assert_eq!(
                with_threads(Some(threads), spectra),
                other,
                "{threads} threads, twice"
            );
            for (x, y) in other.0.iter().zip(&default.0) {
                let d = (x.re - y.re).abs() + (x.im - y.im).abs();
                assert!(d < 1e-12 * radius, "{threads} threads: {x:?} vs {y:?}");
            }
            for (x, y) in other.1.iter().zip(&want) {
                assert!((x - y).abs() < 5e-12, "{threads} threads: {x} vs {y}");
            }
        }
        // The count reaches the solvers.
        #[cfg(ganlab_lapack)]
        {
            extern "C" {
                fn openblas_get_num_threads() -> std::os::raw::c_int;
            }
            // SAFETY: reads OpenBLAS's thread setting.
            let get = || on_lapack_threads(|| unsafe { openblas_get_num_threads() });
            assert_eq!(with_threads(Some(3), get), 3);
            assert_eq!(get(), LAPACK_THREADS);
        }
        let par = || on_faer_threads(faer::get_global_parallelism);
        assert!(matches!(with_threads(Some(3), par), faer::Par::Rayon(t) if t.get() == 3));
        assert!(matches!(par(), faer::Par::Seq));
        assert_eq!(spectra(), default, "the setting ends with the call");
        assert_eq!(with_threads(Some(DEFAULT_EIGEN_THREADS), spectra), default);
        assert_eq!(other_eigen_threads(Some(DEFAULT_EIGEN_THREADS)), None);
    }

    #[test]
    fn a_non_finite_matrix_gives_nan_eigenvalues_instead_of_hanging() {
        let e = dense_eigenvalues(&[1.0, f64::NAN, 0.0, 1.0], 2);
        assert!(e.iter().all(|e| e.re.is_nan() && e.im.is_nan()));
    }

    #[test]
    fn trace_equals_the_sum_of_eigenvalues() {
        let a = [2.0, -1.0, 0.5, 3.0, 0.0, -2.0, 1.0, 4.0, -1.5];
        let e = dense_eigenvalues(&a, 3);
        let sum_re: f64 = e.iter().map(|e| e.re).sum();
        let sum_im: f64 = e.iter().map(|e| e.im).sum();
        assert!((sum_re - (2.0 + 0.0 - 1.5)).abs() < 1e-12);
        assert!(sum_im.abs() < 1e-12);
    }

    #[test]
    fn balancing_evens_out_a_badly_scaled_matrix_and_keeps_its_eigenvalues() {
        // A = D^-1 M D for a dense, well-scaled M and D spanning 1e-6..1e6: A has M's
        // eigenvalues, but row norms 1e12 apart.
        use rand::Rng;
        let n = 6;
        let scale = [1e-6, 1e-3, 1.0, 1e2, 1e4, 1e6];
        let mut rng = crate::rng::stream(3, crate::rng::Stream::Eval);
        let m: Vec<f64> = (0..n * n).map(|_| rng.random_range(-1.0..1.0)).collect();
        let a: Vec<f64> = (0..n * n)
            .map(|k| m[k] * scale[k % n] / scale[k / n])
            .collect();
        let norm_spread = |m: &[f64]| {
            let rows: Vec<f64> = (0..n)
                .map(|i| (0..n).map(|j| m[i * n + j].abs()).sum::<f64>())
                .collect();
            rows.iter().cloned().fold(0.0, f64::max)
                / rows.iter().cloned().fold(f64::INFINITY, f64::min)
        };
        let mut b = a.clone();
        balance(&mut b, n);
        assert!(norm_spread(&a) > 1e9);
        assert!(
            norm_spread(&b) < 1e2,
            "spread after balancing: {:e}",
            norm_spread(&b)
        );
        // Only powers of two were applied: the diagonal is untouched.
        for i in 0..n {
            assert_eq!(a[i * n + i], b[i * n + i]);
        }
        let mut want: Vec<Eigenvalue> = DMatrix::from_row_slice(n, n, &m)
            .complex_eigenvalues()
            .iter()
            .map(|c| Eigenvalue { re: c.re, im: c.im })
            .collect();
        sort(&mut want);
        for (e, w) in dense_eigenvalues(&a, n).iter().zip(&want) {
            assert!(
                (e.re - w.re).abs() < 1e-10 && (e.im - w.im).abs() < 1e-10,
                "{e:?} vs {w:?}"
            );
        }
    }

    #[test]
    fn the_equal_rate_radius_is_the_radius_of_i_minus_eta_j() {
        use rand::Rng;
        let n = 30;
        let mut rng = crate::rng::stream(9, crate::rng::Stream::Eval);
        let j: Vec<f64> = (0..n * n).map(|_| rng.random_range(-1.0..1.0)).collect();
        let eta = 0.05;
        let direct = simultaneous_gd_radius(&j, n, 11, eta, eta);
        let from_j = largest_modulus(&gd_step_eigenvalues(
            &j,
            n,
            &[eta; 30],
            Some(&dense_eigenvalues(&j, n)),
        ));
        assert!((direct - from_j).abs() < 1e-12, "{direct} vs {from_j}");
    }

    #[test]
    fn a_step_size_per_coordinate_scales_each_row_of_the_jacobian() {
        // J = diag(1, 2, 3) and steps (0.5, 0.1, 0.9): I - H J = diag(0.5, 0.8, -1.7).
        let j = [1.0, 0.0, 0.0, 0.0, 2.0, 0.0, 0.0, 0.0, 3.0];
        let r = gd_radius_per_coordinate(&j, 3, &[0.5, 0.1, 0.9]);
        assert!((r - 1.7).abs() < 1e-12, "{r}");
        // Two players' rates are the special case.
        let a = simultaneous_gd_radius(&j, 3, 1, 0.5, 0.1);
        let b = gd_radius_per_coordinate(&j, 3, &[0.5, 0.1, 0.1]);
        assert_eq!(a, b);
    }
}
