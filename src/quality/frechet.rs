//! The Fréchet distance between Gaussians fitted to two feature sets: for N(m1, S1) and
//! N(m2, S2) the squared 2-Wasserstein distance
//!
//!   d^2 = |m1 - m2|^2 + tr(S1) + tr(S2) - 2 tr((S1^1/2 S2 S1^1/2)^1/2),
//!
//! reported squared, as Heusel et al.'s FID reports it. ganlab computes it on its own
//! classifier's features, not Inception's, so the numbers are comparable within ganlab (one
//! data set, one cached classifier) and not with published FIDs.

use nalgebra::{DMatrix, DVector};

/// A Gaussian fitted to feature rows: their mean and covariance (divided by n - 1).
#[derive(Debug, Clone, PartialEq)]
pub struct Gaussian {
    pub mean: DVector<f64>,
    pub cov: DMatrix<f64>,
}

impl Gaussian {
    /// The fit to row-major `rows` of `dim` columns (at least two rows).
    pub fn fit(rows: &[f64], dim: usize) -> Gaussian {
        let n = rows.len() / dim.max(1);
        let (mean, cov) = crate::prior::pca::mean_and_covariance(rows, dim);
        let unbiased = n as f64 / (n.max(2) - 1) as f64;
        Gaussian {
            mean,
            cov: cov * unbiased,
        }
    }

    /// Dimension of the features.
    pub fn dim(&self) -> usize {
        self.mean.len()
    }

    /// The mean as the first row, then the covariance's rows: `(1 + dim) x dim` values.
    pub fn to_rows(&self) -> Vec<f64> {
        let d = self.dim();
        let mut v: Vec<f64> = self.mean.iter().copied().collect();
        v.extend((0..d * d).map(|i| self.cov[(i / d, i % d)]));
        v
    }

    /// The inverse of [`Gaussian::to_rows`]; `None` when `values` is not `(1 + dim) x dim`.
    pub fn from_rows(values: &[f64], dim: usize) -> Option<Gaussian> {
        (values.len() == (1 + dim) * dim).then(|| Gaussian {
            mean: DVector::from_column_slice(&values[..dim]),
            cov: DMatrix::from_row_slice(dim, dim, &values[dim..]),
        })
    }
}

/// The square root of a symmetric positive semidefinite matrix (negative eigenvalues, which
/// rounding leaves on singular covariances, count as 0).
fn sqrt_psd(m: &DMatrix<f64>) -> DMatrix<f64> {
    let e = m.clone().symmetric_eigen();
    let roots = e.eigenvalues.map(|l| l.max(0.0).sqrt());
    &e.eigenvectors * DMatrix::from_diagonal(&roots) * e.eigenvectors.transpose()
}

