//! Krylov eigensolvers over a matrix-free product, for games too large to form J.
//!
//! `arnoldi` builds an orthonormal Krylov basis with full reorthogonalisation, reads Ritz
//! values off the Hessenberg matrix, and restarts implicitly (exact shifts) when the basis is
//! full; `lanczos` grows a basis for symmetric operators (the per-player Hessians) until the
//! wanted eigenvalues have converged or the basis reaches `max_dim`. Both report each Ritz
//! value's residual |h_{m+1,m}| |e_m^T y|, which equals |A x - theta x| for the Ritz vector x.

use nalgebra::{Complex, DMatrix, DVector, SymmetricEigen};
use rand::Rng;

use super::spectrum::Eigenvalue;

/// Which end of the spectrum to find.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    LargestMagnitude,
    LargestReal,
    SmallestReal,
    LargestImag,
}

/// Eigenvalues found by a Krylov method.
#[derive(Debug, Clone)]
pub struct KrylovResult {
    /// The wanted Ritz values, best first by the selection rule.
    pub values: Vec<Eigenvalue>,
    /// Residual norm of each value's Ritz pair.
    pub residuals: Vec<f64>,
    /// How many of `values` met the tolerance.
    pub converged: usize,
    /// Operator products spent.
    pub products: usize,
}

fn key(which: Which, e: &Eigenvalue) -> f64 {
    match which {
        Which::LargestMagnitude => e.re.hypot(e.im),
        Which::LargestReal => e.re,
        Which::SmallestReal => -e.re,
        Which::LargestImag => e.im.abs(),
    }
}

