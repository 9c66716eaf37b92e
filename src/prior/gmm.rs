//! The Gaussian-mixture prior model, fitted by EM with full covariances.
//!
//! Start: k-means++ centres drawn from the trial's `prior_fit` stream, each row given to its
//! nearest centre, one M-step. Then EM until the mean log-likelihood per row gains less than
//! `tol` or `max_iter` iterations have run. `reg_covar` is added to each covariance's diagonal
//! (as scikit-learn does) so a component cannot collapse onto a single row.
//!
//! Fit quality: `log_likelihood` (mean per row, final), `iterations`, `converged` (1 or 0);
//! the report's trace holds the mean log-likelihood after every iteration.

use nalgebra::{Cholesky, DMatrix, DVector};
use rand::Rng;

use super::{FitReport, FittedPrior, PriorForm};
use crate::data::LatentMarginal;
use crate::spec::GmmConfig;

/// A fitted mixture.
#[derive(Debug, Clone)]
pub struct GmmFit {
    pub dim: usize,
    pub weights: Vec<f64>,
    pub means: Vec<DVector<f64>>,
    pub covariances: Vec<DMatrix<f64>>,
    /// Mean log-likelihood per row after each iteration.
    pub trace: Vec<f64>,
    pub converged: bool,
    /// EM iterations (M-steps) made.
    pub iterations: usize,
    pub rows: usize,
}

/// log sum exp of `v`.
fn log_sum_exp(v: &[f64]) -> f64 {
    let m = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !m.is_finite() {
        return m;
    }
    m + v.iter().map(|x| (x - m).exp()).sum::<f64>().ln()
}

/// Per component: the Cholesky factor's inverse-solve and log normaliser.
struct Component {
    mean: DVector<f64>,
    chol: Cholesky<f64, nalgebra::Dyn>,
    log_norm: f64,
    log_weight: f64,
}

impl Component {
    fn new(weight: f64, mean: &DVector<f64>, cov: &DMatrix<f64>) -> Component {
        let dim = mean.len();
        // reg_covar keeps the covariance positive definite; fall back to a tiny ridge if
        // rounding still breaks it.
        let chol = Cholesky::new(cov.clone()).unwrap_or_else(|| {
            Cholesky::new(cov + DMatrix::identity(dim, dim) * 1e-9)
                .expect("a ridged covariance is positive definite")
        });
        let log_det: f64 = 2.0 * chol.l().diagonal().iter().map(|d| d.ln()).sum::<f64>();
        Component {
            mean: mean.clone(),
            chol,
            log_norm: -0.5 * (dim as f64 * (2.0 * std::f64::consts::PI).ln() + log_det),
            log_weight: weight.max(1e-300).ln(),
        }
    }

    /// log(weight N(x | mean, cov)).
    fn log_density(&self, x: &DVector<f64>) -> f64 {
        let d = x - &self.mean;
        let y = self
            .chol
            .l_dirty()
            .solve_lower_triangular(&d)
            .expect("a Cholesky factor is invertible");
        self.log_weight + self.log_norm - 0.5 * y.norm_squared()
    }
}

/// One M-step from responsibilities `r` (`n x k`, row-major).
fn m_step(
    x: &[DVector<f64>],
    r: &[f64],
    k: usize,
    reg: f64,
    old: Option<&GmmFit>,
) -> (Vec<f64>, Vec<DVector<f64>>, Vec<DMatrix<f64>>) {
    let (n, dim) = (x.len(), x[0].len());
    let mut weights = Vec::with_capacity(k);
    let mut means = Vec::with_capacity(k);
    let mut covs = Vec::with_capacity(k);
    for j in 0..k {
        let nj: f64 = (0..n).map(|i| r[i * k + j]).sum();
        if nj <= 1e-12 {
            // An empty component keeps its place (or sits at the data's first row) with no
            // weight; the other components carry the data.
            weights.push(0.0);
            means.push(old.map_or_else(|| x[0].clone(), |o| o.means[j].clone()));
            covs.push(
                old.map_or_else(|| DMatrix::identity(dim, dim), |o| o.covariances[j].clone()),
            );
            continue;
        }
        let mut mean = DVector::zeros(dim);
        for (i, xi) in x.iter().enumerate() {
            mean.axpy(r[i * k + j], xi, 1.0);
        }
        mean /= nj;
        let mut cov = DMatrix::zeros(dim, dim);
        for (i, xi) in x.iter().enumerate() {
            let d = xi - &mean;
            cov.ger(r[i * k + j], &d, &d, 1.0);
        }
        cov /= nj;
        for a in 0..dim {
            cov[(a, a)] += reg;
        }
        weights.push(nj / n as f64);
        means.push(mean);
        covs.push(cov);
    }
    (weights, means, covs)
}