/// The squared Fréchet distance between `a` and `b` (NaN when either holds a non-finite
/// value: a diverged generator's features).
pub fn frechet_distance(a: &Gaussian, b: &Gaussian) -> f64 {
    let finite = |g: &Gaussian| g.mean.iter().chain(g.cov.iter()).all(|v| v.is_finite());
    if a.dim() != b.dim() || !finite(a) || !finite(b) {
        return f64::NAN;
    }
    let r = sqrt_psd(&a.cov);
    let mut m = &r * &b.cov * &r;
    // Symmetric in exact arithmetic; make it so in floating point for the symmetric solver.
    m = (&m + m.transpose()) * 0.5;
    let cross: f64 = m
        .symmetric_eigen()
        .eigenvalues
        .iter()
        .map(|l| l.max(0.0).sqrt())
        .sum();
    let d2 = (&a.mean - &b.mean).norm_squared() + a.cov.trace() + b.cov.trace() - 2.0 * cross;
    // Rounding can leave -1e-13 for identical sets.
    d2.max(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;
    use rand_distr::{Distribution, StandardNormal};

    fn rotation(angle: f64) -> DMatrix<f64> {
        let (s, c) = angle.sin_cos();
        DMatrix::from_row_slice(2, 2, &[c, -s, s, c])
    }

    #[test]
    fn a_set_with_itself_is_at_distance_zero() {
        let mut rng = crate::rng::stream(3, crate::rng::Stream::Data);
        let rows: Vec<f64> = (0..300 * 5).map(|_| rng.random_range(-2.0..3.0)).collect();
        let g = Gaussian::fit(&rows, 5);
        assert!(
            frechet_distance(&g, &g) < 1e-10,
            "{}",
            frechet_distance(&g, &g)
        );
        // A covariance of rank 1 (every row on a line) too.
        let line: Vec<f64> = (0..50).flat_map(|i| [i as f64, 2.0 * i as f64]).collect();
        let l = Gaussian::fit(&line, 2);
        assert!(frechet_distance(&l, &l) < 1e-9 * l.cov.trace());
    }

    #[test]
    fn two_gaussians_match_the_closed_forms() {
        // Commuting covariances (shared eigenvectors, a rotation of diagonal ones):
        // d^2 = |m1 - m2|^2 + sum (sqrt(a_i) - sqrt(b_i))^2.
        let q = rotation(0.7);
        let a = Gaussian {
            mean: DVector::from_column_slice(&[1.0, -2.0]),
            cov: &q
                * DMatrix::from_diagonal(&DVector::from_column_slice(&[4.0, 0.25]))
                * q.transpose(),
        };
        let b = Gaussian {
            mean: DVector::from_column_slice(&[0.0, 1.0]),
            cov: &q
                * DMatrix::from_diagonal(&DVector::from_column_slice(&[1.0, 9.0]))
                * q.transpose(),
        };
        let want = 1.0 + 9.0 + (2.0f64 - 1.0).powi(2) + (0.5f64 - 3.0).powi(2);
        assert!((frechet_distance(&a, &b) - want).abs() < 1e-12 * want);
        assert!((frechet_distance(&b, &a) - want).abs() < 1e-12 * want);
        // Non-commuting covariances: tr((S1^1/2 S2 S1^1/2)^1/2) is the sum of the square roots of
        // the eigenvalues of S1 S2 (similar to it, real and non-negative); for 2 x 2 matrices
        // that is sqrt(tr(S1 S2) + 2 sqrt(det(S1 S2))).
        let s1 = DMatrix::<f64>::from_row_slice(2, 2, &[2.0, 0.3, 0.3, 0.5]);
        let s2 = DMatrix::from_row_slice(2, 2, &[1.0, -0.8, -0.8, 3.0]);
        let p = &s1 * &s2;
        let cross = (p.trace() + 2.0 * p.determinant().sqrt()).sqrt();
        let want = s1.trace() + s2.trace() - 2.0 * cross;
        let a = Gaussian {
            mean: DVector::zeros(2),
            cov: s1,
        };
        let b = Gaussian {
            mean: DVector::zeros(2),
            cov: s2,
        };
        assert!((frechet_distance(&a, &b) - want).abs() < 1e-12 * (1.0 + want));
    }

    #[test]
    fn samples_of_two_gaussians_come_near_the_closed_form() {
        // 100 000 draws of N(0, I) and of N(m, 4 I) in 3-D: d^2 = |m|^2 + 3 (2 - 1)^2 = 4 + 3.
        let mut rng = crate::rng::stream(5, crate::rng::Stream::Data);
        let mut draw = |scale: f64, shift: f64| -> Vec<f64> {
            (0..100_000 * 3)
                .map(|i| {
                    let e: f64 = StandardNormal.sample(&mut rng);
                    scale * e + if i % 3 == 0 { shift } else { 0.0 }
                })
                .collect()
        };
        let a = Gaussian::fit(&draw(1.0, 0.0), 3);
        let b = Gaussian::fit(&draw(2.0, 2.0), 3);
        let d2 = frechet_distance(&a, &b);
        // The means' sampling error dominates: 2 |m| sqrt(5 / n) = 0.03.
        assert!((d2 - 7.0).abs() < 0.1, "{d2}");
    }

    #[test]
    fn rows_round_trip_and_nan_features_give_nan() {
        let g = Gaussian::fit(&[1.0, 2.0, 3.0, 5.0, 4.0, 4.0], 2);
        assert_eq!(Gaussian::from_rows(&g.to_rows(), 2), Some(g.clone()));
        assert_eq!(Gaussian::from_rows(&g.to_rows(), 3), None);
        let bad = Gaussian::fit(&[1.0, f64::NAN, 3.0, 5.0], 2);
        assert!(frechet_distance(&g, &bad).is_nan());
    }
}