/// Inner product with eight running sums, which the compiler can keep in vector registers (a
/// single running sum is one dependent add per element: the orthogonalisation of a long basis
/// was bound by it).
fn dot(a: &[f64], b: &[f64]) -> f64 {
    let mut acc = [0.0f64; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f64 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail
}

fn norm(a: &[f64]) -> f64 {
    dot(a, a).sqrt()
}

/// Orthogonalises `w` against `basis` twice (classical Gram-Schmidt, repeated), returning the
/// coefficients of the two passes summed.
fn orthogonalise(basis: &[Vec<f64>], w: &mut [f64]) -> Vec<f64> {
    let mut h = vec![0.0; basis.len()];
    for _ in 0..2 {
        for (j, q) in basis.iter().enumerate() {
            let c = dot(q, w);
            h[j] += c;
            for (wi, qi) in w.iter_mut().zip(q) {
                *wi -= c * qi;
            }
        }
    }
    h
}

/// What a solver reports when the operator returns non-finite values (a diverged point).
fn not_finite(k: usize, products: usize) -> KrylovResult {
    KrylovResult {
        values: vec![
            Eigenvalue {
                re: f64::NAN,
                im: f64::NAN
            };
            k
        ],
        residuals: vec![f64::NAN; k],
        converged: 0,
        products,
    }
}

/// One product A q_m orthogonalised against the basis: (coefficients, remainder, its norm), or
/// None when the product is not finite.
fn next_direction(
    apply: &mut dyn FnMut(&[f64]) -> Vec<f64>,
    basis: &[Vec<f64>],
    products: &mut usize,
) -> Option<(Vec<f64>, Vec<f64>, f64)> {
    let mut w = apply(&basis[basis.len() - 1]);
    *products += 1;
    if w.iter().any(|x| !x.is_finite()) {
        return None;
    }
    let h = orthogonalise(basis, &mut w);
    let beta = norm(&w);
    Some((h, w, beta))
}

fn start_vector<R: Rng>(n: usize, rng: &mut R) -> Vec<f64> {
    let v: Vec<f64> = (0..n).map(|_| rng.random_range(-1.0..1.0)).collect();
    let s = norm(&v);
    v.into_iter().map(|x| x / s).collect()
}

/// A unit eigenvector of the small upper Hessenberg matrix `h` for its eigenvalue `theta`, by
/// one step of inverse iteration with a slightly shifted `theta`. Gaussian elimination with
/// partial pivoting only ever meets one subdiagonal entry per column, so the solve costs m^2,
/// not the m^3 of a dense LU (it ran once per wanted value at every convergence check).
fn ritz_vector(h: &DMatrix<f64>, theta: Complex<f64>) -> DVector<Complex<f64>> {
    let m = h.nrows();
    let zero = Complex::new(0.0, 0.0);
    let scale = h.iter().fold(0.0f64, |a, x| a.max(x.abs())).max(1e-300);
    let shift = theta + Complex::new(scale * 1e-10, scale * 1e-10);
    // Row i of H - shift I; entries left of column i - 1 are zero and never read.
    let mut a: Vec<Vec<Complex<f64>>> = (0..m)
        .map(|i| {
            (0..m)
                .map(|j| Complex::new(h[(i, j)], 0.0) - if i == j { shift } else { zero })
                .collect()
        })
        .collect();
    let mut b = vec![Complex::new(1.0, 0.0); m];
    for j in 0..m.saturating_sub(1) {
        if a[j + 1][j].norm() > a[j][j].norm() {
            a.swap(j, j + 1);
            b.swap(j, j + 1);
        }
        if a[j][j] == zero {
            // Both candidates are zero: the column is already eliminated.
            continue;
        }
        let l = a[j + 1][j] / a[j][j];
        let (top, rest) = a.split_at_mut(j + 1);
        for (x, y) in rest[0][j..].iter_mut().zip(&top[j][j..]) {
            *x -= l * y;
        }
        b[j + 1] = b[j + 1] - l * b[j];
    }
    // Back substitution; an exactly zero pivot (theta hit an eigenvalue to the last bit even
    // after the shift) is nudged to the shift's size so the vector stays finite.
    let mut y = vec![zero; m];
    for i in (0..m).rev() {
        let mut r = b[i];
        for k in (i + 1)..m {
            r -= a[i][k] * y[k];
        }
        let p = if a[i][i] == zero {
            Complex::new(scale * 1e-10, 0.0)
        } else {
            a[i][i]
        };
        y[i] = r / p;
    }
    let n = y.iter().map(|c| c.norm_sqr()).sum::<f64>().sqrt();
    DVector::from_vec(y) / Complex::new(n.max(1e-300), 0.0)
}

/// The Ritz values of the Hessenberg matrix `hm`, best first by `which`, with conjugate pairs
/// kept together.
fn sorted_ritz(hm: &DMatrix<f64>, which: Which) -> Vec<Complex<f64>> {
    let mut ritz: Vec<Complex<f64>> = hm.complex_eigenvalues().iter().copied().collect();
    // Ties (a conjugate pair has one key) put the positive imaginary part first.
    ritz.sort_by(|a, b| {
        key(which, &Eigenvalue { re: b.re, im: b.im })
            .total_cmp(&key(which, &Eigenvalue { re: a.re, im: a.im }))
            .then(b.re.total_cmp(&a.re))
            .then(b.im.abs().total_cmp(&a.im.abs()))
            .then(b.im.total_cmp(&a.im))
    });
    ritz
}

/// Whether a Ritz value counts as real (its imaginary part is rounding next to `scale`).
fn is_real(c: &Complex<f64>, scale: f64) -> bool {
    c.im.abs() <= 1e-12 * scale.max(c.norm())
}

/// Applies the shifts `unwanted` to the Hessenberg matrix `h` by explicit QR steps (a double
/// step x^2 - 2 Re(mu) x + |mu|^2 per conjugate pair, so the arithmetic stays real); returns
/// the accumulated orthogonal Q with h overwritten by Q^T h Q.
fn apply_shifts(h: &mut DMatrix<f64>, unwanted: &[Complex<f64>], scale: f64) -> DMatrix<f64> {
    let m = h.nrows();
    let mut q = DMatrix::<f64>::identity(m, m);
    for mu in unwanted {
        let shifted = if is_real(mu, scale) {
            &*h - DMatrix::<f64>::identity(m, m) * mu.re
        } else if mu.im > 0.0 {
            &*h * &*h - &*h * (2.0 * mu.re) + DMatrix::<f64>::identity(m, m) * mu.norm_sqr()
        } else {
            // The conjugate of a pair already applied.
            continue;
        };
        let qi = shifted.qr().q();
        *h = qi.transpose() * &*h * &qi;
        // Exactly Hessenberg in exact arithmetic: clear the rounding below the subdiagonal.
        for j in 0..m {
            for i in (j + 2)..m {
                h[(i, j)] = 0.0;
            }
        }
        q *= qi;
    }
    q
}

/// The `k` eigenvalues of the operator `apply` (on R^n) selected by `which`: implicitly
/// restarted Arnoldi (Sorensen 1992) with exact shifts. The basis grows to `max_dim` vectors;
/// then the unwanted Ritz values are filtered out by shifted QR steps on the Hessenberg
/// matrix, the factorisation is cut back to the k wanted directions (k + 1 when that keeps a
/// conjugate pair together) and grown again, at most `max_restarts` times.
pub fn arnoldi<R: Rng>(
    apply: &mut dyn FnMut(&[f64]) -> Vec<f64>,
    n: usize,
    k: usize,
    which: Which,
    tol: f64,
    max_dim: usize,
    max_restarts: usize,
    rng: &mut R,
) -> KrylovResult {
    let k = k.min(n);
    // Room for k wanted values, a split conjugate pair and at least two shifts.
    let max_dim = max_dim.max(k + 3).min(n);
    let mut basis: Vec<Vec<f64>> = vec![start_vector(n, rng)];
    // Column j of the (m+1) x m Hessenberg matrix.
    let mut cols: Vec<Vec<f64>> = Vec::new();
    let mut products = 0;
    let mut restarts = 0;
    loop {
        let Some((mut h, w, beta)) = next_direction(apply, &basis, &mut products) else {
            return not_finite(k, products);
        };
        h.push(beta);
        cols.push(h);
        let m = cols.len();
        let scale = cols.iter().flatten().fold(0.0f64, |a, x| a.max(x.abs()));
        let breakdown = beta <= 1e-14 * scale;
        // Look at the Ritz values now and then while the first basis grows (easy operators
        // converge early), and whenever the basis is full.
        let check = breakdown || (m >= k && (m % 5 == 0 || m == max_dim));
        if !check {
            basis.push(w.into_iter().map(|x| x / beta).collect());
            continue;
        }
        let hm = DMatrix::from_fn(
            m,
            m,
            |i, j| if i < cols[j].len() { cols[j][i] } else { 0.0 },
        );
        let ritz = sorted_ritz(&hm, which);
        let wanted = &ritz[..k.min(ritz.len())];
        let residuals: Vec<f64> = wanted
            .iter()
            .map(|&t| {
                if breakdown {
                    0.0
                } else {
                    beta * ritz_vector(&hm, t)[m - 1].norm()
                }
            })
            .collect();
        let converged = wanted
            .iter()
            .zip(&residuals)
            .filter(|(t, r)| **r <= tol * t.norm().max(1.0))
            .count();
        let done = converged == wanted.len() || breakdown || m == n;
        // What a restart would keep: k directions (k + 1 if the k-th value's conjugate would
        // be cut off); with no room left to filter anything out, report what there is.
        let mut keep = k;
        if keep > 0 && keep < m && !is_real(&ritz[keep - 1], scale) && ritz[keep - 1].im > 0.0 {
            keep += 1;
        }
        let stuck = m >= max_dim && (restarts >= max_restarts || keep + 1 >= m);
        if done || stuck {
            return KrylovResult {
                values: wanted
                    .iter()
                    .map(|c| Eigenvalue { re: c.re, im: c.im })
                    .collect(),
                residuals,
                converged,
                products,
            };
        }
        if m < max_dim {
            basis.push(w.into_iter().map(|x| x / beta).collect());
            continue;
        }

        // Restart.
        restarts += 1;
        let mut hq = hm;
        let q = apply_shifts(&mut hq, &ritz[keep..], scale);
        // V Q for the first keep + 1 columns.
        let rotated: Vec<Vec<f64>> = (0..=keep)
            .map(|j| {
                let mut v = vec![0.0; n];
                for (i, b) in basis.iter().enumerate().take(m) {
                    let c = q[(i, j)];
                    if c != 0.0 {
                        for (vi, bi) in v.iter_mut().zip(b) {
                            *vi += c * bi;
                        }
                    }
                }
                v
            })
            .collect();
        // New residual: f = (V Q)_{keep} h'_{keep+1,keep} + f_m q_{m,keep}, f_m = beta w/|w|.
        let sub = hq[(keep, keep - 1)];
        let tail = beta * q[(m - 1, keep - 1)];
        let mut f: Vec<f64> = rotated[keep]
            .iter()
            .zip(&w)
            .map(|(v, wi)| v * sub + wi / beta * tail)
            .collect();
        basis = rotated[..keep].to_vec();
        // One more orthogonalisation against the kept basis guards against rounding drift.
        let _ = orthogonalise(&basis, &mut f);
        let fnorm = norm(&f);
        cols = (0..keep)
            .map(|j| {
                let mut c: Vec<f64> = (0..=(j + 1).min(keep - 1)).map(|i| hq[(i, j)]).collect();
                if j + 1 == keep {
                    c.push(fnorm);
                }
                c
            })
            .collect();
        if fnorm <= 1e-14 * scale {
            // The kept directions span an invariant subspace: their Ritz values are exact.
            let hk = DMatrix::from_fn(
                keep,
                keep,
                |i, j| if i < cols[j].len() { cols[j][i] } else { 0.0 },
            );
            let ritz = sorted_ritz(&hk, which);
            let values: Vec<Eigenvalue> = ritz
                .iter()
                .take(k)
                .map(|c| Eigenvalue { re: c.re, im: c.im })
                .collect();
            return KrylovResult {
                residuals: vec![0.0; values.len()],
                converged: values.len(),
                values,
                products,
            };
        }
        basis.push(f.into_iter().map(|x| x / fnorm).collect());
    }
}

/// The `k` smallest and `k` largest eigenvalues of a symmetric operator, ascending, with
/// residuals; Lanczos with full reorthogonalisation.
pub fn lanczos<R: Rng>(
    apply: &mut dyn FnMut(&[f64]) -> Vec<f64>,
    n: usize,
    k: usize,
    tol: f64,
    max_dim: usize,
    rng: &mut R,
) -> KrylovResult {
    let max_dim = max_dim.min(n).max((2 * k).min(n));
    let mut basis: Vec<Vec<f64>> = vec![start_vector(n, rng)];
    let (mut alpha, mut beta): (Vec<f64>, Vec<f64>) = (Vec::new(), Vec::new());
    let mut products = 0;
    loop {
        let Some((h, w, b)) = next_direction(apply, &basis, &mut products) else {
            return not_finite(2 * k, products);
        };
        alpha.push(h[alpha.len()]);
        let m = alpha.len();
        let breakdown = b
            <= 1e-14
                * alpha
                    .iter()
                    .chain(&beta)
                    .fold(0.0f64, |a, x| a.max(x.abs()));
        // A breakdown (an invariant subspace, e.g. a zero Hessian) ends the search at once:
        // its Ritz values are exact, and the next basis vector would be 0 / 0.
        if breakdown || m >= 2 * k.min(n) && (m % 5 == 0 || m == max_dim) || m == n {
            let t = DMatrix::from_fn(m, m, |i, j| {
                if i == j {
                    alpha[i]
                } else if i + 1 == j || j + 1 == i {
                    beta[i.min(j)]
                } else {
                    0.0
                }
            });
            let eig = SymmetricEigen::new(t);
            let mut order: Vec<usize> = (0..m).collect();
            order.sort_by(|&a, &b| eig.eigenvalues[a].total_cmp(&eig.eigenvalues[b]));
            // The kk lowest and kk highest (disjoint: 2 kk <= m, except for m = 1), ascending.
            let kk = k.min(m / 2).max(1);
            let mut pick: Vec<usize> = order[..kk].to_vec();
            pick.extend(order[kk.max(m - kk)..].iter().copied());
            let residuals: Vec<f64> = pick
                .iter()
                .map(|&i| {
                    if breakdown {
                        0.0
                    } else {
                        b * eig.eigenvectors[(m - 1, i)].abs()
                    }
                })
                .collect();
            let converged = pick
                .iter()
                .zip(&residuals)
                .filter(|(&i, r)| **r <= tol * eig.eigenvalues[i].abs().max(1.0))
                .count();
            if converged == pick.len() || m >= max_dim || breakdown {
                return KrylovResult {
                    values: pick
                        .iter()
                        .map(|&i| Eigenvalue {
                            re: eig.eigenvalues[i],
                            im: 0.0,
                        })
                        .collect(),
                    residuals,
                    converged,
                    products,
                };
            }
        }
        beta.push(b);
        basis.push(w.into_iter().map(|x| x / b).collect());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn hessenberg_inverse_iteration_gives_eigenvectors_and_long_dots_are_exact_sums() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let m = 40;
        let h = DMatrix::from_fn(m, m, |i, j| {
            if i <= j + 1 {
                rng.random_range(-1.0..1.0)
            } else {
                0.0
            }
        });
        let hc = h.map(|x| Complex::new(x, 0.0));
        for theta in h.complex_eigenvalues().iter() {
            let y = ritz_vector(&h, *theta);
            let norm: f64 = y.iter().map(|c| c.norm_sqr()).sum::<f64>().sqrt();
            assert!((norm - 1.0).abs() < 1e-12);
            let r = &hc * &y - &y * *theta;
            let r = r.iter().map(|c| c.norm_sqr()).sum::<f64>().sqrt();
            assert!(r < 1e-8, "residual {r} for {theta}");
        }
        // Integers are summed exactly in any order: the eight running sums and the tail.
        let a: Vec<f64> = (0..1003).map(|i| (i % 17) as f64).collect();
        let b: Vec<f64> = (0..1003).map(|i| (i % 5) as f64 - 2.0).collect();
        let want: f64 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert_eq!(dot(&a, &b), want);
    }

    /// A 200 x 200 operator with known eigenvalues: 2 x 2 blocks [[a, -b], [b, a]] (values
    /// a +- ib) and 1 x 1 blocks, conjugated by a random permutation so the structure is hidden.
    fn known_operator() -> (Vec<Vec<(usize, f64)>>, Vec<Eigenvalue>) {
        let n = 200;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let mut perm: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            perm.swap(i, rng.random_range(0..=i));
        }
        let mut rows: Vec<Vec<(usize, f64)>> = vec![Vec::new(); n];
        let mut values = Vec::new();
        let mut i = 0;
        while i < n {
            let a = 1.0 + 9.0 * (i as f64 / n as f64) + 0.01 * i as f64;
            if i % 3 == 0 && i + 1 < n {
                let b = 0.5 + 0.01 * i as f64;
                let (p, q) = (perm[i], perm[i + 1]);
                rows[p].extend([(p, a), (q, -b)]);
                rows[q].extend([(p, b), (q, a)]);
                values.push(Eigenvalue { re: a, im: b });
                values.push(Eigenvalue { re: a, im: -b });
                i += 2;
            } else {
                rows[perm[i]].push((perm[i], a));
                values.push(Eigenvalue { re: a, im: 0.0 });
                i += 1;
            }
        }
        (rows, values)
    }

    #[test]
    fn restarted_arnoldi_finds_the_known_top_values_with_a_small_basis() {
        let (rows, values) = known_operator();
        let n = rows.len();
        let mut op = |x: &[f64]| -> Vec<f64> {
            rows.iter()
                .map(|r| r.iter().map(|&(j, v)| v * x[j]).sum())
                .collect()
        };
        for which in [
            Which::LargestMagnitude,
            Which::LargestReal,
            Which::LargestImag,
        ] {
            let mut want = values.clone();
            want.sort_by(|a, b| key(which, b).total_cmp(&key(which, a)));
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
            let r = arnoldi(&mut op, n, 6, which, 1e-10, 24, 500, &mut rng);
            assert_eq!(r.converged, 6, "{which:?}: residuals {:?}", r.residuals);
            // A basis of 24 cannot hold the answer without restarting.
            assert!(r.products > 24, "{which:?}: {} products", r.products);
            for (got, w) in r.values.iter().zip(&want) {
                assert!(
                    (key(which, got) - key(which, w)).abs() < 1e-8,
                    "{which:?}: {got:?} vs {w:?}"
                );
                assert!(
                    values
                        .iter()
                        .any(|v| (v.re - got.re).abs() < 1e-8 && (v.im - got.im).abs() < 1e-8),
                    "{which:?}: {got:?} is no eigenvalue"
                );
            }
        }
    }

    #[test]
    fn a_zero_operator_gives_exact_zeros_not_nan() {
        let mut zero = |x: &[f64]| vec![0.0; x.len()];
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let r = arnoldi(&mut zero, 50, 6, Which::LargestReal, 1e-10, 20, 5, &mut rng);
        assert!(!r.values.is_empty());
        assert!(
            r.values.iter().all(|v| v.re == 0.0 && v.im == 0.0),
            "{:?}",
            r.values
        );
        assert_eq!(r.converged, r.values.len());
        let r = lanczos(&mut zero, 50, 3, 1e-10, 20, &mut rng);
        assert!(!r.values.is_empty());
        assert!(r.values.iter().all(|v| v.re == 0.0), "{:?}", r.values);
    }

    #[test]
    fn arnoldi_without_restarts_reports_unconverged_values_honestly() {
        let (rows, _) = known_operator();
        let n = rows.len();
        let mut op = |x: &[f64]| -> Vec<f64> {
            rows.iter()
                .map(|r| r.iter().map(|&(j, v)| v * x[j]).sum())
                .collect()
        };
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let r = arnoldi(
            &mut op,
            n,
            6,
            Which::LargestMagnitude,
            1e-12,
            10,
            0,
            &mut rng,
        );
        assert_eq!(r.values.len(), 6);
        assert!(r.converged < 6);
        assert!(r.residuals.iter().any(|x| *x > 1e-12));
        assert_eq!(r.products, 10);
    }
}
