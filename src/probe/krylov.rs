//! Krylov eigensolvers over a matrix-free product, for games too large to form J.
//!
//! `arnoldi` builds an orthonormal Krylov basis with full reorthogonalisation and reads Ritz
//! values off the Hessenberg matrix; `lanczos` does the same for symmetric operators (the
//! per-player Hessians). Both grow the basis until the wanted eigenvalues have converged or
//! the basis reaches `max_dim` (no restart yet), and report each Ritz value's residual
//! |h_{m+1,m}| |e_m^T y|, which equals |A x - theta x| for the Ritz vector x.

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

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
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

/// A unit eigenvector of the small Hessenberg matrix `h` for its eigenvalue `theta`, by one
/// step of inverse iteration with a slightly shifted `theta`.
fn ritz_vector(h: &DMatrix<f64>, theta: Complex<f64>) -> DVector<Complex<f64>> {
    let m = h.nrows();
    let scale = h.iter().fold(0.0f64, |a, x| a.max(x.abs())).max(1e-300);
    let shift = theta + Complex::new(scale * 1e-10, scale * 1e-10);
    let a = DMatrix::from_fn(m, m, |i, j| {
        Complex::new(h[(i, j)], 0.0)
            - if i == j {
                shift
            } else {
                Complex::new(0.0, 0.0)
            }
    });
    let b = DVector::from_element(m, Complex::new(1.0, 0.0));
    let y = a.lu().solve(&b).unwrap_or(b);
    let n = y.iter().map(|c| c.norm_sqr()).sum::<f64>().sqrt();
    y / Complex::new(n.max(1e-300), 0.0)
}

/// The `k` eigenvalues of the operator `apply` (on R^n) selected by `which`.
pub fn arnoldi<R: Rng>(
    apply: &mut dyn FnMut(&[f64]) -> Vec<f64>,
    n: usize,
    k: usize,
    which: Which,
    tol: f64,
    max_dim: usize,
    rng: &mut R,
) -> KrylovResult {
    let max_dim = max_dim.min(n).max(k.min(n));
    let mut basis: Vec<Vec<f64>> = vec![start_vector(n, rng)];
    // Column j of the (m+1) x m Hessenberg matrix.
    let mut cols: Vec<Vec<f64>> = Vec::new();
    let mut products = 0;
    loop {
        let Some((mut h, w, beta)) = next_direction(apply, &basis, &mut products) else {
            return not_finite(k, products);
        };
        h.push(beta);
        cols.push(h);
        let m = cols.len();
        let breakdown = beta <= 1e-14 * cols.iter().flatten().fold(0.0f64, |a, x| a.max(x.abs()));
        let check = m >= k && (m % 5 == 0 || m == max_dim || breakdown);
        if check {
            let hm = DMatrix::from_fn(
                m,
                m,
                |i, j| if i < cols[j].len() { cols[j][i] } else { 0.0 },
            );
            let mut ritz: Vec<Complex<f64>> = hm.complex_eigenvalues().iter().copied().collect();
            ritz.sort_by(|a, b| {
                key(which, &Eigenvalue { re: b.re, im: b.im })
                    .total_cmp(&key(which, &Eigenvalue { re: a.re, im: a.im }))
            });
            ritz.truncate(k);
            let residuals: Vec<f64> = ritz
                .iter()
                .map(|&t| {
                    if breakdown {
                        0.0
                    } else {
                        beta * ritz_vector(&hm, t)[m - 1].norm()
                    }
                })
                .collect();
            let converged = ritz
                .iter()
                .zip(&residuals)
                .filter(|(t, r)| **r <= tol * t.norm().max(1.0))
                .count();
            if converged == ritz.len() || m >= max_dim || breakdown {
                return KrylovResult {
                    values: ritz
                        .iter()
                        .map(|c| Eigenvalue { re: c.re, im: c.im })
                        .collect(),
                    residuals,
                    converged,
                    products,
                };
            }
        }
        basis.push(w.into_iter().map(|x| x / beta).collect());
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
        if m >= 2 * k.min(n) && (m % 5 == 0 || m == max_dim || breakdown) || m == n {
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