/// k-means++ centres (Arthur and Vassilvitskii 2007) from `rng`.
fn kmeans_pp<R: Rng>(x: &[DVector<f64>], k: usize, rng: &mut R) -> Vec<DVector<f64>> {
    let n = x.len();
    let mut centres = vec![x[rng.random_range(0..n)].clone()];
    let mut d2: Vec<f64> = x
        .iter()
        .map(|xi| (xi - &centres[0]).norm_squared())
        .collect();
    while centres.len() < k {
        let total: f64 = d2.iter().sum();
        let next = if total > 0.0 {
            let mut t = rng.random::<f64>() * total;
            let mut pick = n - 1;
            for (i, d) in d2.iter().enumerate() {
                if t < *d {
                    pick = i;
                    break;
                }
                t -= d;
            }
            pick
        } else {
            rng.random_range(0..n)
        };
        let c = x[next].clone();
        for (i, xi) in x.iter().enumerate() {
            d2[i] = d2[i].min((xi - &c).norm_squared());
        }
        centres.push(c);
    }
    centres
}

/// Fits a mixture to row-major `rows` of `dim` columns.
pub fn fit<R: Rng>(rows: &[f64], dim: usize, cfg: &GmmConfig, rng: &mut R) -> GmmFit {
    let x: Vec<DVector<f64>> = rows.chunks(dim).map(DVector::from_column_slice).collect();
    let (n, k) = (x.len(), cfg.components);
    // Start: hard assignment to the nearest k-means++ centre.
    let centres = kmeans_pp(&x, k, rng);
    let mut r = vec![0.0; n * k];
    for (i, xi) in x.iter().enumerate() {
        let nearest = (0..k)
            .min_by(|&a, &b| {
                (xi - &centres[a])
                    .norm_squared()
                    .total_cmp(&(xi - &centres[b]).norm_squared())
            })
            .expect("k >= 1");
        r[i * k + nearest] = 1.0;
    }
    let (weights, means, covariances) = m_step(&x, &r, k, cfg.reg_covar, None);
    let mut fit = GmmFit {
        dim,
        weights,
        means,
        covariances,
        trace: Vec::new(),
        converged: false,
        iterations: 0,
        rows: n,
    };
    let mut logp = vec![0.0; k];
    for _ in 0..cfg.max_iter {
        // E-step (its log-likelihood is that of the current parameters).
        let comps: Vec<Component> = (0..k)
            .map(|j| Component::new(fit.weights[j], &fit.means[j], &fit.covariances[j]))
            .collect();
        let mut ll = 0.0;
        for (i, xi) in x.iter().enumerate() {
            for (j, c) in comps.iter().enumerate() {
                logp[j] = c.log_density(xi);
            }
            let total = log_sum_exp(&logp);
            ll += total;
            for j in 0..k {
                r[i * k + j] = (logp[j] - total).exp();
            }
        }
        let ll = ll / n as f64;
        let gain = fit.trace.last().map(|prev| ll - prev);
        fit.trace.push(ll);
        if gain.is_some_and(|g| g.abs() < cfg.tol) {
            fit.converged = true;
            break;
        }
        // M-step.
        let (w, m, c) = m_step(&x, &r, k, cfg.reg_covar, Some(&fit));
        fit.weights = w;
        fit.means = m;
        fit.covariances = c;
        fit.iterations += 1;
    }
    if !fit.converged {
        // The iteration cap ended EM after an M-step: record the final parameters' value.
        let ll = fit.log_likelihood(rows);
        fit.trace.push(ll);
    }
    fit
}

impl GmmFit {
    /// Mean log-likelihood per row of `rows` under the fitted mixture.
    pub fn log_likelihood(&self, rows: &[f64]) -> f64 {
        let comps: Vec<Component> = (0..self.weights.len())
            .map(|j| Component::new(self.weights[j], &self.means[j], &self.covariances[j]))
            .collect();
        let mut logp = vec![0.0; comps.len()];
        let mut total = 0.0;
        let n = rows.len() / self.dim;
        for row in rows.chunks(self.dim) {
            let x = DVector::from_column_slice(row);
            for (j, c) in comps.iter().enumerate() {
                logp[j] = c.log_density(&x);
            }
            total += log_sum_exp(&logp);
        }
        total / n as f64
    }

    /// The prior model: component j maps z[..dim] to mean_j + z[..dim] L_j^T (covariance
    /// L_j L_j^T), picked by `selector` on latent coordinate `dim`.
    pub fn into_prior(self, selector: LatentMarginal) -> FittedPrior {
        let k = self.weights.len();
        let mut cum_weights = Vec::with_capacity(k);
        let mut acc = 0.0;
        for w in &self.weights {
            cum_weights.push(acc);
            acc += w;
        }
        let mut values = Vec::with_capacity(2 * k);
        for j in 0..k {
            values.push(self.means[j].iter().copied().collect());
            // As in the E-step: a tiny ridge where rounding broke positive definiteness.
            let cov = &self.covariances[j];
            let l = Cholesky::new(cov.clone())
                .or_else(|| Cholesky::new(cov + DMatrix::identity(self.dim, self.dim) * 1e-9))
                .map(|c| c.l())
                .unwrap_or_else(|| DMatrix::identity(self.dim, self.dim) * 1e-9);
            // Row-major L^T: entry (a, b) is L[(b, a)].
            let lt = l.transpose();
            values.push(
                (0..self.dim * self.dim)
                    .map(|i| lt[(i / self.dim, i % self.dim)])
                    .collect(),
            );
        }
        let mut report = FitReport {
            kind: "gmm".into(),
            rows: self.rows,
            trace: self.trace.clone(),
            ..Default::default()
        };
        let q = &mut report.quality;
        q.insert(
            "log_likelihood".into(),
            self.trace.last().copied().unwrap_or(f64::NAN),
        );
        q.insert("iterations".into(), self.iterations as f64);
        q.insert("converged".into(), f64::from(u8::from(self.converged)));
        q.insert(
            "smallest_weight".into(),
            self.weights.iter().copied().fold(f64::INFINITY, f64::min),
        );
        FittedPrior {
            form: PriorForm::Gmm {
                dim: self.dim,
                cum_weights,
                selector,
            },
            values,
            report,
            standardise: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::{stream, Stream};
    use rand_distr::{Distribution, StandardNormal};

    /// Rows from 3 well-separated 2-D Gaussians with weights 0.5, 0.3, 0.2.
    fn mixture_rows(n: usize) -> Vec<f64> {
        let means = [[-5.0, 0.0], [5.0, 1.0], [0.0, 8.0]];
        let stds = [0.5, 1.0, 0.7];
        let mut rng = stream(11, Stream::Data);
        let mut rows = Vec::with_capacity(2 * n);
        for _ in 0..n {
            let u: f64 = rng.random();
            let j = if u < 0.5 {
                0
            } else if u < 0.8 {
                1
            } else {
                2
            };
            for m in means[j] {
                let e: f64 = StandardNormal.sample(&mut rng);
                rows.push(m + stds[j] * e);
            }
        }
        rows
    }

    #[test]
    fn em_recovers_a_separated_mixture_and_never_loses_likelihood() {
        let rows = mixture_rows(20_000);
        let cfg = GmmConfig {
            components: 3,
            ..Default::default()
        };
        let fit = fit(&rows, 2, &cfg, &mut stream(1, Stream::PriorFit));
        assert!(fit.converged, "{:?}", fit.trace);
        for w in fit.trace.windows(2) {
            assert!(
                w[1] >= w[0] - 1e-12,
                "the log-likelihood fell: {:?}",
                fit.trace
            );
        }
        let want = [([-5.0, 0.0], 0.5), ([5.0, 1.0], 0.3), ([0.0, 8.0], 0.2)];
        for (mean, weight) in want {
            let j = (0..3)
                .min_by(|&a, &b| {
                    let d = |j: usize| (fit.means[j][0] - mean[0]).hypot(fit.means[j][1] - mean[1]);
                    d(a).total_cmp(&d(b))
                })
                .unwrap();
            assert!((fit.means[j][0] - mean[0]).abs() < 0.05, "{:?}", fit.means);
            assert!((fit.means[j][1] - mean[1]).abs() < 0.05, "{:?}", fit.means);
            assert!((fit.weights[j] - weight).abs() < 0.01, "{:?}", fit.weights);
        }
        // The recorded value is the likelihood of the final parameters' E-step.
        let again = fit.log_likelihood(&rows);
        assert!((again - fit.trace.last().unwrap()).abs() < 1e-12);
    }

    #[test]
    fn the_same_stream_gives_the_same_fit() {
        let rows = mixture_rows(2000);
        let cfg = GmmConfig {
            components: 4,
            ..Default::default()
        };
        let a = fit(&rows, 2, &cfg, &mut stream(5, Stream::PriorFit));
        let b = fit(&rows, 2, &cfg, &mut stream(5, Stream::PriorFit));
        assert_eq!(a.trace, b.trace);
        assert_eq!(a.means, b.means);
    }
}
